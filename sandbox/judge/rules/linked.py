"""Programs the system toolchain built in the run (PS004 and PS003 LOW): sympy's probe
compiles C (cc1 → as → ld) and runs the result; a dropper decodes a payload and runs it.

The executed file's last writer must be the system linker, known by the image its
process had *when it wrote* (a pid that writes a payload and then execs ``ld`` is not
the linker), invoked without raw-format options (``-b binary``/``--oformat`` make it a
copier of arbitrary bytes), and every file written in the run that a tool of the
chain read must in turn have been written by the tool that feeds it (assembler output
for the linker, compiler output for the assembler). A blob, linker script, plugin or
preload library the package wrote and handed to ``ld`` or ``as`` is not a build. What
the compiler proper reads (the package's source) is the package's code compiled, as a
native extension is: judged by what the program does.
"""

from __future__ import annotations

import bisect
import posixpath
import re
from collections.abc import Iterable

from sandbox.models import Event, EventKind, Origin, Phase, in_order

_TOOLCHAIN_DIRS = ("/usr/bin/", "/usr/lib/gcc/", "/usr/libexec/gcc/", "/usr/lib/llvm-")
_TRIPLE = r"(?:[\w.]+-linux-gnu-)?"
_ROLES = (
    ("link", re.compile(rf"^{_TRIPLE}(?:ld(?:\.bfd|\.gold|\.lld)?|collect2|mold|lld)$")),
    ("asm", re.compile(rf"^{_TRIPLE}as$")),
    ("lto", re.compile(r"^(?:lto1|lto-wrapper)$")),
    ("cc1", re.compile(r"^(?:cc1(?:plus|obj|objplus)?|f951|gnat1|d21)$")),
    ("clang", re.compile(r"^clang(?:\+\+)?(?:-\d+)?$")),
    ("driver", re.compile(rf"^{_TRIPLE}(?:gcc|cc|g\+\+|c\+\+|gfortran)(?:-\d+)?$")),
)
# which tools may have written the run's files a tool reads (None: reads source, unchecked)
_FEEDS: dict[str, frozenset[str] | None] = {
    "link": frozenset({"link", "asm", "lto", "clang", "driver"}),
    "lto": frozenset({"link", "asm", "lto", "clang", "driver"}),
    "asm": frozenset({"cc1", "clang", "driver"}),
    "cc1": None,
    "clang": None,
    "driver": None,  # its own writes are empty temp files and response files
}
# ld options that copy raw bytes (input or output format) instead of linking objects
_RAW = re.compile(r"^(?:-b.*|--?format(?:=.*)?|--?oformat(?:=.*)?)$")
_DEPTH = 6
_OPENS = frozenset({"open", "openat", "openat2", "creat"})

Key = tuple[int, int]


def _key(e: Event) -> Key:
    return (e.phase.order, e.seq)


def _within(path: str, name: str) -> bool:
    return bool(name) and (path == name or path.startswith(name.rstrip("/") + "/"))


class Written(dict[str, Event]):
    """Path → the last event that wrote, renamed or linked something there; a renamed
    directory carries what was written under it to its new name (a payload dropped in
    a folder that is then renamed is still the run's)."""

    def __init__(self) -> None:
        super().__init__()
        self.dirs: set[str] = set()  # every directory above a written path

    def record(self, e: Event) -> None:
        """Account for *e* (anything but a successful write, rename or link is ignored)."""
        target = _target(e)
        if not target:
            return
        if e.kind is EventKind.FILE_RENAME and e.path and e.path in self.dirs:
            src = e.path.rstrip("/") + "/"
            for k, v in [(k, v) for k, v in self.items() if k.startswith(src)]:
                del self[k]  # nothing is there any more
                self._put(target.rstrip("/") + "/" + k[len(src) :], v)
        self._put(target, e)

    def _put(self, path: str, e: Event) -> None:
        self[path] = e
        d = posixpath.dirname(path)
        while d not in self.dirs and d not in ("", "/"):
            self.dirs.add(d)
            d = posixpath.dirname(d)


def last_writes(events: Iterable[Event]) -> Written:
    """The :class:`Written` index of *events* (in order)."""
    written = Written()
    for e in in_order(events):
        written.record(e)
    return written


def _target(e: Event) -> str | None:
    if e.errno is not None:
        return None
    if e.kind is EventKind.FILE_WRITE:
        return e.path
    if e.kind in (EventKind.FILE_RENAME, EventKind.FILE_LINK) and e.path2:
        # rename(src, dst): path = src, path2 = dst; link: path = new link
        return e.path2 if e.kind is EventKind.FILE_RENAME else e.path
    return None


class Builds:
    """Indexes over the candidate's events for :meth:`linked`."""

    def __init__(self, events: Iterable[Event]) -> None:
        """*events*: the candidate's and the runtime-labelled reads (not the harness's:
        what pip installed from a wheel is the package's shipped content)."""
        self.writes: dict[str, list[tuple[Key, Event]]] = {}
        self.execs: dict[tuple[Phase, int], list[tuple[Key, Event]]] = {}
        self.reads: dict[tuple[Phase, int], list[tuple[Key, Event]]] = {}
        self.links: list[tuple[str, str]] = []  # (new name, what it names) of every link made
        for e in in_order(events):
            if e.kind is EventKind.FILE_LINK and e.errno is None and e.origin is Origin.CANDIDATE:
                self.links.append((e.path or "", e.path2 or ""))
            target = _target(e) if e.origin is Origin.CANDIDATE else None
            if target:
                self.writes.setdefault(target, []).append((_key(e), e))
            elif e.errno is None and e.kind is EventKind.EXEC and e.origin is Origin.CANDIDATE:
                self.execs.setdefault((e.phase, e.pid), []).append((_key(e), e))
            elif e.errno is None and e.kind is EventKind.FILE_READ and e.path:
                self.reads.setdefault((e.phase, e.pid), []).append((_key(e), e))

    @staticmethod
    def _before(rows: list[tuple[Key, Event]], key: Key) -> Event | None:
        # rows are in key order; (key,) sorts before (key, event), so bisect finds the
        # last row strictly before *key* without building a key list
        i = bisect.bisect_left(rows, (key,))
        return rows[i - 1][1] if i else None

    def image(self, e: Event) -> Event | None:
        """The exec that gave *e*'s process the image it had at *e* (None: not seen)."""
        return self._before(self.execs.get((e.phase, e.pid), []), _key(e))

    def role(self, e: Event) -> str | None:
        """The toolchain role of the program that made event *e*, or None."""
        x = self.image(e)
        exe = (x.path2 or x.path or "") if x else ""
        if not exe.startswith(_TOOLCHAIN_DIRS) or exe in self.writes:
            return None  # not a system tool, or one the run wrote over
        base = posixpath.basename(exe)
        return next((name for name, pattern in _ROLES if pattern.match(base)), None)

    def linked(self, path: str, w: Event) -> bool:
        """Whether *w*, the last write to *path*, is the system linker's, building from
        what the toolchain itself produced (see the module docstring)."""
        return (
            w.kind is EventKind.FILE_WRITE
            and self.role(w) == "link"
            and not self._aliased(path)
            and self._clean(path, w, _DEPTH)
        )

    def _aliased(self, path: str) -> bool:
        """Whether the run made another name for *path* or a directory above it (a hard
        link or symlink): writes through that name change the file unseen under its own
        (hard links always; symlinks under a recorder that does not resolve them)."""
        return any(_within(path, a) or _within(path, b) for a, b in self.links if a or b)

    def _clean(self, path: str, w: Event, depth: int) -> bool:
        """Whether every run-written file *w*'s process read before it was written by a
        tool allowed to feed *w*'s tool (recursively)."""
        role = self.role(w)
        if role is None:
            return False
        feeds = _FEEDS[role]
        if feeds is None:
            return True
        x = self.image(w)
        if role == "link" and x is not None and any(_RAW.match(a) for a in (x.argv or ())[1:]):
            return False
        if depth <= 0:
            return False
        start = _key(x) if x is not None else (-1, -1)
        for k, r in self.reads.get((w.phase, w.pid), []):
            if not start < k < _key(w) or r.path == path:
                continue
            src = self._before(self.writes.get(r.path or "", []), k)
            if src is None:
                continue  # not written in the run (system objects and libraries)
            if src.pid == w.pid and self.image(src) is x:
                continue  # its own scratch file (the LTO plugin's resolution file)
            by = self.role(src) if src.kind is EventKind.FILE_WRITE else None
            if by == "driver" and src.syscall not in _OPENS:
                return False  # a driver only creates temp names; what it prints is anyone's text
            if by not in feeds:
                return False
            if not self._clean(r.path or "", src, depth - 1):
                return False
        return True
