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
EPERM = 1
# io_uring_setup / io_uring_enter / io_uring_register share these numbers on every
# architecture (the unified syscall table since Linux 5.1).
IO_URING_FIRST, IO_URING_LAST = 425, 427
# clone's number per architecture, and the flag that keeps a child from every tracer
CLONE_NR = {"x86_64": 56, "aarch64": 220}
CLONE_UNTRACED = 0x00800000


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)


def io_uring_filter(machine: str | None = None) -> bytes:
    """A classic-BPF seccomp program answering ENOSYS to the io_uring syscalls and
    EPERM to a ``clone`` with ``CLONE_UNTRACED``.

    Docker 20.10's default profile allows io_uring, and I/O submitted through it
    never appears in strace; ENOSYS makes libraries fall back to plain syscalls.
    ``CLONE_UNTRACED`` makes a child no tracer attaches to (strace -f loses it); glibc
    never sets it. The container's profile refuses it too, but runsc applies no
    Docker profile: this filter, which every step inherits, holds under both.
    """
    clone = CLONE_NR.get(machine or os.uname().machine, CLONE_NR["x86_64"])
    return b"".join(
        [
            _insn(0x20, 0, 0, 0),  # 0: A = seccomp_data.nr
            _insn(0x54, 0, 0, ~X32_SYSCALL_BIT),  # 1: A &= ~X32 bit
            _insn(0x35, 0, 2, IO_URING_FIRST),  # 2: A >= first ? 3 : 5
            _insn(0x25, 5, 0, IO_URING_LAST),  # 3: A > last ? allow : 4
            _insn(0x06, 0, 0, SECCOMP_RET_ERRNO | ENOSYS),  # 4
            _insn(0x15, 0, 3, clone),  # 5: clone ? 6 : allow
            _insn(0x20, 0, 0, 16),  # 6: A = low word of args[0] (the flags)
            _insn(0x45, 0, 1, CLONE_UNTRACED),  # 7: A & CLONE_UNTRACED ? 8 : allow
            _insn(0x06, 0, 0, SECCOMP_RET_ERRNO | EPERM),  # 8
            _insn(0x06, 0, 0, SECCOMP_RET_ALLOW),  # 9
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


# --------------------------------------------------------------------------- capabilities

CAP_CHOWN, CAP_DAC_READ_SEARCH, CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SETPCAP = 0, 2, 5, 6, 7, 8
CAP_NET_ADMIN, CAP_SYS_PTRACE = 12, 19
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _set_capabilities(allowed: int) -> None:
    """Mask this process's capability sets (all of them, bounding included) with *allowed*."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(64):
        if not allowed >> cap & 1:
            libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last capability: ignored
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(hdr), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    for i in range(2):
        mask = (allowed >> (32 * i)) & 0xFFFFFFFF
        data[i].effective &= mask
        data[i].permitted &= mask
        data[i].inheritable &= mask
    if libc.capset(ctypes.byref(hdr), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def limit_capabilities(keep: set[int]) -> None:
    """Keep only the capabilities in *keep* (the sinkhole daemon keeps what it needs
    to read other processes' /proc/PID/fd)."""
    _set_capabilities(sum(1 << c for c in keep))


def drop_capabilities(drop: set[int]) -> None:
    """Remove *drop* from every capability set of this process and its future children.

    The phase driver drops NET_ADMIN (granted to the container only so that
    ``setup`` can install the sinkhole's rules) before it starts strace, so no
    process that runs during a phase — recorder or candidate — can hold it.
    """
    _set_capabilities(((1 << 64) - 1) & ~sum(1 << c for c in drop))
