"""The bpftrace program of the eBPF recorder, generated for one run.

Tracepoints only (this kernel has no kprobes, no fentry): ``syscalls:sys_enter_*``
stash the arguments per thread, ``syscalls:sys_exit_*`` print one record with the
result, reading user memory *after* the call (the kernel has faulted the pages in
by then). ``sched:sched_process_exit`` gives exits. Every probe keeps only tasks of
the run's pid namespace (``pid_ns_for_children`` inum) running as the candidate's
uid, so the root agent and anything of the host are never recorded.

Record grammar (decoded by :mod:`sandbox.trace.ebpf`): each record starts with
``\\x1e`` and ends with ``\\n``::

    \\x1e KIND SYSCALL NSECS HOST_TGID HOST_TID NS_TGID NS_TID HOST_PPID NUM... [\\x1f STRING]...

except the argv elements of an exec, which follow its ``E`` record as
``\\x1ea NSECS HOST_TGID INDEX \\x1f ARG``.

Strings are printed raw (``%s``, cut at :data:`STRLEN`); payloads with ``%r``
(non-printable bytes as ``\\xNN``). A string holding ``\\x1e`` or ``\\x1f`` breaks its
record: the decoder counts it as not understood and the run is then incomplete
(fail closed). bpftrace itself prints ``Lost N events`` when the perf buffer
overflows, and the program prints ``FULL`` when a thread's arguments do not fit its
maps: the decoder counts those too.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping

from sandbox.runner.btf import kernel_offsets

STRLEN = 184  # string bytes read (bpftrace 0.17 allows 200; 184 keeps every program within the BPF stack)
MAX_ARGS = 24  # argv elements read per execve; one more marks the argv as cut
# Payload bytes read per send. A literal size: a variable one makes bpftrace reserve
# STRLEN bytes and the send programs overflow the BPF stack. The bytes past the
# call's length are garbage the decoder cuts off.
DATA_CAP = 128
MMSG_CAP = 8  # messages of one sendmmsg recorded (each its own S record)
PERF_PAGES = 1024  # perf ring per CPU (4 MiB): fewer drops on bursts
# Entries of each map (bpftrace preallocates them in kernel memory, about 80 bytes each,
# 7 maps): the stash maps are keyed by thread, and the container's pids limit bounds
# its live threads. A stash that does not fit prints a FULL record (the run is then
# incomplete), never wrong arguments.
MAP_KEYS_MIN = 4096


def map_keys(tasks: int) -> int:
    """BPFTRACE_MAP_KEYS_MAX for a container of at most *tasks* tasks (its pids limit)."""
    return max(MAP_KEYS_MIN, 4 * tasks)


PATH_CALLS = (
    "open",
    "creat",
    "stat",
    "lstat",
    "access",
    "readlink",
    "mkdir",
    "unlink",
    "rmdir",
    "chmod",
    "chown",
    "lchown",
    "chdir",
    "truncate",
    "chroot",
)
AT_CALLS = (
    "openat",
    "openat2",
    "newfstatat",
    "statx",
    "faccessat",
    "faccessat2",
    "readlinkat",
    "unlinkat",
    "mkdirat",
    "mknodat",
    "fchmodat",
    "fchownat",
)
TWO_PATH_CALLS = ("rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat")
FD_CALLS = ("fchdir", "fchmod", "fchown", "ftruncate")
# a signal by pid, by thread, with a payload (sigqueue), or through a pidfd
SIGNAL_CALLS = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal")
PTRACE_CALLS = ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd")
# Seccomp denies most of these before sys_enter fires; sys_exit still does (with
# -ENOSYS/-EPERM), so they are recorded at exit, their first argument when known.
PRIVILEGED_CALLS = (
    "mount",
    "umount2",
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
    "setgroups",
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
    "swapon",
    "swapoff",
    "acct",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "sethostname",
    "setdomainname",
    "move_mount",
    "open_tree",
    "iopl",
    "ioperm",
    "open_by_handle_at",
    "name_to_handle_at",
    "userfaultfd",
)
SPAWN_CALLS = ("clone", "clone3", "fork", "vfork")

SOCKET_CALLS = ("connect", "bind")
# sendmmsg: up to MMSG_CAP of its messages, each as a sendmsg (its name and first
# iovec; strace prints them all)
SEND_CALLS = ("sendto", "sendmsg", "sendmmsg", "write", "writev")
# File writes are not recorded (the opens before them are), except those refused for
# a full disk (ENOSPC/EDQUOT: PS026) and the heads of scripts ("#!": PS003), from these
# and from write/writev.
FULL_WRITE_CALLS = ("pwrite64", "pwritev", "pwritev2", "fallocate")
FULL_ERRNOS = (28, 122)  # ENOSPC, EDQUOT
SHEBANG_CAP = 64  # bytes of a write that starts with "#!" (a script's interpreter line)
# fd bookkeeping: the decoder's fd table must not keep a closed fd's path for a number
# the kernel hands out again, nor forget at exec an fd whose close-on-exec flag was
# cleared (filtered in BPF: fcntl only for F_DUPFD, F_SETFD and F_DUPFD_CLOEXEC, ioctl
# only for FIONCLEX and FIOCLEX)
# pidfd_open: the pid a pidfd names (the decoder's fd table), for pidfd_send_signal
FD_TABLE_CALLS = ("dup", "dup2", "dup3", "fcntl", "ioctl", "close", "close_range", "pidfd_open")
# (cmd as the kernel reads it, an int) kept per call
FD_TABLE_CMDS = {"fcntl": (0, 2, 1030), "ioctl": (0x5450, 0x5451)}
OTHER_CALLS = ("memfd_create", "socket", *FD_TABLE_CALLS)
EXEC_CALLS = ("execve", "execveat")
# A child holds its pid until its parent reaps it (PS022 counts zombies): the waits
# with the word that says what they reported (wait4's status, waitid's si_code and si_pid).
WAIT_CALLS = ("wait4", "waitid")

# Record kinds without a string, compiled as one exit program per group: every
# program on raw_syscalls:sys_exit costs bpftrace about 0.1 s to compile and runs its
# filter on every syscall of the host. A group's printf argument structs share the
# 512-byte BPF stack (LLVM gives each call its own slots), hence more than one group.
MERGED: tuple[tuple[str, ...], ...] = (("G", "K", "T", "V", "F", "O", "U", "C", "e", "Z"),)

# Record kinds, one code per shape of the arguments (see the decoder).
KINDS: dict[str, tuple[str, ...]] = {
    "P": PATH_CALLS,
    "A": AT_CALLS,
    "R": TWO_PATH_CALLS,
    "G": FD_CALLS,
    "K": SIGNAL_CALLS,
    "T": PTRACE_CALLS,
    "V": PRIVILEGED_CALLS,
    "F": SPAWN_CALLS,
    "M": ("memfd_create",),
    "O": ("socket",),
    "U": FD_TABLE_CALLS,
    "C": SOCKET_CALLS,
    "S": SEND_CALLS,
    "W": FULL_WRITE_CALLS,
    "e": EXEC_CALLS,
    "Z": WAIT_CALLS,
}
KIND_CODES = {kind: n for n, kind in enumerate(KINDS, 1)}


def syscall_numbers() -> dict[str, int]:
    """x86_64 syscall numbers by name (the table lists 0-334, then 424 on)."""
    from sandbox.runner.syscalls import X86_64_SYSCALLS

    return {name: (i if i < 335 else i + 89) for i, name in enumerate(X86_64_SYSCALLS)}


_HDR_FMT = "%d %llu %d %d %d %d %d"
_SA_FMT = "%d %d %u %u %u %u %u"
_TASK = "(uint64)curtask"


def _ptr(base: str, off: int) -> str:
    return f"*(uint64*)({base} + {off})"


def _sockaddr(ptr: str) -> str:
    return (
        f"*(uint16*)uptr({ptr}), *(uint16*)uptr({ptr} + 2), *(uint32*)uptr({ptr} + 4), "
        f"*(uint32*)uptr({ptr} + 8), *(uint32*)uptr({ptr} + 12), *(uint32*)uptr({ptr} + 16), "
        f"*(uint32*)uptr({ptr} + 20)"
    )


def build_program(
    pidns: int,
    uid: int,
    level: int,
    offsets: Mapping[str, int] | None = None,
    *,
    nonce: str = "",
    sync: int | None = None,
) -> str:
    """The bpftrace program for one run: tasks of pid namespace *pidns* (inum, at
    nesting *level*: 1 for a container of the host) running as *uid*.

    *nonce* (secret, per run): READY carries it and every record with a string ends
    with ``\\x1f`` and it, after the string. A candidate's string that holds
    ``\\n\\x1e`` and a well-formed record splits its own record in two that would
    both parse; the first part then lacks the nonce, so the decoder counts it as not
    understood (the run is incomplete, never a path the candidate chose).

    *sync* (host tgid): a ``sched_get_priority_max`` call by that host process prints
    ``SYNC cpu nsecs nonce`` into the CPU's own perf buffer, behind every record
    already there (see :meth:`sandbox.runner.ebpf_recorder.EbpfRecorder.sync`).

    Two raw_syscalls probes and a table of wanted syscall numbers keep the program
    small: bpftrace 0.17 compiles every probe separately, and 160 per-syscall
    probes took 43 s and 130 MB to start here. Kernel structs are read at the
    literal *offsets* of :func:`sandbox.runner.btf.kernel_offsets` (the running
    kernel's when not given), never as ``curtask->…``: see :mod:`sandbox.runner.btf`.
    """
    o = dict(offsets) if offsets is not None else kernel_offsets()
    nrs = syscall_numbers()
    pidns_inum = (
        f"*(uint32*)({_ptr(_ptr(_TASK, o['task.nsproxy']), o['nsproxy.pid_ns'])} + {o['pidns.inum']})"
    )
    # the uid first: a helper call, where the namespace costs four reads, and the host's
    # own tasks (root) stop there (bpftrace's && short-circuits)
    flt = f"uid == {uid} && {pidns_inum} == {pidns}"

    def nspid(task: str) -> str:
        # struct pid ends with upid numbers[]; numbers[level].nr is the pid as the
        # container sees it.
        nr = o["pid.numbers"] + level * o["upid.size"] + o["upid.nr"]
        return f"*(int32*)({_ptr(task, o['task.thread_pid'])} + {nr})"

    leader = _ptr(_TASK, o["task.group_leader"])
    hdr = (
        f"$id, nsecs, pid, tid, {nspid(leader)}, {nspid(_TASK)}, "
        f"*(int32*)({_ptr(_TASK, o['task.real_parent'])} + {o['task.tgid']})"
    )
    want = " ".join(
        f"@want[{nrs[name]}] = {KIND_CODES[kind]};"
        for kind, names in KINDS.items()
        for name in names
        if name in nrs
    )
    stash = " ".join(f"@a{i}[tid] = args->args[{i}];" for i in range(5))
    # argv: one small record per element (time, host tgid, index), after the E
    # record (time read after it: sorting by time keeps them behind it). A full
    # header per element made this the costliest program to compile.
    argv = ["$t = nsecs;"]
    for i in range(MAX_ARGS + 1):
        value = '"..."' if i == MAX_ARGS else "str(uptr($p))"
        argv.append(
            f"$p = *(uint64*)uptr($v + {8 * i}); if ($p == 0) {{ return; }} "
            f'printf("\\x1ea %llu %d {i}\\x1f%s\\n", $t, pid, {value});'
        )
    enter = (
        f"tracepoint:raw_syscalls:sys_enter / ({flt}) / {{ $id = args->id; $k = @want[$id]; "
        "if ($k == 0) { return; } "
        f"{stash} "
        # sendmsg/writev: the first iovec and the name, read at entry (pointers into
        # the caller's structs); openat2: the flags inside struct open_how.
        # (x86_64 user ABI: msghdr name @0, iov @16; iovec base @0, len @8)
        f"if ($id == {nrs['sendmmsg']}) {{ @a3[tid] = args->args[1]; }} "  # the vector
        f"if ($id == {nrs['sendmsg']} || $id == {nrs['sendmmsg']}) {{ $m = args->args[1]; "
        "$iov = *(uint64*)uptr($m + 16); "
        "@a1[tid] = *(uint64*)uptr($iov); @a2[tid] = *(uint64*)uptr($iov + 8); "
        "@a4[tid] = *(uint64*)uptr($m); } "
        f"if ($id == {nrs['writev']}) {{ $iov = args->args[1]; "
        "@a1[tid] = *(uint64*)uptr($iov); @a2[tid] = *(uint64*)uptr($iov + 8); } "
        f"if ($id == {nrs['write']} || $id == {nrs['writev']}) {{ @a4[tid] = 0; }} "
        f"@a5[tid] = $id; "
        # the stash maps hold one entry per live thread (MAP_KEYS_MAX): a thread whose
        # stash did not fit would print wrong arguments, so the trace says so instead
        f'if (@a5[tid] != $id) {{ printf("\\x1eFULL\\n"); }} '
        f"if ($id == {nrs['clone3']}) {{ @a0[tid] = *(uint64*)uptr(args->args[0]); }} "
        f"if ($id == {nrs['openat2']}) {{ @a2[tid] = *(uint64*)uptr(args->args[2]); }} "
        # two-path calls as (old dirfd, old, new dirfd, new, flags) whatever their form
        f"if ($id == {nrs['rename']} || $id == {nrs['link']} || $id == {nrs['symlink']}) {{ "
        "@a0[tid] = (uint64)-100; @a1[tid] = args->args[0]; @a2[tid] = (uint64)-100; "
        "@a3[tid] = args->args[1]; @a4[tid] = 0; } "
        f"if ($id == {nrs['symlinkat']}) {{ @a0[tid] = (uint64)-100; @a3[tid] = args->args[2]; "
        "@a2[tid] = args->args[1]; @a1[tid] = args->args[0]; @a4[tid] = 0; } "
        f"if ($id == {nrs['renameat']}) {{ @a4[tid] = 0; }} "
        f"if ($k == {KIND_CODES['C']}) {{ @a4[tid] = args->args[1]; }} "
        f"if ($k == {KIND_CODES['e']}) {{ $path = args->args[0]; $v = args->args[1]; "
        f"if ($id == {nrs['execveat']}) {{ $path = args->args[1]; $v = args->args[2]; }} "
        f'printf("\\x1eE {_HDR_FMT} %d %d\\x1f%s\\n", {hdr}, (int32)args->args[0], '
        f"(int32)args->args[4], str(uptr($path))); " + " ".join(argv) + " } }"
    )
    a = [f"$a{i}" for i in range(5)]  # loaded once per program: every map lookup costs stack
    c = KIND_CODES
    # The connected peer as the kernel's socket has it (a send on a connected socket
    # carries no address); sk fields are read inline: every variable costs stack.
    fds = _ptr(_ptr(_ptr(_TASK, o["task.files"]), o["files.fdt"]), o["fdt.fd"])

    def fd_file(fd: str) -> str:  # the struct file behind *fd* in the caller's fd table
        return f"$f = *(uint64*)({fds} + 8 * ({fd} & 0xffff)); "

    mode = f"*(uint16*)({_ptr('$f', o['file.inode'])} + {o['inode.mode']})"
    sock = f"$sk = {_ptr(_ptr('$f', o['file.private']), o['socket.sk'])}; "
    peer = f"{fd_file(a[0])}$mode = {mode}; if (($mode & 0xf000) != 0xc000) {{ return; }} {sock}"
    sk_addr = ", ".join(
        [
            f"*(uint16*)($sk + {o['sk.family']})",
            f"*(uint16*)($sk + {o['sk.dport']})",
            f"*(uint32*)($sk + {o['sk.daddr']})",
        ]
        + [f"*(uint32*)($sk + {o['sk.v6_daddr'] + 4 * i})" for i in range(4)]
    )
    # A connect's destination as the kernel's socket has it once the call took it (0 or
    # EINPROGRESS): the address is read from the caller's memory at exit, after the
    # kernel copied it, and another thread may have rewritten it meanwhile. $sk stays 0
    # otherwise, and reads through it give zeros (a failed probe read zeroes its bytes).
    connected = (
        "$sk = (uint64)0; "
        # (an fd the index below would wrap, 65536 or more, is left to the memory: this
        # machine kind's engine allows 20000 fds, others may allow more)
        f"if ($id == {nrs['connect']} && ({a[0]} & 0xffffffff) < 65536 "
        f"&& ($r == 0 || $r == -{errno.EINPROGRESS})) {{ "
        f"{fd_file(a[0])}if ($f != 0 && ({mode} & 0xf000) == 0xc000) {{ {sock}}} }} "
    )
    # Sends: the payload prefix and the destination: the call's own address ("S …
    # 1"), else the connected peer as the kernel's socket has it ("S … 0");
    # write/writev only on sockets. An AF_UNIX address's path comes in a "u" record.
    # sendmmsg: each message sent has its own name (a UDP socket's messages may go to
    # different peers, the first even to none): up to MMSG_CAP of them, read at exit
    # from the vector (mmsghdr: 64 bytes, msghdr first), one printf in a loop (one
    # record's room on the BPF stack)
    send_to = (
        f"$n = 1; if ($id == {nrs['sendmmsg']} && $r > 1) {{ $n = $r; "
        f"if ($n > {MMSG_CAP}) {{ $n = {MMSG_CAP}; }} }} "
        f"if ({a[4]} == 0 && $n == 1) {{ return; }} "
        f"$i = 0; $a = {a[4]}; $b = {a[1]}; $l = {a[2]}; "
        "while ($i < $n) { "
        f"if ($i > 0) {{ $m = {a[3]} + 64 * $i; $a = *(uint64*)uptr($m); $v = *(uint64*)uptr($m + 16); "
        "$b = *(uint64*)uptr($v); $l = *(uint64*)uptr($v + 8); } "
        f'if ($a != 0) {{ printf("\\x1eS {_HDR_FMT} %d %d %llu 1 {_SA_FMT}\\x1f%r\\n", {hdr}, $r, '
        f"(int32){a[0]}, $l, {_sockaddr('$a')}, buf(uptr($b), {DATA_CAP})); }} "
        "$i = $i + 1; }"
    )
    send_connected = (
        f"if ({a[4]} != 0) {{ return; }} {peer}"
        f'printf("\\x1eS {_HDR_FMT} %d %d %llu 0 {_SA_FMT}\\x1f%r\\n", {hdr}, $r, (int32){a[0]}, '
        f"{a[2]}, {sk_addr}, buf(uptr({a[1]}), {DATA_CAP}));"
    )
    unix_path = (
        f"$a = {a[4]}; if ($a == 0 || *(uint16*)uptr($a) != 1) {{ return; }} "
        "$u = $a + 2; $abs = 0; if (*(uint8*)uptr($u) == 0) { $u = $a + 3; $abs = 1; } "
        f'printf("\\x1eu {_HDR_FMT} %d\\x1f%s\\n", {hdr}, $abs, str(uptr($u)));'
    )
    # The file an open gave the caller, as the kernel's fd table has it (inode number and
    # device): the path is read from the caller's memory at exit, after the kernel
    # copied it, and another thread may have rewritten it meanwhile. The decoder names
    # a planted file by these (sandbox.trace.ebpf); 0 0 for every other call.
    opens = " || ".join(f"$id == {nrs[n]}" for n in ("open", "creat", "openat", "openat2"))
    opened = (
        "$ino = (uint64)0; $dev = (uint32)0; "
        f"if ($r >= 0 && ({opens})) {{ {fd_file('$r')}"
        f"if ($f != 0) {{ $in = {_ptr('$f', o['file.inode'])}; "
        f"$ino = *(uint64*)($in + {o['inode.ino']}); "
        f"$dev = *(uint32*)({_ptr('$in', o['inode.sb'])} + {o['sb.dev']}); }} }} "
    )
    # the kernel reads fcntl's and ioctl's cmd (an int) from the low 32 bits: so does the filter
    fd_cmd_filter = "".join(
        f"if ($id == {nrs[call]} && "
        + " && ".join(f"({a[1]} & 0xffffffff) != {cmd}" for cmd in cmds)
        + ") { return; } "
        for call, cmds in FD_TABLE_CMDS.items()
    )
    branches = {
        "P": f'{opened}printf("\\x1eP {_HDR_FMT} %d %llu %llu %u\\x1f%s\\n", {hdr}, $r, {a[1]}, $ino, $dev, '
        f"str(uptr({a[0]})));",
        "A": f'{opened}printf("\\x1eA {_HDR_FMT} %d %d %llu %llu %u\\x1f%s\\n", {hdr}, $r, (int32){a[0]}, '
        f"{a[2]}, $ino, $dev, str(uptr({a[1]})));",
        # Two strings do not fit the BPF stack at once: the second name comes in an
        # "r" record from another program on the same exit (paired by thread).
        # the fifth word: renameat2's and linkat's flags (RENAME_EXCHANGE swaps two names)
        "R": f'printf("\\x1eR {_HDR_FMT} %d %lld %lld %llu\\x1f%s\\n", {hdr}, $r, {a[0]}, {a[2]}, {a[4]}, '
        f"str(uptr({a[1]})));",
        "r": f'printf("\\x1er {_HDR_FMT}\\x1f%s\\n", {hdr}, str(uptr({a[3]})));',
        "G": f'printf("\\x1eG {_HDR_FMT} %d %d %llu\\n", {hdr}, $r, (int32){a[0]}, {a[1]});',
        "K": f'printf("\\x1eK {_HDR_FMT} %d %d %d %d\\n", {hdr}, $r, (int32){a[0]}, (int32){a[1]}, '
        f"(int32){a[2]});",
        "T": f'printf("\\x1eT {_HDR_FMT} %d %lld %d\\n", {hdr}, $r, (int64){a[0]}, (int32){a[1]});',
        # V and F: seccomp may refuse the call before sys_enter runs; the stashed
        # syscall number says whether the argument printed is this call's.
        "V": f'printf("\\x1eV {_HDR_FMT} %d %llu %d\\n", {hdr}, $r, {a[0]}, $a5);',
        "F": f'printf("\\x1eF {_HDR_FMT} %d %llu %d\\n", {hdr}, $r, {a[0]}, $a5);',
        "M": f'printf("\\x1eM {_HDR_FMT} %d %llu\\x1f%s\\n", {hdr}, $r, {a[1]}, str(uptr({a[0]})));',
        # O too: seccomp refuses socket(AF_VSOCK) before sys_enter (the stashed number)
        "O": f'printf("\\x1eO {_HDR_FMT} %d %llu %llu %llu %d\\n", {hdr}, $r, {a[0]}, {a[1]}, {a[2]}, $a5);',
        "U": fd_cmd_filter
        + f'printf("\\x1eU {_HDR_FMT} %d %d %d %d\\n", {hdr}, $r, (int32){a[0]}, (int32){a[1]}, '
        f"(int32){a[2]});",
        "C": f"{connected}"
        f'printf("\\x1eC {_HDR_FMT} %d %d {_SA_FMT} {_SA_FMT}\\n", {hdr}, $r, (int32){a[0]}, '
        f"{_sockaddr(a[4])}, {sk_addr});",
        "S": send_to,
        "s": send_connected,
        "u": unix_path,
        "e": f'printf("\\x1ee {_HDR_FMT} %d\\n", {hdr}, $r);',
        # wait4(pid, status, options) / waitid(idtype, id, infop, options): the word
        # after the options is wait4's status or waitid's si_code (infop + 8), then si_pid
        # (infop + 16), read after the call and only when it reported a child
        "Z": f"$o = {a[2]}; $w = (int32)0; $sp = (int32)0; "
        f"if ($id == {nrs['waitid']}) {{ $o = {a[3]}; "
        f"if ($r == 0 && {a[2]} != 0) {{ $w = *(int32*)uptr({a[2]} + 8); "
        f"$sp = *(int32*)uptr({a[2]} + 16); }} }} "
        f"if ($id == {nrs['wait4']} && $r > 0 && {a[1]} != 0) {{ $w = *(int32*)uptr({a[1]}); }} "
        f'printf("\\x1eZ {_HDR_FMT} %d %d %d %llu %d %d\\n", {hdr}, $r, (int32){a[0]}, (int32){a[1]}, $o, '
        "$w, $sp);",
        # a write to any fd refused for a full disk (the errno is checked in wanted())
        "w": f'printf("\\x1ew {_HDR_FMT} %d %d\\n", {hdr}, $r, (int32){a[0]});',
        # the head of a script being written ("#!"): a script run directly shows only its
        # own exec, the kernel starts its interpreter unseen (PS003 needs the #! line)
        "h": f"if (*(uint16*)uptr({a[1]}) != 0x2123) {{ return; }} "
        f'printf("\\x1eh {_HDR_FMT} %d %d\\x1f%r\\n", {hdr}, $r, (int32){a[0]}, '
        f"buf(uptr({a[1]}), {SHEBANG_CAP}));",
    }

    # One exit program per record kind: the BPF stack (512 bytes) holds one
    # record's strings at a time, and LLVM does not share the slots of different
    # printf calls. No program deletes the stashed arguments (programs on one
    # tracepoint run in no promised order): the thread's next wanted call
    # overwrites them, sched_process_exit deletes them.
    def load(text: str) -> str:
        return " ".join(f"$a{i} = @a{i}[tid];" for i in range(6) if f"$a{i}" in text)

    def wanted(kind: str) -> str:
        if kind == "u":
            return f"$k != {c['C']} && $k != {c['S']}"
        if kind == "h":
            return f"($k != {c['S']} && $k != {c['W']}) || args->ret <= 0"
        if kind == "w":  # before any map lookup: nearly every write succeeds
            full = " && ".join(f"args->ret != -{n}" for n in FULL_ERRNOS)
            return f"($k != {c['S']} && $k != {c['W']}) || ({full})"
        return f"$k != {c[kind if kind in c else kind.upper()]}"

    def exit_program(skip: str, body: str) -> str:
        return (
            f"tracepoint:raw_syscalls:sys_exit / ({flt}) / {{ $id = args->id; $k = @want[$id]; "
            f"if ({skip}) {{ return; }} $r = args->ret; {load(body)} {body} }}"
        )

    def merged(kinds: tuple[str, ...]) -> str:
        # one program for several record kinds without strings: a syscall has one kind,
        # so at most one branch runs (its ``return``s end the program)
        skip = " && ".join(f"$k != {c[k]}" for k in kinds)
        return exit_program(skip, " ".join(f"if ($k == {c[k]}) {{ {branches[k]} }}" for k in kinds))

    grouped = {k for group in MERGED for k in group}
    exits = [exit_program(wanted(kind), text) for kind, text in branches.items() if kind not in grouped]
    exits += [merged(group) for group in MERGED]
    proc_exit = (
        f"tracepoint:sched:sched_process_exit / ({flt}) / {{ $id = -1; "
        f'printf("\\x1eX {_HDR_FMT} %d %d\\n", {hdr}, *(int32*)({_TASK} + {o["task.exit_code"]}), '
        f"*(int32*)({_ptr(_TASK, o['task.signal'])} + {o['signal.group_exit_code']})); "
        "delete(@a0[tid]); delete(@a1[tid]); delete(@a2[tid]); delete(@a3[tid]); delete(@a4[tid]); "
        "delete(@a5[tid]); }"
    )
    ready = f"READY {nonce}" if nonce else "READY"
    begin = f'BEGIN {{ {want} printf("\\x1e{ready}\\n"); }}'
    # its own tracepoint: raw_syscalls' 64-program budget is what limits recorders per host
    marker = (
        [
            # no args: bpftrace cannot type the syscalls:* formats without the kernel's BTF
            f"tracepoint:syscalls:sys_enter_sched_get_priority_max / pid == {sync} / "
            f'{{ printf("\\x1eSYNC %d %llu {nonce}\\n", cpu, nsecs); }}'
        ]
        if sync is not None
        else []
    )
    end = "END { " + " ".join(f"clear(@{m});" for m in ("want", "a0", "a1", "a2", "a3", "a4", "a5")) + " }"
    # the file an exec really ran: the kernel's own copy of the path (bprm->filename), as
    # the exec succeeds; the E record read it from the caller's memory, which another
    # thread may change between that read and the kernel's copy
    exec_done = (
        f"tracepoint:sched:sched_process_exec / ({flt}) / {{ $id = -1; "
        f'printf("\\x1ex {_HDR_FMT}\\x1f%s\\n", {hdr}, str(args->filename)); }}'
    )
    # ... and the argv it got: the new stack's strings (mm->arg_start to arg_end, that
    # length first, at most STRLEN bytes of them), the a records' being the caller's
    # memory at entry. Its own program: both strings overflow one program's BPF stack.
    mm = _ptr(_TASK, o["task.mm"])
    exec_argv = (
        f"tracepoint:sched:sched_process_exec / ({flt}) / {{ $id = -1; "
        f"$as = *(uint64*)({mm} + {o['mm.arg_start']}); $n = *(uint64*)({mm} + {o['mm.arg_end']}) - $as; "
        # no further than the strings: the stack may end soon after them (no environment),
        # and a read that crosses its end reads nothing
        f"$r = $n; if ($r > {STRLEN}) {{ $r = {STRLEN}; }} "
        f'printf("\\x1ey {_HDR_FMT} %llu\\x1f%r\\n", {hdr}, $n, buf(uptr($as), $r)); }}'
    )
    # the struct bpftrace makes of that tracepoint's format names pid_t, a type the empty
    # BTF it is given (see sandbox.runner.btf.empty_btf) does not define
    prelude = "#define pid_t int"
    text = "\n".join([prelude, begin, enter, *exits, proc_exit, exec_done, exec_argv, *marker, end]) + "\n"
    if nonce:  # format strings stay in bpftrace: no BPF stack, no ring bytes
        for conv in ("%s", "%r"):
            text = text.replace(f'\\x1f{conv}\\n"', f'\\x1f{conv}\\x1f{nonce}\\n"')
    return text
