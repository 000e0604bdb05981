"""Transparent sinkhole: every outbound TCP/UDP attempt of the candidate lands here.

Runs inside the sandbox only, as root, standard library only (see the package
docstring). ``agent setup`` calls :func:`start` before any candidate code runs:

1. it binds the listeners on loopback (TCP, UDP, DNS over UDP and TCP; IPv4 and
   IPv6) on random high ports;
2. it forks a daemon (:class:`Daemon`, double fork, pid in :data:`PID_FILE`) that
   serves them for the rest of the container's life, across phase execs;
3. it gives the namespace a LAN-looking interface — a veth pair, because the
   ``dummy`` link type does not exist on every kernel and both veth ends stay in
   this namespace, so nothing can ever be forwarded out — an address, a default
   route, and the NAT rules (:func:`nat_rules`) that send every DNS query
   (whichever resolver it names, 127.x included), every TCP connection and
   every UDP datagram that is not for a local address to the listeners.

Redirection only decides *who answers*: the namespace has no route to anything
outside it, with or without these rules. The rules need ``CAP_NET_ADMIN``; the
container grants it to root only: the candidate runs under ``setpriv`` with an
empty bounding set and no-new-privs, and the agent drops NET_ADMIN from its own
sets before any phase (:func:`guard.drop_capabilities`), so neither the
candidate nor strace ever holds it. A sidecar container sharing the namespace
would keep NET_ADMIN out of the sandbox container entirely, but costs a second
container start (~0.5 s) per run; the capability is confined to root here.

The daemon is single-threaded (one selector loop): it needs no new pid when a
fork bomb has used them all, and every flow is bounded — bytes kept
(``capture_bytes``), concurrent flows (``max_flows``: a new connection evicts the
flow that has been quiet longest), records written (``max_records``), per-flow idle time and
lifetime, and a byte budget for everything written to the output directory.
Limits that bite are recorded (``truncated``, ``close_reason``, the final
``stats`` record), never silently applied.

Output (collected with the traces): ``net.jsonl``, one JSON object per line with
``kind`` ``dns`` | ``tcp`` | ``udp`` | ``stats`` | ``problem``, each tagged with
the phase that was running (read from :data:`PHASE_FILE`, which the agent
writes when a phase starts); ``net-tcp-N.bin``, the first bytes the client sent
on flow N; ``sinkhole.json``, what :func:`start` set up.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import random
import re
import selectors
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import traceback
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

from . import guard, passes, tlsca, trust

STATE_DIR = Path("/var/lib/pkgsandbox")
PHASE_FILE = STATE_DIR / "phase"
PID_FILE = STATE_DIR / "sinkhole.pid"
TLS_DIR = STATE_DIR / "tls"  # the leaves' key (root-only tmpfs, never collected)
SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h; IP6T_SO_ORIGINAL_DST has the same value
FAKE_NET = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544 benchmarking: never routed
FAKE_NET6_PREFIX = "64:ff9b::"  # the NAT64 well-known prefix, + the fake IPv4 address
TLS_ALERT_HANDSHAKE_FAILURE = b"\x15\x03\x03\x00\x02\x02\x28"
METADATA_HOSTS = frozenset(
    {
        "169.254.169.254",
        "fd00:ec2::254",
        "169.254.170.2",
        "100.100.100.200",
        "metadata.google.internal",
        "metadata",
    }
)


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Limits:
    """Bounds of the capture (``plan["sinkhole"]`` overrides any of them)."""

    capture_bytes: int = 65536  # client bytes kept per TCP flow
    udp_capture_bytes: int = 4096  # bytes kept per datagram
    body_keep: int = 16384  # de-chunked HTTP body bytes kept per request (in the record)
    max_flows: int = 256  # concurrent TCP flows; a new one evicts the longest-quiet one
    max_records: int = 2000  # tcp + udp records written; more are only counted
    max_dns_records: int = 5000
    idle_seconds: float = 10.0  # a flow silent this long is closed
    flow_seconds: float = 30.0  # a flow is closed after this long, whatever it does
    total_bytes: int = 32 << 20  # everything written to the output directory
    max_requests: int = 16  # HTTP requests parsed per flow
    lookup_seconds: float = 3.0  # total time spent finding which process owns a socket

    @classmethod
    def from_plan(cls, conf: dict[str, Any]) -> Limits:
        """Limits from the plan, each clamped to a sane range (bad values fall back)."""
        out: dict[str, Any] = {}
        for name, default in cls().__dict__.items():
            value = conf.get(name, default)
            try:
                num = type(default)(value)
            except (TypeError, ValueError):
                num = default
            out[name] = max(type(default)(1), min(num, type(default)(default * 64)))
        return cls(**out)


@dataclass(frozen=True)
class NetConfig:
    """The LAN the sandbox pretends to be on (chosen per run by the host)."""

    address: str = "192.168.1.57"
    prefix: int = 24
    gateway: str = "192.168.1.1"
    address6: str = "fd42:1:2:3::57"
    gateway6: str = "fe80::1"
    hostname: str = "localhost"

    @classmethod
    def from_plan(cls, plan: dict[str, Any]) -> NetConfig:
        net = dict(plan.get("sinkhole", {}).get("net", {}))
        base = cls()
        return cls(
            address=str(net.get("address", base.address)),
            prefix=int(net.get("prefix", base.prefix)),
            gateway=str(net.get("gateway", base.gateway)),
            address6=str(net.get("address6", base.address6)),
            gateway6=str(net.get("gateway6", base.gateway6)),
            hostname=str(plan.get("hostname", base.hostname)),
        )


@dataclass
class Ports:
    tcp: int
    udp: int
    dns: int


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


# --------------------------------------------------------------------------- TLS


def parse_client_hello(buf: bytes) -> tuple[str, dict[str, Any]]:
    """``("need", {})`` until a whole ClientHello is there, then ``("ok", info)`` with
    ``sni``, ``alpn``, ``version``; ``("bad", {"error": ...})`` for anything else."""
    hs = bytearray()
    pos = 0
    while True:
        if len(buf) - pos < 5:
            if len(hs) < 4 or len(hs) < 4 + int.from_bytes(hs[1:4], "big"):
                return "need", {}
            return _hello(hs)
        ctype, major, minor = buf[pos], buf[pos + 1], buf[pos + 2]
        length = int.from_bytes(buf[pos + 3 : pos + 5], "big")
        if ctype != 22 or major != 3:
            return "bad", {"error": f"record type {ctype} version {major}.{minor}: not a TLS handshake"}
        if length == 0 or length > 18432:
            return "bad", {"error": f"record length {length}"}
        if len(buf) - pos - 5 < length:
            return "need", {}
        hs += buf[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if len(hs) >= 4:
            if hs[0] != 1:
                return "bad", {"error": f"handshake type {hs[0]}, not ClientHello"}
            need = 4 + int.from_bytes(hs[1:4], "big")
            if need > 65536:
                return "bad", {"error": "ClientHello longer than 64 KiB"}
            if len(hs) >= need:
                return _hello(hs[:need])


_TLS_VERSIONS = {
    0x0300: "SSL 3.0",
    0x0301: "TLS 1.0",
    0x0302: "TLS 1.1",
    0x0303: "TLS 1.2",
    0x0304: "TLS 1.3",
}


def _hello(hs: bytes | bytearray) -> tuple[str, dict[str, Any]]:
    try:
        return "ok", _hello_fields(bytes(hs))
    except (IndexError, ValueError, struct.error) as exc:
        return "bad", {"error": f"malformed ClientHello: {exc}"}


def _hello_fields(hs: bytes) -> dict[str, Any]:
    body = hs[4:]
    p = 0
    version = int.from_bytes(body[p : p + 2], "big")
    p += 2 + 32
    p += 1 + body[p]  # session id
    cs_len = int.from_bytes(body[p : p + 2], "big")
    p += 2 + cs_len
    p += 1 + body[p]  # compression methods
    if p > len(body):
        raise ValueError("runs past the end")
    info: dict[str, Any] = {"sni": None, "alpn": [], "version": _TLS_VERSIONS.get(version, hex(version))}
    if p + 2 > len(body):
        return info
    ext_end = p + 2 + int.from_bytes(body[p : p + 2], "big")
    p += 2
    while p + 4 <= min(ext_end, len(body)):
        etype, elen = struct.unpack("!HH", body[p : p + 4])
        data = body[p + 4 : p + 4 + elen]
        p += 4 + elen
        if etype == 0 and len(data) >= 5:  # server_name
            q = 2
            while q + 3 <= len(data):
                kind, n = data[q], int.from_bytes(data[q + 1 : q + 3], "big")
                if kind == 0:
                    info["sni"] = data[q + 3 : q + 3 + n].decode("ascii", "backslashreplace")
                    break
                q += 3 + n
        elif etype == 16 and len(data) >= 2:  # ALPN
            q = 2
            while q < len(data):
                n = data[q]
                info["alpn"].append(data[q + 1 : q + 1 + n].decode("ascii", "backslashreplace"))
                q += 1 + n
        elif etype == 43 and data:  # supported_versions
            vs = [int.from_bytes(data[i : i + 2], "big") for i in range(1, 1 + data[0], 2)]
            known = [v for v in vs if v in _TLS_VERSIONS]
            if known:
                info["version"] = _TLS_VERSIONS[max(known)]
    return info


# --------------------------------------------------------------------------- HTTP

_METHOD = re.compile(rb"^[A-Z][A-Z-]{2,15} ")
_REQUEST_LINE = re.compile(rb"^([A-Z][A-Z-]{0,15}) (\S+) (HTTP/\d(?:\.\d)?)$")
MAX_HEAD = 65536
MAX_HEADERS = 64
MAX_VALUE = 1024


def looks_like_http(head: bytes) -> bool:
    return bool(_METHOD.match(head)) or head.startswith(b"PRI * HTTP/2")


def http_response(status: str = "200 OK", close: bool = False) -> bytes:
    """What an ordinary nginx answers with an empty body."""
    return (
        f"HTTP/1.1 {status}\r\nServer: nginx\r\nDate: {formatdate(now(), usegmt=True)}\r\n"
        "Content-Type: text/html; charset=utf-8\r\nContent-Length: 0\r\n"
        f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
    ).encode()


def now() -> float:
    """The clock the sinkhole answers with: the time-travel pass's, while it runs."""
    return time.time() + passes.clock_shift()


NTP_EPOCH = 2208988800  # 1900-01-01 → 1970-01-01


def _ntp_stamp(t: float) -> bytes:
    return struct.pack("!II", int(t) + NTP_EPOCH, int((t % 1) * (1 << 32)) & 0xFFFFFFFF)


def ntp_reply(request: bytes, t: float | None = None) -> bytes | None:
    """A stratum-2 server's answer to an NTP/SNTP client request (mode 3), or None
    when *request* is not one. Its clock is :func:`now` (the shifted one in a
    time-travel pass), so a payload that asks the network for the date sees the
    same date as its own clock."""
    if len(request) < 48 or request[0] & 0x07 != 3:
        return None
    version = (request[0] >> 3) & 0x07 or 4
    t = now() if t is None else t
    return (
        bytes([(version << 3) | 4, 2, request[2], 0xEC])
        + struct.pack("!II", 0x00000200, 0x00000400)
        + bytes([192, 0, 2, 123])
        + _ntp_stamp(t - 30)
        + request[40:48]
        + _ntp_stamp(t)
        + _ntp_stamp(t)
    )


class HttpStream:
    """Incremental HTTP/1.x request parser (pipelining, Content-Length, chunked,
    ``Expect: 100-continue``, CONNECT) that says what to answer and when."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.requests: list[dict[str, Any]] = []
        self.buf = bytearray()
        self.state = "head"  # head | body | chunk_size | chunk_data | chunk_crlf | trailer | tunnel | stop
        self.remaining = 0
        self.current: dict[str, Any] | None = None
        self.body = bytearray()
        self.close_after = False
        self.leftover = b""  # bytes after CONNECT's request, for the tunnel

    def feed(self, data: bytes) -> list[bytes]:
        """Consume client bytes; returns the responses to send, in order."""
        replies: list[bytes] = []
        self.buf += data
        while self.buf and self.state not in ("tunnel", "stop"):
            before = (self.state, len(self.buf))
            getattr(self, "_" + self.state)(replies)
            if (self.state, len(self.buf)) == before:
                break  # needs more bytes
        if self.state == "stop":
            self.buf.clear()
        return replies

    # each state handler consumes from self.buf
    def _head(self, replies: list[bytes]) -> None:
        end = self.buf.find(b"\r\n\r\n")
        sep = 4
        if end < 0:
            end = self.buf.find(b"\n\n")
            sep = 2
        if end < 0:
            if len(self.buf) > MAX_HEAD:
                self._begin(bytes(self.buf[:MAX_HEAD]), complete=False)
                self.state = "stop"
            return
        head = bytes(self.buf[:end])
        del self.buf[: end + sep]
        req = self._begin(head, complete=True)
        if req is None:
            self.state = "stop"
            return
        hdrs = {k.lower(): v for k, v in req["headers"]}
        if req["version"] == "HTTP/1.0" or "close" in hdrs.get("connection", "").lower():
            self.close_after = True
        if req["method"] == "CONNECT":
            replies.append(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self._done(replies, respond=False)
            self.state = "tunnel"
            self.leftover = bytes(self.buf)
            self.buf.clear()
            return
        if "100-continue" in hdrs.get("expect", "").lower():
            replies.append(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            self.state = "chunk_size"
            return
        try:
            length = int(hdrs.get("content-length", "0").strip() or 0)
        except ValueError:
            length = 0
        if length > 0:
            self.remaining = length
            self.state = "body"
        else:
            self._done(replies)

    def _body(self, replies: list[bytes]) -> None:
        take = min(self.remaining, len(self.buf))
        self._keep(self.buf[:take])
        del self.buf[:take]
        self.remaining -= take
        if self.remaining == 0:
            self._done(replies)

    def _chunk_size(self, replies: list[bytes]) -> None:
        end = self.buf.find(b"\n")
        if end < 0:
            if len(self.buf) > 1024:
                self._mark("bad chunk size line")
                self.state = "stop"
            return
        line = bytes(self.buf[:end]).strip().split(b";", 1)[0]
        del self.buf[: end + 1]
        try:
            size = int(line, 16)
        except ValueError:
            self._mark("bad chunk size")
            self.state = "stop"
            return
        if size == 0:
            self.state = "trailer"
        else:
            self.remaining = size
            self.state = "chunk_data"

    def _chunk_data(self, replies: list[bytes]) -> None:
        take = min(self.remaining, len(self.buf))
        self._keep(self.buf[:take])
        del self.buf[:take]
        self.remaining -= take
        if self.remaining == 0:
            self.state = "chunk_crlf"

    def _chunk_crlf(self, replies: list[bytes]) -> None:
        end = self.buf.find(b"\n")
        if end < 0:
            if len(self.buf) > 2:
                self.state = "stop"
            return
        del self.buf[: end + 1]
        self.state = "chunk_size"

    def _trailer(self, replies: list[bytes]) -> None:
        end = self.buf.find(b"\n")
        if end < 0:
            if len(self.buf) > 8192:
                self.state = "stop"
            return
        line = bytes(self.buf[:end]).strip()
        del self.buf[: end + 1]
        if not line:
            self._done(replies)

    def _begin(self, head: bytes, complete: bool) -> dict[str, Any] | None:
        lines = head.replace(b"\r\n", b"\n").split(b"\n")
        m = _REQUEST_LINE.match(lines[0].strip())
        if not m:
            self._mark("not an HTTP request line: " + lines[0][:200].decode("latin-1"))
            return None
        headers: list[list[str]] = []
        extra = 0
        for raw in lines[1:]:
            if b":" not in raw:
                continue
            if len(headers) >= MAX_HEADERS:
                extra += 1
                continue
            k, _, v = raw.partition(b":")
            headers.append([k.strip().decode("latin-1")[:200], v.strip().decode("latin-1")[:MAX_VALUE]])
        req: dict[str, Any] = {
            "method": m.group(1).decode(),
            "target": m.group(2).decode("latin-1")[:4096],
            "version": m.group(3).decode(),
            "headers": headers,
            "headers_dropped": extra,
            "complete": complete,
            "body_bytes": 0,
            "body_b64": "",
            "body_truncated": False,
        }
        self.current = req
        self.body = bytearray()
        if len(self.requests) < self.limits.max_requests:
            self.requests.append(req)
        return req

    def _keep(self, chunk: bytes | bytearray) -> None:
        if self.current is None:
            return
        self.current["body_bytes"] += len(chunk)
        room = self.limits.body_keep - len(self.body)
        if room > 0:
            self.body += chunk[:room]
        if len(chunk) > max(room, 0):
            self.current["body_truncated"] = True

    def _done(self, replies: list[bytes], respond: bool = True) -> None:
        if self.current is not None:
            self.current["body_b64"] = base64.b64encode(bytes(self.body)).decode()
            self.current["complete"] = True
        self.current = None
        self.body = bytearray()
        self.state = "head"
        if respond:
            replies.append(http_response(close=self.close_after))

    def _mark(self, why: str) -> None:
        if self.requests:
            self.requests[-1].setdefault("errors", []).append(why[:300])
        else:
            self.requests.append(
                {
                    "method": "",
                    "target": "",
                    "version": "",
                    "headers": [],
                    "complete": False,
                    "body_bytes": 0,
                    "body_b64": "",
                    "body_truncated": False,
                    "errors": [why[:300]],
                }
            )

    def finish(self) -> None:
        """At close: keep what a half-sent request had (slowloris, cut bodies)."""
        if self.current is not None:
            self.current["body_b64"] = base64.b64encode(bytes(self.body)).decode()
            self.current["complete"] = False
        elif self.state == "head" and self.buf:
            self._begin(bytes(self.buf[:MAX_HEAD]), complete=False)


# --------------------------------------------------------------------------- SMTP (server speaks first)

BANNERS = {
    21: b"220 (vsFTPd 3.0.3)\r\n",
    22: b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
    25: b"220 mail ESMTP Postfix (Debian/GNU)\r\n",
    110: b"+OK Dovecot (Debian) ready.\r\n",
    143: b"* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE AUTH=PLAIN] "
    b"Dovecot ready.\r\n",
    465: b"",
    587: b"220 mail ESMTP Postfix (Debian/GNU)\r\n",
    2525: b"220 mail ESMTP Postfix (Debian/GNU)\r\n",
}
SMTP_PORTS = frozenset({25, 587, 2525})
IMPLICIT_TLS = {465: 25, 993: 143, 995: 110}  # what speaks inside TLS on these ports


class SmtpStream:
    """Just enough of an SMTP server for a client to deliver its message."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.in_data = False
        self.commands: list[str] = []

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        self.buf += data
        while True:
            if self.in_data:
                end = self.buf.find(b"\r\n.\r\n")
                if end < 0:
                    if len(self.buf) > 8:
                        del self.buf[:-8]  # the kept capture has the bytes; keep only a tail to find the end
                    return out
                del self.buf[: end + 5]
                self.in_data = False
                out.append(b"250 2.0.0 Ok: queued\r\n")
                continue
            end = self.buf.find(b"\n")
            if end < 0:
                if len(self.buf) > 4096:
                    self.buf.clear()
                return out
            line = bytes(self.buf[:end]).strip()
            del self.buf[: end + 1]
            verb = line.split(b" ", 1)[0].upper()
            if len(self.commands) < 64:
                self.commands.append(line[:200].decode("latin-1"))
            if verb in (b"EHLO", b"HELO"):
                out.append(
                    b"250-mail\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN\r\n"
                    b"250 8BITMIME\r\n"
                    if verb == b"EHLO"
                    else b"250 mail\r\n"
                )
            elif verb == b"DATA":
                self.in_data = True
                out.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif verb == b"AUTH":
                out.append(b"235 2.7.0 Authentication successful\r\n")
            elif verb == b"QUIT":
                out.append(b"221 2.0.0 Bye\r\n")
            else:
                out.append(b"250 2.0.0 Ok\r\n")


# --------------------------------------------------------------------------- who owns a socket


class SocketOwners:
    """Which process owns the client end of a flow (by its local port), found in
    /proc while the socket is open; bounded in total time (a flood of sockets
    must not turn into a flood of /proc scans)."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.spent = 0.0
        self.inodes: dict[int, int] = {}
        self.me = os.getpid()

    def lookup(self, proto: str, port: int) -> tuple[int | None, list[str]]:
        if self.spent >= self.budget:
            return None, []
        t0 = time.monotonic()
        try:
            inode = self._inode(proto, port)
            if inode is None:
                return None, []
            pid = self.inodes.get(inode)
            if pid is None or not os.path.exists(f"/proc/{pid}"):
                self._scan()
                pid = self.inodes.get(inode)
            if pid is None:
                return None, []
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    argv = [a.decode("utf-8", "replace") for a in fh.read(8192).split(b"\0") if a]
            except OSError:
                argv = []
            return pid, argv[:32]
        except Exception:
            return None, []
        finally:
            self.spent += time.monotonic() - t0

    @staticmethod
    def _inode(proto: str, port: int) -> int | None:
        best: int | None = None
        for fam in ("", "6"):
            try:
                with open(f"/proc/net/{proto}{fam}") as fh:
                    next(fh, None)
                    for line in fh:
                        cols = line.split()
                        if len(cols) < 10:
                            continue
                        if int(cols[1].rsplit(":", 1)[1], 16) != port:
                            continue
                        inode = int(cols[9])
                        if inode and cols[7] != "0":  # the candidate's end, not ours (uid 0)
                            return inode
                        best = best or inode or None
            except (OSError, ValueError, IndexError):
                continue
        return best

    def _scan(self) -> None:
        found: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == self.me:
                continue
            try:
                fds = os.listdir(f"/proc/{entry}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    link = os.readlink(f"/proc/{entry}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:["):
                    found.setdefault(int(link[8:-1]), int(entry))
        self.inodes = found


# --------------------------------------------------------------------------- recording


class Recorder:
    """net.jsonl and payload files, within the record and byte budgets."""

    def __init__(self, out: Path, limits: Limits) -> None:
        self.out = out
        self.limits = limits
        self.fh = (out / "net.jsonl").open("a", encoding="utf-8")
        self.written = 0
        self.flow_records = 0
        self.dns_records = 0
        self.suppressed = {"tcp": 0, "udp": 0, "dns": 0}
        self.budget_hit = False

    def room(self, n: int) -> bool:
        if self.written + n > self.limits.total_bytes:
            self.budget_hit = True
            return False
        return True

    def write(self, rec: dict[str, Any]) -> bool:
        kind = rec.get("kind", "")
        if kind in ("tcp", "udp"):
            if self.flow_records >= self.limits.max_records:
                self.suppressed[kind] += 1
                return False
            self.flow_records += 1
        elif kind == "dns":
            if self.dns_records >= self.limits.max_dns_records:
                self.suppressed["dns"] += 1
                return False
            self.dns_records += 1
        line = json.dumps(rec, separators=(",", ":")) + "\n"
        if not self.room(len(line)) and kind not in ("stats", "problem"):
            keys = ("kind", "id", "t", "phase", "src", "dst", "bytes", "name", "qtype")
            slim: dict[str, Any] = {k: rec[k] for k in keys if k in rec}
            slim["slim"] = True
            line = json.dumps(slim, separators=(",", ":")) + "\n"
        self.written += len(line)
        self.fh.write(line)
        self.fh.flush()
        return True

    def payload(self, name: str, data: bytes) -> str | None:
        if not data or not self.room(len(data)):
            return None
        (self.out / name).write_bytes(data)
        self.written += len(data)
        return name

    def close(self) -> None:
        self.fh.close()


def current_phase(path: Path = PHASE_FILE) -> str:
    """The phase the agent is running (``setup`` before the first)."""
    try:
        return path.read_text().strip()[:32] or "setup"
    except OSError:
        return "setup"


def _b64(data: bytes | bytearray) -> str:
    return base64.b64encode(bytes(data)).decode()


def _hostport(addr: tuple[Any, ...]) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _ssl_reason(exc: BaseException) -> str:
    """The short OpenSSL reason (``TLSV1_ALERT_UNKNOWN_CA``) or the message."""
    reason = getattr(exc, "reason", None)
    return str(reason or exc or type(exc).__name__)[:300]


def _record_proto(flow: Flow) -> str:
    """``https`` for HTTP inside a terminated TLS session, ``tls`` for anything else in one."""
    if flow.tls_up:
        return "https" if flow.proto == "http" else "tls"
    if flow.tls is not None:
        return "tls"
    return flow.proto or ("empty" if not flow.total else "unknown")


def original_dst(sock: socket.socket) -> tuple[str, int] | None:
    """Where the client meant to connect before REDIRECT (None: it connected to us)."""
    try:
        if sock.family == socket.AF_INET:
            raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
            port, ip = struct.unpack("!2xH4s8x", raw)
            return socket.inet_ntoa(ip), port
        raw = sock.getsockopt(socket.IPPROTO_IPV6, SO_ORIGINAL_DST, 28)
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), struct.unpack("!H", raw[2:4])[0]
    except OSError:
        return None


# --------------------------------------------------------------------------- flows


@dataclass
class Flow:
    """One accepted TCP connection."""

    fid: int
    sock: socket.socket
    kind: str  # "tcp" or "dns" (DNS over TCP)
    src: tuple[Any, ...]
    dst: tuple[str, int]
    phase: str
    opened: float
    mono: float
    pid: int | None = None
    argv: list[str] = field(default_factory=list)
    last: float = 0.0
    total: int = 0
    capture: bytearray = field(default_factory=bytearray)
    proto: str = ""  # "", http, tls, dns, smtp, unknown
    http: HttpStream | None = None
    smtp: SmtpStream | None = None
    tls_buf: bytearray = field(default_factory=bytearray)
    tls: dict[str, Any] | None = None
    http_done: HttpStream | None = None  # the request stream before a CONNECT tunnel
    sniff: bytearray = field(default_factory=bytearray)  # bytes before the protocol is known
    pending: bytearray = field(default_factory=bytearray)
    write_shut: bool = False
    dns_buf: bytearray = field(default_factory=bytearray)
    errors: list[str] = field(default_factory=list)
    closing_at: float | None = None
    tls_obj: ssl.SSLObject | None = None  # the terminated TLS session (see Daemon._tls_start)
    tls_in: ssl.MemoryBIO | None = None
    tls_out: ssl.MemoryBIO | None = None
    tls_up: bool = False  # handshake done: what follows is decrypted
    plain: bytearray = field(default_factory=bytearray)  # decrypted client bytes kept
    plain_total: int = 0


class Daemon:
    """The selector loop serving every listener (see the module docstring)."""

    def __init__(
        self,
        socks: dict[str, list[socket.socket]],
        limits: Limits,
        net: NetConfig,
        out: Path,
        phase_file: Path = PHASE_FILE,
        authority: tlsca.Authority | None = None,
    ) -> None:
        self.socks = socks
        self.authority = authority
        self.phase_file = phase_file
        self.wake_r, self.wake_w = socket.socketpair()
        self.limits = limits
        self.net = net
        self.rec = Recorder(out, limits)
        self.fake = FakeDns(net)
        self.owners = SocketOwners(limits.lookup_seconds)
        self.sel = selectors.DefaultSelector()
        self.flows: dict[int, Flow] = {}
        self.next_id = 0
        self.stopping = False
        self.stats: dict[str, int] = {
            "tcp_accepted": 0,
            "tcp_evicted": 0,
            "udp_datagrams": 0,
            "dns_queries": 0,
            "dns_malformed": 0,
            "tls_terminated": 0,
            "tls_refused": 0,
            "errors": 0,
        }
        self.problems = 0

    # -- plumbing
    def run(self, signals: bool = True) -> None:
        """Serve until SIGTERM (or :meth:`request_stop`), then write what is still open."""
        if signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        self.wake_r.setblocking(False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, ("wake", None))
        for kind, socks in self.socks.items():
            for s in socks:
                s.setblocking(False)
                self.sel.register(s, selectors.EVENT_READ, (kind, None))
        while not self.stopping:
            try:
                events = self.sel.select(timeout=0.25)
            except InterruptedError:
                continue
            for key, mask in events:
                kind, flow = key.data
                try:
                    if kind == "wake":
                        continue
                    if kind in ("tcp", "dns_tcp"):
                        self._accept(key.fileobj, "tcp" if kind == "tcp" else "dns")  # type: ignore[arg-type]
                    elif kind == "udp":
                        self._udp(key.fileobj)  # type: ignore[arg-type]
                    elif kind == "dns_udp":
                        self._dns_udp(key.fileobj)  # type: ignore[arg-type]
                    elif flow is not None:
                        if mask & selectors.EVENT_WRITE:
                            self._flush(flow)
                        if mask & selectors.EVENT_READ and flow.fid in self.flows:
                            self._read(flow)
                except Exception as exc:  # one bad flow must never stop the listener
                    self._problem(f"{kind}: {type(exc).__name__}: {exc}")
                    if flow is not None and flow.fid in self.flows:
                        self._finish(flow, "error")
            self._sweep(time.monotonic())
        for flow in list(self.flows.values()):
            self._finish(flow, "shutdown")
        self.rec.write(
            {
                "kind": "stats",
                "t": time.time(),
                **self.stats,
                "suppressed": self.rec.suppressed,
                "budget_hit": self.rec.budget_hit,
                "lookup_seconds": round(self.owners.spent, 3),
            }
        )
        self.rec.close()

    def _on_signal(self, *_: object) -> None:
        self.request_stop()

    def request_stop(self) -> None:
        """Stop serving (from a signal handler or another thread)."""
        self.stopping = True
        with contextlib.suppress(OSError):
            self.wake_w.send(b"x")

    def _problem(self, msg: str) -> None:
        self.stats["errors"] += 1
        self.problems += 1
        if self.problems <= 50:
            self.rec.write(
                {
                    "kind": "problem",
                    "t": time.time(),
                    "msg": msg[:500],
                    "trace": traceback.format_exc(limit=4)[-1500:],
                }
            )

    # -- TCP
    def _accept(self, lsock: socket.socket, kind: str) -> None:
        for _ in range(64):
            try:
                conn, src = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: stop accepting this round
                self._problem(f"accept: {exc}")
                return
            now = time.monotonic()
            dst = original_dst(conn) or tuple(conn.getsockname()[:2])
            self.next_id += 1
            self.stats["tcp_accepted"] += 1
            phase = current_phase(self.phase_file)
            if len(self.flows) >= self.limits.max_flows:
                # Full: close the flow that has been quiet longest rather than refuse the
                # new one, so that a flood of idle connections cannot blind the sinkhole
                # to the one that carries the data.
                self.stats["tcp_evicted"] += 1
                self._finish(min(self.flows.values(), key=lambda f: f.last), "evicted")
            pid, argv = self.owners.lookup("tcp", int(src[1]))
            conn.setblocking(False)
            flow = Flow(
                self.next_id,
                conn,
                kind,
                tuple(src),
                (str(dst[0]), int(dst[1])),
                phase,
                time.time(),
                now,
                pid,
                argv,
                last=now,
            )
            self.flows[flow.fid] = flow
            self.sel.register(conn, selectors.EVENT_READ, ("flow", flow))
            if kind == "dns":
                flow.proto = "dns"
            elif flow.dst[1] in BANNERS and BANNERS[flow.dst[1]]:
                self._send(flow, BANNERS[flow.dst[1]])
                flow.proto = "smtp" if flow.dst[1] in SMTP_PORTS else "unknown"
                if flow.proto == "smtp":
                    flow.smtp = SmtpStream()

    def _read(self, flow: Flow) -> None:
        try:
            data = flow.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._finish(flow, "reset" if isinstance(exc, ConnectionResetError) else "error")
            return
        if not data:
            self._finish(flow, "eof")
            return
        flow.last = time.monotonic()
        flow.total += len(data)
        room = self.limits.capture_bytes - len(flow.capture)
        if room > 0:
            flow.capture += data[:room]
        self._incoming(flow, data)

    def _incoming(self, flow: Flow, data: bytes) -> None:
        """Client bytes: through the TLS session when one was terminated."""
        if flow.tls_obj is not None:
            self._tls_feed(flow, data)
        else:
            self._protocol(flow, data)

    def _protocol(self, flow: Flow, data: bytes) -> None:
        if flow.proto == "":
            flow.sniff += data
            head = bytes(flow.sniff[:16])
            if head[:1] == b"\x16":
                flow.proto = "tls"
            elif looks_like_http(head):
                flow.proto = "http"
                flow.http = HttpStream(self.limits)
            elif len(head) >= 16 or b" " in head or b"\n" in head or not head[:1].isupper():
                flow.proto = "unknown"
            else:
                return  # a method name arriving byte by byte: wait for more
            data = bytes(flow.sniff)
            flow.sniff = bytearray()
        if flow.proto == "http" and flow.http is not None:
            for reply in flow.http.feed(data):
                self._send(flow, reply)
            if flow.http.state == "tunnel":
                # CONNECT: what follows is whatever the client tunnels (usually TLS)
                flow.http_done, flow.http = flow.http, None
                flow.proto = ""
                if flow.http_done.leftover:
                    self._protocol(flow, flow.http_done.leftover)
            elif flow.http.close_after and flow.http.state == "head" and not flow.http.buf:
                self._shut_write(flow)  # HTTP/1.0 or "Connection: close": answered, done
        elif flow.proto == "tls" and flow.tls is None:
            if len(flow.tls_buf) < 70000:
                flow.tls_buf += data
            status, info = parse_client_hello(bytes(flow.tls_buf))
            if status != "need" or len(flow.tls_buf) >= 70000:
                flow.tls = info if status == "ok" else {"error": info.get("error", "incomplete ClientHello")}
                hello, flow.tls_buf = bytes(flow.tls_buf), bytearray()
                if status == "ok" and self.authority is not None and self._tls_start(flow, hello):
                    return
                self._send(flow, TLS_ALERT_HANDSHAKE_FAILURE)
                self._shut_write(flow)
        elif flow.proto == "dns":
            self._dns_tcp(flow, data)
        elif flow.proto == "smtp" and flow.smtp is not None:
            for reply in flow.smtp.feed(data):
                self._send(flow, reply)

    # -- TLS termination
    def _tls_start(self, flow: Flow, hello: bytes) -> bool:
        """Answer the ClientHello as the server it named, with a leaf of the run's CA
        for its SNI (the original destination address without SNI). False: not
        possible (no leaf), the caller refuses as before."""
        assert self.authority is not None and flow.tls is not None
        host = flow.tls.get("sni") or flow.dst[0]
        try:
            ctx = self.authority.context(str(host))
        except (tlsca.LeafBudget, OSError, ssl.SSLError, ValueError) as exc:
            flow.tls["handshake_error"] = f"no certificate for {str(host)[:100]}: {exc}"[:300]
            return False
        flow.tls_in, flow.tls_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        flow.tls_obj = ctx.wrap_bio(flow.tls_in, flow.tls_out, server_side=True)
        self._tls_feed(flow, hello)
        return True

    def _tls_feed(self, flow: Flow, data: bytes) -> None:
        obj, tin = flow.tls_obj, flow.tls_in
        assert obj is not None and tin is not None and flow.tls is not None
        if data:
            tin.write(data)
        if not flow.tls_up:
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                self._tls_flush(flow)
                return
            except (ssl.SSLError, OSError) as exc:
                # the usual case: the client does not trust the CA (pinning, its own
                # store) and says so with an alert; that reason is the record
                self.stats["tls_refused"] += 1
                flow.tls["handshake_error"] = _ssl_reason(exc)
                self._tls_flush(flow)
                flow.tls_obj = None
                self._shut_write(flow)
                return
            flow.tls_up = True
            self.stats["tls_terminated"] += 1
            flow.tls["intercepted"] = True
            flow.tls["negotiated"] = {
                "version": obj.version() or "",
                "alpn": obj.selected_alpn_protocol() or "",
                "cipher": (obj.cipher() or ("",))[0],
            }
            flow.proto = ""  # sniff again: what the client says inside
            inner = IMPLICIT_TLS.get(flow.dst[1])
            if inner is not None:
                self._send(flow, BANNERS[inner])
                flow.proto = "smtp" if inner in SMTP_PORTS else "unknown"
                flow.smtp = SmtpStream() if flow.proto == "smtp" else None
        while flow.tls_obj is not None:
            try:
                plain = obj.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # close_notify
                self._shut_write(flow)
                break
            except (ssl.SSLError, OSError) as exc:
                flow.errors.append(f"TLS: {_ssl_reason(exc)}")
                flow.tls_obj = None
                self._shut_write(flow)
                break
            if not plain:
                break
            flow.plain_total += len(plain)
            room = self.limits.capture_bytes - len(flow.plain)
            if room > 0:
                flow.plain += plain[:room]
            self._protocol(flow, plain)
        self._tls_flush(flow)

    def _tls_flush(self, flow: Flow) -> None:
        """Move what the TLS session wrote (handshake, records, alerts) to the socket."""
        if flow.tls_out is not None and flow.tls_out.pending:
            self._send_raw(flow, flow.tls_out.read())

    def _send(self, flow: Flow, data: bytes) -> None:
        if flow.tls_up and flow.tls_obj is not None:
            if flow.write_shut or flow.closing_at is not None:
                return
            try:
                flow.tls_obj.write(data)
            except (ssl.SSLError, OSError) as exc:
                flow.errors.append(f"TLS write: {_ssl_reason(exc)}")
                return
            self._tls_flush(flow)
            return
        self._send_raw(flow, data)

    def _send_raw(self, flow: Flow, data: bytes) -> None:
        if flow.write_shut:
            return
        if len(flow.pending) + len(data) > 65536:
            flow.errors.append("reply dropped: client does not read")
            return
        flow.pending += data
        self._flush(flow)

    def _flush(self, flow: Flow) -> None:
        while flow.pending:
            try:
                n = flow.sock.send(flow.pending)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                flow.pending.clear()
                break
            del flow.pending[:n]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if flow.pending else 0)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.sel.modify(flow.sock, events, ("flow", flow))
        if not flow.pending and flow.closing_at is not None:
            self._do_shutdown(flow)

    def _shut_write(self, flow: Flow) -> None:
        """Half-close once the reply is out; keep reading what the client still sends."""
        if flow.tls_up and flow.tls_obj is not None and flow.closing_at is None:
            with contextlib.suppress(ssl.SSLError, OSError):
                flow.tls_obj.unwrap()  # close_notify, as a server does before FIN
            self._tls_flush(flow)
        flow.closing_at = time.monotonic()
        if not flow.pending:
            self._do_shutdown(flow)

    def _do_shutdown(self, flow: Flow) -> None:
        if flow.write_shut:
            return
        flow.write_shut = True
        with contextlib.suppress(OSError):
            flow.sock.shutdown(socket.SHUT_WR)

    def _sweep(self, now: float) -> None:
        for flow in list(self.flows.values()):
            if now - flow.mono > self.limits.flow_seconds:
                self._finish(flow, "lifetime")
            elif now - flow.last > self.limits.idle_seconds:
                self._finish(flow, "idle")
            elif flow.write_shut and now - (flow.closing_at or now) > 2.0:
                self._finish(flow, "closed")

    def _drain(self, flow: Flow, limit: int = 1 << 20) -> None:
        """Read what the client already sent before closing on our side (eviction,
        lifetime, shutdown): bytes that arrived are evidence, whatever the reason."""
        got = 0
        while got < limit:
            try:
                data = flow.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            got += len(data)
            flow.total += len(data)
            room = self.limits.capture_bytes - len(flow.capture)
            if room > 0:
                flow.capture += data[:room]
            self._incoming(flow, data)

    def _finish(self, flow: Flow, reason: str) -> None:
        if flow.fid not in self.flows:
            return
        if reason in ("evicted", "lifetime", "idle", "shutdown", "closed"):
            with contextlib.suppress(Exception):
                self._drain(flow)
        self.flows.pop(flow.fid, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.sel.unregister(flow.sock)
        flow.sock.close()
        rec: dict[str, Any] = {
            "kind": "tcp",
            "id": flow.fid,
            "t": flow.opened,
            "duration": round(time.monotonic() - flow.mono, 3),
            "phase": flow.phase,
            "transport": "dns" if flow.kind == "dns" else "tcp",
            "src": _hostport(flow.src),
            "dst": _hostport(flow.dst),
            "name": self.fake.name_for(flow.dst[0]),
            "bytes": flow.total,
            "captured": len(flow.capture),
            "truncated": flow.total > len(flow.capture) or reason in ("evicted", "lifetime"),
            "close_reason": reason,
            "proto": _record_proto(flow),
            "pid": flow.pid,
            "argv": flow.argv,
        }
        streams = [h for h in (flow.http_done, flow.http) if h is not None]  # CONNECT, then inside
        if streams:
            for h in streams:
                h.finish()
            requests = [r for h in streams for r in h.requests][: self.limits.max_requests]
            rec["http"] = requests
            if any(r.get("body_truncated") or not r.get("complete") for r in requests):
                rec["truncated"] = True
        if flow.tls is not None:
            rec["tls"] = flow.tls
        elif flow.proto == "tls":
            rec["tls"] = {"error": "ClientHello incomplete at close"}
        if flow.smtp is not None:
            rec["smtp"] = flow.smtp.commands
        if flow.errors:
            rec["errors"] = flow.errors[:10]
        rec["payload"] = self.rec.payload(f"net-tcp-{flow.fid}.bin", bytes(flow.capture))
        if flow.tls_up:
            rec["decrypted"] = flow.plain_total
            rec["plain_payload"] = self.rec.payload(f"net-tcp-{flow.fid}.plain.bin", bytes(flow.plain))
            if flow.plain_total > len(flow.plain):
                rec["truncated"] = True
        self.rec.write(rec)

    # -- DNS
    def _dns_tcp(self, flow: Flow, data: bytes) -> None:
        flow.dns_buf += data
        while len(flow.dns_buf) >= 2:
            n = int.from_bytes(flow.dns_buf[:2], "big")
            if len(flow.dns_buf) < 2 + n:
                if len(flow.dns_buf) > 70000:
                    flow.dns_buf.clear()
                return
            msg = bytes(flow.dns_buf[2 : 2 + n])
            del flow.dns_buf[: 2 + n]
            reply = self._dns(msg, flow.src, "tcp", flow.pid, flow.argv, _hostport(flow.dst))
            if reply:
                self._send(flow, len(reply).to_bytes(2, "big") + reply)

    def _dns_udp(self, sock: socket.socket) -> None:
        for _ in range(64):
            try:
                msg, src = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            pid, argv = self.owners.lookup("udp", int(src[1]))
            reply = self._dns(msg, src, "udp", pid, argv, None)
            if reply:
                try:
                    sock.sendto(reply, src)
                except OSError as exc:
                    self._problem(f"dns reply: {exc}")

    def _dns(
        self,
        msg: bytes,
        src: tuple[Any, ...],
        transport: str,
        pid: int | None,
        argv: list[str],
        dst: str | None,
    ) -> bytes | None:
        self.stats["dns_queries"] += 1
        base: dict[str, Any] = {
            "kind": "dns",
            "t": time.time(),
            "phase": current_phase(self.phase_file),
            "transport": transport,
            "src": _hostport(src),
            "resolver": dst,
            "pid": pid,
            "argv": argv,
            "size": len(msg),
        }
        try:
            q = parse_query(msg)
        except DnsError as exc:
            self.stats["dns_malformed"] += 1
            self.rec.write({**base, "malformed": True, "error": str(exc), "raw_b64": _b64(msg[:512])})
            return formerr(msg)
        if q.opcode != 0:
            self.rec.write(
                {**base, "name": name_text(q.questions[0][0]), "qtype": f"OPCODE{q.opcode}", "answer": None}
            )
            return build_response(q, [], rcode=4)  # NOTIMP, as a real resolver answers an UPDATE
        answers: list[tuple[int, bytes]] = []
        for i, (labels, qtype, _qclass) in enumerate(q.questions):
            got, text = self.fake.answer(labels, qtype)
            if i == 0:
                answers = got
            self.rec.write(
                {
                    **base,
                    "name": name_text(labels),
                    "qtype": QTYPES.get(qtype, f"TYPE{qtype}"),
                    "answer": text,
                    "raw_b64": _b64(msg[:512]) if i == 0 else "",
                }
            )
        return build_response(q, answers)

    # -- UDP
    def _udp(self, sock: socket.socket) -> None:
        for _ in range(64):
            try:
                data, src = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            self.stats["udp_datagrams"] += 1
            pid, argv = self.owners.lookup("udp", int(src[1]))
            keep = data[: self.limits.udp_capture_bytes]
            if not self.rec.room(len(keep) * 2):
                keep = b""
            self.rec.write(
                {
                    "kind": "udp",
                    "t": time.time(),
                    "phase": current_phase(self.phase_file),
                    "src": _hostport(src),
                    "bytes": len(data),
                    "captured": len(keep),
                    "truncated": len(keep) < len(data),
                    "data_b64": _b64(keep),
                    "pid": pid,
                    "argv": argv,
                }
            )
            reply = ntp_reply(data)
            if reply is not None:  # time checks over NTP get the (pass's) clock
                with contextlib.suppress(OSError):
                    sock.sendto(reply, src)


# --------------------------------------------------------------------------- set-up


def _bind(family: int, kind: int, host: str, port: int) -> socket.socket:
    s = socket.socket(family, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        if kind == socket.SOCK_STREAM:
            s.listen(1024)
    except OSError:
        s.close()
        raise
    return s


def bind_listeners(
    v6: bool, rng: random.Random | None = None, host4: str = "127.0.0.1", host6: str = "::1"
) -> tuple[Ports, dict[str, list[socket.socket]]]:
    """Bind TCP, UDP and DNS (UDP + TCP) listeners on random high ports of loopback."""
    r = rng or random.Random()
    last: OSError | None = None
    for _ in range(50):
        ports = Ports(*(r.randrange(20000, 61000) for _ in range(3)))
        if len({ports.tcp, ports.udp, ports.dns}) < 3:
            continue
        made: list[socket.socket] = []
        socks: dict[str, list[socket.socket]] = {"tcp": [], "udp": [], "dns_udp": [], "dns_tcp": []}
        try:
            fams = [(socket.AF_INET, host4)] + ([(socket.AF_INET6, host6)] if v6 else [])
            for fam, host in fams:
                for key, kind, port in (
                    ("tcp", socket.SOCK_STREAM, ports.tcp),
                    ("udp", socket.SOCK_DGRAM, ports.udp),
                    ("dns_udp", socket.SOCK_DGRAM, ports.dns),
                    ("dns_tcp", socket.SOCK_STREAM, ports.dns),
                ):
                    s = _bind(fam, kind, host, port)
                    made.append(s)
                    socks[key].append(s)
            return ports, socks
        except OSError as exc:
            last = exc
            for s in made:
                s.close()
    raise OSError(f"no free ports for the sinkhole: {last}")


def nat_rules(ports: Ports, own: str, v6: bool) -> str:
    """iptables-restore input for the nat table (one family).

    Order matters: DNS first and for *any* destination — a resolver on 127.x
    would escape a rule that skips loopback — then local destinations keep
    working (loopback, our own address), then everything else.
    """
    loop = "::1/128" if v6 else "127.0.0.0/8"
    me = f"{own}/128" if v6 else f"{own}/32"
    return "\n".join(
        [
            "*nat",
            ":OUTPUT ACCEPT [0:0]",
            f"-A OUTPUT -p udp --dport 53 -j REDIRECT --to-ports {ports.dns}",
            f"-A OUTPUT -p tcp --dport 53 -j REDIRECT --to-ports {ports.dns}",
            f"-A OUTPUT -d {loop} -j RETURN",
            f"-A OUTPUT -d {me} -j RETURN",
            f"-A OUTPUT -p tcp -j REDIRECT --to-ports {ports.tcp}",
            f"-A OUTPUT -p udp -j REDIRECT --to-ports {ports.udp}",
            "COMMIT",
            "",
        ]
    )


def link_commands(net: NetConfig, v6: bool) -> str:
    """``ip -batch`` input: a veth pair (both ends here), address, default route."""
    lines = [
        "link add eth0 type veth peer name eth1",
        "link set eth1 up",
        "link set eth0 up",
        f"addr add {net.address}/{net.prefix} dev eth0",
        f"route add default via {net.gateway} dev eth0 onlink",
    ]
    if v6:
        lines += [
            f"addr add {net.address6}/64 dev eth0 nodad",
            f"route add ::/0 via {net.gateway6} dev eth0 onlink",
        ]
    return "\n".join(lines) + "\n"


def _restore_tool(v6: bool) -> list[str] | None:
    """iptables-nft first: Debian's default, and it needs only NET_ADMIN (legacy
    iptables opens a raw socket, which needs NET_RAW, which we never grant)."""
    family = "ip6tables" if v6 else "iptables"
    names = [f"{family}-nft-restore", f"{family}-restore"]
    for name in names:
        for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"):
            if os.access(f"{d}/{name}", os.X_OK):
                return [f"{d}/{name}", "--noflush"]
    return None


def configure_network(net: NetConfig, ports: Ports, v6: bool) -> list[str]:
    """Create the interface and the NAT rules; returns problems (empty = all set).

    When the IPv4 rules cannot be installed the interface is removed again: an
    address and a route without redirection would make connections hang in
    ARP instead of failing at once (nothing would leave either way).
    """
    problems: list[str] = []
    ip = subprocess.run(
        ["ip", "-batch", "-"], input=link_commands(net, v6), capture_output=True, text=True, timeout=10
    )
    if ip.returncode != 0:
        subprocess.run(["ip", "link", "del", "eth0"], capture_output=True, timeout=10)
        return [f"ip: {ip.stderr.strip()[:300]}"]
    procs: list[tuple[bool, subprocess.Popen[str]]] = []
    for fam6 in [False, True] if v6 else [False]:
        tool = _restore_tool(fam6)
        if tool is None:
            problems.append(f"no {'ip6' if fam6 else 'ip'}tables-restore in the image")
            continue
        p = subprocess.Popen(
            tool, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        procs.append((fam6, p))
        assert p.stdin is not None
        p.stdin.write(nat_rules(ports, net.address6 if fam6 else net.address, fam6))
        p.stdin.close()
    ok4 = False
    for fam6, p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        err = (p.stderr.read() if p.stderr else "").strip()
        if p.returncode == 0:
            ok4 = ok4 or not fam6
        else:
            problems.append(f"{'ip6' if fam6 else 'ip'}tables: {err[:300] or f'exit {p.returncode}'}")
            if fam6:  # IPv6 without redirection: take its address and route away again
                subprocess.run(
                    ["ip", "-6", "addr", "flush", "dev", "eth0", "scope", "global"],
                    capture_output=True,
                    timeout=10,
                )
                subprocess.run(["ip", "-6", "route", "flush", "default"], capture_output=True, timeout=10)
    if not ok4:
        subprocess.run(["ip", "link", "del", "eth0"], capture_output=True, timeout=10)
    return problems


def _ipv6_available() -> bool:
    try:
        with open("/proc/sys/net/ipv6/conf/lo/disable_ipv6") as fh:
            return fh.read().strip() == "0"
    except OSError:
        return False


class Setup:
    """The sinkhole's set-up in two halves: the constructor binds the listeners and
    forks the daemon (milliseconds), then installs the interface and NAT rules in a
    thread (tens of milliseconds of ``ip`` and ``iptables-restore``) while
    ``agent setup`` prepares HOME and the venv; :meth:`wait` joins it. Never
    raises: a sinkhole that could not be set up leaves the namespace as
    network-less as before, and says why."""

    def __init__(self, plan: dict[str, Any], out: Path) -> None:
        self.t0 = time.monotonic()
        self.out = out
        conf = dict(plan.get("sinkhole") or {})
        self.limits = Limits.from_plan(conf)
        self.net = NetConfig.from_plan(plan)
        self.info: dict[str, Any] = {
            "enabled": False,
            "problems": [],
            "net": self.net.__dict__,
            "limits": self.limits.__dict__,
        }
        self.thread: threading.Thread | None = None
        self.tls = bool(conf.get("tls", True))
        try:
            v6 = _ipv6_available()
            ports, socks = bind_listeners(v6)
            self.info.update(ports=ports.__dict__, ipv6=v6)
            self.info["pid"] = spawn_daemon(socks, self.limits, self.net, out, self.tls)
            for group in socks.values():  # the daemon has its own copies
                for sock in group:
                    sock.close()
            self.thread = threading.Thread(target=self._configure, args=(ports, v6), daemon=True)
            self.thread.start()
        except Exception as exc:
            self.info["problems"].append(f"{type(exc).__name__}: {exc}")

    def _configure(self, ports: Ports, v6: bool) -> None:
        try:
            problems = configure_network(self.net, ports, v6)
        except Exception as exc:
            problems = [f"ip: {type(exc).__name__}: {exc}"]
        self.info["problems"] = problems
        self.info["enabled"] = not any(p.startswith(("ip:", "iptables", "no iptables")) for p in problems)
        self.info["ipv6"] = v6 and not any(p.startswith(("ip6tables", "no ip6tables")) for p in problems)

    def wait(self) -> dict[str, Any]:
        """Finish the set-up; returns what was set up (also in ``out/sinkhole.json``)."""
        if self.thread is not None:
            self.thread.join(30)
            if self.thread.is_alive():
                self.info["problems"].append("network set-up did not finish within 30 s")
                self.info["enabled"] = False
        if not self.info["enabled"] and "pid" in self.info:
            stop(2.0)
        self.info["seconds"] = round(time.monotonic() - self.t0, 3)
        (self.out / "sinkhole.json").write_text(json.dumps(self.info))
        return self.info


def start(plan: dict[str, Any], out: Path) -> dict[str, Any]:
    """Set the sinkhole up and wait for it (see :class:`Setup`)."""
    return Setup(plan, out).wait()


def spawn_daemon(
    socks: dict[str, list[socket.socket]],
    limits: Limits,
    net: NetConfig,
    out: Path,
    tls: bool = False,
) -> int:
    """Double-fork the daemon (re-parented to the container's init, so it survives
    this exec); returns its pid, also written to :data:`PID_FILE`."""
    keep = {s.fileno() for group in socks.values() for s in group}
    r, w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked children
        code = 0
        try:
            os.close(r)
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            _daemon_main(socks, limits, net, out, keep | {w}, w, tls)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    os.waitpid(child, 0)
    data = b""
    while True:  # the grandchild writes its pid once it has detached
        chunk = os.read(r, 64)
        if not chunk:
            break
        data += chunk
    os.close(r)
    try:
        return int(data.decode().strip())
    except ValueError:
        raise OSError("the sinkhole daemon did not start") from None


def _daemon_main(
    socks: dict[str, list[socket.socket]],
    limits: Limits,
    net: NetConfig,
    out: Path,
    keep: set[int],
    ready_fd: int,
    tls: bool = False,
) -> None:  # pragma: no cover - runs in the daemon
    # Our stdout/stderr are the docker exec's stream: holding them open would keep
    # `agent setup` from returning. Everything else inherited goes too.
    log = os.open(str(out / "sinkhole.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    for entry in os.listdir("/proc/self/fd"):
        fd = int(entry)
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)
    # Only what the daemon needs: read other processes' /proc/PID/fd to name the
    # process behind a socket. NET_ADMIN, SETUID, KILL … go.
    guard.limit_capabilities({guard.CAP_SYS_PTRACE, guard.CAP_DAC_READ_SEARCH})
    PID_FILE.write_text(str(os.getpid()))
    os.write(ready_fd, str(os.getpid()).encode())
    os.close(ready_fd)
    # The CA is made here, once set-up goes on without us: its arithmetic (tens of
    # ms of pure Python) overlaps HOME and venv preparation instead of adding to
    # them. Its key stays in this process's memory; set-up gets the certificate.
    authority = None
    if tls:
        try:
            authority = tlsca.Authority(TLS_DIR)
            trust.publish(authority)
        except Exception as exc:
            authority = None
            with contextlib.suppress(OSError):
                trust.save_state({"error": f"CA: {type(exc).__name__}: {exc}"[:300]})
    Daemon(socks, limits, net, out, authority=authority).run()


def _note(out: Path | None, msg: str) -> None:
    if out is not None:
        with contextlib.suppress(OSError), (out / "net.jsonl").open("a") as fh:
            fh.write(json.dumps({"kind": "problem", "t": time.time(), "msg": msg}) + "\n")


def stop(timeout: float = 3.0, out: Path | None = None) -> bool:
    """SIGTERM the daemon and wait until it has written its last records; a daemon
    that was already gone (OOM killer) or had to be killed is noted in *out*."""
    try:
        pid = int(PID_FILE.read_text().strip())
    except (OSError, ValueError):
        return True
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        _note(out, "the sinkhole daemon had died before the end of the run: later attempts were refused")
        return False
    except PermissionError:
        return False
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
            if state in ("Z", "X"):
                break
        except (OSError, IndexError):
            break
        time.sleep(0.01)
    else:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        _note(out, f"the sinkhole daemon did not stop within {timeout:.0f}s: flows still open are lost")
        return False
    with contextlib.suppress(OSError):
        PID_FILE.unlink()
    return True
