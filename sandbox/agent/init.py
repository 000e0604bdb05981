"""PID 1 of the sandbox container: reaps orphans, enforces the deadline, looks like init.

Docker's own init (``docker-init -- sleep N``) is the first thing environment-aware
malware reads (``/proc/1/comm``, ``/proc/1/cmdline``). This one names itself like a
workstation's systemd: comm ``systemd`` (``prctl(PR_SET_NAME)``) and cmdline
``/sbin/init``, by rewriting its own argument area in place with the last byte left
non-NUL, the ``setproctitle`` convention under which the kernel returns the string
up to its first NUL. No privilege is needed for either; the candidate (another uid)
cannot read PID 1's environ, exe or memory, as on a real machine.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

COMM = b"systemd"
CMDLINE = b"/sbin/init"
PR_SET_NAME = 15
_SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def disguise(comm: bytes = COMM, cmdline: bytes = CMDLINE) -> bool:
    """Rename this process (comm and cmdline); False when the argument area is too small."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, comm, 0, 0, 0)
    with open("/proc/self/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); arg_start/arg_end are fields 48/49
    arg_start, arg_end = int(fields[45]), int(fields[46])
    if not arg_start:
        arg_start, arg_end = _argv_area(libc)
    size = arg_end - arg_start
    if size < len(cmdline) + 2:
        return False
    buf = cmdline + b"\0" + b" " * (size - len(cmdline) - 1)
    ctypes.memmove(arg_start, buf, size)
    return True


def _argv_area(libc: ctypes.CDLL) -> tuple[int, int]:
    """Where the argument strings are when /proc/self/stat does not say (gVisor prints
    0 for arg_start/arg_end): the kernel lays them out just before the environment
    strings, so they end where ``environ[0]`` begins. (0, 0) when that cannot hold."""
    with open("/proc/self/cmdline", "rb") as fh:
        raw = fh.read()
    environ = ctypes.POINTER(ctypes.c_void_p).in_dll(libc, "environ")
    first = environ[0] if environ else None
    if not first or not raw:
        return 0, 0
    start = first - len(raw)
    if ctypes.string_at(start, len(raw)) != raw:  # not laid out as expected: leave it
        return 0, 0
    return start, first


def reap() -> int:
    """Collect every exited child (orphans re-parented to PID 1); returns how many."""
    n = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return n
        if pid == 0:
            return n
        n += 1


def run(seconds: float) -> int:
    """Live for *seconds* (the run's deadline: the container stops when PID 1 exits),
    reaping orphans; stop early on SIGTERM/SIGINT/SIGHUP (``docker stop``)."""
    disguise()
    end = time.monotonic() + seconds
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return 0
        info = signal.sigtimedwait(_SIGNALS, min(left, 60.0))
        if info is None:
            reap()  # a SIGCHLD coalesced with another is still collected here
            continue
        if info.si_signo == signal.SIGCHLD:
            reap()
        else:
            return 0
