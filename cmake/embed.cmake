# cmake -DIN=FILE -DOUT=FILE.c -DNAME=symbol -P embed.cmake: FILE as a C
# byte array `const char NAME[]` (NUL-terminated) and `const size_t
# NAME_len`.  Run at build time, so an edited FILE is embedded again.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "#include <stddef.h>\nconst char ${NAME}[] = {${bytes}0};\nconst size_t ${NAME}_len = ${len};\n")
