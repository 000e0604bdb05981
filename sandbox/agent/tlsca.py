"""A per-run certificate authority for the sinkhole's TLS termination (standard library only).

The agent runs on the image's interpreter with the standard library and psutil
only, and :mod:`ssl` can serve with a certificate but cannot make one. This
module makes them: a minimal DER encoder, ECDSA over P-256 in plain integers,
and X.509 v3 certificates shaped like a corporate TLS-inspection root and the
leaves it issues (the extensions OpenSSL's strict verification asks for:
basicConstraints, keyUsage, subject/authority key identifiers, SAN).

Why not the ``openssl`` CLI: a leaf is needed for every new SNI *while* the
single-threaded sinkhole serves, and a process per leaf costs a pid (a fork
bomb may have used them all) and ~10 ms; a signature here costs a few ms and
nothing else. The CA key lives only in the memory of the root-owned processes
(``agent setup``, then the sinkhole daemon); the one key written to disk is the
leaves' key, in a root-only directory (mode 0700) on the trace tmpfs.

Side channels do not matter here (every key lives for one run, in a box whose
only other tenant is the code under test, which cannot observe the daemon), so
the arithmetic is the plain textbook one; nonces come from :mod:`secrets`.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import ipaddress
import os
import random
import secrets
import ssl
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

# --------------------------------------------------------------------------- P-256

P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)
Jacobian = tuple[int, int, int]  # (X, Y, Z); Z == 0 is the point at infinity


def _double(pt: Jacobian) -> Jacobian:
    x, y, z = pt
    if not z or not y:
        return (0, 1, 0)
    delta = z * z % P
    gamma = y * y % P
    beta = x * gamma % P
    alpha = 3 * (x - delta) * (x + delta) % P  # a = -3
    x3 = (alpha * alpha - 8 * beta) % P
    z3 = ((y + z) * (y + z) - gamma - delta) % P
    y3 = (alpha * (4 * beta - x3) - 8 * gamma * gamma) % P
    return (x3, y3, z3)


def _add(p1: Jacobian, p2: Jacobian) -> Jacobian:
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    if not z1:
        return p2
    if not z2:
        return p1
    z1z1, z2z2 = z1 * z1 % P, z2 * z2 % P
    u1, u2 = x1 * z2z2 % P, x2 * z1z1 % P
    s1, s2 = y1 * z2 * z2z2 % P, y2 * z1 * z1z1 % P
    h, r = (u2 - u1) % P, (s2 - s1) % P
    if h == 0:
        return _double(p1) if r == 0 else (0, 1, 0)
    hh = h * h % P
    hhh = h * hh % P
    v = u1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    y3 = (r * (v - x3) - s1 * hhh) % P
    return (x3, y3, z1 * z2 * h % P)


def scalar_mult(k: int, point: tuple[int, int] = G) -> tuple[int, int] | None:
    """*k* · *point* in affine coordinates (None: the point at infinity)."""
    acc: Jacobian = (0, 1, 0)
    base: Jacobian = (point[0], point[1], 1)
    for bit in bin(k % N)[2:]:
        acc = _double(acc)
        if bit == "1":
            acc = _add(acc, base)
    x, y, z = acc
    if not z:
        return None
    zi = pow(z, -1, P)
    zi2 = zi * zi % P
    return (x * zi2 % P, y * zi2 * zi % P)


def on_curve(pt: tuple[int, int]) -> bool:
    x, y = pt
    return (y * y - (x * x * x - 3 * x + B)) % P == 0


@dataclass(frozen=True)
class EcKey:
    """A P-256 private key and its public point."""

    d: int
    pub: tuple[int, int]

    @classmethod
    def generate(cls) -> EcKey:
        d = secrets.randbelow(N - 1) + 1
        pub = scalar_mult(d)
        assert pub is not None
        return cls(d, pub)

    @property
    def point(self) -> bytes:
        """The uncompressed public point (SEC1)."""
        return b"\x04" + self.pub[0].to_bytes(32, "big") + self.pub[1].to_bytes(32, "big")

    def sign(self, msg: bytes) -> bytes:
        """ECDSA-SHA256 signature, DER ``SEQUENCE { r, s }``."""
        e = int.from_bytes(hashlib.sha256(msg).digest(), "big")
        while True:
            k = secrets.randbelow(N - 1) + 1
            r_pt = scalar_mult(k)
            if r_pt is None:
                continue
            r = r_pt[0] % N
            s = pow(k, -1, N) * (e + r * self.d) % N
            if r and s:
                return seq(integer(r), integer(s))

    def pem(self) -> str:
        """SEC1 ``EC PRIVATE KEY`` PEM (what ``ssl`` loads with ``load_cert_chain``)."""
        der = seq(
            integer(1),
            tlv(0x04, self.d.to_bytes(32, "big")),
            tlv(0xA0, oid(OID_P256)),
            tlv(0xA1, bit_string(self.point)),
        )
        return _pem("EC PRIVATE KEY", der)


def verify(pub: tuple[int, int], msg: bytes, r: int, s: int) -> bool:
    """ECDSA-SHA256 verification (used by the tests to check :meth:`EcKey.sign`)."""
    if not (0 < r < N and 0 < s < N):
        return False
    e = int.from_bytes(hashlib.sha256(msg).digest(), "big")
    w = pow(s, -1, N)
    a = scalar_mult(e * w % N)
    b = scalar_mult(r * w % N, pub)
    if a is None or b is None:
        return False
    x, _y, z = _add((a[0], a[1], 1), (b[0], b[1], 1))
    if not z:
        return False
    return x * pow(z * z, -1, P) % P % N == r


# --------------------------------------------------------------------------- DER

OID_P256 = "1.2.840.10045.3.1.7"
OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"
OID_CN, OID_O, OID_C = "2.5.4.3", "2.5.4.10", "2.5.4.6"
OID_SKI, OID_KU, OID_SAN, OID_BC, OID_AKI, OID_EKU = (
    "2.5.29.14",
    "2.5.29.15",
    "2.5.29.17",
    "2.5.29.19",
    "2.5.29.35",
    "2.5.29.37",
)
OID_SERVER_AUTH = "1.3.6.1.5.5.7.3.1"


def tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        head = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + head + body


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def integer(v: int) -> bytes:
    return tlv(0x02, v.to_bytes(v.bit_length() // 8 + 1, "big"))


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, bytes(out))


def bit_string(data: bytes, unused: int = 0) -> bytes:
    return tlv(0x03, bytes([unused]) + data)


def _time(t: dt.datetime) -> bytes:
    if t.year < 2050:
        return tlv(0x17, t.strftime("%y%m%d%H%M%SZ").encode())
    return tlv(0x18, t.strftime("%Y%m%d%H%M%SZ").encode())


def name(*rdns: tuple[str, str]) -> bytes:
    """An X.501 Name: one attribute per RDN, UTF8String (PrintableString for C)."""
    sets = []
    for attr, value in rdns:
        tag = 0x13 if attr == OID_C else 0x0C
        sets.append(tlv(0x31, seq(oid(attr), tlv(tag, value.encode()))))
    return seq(*sets)


def _ext(ident: str, value: bytes, critical: bool = False) -> bytes:
    return seq(oid(ident), *([tlv(0x01, b"\xff")] if critical else []), tlv(0x04, value))


def _pem(label: str, der: bytes) -> str:
    b64 = base64.b64encode(der).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def _spki(key: EcKey) -> bytes:
    return seq(seq(oid(OID_EC_PUBLIC_KEY), oid(OID_P256)), bit_string(key.point))


def _key_id(key: EcKey) -> bytes:
    return hashlib.sha1(key.point).digest()  # RFC 5280 §4.2.1.2 method (1)


def certificate(
    subject: bytes,
    issuer: bytes,
    key: EcKey,
    signer: EcKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    extensions: list[bytes],
) -> bytes:
    """A signed X.509 v3 certificate (DER)."""
    alg = seq(oid(OID_ECDSA_SHA256))
    serial = secrets.randbits(127) | (1 << 120)  # positive, 16 bytes: like public CAs
    tbs = seq(
        tlv(0xA0, integer(2)),
        integer(serial),
        alg,
        issuer,
        seq(_time(not_before), _time(not_after)),
        subject,
        _spki(key),
        tlv(0xA3, seq(*extensions)),
    )
    return seq(tbs, alg, bit_string(signer.sign(tbs)))


def san_entry(host: str) -> bytes:
    """A subjectAltName GeneralName: iPAddress for an address, dNSName otherwise."""
    try:
        return tlv(0x87, ipaddress.ip_address(host.strip("[]")).packed)
    except ValueError:
        return tlv(0x82, host.encode("ascii", "replace"))


# --------------------------------------------------------------------------- the authority

ORGS = (
    "Northwind Traders",
    "Globex Corporation",
    "Initech",
    "Vandelay Industries",
    "Hooli",
    "Acme Corp",
    "Umbrella Holdings",
    "Stark Industries",
)
CONTEXT_CACHE = 128


class Authority:
    """The run's CA: issues a leaf per server name on demand and serves it from a
    bounded cache of server-side :class:`ssl.SSLContext` objects (ALPN: http/1.1
    only, so that clients which prefer h2 fall back to a protocol the sinkhole
    parses)."""

    def __init__(self, workdir: Path, rng: random.Random | None = None, max_leaves: int = 512) -> None:
        r = rng or random.SystemRandom()
        self.workdir = workdir
        self.max_leaves = max_leaves
        self.issued = 0
        self.org = r.choice(ORGS)
        self.key = EcKey.generate()
        self._leaf_key: EcKey | None = None  # made at the first leaf: not on set-up's path
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        self.name = name((OID_C, "US"), (OID_O, self.org), (OID_CN, f"{self.org} TLS Inspection Root CA"))
        self.key_id = _key_id(self.key)
        self.ca_der = certificate(
            self.name,
            self.name,
            self.key,
            self.key,
            now - dt.timedelta(days=r.randrange(200, 900)),
            now + dt.timedelta(days=3650),
            [
                _ext(OID_BC, seq(tlv(0x01, b"\xff")), critical=True),
                _ext(OID_KU, bit_string(b"\x86", 1), critical=True),  # digitalSignature, keyCertSign, cRLSign
                _ext(OID_SKI, tlv(0x04, self.key_id)),
            ],
        )
        self.ca_pem = _pem("CERTIFICATE", self.ca_der)
        self._contexts: OrderedDict[str, ssl.SSLContext] = OrderedDict()
        self._key_file: Path | None = None

    @property
    def leaf_key(self) -> EcKey:
        """The one key of every leaf (a fresh key per name would cost a scalar
        multiplication each and buy nothing: it never leaves the daemon)."""
        if self._leaf_key is None:
            self._leaf_key = EcKey.generate()
        return self._leaf_key

    @property
    def file_stem(self) -> str:
        """A name for the CA's file in trust directories (like a real corporate root)."""
        return self.org.lower().replace(" ", "-") + "-root-ca"

    def leaf_pem(self, host: str) -> str:
        """A leaf certificate for *host* (a DNS name or an address), signed by the CA."""
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        start = now - dt.timedelta(days=secrets.randbelow(60) + 1, seconds=secrets.randbelow(86400))
        subject = name((OID_CN, host[:64] or "localhost"))
        der = certificate(
            subject,
            self.name,
            self.leaf_key,
            self.key,
            start,
            # 397 days (the CA/B ceiling): still valid under the time pass's clock,
            # which runs up to 180 days ahead (a 90-day leaf made clients see EXPIRED)
            start + dt.timedelta(days=397),
            [
                _ext(OID_BC, seq(), critical=True),
                _ext(OID_KU, bit_string(b"\x80", 7), critical=True),  # digitalSignature
                _ext(OID_EKU, seq(oid(OID_SERVER_AUTH))),
                _ext(OID_SKI, tlv(0x04, _key_id(self.leaf_key))),
                _ext(OID_AKI, seq(tlv(0x80, self.key_id))),
                _ext(OID_SAN, seq(san_entry(host))),
            ],
        )
        return _pem("CERTIFICATE", der)

    def context(self, host: str) -> ssl.SSLContext:
        """The server context for *host* (cached); raises :class:`LeafBudget` past the
        leaf budget, :class:`OSError` / :class:`ssl.SSLError` when it cannot be built."""
        host = host.lower().rstrip(".")
        ctx = self._contexts.get(host)
        if ctx is not None:
            self._contexts.move_to_end(host)
            return ctx
        if self.issued >= self.max_leaves:
            raise LeafBudget(f"leaf budget of {self.max_leaves} names used up")
        self.issued += 1
        if self._key_file is None:
            self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._key_file = self.workdir / "leaf.key"
            _write_private(self._key_file, self.leaf_key.pem())
        chain = self.workdir / "leaf.pem"
        _write_private(chain, self.leaf_pem(host) + self.ca_pem)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(chain), str(self._key_file))
        ctx.set_alpn_protocols(["http/1.1"])
        with contextlib.suppress(AttributeError, ValueError):
            ctx.num_tickets = 0
        chain.unlink()
        self._contexts[host] = ctx
        if len(self._contexts) > CONTEXT_CACHE:
            self._contexts.popitem(last=False)
        return ctx


class LeafBudget(RuntimeError):
    """No more leaves this run (a flood of distinct names must not cost unbounded CPU)."""


def _write_private(path: Path, text: str) -> None:
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
