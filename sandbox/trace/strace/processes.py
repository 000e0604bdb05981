"""Process and path state: the pid/thread table, spawn attribution, cwd and fd tables.

Threads fold into their thread-group leader; a child that prints before its
parent's spawn call returned is attributed provisionally and fixed by
:meth:`_Tasks.spawned`.  Paths are made absolute against a dirfd decoration or the
process's cwd, through ``/proc`` magic links and symlinks created in the trace.
"""

from __future__ import annotations

from typing import Any

from sandbox.eventrows import EVENT_TEMPLATE as _EVENT_TEMPLATE
from sandbox.eventrows import share_strings
from sandbox.models import Phase
from sandbox.trace import kernel_paths
from sandbox.trace.strace._syntax import STRING_RE, deco_path, split_fd, unescape
from sandbox.trace.strace.tables import _SPAWN


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


class _Tasks:
    """The task, process and path state of one parse (the base of the parser)."""

    def __init__(self, phase: Phase, root_ppid: int | None) -> None:
        self.phase = phase
        self.root_ppid = root_ppid
        self.events: list[dict[str, Any]] = []  # complete Event field dicts
        self.tgid_of: dict[int, int] = {}
        self.tgid_cache: dict[str, int] = {}  # tgid_of by the printed tid, for the fast path
        self.procs: dict[int, _Proc] = {}  # live (or last) process per pid
        self.all_procs: list[_Proc] = []
        self.pending: dict[int, _Pending] = {}
        # tid -> (parent tgid, is thread, its events so far, line of the spawn call
        # guessed) until a spawn call returns it.
        self.provisional: dict[int, tuple[int, bool, list[dict[str, Any]], int]] = {}
        self.links: dict[str, str] = {}  # symlinks created in this trace: link path → target
        self.degraded = 0

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
        self.events.append(share_strings(fields))
        if self.provisional and tid in self.provisional:
            self.provisional[tid][2].append(fields)

    # --- paths -----------------------------------------------------------------------

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
        return kernel_paths.kernel_path(path, proc, self._task, self.links)

    def proc_link(self, proc: _Proc, path: str) -> str:
        """``/proc/self/cwd/x`` → ``<cwd>/x`` (see :func:`kernel_paths.proc_link`)."""
        return kernel_paths.proc_link(path, proc, self._task)

    def through_links(self, path: str) -> str:
        """Follow the symlinks this trace created in *path*'s directory part."""
        return kernel_paths.through_links(path, self.links)

    def _task(self, pid: int) -> _Proc | None:
        return self.procs.get(self.tgid_of.get(pid, pid))

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
