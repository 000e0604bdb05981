# ruff: noqa: E501  (captured strace lines are quoted verbatim above each regex)
"""Pure strace parser: the text of ``strace -f -yy -ttt`` in, :class:`Event`\\ s out.

The runner starts the sandbox command under :func:`strace_argv`; this module turns
the resulting file into normalised events plus a process table.  It does no I/O
besides :func:`parse_strace_file` and never raises on odd input: lines it cannot
read are counted in :attr:`ParsedTrace.unparsed`.

What it reconstructs from the line stream:

* ``<unfinished ...>`` / ``<... NAME resumed>`` pairs are joined per thread id;
  the event takes the start line's time and position.
* Threads (``CLONE_THREAD``) are folded into their thread-group leader: an
  event's ``pid`` is always a process id.  A child that prints before its
  parent's ``clone``/``vfork`` has returned is attributed provisionally to the
  (latest) pending spawn and corrected when the return value arrives.
* Paths are made absolute through the ``-yy`` dirfd decoration, the
  ``AT_FDCWD</cwd>`` decoration, or a per-process cwd learnt from those
  decorations, ``getcwd``, ``chdir`` and ``fchdir`` (inherited at fork, shared
  by threads).  They are normalised lexically (``posixpath.normpath``), never
  through symlinks.  A relative path with no known cwd is kept as printed and
  counted in ``degraded``, as is a path or address strace could only show as a
  pointer.
* Socket writes (``write``/``sendto(…, NULL, …)``) get their destination from
  the fd decoration (``TCP:[a:p->b:q]``) or, for unix sockets whose decoration
  names no peer path, from an earlier ``connect`` on the same socket inode.

Event conventions beyond :class:`~sandbox.models.Event`'s docstring:

* ``SPAWN``: ``target`` = child id, ``flags`` = ``"thread"`` or ``"process"``,
  followed by any ``CLONE_NEW*`` namespace flags (``"process|CLONE_NEWUSER"``).
* ``EXIT``: one per process (thread-group leader) from the ``+++`` line;
  ``syscall`` is ``"exited"`` (``result`` = exit code) or ``"killed"``
  (``flags`` = signal, e.g. ``"SIGABRT (core dumped)"``).  ``exit``/``exit_group``
  calls themselves produce no event.
* ``FILE_LINK``: ``path`` = the new name, ``path2`` = the target; a symlink's
  relative target is resolved against the link's directory (what it points to).
* ``sendfile``/``splice``: ``path`` = destination fd, ``path2`` = source fd.
* ``memfd_create`` is ``OTHER`` (not ``PRIVILEGED``): it needs no privilege and
  libffi uses it for closures, so every ctypes/cffi user would trip a privilege
  rule.  Its ``path`` is ``/memfd:NAME``, the name strace then shows for the fd,
  so writes to it and an ``execveat`` of it line up for the judge.
* ``chroot``, ``pivot_root``, ``swapon``/``swapoff``, ``acct``, ``quotactl``,
  the new mount API and ``kexec_*`` are ``PRIVILEGED`` as well.
* Strings are C-unescaped and decoded as UTF-8 for ``path``/``argv``; bytes that
  are not UTF-8 appear as ``\\xNN``.  ``data`` keeps strace's escaped form.
  Strings and argv arrays cut at ``-s`` keep their printed prefix (an argv cut
  short ends with a ``"..."`` element) and are counted in ``truncated_strings``.
"""

from __future__ import annotations

import copy
import gc
import gzip
import pickle
import posixpath
import re
from operator import itemgetter
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sandbox.models import Address, Event, EventKind, Frozen, Phase, ProcessInfo
from sandbox.runner.recorder import STRACE_STRING_LIMIT, STRACE_SYSCALLS, strace_argv
from sandbox.trace._strace_syntax import (
    ARGV_RE,
    AT_PATH_RE,
    CLONE_NEW_RE,
    IOV_BASE_RE,
    PATH_RE,
    RESULT_RE,
    STRING_RE,
    count_truncated,
    deco_addresses,
    deco_path,
    decoration_end,
    is_socket,
    msg_name,
    normalise,
    odd_quotes,
    parse_sockaddr,
    socket_inode,
    split_args,
    split_fd,
    unescape,
)

__all__ = [
    "STRACE_STRING_LIMIT",
    "STRACE_SYSCALLS",
    "ParsedTrace",
    "parse_strace",
    "parse_strace_file",
    "strace_argv",
]

_SAMPLE_LIMIT = 20
_SAMPLE_CHARS = 500
_UNFINISHED = " <unfinished ...>"
_DETACHED = " <detached ...>"


class ParsedTrace(Frozen):
    """Everything one strace output file says, normalised."""

    events: tuple[Event, ...]
    processes: tuple[ProcessInfo, ...]
    lines: int  # lines read
    unparsed: int  # lines that matched nothing
    unparsed_samples: tuple[str, ...]  # the first 20 (each cut at 500 characters)
    truncated_strings: int  # strings (and argv arrays) strace cut at -s
    degraded: int  # calls whose path or address strace could not decode
    complete: bool  # False if the text ends mid-line or a call never resumed in a live process


def parse_strace(text: str, phase: Phase, *, seq_start: int = 0, root_ppid: int | None = None) -> ParsedTrace:
    """Parse the text of one ``strace -f -yy -ttt`` output file.

    *phase* is stamped on every event and process; event ``seq`` numbers start
    at *seq_start* and follow the order of the (start) lines; the first process
    seen gets *root_ppid* as its parent.  Never raises on malformed input.

    The cyclic garbage collector is paused while it runs (and restored): the
    parse builds a few objects per line and frees none, and collections over
    that growing heap cost about a third of the run time.
    """
    return _Parser(phase, root_ppid).run(text, seq_start)


def parse_strace_file(path: Path, phase: Phase, **kw: Any) -> ParsedTrace:
    """Parse a strace output file (gzip-compressed if it ends in ``.gz``).

    Bytes that are not UTF-8 are replaced (strace escapes everything outside
    printable ASCII, so only damaged files have any).  Keyword arguments go to
    :func:`parse_strace`.
    """
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return parse_strace(data.decode("utf-8", "replace"), phase, **kw)


# --- fast Event construction -------------------------------------------------------

_EVENT_TEMPLATE: dict[str, Any] = {
    name: (None if field.is_required() else field.get_default()) for name, field in Event.model_fields.items()
}


class _ReadOnlyFieldSet(set[str]):
    """One ``model_fields_set`` shared by every parsed event.

    A 17-name set costs more to allocate than the rest of an event; the parser
    sets every field, so all events have the same one.  Sharing is safe because
    it cannot be changed in place and its copies (``model_copy`` takes one
    before updating) are ordinary sets.
    """

    def _read_only(self, *_: object) -> Any:
        raise TypeError("the fields set of a parsed Event is shared and read-only")

    add = discard = remove = pop = clear = update = _read_only
    intersection_update = difference_update = symmetric_difference_update = _read_only
    __ior__ = __iand__ = __isub__ = __ixor__ = _read_only

    def __copy__(self) -> set[str]:
        return set(self)

    def __deepcopy__(self, memo: object) -> set[str]:
        return set(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (set, (list(self),))


_ALL_FIELDS = _ReadOnlyFieldSet(_EVENT_TEMPLATE)
_new_model = Event.__new__
_set_attr = object.__setattr__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _make_event_fast(fields: dict[str, Any]) -> Event:
    # What Event.model_construct(**fields) builds from a complete field dict in
    # field order, minus its per-field Python loop (4-6 µs an event, most of the
    # parser's budget).  _fast_construction_works() checks the equivalence.
    event = _new_model(Event)
    _set_attr(event, "__dict__", fields)
    _set_fields_set(event, _ALL_FIELDS)
    _set_extra(event, None)
    _set_private(event, None)
    return event


def _make_event_slow(fields: dict[str, Any]) -> Event:
    return Event.model_construct(**fields)


def _fast_construction_works() -> bool:
    # Guard against pydantic internals changing: fall back to model_construct.
    if (
        Event.__pydantic_post_init__
        or Event.__pydantic_root_model__
        or Event.model_config.get("extra") == "allow"
    ):
        return False
    if any(f.alias or f.validation_alias for f in Event.model_fields.values()):
        return False
    sample = _EVENT_TEMPLATE | {
        "phase": Phase.INSTALL,
        "seq": 1,
        "pid": 2,
        "time": 3.0,
        "syscall": "connect",
        "kind": EventKind.CONNECT,
        "address": Address(family="inet", host="192.0.2.1", port=1),
    }
    try:
        fast, slow = _make_event_fast(dict(sample)), _make_event_slow(dict(sample))
        copied = fast.model_copy(update={"seq": 2})
        return (
            fast == slow
            and fast.model_fields_set == slow.model_fields_set
            and fast.model_dump_json() == slow.model_dump_json()
            and copied.seq == 2
            and fast.seq == 1
            and type(copied.model_fields_set) is set
            and pickle.loads(pickle.dumps(fast)) == fast
            and copy.deepcopy(fast) == fast
        )
    except Exception:
        return False


make_event = _make_event_fast if _fast_construction_works() else _make_event_slow


# --- syscall classification --------------------------------------------------------

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
# /proc/<self|pid>/{cwd,root,fd/N} and /dev/fd/N: magic links the kernel follows to the
# process's cwd, root or open file; resolved before lexical normalisation, or
# ``/proc/self/cwd/../.ssh/id_rsa`` would become ``/proc/self/.ssh/id_rsa``.
_PROC_LINK_RE = re.compile(
    r"^(?:/proc/(self|thread-self|\d+)(?:/task/\d+)?/(cwd|root|fd/(\d+))|/dev/fd/(\d+))(?=/|$)"
)
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
# The result shapes the fast path accepts (decimal, a quote-free decoration, an errno):
# 20    1795628174.069999 openat(3</tmp/d1>, "sub/rel.txt", O_WRONLY|O_CREAT|O_CLOEXEC, 0644) = 4</tmp/d1/sub/rel.txt>
# 20    1795628173.969377 openat(AT_FDCWD</>, "/usr/lib/locale/locale-archive", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)
_FAST_RESULT_RE = re.compile(r'(-?\d+)(?:<([^"<>]*(?:<[^"<>]*>)?)>| (E[A-Z0-9]+) \([^()"]*\))?')
# The calls the inline fast path takes: (shape, kind); shape 0 = dirfd + path,
# 1 = path first, 2 = fd only; kind None = decided from the open flags.
_FAST_CALLS: dict[str, tuple[int, EventKind | None]] = {
    "openat": (0, None),
    "newfstatat": (0, K.FILE_STAT),
    "statx": (0, K.FILE_STAT),
    "faccessat": (0, K.FILE_STAT),
    "faccessat2": (0, K.FILE_STAT),
    "readlinkat": (0, K.FILE_STAT),
    "open": (1, None),
    "stat": (1, K.FILE_STAT),
    "lstat": (1, K.FILE_STAT),
    "access": (1, K.FILE_STAT),
    "readlink": (1, K.FILE_STAT),
    "mkdir": (1, K.DIR_CREATE),
    "unlink": (1, K.FILE_DELETE),
    "rmdir": (1, K.FILE_DELETE),
    "chmod": (1, K.FILE_CHMOD),
    "getdents64": (2, K.FILE_LIST),
    "getdents": (2, K.FILE_LIST),
}
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


def _int(text: str) -> int | None:
    try:
        return int(text, 0) if text[:2] in ("0x", "0X") else int(text)
    except ValueError:
        return None


class _Proc:
    """Mutable process state while parsing (becomes a ProcessInfo)."""

    __slots__ = (
        "argv",
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

    def __init__(self, pid: int, ppid: int | None, start: float, parent: _Proc | None) -> None:
        self.pid = pid
        self.ppid = ppid
        self.start = start
        self.end: float | None = None
        self.exit_code: int | None = None
        self.killed_by: str | None = None
        self.argv: tuple[str, ...] = parent.argv if parent else ()
        self.exe: str = parent.exe if parent else ""
        self.cwd: str | None = parent.cwd if parent else None
        self.execs: list[tuple[str, ...]] = []
        # fd → file path, from open results (inherited at fork; close is not traced, so
        # an entry may be stale): resolves /proc/self/fd/N and /dev/fd/N paths.
        self.fds: dict[int, str] = dict(parent.fds) if parent else {}


class _Pending:
    """An ``<unfinished ...>`` call waiting for its ``resumed`` line."""

    __slots__ = ("args", "name", "no", "tid", "time")

    def __init__(self, no: int, tid: int, time: float, name: str, args: str) -> None:
        self.no = no
        self.tid = tid
        self.time = time
        self.name = name
        self.args = args


class _Parser:
    def __init__(self, phase: Phase, root_ppid: int | None) -> None:
        self.phase = phase
        self.root_ppid = root_ppid
        self.events: list[dict[str, Any]] = []  # complete Event field dicts
        self.tgid_of: dict[int, int] = {}
        self.tgid_cache: dict[str, int] = {}  # tgid_of by the printed tid, for the fast path
        self.procs: dict[int, _Proc] = {}  # live (or last) process per pid
        self.all_procs: list[_Proc] = []
        self.pending: dict[int, _Pending] = {}
        self.changed: dict[int, _Pending] = {}  # execve from a thread: <pid changed to N ...>
        # tid -> (parent tgid, is thread, its events so far, line of the spawn call
        # guessed) until a spawn call returns it.
        self.provisional: dict[int, tuple[int, bool, list[dict[str, Any]], int]] = {}
        self.sock_peer: dict[str, Address] = {}
        self.links: dict[str, str] = {}  # symlinks created in this trace: link path → target
        self.unparsed = 0
        self.samples: list[str] = []
        self.truncated = 0
        self.degraded = 0
        self.complete = True
        self.fast_path = True  # tests switch it off to check both paths agree

    # --- driver -------------------------------------------------------------------

    def run(self, text: str, seq_start: int) -> ParsedTrace:
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        else:
            self.complete = False  # the text ends mid-line
        # The parse allocates a few objects per line and frees none of them, so the
        # cyclic GC would keep rescanning a growing heap (a third of the run time);
        # nothing built here forms a cycle.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            self.loop(lines)
            self.finish()
            return self.result(len(lines), seq_start)
        finally:
            if gc_was_enabled:
                gc.enable()

    def result(self, lines: int, seq_start: int) -> ParsedTrace:
        """Number the events in (start) line order and build the models."""
        self.events.sort(key=_by_seq)  # "seq" holds the line number so far
        events = []
        for seq, fields in enumerate(self.events, seq_start):
            fields["seq"] = seq
            events.append(make_event(fields))
        processes = tuple(
            ProcessInfo.model_construct(
                pid=p.pid,
                ppid=p.ppid,
                phase=self.phase,
                argv=p.argv,
                exe=p.exe,
                start=p.start,
                end=p.end,
                exit_code=p.exit_code,
                killed_by=p.killed_by,
                execs=tuple(p.execs),
            )
            for p in self.all_procs
        )
        return ParsedTrace.model_construct(
            events=tuple(events),
            processes=processes,
            lines=lines,
            unparsed=self.unparsed,
            unparsed_samples=tuple(self.samples),
            truncated_strings=self.truncated,
            degraded=self.degraded,
            complete=self.complete,
        )

    def loop(self, lines: list[str]) -> None:
        """Parse every line; the common shapes are handled inline, the rest by :meth:`line`."""
        phase = self.phase
        fast = _FAST_CALLS if self.fast_path else {}
        tgid_cache = self.tgid_cache
        procs = self.procs
        provisional = self.provisional
        events = self.events
        result_match = _FAST_RESULT_RE.fullmatch
        tails: dict[str, tuple[int, str | None, str | None]] = {}  # result texts without a decoration
        templates = {
            name: _EVENT_TEMPLATE | {"phase": phase, "syscall": name, "kind": kind}
            for name, (_, kind) in _FAST_CALLS.items()
        }
        flag_calls = _FLAGS_ARG
        for no, line in enumerate(lines):
            # Fast path: a complete call on an absolute (or fd-relative) path from a
            # known task, in one of three shapes:
            # 20    1795628174.003092 openat(AT_FDCWD</>, "/usr/lib/python3.11", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY) = 3</usr/lib/python3.11>
            # 38    1795628177.961227 mkdir("/tmp/pip-build-tracker-g4awa5fp", 0700) = 0
            # 20    1795628174.003387 getdents64(3</usr/lib/python3.11>, 0x2b25eb40 /* 207 entries */, 32768) = 6896
            # Anything unusual (escapes, cut strings, relative paths, padding, quotes
            # after the result, unknown or provisional tasks) falls through to
            # self.line(), which gives the same answer more slowly.
            parts = line.split(None, 2)
            if len(parts) == 3:
                body = parts[2]
                p = body.find("(")
                name = body[:p]
                spec = fast.get(name)
                if spec is not None:
                    k = body.rfind(" = ")
                    res = None
                    if k > p and body[k - 1] == ")":
                        tail = body[k + 3 :]
                        res = tails.get(tail)
                        if res is None:
                            m = result_match(tail)
                            if m is not None:
                                ret, rdeco, errno = m.groups()
                                res = (int(ret), errno, rdeco)
                                if rdeco is None and len(tails) < 512:
                                    tails[tail] = res
                    tgid = tgid_cache.get(parts[0])
                    t = -1.0
                    if res is not None and tgid is not None and parts[1][:1].isdigit():
                        try:
                            t = float(parts[1])
                        except ValueError:
                            t = -1.0  # self.line() reports it
                    if (
                        t >= 0
                        and res is not None
                        and tgid is not None
                        and "\\" not in body
                        and not provisional
                    ):
                        shape, kind = spec
                        path = None
                        deco = None
                        j = -1
                        if shape == 0:  # dirfd, "path", …
                            i = body.find(', "', p)
                            if i > 0:
                                j = body.find('"', i + 3)
                                raw = body[i + 3 : j]
                                lt = body.find("<", p, i)
                                if lt < 0:
                                    dirfd = body[p + 1 : i]
                                elif body[i - 1] == ">" and body.find("<", lt + 1, i) < 0 > body.find(
                                    ">", lt, i - 1
                                ):
                                    dirfd = body[p + 1 : lt]
                                    deco = body[lt + 1 : i - 1]
                                else:
                                    dirfd = ""
                                if dirfd == "AT_FDCWD" or dirfd.isdigit():
                                    if raw[:1] == "/":
                                        path = raw
                                    elif not raw and deco is not None and deco[:1] == "/":
                                        path = deco
                                    if deco is not None and dirfd == "AT_FDCWD" and deco[:1] == "/" and path:
                                        procs[tgid].cwd = deco
                        elif shape == 1:  # "path", …
                            if body.startswith('"/', p + 1):
                                j = body.find('"', p + 2)
                                path = body[p + 2 : j]
                        else:  # fd<path>, …
                            lt = body.find("<", p)
                            e = body.find(">, ", lt)
                            if lt > p + 1 and e > 0 and body[p + 1 : lt].isdigit():
                                deco = body[lt + 1 : e]
                                if deco[:1] == "/" and deco.find("<") < 0 and deco.find(">") < 0:
                                    path = deco
                        if path is not None and (j < 0 or not body.startswith("...", j + 1)):
                            rdeco = res[2]
                            if kind is None and rdeco is not None and rdeco[:1] == "/":
                                # an open: the file the kernel opened, through every link
                                lt = rdeco.find("<")
                                path = rdeco if lt < 0 else rdeco[:lt]
                                procs[tgid].fds[res[0]] = path
                            else:
                                if path[:6] == "/proc/" or path[:8] == "/dev/fd/":
                                    path = self.proc_link(procs[tgid], path)
                                if path is not deco and ("/." in path or "//" in path or path[-1] == "/"):
                                    path = normalise(path)
                                if self.links and path is not deco:  # a decoration is already real
                                    path = self.through_links(path)
                                    if kind is K.FILE_DELETE and res[0] == 0:
                                        self.links.pop(path, None)
                            fields = templates[name].copy()
                            if kind is None or name in flag_calls:
                                flags = None
                                if body.startswith(", ", j + 1):  # up to "," or ")" as AT_PATH_RE
                                    e = body.find(",", j + 3, k)
                                    e = e if e >= 0 else k - 1
                                    r = body.find(")", j + 3, e)
                                    flags = body[j + 3 : r if r >= 0 else e]
                                fields["flags"] = flags
                                if kind is None:
                                    fields["kind"] = _open_kind(flags)
                            fields["seq"] = no
                            fields["pid"] = tgid
                            fields["time"] = t
                            fields["path"] = path
                            fields["result"], fields["errno"] = res[0], res[1]
                            events.append(fields)
                            continue
            try:
                self.line(no, line)
            except Exception:  # a parser bug must not lose the rest of the trace
                self.bad(line)

    def bad(self, line: str) -> None:
        self.unparsed += 1
        if len(self.samples) < _SAMPLE_LIMIT:
            self.samples.append(line[:_SAMPLE_CHARS])

    def line(self, no: int, line: str) -> None:
        parts = line.split(None, 2)
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1][:1].isdigit():
            if line.startswith(("strace: ", "[ Process PID=")) or not line.strip():
                return  # strace's own notes (attach/detach, personality switch)
            self.bad(line)
            return
        tid = int(parts[0])
        try:
            t = float(parts[1])
        except ValueError:
            self.bad(line)
            return
        body = parts[2]
        c = body[0]
        if c == "+":
            self.exit_line(no, tid, t, body, line)
            return
        elif c == "-":
            # 20    1795628174.087316 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=23, si_uid=1000, si_status=255, si_utime=0, si_stime=0} ---
            # 19    1795628466.723808 --- stopped by SIGSTOP ---
            if not (body.startswith("--- ") and body.endswith(" ---")):
                self.bad(line)
        elif c == "<":
            self.resumed_line(no, tid, t, body, line)
        else:
            self.call_line(no, tid, t, body, line)
        tgid = self.tgid_of.get(tid)
        if tgid is not None:
            self.tgid_cache[parts[0]] = tgid

    # --- line kinds -------------------------------------------------------------------

    def call_line(self, no: int, tid: int, t: float, body: str, line: str) -> None:
        p = body.find("(")
        name = body[:p]
        if p <= 0 or not name.isidentifier():
            self.bad(line)
            return
        rest = body[p + 1 :]
        split = _split_result(rest)
        if split is not None:
            self.call(no, tid, t, name, split[0], split[1])
            return
        if rest.endswith(_UNFINISHED):
            old = self.pending.pop(tid, None)
            if old is not None:
                self.call(old.no, tid, old.time, old.name, old.args, None)
            self.task(tid, t)  # register the thread before any child of it prints
            self.pending[tid] = _Pending(no, tid, t, name, rest[: -len(_UNFINISHED)])
            return
        if rest.endswith(" ...>"):
            # 29    1795628333.096726 execve("/bin/true", ["true", "from-thread"], 0x7fff3fb90650 /* 7 vars */ <pid changed to 28 ...>
            i = rest.rfind(" <pid changed to ")
            leader = rest[i + 17 : -5]
            if i >= 0 and leader.isdigit():
                self.task(tid, t)
                self.changed[int(leader)] = _Pending(no, tid, t, name, rest[:i])
                return
        if rest.endswith(_DETACHED):
            # 8     1795628773.792505 wait4(10,  <detached ...>
            self.complete = False
            self.call(no, tid, t, name, rest[: -len(_DETACHED)], None)
            return
        self.bad(line)

    def resumed_line(self, no: int, tid: int, t: float, body: str, line: str) -> None:
        # 20    1795628174.081609 <... vfork resumed>) = 22
        k = body.find(" resumed>")
        if not body.startswith("<... ") or k < 0:
            self.bad(line)
            return
        name = body[5:k]
        tail = body[k + 9 :]
        forced = False
        start = self.changed.pop(tid, None)
        if start is not None and start.name == name:
            forced = True  # the exec replaced the old leader: it succeeded
        else:
            if start is not None:
                self.changed[tid] = start
            start = self.pending.pop(tid, None)
        if start is None or start.name != name:
            if start is not None:  # lost its resumption; keep what the entry showed
                self.call(start.no, tid, start.time, start.name, start.args, None)
            self.bad(line)
            return
        text = start.args + tail
        split = _split_result(text)
        if forced:
            args = split[0] if split is not None else text
            self.call(start.no, start.tid, start.time, name, args, None, forced=True)
            if start.tid != tid:
                self.tgid_of.pop(start.tid, None)  # that thread is now the leader
                self.tgid_cache.clear()
        elif split is not None:
            self.call(start.no, tid, start.time, name, split[0], split[1])
        else:
            self.call(start.no, tid, start.time, name, start.args, None)
            self.bad(line)

    def exit_line(self, no: int, tid: int, t: float, body: str, line: str) -> None:
        m = _EXIT_RE.fullmatch(body)
        if m is None:
            self.bad(line)
            return
        code, signal, core, successor = m.groups()
        tgid = self.task(tid, t)
        start = self.pending.pop(tid, None)
        if start is not None:  # died inside a call
            self.call(start.no, tid, start.time, start.name, start.args, None)
        if successor is not None:
            return  # the leader's old image, replaced by a thread's execve
        self.tgid_of.pop(tid, None)
        self.tgid_cache.clear()
        proc = self.procs.get(tgid)
        if tid != tgid or proc is None:
            return  # a thread ended, not the process
        proc.end = t
        values: dict[str, Any] = {"phase": self.phase, "pid": tgid, "time": t, "kind": K.EXIT}
        if code is not None:
            proc.exit_code = int(code)
            values.update(syscall="exited", result=proc.exit_code)
        else:
            proc.killed_by = signal + (core or "")
            values.update(syscall="killed", flags=proc.killed_by)
        self.emit(no, tid, values)

    def finish(self) -> None:
        for tid, start in list(self.pending.items()):
            if tid in self.tgid_of:
                self.complete = False  # still running when the trace ended
            self.call(start.no, tid, start.time, start.name, start.args, None)
        self.pending.clear()
        for start in self.changed.values():
            self.call(start.no, start.tid, start.time, start.name, start.args, None, forced=True)
        self.changed.clear()

    # --- tasks ----------------------------------------------------------------------

    def task(self, tid: int, t: float) -> int:
        """The thread-group id of *tid*, registering a task seen for the first time."""
        tgid = self.tgid_of.get(tid)
        if tgid is not None:
            return tgid
        if not self.all_procs:
            self.new_proc(tid, self.root_ppid, t, None)
            return tid
        # A child printing before its parent's spawn call returned: guess the latest
        # pending spawn, confirmed or corrected by spawned() when it returns.
        parent: _Pending | None = None
        for start in self.pending.values():
            if start.name in _SPAWN and (parent is None or start.no > parent.no):
                parent = start
        if parent is None:
            self.new_proc(tid, None, t, None)
            return tid
        ptgid = self.tgid_of.get(parent.tid, parent.tid)
        thread = "CLONE_THREAD" in parent.args
        self.provisional[tid] = (ptgid, thread, [], parent.no)
        self.tgid_cache.clear()
        if thread:
            self.tgid_of[tid] = ptgid
            return ptgid
        self.new_proc(tid, ptgid, parent.time, self.procs.get(ptgid))
        return tid

    def new_proc(self, pid: int, ppid: int | None, t: float, parent: _Proc | None) -> _Proc:
        self.tgid_cache.clear()
        proc = _Proc(pid, ppid, t, parent)
        self.procs[pid] = proc
        self.all_procs.append(proc)
        self.tgid_of[pid] = pid
        return proc

    def spawned(self, no: int, child: int, ptgid: int, thread: bool, t: float) -> None:
        """The spawn call of line *no* returned *child*: record it, or confirm/fix the guess."""
        self.tgid_cache.clear()
        guess = self.provisional.pop(child, None)
        # Tasks guessed to come from this call are someone else's: stop tracking them
        # (they keep the guess; the fast path only runs while nothing is provisional).
        for tid in [tid for tid, g in self.provisional.items() if g[3] == no]:
            del self.provisional[tid]
        if guess is None:
            known = self.procs.get(child) if self.tgid_of.get(child) == child else None
            if known is not None and known.end is None and not thread:
                if known.ppid is None:  # seen before as an orphan
                    known.ppid = ptgid
                return
            if thread:
                self.tgid_of[child] = ptgid
            else:
                self.new_proc(child, ptgid, t, self.procs.get(ptgid))
            return
        gparent, gthread, events, _ = guess
        if gthread == thread:
            if gparent == ptgid:
                return
            if not thread:
                self.procs[child].ppid = ptgid
                return
            self.tgid_of[child] = ptgid
            pid = ptgid
        elif thread:  # guessed a process, it is a thread
            old = self.procs.pop(child, None)
            if old is not None:
                self.all_procs.remove(old)
            self.tgid_of[child] = ptgid
            pid = ptgid
        else:  # guessed a thread, it is a process
            self.new_proc(child, ptgid, t, self.procs.get(ptgid))
            pid = child
        for values in events:
            values["pid"] = pid

    def emit(self, no: int, tid: int, values: dict[str, Any]) -> None:
        fields = _EVENT_TEMPLATE.copy()
        fields.update(values)
        fields["seq"] = no
        self.events.append(fields)
        if self.provisional and tid in self.provisional:
            self.provisional[tid][2].append(fields)

    # --- calls -------------------------------------------------------------------------

    def call(
        self,
        no: int,
        tid: int,
        t: float,
        name: str,
        args: str,
        m: Any,
        *,
        forced: bool = False,
    ) -> None:
        """Turn one complete (or never-resumed, *m* None) call into an event."""
        tgid = self.tgid_of.get(tid)
        if tgid is None:
            tgid = self.task(tid, t)
        result: int | None = None
        errno: str | None = None
        rdeco: str | None = None
        if m is not None:
            ret, rdeco, e1, e2, e3 = m.groups()
            if ret != "?":
                result = int(ret, 16) if ret[:2] == "0x" else int(ret)
            errno = e1 or e2 or (f"errno {e3}" if e3 else None)
        elif forced:
            result = 0
        if '"...' in args and name not in _COUNTS_OWN_CUTS:
            self.truncated += count_truncated(args)
        values: dict[str, Any] = {
            "phase": self.phase,
            "pid": tgid,
            "time": t,
            "syscall": name,
            "result": result,
            "errno": errno,
        }
        proc = self.procs[tgid]
        if name in _AT_CALLS:
            self.at_call(proc, name, args, _AT_CALLS[name], values)
        elif name in _PATH_CALLS:
            self.path_call(proc, name, args, _PATH_CALLS[name], result, values)
        elif name in _FD_CALLS:
            self.fd_call(proc, name, args, _FD_CALLS[name], result, values)
        elif name in _WRITES:
            self.write_call(name, args, result, values)
        elif name in _TWO_PATHS:
            self.two_path_call(proc, name, args, values)
        elif name in _SOCK_CALLS:
            self.sock_call(name, args, _SOCK_CALLS[name], result, errno, values)
        elif name in _SPAWN:
            self.spawn_call(no, tgid, t, name, args, result, values)
        elif name == "execve" or name == "execveat":
            self.exec_call(proc, name, args, result, errno, values)
        elif name in _SIGNALS:
            self.signal_call(name, args, values)
        elif name in _PTRACE:
            self.ptrace_call(name, args, values)
        elif name in _PRIVILEGED:
            self.privileged_call(proc, name, args, values)
        elif name in _SILENT:
            return
        else:
            self.other_call(proc, name, args, rdeco, values)
        if result is not None and result >= 0 and rdeco is not None and rdeco[:1] == "/":
            if name in _OPENS:
                # the file the kernel opened (through /proc links, symlinks, "..")
                values["path"] = deco_path(rdeco)
            if name in _OPENS or name == "memfd_create":
                proc.fds[result] = values["path"]
        elif result is not None and result >= 0 and rdeco is not None:
            proc.fds.pop(result, None)  # that fd number is now a socket, pipe …
        elif result == 0 and name in ("symlink", "symlinkat"):
            link, target = values.get("path"), values.get("path2")
            if link and target and link.startswith("/") and target.startswith("/"):
                self.links[link] = target
        elif result == 0 and self.links and values.get("kind") is K.FILE_DELETE:
            self.links.pop(values.get("path") or "", None)
        self.emit(no, tid, values)

    def resolve(self, proc: _Proc, rel: str, base: str | None, at_cwd: bool) -> str | None:
        """Absolute form of *rel* (already unescaped) against a dirfd path or the cwd."""
        if rel.startswith("/"):
            return self.kernel_path(proc, rel)
        if base is None and at_cwd:
            base = proc.cwd
        if base is None:
            self.degraded += 1
            return rel or None
        if not rel:
            return base
        return self.kernel_path(proc, base.rstrip("/") + "/" + rel)

    def kernel_path(self, proc: _Proc, path: str) -> str:
        """An absolute path as the kernel resolves it, as far as the trace tells: /proc
        magic links, then "..", then the symlinks created earlier in this trace."""
        if path.startswith(("/proc/", "/dev/fd/")):
            path = self.proc_link(proc, path)
        path = normalise(path)
        return self.through_links(path) if self.links else path

    def proc_link(self, proc: _Proc, path: str) -> str:
        """``/proc/self/cwd/x`` → ``<cwd>/x`` (also ``root``, ``fd/N``, ``/dev/fd/N``, a
        known pid); unchanged when the target is not known."""
        m = _PROC_LINK_RE.match(path)
        if m is None:
            return path
        who, what, fd, devfd = m.groups()
        if devfd is not None:
            target: _Proc | None = proc
            what, fd = "fd", devfd
        elif who in ("self", "thread-self"):
            target = proc
        else:
            target = self.procs.get(self.tgid_of.get(int(who), int(who)))
        if target is None:
            return path
        if what == "cwd":
            base = target.cwd
        elif what == "root":
            base = ""
        else:
            base = target.fds.get(int(fd))
        if base is None:
            return path
        return (base.rstrip("/") + path[m.end() :]) or "/"

    def through_links(self, path: str) -> str:
        """Follow the symlinks this trace created in *path*'s directory part (not its last
        component: lstat/unlink act on a link itself; opens report the kernel's path)."""
        for _ in range(8):  # link chains, bounded
            head = path
            hit = None
            while hit is None:
                i = head.rfind("/")
                if i <= 0:
                    break
                head = head[:i]
                if head in self.links:
                    hit = head
            if hit is None:
                return path
            path = normalise(self.links[hit] + path[len(hit) :])
        return path

    def at_call(
        self, proc: _Proc, name: str, args: str, kind: EventKind | None, values: dict[str, Any]
    ) -> None:
        m = AT_PATH_RE.match(args)
        if m is None:
            self.degraded += 1
            values["kind"] = kind or K.FILE_READ
            return
        dirfd, deco, raw, _, ptr, nxt = m.groups()
        if deco is not None and "\\" in deco:
            deco = unescape(deco)
        at_cwd = dirfd == "AT_FDCWD"
        if at_cwd and deco is not None and deco[:1] == "/":
            proc.cwd = deco  # the decoration names the cwd at this call
        base = deco if deco is not None and deco[:1] == "/" else None
        if raw == "" and deco is not None and base is None:  # fstat of a pipe or socket: no path
            values["flags"] = deco
            values["kind"] = kind or K.FILE_READ
            return
        if raw is not None:
            values["path"] = self.resolve(proc, unescape(raw) if "\\" in raw else raw, base, at_cwd)
        elif ptr == "NULL" and base is not None:  # utimensat(fd, NULL, …) acts on the fd
            values["path"] = base
        else:
            self.degraded += 1
        if kind is None:
            if name == "openat2" and nxt is not None and nxt.startswith("{flags="):
                nxt = nxt[7:]
            kind = _open_kind(nxt)
            values["flags"] = nxt
        elif name in _CHOWN:
            values["flags"] = ", ".join(split_args(args, 4)[2:4])
        elif name in _FLAGS_ARG:
            values["flags"] = nxt
        values["kind"] = kind

    def path_call(
        self,
        proc: _Proc,
        name: str,
        args: str,
        kind: EventKind | None,
        result: int | None,
        values: dict[str, Any],
    ) -> None:
        m = PATH_RE.match(args)
        path: str | None = None
        nxt: str | None = None
        if m is None or m.group(1) is None:
            if name != "getcwd":
                self.degraded += 1
        else:
            raw = m.group(1)
            rel = unescape(raw) if "\\" in raw else raw
            nxt = m.group(4)
            if name == "getcwd":
                if result is not None and result > 0 and rel.startswith("/"):
                    proc.cwd = normalise(rel)
                    path = proc.cwd
            else:
                path = self.resolve(proc, rel, None, True)
                if name == "chdir" and result == 0 and path is not None and path.startswith("/"):
                    proc.cwd = path
        values["path"] = path
        if kind is None:
            kind = _open_kind(nxt)
            values["flags"] = nxt
        elif name in _CHOWN:
            values["flags"] = ", ".join(split_args(args, 3)[1:3])
        elif name in _FLAGS_ARG:
            values["flags"] = nxt
        values["kind"] = kind

    def arg_path(self, proc: _Proc, dirfd: str | None, arg: str | None) -> str | None:
        """Resolve one path argument (``"x"``) against an optional dirfd argument."""
        m = STRING_RE.fullmatch(arg) if arg is not None else None
        if m is None:
            self.degraded += 1
            return None
        rel = unescape(m.group(1))
        if dirfd is None:
            return self.resolve(proc, rel, None, True)
        fd, deco = split_fd(dirfd)
        base = deco_path(deco)
        at_cwd = fd == "AT_FDCWD"
        if at_cwd and base is not None:
            proc.cwd = base
        return self.resolve(proc, rel, base, at_cwd)

    def two_path_call(self, proc: _Proc, name: str, args: str, values: dict[str, Any]) -> None:
        kind, d1, p1, d2, p2 = _TWO_PATHS[name]
        parts = split_args(args, 6)
        n = len(parts)
        old = self.arg_path(proc, parts[d1] if 0 <= d1 < n else None, parts[p1] if p1 < n else None)
        if name.startswith("symlink"):
            # The target is stored verbatim and resolved from the link's directory.
            m = STRING_RE.fullmatch(parts[0])
            target = unescape(m.group(1)) if m else None
            link = self.arg_path(proc, parts[d2] if 0 <= d2 < n else None, parts[p2] if p2 < n else None)
            if (
                target is not None
                and not target.startswith("/")
                and link is not None
                and link.startswith("/")
            ):
                target = normalise(posixpath.dirname(link).rstrip("/") + "/" + target)
            elif target is not None and target.startswith("/"):
                target = normalise(target)
            values["path"], values["path2"] = link, target
        else:
            new = self.arg_path(proc, parts[d2] if 0 <= d2 < n else None, parts[p2] if p2 < n else None)
            if kind is K.FILE_LINK:
                values["path"], values["path2"] = new, old
            else:
                values["path"], values["path2"] = old, new
            if n > 4:
                values["flags"] = parts[4]
        values["kind"] = kind

    def fd_call(
        self, proc: _Proc, name: str, args: str, kind: EventKind, result: int | None, values: dict[str, Any]
    ) -> None:
        _, deco, end = _lead_fd(args)
        path = deco_path(deco)
        if path is None:
            self.degraded += 1
        values["path"] = path
        values["kind"] = kind
        if name == "fchdir" and result == 0 and path is not None:
            proc.cwd = path
        elif name in _CHOWN:
            values["flags"] = ", ".join(split_args(args, 3)[1:3])
        elif name == "fchmod":
            values["flags"] = args[end:].lstrip(", ").strip()

    def write_call(self, name: str, args: str, result: int | None, values: dict[str, Any]) -> None:
        if name in ("sendfile", "sendfile64", "splice", "copy_file_range"):
            parts = [*split_args(args, 4), "", "", ""]
            out, src = (parts[2], parts[0]) if name in ("splice", "copy_file_range") else (parts[0], parts[1])
            deco = split_fd(out)[1]
            values["path2"] = deco_path(split_fd(src)[1])
        else:
            _fd, deco, end = _lead_fd(args)
            rest = args[end:]
            if rest.startswith(", "):
                if name in ("write", "pwrite64"):
                    values["data"] = self.buffer_arg(rest[2:], 1 if name == "write" else 2)
                else:
                    chunks = [m.group(1) for m in IOV_BASE_RE.finditer(rest)]
                    if chunks:
                        values["data"] = "".join(chunks)
        if result is not None and result >= 0:
            values["size"] = result
        if is_socket(deco):
            values["kind"] = K.SEND
            values["address"] = self.peer(deco)
        else:
            values["kind"] = K.FILE_WRITE
            path = deco_path(deco)
            if path is None:
                if deco is None:
                    self.degraded += 1
                elif deco[:1] != "/":  # pipe:[…], anon_inode:[…]: not a path, keep what it is
                    values["flags"] = deco
            values["path"] = path

    def buffer_arg(self, text: str, after: int) -> str | None:
        """The printed buffer followed by *after* numeric arguments, without quotes.

        It is the call's only string, so it ends at the last ``, `` before those
        numbers (quotes inside it are escaped).  Counts a buffer cut at ``-s``.
        """
        pieces = text.rsplit(", ", after)
        buf = pieces[0]
        if len(pieces) != after + 1 or len(buf) < 2 or buf[0] != '"':
            return None
        if buf.endswith('"...'):
            self.truncated += 1
            return buf[1:-4]
        return buf[1:-1] if buf[-1] == '"' else None

    def peer(self, deco: str | None) -> Address | None:
        """Where a socket fd sends: the decoration's remote end or an earlier connect."""
        if deco is None:
            return None
        local, remote = deco_addresses(deco)
        if remote is not None and (remote.family != "unix" or remote.path):
            return remote
        inode = socket_inode(deco)
        known = self.sock_peer.get(inode) if inode else None
        if known is not None:
            return known
        return remote or (local if local is not None and local.family == "unix" else None)

    def sock_call(
        self,
        name: str,
        args: str,
        kind: EventKind,
        result: int | None,
        errno: str | None,
        values: dict[str, Any],
    ) -> None:
        values["kind"] = kind
        parts = split_args(args, 6)
        deco = split_fd(parts[0])[1]
        address: Address | None = None
        degraded = False
        if name in ("connect", "bind"):
            if len(parts) > 1:
                address, degraded = parse_sockaddr(parts[1])
            if (
                name == "connect"
                and address is not None
                and deco is not None
                and errno in (None, "EINPROGRESS")
            ):
                inode = socket_inode(deco)
                if inode:
                    self.sock_peer[inode] = address
        elif name == "listen":
            address = deco_addresses(deco)[0] if deco else None
        elif name in ("sendto", "recvfrom"):
            if len(parts) > 1 and parts[1].startswith('"'):
                m = STRING_RE.match(parts[1])
                if m:
                    values["data"] = m.group(1)
            if len(parts) > 4:
                address, degraded = parse_sockaddr(parts[4])
        elif name in ("accept", "accept4"):
            if len(parts) > 1:
                address, degraded = parse_sockaddr(parts[1])
        elif len(parts) > 1:  # sendmsg, recvmsg, sendmmsg, recvmmsg
            address, degraded = msg_name(parts[1])
            chunks = [m.group(1) for m in IOV_BASE_RE.finditer(parts[1])]
            if chunks:
                values["data"] = "".join(chunks)
        if address is None and kind in (K.SEND, K.RECV):
            address = self.peer(deco)
        if degraded:
            self.degraded += 1
        if kind in (K.SEND, K.RECV) and result is not None and result >= 0 and not name.endswith("mmsg"):
            values["size"] = result
        values["address"] = address

    def spawn_call(
        self, no: int, tgid: int, t: float, name: str, args: str, result: int | None, values: dict[str, Any]
    ) -> None:
        values["kind"] = K.SPAWN
        flags = set()
        i = args.find("flags=")
        if i >= 0:
            j = i + 6
            while j < len(args) and args[j] not in ",}":
                j += 1
            flags = set(args[i + 6 : j].split("|"))
        thread = "CLONE_THREAD" in flags
        label = "thread" if thread else "process"
        spaces = sorted(f for f in flags if CLONE_NEW_RE.fullmatch(f))
        values["flags"] = "|".join([label, *spaces])
        if result is not None and result > 0:
            values["target"] = result
            ptgid = tgid
            if "CLONE_PARENT" in flags and not thread:
                parent = self.procs.get(tgid)
                ptgid = parent.ppid if parent is not None and parent.ppid is not None else tgid
            self.spawned(no, result, ptgid, thread, t)

    def exec_call(
        self, proc: _Proc, name: str, args: str, result: int | None, errno: str | None, values: dict[str, Any]
    ) -> None:
        values["kind"] = K.EXEC
        parts = split_args(args, 3 if name == "execve" else 5)
        base: str | None = None
        at_cwd = True
        if name == "execveat":
            dirfd, deco = split_fd(parts[0])
            base = deco_path(deco)
            at_cwd = dirfd == "AT_FDCWD"
            parts = parts[1:]
        path: str | None = None
        m = STRING_RE.fullmatch(parts[0]) if parts else None
        if m is not None:
            raw = m.group(1)
            text = unescape(raw) if "\\" in raw else raw
            fdm = _PROC_LINK_RE.match(text)
            if fdm is not None and (fdm.group(3) or fdm.group(4)) and fdm.end() == len(text):
                # exec through an fd: the path as given (PS029), the file behind it in path2
                path = normalise(text)
                real = self.proc_link(proc, text)
                values["path2"] = real if real != text else None
            else:
                path = self.resolve(proc, text, base, at_cwd)
        else:
            self.degraded += 1
        values["path"] = path
        argv: tuple[str, ...] | None = None
        am = ARGV_RE.match(parts[1]) if len(parts) > 1 else None
        if am is not None:
            items = [unescape(s.group(1)) for s in STRING_RE.finditer(am.group(1))]
            if am.group(2):
                items.append("...")
                self.truncated += 1
            argv = tuple(items)
        elif len(parts) > 1 and parts[1].startswith("0x"):
            self.degraded += 1
        values["argv"] = argv
        if name == "execveat" and len(parts) > 3:
            values["flags"] = parts[3]
        if result == 0 and errno is None:
            proc.argv = argv if argv is not None else ()
            proc.exe = path or ""
            proc.execs.append(proc.argv)

    def signal_call(self, name: str, args: str, values: dict[str, Any]) -> None:
        values["kind"] = K.SIGNAL
        parts = split_args(args, 4)
        target: int | None = None
        if name == "pidfd_send_signal":
            deco = split_fd(parts[0])[1]
            if deco and deco.startswith("pid:"):
                target = _int(deco[4:])
            signal = parts[1] if len(parts) > 1 else None
        elif name in ("tgkill", "rt_tgsigqueueinfo"):
            target = _int(parts[0])
            signal = parts[2] if len(parts) > 2 else None
        else:
            target = _int(parts[0])
            if name == "tkill" and target is not None:
                target = self.tgid_of.get(target, target)
            signal = parts[1] if len(parts) > 1 else None
        values["target"] = target
        values["flags"] = signal

    def ptrace_call(self, name: str, args: str, values: dict[str, Any]) -> None:
        values["kind"] = K.PTRACE
        parts = split_args(args, 3)
        if name == "ptrace":
            values["flags"] = parts[0]
            values["target"] = _int(parts[1]) if len(parts) > 1 else None
        elif name == "pidfd_getfd":
            deco = split_fd(parts[0])[1]
            values["target"] = _int(deco[4:]) if deco and deco.startswith("pid:") else None
        else:
            values["target"] = _int(parts[0])

    def privileged_call(self, proc: _Proc, name: str, args: str, values: dict[str, Any]) -> None:
        values["kind"] = K.PRIVILEGED
        values["flags"] = args
        if name in ("mount", "pivot_root"):
            parts = split_args(args, 3)
            m = STRING_RE.fullmatch(parts[1]) if len(parts) > 1 else None
            if m is not None:
                values["path"] = self.resolve(proc, unescape(m.group(1)), None, True)

    def other_call(
        self, proc: _Proc, name: str, args: str, rdeco: str | None, values: dict[str, Any]
    ) -> None:
        values["kind"] = K.OTHER
        if name == "memfd_create":
            m = STRING_RE.match(args)
            path = deco_path(rdeco)
            if path is None and m is not None:
                path = "/memfd:" + unescape(m.group(1))
            values["path"] = path
            values["flags"] = args[m.end() :].lstrip(", ") if m else None
        elif name in ("socket", "socketpair"):
            values["kind"] = K.SOCKET
            values["flags"] = ", ".join(split_args(args, 4)[:3])
        elif name == "pidfd_open":
            values["target"] = _int(split_args(args, 2)[0])


_by_seq = itemgetter("seq")


def _split_result(rest: str) -> tuple[str, Any] | None:
    """Split ``ARGS) = RESULT`` into the arguments and the result match.

    The last `` = `` is tried first; one inside a quoted argument or a returned
    path decoration fails the result grammar (or leaves an odd quote), so the
    search moves left.
    """
    k = rest.rfind(" = ")
    tries = 0
    while k > 0 and tries < 16:
        tries += 1
        head = rest[:k].rstrip(" ")
        if head.endswith(")"):
            tail = rest[k + 3 :]
            m = RESULT_RE.fullmatch(tail)
            if m is not None and not odd_quotes(tail):
                return head[:-1], m
        k = rest.rfind(" = ", 0, k)
    return None


def _lead_fd(args: str) -> tuple[str, str | None, int]:
    """The first argument as an fd: (fd, decoration or None, index after it)."""
    i = args.find("<")
    comma = args.find(",")
    if i > 0 and (comma < 0 or i < comma) and (args[:i].isdigit() or args[:i] == "AT_FDCWD"):
        end = decoration_end(args, i)
        fd, deco = split_fd(args[:end])
        return fd, deco, end
    end = comma if comma >= 0 else len(args)
    return args[:end], None, end


# 25    1795628174.405013 +++ exited with 7 +++
# 22    1795628333.060526 +++ killed by SIGKILL +++
# 23    1795628333.083369 +++ killed by SIGABRT (core dumped) +++
# 28    1795628333.097199 +++ superseded by execve in pid 29 +++
_EXIT_RE = re.compile(
    r"\+\+\+ (?:exited with (\d+)|killed by (\w+)( \(core dumped\))?|superseded by execve in pid (\d+)) \+\+\+"
)
