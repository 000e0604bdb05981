"""``agent --detach CMD``: run an agent command as a child of PID 1.

A process entered with ``docker exec`` has a parent outside the container: its
``/proc/PID/stat`` shows parent 0, which on a real machine only init and kthreadd
have, and the candidate can read it. The exec'd process forks twice and exits; the
kernel re-parents the grandchild to the init of the pid namespace (the exiting
parent's ancestors are outside it, so no subreaper is found there). The grandchild
runs the command with its ``sys.stdout`` and ``sys.stderr`` on PID 1's (close-on-exec
fds; its fds 0-2 are ``/dev/null``, so no child inherits them), which the host reads
through the container's attach stream (``sandbox.runner.agent_stream``): the exec itself ends at
once, after printing the grandchild's pid. Only root reaches ``/proc/1/fd``.
"""

from __future__ import annotations

import fcntl
import io
import os
import sys
import time
from typing import BinaryIO

from .common import emit

INIT_STDOUT, INIT_STDERR = "/proc/1/fd/1", "/proc/1/fd/2"
active = False  # this process is a detached command (binary output goes Chunked)


def detach() -> bool:
    """Fork the detached command. True in it (stdio now PID 1's); False in the exec'd
    process, after it printed the command's pid (it should exit at once)."""
    sys.stdout.flush()
    sys.stderr.flush()
    out = os.open(INIT_STDOUT, os.O_WRONLY | os.O_CLOEXEC)
    err = os.open(INIT_STDERR, os.O_WRONLY | os.O_CLOEXEC)
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(r)
        pid = os.fork()
        if pid:
            os.write(w, str(pid).encode())
            os._exit(0)
        os.close(w)
        # PID 1's pipes on high close-on-exec fds, only this process's own streams:
        # fds 0-2 are /dev/null, so no child (cp, pip, the candidate's drivers) inherits
        # a way to write messages or init's notices to the host
        chan_out = fcntl.fcntl(out, fcntl.F_DUPFD_CLOEXEC, 100)
        chan_err = fcntl.fcntl(err, fcntl.F_DUPFD_CLOEXEC, 100)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        for fd in (null, out, err):
            os.close(fd)
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(chan_out, "w")), line_buffering=True)
        sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(chan_err, "w")), line_buffering=True)
        global active
        active = True
        return True
    os.close(w)
    os.close(out)
    os.close(err)
    with io.open(r, "rb") as fh:  # noqa: UP020 - an fd, not a path
        got = fh.read()
    os.waitpid(middle, 0)
    emit("detached", pid=int(got or 0))
    return False


class Chunked(io.RawIOBase):
    """A detached command's binary output (the collect tar) on a stream that does not
    end: each write as eight hex digits of length and the bytes; closing writes
    ``00000000``."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self.raw = raw

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if data:
            self.raw.write(b"%08x" % len(data) + bytes(data))
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.raw.write(b"00000000")
            self.raw.flush()
        super().close()


def await_placement(timeout: float = 0.5, cgroup: str = "/proc/self/cgroup") -> bool:
    """Wait (at most *timeout* s) until the runc wrapper has moved this exec'd process
    into its login session's cgroup in the unified hierarchy: on a cgroup v1 host runc
    starts it in the session everywhere else and the wrapper's shell front moves it
    there a moment after it starts (sandbox.oci.runc-wrapper.sh). Anything forked before
    would stay at ``0::/``. Returns whether it waited for a move that came."""
    end = time.monotonic() + timeout
    waited = False
    while True:
        try:
            with open(cgroup) as fh:
                lines = fh.read().splitlines()
        except OSError:
            return waited
        named = next((ln for ln in lines if ":name=systemd:" in ln), "")
        if "/session-" not in named or "0::/" not in lines:
            return waited  # no wrapper (plain runc, v2 only), or placed already
        if time.monotonic() > end:
            return False
        waited = True
        time.sleep(0.002)
