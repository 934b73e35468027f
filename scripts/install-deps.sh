#!/usr/bin/env bash
# Install ketenpost's Debian build and run dependencies.  Idempotent: when
# every package is present it does nothing (and needs no network or root).
set -euo pipefail

packages=(
  build-essential clang cmake pkg-config openssl systemd man-db
  libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libsodium-dev libssl-dev
  libsqlite3-dev libsystemd-dev libjansson-dev libinih-dev
  libcriterion-dev python3 python3-cryptography python3-jsonschema
  libmicrohttpd-dev libgnutls28-dev curl
  clang libclang-rt-dev
  gettext
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
