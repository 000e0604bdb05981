# ruff: noqa: E501  (captured strace lines are quoted verbatim above each regex)
"""Line syntax: the line loop, resumed/unfinished pairs, exit and signal lines.

:class:`_Parser` reads the text line by line; the common complete calls are
turned into events inline (the fast path), every other line goes through
:meth:`_Parser.line`, which joins ``<unfinished ...>``/``resumed`` pairs per
thread and hands each complete call to :meth:`~_Calls.call`.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterable, Iterator
from operator import itemgetter
from sys import intern
from typing import Any

from sandbox.eventrows import EVENT_TEMPLATE as _EVENT_TEMPLATE
from sandbox.eventrows import make_event
from sandbox.models import EventKind, Phase
from sandbox.trace.strace._syntax import RESULT_RE, normalise, odd_quotes
from sandbox.trace.strace.events import ParsedTrace, process_info
from sandbox.trace.strace.processes import _Pending
from sandbox.trace.strace.syscalls import _Calls
from sandbox.trace.strace.tables import _FLAGS_ARG, K, _open_kind

_SAMPLE_LIMIT = 20
_SAMPLE_CHARS = 500
_UNFINISHED = " <unfinished ...>"
_DETACHED = " <detached ...>"
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


class _Parser(_Calls):
    """One parse: call :meth:`run` once."""

    def __init__(self, phase: Phase, root_ppid: int | None) -> None:
        super().__init__(phase, root_ppid)
        self.changed: dict[int, _Pending] = {}  # execve from a thread: <pid changed to N ...>
        self.unparsed = 0
        self.samples: list[str] = []
        self.complete = True
        self.fast_path = True  # tests switch it off to check both paths agree

    # --- driver -------------------------------------------------------------------

    def run(self, text: str, seq_start: int) -> ParsedTrace:
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        else:
            self.complete = False  # the text ends mid-line
        return self.run_lines(lines, seq_start)

    def run_file(self, fh: Iterable[str], seq_start: int) -> ParsedTrace:
        """Parse lines as a text file yields them (each ending in a newline but maybe
        the last): one line in memory at a time, not the whole trace and its split."""
        return self.run_lines(self._chomped(fh), seq_start)

    def _chomped(self, fh: Iterable[str]) -> Iterator[str]:
        for line in fh:
            if line[-1:] == "\n":
                yield line[:-1]
            else:
                self.complete = False  # the file ends mid-line
                yield line

    def run_lines(self, lines: Iterable[str], seq_start: int) -> ParsedTrace:
        # The parse allocates a few objects per line and frees none of them, so the
        # cyclic GC would keep rescanning a growing heap (a third of the run time);
        # nothing built here forms a cycle.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            count = self.loop(lines)
            self.finish()
            return self.result(count, seq_start)
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
        processes = tuple(process_info(p, self.phase) for p in self.all_procs)
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

    def loop(self, lines: Iterable[str]) -> int:
        """Parse every line; the common shapes are handled inline, the rest by :meth:`line`.
        Returns the number of lines."""
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
        no = -1
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
                                fields["flags"] = flags if flags is None else intern(flags)
                                if kind is None:
                                    fields["kind"] = _open_kind(flags)
                            fields["seq"] = no
                            fields["pid"] = tgid
                            fields["time"] = t
                            fields["path"] = intern(path)  # a file is stat'ed, opened, read …
                            fields["result"], fields["errno"] = res[0], res[1]
                            events.append(fields)
                            continue
            try:
                self.line(no, line)
            except Exception:  # a parser bug must not lose the rest of the trace
                self.bad(line)
        return no + 1

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


# 25    1795628174.405013 +++ exited with 7 +++
# 22    1795628333.060526 +++ killed by SIGKILL +++
# 23    1795628333.083369 +++ killed by SIGABRT (core dumped) +++
# 28    1795628333.097199 +++ superseded by execve in pid 29 +++
_EXIT_RE = re.compile(
    r"\+\+\+ (?:exited with (\d+)|killed by (\w+)( \(core dumped\))?|superseded by execve in pid (\d+)) \+\+\+"
)
