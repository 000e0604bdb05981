"""Pure decoder of the eBPF recorder's output: records in, :class:`ParsedTrace` per step out.

The recorder (:mod:`sandbox.runner.ebpf_recorder`) runs the program of
:mod:`sandbox.runner.ebpf_program` on the host for the whole run; the steps run
one after another and the agent kills what a step leaves before the next starts,
so a record belongs to the last step that started before it (monotonic clock,
shared by host and container). The result is the same model the strace parser
gives, so the judge is unchanged; pids are the container's (``NS_TGID``), as
strace inside the container prints them.

Fail closed: ``Lost N events`` (bpftrace's perf buffer overflowed), ``FULL`` (a
thread's arguments did not fit the program's maps), a record that
does not parse (a ``\\x1e`` inside a string cuts one), or a missing ``READY``
make the trace incomplete.
"""

from __future__ import annotations

import bisect
import errno as errno_mod
import posixpath
import re
import shlex
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox.eventrows import EVENT_TEMPLATE as _EVENT_TEMPLATE
from sandbox.eventrows import make_event, share_strings
from sandbox.models import Address, EventKind, Frozen, Phase
from sandbox.runner.ebpf_program import MAX_ARGS, STRLEN, syscall_numbers
from sandbox.trace.kernel_paths import PROC_LINK_RE as _PROC_LINK_RE
from sandbox.trace.kernel_paths import kernel_path
from sandbox.trace.strace import ParsedTrace, _open_kind
from sandbox.trace.strace._syntax import normalise
from sandbox.trace.strace.events import process_info

__all__ = ["CUT", "EbpfTrace", "StepWindow", "parse_ebpf", "probe_hint"]

K = EventKind
_NAMES = {nr: name for name, nr in syscall_numbers().items()}
# ends a string the recorder read only the start of (STRLEN bytes): padding such as
# ``/./././`` can push ``.ssh/id_rsa`` past what it reads (vet.py: strace looks again)
CUT = "\u2026"
_LOST_RE = re.compile(r"(?m)^Lost (\d+) events$")
_SYNC_RE = re.compile(r"SYNC \d+ \d+ [0-9a-f]+")
_READY_RE = re.compile(r"READY(?: ([0-9a-f]+))?")
_AT_FDCWD = -100
_SAMPLES = 20
# Fixed numeric fields after the 7-field header, and strings, per record kind.
_RENAME_FLAGS = ((1, "RENAME_NOREPLACE"), (2, "RENAME_EXCHANGE"), (4, "RENAME_WHITEOUT"))
_SHAPE: dict[str, tuple[int, int]] = {
    "P": (4, 1),
    "A": (5, 1),
    "R": (4, 1),
    "r": (0, 1),
    "G": (3, 0),
    "K": (4, 0),
    "T": (3, 0),
    "V": (3, 0),
    "F": (3, 0),
    "M": (2, 1),
    "O": (5, 0),
    "U": (4, 0),
    "C": (16, 0),
    "u": (1, 1),
    "S": (11, 1),
    "w": (2, 0),
    "h": (2, 1),
    "E": (2, 1),
    "a": (1, 1),
    "e": (1, 0),
    "x": (0, 1),
    "y": (1, 1),
    "X": (2, 0),
    "Z": (6, 0),
}
_KIND_OF: dict[str, EventKind] = {
    "stat": K.FILE_STAT,
    "lstat": K.FILE_STAT,
    "access": K.FILE_STAT,
    "readlink": K.FILE_STAT,
    "chdir": K.FILE_STAT,
    "newfstatat": K.FILE_STAT,
    "statx": K.FILE_STAT,
    "faccessat": K.FILE_STAT,
    "faccessat2": K.FILE_STAT,
    "readlinkat": K.FILE_STAT,
    "mkdir": K.DIR_CREATE,
    "mkdirat": K.DIR_CREATE,
    "mknodat": K.DIR_CREATE,
    "unlink": K.FILE_DELETE,
    "rmdir": K.FILE_DELETE,
    "unlinkat": K.FILE_DELETE,
    "chmod": K.FILE_CHMOD,
    "chown": K.FILE_CHMOD,
    "lchown": K.FILE_CHMOD,
    "fchmodat": K.FILE_CHMOD,
    "fchownat": K.FILE_CHMOD,
    "fchmod": K.FILE_CHMOD,
    "fchown": K.FILE_CHMOD,
    "creat": K.FILE_WRITE,
    "truncate": K.FILE_WRITE,
    "ftruncate": K.FILE_WRITE,
    "fchdir": K.FILE_STAT,
    "chroot": K.PRIVILEGED,
    "rename": K.FILE_RENAME,
    "renameat": K.FILE_RENAME,
    "renameat2": K.FILE_RENAME,
    "link": K.FILE_LINK,
    "linkat": K.FILE_LINK,
    "symlink": K.FILE_LINK,
    "symlinkat": K.FILE_LINK,
}
_OPEN_FLAGS = (
    (0o1, "O_WRONLY"),
    (0o2, "O_RDWR"),
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o2000000, "O_CLOEXEC"),
    (0o20000000, "O_PATH"),
    (0o20200000, "O_TMPFILE"),
)
_CLONE_THREAD = 0x10000
_CLONE_NEW = {
    0x00020000: "CLONE_NEWNS",
    0x02000000: "CLONE_NEWCGROUP",
    0x04000000: "CLONE_NEWUTS",
    0x08000000: "CLONE_NEWIPC",
    0x10000000: "CLONE_NEWUSER",
    0x20000000: "CLONE_NEWPID",
    0x40000000: "CLONE_NEWNET",
}
_PTRACE = {
    0: "PTRACE_TRACEME",
    1: "PTRACE_PEEKTEXT",
    2: "PTRACE_PEEKDATA",
    16: "PTRACE_ATTACH",
    0x4206: "PTRACE_SEIZE",
}
_FAMILIES = {1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET", 40: "AF_VSOCK"}
_SOCK_TYPES = {1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 5: "SOCK_SEQPACKET"}


class StepWindow(Frozen):
    """One step as the agent ran it: its key (``phase.tag``) and when it started
    (``CLOCK_MONOTONIC`` nanoseconds, the clock bpftrace's ``nsecs`` reads)."""

    key: str
    phase: Phase
    start_ns: int
    cwd: str = "/"
    main_pid: int | None = None  # the step's own process (container pid), as the agent saw it
    # What that process was exec'd as, by root, before the recorder (uid filter) could see
    # it: setpriv … -- choom … -- ARGV. Stated as the process's first exec so that the
    # judge tells the harness's privilege drop from the candidate, as under strace.
    root_argv: tuple[str, ...] = ()
    root_exe: str = ""
    # The agent's own processes that run as the candidate's uid (container pids, from
    # its records): its kill(-1) children, the developer kit's copy. Root starts them
    # and they drop to that uid, so the uid filter lets them in; strace never traces
    # them. Their records (and their children's) are dropped; a pid counts until that
    # process's exit, and the candidate cannot hold it meanwhile.
    agent_pids: tuple[int, ...] = ()
    # The planted files of the step's pass as (kernel dev_t, inode number, path), stated
    # by the agent before the pass ran: an open names the file the kernel opened by
    # these, whatever path its caller's memory held when it returned (a second thread
    # can rewrite it after the kernel copied it).
    inodes: tuple[tuple[int, int, str], ...] = ()


class EbpfTrace(Frozen):
    """The decoded recorder output: one parsed trace per step key."""

    steps: dict[str, ParsedTrace]
    records: int
    lost: int  # events lost (perf buffer overflow, or a full map)
    unparsed: int
    samples: tuple[str, ...]
    stray: int  # records from before the first step (none expected)
    ready: bool  # the recorder attached before the steps (its READY record)
    complete: bool


def parse_ebpf(
    text: str, windows: Sequence[StepWindow], *, wall_offset: float = 0.0, seq_start: int = 0
) -> EbpfTrace:
    """Decode the recorder's output *text* into one :class:`ParsedTrace` per window.

    *wall_offset* turns monotonic seconds into wall-clock time (events carry the
    wall clock, like strace's ``-ttt``). Never raises on malformed input.
    """
    lost = sum(int(n) for n in _LOST_RE.findall(text))
    text = _LOST_RE.sub("", text)
    chunks = text.split("\x1e")
    ready = False
    end = ""  # what every record with a string ends with (READY's nonce)
    unparsed: list[str] = []
    records: list[tuple[str, list[int], list[str]]] = []
    for chunk in chunks[1:]:
        body = chunk[:-1] if chunk.endswith("\n") else None
        if body is None and chunk.rstrip("\n") != chunk:
            body = chunk.rstrip("\n")  # END's blank lines after the last record
        if not ready and body is not None and (nonce := _ready_end(body)) is not None:
            ready, end = True, nonce
            continue
        if body == "FULL":  # a thread's arguments did not fit the program's maps
            lost += 1
            continue
        if body is not None and _SYNC_RE.fullmatch(body):  # the host's own marker (recorder.sync)
            continue
        rec = _split(body, end) if body else None
        if rec is None:
            unparsed.append(chunk[:300])
            continue
        records.append(rec)
    ordered = sorted(windows, key=lambda w: w.start_ns)
    starts = [w.start_ns for w in ordered]
    per_step: list[list[tuple[str, list[int], list[str]]]] = [[] for _ in ordered]
    stray = 0
    for rec in sorted(records, key=lambda r: r[1][1]):
        i = bisect.bisect_right(starts, rec[1][1]) - 1
        if i < 0:
            stray += 1
        else:
            per_step[i].append(rec)
    steps: dict[str, ParsedTrace] = {}
    seq = seq_start
    links: dict[str, str] = {}
    for window, recs in zip(ordered, per_step, strict=True):
        parsed = _Step(window, wall_offset, links).run(recs, seq)
        seq += len(recs) + 1
        steps[window.key] = parsed
    complete = ready and lost == 0 and not unparsed
    return EbpfTrace(
        steps=steps,
        records=len(records),
        lost=lost,
        unparsed=len(unparsed),
        samples=tuple(unparsed[:_SAMPLES]),
        stray=stray,
        ready=ready,
        complete=complete,
    )


# Reads that look for a sandbox or a debugger: the agent's test on strace's traces
# (sandbox.agent.passes.probe_trigger), on the literal argument as the call gave it.
_PROBE_PATH = re.compile(
    r"^(?:/\.dockerenv|/run/\.containerenv|/proc/1/(?:cgroup|sched|mountinfo|mounts|cmdline|comm|environ)"
    r"|/proc/(?:self|thread-self|\d+)/cgroup|/proc/(?:self|thread-self)(?:/task/\d+)?/status)$"
)
_PTRACE_NR = syscall_numbers()["ptrace"]


def probe_hint(text: str, since_ns: int) -> str:
    """Why the time pass should run, from the recorder's output so far: records at or
    after *since_ns* (the default pass's start-up) that looked for a sandbox ("" when
    none did). The eBPF recorder's trace is on the host, so the host decides this
    between the passes (the agent does it on strace's traces). As there, a read of
    the process's own status alone does not count (numpy reads it at import); a
    second kind of look, or ``PTRACE_TRACEME``, does."""
    seen: dict[str, str] = {}
    end = ""
    for chunk in text.split("\x1e")[1:]:
        if chunk[:1] not in ("P", "A", "T", "R"):  # the only kinds it looks at (and READY)
            continue
        body = chunk.rstrip("\n")
        if not end and (nonce := _ready_end(body)) is not None:
            end = nonce
            continue
        rec = _split(body, end)
        if rec is None or rec[1][1] < since_ns:
            continue
        kind, nums, strs = rec
        if kind in ("P", "A") and strs and _PROBE_PATH.match(strs[0]):
            what = strs[0]
        elif kind == "T" and nums[0] == _PTRACE_NR and nums[8] == 0:
            what = "PTRACE_TRACEME"
        else:
            continue
        seen.setdefault("status" if what.endswith("/status") else what, what)
        if set(seen) - {"status"}:
            return f"the default pass probed for a sandbox ({', '.join(sorted(seen.values())[:3])})"
    return ""


def _ready_end(body: str) -> str | None:
    """What every string record ends with, from the READY record *body* ("" for a trace
    from before the nonce); None when *body* is not READY."""
    m = _READY_RE.fullmatch(body)
    if m is None:
        return None
    return f"\x1f{m[1]}" if m[1] else ""


def _split(body: str, end: str = "") -> tuple[str, list[int], list[str]] | None:
    """One record's kind, numbers and string; None when it does not parse. With *end*
    (``\x1f`` and the run's nonce), a string must end with it: the first part of a
    record that a candidate's string split in two does not (see ebpf_program)."""
    kind = body[:1]
    shape = _SHAPE.get(kind)
    if shape is None:
        return None
    nnums, nstrs = shape
    head, sep, tail = body[2:].partition("\x1f")
    try:
        nums = [int(x) for x in head.split()]
    except ValueError:
        return None
    if kind == "U" and len(nums) == 10:  # a trace from before close/fcntl were recorded
        nums.append(0)
    if kind in ("P", "A") and len(nums) == 5 + nnums:  # from before the opened file's inode
        nums += [0, 0]
    if kind == "O" and len(nums) == 7 + 4:  # from before the stashed call was printed: its own
        nums.append(nums[0])
    if kind == "R" and len(nums) == 7 + 3:  # from before the flags were recorded
        nums.append(0)
    if kind == "a" and len(nums) == 3:
        # the short argv element: time, host tgid, index (see ebpf_program)
        nums = [0, nums[0], nums[1], 0, 0, 0, 0, nums[2]]
    if len(nums) != 7 + nnums or bool(sep) != bool(nstrs):
        return None
    if nstrs and end:
        if not tail.endswith(end):
            return None
        tail = tail[: -len(end)]
    strs = [tail] if nstrs else []  # one string at most, always last: keep any \x1f in it
    return kind, nums, strs


def _kernel_filename(given: str, dirfd: int, eflags: int, name: str) -> str:
    """What the kernel names an exec of *given* (its ``bprm->filename``): the string as
    given, except execveat's relative path or empty path (AT_EMPTY_PATH) under a dirfd,
    ``/dev/fd/N/path`` and ``/dev/fd/N``."""
    if name != "execveat" or given.startswith("/") or dirfd == _AT_FDCWD:
        return given
    if not given and eflags & _AT_EMPTY_PATH:
        return f"/dev/fd/{dirfd}"
    return f"/dev/fd/{dirfd}/{given}"


def _same_string(recorded: str, expected: str) -> bool:
    """Whether a recorded string is *expected*, as far as the recorder read it (both are
    cut after STRLEN - 1 bytes)."""
    if recorded == expected:
        return True
    raw = recorded.encode("utf-8", "surrogateescape")
    return len(raw) >= STRLEN - 1 and expected.encode("utf-8", "surrogateescape").startswith(raw)


def _argv_differs(shown: list[str], copied: list[str], cut: bool, script: str | None) -> bool:
    """Whether the argv the a records read (*shown*) is not the kernel's (*copied*), as
    far as both were read: a cut string (CUT) or argv (MAX_ARGS, then "...") ends
    what can be compared. A script's exec (*script*: the file as the kernel names it)
    is not a change: the kernel puts its interpreter line and the script's name where
    argv[0] was (``[interpreter, (arg), script, *argv[1:]]``)."""
    k = len(copied) - len(shown) + 1
    if (
        script is not None
        and not cut
        and 2 <= k <= len(copied)
        and copied[k - 1] == script
        and copied[k:] == shown[1:]
    ):
        return False
    known, partial = b"", cut
    for i, arg in enumerate(shown):
        if i == MAX_ARGS and arg == "...":
            partial = True
            break
        if arg.endswith(CUT):
            known += arg[: -len(CUT)].encode("utf-8", "surrogateescape")
            partial = True
            break
        known += arg.encode("utf-8", "surrogateescape") + b"\0"
    kernel = b"".join(a.encode("utf-8", "surrogateescape") + b"\0" for a in copied)
    if cut:
        kernel = kernel[: -len(CUT.encode()) - 1]  # the cut string: no CUT, no NUL
    if not partial:
        return known != kernel
    n = min(len(known), len(kernel))
    return known[:n] != kernel[:n]


def _argv_text(argv: list[str]) -> str:
    text = shlex.join(argv)
    return text if len(text) <= 200 else text[:200] + CUT


def _errno(ret: int) -> str | None:
    return errno_mod.errorcode.get(-ret, f"E{-ret}") if ret < 0 else None


_WUNTRACED, _WCONTINUED, _WNOWAIT = 2, 8, 0x01000000
_CLOSE_RANGE_CLOEXEC = 4
_O_NOFOLLOW = 0o400000
_AT_EMPTY_PATH, _AT_SYMLINK_NOFOLLOW = 0x1000, 0x100
_CLONE_FS, _CLONE_FILES = 0x200, 0x400
_P_PID = 1
_CLD_REAPED = (1, 2, 3)  # CLD_EXITED, CLD_KILLED, CLD_DUMPED (not TRAPPED, STOPPED, CONTINUED)


def _reaped(name: str, ret: int, first: int, ident: int, options: int, word: int, si_pid: int) -> int | None:
    """The child a wait4/waitid reaped, as the strace parser says it (PS022 counts a child
    until then): wait4's result unless it reported a stop or continue; waitid's si_pid for
    an exit without WNOWAIT; the pid asked for when the wait failed with ECHILD."""
    if name == "wait4":
        if ret > 0:
            stopped = options & (_WUNTRACED | _WCONTINUED) and ((word & 0xFF) == 0x7F or word == 0xFFFF)
            return None if stopped else ret
        return first if ret == -errno_mod.ECHILD and first > 0 else None
    if options & _WNOWAIT:
        return None
    if ret == 0 and word in _CLD_REAPED and si_pid > 0:
        return si_pid
    return ident if ret == -errno_mod.ECHILD and first == _P_PID and ident > 0 else None


def _open_flags(flags: int) -> str:
    names = [name for bit, name in _OPEN_FLAGS if flags & bit == bit and name != "O_TMPFILE"]
    if flags & 0o20200000 == 0o20200000:
        names.append("O_TMPFILE")
    return "|".join(["O_RDONLY", *names] if not flags & 3 else names) or "O_RDONLY"


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


def _address(fam: int, port: int, words: Sequence[int], unix: tuple[int, str] | None) -> Address | None:
    port = ((port & 0xFF) << 8) | (port >> 8)  # read as a little-endian u16, sent big-endian
    if fam == 2:
        return Address(
            family="inet", host=".".join(str(b) for b in words[0].to_bytes(4, "little")), port=port
        )
    if fam == 10:
        raw = b"".join(w.to_bytes(4, "little") for w in words[1:5])
        import ipaddress

        return Address(family="inet6", host=str(ipaddress.IPv6Address(raw)), port=port)
    if fam == 1:
        if unix is None:
            return Address(family="unix")
        abstract, path = unix
        return Address(family="unix", path=("@" + path) if abstract else path)
    if fam == 16:
        return Address(family="netlink")
    if fam == 0:
        return None
    return Address(family="other", host=_FAMILIES.get(fam, str(fam)))


def _taken(fam: int, port: int, words: Sequence[int]) -> Address | None:
    """The destination a connect's socket holds (the C record's second address), or
    None where the program read none: not a connect the kernel took, not an inet socket,
    or a socket disconnected (AF_UNSPEC) to the zero address."""
    if fam not in (2, 10) or (port == 0 and not any(words)):
        return None
    return _address(fam, port, words, None)


def _escape(data: bytes) -> str:
    out = []
    for b in data:
        if b == 0x5C:
            out.append("\\\\")
        elif b == 0x22:
            out.append('\\"')
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        elif b == 0x0A:
            out.append("\\n")
        elif b == 0x09:
            out.append("\\t")
        elif b == 0x0D:
            out.append("\\r")
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


_R_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")


def _unbuf(text: str) -> bytes:
    """Bytes of a bpftrace ``%r`` buffer (printable ASCII as is, the rest ``\\xNN``)."""
    out = bytearray()
    pos = 0
    for m in _R_ESCAPE.finditer(text):
        out += text[pos : m.start()].encode("utf-8", "surrogateescape")
        out.append(int(m.group(1), 16))
        pos = m.end()
    out += text[pos:].encode("utf-8", "surrogateescape")
    return bytes(out)


_ABBREVIATED = re.compile(r"<(\d+) modules>")


@dataclass(slots=True)
class _Exec:
    """An exec from its E record to its return (e): what the caller's memory showed at
    entry, and what the kernel copied (x: the file, y: the argv) where they differ."""

    t: float
    name: str  # execve or execveat
    proc: _Proc
    given: str  # the path string as the memory showed it
    dirfd: int
    eflags: int
    path: str  # the path it names (resolved)
    path2: str | None  # an fd exec's file, or the name the memory showed for a raced path
    argv: list[str] = field(default_factory=list)
    path_raced: bool = False
    copied: tuple[list[str], bool] | None = None  # the kernel's argv, and whether cut

    def kernel_name(self) -> str:
        """The file as the kernel names it, had the memory not changed."""
        return _kernel_filename(self.given, self.dirfd, self.eflags, self.name)


_O_CLOEXEC = 0o2000000
# fcntl's F_SETFD and ioctl's FIOCLEX/FIONCLEX set or clear an fd's close-on-exec flag
# (the only fcntl/ioctl commands besides F_DUPFD* that the recorders keep)
_F_SETFD, _FD_CLOEXEC = 2, 1
_FIONCLEX, _FIOCLEX = 0x5450, 0x5451


def _mark_cloexec(proc: _Proc, fd: int, on: bool) -> None:
    """Record whether *fd* (just made) closes at exec."""
    if on:
        proc.cloexec.add(fd)
    else:
        proc.cloexec.discard(fd)


class _PidFd(int):
    """An fd table entry: a pidfd (``pidfd_open``) and the pid it names."""


class _Socket:
    """An fd table entry: a socket not yet connected, and its type (``SOCK_STREAM`` …)."""

    __slots__ = ("type",)

    def __init__(self, type_: str) -> None:
        self.type = type_


# an fd table: a file's path, a connected socket's peer, a pidfd, an unconnected socket, unknown
_FdTable = dict[int, "str | Address | _PidFd | _Socket | None"]


class _Proc:
    __slots__ = (
        "argv",
        "cloexec",
        "cwd",
        "end",
        "exe",
        "execs",
        "exit_code",
        "fds",
        "killed_by",
        "pid",
        "ppid",
        "start",
    )

    def __init__(self, pid: int, ppid: int | None, start: float, cwd: str, parent: _Proc | None) -> None:
        self.pid = pid
        self.ppid = ppid
        self.start = start
        self.end: float | None = None
        self.exit_code: int | None = None
        self.killed_by: str | None = None
        self.argv: tuple[str, ...] = parent.argv if parent else ()
        self.exe: str = parent.exe if parent else ""
        self.cwd: str = parent.cwd if parent else cwd
        self.fds: _FdTable = dict(parent.fds) if parent else {}
        # fds the kernel closes at a successful exec (O_CLOEXEC and the like): the new
        # image must not find their old names in the table (s27)
        self.cloexec: set[int] = set(parent.cloexec) if parent else set()
        self.execs: list[tuple[str, ...]] = []


class _Step:
    """Decode the records of one step (sorted by time) into events and processes."""

    def __init__(self, window: StepWindow, wall_offset: float, links: dict[str, str] | None = None) -> None:
        self.window = window
        self.phase = window.phase
        self.wall = wall_offset
        self.procs: dict[int, _Proc] = {}
        self.order: list[_Proc] = []
        self.host_to_ns: dict[int, int] = {}
        # child ns pid -> its parent, and the parent's fd table and cwd when the fork
        # returned there, until the child shows (what the child inherited: the parent
        # may change either before the child's first record)
        self.spawned: dict[int, tuple[_Proc, _FdTable, str, set[int]]] = {}
        self.events: list[dict[str, Any]] = []
        # host tgid -> host tid -> its exec in progress: threads of one process may exec
        # at once (one succeeds, the kernel kills the others), so never one per process
        self.pending_exec: dict[int, dict[int, _Exec]] = {}
        self.exec_last: dict[int, int] = {}  # host tgid -> the thread of its latest E (argv records)
        self.exec_won: dict[int, int] = {}  # host tgid -> the thread whose exec succeeded (x)
        self.pending_two: dict[int, dict[str, Any]] = {}  # host tid -> R event waiting for its r
        self.pending_unix: dict[int, tuple[int, str]] = {}
        self.waiting_unix: dict[int, dict[str, Any]] = {}
        self.root_event: dict[str, Any] | None = None  # the stated setpriv exec
        self.agents = set(window.agent_pids)
        self.inodes = {(dev, ino): path for dev, ino, path in window.inodes}
        # symlinks the run created so far (link -> absolute target): shared by the steps,
        # a link made at install is on disk at import (the passes' reset restores it too)
        self.links: dict[str, str] = {} if links is None else links
        self.shared: set[int] = set()  # pids sharing a cwd or fd table (CLONE_FS/FILES)
        self.tgid_of: dict[int, int] = {}  # ns tid -> ns tgid (tkill names a thread)
        self.degraded = 0
        self.truncated = 0

    def run(self, records: Sequence[tuple[str, list[int], list[str]]], seq: int) -> ParsedTrace:
        for n, (kind, nums, strs) in enumerate(records):
            self.record(n, kind, nums, strs)
        for group in self.pending_exec.values():
            for pend in group.values():
                self.exec_event(pend, None)  # never returned: killed mid-exec
        for ev in self.pending_two.values():
            ev.pop("_d2", None)
            self.degraded += 1
        self.events.sort(key=lambda f: (f["time"], f["seq"]))
        events = []
        for i, fields in enumerate(self.events, seq):
            fields["seq"] = i
            events.append(make_event(share_strings(fields)))
        processes = tuple(process_info(p, self.phase) for p in self.order)
        return ParsedTrace.model_construct(
            events=tuple(events),
            processes=processes,
            lines=len(records),
            unparsed=0,
            unparsed_samples=(),
            truncated_strings=self.truncated,
            degraded=self.degraded,
            complete=True,
        )

    # --- helpers ------------------------------------------------------------------

    def proc(self, ns_tgid: int, host_tgid: int, host_ppid: int, t: float) -> _Proc:
        proc = self.procs.get(ns_tgid)
        if proc is not None:
            return proc
        forked = self.spawned.pop(ns_tgid, None)
        if forked is None:
            ppid = self.host_to_ns.get(host_ppid)
            parent = self.procs.get(ppid) if ppid is not None else None
        else:
            parent = forked[0]
        proc = _Proc(ns_tgid, parent.pid if parent else None, t, self.window.cwd, parent)
        if forked is not None:
            proc.fds, proc.cwd, proc.cloexec = dict(forked[1]), forked[2], set(forked[3])
        self.procs[ns_tgid] = proc
        self.host_to_ns[host_tgid] = ns_tgid
        self.order.append(proc)
        if parent is None and ns_tgid == self.window.main_pid and self.window.root_argv:
            ev = self.event(-1, t, proc, "execve", K.EXEC, 0)
            ev["path"] = self.window.root_exe or None
            ev["argv"] = self.window.root_argv
            ev["flags"] = "as root, before the recorder's uid filter (from the agent's step record)"
            proc.argv, proc.exe = self.window.root_argv, self.window.root_exe
            proc.execs.append(proc.argv)
            self.root_event = ev
        return proc

    def string(self, s: str) -> str:
        if len(s.encode("utf-8", "surrogateescape")) >= STRLEN - 1:
            self.truncated += 1
            return s + CUT  # never a real file's name: no rule matches what was not read
        return s

    def kernel_argv(self, length: int, raw: bytes) -> tuple[list[str], bool] | None:
        """An exec's argv as the kernel copied it (the y record: the strings' *length*,
        the first STRLEN bytes of them in *raw*), and whether it was cut; a cut's
        last string ends with CUT, as a cut a record ends with. None when the read
        failed (a failed read gives zeros: only empty strings look the same)."""
        if len(raw) < min(length, STRLEN) or not raw.strip(b"\0"):
            return None
        cut = length > len(raw)
        parts = raw[:length].split(b"\0")
        if not cut:
            parts = parts[:-1]  # after the last string's NUL
        argv = [a.decode("utf-8", "surrogateescape") for a in parts]
        if cut:
            self.truncated += 1
            argv[-1] += CUT
        return argv, cut

    def pidfd(self, proc: _Proc, fd: int) -> int | None:
        """The pid behind *fd* when it is a pidfd the trace saw opened (None otherwise,
        as strace gives when its ``-yy`` shows no ``pid:``)."""
        entry = proc.fds.get(fd)
        return int(entry) if isinstance(entry, _PidFd) else None

    def resolve(self, proc: _Proc, raw: str, dirfd: int = _AT_FDCWD, *, follow: bool = False) -> str | None:
        """The kernel's path for *raw* (relative to *dirfd*); *follow*: the call follows
        a symlink in the last component (opens, exec, chdir)."""
        path = self.string(raw)
        if path.startswith("/"):
            return self.kernel(proc, path, follow)
        if proc.pid in self.shared:
            # a process that shares its cwd or fd table with another (clone with
            # CLONE_FS or CLONE_FILES, not a thread): the other's chdir or dup moves
            # this one's base where the decoder does not follow; unknown, marked so
            self.degraded += 1
            return CUT + "/" + path if path else None
        if dirfd == _AT_FDCWD:
            base: str | Address | _PidFd | _Socket | None = proc.cwd
        else:
            base = proc.fds.get(dirfd)
        if not isinstance(base, str):
            # a directory fd the decoder never saw opened (passed over SCM_RIGHTS,
            # inherited): the path's start is unknown, and marked so, like a cut one
            self.degraded += 1
            return CUT + "/" + path if path else None
        if not path:
            return base
        return self.kernel(proc, base.rstrip("/") + "/" + path, follow)

    def move_links(self, old: str, new: str) -> None:
        """The known links at or under *old* now live under *new* (a rename), and what
        was at *new* is gone (replaced)."""

        def under(k: str, p: str) -> bool:
            return k == p or k.startswith(p + "/")

        moved = {new + k[len(old) :]: v for k, v in self.links.items() if under(k, old)}
        for k in [k for k in self.links if under(k, old) or under(k, new)]:
            del self.links[k]
        self.links.update(moved)

    def kernel(self, proc: _Proc, path: str, follow: bool = False) -> str:
        def find(pid: int) -> _Proc | None:
            return self.procs.get(self.tgid_of.get(pid, pid))

        return kernel_path(path, proc, find, self.links, follow_last=follow)

    def event(
        self, n: int, t: float, proc: _Proc, name: str, kind: EventKind, ret: int | None
    ) -> dict[str, Any]:
        fields = _EVENT_TEMPLATE.copy()  # every field, its key table shared
        fields["phase"] = self.phase
        fields["seq"] = n
        fields["pid"] = proc.pid
        fields["time"] = t
        fields["syscall"] = name
        fields["kind"] = kind
        fields["result"] = ret
        fields["errno"] = _errno(ret) if ret is not None else None
        self.events.append(fields)
        return fields

    def opened(self, ev: dict[str, Any], path: str | None, dev: int, ino: int) -> str | None:
        """The path of the file an open gave its caller: a planted file the kernel's fd
        names (*dev*, *ino*) is that file, whatever name the caller's memory showed at
        the call's return; that name stays in ``path2`` as evidence."""
        known = self.inodes.get((dev, ino)) if ino else None
        if known is None or known == path:
            return path
        ev["path2"] = path
        return known

    # --- records ------------------------------------------------------------------

    def record(self, n: int, kind: str, nums: list[int], strs: list[str]) -> None:
        sid, nsecs, host_tgid, host_tid, ns_tgid, ns_tid, host_ppid = nums[:7]
        rest = nums[7:]
        if kind == "a":  # an argv element of the thread group's latest pending exec
            pend = self.pending_exec.get(host_tgid, {}).get(self.exec_last.get(host_tgid, -1))
            if pend is not None:
                if rest[0] >= MAX_ARGS:
                    pend.argv.append("...")
                    self.truncated += 1
                else:
                    pend.argv.append(self.string(strs[0]))
            return
        if ns_tgid in self.agents and ns_tgid not in self.procs:
            if kind == "X" and ns_tid == ns_tgid:
                self.agents.discard(ns_tgid)  # that pid is anyone's again
            elif kind == "F" and rest[0] > 0 and not (rest[2] == sid and rest[1] & _CLONE_THREAD):
                self.agents.add(rest[0])  # its child is the agent's too
            return
        self.tgid_of[ns_tid] = ns_tgid
        t = nsecs / 1e9 + self.wall
        proc = self.proc(ns_tgid, host_tgid, host_ppid, t)
        name = _NAMES.get(sid, f"syscall_{sid}")
        s = strs[0] if strs else ""
        if kind == "P":
            ret, arg, ino, dev = rest
            follow = name == "chdir" or (name in ("open", "creat") and not arg & _O_NOFOLLOW)
            path = self.resolve(proc, s, follow=follow)
            if name == "open":
                ev = self.event(n, t, proc, name, _open_kind(_open_flags(arg)), ret)
                ev["flags"] = _open_flags(arg)
            else:
                ev = self.event(n, t, proc, name, _KIND_OF.get(name, K.OTHER), ret)
                if name in ("mkdir", "chmod", "access", "creat"):
                    ev["flags"] = oct(arg) if name != "access" else str(arg)
            path = self.opened(ev, path, dev, ino)
            if name in ("open", "creat") and ret >= 0:
                proc.fds[ret] = path
                _mark_cloexec(proc, ret, name == "open" and bool(arg & _O_CLOEXEC))
            ev["path"] = path
            if name == "chdir" and ret == 0 and path:
                proc.cwd = path
            elif ret == 0 and self.links and name == "unlink":
                self.links.pop(path or "", None)
        elif kind == "A":
            ret, dirfd, arg, ino, dev = rest
            follow = name in ("openat", "openat2") and not arg & _O_NOFOLLOW
            path = self.resolve(proc, s, dirfd, follow=follow)
            if name in ("openat", "openat2"):
                flags = _open_flags(arg)
                ev = self.event(n, t, proc, name, _open_kind(flags), ret)
                ev["flags"] = flags
                path = self.opened(ev, path, dev, ino)
                if ret >= 0:
                    proc.fds[ret] = path
                    _mark_cloexec(proc, ret, bool(arg & _O_CLOEXEC))
            else:
                ev = self.event(n, t, proc, name, _KIND_OF.get(name, K.OTHER), ret)
                if name == "unlinkat":
                    ev["flags"] = "AT_REMOVEDIR" if arg & 0x200 else "0"
                elif name in ("mkdirat", "fchmodat"):
                    ev["flags"] = oct(arg)
            ev["path"] = path
            if ret == 0 and self.links and name == "unlinkat":
                self.links.pop(path or "", None)
        elif kind == "R":
            ret, d1, d2, how = rest
            ev = self.event(n, t, proc, name, _KIND_OF.get(name, K.OTHER), ret)
            ev["path"] = self.resolve(proc, s, d1) if not name.startswith("symlink") else self.string(s)
            ev["_d2"] = d2
            if name == "renameat2" and how & 7:
                ev["flags"] = "|".join(word for bit, word in _RENAME_FLAGS if how & bit)
            self.pending_two[host_tid] = ev
        elif kind == "r":
            ev2 = self.pending_two.pop(host_tid, None)
            if ev2 is None:
                self.degraded += 1
                return
            d2 = ev2.pop("_d2")
            second = self.resolve(proc, s, d2)
            if ev2["syscall"].startswith("symlink"):
                target = ev2["path"]
                if target and not target.startswith("/") and second and second.startswith("/"):
                    target = posixpath.dirname(second).rstrip("/") + "/" + target
                if target and target.startswith("/") and CUT not in target:
                    # as the kernel will walk it: through the links known now, ``..``
                    # after a link from its target (a link to a link names the file)
                    target = self.kernel(proc, target, True)
                ev2["path"], ev2["path2"] = second, target
                if (
                    ev2["result"] == 0
                    and second
                    and target
                    and second.startswith("/")
                    and target.startswith("/")
                ):
                    self.links[second] = target
            elif ev2["kind"] is K.FILE_LINK:
                ev2["path"], ev2["path2"] = second, ev2["path"]
            else:
                ev2["path2"] = second
                old = ev2["path"]
                if ev2["result"] == 0 and self.links and old and second and CUT not in old + second:
                    self.move_links(old, second)  # a renamed link (or its directory) still links
                if "RENAME_EXCHANGE" in (ev2.get("flags") or ""):  # each name holds the other's
                    self.events.append({**ev2, "path": second, "path2": old})
        elif kind == "G":
            ret, fd, arg = rest
            ev = self.event(n, t, proc, name, _KIND_OF.get(name, K.OTHER), ret)
            target = proc.fds.get(fd)
            ev["path"] = target if isinstance(target, str) else None
            if ev["path"] is None:
                self.degraded += 1
            if name == "fchmod":
                ev["flags"] = oct(arg)
            if name == "fchdir" and ret == 0 and isinstance(target, str):
                proc.cwd = target
        elif kind == "K":
            ret, a0, a1, a2 = rest
            ev = self.event(n, t, proc, name, K.SIGNAL, ret)
            if name in ("tgkill", "rt_tgsigqueueinfo"):
                ev["target"], ev["flags"] = a0, _signame(a2)
            else:
                ev["target"], ev["flags"] = a0, _signame(a1)
            if name == "tkill":
                ev["target"] = self.tgid_of.get(a0, a0)  # as the strace parser: the thread's process
            elif name == "pidfd_send_signal":
                ev["target"] = self.pidfd(proc, a0)
        elif kind == "T":
            ret, req, pid = rest
            ev = self.event(n, t, proc, name, K.PTRACE, ret)
            if name == "ptrace":
                ev["flags"] = _PTRACE.get(req, str(req))
                ev["target"] = pid
            elif name == "pidfd_getfd":
                ev["target"] = self.pidfd(proc, req)
            else:
                ev["target"] = req
        elif kind == "V":
            ret, arg, stashed = rest
            ev = self.event(n, t, proc, name, K.PRIVILEGED, ret)
            ev["flags"] = hex(arg) if stashed == sid else ""
        elif kind == "F":
            ret, cflags, stashed = rest
            if ret == 0:
                return  # the child's side of the call: strace shows the parent's only
            valid = stashed == sid and name in ("clone", "clone3")
            thread = valid and bool(cflags & _CLONE_THREAD)
            spaces = sorted(v for bit, v in _CLONE_NEW.items() if valid and cflags & bit)
            child = self.procs.get(ret) if ret > 0 and not thread else None
            if child is not None and child.start <= t:
                # the parent returns after its child ran (vfork always): the spawn is
                # placed before the child's first event, where strace prints the call
                t = child.start - 1e-9
            ev = self.event(n, t, proc, name, K.SPAWN, ret)
            ev["flags"] = "|".join(["thread" if thread else "process", *spaces])
            if ret > 0 and valid and not thread and cflags & (_CLONE_FS | _CLONE_FILES):
                self.shared.update((proc.pid, ret))
            if ret > 0:
                ev["target"] = ret
                if not thread and child is None:
                    self.spawned[ret] = (proc, dict(proc.fds), proc.cwd, set(proc.cloexec))
        elif kind == "M":
            ret, mflags = rest
            ev = self.event(n, t, proc, name, K.OTHER, ret)
            ev["path"] = "/memfd:" + s
            ev["flags"] = hex(mflags)
            if ret >= 0:
                proc.fds[ret] = ev["path"]
                _mark_cloexec(proc, ret, bool(mflags & 1))  # MFD_CLOEXEC
        elif kind == "O":
            ret, fam, typ, proto, stashed = rest
            ev = self.event(n, t, proc, name, K.SOCKET, ret)
            if stashed != sid:
                # refused before sys_enter: the arguments are another call's. The
                # profile refuses one family (sandbox.runner.seccomp.AF_VSOCK)
                ev["flags"] = "AF_VSOCK, ?, ? (refused by seccomp)" if ret == -1 else ""
            else:
                base = _SOCK_TYPES.get(typ & 0xF, str(typ & 0xF))
                extra = "|SOCK_NONBLOCK" * bool(typ & 0o4000) + "|SOCK_CLOEXEC" * bool(typ & 0o2000000)
                ev["flags"] = f"{_FAMILIES.get(fam, str(fam))}, {base}{extra}, {proto}"
            if ret >= 0:
                proc.fds[ret] = _Socket(base) if stashed == sid else None
                _mark_cloexec(proc, ret, stashed == sid and bool(typ & 0o2000000))
        elif kind == "U":
            ret, a0, a1, a2 = rest
            if name == "close":
                if ret == 0:
                    proc.fds.pop(a0, None)
                    proc.cloexec.discard(a0)
            elif name == "close_range":
                last = a1 if a1 >= 0 else 1 << 31  # ~0U: every fd from the first
                if ret == 0 and not a2 & _CLOSE_RANGE_CLOEXEC:
                    for fd in [f for f in proc.fds if a0 <= f <= last]:
                        del proc.fds[fd]
                        proc.cloexec.discard(fd)
                elif ret == 0:  # CLOSE_RANGE_CLOEXEC: closed at the next exec
                    proc.cloexec.update(f for f in proc.fds if a0 <= f <= last)
            elif name == "pidfd_open":
                if ret >= 0:
                    proc.fds[ret] = _PidFd(a0)
                    proc.cloexec.add(ret)  # always O_CLOEXEC
            elif name == "ioctl" or (name == "fcntl" and a1 == _F_SETFD):
                # a cleared flag keeps the fd (and its name) across exec
                if ret == 0:
                    _mark_cloexec(proc, a0, a1 == _FIOCLEX if name == "ioctl" else bool(a2 & _FD_CLOEXEC))
            elif ret >= 0:  # dup, dup2, dup3; fcntl F_DUPFD*
                proc.fds[ret] = proc.fds.get(a0)
                if name == "dup3":
                    _mark_cloexec(proc, ret, bool(a2 & _O_CLOEXEC))
                else:  # dup and dup2 clear the flag; F_DUPFD_CLOEXEC (1030) sets it
                    _mark_cloexec(proc, ret, name == "fcntl" and a1 == 1030)
        elif kind == "C":
            ret, fd, fam, port, *words = rest[:9]
            ev = self.event(n, t, proc, name, K.CONNECT if name == "connect" else K.BIND, ret)
            ev["address"] = _address(fam, port, words, self.pending_unix.pop(host_tid, None))
            sock = proc.fds.get(fd)
            if name == "connect" and isinstance(sock, _Socket) and sock.type in ("SOCK_STREAM", "SOCK_DGRAM"):
                ev["flags"] = sock.type  # a stream connect sends a SYN; a datagram one nothing
            taken = _taken(rest[9], rest[10], rest[11:])
            if taken is not None and taken != ev["address"]:
                shown = ev["address"].render() if ev["address"] else "no address"
                ev["address"] = taken
                ev["flags"] = (ev.get("flags") or "") + (
                    "; "
                    * bool(ev.get("flags"))
                    + "the address changed in the caller's memory during the call "
                    f"(it showed {shown}; recorded: the kernel's socket's)"
                )
            if fam == 1 and ev["address"] is not None and not ev["address"].path:
                self.waiting_unix[host_tid] = ev
            if name == "connect" and (ret == 0 or ret == -errno_mod.EINPROGRESS):
                proc.fds[fd] = ev["address"]
        elif kind == "u":
            (abstract,) = rest
            waiting = self.waiting_unix.pop(host_tid, None)
            if waiting is not None:
                path = ("@" + s) if abstract else s
                waiting["address"] = Address(family="unix", path=path)
            else:
                self.pending_unix[host_tid] = (abstract, s)
        elif kind == "S":
            ret, fd, length, own, fam, port, *words = rest
            ev = self.event(n, t, proc, name, K.SEND, ret)
            address = _address(fam, port, words, self.pending_unix.pop(host_tid, None) if own else None)
            peer = proc.fds.get(fd)
            if fam == 1 and not own and isinstance(peer, Address):
                address = peer
            ev["address"] = address
            if own and fam == 1 and address is not None and not address.path:
                self.waiting_unix[host_tid] = ev
            counted = name == "sendmmsg"  # returns messages sent, not bytes: the first went whole
            keep = length if counted or ret < 0 else min(length, ret)
            ev["data"] = _escape(_unbuf(s)[:keep])
            if ret >= 0 and not counted:
                ev["size"] = ret
        elif kind == "Z":
            ret, first, ident, options, word, si_pid = rest
            ev = self.event(n, t, proc, name, K.OTHER, ret)
            ev["target"] = _reaped(name, ret, first, ident, options, word, si_pid)
        elif kind == "w":  # a file write refused for a full disk (the others are not recorded)
            ret, fd = rest
            ev = self.event(n, t, proc, name, K.FILE_WRITE, ret)
            target = proc.fds.get(fd)
            ev["path"] = target if isinstance(target, str) else None
            if ev["path"] is None:
                self.degraded += 1
        elif kind == "h":  # a write starting with "#!": a script's interpreter line
            ret, fd = rest
            target = proc.fds.get(fd)
            if isinstance(target, str):  # a file (a socket's or pipe's bytes are not this)
                ev = self.event(n, t, proc, name, K.FILE_WRITE, ret)
                ev["path"], ev["size"] = target, ret
                ev["data"] = _escape(_unbuf(s)[:ret])
        elif kind == "E":
            dirfd, eflags = rest
            path, path2 = self.exec_path(proc, s, dirfd if name == "execveat" else _AT_FDCWD)
            pend = _Exec(t, name, proc, s, dirfd, eflags, path or "", path2)
            self.pending_exec.setdefault(host_tgid, {})[host_tid] = pend
            self.exec_last[host_tgid] = host_tid
        elif kind == "x":  # the exec succeeded: the kernel's own copy of the path it ran
            pend = self.exec_winner(host_tgid, s)
            if pend is None or _same_string(s, pend.kernel_name()):
                return
            # Another thread changed the caller's memory between the E record's read and
            # the kernel's copy: the exec is named by the file that ran, the decoy kept.
            decoy = pend.path2 or pend.path
            path, _ = self.exec_path(proc, s, _AT_FDCWD)  # the kernel's form: absolute, /dev/fd/N/…
            pend.path, pend.path2, pend.path_raced = path or "", decoy, True
        elif kind == "y":  # the exec succeeded: the kernel's own copy of its argv
            (length,) = rest
            pend = self.exec_winner(host_tgid)
            if pend is not None:
                pend.copied = self.kernel_argv(length, _unbuf(s))
        elif kind == "e":
            (ret,) = rest
            group = self.pending_exec.get(host_tgid, {})
            if ret < 0:  # failed: returned in the calling thread
                pend = group.pop(host_tid, None)
            else:  # succeeded: returned in the new image, whose thread took the leader's id
                pend = self.exec_winner(host_tgid)
                if pend is not None:
                    group.pop(next(k for k, v in group.items() if v is pend))
                self.exec_won.pop(host_tgid, None)
            if pend is None:
                self.degraded += 1
                return
            self.exec_event(pend, ret)
        elif kind == "X":
            code, group_code = rest
            if ns_tid != ns_tgid:
                return  # a thread: the process's exit is its leader's
            status = group_code or code
            proc.end = t
            ev = self.event(n, t, proc, "exited", K.EXIT, None)
            if status & 0x7F:
                proc.killed_by = _signame(status & 0x7F) + (" (core dumped)" if status & 0x80 else "")
                ev["syscall"] = "killed"
                ev["flags"] = proc.killed_by
            else:
                proc.exit_code = (status >> 8) & 0xFF
                ev["result"] = proc.exit_code

    def exec_winner(self, tgid: int, kernel_name: str | None = None) -> _Exec | None:
        """The pending exec of *tgid* that succeeded: the one an x record named (by the
        kernel's copy of its path, *kernel_name*), else the only one, else the latest.
        The thread that ran it took the leader's id: its records no longer say which."""
        group = self.pending_exec.get(tgid)
        if not group:
            return None
        won = self.exec_won.get(tgid)
        if won in group:
            return group[won]
        named = [
            tid
            for tid, p in group.items()
            if kernel_name is not None and _same_string(kernel_name, p.kernel_name())
        ]
        tid = named[-1] if named else max(group, key=lambda k: group[k].t)
        if kernel_name is not None:
            self.exec_won[tgid] = tid
        return group[tid]

    def complete_root(self, proc: _Proc, argv: tuple[str, ...]) -> None:
        """The agent's step record abbreviates a long module list (``<N modules>``);
        the step root's first exec after the (unseen, root) setpriv is setpriv's own
        exec of the rest of that command line, before any candidate code runs: it
        gives the abbreviated tail back, when it agrees with everything else."""
        assert self.root_event is not None
        stated: tuple[str, ...] = self.root_event["argv"]
        cut = _ABBREVIATED.fullmatch(stated[-1]) if stated else None
        if cut is None or "--" not in stated:
            return
        head = stated[: stated.index("--") + 1]  # setpriv OPTS --
        rest = stated[len(head) : -1]  # choom -n 1000 -- CMD, without the placeholder
        if argv[: len(rest)] == rest and len(argv) == len(rest) + int(cut.group(1)):
            self.root_event["argv"] = proc.execs[0] = (*head, *argv)

    def exec_path(self, proc: _Proc, s: str, dirfd: int) -> tuple[str | None, str | None]:
        """The path an exec names, as the E record's string *s* gives it, and for an
        exec through an fd the file behind it (path2, as the strace parser has it)."""
        fdm = _PROC_LINK_RE.match(s)
        if fdm is not None and (fdm.group(3) or fdm.group(4)) and fdm.end() == len(s):
            # exec through an fd: the path as given (PS029)
            path = normalise(s)
            real = self.kernel(proc, s)
            return path, (real if real != path else None)
        return self.resolve(proc, s, dirfd, follow=True), None

    def exec_event(self, pend: _Exec, ret: int | None) -> None:
        proc, name, eflags, argv = pend.proc, pend.name, pend.eflags, pend.argv
        shown = None
        if ret == 0 and pend.copied and _argv_differs(argv, *pend.copied, pend.kernel_name()):
            # Another thread changed the argv in the caller's memory between the a
            # records' read and the kernel's copy: the one the program got counts.
            shown, argv = argv, pend.copied[0]
        path = pend.path
        ev = self.event(len(self.events), pend.t, proc, name, K.EXEC, ret)
        ev["path"] = path or None
        if name == "execveat":  # fexecve: AT_EMPTY_PATH (PS029), as strace prints it
            named = [
                f
                for bit, f in (
                    (_AT_EMPTY_PATH, "AT_EMPTY_PATH"),
                    (_AT_SYMLINK_NOFOLLOW, "AT_SYMLINK_NOFOLLOW"),
                )
                if eflags & bit
            ]
            ev["flags"] = "|".join(named) or "0"
        ev["path2"] = pend.path2
        if pend.path_raced:
            raced = "the path changed in the caller's memory during the call (path2: what it showed)"
            ev["flags"] = f"{ev['flags']}; {raced}" if ev["flags"] else raced
        if shown is not None:
            raced = f"the argv changed in the caller's memory during the call (it showed {_argv_text(shown)})"
            ev["flags"] = f"{ev['flags']}; {raced}" if ev["flags"] else raced
        ev["argv"] = tuple(argv)
        if (
            ret == 0
            and self.root_event is not None
            and len(proc.execs) == 1
            and proc.pid == self.window.main_pid
        ):
            self.complete_root(proc, tuple(argv))
        if ret == 0:
            proc.argv = tuple(argv)
            proc.exe = path
            proc.execs.append(proc.argv)
            for fd in proc.cloexec:  # the kernel closed them: their old names are gone
                proc.fds.pop(fd, None)
            proc.cloexec.clear()
