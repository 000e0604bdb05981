"""The DNS responder: query parsing and a fake resolver that never says NXDOMAIN."""

from __future__ import annotations

import ipaddress
import random
import socket
import struct
from dataclasses import dataclass

from .config import FAKE_NET, FAKE_NET6_PREFIX, NetConfig

# --------------------------------------------------------------------------- DNS


QTYPES = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    12: "PTR",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    33: "SRV",
    35: "NAPTR",
    43: "DS",
    48: "DNSKEY",
    64: "SVCB",
    65: "HTTPS",
    99: "SPF",
    255: "ANY",
    257: "CAA",
}


class DnsError(ValueError):
    """A DNS message this responder cannot read."""


def _label_text(raw: bytes) -> str:
    """A label in presentation form: printable ASCII kept, the rest as ``\\DDD``."""
    out = []
    for b in raw:
        ch = chr(b)
        if ch in ".\\":
            out.append("\\" + ch)
        elif 0x21 <= b <= 0x7E:
            out.append(ch)
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)


def read_name(msg: bytes, pos: int) -> tuple[list[bytes], int]:
    """The labels of a (possibly compressed) name at *pos*, and the offset after it."""
    labels: list[bytes] = []
    end: int | None = None
    hops = 0
    total = 0
    while True:
        if pos >= len(msg):
            raise DnsError("name runs past the end")
        n = msg[pos]
        if n & 0xC0 == 0xC0:
            if pos + 1 >= len(msg):
                raise DnsError("truncated pointer")
            hops += 1
            if hops > 16:
                raise DnsError("compression loop")
            if end is None:
                end = pos + 2
            pos = ((n & 0x3F) << 8) | msg[pos + 1]
            continue
        if n & 0xC0:
            raise DnsError("bad label type")
        pos += 1
        if n == 0:
            break
        if pos + n > len(msg):
            raise DnsError("label runs past the end")
        labels.append(msg[pos : pos + n])
        total += n + 1
        if total > 255:
            raise DnsError("name longer than 255 bytes")
        pos += n
    return labels, (end if end is not None else pos)


@dataclass
class DnsQuery:
    """The parts of a query the responder needs."""

    ident: int
    flags: int
    questions: list[tuple[list[bytes], int, int]]  # (labels, qtype, qclass)

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF


def parse_query(msg: bytes) -> DnsQuery:
    """Parse a DNS query; raises :class:`DnsError` on anything malformed."""
    if len(msg) < 12:
        raise DnsError("shorter than a DNS header")
    ident, flags, qd, _an, _ns, _ar = struct.unpack("!HHHHHH", msg[:12])
    if flags & 0x8000:
        raise DnsError("a response, not a query")
    if qd == 0:
        raise DnsError("no question")
    pos = 12
    questions = []
    for _ in range(min(qd, 4)):
        labels, pos = read_name(msg, pos)
        if pos + 4 > len(msg):
            raise DnsError("question runs past the end")
        qtype, qclass = struct.unpack("!HH", msg[pos : pos + 4])
        pos += 4
        questions.append((labels, qtype, qclass))
    return DnsQuery(ident, flags, questions)


def name_text(labels: list[bytes]) -> str:
    return ".".join(_label_text(lb) for lb in labels)


def _encode_name(labels: list[bytes]) -> bytes:
    return b"".join(bytes([len(lb)]) + lb for lb in labels) + b"\0"


def build_response(q: DnsQuery, answers: list[tuple[int, bytes]], rcode: int = 0) -> bytes:
    """A response to *q*'s first question with *answers* as (type, rdata), TTL 60."""
    flags = 0x8000 | (q.flags & 0x7900) | 0x0080 | (rcode & 0xF)  # QR, opcode+RD copied, RA
    labels, qtype, qclass = q.questions[0]
    out = struct.pack("!HHHHHH", q.ident, flags, 1, len(answers), 0, 0)
    out += _encode_name(labels) + struct.pack("!HH", qtype, qclass)
    for rtype, rdata in answers:
        out += b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 60, len(rdata)) + rdata
    return out


def formerr(msg: bytes) -> bytes | None:
    """A FORMERR reply to an unreadable query, or None when not even the header is there."""
    if len(msg) < 12 or msg[2] & 0x80:
        return None
    ident, flags = struct.unpack("!HH", msg[:4])
    return struct.pack("!HHHHHH", ident, 0x8000 | (flags & 0x7900) | 0x0080 | 1, 0, 0, 0, 0)


class FakeDns:
    """Every name gets its own stable address in 198.18.0.0/15, so a later connection
    to that address says which name it was for."""

    def __init__(self, net: NetConfig, rng: random.Random | None = None) -> None:
        self.net = net
        self.rng = rng or random.Random()
        self.by_name: dict[str, str] = {}
        self.by_addr: dict[str, str] = {}

    def address(self, name: str) -> str:
        key = name.lower().rstrip(".")
        if key in ("localhost", "localhost.localdomain"):
            return "127.0.0.1"
        if key == self.net.hostname.lower():
            return self.net.address
        found = self.by_name.get(key)
        if found:
            return found
        if len(self.by_name) >= 60000:
            return str(FAKE_NET.network_address + 1)
        size = FAKE_NET.num_addresses
        while True:
            cand = FAKE_NET.network_address + self.rng.randrange(1, size - 1)
            text = str(cand)
            if text not in self.by_addr and not text.endswith((".0", ".255")):
                break
        self.by_name[key] = text
        self.by_addr[text] = key
        return text

    def name_for(self, addr: str) -> str | None:
        """The name an address was handed out for (also for the NAT64 form)."""
        if addr.startswith(FAKE_NET6_PREFIX):
            try:
                v6 = ipaddress.IPv6Address(addr)
                addr = str(ipaddress.IPv4Address(int(v6) & 0xFFFFFFFF))
            except ValueError:
                return None
        return self.by_addr.get(addr)

    def answer(self, labels: list[bytes], qtype: int) -> tuple[list[tuple[int, bytes]], str | None]:
        """(answers, text of the answer) for one question; no NXDOMAIN, ever."""
        name = name_text(labels)
        if qtype in (1, 28, 255):
            v4 = self.address(name)
            if qtype == 1 or qtype == 255:
                return [(1, socket.inet_aton(v4))], v4
            v6 = (
                "::1"
                if v4.startswith("127.")
                else (self.net.address6 if v4 == self.net.address else FAKE_NET6_PREFIX + v4)
            )
            return [(28, socket.inet_pton(socket.AF_INET6, v6))], v6
        if qtype == 12:
            target = self._reverse(name)
            if target:
                return [(12, _encode_name([p.encode() for p in target.split(".") if p]))], target
        return [], None

    def _reverse(self, name: str) -> str | None:
        low = name.lower().rstrip(".")
        if not low.endswith(".in-addr.arpa"):
            return None
        parts = low[: -len(".in-addr.arpa")].split(".")
        if len(parts) != 4:
            return None
        addr = ".".join(reversed(parts))
        if addr == self.net.address or addr.startswith("127."):
            return self.net.hostname if addr != "127.0.0.1" else "localhost"
        return self.by_addr.get(addr)
