"""The sandbox's seccomp profile: Docker's default denials, but *visible* to strace.

Docker's default profile answers EPERM to mount, unshare, bpf, keyctl … Under
``strace --seccomp-bpf`` (which keeps tracing cheap) a seccomp ERRNO outranks the
TRACE strace relies on, so those attempts would never appear in the trace. Here the
security-relevant ones return ``SCMP_ACT_TRACE`` instead: strace sees the call and
fails it with EPERM through fault injection (``-e inject=…:error=EPERM``); a process
that is not traced (nothing of the candidate's) gets ENOSYS. Either way the call
never runs. Everything else mirrors Docker's default: namespace-creating clones,
NUMA policy calls and obsolete calls are denied with EPERM, clone3 and io_uring with
ENOSYS (io_uring's I/O would never show in strace; libraries fall back). One family of
sockets is refused: AF_VSOCK, which no network namespace confines (see :data:`AF_VSOCK`).
"""

from __future__ import annotations

import json
import platform
from typing import Any

from sandbox.runner.syscalls import X86_64_SYSCALLS

# Denied, recorded: every one is also in strace's trace set and its inject set.
TRACED_DENIED: tuple[str, ...] = (
    "mount",
    "umount2",
    "pivot_root",
    "swapon",
    "swapoff",
    "reboot",
    "sethostname",
    "setdomainname",
    "iopl",
    "ioperm",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "acct",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "unshare",
    "setns",
    "open_by_handle_at",
    "name_to_handle_at",
    "syslog",
    "quotactl",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "lookup_dcookie",
    "uselib",
    "fanotify_init",
    "vhangup",
    "kcmp",
)
# Denied quietly, as Docker does (common in benign code, e.g. NUMA probes).
DENIED_EPERM: tuple[str, ...] = (
    "mbind",
    "set_mempolicy",
    "get_mempolicy",
    "move_pages",
    "migrate_pages",
    "set_mempolicy_home_node",
    "ustat",
    "sysfs",
    "_sysctl",
    "nfsservctl",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "quotactl_fd",
    "vm86",
    "vm86old",
)
DENIED_ENOSYS: tuple[str, ...] = ("clone3", "io_uring_setup", "io_uring_enter", "io_uring_register")
# AF_VSOCK reaches the VM's host (CID 2: Firecracker, Kata, Docker Desktop's or WSL2's VM)
# whatever network namespace the caller is in: ``--network none`` and the sinkhole's
# iptables never see it. ``socket(AF_VSOCK, …)`` gets the default EPERM. (A TRACE or TRAP
# for that family alone, which would show under ``--seccomp-bpf``, cannot sit next to the
# ALLOW of the other families: runc's libseccomp refuses two actions for one syscall.)
AF_VSOCK = 40
AF_MAX = 46  # the kernel's (6.x): families at or past it get EAFNOSUPPORT, here EPERM
# CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET: only root may create namespaces.
# CLONE_UNTRACED (0x00800000): a child no tracer attaches to (strace -f loses it).
CLONE_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
# CLONE_PARENT (0x00008000): a child whose parent is the caller's parent, not the
# caller: the eBPF decoder would copy its cwd and fds from the wrong process (s27).
CLONE_REFUSED = CLONE_NS_FLAGS | 0x00800000 | 0x00008000
EPERM, ENOSYS, ENOTTY = 1, 38, 25
BTRFS_IOCTL_TYPE = 0x94  # btrfs's ioctls and the FICLONE family (cp --reflink falls back)

# The native ABI only (Docker adds the 32-bit ones). A 64-bit process can still make
# 32-bit calls (``int 0x80``), and there socket() is multiplexed through socketcall(),
# whose family seccomp cannot read: the AF_VSOCK refusal would not hold; nor would a
# recorder that decodes syscall numbers as 64-bit ones. A call of another ABI kills
# the process with SIGSYS (strace: ``+++ killed by SIGSYS +++``, judged as PS008).
_ARCHES = {
    "x86_64": {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": []},
    "aarch64": {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": []},
}


def profile(machine: str | None = None, *, traced: bool = True) -> dict[str, Any]:
    """The Docker seccomp profile (JSON-ready dict) for the sandbox container.

    *traced* False (the eBPF recorder: nothing traces the candidate): the recorded
    denials answer EPERM themselves, as strace's injection and an unprivileged
    process on a workstation do, rather than the ENOSYS of a TRACE nobody takes (a
    tell, and a parity gap). The eBPF recorder sees them at ``sys_exit`` either way."""
    special = set(TRACED_DENIED) | set(DENIED_EPERM) | set(DENIED_ENOSYS) | {"clone", "socket", "ioctl"}
    allowed = sorted(n for n in X86_64_SYSCALLS if n not in special)
    arch = _ARCHES.get(machine or platform.machine(), _ARCHES["x86_64"])
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "archMap": [arch],
        "syscalls": [
            {"names": allowed, "action": "SCMP_ACT_ALLOW"},
            {
                "names": ["clone"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": CLONE_REFUSED, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
            },
            # Every family but AF_VSOCK, as exact 64-bit values: seccomp compares the
            # whole register and the kernel reads an int, so "!= AF_VSOCK" let
            # AF_VSOCK | 1 << 32 through (libseccomp #383). One rule per value (OR).
            {
                "names": ["socket"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": AF_VSOCK, "valueTwo": 0, "op": "SCMP_CMP_LT"}],
            },
            *(
                {
                    "names": ["socket"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": family, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
                }
                for family in range(AF_VSOCK + 1, AF_MAX)
            ),
            # ioctl of every type but btrfs's (0x94; the type is bits 8-15 of the cmd, an
            # int): the root is a btrfs snapshot (sandbox.oci.roots) whose subvolume info
            # gives its creation time (seconds ago) and its templates' ids. Unmatched
            # commands answer ENOTTY, as on a filesystem without them: a rule per type, as
            # for socket.
            *(
                {
                    "names": ["ioctl"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 1, "value": 0xFF00, "valueTwo": t << 8, "op": "SCMP_CMP_MASKED_EQ"}],
                }
                for t in range(256)
                if t != BTRFS_IOCTL_TYPE
            ),
            {
                "names": ["ioctl"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": ENOTTY,
                "args": [
                    {
                        "index": 1,
                        "value": 0xFF00,
                        "valueTwo": BTRFS_IOCTL_TYPE << 8,
                        "op": "SCMP_CMP_MASKED_EQ",
                    }
                ],
            },
            {
                "names": list(TRACED_DENIED),
                "action": "SCMP_ACT_TRACE" if traced else "SCMP_ACT_ERRNO",
                "errnoRet": EPERM,
            },
            {"names": list(DENIED_EPERM), "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM},
            {"names": list(DENIED_ENOSYS), "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS},
        ],
    }


def security_opt(*, traced: bool = True) -> str:
    """``seccomp=<json>`` for the container's ``security_opt`` (*traced*: see :func:`profile`)."""
    return "seccomp=" + json.dumps(profile(traced=traced), separators=(",", ":"))
