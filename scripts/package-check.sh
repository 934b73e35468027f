#!/usr/bin/env bash
# CI: build the Debian package from this tree, lintian it, install it on
# this machine (root), and check that what systemd would run works: the
# files sit where the unit expects them, the system user exists, a chain
# made with the installed ketenpost-certs passes the installed
# `ketenpostd --check` as the daemon's user against /etc/ketenpost/NAME.conf,
# and `systemd-analyze verify` accepts the installed unit.
#
# The build runs in a copy of the tree under a temporary folder (dpkg-
# buildpackage writes its results to ..), so the checkout stays clean.
# Tests are not built or run in the package build (see debian/rules).
# KEEP=1 keeps the temporary folder; the package stays installed.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
name=ci-package-check
oin=00000001009999999000
[ "$(id -u)" -eq 0 ] || { echo "package-check: must run as root (installs the package)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/ketenpost-pkg.XXXXXX)
cleanup() {
	[ -n "${KEEP:-}" ] && { echo "package-check: kept $tmp"; return; }
	rm -rf "$tmp"
}
trap cleanup EXIT
step() { echo "== package-check: $*"; }
fail() { echo "package-check: FAILED: $*" >&2; exit 1; }

step "build dependencies"
export DEBIAN_FRONTEND=noninteractive
apt_quiet() { apt-get -q -y -o Dpkg::Use-Pty=0 "$@" >"$tmp/apt.log" 2>&1 ||
	{ tail -n 30 "$tmp/apt.log"; fail "apt-get $*"; }; }
mkdir -p "$tmp/ketenpost"
git ls-files -z --cached --others --exclude-standard |
	tar --null -T - -cf - | tar -xf - -C "$tmp/ketenpost"
if ! dpkg-checkbuilddeps "$tmp/ketenpost/debian/control" >/dev/null 2>&1 ||
    ! command -v lintian >/dev/null || ! command -v curl >/dev/null; then
	apt_quiet update
	apt_quiet install --no-install-recommends debhelper dpkg-dev fakeroot \
		lintian curl
	apt_quiet build-dep --no-install-recommends "$tmp/ketenpost"
fi

step "dpkg-buildpackage -us -uc -b (nocheck)"
(cd "$tmp/ketenpost" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
	dpkg-buildpackage -us -uc -b >"$tmp/build.log" 2>&1) ||
	{ tail -n 40 "$tmp/build.log"; fail "dpkg-buildpackage"; }
deb=$(ls "$tmp"/ketenpost_*.deb)
echo "built $(basename "$deb")"

step "lintian"
lintian --fail-on error,warning --display-info "$tmp"/ketenpost_*.changes ||
	fail "lintian found problems"

step "install with apt"
apt_quiet install --no-install-recommends "$deb"

step "files where the unit expects them"
unit=$(systemctl show -P FragmentPath ketenpostd@.service 2>/dev/null || true)
[ -n "$unit" ] && [ -f "$unit" ] || unit=/lib/systemd/system/ketenpostd@.service
[ -f "$unit" ] || fail "unit not installed"
for line in ExecStart ExecStartPre; do
	bin=$(sed -n "s/^$line=\([^ ]*\).*/\1/p" "$unit")
	[ -x "$bin" ] || fail "$line of $unit runs $bin, which is not installed"
done
grep -q '^ExecStart=.* --config /etc/ketenpost/%i.conf$' "$unit" ||
	fail "the unit does not read /etc/ketenpost/NAME.conf"
for f in /usr/bin/ketenpostd /usr/bin/ketenpost /usr/bin/ketenpost-certs \
    /usr/share/ketenpost/mas.ini /usr/share/man/man8/ketenpostd.8.gz \
    /usr/share/man/man5/ketenpostd.conf.5.gz /usr/share/man/man1/ketenpost.1.gz \
    /usr/share/man/man1/ketenpost-certs.1.gz \
    /usr/lib/sysusers.d/ketenpost.conf /usr/lib/tmpfiles.d/ketenpost.conf \
    /usr/share/doc/ketenpost/examples/referral.json; do
	[ -e "$f" ] || fail "$f is not installed"
done
getent passwd ketenpost >/dev/null || fail "the package did not create the user ketenpost"
[ -d /var/lib/ketenpost ] || fail "/var/lib/ketenpost was not created (tmpfiles)"
for p in ketenpostd ketenpost ketenpost-certs; do
	v=$($p --version)
	[ "$v" = "$p $(dpkg-query -W -f='${Version}' ketenpost | sed 's/-[^-]*$//')" ] ||
		fail "$p --version says '$v'"
done

step "a chain with the installed ketenpost-certs, ketenpostd --check as the user"
rm -rf "/etc/ketenpost/$name.chain" "/etc/ketenpost/$name.conf" \
	"/var/lib/ketenpost/$name" "/var/lib/ketenpost/$name.backup"
ketenpost-certs init --dir "/etc/ketenpost/$name.chain" --name "CI" >/dev/null
cmp -s "/etc/ketenpost/$name.chain/policy.ini" /usr/share/ketenpost/mas.ini ||
	fail "the chain policy is not the installed MAS policy"
ketenpost-certs org --dir "/etc/ketenpost/$name.chain" --oin "$oin" \
	--role leerplicht --name "CI gemeente" >/dev/null
# What an organisation's machine holds: the public chain and its own keys,
# readable by the daemon's user only (the CA key belongs at the CA).
rm -rf "/etc/ketenpost/$name.chain/ca"
chown -R ketenpost:ketenpost "/etc/ketenpost/$name.chain"
cat >"/etc/ketenpost/$name.conf" <<EOF
[ketenpostd]
chain_dir = /etc/ketenpost/$name.chain
org = $oin
listen = tcp://127.0.0.1:17999
state_dir = /var/lib/ketenpost/$name

[metrics]
listen = 127.0.0.1:19464
EOF
chmod 0640 "/etc/ketenpost/$name.conf"
chgrp ketenpost "/etc/ketenpost/$name.conf"
out=$(runuser -u ketenpost -- ketenpostd --config "/etc/ketenpost/$name.conf" --check) ||
	{ echo "$out"; fail "ketenpostd --check"; }
echo "$out"

step "the installed daemon runs as its user from that configuration"
# What the unit's ExecStart does (no systemd runs in CI): start it in the
# foreground as the user, scrape its metrics, back it up, stop it.
# setpriv execs the daemon itself (runuser would stay as its parent)
setpriv --reuid ketenpost --regid ketenpost --init-groups \
	ketenpostd --config "/etc/ketenpost/$name.conf" >"$tmp/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	curl -sf http://127.0.0.1:19464/metrics >"$tmp/metrics" 2>/dev/null && break
	sleep 0.1
done
grep -q '^ketenpost_build_info{version=' "$tmp/metrics" ||
	{ kill "$pid"; cat "$tmp/daemon.log"; fail "no metrics from the installed daemon"; }
runuser -u ketenpost -- ketenpost backup --config "/etc/ketenpost/$name.conf" \
	"/var/lib/ketenpost/$name.backup" || { kill "$pid"; fail "ketenpost backup"; }
kill -TERM "$pid"
wait "$pid" || { cat "$tmp/daemon.log"; fail "the daemon did not stop cleanly"; }

step "systemd-analyze verify the installed unit"
mkdir -p "$tmp/unit"
cp "$unit" "$tmp/unit/ketenpostd@$name.service"
(cd "$tmp/unit" && systemd-analyze verify "./ketenpostd@$name.service") ||
	fail "systemd-analyze verify"
rm -rf "/etc/ketenpost/$name.chain" "/etc/ketenpost/$name.conf" \
	"/var/lib/ketenpost/$name" "/var/lib/ketenpost/$name.backup"
echo "package-check: ok"
