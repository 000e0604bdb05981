"""Attribute every event to the candidate, the runtime's start-up noise, or the harness.

The harness (setpriv, choom, pip's own process during install) is exempted only by
an exact (executable image, argv) match, and only while a process runs that image:
a child of pip that execs a build backend runs candidate code and is ``candidate``.
Runtime noise (the interpreter and loader reading the standard library, shared
libraries, locale files, its own site-packages) is classified, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sandbox.models import Event, EventKind, Origin, ProcessInfo

_READS = {EventKind.FILE_READ, EventKind.FILE_STAT, EventKind.FILE_LIST}

_RUNTIME_PREFIXES = (
    "/usr/lib/",
    "/usr/lib64/",
    "/lib/",
    "/lib64/",
    "/usr/local/lib/",
    "/usr/share/locale",
    "/usr/share/zoneinfo/",
    "/usr/share/i18n/",
    "/usr/lib/locale/",
    "/usr/include/",
    "/opt/pkgsandbox/run/",
    "/etc/ld.so.",
    "/usr/bin/python",
    "/usr/local/bin/python",
    "/usr/pyvenv.cfg",
    "/usr/bin/pyvenv.cfg",
    "/usr/bin/pybuilddir.txt",
    "/usr/local/bin/pybuilddir.txt",
    "/usr/local/pyvenv.cfg",
    "/usr/local/bin/pyvenv.cfg",
)
_RUNTIME_EXACT = frozenset(
    {
        "/etc/localtime",
        "/etc/nsswitch.conf",
        "/etc/passwd",
        "/etc/group",
        "/etc/host.conf",
        "/etc/gai.conf",
        "/etc/os-release",
        "/usr/lib/os-release",
        "/etc/mime.types",
        "/dev/null",
        "/dev/urandom",
        "/dev/tty",
        "/",
        "/usr",
        "/usr/lib",
        "/usr/bin",
        "/etc",
        "/tmp",
        "/var/tmp",
        "/proc/self/maps",
        "/proc/cpuinfo",
        "/proc/meminfo",
        "/sys/fs/cgroup/cpu.max",
    }
)
_SELF_PROC = re.compile(r"^/proc/(self|thread-self|\d+)/(status|stat|maps|fd|task|cgroup|mountinfo|oom_score_adj)$")


def is_runtime_path(path: str, venv: str) -> bool:
    """Whether reading *path* is what any Python process does to start and import."""
    if path in _RUNTIME_EXACT or path.startswith(_RUNTIME_PREFIXES):
        return True
    if path == venv or path.startswith(venv + "/lib/") or path.startswith(venv + "/bin/python"):
        return True
    if path in (venv + "/pyvenv.cfg", venv + "/bin", venv + "/lib64", venv + "/lib"):
        return True
    return bool(_SELF_PROC.match(path))


def classify(
    events: Iterable[Event],
    processes: Iterable[ProcessInfo],
    harness: Iterable[tuple[str, ...]],
    venv: str,
) -> tuple[list[Event], list[ProcessInfo]]:
    """Set ``origin`` on every event and process (see module docstring)."""
    harness_set = {tuple(a) for a in harness}
    procs = {p.pid: p for p in processes}
    # Each process's image at any moment: the argv of its last successful exec,
    # else its parent's at fork time. Walk events in order to track it.
    image: dict[int, tuple[str, ...] | None] = {}
    out: list[Event] = []
    for ev in sorted(events, key=lambda e: (e.phase.order, e.seq)):
        if ev.kind is EventKind.EXEC and ev.errno is None and ev.argv is not None:
            image[ev.pid] = ev.argv
        elif ev.kind is EventKind.SPAWN and ev.target is not None and ev.flags != "thread":
            image.setdefault(ev.target, image.get(ev.pid))
        current = image.get(ev.pid)
        if current is not None and _is_harness(current, harness_set):
            origin = Origin.HARNESS
        elif current is None and ev.kind is not EventKind.EXEC and _root_before_exec(ev, procs):
            origin = Origin.HARNESS  # the recorder's fork before the first exec
        elif ev.kind in _READS and ev.path is not None and is_runtime_path(ev.path, venv):
            origin = Origin.RUNTIME
        else:
            origin = Origin.CANDIDATE
        out.append(ev if ev.origin is origin else ev.model_copy(update={"origin": origin}))
    procs_out = [
        p.model_copy(update={"origin": Origin.HARNESS if _is_harness(p.argv, harness_set) else Origin.CANDIDATE})
        for p in processes
    ]
    return out, procs_out


def _is_harness(argv: tuple[str, ...], harness: set[tuple[str, ...]]) -> bool:
    if argv in harness:
        return True
    # setpriv/choom are the privilege drop in front of every step's command
    name = argv[0].rsplit("/", 1)[-1] if argv else ""
    if name == "setpriv" and "--no-new-privs" in argv and "--bounding-set=-all" in argv:
        return True
    return name == "choom" and argv[1:4] == ("-n", "1000", "--")


def _root_before_exec(ev: Event, procs: dict[int, ProcessInfo]) -> bool:
    proc = procs.get(ev.pid)
    return proc is not None and proc.ppid is None
