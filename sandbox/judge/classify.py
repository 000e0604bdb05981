"""Attribute every event to the candidate, the runtime's start-up noise, or the harness.

The harness (setpriv, choom, pip's own process during install) is exempted only by
an exact (executable image, argv) match, and only while a process runs that image:
a child of pip that execs a build backend runs candidate code and is ``candidate``.
Runtime noise (the interpreter and loader reading the standard library, shared
libraries, locale files, its own site-packages) is classified, never dropped.
"""

from __future__ import annotations

import posixpath
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
    # getpath.c probes next to the interpreter for a build tree and landmarks
    "/usr/bin/Modules/",
    "/usr/bin/lib/",
    "/usr/bin/lib64/",
    "/usr/local/bin/Modules/",
    "/usr/local/bin/lib/",
    "/usr/local/bin/lib64/",
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
        "/opt",
        "/opt/pkgsandbox",
        "/opt/pkgsandbox/run",
        "/home",
    }
)
# Commands pip itself runs (platform/distro probes for its user agent). Exempt only
# with exactly this argv *and* a harness parent: never as a blanket exemption.
HARNESS_CHILDREN = frozenset({("uname", "-rs"), ("uname", "-p"), ("lsb_release", "-a")})
_SELF_PROC = re.compile(
    r"^/proc/(self|thread-self|\d+)/(status|stat|maps|fd|task|cgroup|mountinfo|oom_score_adj)$"
)


def is_runtime_path(path: str, venv: str, project: str = "") -> bool:
    """Whether reading *path* is what any Python process does to start and import."""
    if path in _RUNTIME_EXACT or path.startswith(_RUNTIME_PREFIXES):
        return True
    if project and path in (project, posixpath.dirname(project)):
        return True  # sys.path[0] is the working directory: the import system stats it
    if path.startswith(venv + "/local/") or path == venv + "/bin/pyvenv.cfg":
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
    project: str = "",
) -> tuple[list[Event], list[ProcessInfo]]:
    """Set ``origin`` on every event and process (see module docstring)."""
    harness_set = {tuple(a) for a in harness}
    # Each process's image at any moment: the argv of its last successful exec,
    # else its parent's at fork time. Walk events in order to track it.
    image: dict[int, tuple[str, ...] | None] = {}
    harness_image: dict[int, bool] = {}  # is the pid's current image the harness?
    out: list[Event] = []
    for ev in sorted(events, key=lambda e: (e.phase.order, e.seq)):
        if ev.kind is EventKind.EXEC and ev.errno is None and ev.argv is not None:
            parent_was_harness = harness_image.get(ev.pid, False)
            image[ev.pid] = ev.argv
            harness_image[ev.pid] = _is_harness(ev.argv, harness_set) or (
                parent_was_harness
                and (_basename_argv(ev.argv) in HARNESS_CHILDREN or _is_pip_build_env(ev.argv, venv))
            )
        elif ev.kind is EventKind.SPAWN and ev.target is not None and ev.flags != "thread":
            image.setdefault(ev.target, image.get(ev.pid))
            harness_image.setdefault(ev.target, harness_image.get(ev.pid, False))
        if harness_image.get(ev.pid, False):
            origin = Origin.HARNESS
        elif ev.kind in _READS and ev.path is not None and is_runtime_path(ev.path, venv, project):
            origin = Origin.RUNTIME
        else:
            origin = Origin.CANDIDATE
        out.append(ev if ev.origin is origin else ev.model_copy(update={"origin": origin}))
    procs_out = [
        p.model_copy(
            update={
                "origin": Origin.HARNESS
                if harness_image.get(p.pid, _is_harness(p.argv, harness_set))
                else Origin.CANDIDATE
            }
        )
        for p in processes
    ]
    return out, procs_out


def _is_pip_build_env(argv: tuple[str, ...], venv: str) -> bool:
    """pip installing build requirements into its isolated build env (pip's own code).

    Its argv holds random temp paths, so it cannot be matched exactly; it is matched
    by executable and pip's runner script, and only as a child of the harness pip.
    Build backends run in *other* processes (``_in_process.py``) and stay candidate.
    """
    return (
        len(argv) > 3
        and argv[0] == venv + "/bin/python"
        and argv[1].startswith(venv + "/lib/")
        and argv[1].endswith("/site-packages/pip/__pip-runner__.py")
        and argv[2] == "install"
        and "--prefix" in argv
    )


def _basename_argv(argv: tuple[str, ...]) -> tuple[str, ...]:
    return (posixpath.basename(argv[0]), *argv[1:]) if argv else ()


def _is_harness(argv: tuple[str, ...], harness: set[tuple[str, ...]]) -> bool:
    if argv in harness:
        return True
    # setpriv/choom are the privilege drop in front of every step's command
    name = argv[0].rsplit("/", 1)[-1] if argv else ""
    if name == "setpriv" and "--no-new-privs" in argv and "--bounding-set=-all" in argv:
        return True
    return name == "choom" and argv[1:4] == ("-n", "1000", "--")
