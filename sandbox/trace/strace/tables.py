"""Which syscall is which: the classification tables the handlers dispatch on."""

from __future__ import annotations

from sandbox.models import EventKind

K = EventKind

_SPAWN = frozenset({"clone", "clone3", "fork", "vfork"})
_WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")

# dirfd + path first: kind (None → decided from the open flags).
_AT_CALLS: dict[str, EventKind | None] = {
    "openat": None,
    "openat2": None,
    "newfstatat": K.FILE_STAT,
    "fstatat64": K.FILE_STAT,
    "statx": K.FILE_STAT,
    "faccessat": K.FILE_STAT,
    "faccessat2": K.FILE_STAT,
    "readlinkat": K.FILE_STAT,
    "utimensat": K.FILE_STAT,
    "futimesat": K.FILE_STAT,
    "name_to_handle_at": K.FILE_STAT,
    "unlinkat": K.FILE_DELETE,
    "mkdirat": K.DIR_CREATE,
    "mknodat": K.DIR_CREATE,
    "fchmodat": K.FILE_CHMOD,
    "fchmodat2": K.FILE_CHMOD,
    "fchownat": K.FILE_CHMOD,
    "open_tree": K.PRIVILEGED,
    "fspick": K.PRIVILEGED,
    "mount_setattr": K.PRIVILEGED,
}
# Syscalls whose second argument is worth keeping in ``flags`` (mode, access mode, flags).
_FLAGS_ARG = frozenset(
    {
        "openat",
        "open",
        "creat",
        "faccessat",
        "faccessat2",
        "access",
        "unlinkat",
        "mkdirat",
        "mkdir",
        "mknodat",
        "mknod",
        "fchmodat",
        "fchmodat2",
        "chmod",
    }
)
# path first: kind (None → open flags).
_PATH_CALLS: dict[str, EventKind | None] = {
    "open": None,
    "creat": K.FILE_WRITE,
    "stat": K.FILE_STAT,
    "lstat": K.FILE_STAT,
    "stat64": K.FILE_STAT,
    "lstat64": K.FILE_STAT,
    "access": K.FILE_STAT,
    "readlink": K.FILE_STAT,
    "statfs": K.FILE_STAT,
    "statfs64": K.FILE_STAT,
    "getxattr": K.FILE_STAT,
    "lgetxattr": K.FILE_STAT,
    "listxattr": K.FILE_STAT,
    "llistxattr": K.FILE_STAT,
    "utime": K.FILE_STAT,
    "utimes": K.FILE_STAT,
    "chdir": K.FILE_STAT,
    "unlink": K.FILE_DELETE,
    "rmdir": K.FILE_DELETE,
    "mkdir": K.DIR_CREATE,
    "mknod": K.DIR_CREATE,
    "chmod": K.FILE_CHMOD,
    "chown": K.FILE_CHMOD,
    "lchown": K.FILE_CHMOD,
    "chown32": K.FILE_CHMOD,
    "lchown32": K.FILE_CHMOD,
    "truncate": K.FILE_WRITE,
    "truncate64": K.FILE_WRITE,
    "setxattr": K.OTHER,
    "lsetxattr": K.OTHER,
    "removexattr": K.OTHER,
    "lremovexattr": K.OTHER,
    "getcwd": K.OTHER,
    "uselib": K.OTHER,
    "chroot": K.PRIVILEGED,
    "acct": K.PRIVILEGED,
    "swapon": K.PRIVILEGED,
    "swapoff": K.PRIVILEGED,
    "umount": K.PRIVILEGED,
    "umount2": K.PRIVILEGED,
    "quotactl": K.PRIVILEGED,
}
_CHOWN = frozenset({"chown", "lchown", "chown32", "lchown32", "fchown", "fchown32", "fchownat"})
# fd first, the fd's path is the event's path.
_FD_CALLS: dict[str, EventKind] = {
    "fallocate": K.FILE_WRITE,
    "getdents64": K.FILE_LIST,
    "getdents": K.FILE_LIST,
    "fchdir": K.FILE_STAT,
    "fchmod": K.FILE_CHMOD,
    "fchown": K.FILE_CHMOD,
    "fchown32": K.FILE_CHMOD,
    "ftruncate": K.FILE_WRITE,
    "ftruncate64": K.FILE_WRITE,
    "fsetxattr": K.OTHER,
    "fremovexattr": K.OTHER,
}
_WRITES = frozenset(
    {
        "write",
        "pwrite64",
        "writev",
        "pwritev",
        "pwritev2",
        "sendfile",
        "sendfile64",
        "splice",
        "copy_file_range",
    }
)
_OPENS = frozenset({"openat", "openat2", "open", "creat"})
_PRIVILEGED = frozenset(
    {
        "mount",
        "pivot_root",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "kexec_load",
        "kexec_file_load",
        "setuid",
        "setgid",
        "setreuid",
        "setregid",
        "setresuid",
        "setresgid",
        "setfsuid",
        "setfsgid",
        "setuid32",
        "setgid32",
        "setgroups",
        "setgroups32",
        "capset",
        "unshare",
        "setns",
        "bpf",
        "perf_event_open",
        "keyctl",
        "add_key",
        "request_key",
        "personality",
        "io_uring_setup",
        "fsopen",
        "fsconfig",
        "fsmount",
        "move_mount",
        "iopl",
        "ioperm",
    }
)
_PTRACE = frozenset({"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd"})
_SIGNALS = frozenset({"kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal"})
_SOCK_CALLS: dict[str, EventKind] = {
    "connect": K.CONNECT,
    "bind": K.BIND,
    "listen": K.LISTEN,
    "accept": K.OTHER,
    "accept4": K.OTHER,
    "sendto": K.SEND,
    "sendmsg": K.SEND,
    "sendmmsg": K.SEND,
    "recvfrom": K.RECV,
    "recvmsg": K.RECV,
    "recvmmsg": K.RECV,
}
_SILENT = frozenset({"exit", "exit_group"})
_COUNTS_OWN_CUTS = frozenset({"write", "pwrite64"})  # their handler counts the one buffer
# Two names: (index of old dirfd, old path, new dirfd, new path) in the arguments; -1 = no dirfd.
_TWO_PATHS: dict[str, tuple[EventKind, int, int, int, int]] = {
    "rename": (K.FILE_RENAME, -1, 0, -1, 1),
    "renameat": (K.FILE_RENAME, 0, 1, 2, 3),
    "renameat2": (K.FILE_RENAME, 0, 1, 2, 3),
    "link": (K.FILE_LINK, -1, 0, -1, 1),
    "linkat": (K.FILE_LINK, 0, 1, 2, 3),
    "symlink": (K.FILE_LINK, -1, 0, -1, 1),
    "symlinkat": (K.FILE_LINK, -1, 0, 1, 2),
}


def _open_kind(flags: str | None) -> EventKind:
    if not flags:
        return K.FILE_READ
    for flag in _WRITE_FLAGS:
        if flag in flags:
            return K.FILE_WRITE
    return K.FILE_LIST if "O_DIRECTORY" in flags else K.FILE_READ
