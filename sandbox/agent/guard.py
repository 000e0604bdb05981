"""Process-level guards applied before the recorder starts (stdlib ctypes only)."""

from __future__ import annotations

import ctypes
import os
import resource
import struct

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
PR_SET_CHILD_SUBREAPER = 36
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
ENOSYS = 38
X32_SYSCALL_BIT = 0x40000000
# io_uring_setup / io_uring_enter / io_uring_register share these numbers on every
# architecture (the unified syscall table since Linux 5.1).
IO_URING_FIRST, IO_URING_LAST = 425, 427


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)


def io_uring_filter() -> bytes:
    """A classic-BPF seccomp program answering ENOSYS to the io_uring syscalls.

    Docker 20.10's default profile allows io_uring, and I/O submitted through it
    never appears in strace; ENOSYS makes libraries fall back to plain syscalls.
    """
    return b"".join(
        [
            _insn(0x20, 0, 0, 0),  # A = seccomp_data.nr
            _insn(0x54, 0, 0, ~X32_SYSCALL_BIT),  # A &= ~X32 bit
            _insn(0x35, 0, 2, IO_URING_FIRST),  # A >= first ? next : allow
            _insn(0x25, 1, 0, IO_URING_LAST),  # A > last ? allow : deny
            _insn(0x06, 0, 0, SECCOMP_RET_ERRNO | ENOSYS),
            _insn(0x06, 0, 0, SECCOMP_RET_ALLOW),
        ]
    )


def install_io_uring_deny() -> None:
    """Install :func:`io_uring_filter` on the calling process (inherited by children)."""
    libc = ctypes.CDLL(None, use_errno=True)
    prog = io_uring_filter()
    buf = ctypes.create_string_buffer(prog, len(prog))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def become_subreaper() -> None:
    """Orphans of the traced tree are re-parented to us, not to the container's init."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def recorder_preexec() -> None:
    """Run in the forked child before exec'ing strace: guards inherited by the tracees."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    install_io_uring_deny()
    os.setsid()
