#!/usr/bin/env python3
"""trust_cli.py: `ketenpost-certs request` and `sign` across separate folders.

usage: trust_cli.py KETENPOST-CERTS WORKDIR

An organisation makes its own keys and request in its own folder; the CA
signs in another; afterwards the CA's folder holds no organisation secret.
The proofs of possession in the request are recomputed here from
docs/PROTOCOL.md §2.4 alone (python3-cryptography, not the tool's code).
Then every bad request of issue 10 is refused with its own one-line error
and leaves the CA's folder unchanged: malformed OIN, unknown role, an X25519
key not proven (missing proof, wrong proof, a proof made for another OIN),
a broken request signature, an OIN that already holds a valid certificate
(accepted with --renew, which keeps the old certificate for the overlap).
`switch` (after `renew`) keeps the payload key it replaces in previous/,
and not the old signing and transport keys.
"""
import hashlib
import hmac
import os
import shutil
import subprocess
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.x509.oid import NameOID

ARC = "1.3.6.1.4.1.99999.4711"
OID = {n: x509.ObjectIdentifier(f"{ARC}.{n}") for n in range(1, 6)}
OIN_A = "00000001001234567000"
OIN_B = "00000001002345678000"

TOOL = WORK = None
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("trust_cli: FAIL: " + msg, file=sys.stderr)


def tool(*args):
    r = subprocess.run([TOOL, *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def raw(pub):
    return pub.public_bytes(serialization.Encoding.Raw,
                            serialization.PublicFormat.Raw)


def ext32(exts, n):
    v = exts.get_extension_for_oid(OID[n]).value.value
    assert len(v) == 34 and v[:2] == b"\x04\x20", v
    return v[2:]


def proof(x_sk, ca_pop_pk, label, oin, sign_pk):
    """PROTOCOL.md §2.4, from the text."""
    s = x_sk.exchange(x25519.X25519PublicKey.from_public_bytes(ca_pop_pk))
    msg = (b"ketenpost/v1/pop/" + label.encode() + b"\x00" + oin.encode() +
           sign_pk + raw(x_sk.public_key()))
    return hmac.new(s, msg, hashlib.sha256).digest()


def load_key(path):
    return serialization.load_pem_private_key(open(path, "rb").read(), None)


def ca_state(ca):
    """What a refused sign must leave unchanged."""
    files = []
    for root, _, names in os.walk(ca):
        for n in names:
            if n != "lock":
                p = os.path.join(root, n)
                files.append((p, open(p, "rb").read()))
    return sorted(files)


def make_csr(path, oin, role, name="Test org", proofs=("t", "p"),
             proof_oin=None, ca_pop=None, tamper=False):
    """A request made here, not by the tool: the bad-input cases."""
    sk = ed25519.Ed25519PrivateKey.generate()
    t, p = x25519.X25519PrivateKey.generate(), x25519.X25519PrivateKey.generate()
    spk = raw(sk.public_key())
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.SERIAL_NUMBER, oin),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role)]))

    def add(n, v):
        return b.add_extension(x509.UnrecognizedExtension(
            OID[n], b"\x04\x20" + v), critical=False)
    b = add(1, raw(t.public_key()))
    b = add(2, raw(p.public_key()))
    po = proof_oin or oin
    if "t" in proofs:
        b = add(3, proof(t, ca_pop, "transport", po, spk))
    if "p" in proofs:
        b = add(4, proof(p, ca_pop, "payload", po, spk))
    if "p-wrong" in proofs:
        b = add(4, proof(t, ca_pop, "payload", po, spk))
    pem = b.sign(sk, None).public_bytes(serialization.Encoding.PEM)
    if tamper:  # one byte of the subject's name changed: signature breaks
        der = x509.load_pem_x509_csr(pem).public_bytes(
            serialization.Encoding.DER)
        i = der.index(name.encode())
        der = der[:i] + b"X" + der[i + 1:]
        import base64
        body = base64.encodebytes(der).decode().replace("\n", "")
        pem = ("-----BEGIN CERTIFICATE REQUEST-----\n" +
               "\n".join(body[i:i + 64] for i in range(0, len(body), 64)) +
               "\n-----END CERTIFICATE REQUEST-----\n").encode()
    open(path, "wb").write(pem)


def refused(ca, csr, needle, *extra):
    before = ca_state(ca)
    rc, out, err = tool("sign", "--dir", ca, "--request", csr, *extra)
    lines = err.strip().splitlines()
    check(rc == 2, f"sign {os.path.basename(csr)}: exit {rc}, not 2: {err}")
    check(len(lines) == 1 and needle in err,
          f"sign {os.path.basename(csr)}: want one line with '{needle}', "
          f"got: {err!r}")
    check(ca_state(ca) == before,
          f"sign {os.path.basename(csr)}: the CA folder changed")


def main():
    global TOOL, WORK
    TOOL, WORK = sys.argv[1], sys.argv[2]
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    ca, org_a = os.path.join(WORK, "ca"), os.path.join(WORK, "a")
    rc, _, err = tool("init", "--dir", ca)
    check(rc == 0, f"init: {err}")
    os.makedirs(org_a, mode=0o700)
    shutil.copy(os.path.join(ca, "ca.crt"), org_a)

    # At the organisation: its keys and request, in its own folder.
    rc, out, err = tool("request", "--dir", org_a, "--oin", OIN_A, "--role",
                        "leerplicht", "--name", "Gemeente A", "--endpoint",
                        "tcp://127.0.0.1:17999")
    check(rc == 0, f"request: {err}")
    for k in ("sign.key", "transport.key", "payload.key"):
        mode = os.stat(os.path.join(org_a, k)).st_mode & 0o777
        check(mode == 0o600, f"{k} has mode {mode:o}, not 600")

    # The proofs, recomputed from the spec.
    cacert = x509.load_pem_x509_certificate(
        open(os.path.join(ca, "ca.crt"), "rb").read())
    ca_pop = ext32(cacert.extensions, 5)
    req = x509.load_pem_x509_csr(
        open(os.path.join(org_a, "request.csr"), "rb").read())
    spk = raw(req.public_key())
    check(spk == raw(load_key(os.path.join(org_a, "sign.key")).public_key()),
          "request key is not sign.key's")
    for n, label, f in ((3, "transport", "transport.key"),
                        (4, "payload", "payload.key")):
        want = proof(load_key(os.path.join(org_a, f)), ca_pop, label, OIN_A,
                     spk)
        check(ext32(req.extensions, n) == want,
              f"the {label} proof is not PROTOCOL.md §2.4's")

    # At the CA.
    rc, out, err = tool("sign", "--dir", ca, "--request",
                        os.path.join(org_a, "request.csr"), "--out",
                        os.path.join(org_a, "cert.pem"))
    check(rc == 0, f"sign: {err}")
    cert = x509.load_pem_x509_certificate(
        open(os.path.join(org_a, "cert.pem"), "rb").read())
    check(ext32(cert.extensions, 1) == ext32(req.extensions, 1) and
          ext32(cert.extensions, 2) == ext32(req.extensions, 2),
          "the certificate's keys are not the request's")
    check(all(e.oid not in (OID[3], OID[4]) for e in cert.extensions),
          "the proofs were copied into the certificate")
    secrets = []
    for root, _, names in os.walk(ca):
        for n in names:
            p = os.path.join(root, n)
            if n.endswith(".key") and p not in (
                    os.path.join(ca, "ca", "ca.key"),
                    os.path.join(ca, "ca", "pop.key")):
                secrets.append(p)
            elif b"PRIVATE KEY" in open(p, "rb").read() and \
                    not p.startswith(os.path.join(ca, "ca") + os.sep):
                secrets.append(p)
    check(secrets == [], f"the CA folder holds organisation secrets: "
          f"{secrets}")

    # Bad requests: each refused with its own line, nothing changed.
    bad = os.path.join(WORK, "bad")
    os.makedirs(bad)

    def csr(name, *a, **kw):
        path = os.path.join(bad, name + ".csr")
        kw.setdefault("ca_pop", ca_pop)
        make_csr(path, *a, **kw)
        return path
    refused(ca, csr("oin19", "0000000100234567800", "om"),
            "OIN '0000000100234567800' is not exactly 20 digits")
    refused(ca, csr("oinx", "0000000100234567800X", "om"),
            "is not exactly 20 digits")
    refused(ca, csr("role", OIN_B, "wizard"), "role 'wizard' is not one of")
    refused(ca, csr("noproof", OIN_B, "om", proofs=("t",)),
            "does not prove possession of both X25519 keys")
    refused(ca, csr("wrongproof", OIN_B, "om", proofs=("t", "p-wrong")),
            "proof of possession of the payload key is wrong")
    refused(ca, csr("otheroin", OIN_B, "om", proof_oin=OIN_A),
            "proof of possession of the transport key is wrong")
    refused(ca, csr("tampered", OIN_B, "om", tamper=True),
            "signature does not verify")
    refused(ca, os.path.join(org_a, "request.csr"),
            f"OIN {OIN_A} already holds a valid certificate")
    refused(ca, csr("renewnone", OIN_B, "om"), "holds no valid certificate "
            "to renew", "--renew")

    # A good request made here is accepted (the bad ones were bad only in
    # the one way each was made bad).
    rc, _, err = tool("sign", "--dir", ca, "--request", csr("good", OIN_B,
                                                            "om"))
    check(rc == 0, f"a good hand-made request was refused: {err}")

    # --renew: a new certificate, the old one kept for the overlap.
    old = open(os.path.join(ca, "orgs", OIN_A, "cert.pem"), "rb").read()
    rc, _, err = tool("sign", "--dir", ca, "--request",
                      csr("renew", OIN_A, "leerplicht"), "--renew")
    check(rc == 0, f"sign --renew: {err}")
    check(open(os.path.join(ca, "orgs", OIN_A, "previous.pem"), "rb")
          .read() == old, "--renew did not keep the old certificate")

    # switch at the organisation: refused without a renewal, nothing
    # changed; after renew the keys in use move to previous/, next/'s
    # take their place.
    def keybytes(d):
        return {k: open(os.path.join(d, k), "rb").read()
                for k in ("sign.key", "transport.key", "payload.key")}
    before = keybytes(org_a)
    rc, _, err = tool("switch", "--dir", org_a)
    check(rc == 2 and "no renewal to switch to" in err and
          err.count("\n") == 1, f"switch without next/: rc {rc}: {err}")
    check(keybytes(org_a) == before and
          not os.path.exists(os.path.join(org_a, "previous")),
          "a refused switch changed the keys")
    rc, _, err = tool("renew", "--dir", org_a)
    check(rc == 0, f"renew: {err}")
    nxt = keybytes(os.path.join(org_a, "next"))
    rc, _, err = tool("switch", "--dir", org_a)
    check(rc == 0, f"switch: {err}")
    check(keybytes(org_a) == nxt, "switch did not put next/'s keys in use")
    prev = os.path.join(org_a, "previous")
    check(open(os.path.join(prev, "payload.key"), "rb").read() ==
          before["payload.key"],
          "switch did not keep the payload key used until then in previous/")
    for k in ("sign.key", "transport.key"):
        check(not os.path.exists(os.path.join(prev, k)),
              f"switch kept the old {k}, which serves nothing any more")
    check(not os.path.exists(os.path.join(org_a, "next")),
          "next/ is still there after the switch")
    mode = os.stat(os.path.join(prev, "payload.key")).st_mode & 0o777
    check(mode == 0o600, f"previous/payload.key has mode {mode:o}, not 600")

    # Everything made here, read by python3-cryptography and openssl.
    shutil.copy(os.path.join(org_a, "request.csr"),
                os.path.join(ca, "orgs", OIN_A, "request.csr"))
    r = subprocess.run([sys.executable, os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "x509_interop.py"), ca],
        capture_output=True, text=True)
    check(r.returncode == 0, f"x509_interop: {r.stderr}")
    if failures:
        return 1
    print("trust_cli: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
