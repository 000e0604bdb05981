"""HTTP/1.x: sniffing, the nginx-like answer and the incremental request parser."""

from __future__ import annotations

import base64
import re
from email.utils import formatdate
from typing import Any

from .config import Limits, now

# --------------------------------------------------------------------------- HTTP

_METHOD = re.compile(rb"^[A-Z][A-Z-]{2,15} ")
_REQUEST_LINE = re.compile(rb"^([A-Z][A-Z-]{0,15}) (\S+) (HTTP/\d(?:\.\d)?)$")
MAX_HEAD = 65536
MAX_HEADERS = 64
MAX_VALUE = 1024


def looks_like_http(head: bytes) -> bool:
    return bool(_METHOD.match(head)) or head.startswith(b"PRI * HTTP/2")


def http_response(
    status: str = "200 OK", close: bool = False, body: bytes = b"", head: bool = False
) -> bytes:
    """What an ordinary nginx answers: *body* as plain text (only its length to a HEAD)."""
    kind = "text/plain" if body else "text/html"
    return (
        f"HTTP/1.1 {status}\r\nServer: nginx\r\nDate: {formatdate(now(), usegmt=True)}\r\n"
        f"Content-Type: {kind}; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
        f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
    ).encode() + (b"" if head else body)


def stage_body(path: str) -> bytes:
    """The bait second stage every request is answered with: what a downloader runs
    (``exec``/``eval`` of the text, or ``curl … | sh``) in one polyglot, valid Python
    and POSIX sh, whose only act is to look for *path*.  The path is random per run
    and appears nowhere else, so a trace event naming it proves the answer ran; an
    accounted fetch whose answer never ran hid no second stage of this shape."""
    if not path:
        return b""
    return (
        "''':'\n"  # sh: the no-op ":" (then exits below); Python: a string, sliced away
        f"test -e {path}\n"
        "exit 0\n"
        f"'''[0:0] + str(__import__('os').path.exists('{path}'))\n"
    ).encode()


class HttpStream:
    """Incremental HTTP/1.x request parser (pipelining, Content-Length, chunked,
    ``Expect: 100-continue``, CONNECT) that says what to answer and when."""

    def __init__(self, limits: Limits, stage: bytes = b"") -> None:
        self.limits = limits
        self.stage = stage  # every answer's body (see stage_body)
        self.requests: list[dict[str, Any]] = []
        self.dropped = 0  # requests past max_requests: parsed and answered, not kept
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
            "target_bytes": len(m.group(2)),
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
        else:
            self.dropped += 1
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
        head = False
        if self.current is not None:
            self.current["body_b64"] = base64.b64encode(bytes(self.body)).decode()
            self.current["complete"] = True
            head = self.current["method"] == "HEAD"
            if respond and self.stage and not head:
                self.current["staged"] = True  # answered with the bait stage
        self.current = None
        self.body = bytearray()
        self.state = "head"
        if respond:
            replies.append(http_response(close=self.close_after, body=self.stage, head=head))

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
