"""Attribute every event to the candidate, the runtime's start-up noise, or the harness.

The harness (setpriv, choom, pip's own process during install) is decided by
lineage: the exact processes the agent started, each with its executable image
checked (see :func:`classify`), never by argv alone; a child of pip that execs a
build backend runs candidate code and is ``candidate``.  Harness events are kept
(labelled), not dropped.
Runtime noise (the interpreter and loader reading the standard library, shared
libraries, locale files, its own site-packages) is classified, never dropped.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable

from sandbox.eventrows import relabel_owned, replace_event
from sandbox.models import DEFAULT_PASS, Event, EventKind, Origin, Phase, ProcessInfo, in_order

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
    "/usr/local/lib/devtools/run/",
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
        "/usr/local/lib/devtools",
        "/usr/local/lib/devtools/run",
        "/home",
    }
)
# Commands pip itself runs (platform/distro probes for its user agent): exempt only
# with exactly this argv, this executable image, and the harness pip as parent.
HARNESS_CHILDREN: dict[tuple[str, ...], frozenset[str]] = {
    ("uname", "-rs"): frozenset({"/usr/bin/uname", "/bin/uname"}),
    ("uname", "-p"): frozenset({"/usr/bin/uname", "/bin/uname"}),
    ("lsb_release", "-a"): frozenset({"/usr/bin/lsb_release"}),
}
# The agent's privilege drop in front of every step (see sandbox/agent/steps.py
# privilege_drop): the step root execs exactly these images, in this order.
SETPRIV = "/usr/bin/setpriv"
CHOOM = "/usr/bin/choom"
CHOOM_ARGV = ("choom", "-n", "1000", "--")
_SETPRIV_REQUIRED = ("--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs")
_SELF_PROC = re.compile(
    r"^/proc/(self|thread-self|\d+)/(status|stat|maps|fd|task|cgroup|mountinfo|oom_score_adj)$"
)
# A file Python would import as ``pip`` (what ``-m pip`` runs) outside the venv.
_PIP_MODULE = re.compile(r"/pip(?:/__main__\.py|/__init__\.py|\.py|/__init__\.[^/]*\.so|\.[^/]*\.so)$")


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


# Lineage labels: what the image a process runs at a given moment is.
_CAND = "candidate"
_ROOT = "root"  # a step root before its first exec
_SETPRIV_L = "setpriv"
_CHOOM_L = "choom"
_PIP = "pip"  # the install step's pip (harness once verified)
_PIP_CHILD = "pip-child"  # forked by the harness pip, not yet exec'd
_PIP_TOOL = "pip-tool"  # a probe or build-env pip started by the harness pip


def classify(
    events: Iterable[Event],
    processes: Iterable[ProcessInfo],
    harness: Iterable[tuple[str, ...]],
    venv: str,
    project: str = "",
    *,
    owned: bool = False,
) -> tuple[list[Event], list[ProcessInfo]]:
    """Set ``origin`` on every event and process (see module docstring); events in
    (phase, seq) order.  *owned*: the caller hands over events nobody else holds (just
    parsed), relabelled in place rather than copied (see :func:`relabel_owned`).

    Harness is decided by lineage, never by argv alone: a step root is a process
    with no traced parent whose first exec is ``/usr/bin/setpriv`` running the
    agent's privilege drop; it must then exec ``/usr/bin/choom`` with the agent's
    argv, then the step command.  Only during install, and only when that command
    is exactly a *harness* argv, is the step command's process (pip) harness, and
    only if it ran the venv's own pip (no ``pip`` module found anywhere else);
    pip's children are harness only for the exact probes (argv *and* system
    executable) and pip's own build-env installer.  Everything else is candidate.
    """
    harness_set = {tuple(a) for a in harness}
    ordered = in_order(events)
    relabel = relabel_owned if owned else replace_event
    procs = list(processes)
    roots = {(p.phase, p.pid) for p in procs if p.ppid is None}
    label: dict[tuple[Phase, int], tuple[str, tuple[str, ...]]] = {}
    pip_of: dict[tuple[Phase, int], tuple[Phase, int]] = {}  # a pip-labelled pid → its main pip
    labels: list[tuple[str, tuple[Phase, int] | None]] = []
    pairs: dict[tuple[str, tuple[Phase, int] | None], tuple[str, tuple[Phase, int] | None]] = {}
    swapped = _interpreter_swaps(ordered, venv)
    for ev in ordered:
        key = (ev.phase, ev.pid)
        if key not in label:
            label[key] = (_ROOT if key in roots else _CAND, ())
        state, cmd = label[key]
        if ev.kind is EventKind.EXEC and ev.errno is None:
            state, cmd = _after_exec(ev, state, cmd, harness_set, venv)
            if state == _PIP and swapped(ev):
                state, cmd = _CAND, ()  # the interpreter is no longer the one the agent made
            label[key] = (state, cmd)
            if state == _PIP and key not in pip_of:
                pip_of[key] = key
        elif ev.kind is EventKind.SPAWN and ev.target is not None and ev.flags != "thread":
            child = (ev.phase, ev.target)
            if state in (_PIP, _PIP_TOOL) and key in pip_of:
                label.setdefault(child, (_PIP_CHILD, ()))
                pip_of.setdefault(child, pip_of[key])
            else:
                label.setdefault(child, (_CAND, ()))
        pair = (state, pip_of.get(key) if state in (_PIP, _PIP_CHILD, _PIP_TOOL) else None)
        labels.append(pairs.setdefault(pair, pair))  # a few distinct pairs, millions of events
    verified = _verified_pips(ordered, labels, venv)
    out: list[Event] = []
    for ev, (state, pip) in zip(ordered, labels, strict=True):
        if state in (_SETPRIV_L, _CHOOM_L) or (pip is not None and pip in verified):
            origin = Origin.HARNESS
        elif ev.kind in _READS and ev.path is not None and is_runtime_path(ev.path, venv, project):
            origin = Origin.RUNTIME
        else:
            origin = Origin.CANDIDATE
        out.append(ev if ev.origin is origin else relabel(ev, origin=origin))
    procs_out = []
    for p in procs:
        key = (p.phase, p.pid)
        state = label.get(key, (_CAND, ()))[0]
        harness_proc = state in (_SETPRIV_L, _CHOOM_L) or (
            state in (_PIP, _PIP_CHILD, _PIP_TOOL) and pip_of.get(key) in verified
        )
        origin = Origin.HARNESS if harness_proc else Origin.CANDIDATE
        procs_out.append(p if p.origin is origin else p.model_copy(update={"origin": origin}))
    return out, procs_out


def _after_exec(
    ev: Event, state: str, cmd: tuple[str, ...], harness: set[tuple[str, ...]], venv: str
) -> tuple[str, tuple[str, ...]]:
    """The label of a process after a successful exec of *ev* from *state*."""
    argv = ev.argv or ()
    if state == _ROOT:
        step = _step_command(argv)
        if ev.path == SETPRIV and step is not None:
            return _SETPRIV_L, step
    elif state == _SETPRIV_L:
        if ev.path == CHOOM and argv == (*CHOOM_ARGV, *cmd):
            return _CHOOM_L, cmd
    elif state == _CHOOM_L:
        exact_image = not cmd or not cmd[0].startswith("/") or ev.path == cmd[0]
        if ev.phase is Phase.INSTALL and argv == cmd and cmd in harness and exact_image:
            return _PIP, cmd
    elif state == _PIP_CHILD:
        images = HARNESS_CHILDREN.get(_basename_argv(argv))
        if (images is not None and ev.path in images) or (
            _is_pip_build_env(argv, venv) and ev.path == argv[0]
        ):
            return _PIP_TOOL, ()
    return _CAND, ()


def _interpreter_swaps(ordered: list[Event], venv: str) -> Callable[[Event], bool]:
    """Whether the venv's interpreter (``bin/python*``) or its ``pyvenv.cfg`` was written,
    renamed over or linked before an exec: a step that runs it then runs whatever was
    put there. Passes run in order after the default one (their events sort by phase,
    not by pass): a write in the default pass precedes every extra pass's exec, and one
    in an extra pass is taken to precede the other extra passes' (their order is the
    plan's)."""
    interp = re.compile(re.escape(venv) + r"/(?:bin/python(?:3(?:\.\d+)?)?|pyvenv\.cfg)$")
    writes: list[tuple[str, tuple[int, int]]] = []
    for ev in ordered:
        if ev.errno is not None or ev.kind not in _SWAPS:
            continue
        target = ev.path2 if ev.kind is EventKind.FILE_RENAME else ev.path
        if target and interp.match(target):
            writes.append((ev.pass_name, (ev.phase.order, ev.seq)))

    def swapped(ex: Event) -> bool:
        key = (ex.phase.order, ex.seq)
        for pass_name, k in writes:
            if pass_name == ex.pass_name:
                if k < key:
                    return True
            elif pass_name == DEFAULT_PASS or ex.pass_name != DEFAULT_PASS:
                return True
        return False

    return swapped


_SWAPS = {EventKind.FILE_WRITE, EventKind.FILE_RENAME, EventKind.FILE_LINK}


def _step_command(argv: tuple[str, ...]) -> tuple[str, ...] | None:
    """The command of the agent's privilege drop: ``setpriv OPTS -- choom -n 1000 -- CMD``."""
    if not argv or argv[0] != "setpriv" or "--" not in argv:
        return None
    i = argv.index("--")
    opts = argv[1:i]
    if not all(o.startswith("--") for o in opts) or not all(r in opts for r in _SETPRIV_REQUIRED):
        return None
    rest = argv[i + 1 :]
    if rest[: len(CHOOM_ARGV)] != CHOOM_ARGV or len(rest) <= len(CHOOM_ARGV):
        return None
    return rest[len(CHOOM_ARGV) :]


def _verified_pips(
    ordered: list[Event], labels: list[tuple[str, tuple[Phase, int] | None]], venv: str
) -> set[tuple[Phase, int]]:
    """Main pips that ran the venv's own pip: they found ``pip/__main__.py`` in the venv's
    site-packages and no ``pip`` module anywhere else (a look-alike in the cwd)."""
    own = re.compile(re.escape(venv) + r"/lib/python3\.\d+/site-packages/pip/__main__\.py$")
    found: set[tuple[Phase, int]] = set()
    spoofed: set[tuple[Phase, int]] = set()
    for ev, (_, pip) in zip(ordered, labels, strict=True):
        if pip is None or ev.errno is not None or ev.path is None or ev.kind not in _READS:
            continue
        if own.match(ev.path):
            if (ev.phase, ev.pid) == pip:
                found.add(pip)
        elif _PIP_MODULE.search(ev.path) and not ev.path.startswith(venv + "/lib/"):
            spoofed.add(pip)
    return found - spoofed


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
