#!/usr/bin/env python3
"""x509_interop.py: every kind of ketenpost trust file read by a mainstream
library (Debian's python3-cryptography) and by the OpenSSL command line,
independently of lib/identity.c.

usage: x509_interop.py CHAIN_DIR

CHAIN_DIR is a folder made by ketenpost-certs (tests/make-chain.sh).  For the
CA, the CRL, every organisation's certificate (orgs/<OIN>/cert.pem), every
certificate request (*.csr anywhere below CHAIN_DIR) and the chain bundle
(bundle, if present) it checks, with both readers, that the file parses,
that its signature verifies with the CA's (or for a request, its own) key,
and that the X25519 key extensions of docs/PROTOCOL.md §2 decode to the
public keys of the key files beside them.  Exit 0 on success; otherwise one
line per problem on stderr and exit 1.
"""
import glob
import hashlib
import os
import subprocess
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.x509.oid import NameOID

ARC = "1.3.6.1.4.1.99999.4711"
OID_TRANSPORT = x509.ObjectIdentifier(ARC + ".1")
OID_PAYLOAD = x509.ObjectIdentifier(ARC + ".2")
ROLES = {"leerplicht", "halt", "rvdk", "om", "jbt", "auditor"}

problems = []


def fail(msg):
    problems.append(msg)


def raw_pub(key):
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def octet32(ext_value, what, path):
    """The 32 key bytes of a DER OCTET STRING extension value."""
    if len(ext_value) != 34 or ext_value[:2] != b"\x04\x20":
        fail(f"{path}: {what} extension is not a 32-byte OCTET STRING")
        return None
    return ext_value[2:]


def ext_keys(exts, path):
    out = {}
    for oid, what in ((OID_TRANSPORT, "transport"), (OID_PAYLOAD, "payload")):
        try:
            ext = exts.get_extension_for_oid(oid)
        except x509.ExtensionNotFound:
            fail(f"{path}: no {what} key extension {oid.dotted_string}")
            continue
        if ext.critical:
            fail(f"{path}: {what} key extension is critical")
        out[what] = octet32(ext.value.value, what, path)
    return out


def openssl(*args, data=None):
    r = subprocess.run(["openssl", *args], input=data, capture_output=True)
    return r.returncode, r.stdout.decode("utf-8", "replace") + \
        r.stderr.decode("utf-8", "replace")


def openssl_ext_hex(path, kind):
    """{oid: hex of the OCTET STRING content} as `openssl asn1parse` sees
    the extensions of a certificate or request."""
    rc, out = openssl("asn1parse", "-in", path)
    if rc != 0:
        fail(f"{path}: openssl asn1parse failed: {out.strip()}")
        return {}
    found, last_oid = {}, None
    for line in out.splitlines():
        if "prim: OBJECT" in line:
            last_oid = line.rsplit(":", 1)[1].strip()
            continue
        if last_oid and last_oid.startswith(ARC) and "[HEX DUMP]:" in line:
            found[last_oid] = line.rsplit(":", 1)[1].strip().lower()
        last_oid = None
    return found


def check_openssl_keys(path, want, kind):
    hexes = openssl_ext_hex(path, kind)
    for oid, what in ((OID_TRANSPORT, "transport"), (OID_PAYLOAD, "payload")):
        got = hexes.get(oid.dotted_string)
        if want.get(what) is None:
            continue
        if got != "0420" + want[what].hex():
            fail(f"{path}: openssl reads the {what} key extension as "
                 f"{got!r}, not the key file's public key")


def check_ca(chain):
    path = os.path.join(chain, "ca.crt")
    ca = x509.load_pem_x509_certificate(open(path, "rb").read())
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    if not bc.ca:
        fail(f"{path}: not a CA certificate")
    if not isinstance(ca.public_key(), ed25519.Ed25519PublicKey):
        fail(f"{path}: the CA key is not Ed25519")
    ca.public_key().verify(ca.signature, ca.tbs_certificate_bytes)
    rc, out = openssl("verify", "-x509_strict", "-CAfile", path, path)
    if rc != 0:
        fail(f"{path}: openssl verify: {out.strip()}")
    return ca


def check_crl(chain, ca):
    path = os.path.join(chain, "crl.pem")
    crl = x509.load_pem_x509_crl(open(path, "rb").read())
    # is_signature_valid() of python3-cryptography 38 knows no Ed25519:
    # verify the signature over the TBS bytes directly.
    if crl.issuer != ca.subject:
        fail(f"{path}: issuer is not the CA in ca.crt")
    ca.public_key().verify(crl.signature, crl.tbs_certlist_bytes)
    if crl.next_update is None or crl.next_update <= crl.last_update:
        fail(f"{path}: no sensible nextUpdate")
    rc, out = openssl("crl", "-in", path, "-noout",
                      "-CAfile", os.path.join(chain, "ca.crt"))
    if rc != 0 or "verify OK" not in out:
        fail(f"{path}: openssl crl does not verify it: {out.strip()}")
    return crl


def key_pubs(org_dir):
    """Raw public keys of the key files in org_dir (those that exist)."""
    pubs = {}
    for what, name in (("sign", "sign.key"), ("transport", "transport.key"),
                       ("payload", "payload.key")):
        p = os.path.join(org_dir, name)
        if os.path.exists(p):
            key = serialization.load_pem_private_key(open(p, "rb").read(),
                                                     password=None)
            want = ed25519.Ed25519PrivateKey if what == "sign" else \
                x25519.X25519PrivateKey
            if not isinstance(key, want):
                fail(f"{p}: not a {want.__name__}")
                continue
            pubs[what] = raw_pub(key)
    return pubs


def check_subject(name, path):
    oin = name.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    ou = name.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    o = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if len(oin) != 1 or len(oin[0].value) != 20 or not oin[0].value.isdigit():
        fail(f"{path}: subject serialNumber is not one 20-digit OIN")
    if len(ou) != 1 or ou[0].value not in ROLES:
        fail(f"{path}: subject OU is not one known role")
    if len(o) != 1:
        fail(f"{path}: subject has not exactly one O")
    return oin[0].value if oin else None


def check_org(chain, ca, crl, path):
    cert = x509.load_pem_x509_certificate(open(path, "rb").read())
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes)
    oin = check_subject(cert.subject, path)
    keys = ext_keys(cert.extensions, path)
    pubs = key_pubs(os.path.dirname(path))
    if "sign" in pubs and raw_pub_cert(cert) != pubs["sign"]:
        fail(f"{path}: the certificate key is not sign.key's")
    for what in ("transport", "payload"):
        if what in pubs and keys.get(what) != pubs[what]:
            fail(f"{path}: {what} extension is not {what}.key's public key")
    check_openssl_keys(path, keys, "x509")
    revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    rc, out = openssl("verify", "-x509_strict", "-crl_check", "-CAfile",
                      os.path.join(chain, "ca.crt"), "-CRLfile",
                      os.path.join(chain, "crl.pem"), path)
    if revoked is None and rc != 0:
        fail(f"{path}: openssl verify: {out.strip()}")
    if revoked is not None and rc == 0:
        fail(f"{path}: revoked, yet openssl verify accepts it")
    return oin


def raw_pub_cert(cert):
    return cert.public_key().public_bytes(serialization.Encoding.Raw,
                                          serialization.PublicFormat.Raw)


def check_request(path):
    req = x509.load_pem_x509_csr(open(path, "rb").read())
    req.public_key().verify(req.signature, req.tbs_certrequest_bytes)
    check_subject(req.subject, path)
    keys = ext_keys(req.extensions, path)
    check_openssl_keys(path, keys, "req")
    rc, out = openssl("req", "-in", path, "-noout", "-verify")
    if rc != 0:
        fail(f"{path}: openssl req -verify: {out.strip()}")


def check_bundle(chain, ca):
    """PROTOCOL.md §2.5, read from the text: python3-cryptography verifies
    the Ed25519 signature with the CA's key, openssl pkeyutl does too, and
    every item is what the CA folder holds."""
    path = os.path.join(chain, "bundle")
    data = open(path, "rb").read()
    end = data.rindex(b"end\nsignature ") + len(b"end\n")
    body, sig_line = data[:end], data[end:]
    if not sig_line.startswith(b"signature ") or not sig_line.endswith(b"\n"):
        fail(f"{path}: no signature line at the end")
        return
    sig = bytes.fromhex(sig_line[10:-1].decode())
    ca.public_key().verify(sig, body)
    open(path + ".body", "wb").write(body)
    open(path + ".sig", "wb").write(sig)
    pub = ca.public_key().public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    open(path + ".pub", "wb").write(pub)
    rc, out = openssl("pkeyutl", "-verify", "-pubin", "-inkey", path + ".pub",
                      "-rawin", "-in", path + ".body", "-sigfile",
                      path + ".sig")
    for ext in (".body", ".sig", ".pub"):
        os.unlink(path + ext)
    if rc != 0 or "Signature Verified Successfully" not in out:
        fail(f"{path}: openssl pkeyutl does not verify it: {out.strip()}")
    lines = body.split(b"\n", 4)
    if lines[0] != b"ketenpost-bundle 1" or not lines[1].startswith(
            b"version ") or not lines[2].startswith(b"issued "):
        fail(f"{path}: header is not as PROTOCOL.md §2.5 says")
    ca_der = ca.public_bytes(serialization.Encoding.DER)
    if lines[3] != b"ca-sha256 " + hashlib.sha256(ca_der).hexdigest().encode():
        fail(f"{path}: ca-sha256 is not the SHA-256 of ca.crt's DER")
    rest, names = lines[4], []
    while not rest.startswith(b"end\n"):
        head, rest = rest.split(b"\n", 1)
        _, name, length = head.decode().split(" ")
        item, rest = rest[:int(length)], rest[int(length) + 1:]
        names.append(name)
        if item != open(os.path.join(chain, name), "rb").read():
            fail(f"{path}: item {name} is not the CA folder's file")
    if names[:3] != ["ca.crt", "crl.pem", "policy.ini"]:
        fail(f"{path}: items start {names[:3]}")


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    chain = sys.argv[1]
    ca = check_ca(chain)
    crl = check_crl(chain, ca)
    certs = sorted(glob.glob(os.path.join(chain, "orgs", "*", "cert.pem")))
    if not certs:
        fail(f"{chain}: no organisation certificates")
    for path in certs:
        check_org(chain, ca, crl, path)
    reqs = sorted(glob.glob(os.path.join(chain, "**", "*.csr"),
                            recursive=True))
    for path in reqs:
        check_request(path)
    if os.path.exists(os.path.join(chain, "bundle")):
        check_bundle(chain, ca)
    for msg in problems:
        print("x509_interop: " + msg, file=sys.stderr)
    if problems:
        return 1
    print(f"x509_interop: ok: CA, CRL, {len(certs)} certificates, "
          f"{len(reqs)} requests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
