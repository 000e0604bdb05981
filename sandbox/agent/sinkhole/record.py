"""What the daemon writes (net.jsonl, payload files), who owns a socket, and the flow state."""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import PHASE_FILE, SO_ORIGINAL_DST, Limits
from .http import HttpStream
from .smtp import SmtpStream

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
