# cmake -DIN=... -DOUT=... -DKP_VERSION=... -P configure-file.cmake:
# copy IN to OUT with @KP_VERSION@ replaced (keeps IN's permissions).  Run
# at build time so an edited script is picked up without reconfiguring.
configure_file(${IN} ${OUT} @ONLY)
