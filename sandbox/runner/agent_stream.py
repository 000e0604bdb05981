"""Reading an agent command's output on the host: JSON lines (one message each), and
after a ``collect`` line the output directory's tar.

From a ``docker exec`` the tar runs to the stream's end. A *detached* command (see
:mod:`sandbox.agent.detach`) writes to PID 1's stdout instead, read through the
container's attach stream, which never ends: there the tar comes in length-prefixed
chunks (eight hex digits, then that many bytes; ``00000000`` ends it) and the command
ends with an ``exit`` message, or, if it died first, PID 1's notice on stderr that it
reaped it (``\\x1ereaped PID STATUS``)."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from typing import Any

from sandbox.errors import SandboxError

MAX_COLLECT_BYTES = 2 << 30  # the traces of one run; beyond this something is wrong
_REAPED = re.compile(rb"\x1ereaped (\d+) (-?\d+)\n")
_ERR_KEEP = 4000
_GRACE = 1.0  # seconds the last messages may trail PID 1's notice that it reaped the agent


class AgentReader:
    """Feed it the stream's stdout and stderr bytes; it calls *on_message* for each
    message (its type and fields) and keeps the last of each type in :attr:`out`."""

    def __init__(
        self,
        on_message: Callable[[str, dict[str, Any]], None],
        tail: io.BytesIO | None = None,
        *,
        chunked: bool = False,
        pid: int | None = None,
    ) -> None:
        self.on_message, self.tail, self.chunked, self.pid = on_message, tail, chunked, pid
        self.out: dict[str, Any] = {}
        self.errtail = b""
        self.code: int | None = None  # a detached command's exit status, once known
        self.exited = False  # its "exit" message came
        self._reaped_at: float | None = None
        self._buf = b""
        self._raw = False  # after a "collect" message: the tar, not messages

    def finished(self) -> bool:
        """A detached command has ended: its ``exit`` message came, or PID 1 reaped it a
        moment ago (stdout and stderr are separate pipes: the notice may overtake the
        last messages, which get that moment to arrive)."""
        return self.exited or (self._reaped_at is not None and time.monotonic() - self._reaped_at > _GRACE)

    def stderr(self, data: bytes) -> None:
        """Bytes of the command's stderr (and, detached, PID 1's notices)."""
        self.errtail = (self.errtail + data)[-_ERR_KEEP:]
        if self.pid is not None and self._reaped_at is None:
            for m in _REAPED.finditer(self.errtail):
                if int(m.group(1)) == self.pid:
                    status = int(m.group(2))  # the wait status: a signal or an exit code
                    self._reaped_at = time.monotonic()
                    if self.code is None:
                        self.code = status >> 8 if status & 0x7F == 0 else 128 + (status & 0x7F)

    @property
    def detail(self) -> str:
        """The stderr tail, PID 1's notices left out (for an error message)."""
        return _REAPED.sub(b"", self.errtail).decode("utf-8", "replace").strip()[-300:]

    def stdout(self, data: bytes) -> None:
        """Bytes of the command's stdout."""
        self._buf += data
        while self._buf:
            if self._raw and not self.chunked:
                self._keep(self._buf)
                self._buf = b""
            elif self._raw:
                if len(self._buf) < 8:
                    return
                head = self._buf[:8]
                if not all(c in b"0123456789abcdef" for c in head):
                    raise SandboxError(f"a malformed chunk header from the agent: {head!r}")
                size = int(head, 16)
                if size == 0:
                    self._buf, self._raw = self._buf[8:], False
                    continue
                if len(self._buf) < 8 + size:
                    return
                self._keep(self._buf[8 : 8 + size])
                self._buf = self._buf[8 + size :]
            else:
                line, nl, rest = self._buf.partition(b"\n")
                if not nl:
                    return
                self._buf = rest
                self._line(line)

    def _keep(self, data: bytes) -> None:
        if self.tail is None:
            raise SandboxError("the agent sent its output directory unasked")
        self.tail.write(data)
        if self.tail.tell() > MAX_COLLECT_BYTES:
            raise SandboxError("trace output exceeds 2 GiB")

    def _line(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        kind = str(msg.pop("type", ""))
        if kind == "exit" and self.pid is not None:
            self.code, self.exited = int(msg.get("code") or 0), True
            return
        self.out[kind] = msg
        self.on_message(kind, msg)
        if kind == "collect" and self.tail is not None:
            self._raw = True
