#!/usr/bin/env bash
#
# make-tls.sh DIR: the certificates of the REST API's TLS tests
# (test_rest.c), made at test time with openssl, none kept in git:
#   ca.crt              the case systems' CA (tls_client_ca; it signs the
#                       server's certificate too, so curl can check it)
#   server.crt/.key     the daemon's (127.0.0.1), key mode 600
#   allowed.crt/.key    a client of ca, named in [api] allow = cert:...
#   other.crt/.key      a client of ca, not named
#   stranger.crt/.key   a client of another CA (stranger-ca.crt)
#   allowed.fp          allowed.crt's SHA-256 fingerprint (AB:CD:...)
#
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
mkdir -p -- "$1"
cd -- "$1"
umask 077

ca() {  # NAME CN
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$1.key" -out "$1.crt" -subj "/CN=$2" -days 2 \
	    -addext basicConstraints=critical,CA:TRUE \
	    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}

leaf() {  # NAME CA CN EXTENSIONS
	printf '%s\n' "$4" >"$1.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$1.key" -out "$1.csr" -subj "/CN=$3" 2>/dev/null
	openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" \
	    -CAcreateserial -out "$1.crt" -days 2 -extfile "$1.ext" 2>/dev/null
}

client='basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth'
ca ca "Ketenpost test case systems CA"
ca stranger-ca "Some other CA"
leaf server ca 127.0.0.1 'basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1'
leaf allowed ca "attendance case system" "$client"
leaf other ca "another case system" "$client"
leaf stranger stranger-ca "attendance case system" "$client"
openssl x509 -noout -fingerprint -sha256 -in allowed.crt | cut -d= -f2 \
    >allowed.fp
chmod 644 ./*.crt allowed.fp
