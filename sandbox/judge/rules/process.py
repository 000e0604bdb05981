"""Process rules: PS003 (shells, downloaders), PS004 (exec of a written file), PS006
(survivors), PS022 (process explosion), PS023 (CPU burn), PS028 (SIGSTOP to itself)
and PS029 (exec through a file descriptor)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

from sandbox.agent.protocol import CPU_SETTLE_SECONDS
from sandbox.judge.rules.context import MAX_EVIDENCE, Context, dedupe, exec_name, make_finding, per_phase
from sandbox.judge.rules.linked import Builds, Written, last_writes
from sandbox.models import (
    Event,
    EventKind,
    Evidence,
    Finding,
    Origin,
    Phase,
    ProcessInfo,
    Severity,
    in_order,
)

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox", "ash"})


DOWNLOADERS = frozenset(
    {
        "curl",
        "wget",
        "nc",
        "ncat",
        "netcat",
        "socat",
        "telnet",
        "ssh",
        "scp",
        "sftp",
        "ftp",
        "tftp",
        "rsync",
        "aria2c",
        "powershell",
        "pwsh",
        "openssl",
        "nslookup",
        "dig",
        "host",
    }
)


def _shebang(data: str) -> str | None:
    """The interpreter named by a ``#!`` line in strace's escaped data (``/usr/bin/env X`` → X)."""
    line = data[2:].split("\\n", 1)[0].strip()
    words = line.split()
    if not words:
        return None
    if posixpath.basename(words[0]) == "env":
        rest = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        return rest[0] if rest else None
    return words[0]


def interpreters(events: Iterable[Event]) -> dict[str, str]:
    """Script path → its ``#!`` interpreter, from the heads written to it by anyone
    (the candidate, or pip installing a wheel's scripts): a script run directly
    shows only its own execve, the kernel starts the interpreter unseen."""
    out: dict[str, str] = {}
    for e in events:
        if e.kind is EventKind.FILE_WRITE and e.path and e.data and e.data.startswith("#!"):
            interp = _shebang(e.data)
            if interp:
                out[e.path] = interp
    return out


# Read-only system probes that old build helpers run through a shell (CPU and
# platform detection). A shell running only these is noted, not condemned; its
# children are traced like everything else.
PROBE_COMMANDS = frozenset(
    {
        "uname",
        "arch",
        "nproc",
        "getconf",
        "lscpu",
        "ldconfig",
        "ldconfig.real",
        "lsb_release",
        "sw_vers",
        "sysctl",
        "hostname",
        "id",
        "whoami",
        "true",
        "false",
        "echo",
        # compilers (sympy probes for C and Fortran ones); what they build is judged
        # when it runs
        "gcc",
        "cc",
        "clang",
        "c++",
        "g++",
        "clang++",
        "cpp",
        "gfortran",
        "g77",
        "g95",
        "f77",
        "f90",
        "f95",
        "flang",
        "ifort",
        "ifx",
        "icc",
        "icx",
        "icpc",
        "nvcc",
        "tcc",
        "as",
        "ld",
        "which",
        "command",
        "test",
        "[",
    }
)


# Build-configuration queries a setup.py runs through a shell (``pkg-config --exists
# mysqlclient``, ``pg_config --includedir``, ``xml2-config --cflags``): they print flags.
_CONFIG_QUERY = re.compile(r"^(?:[\w.+-]*-)?pkg-?conf(?:ig)?$|^[A-Za-z][\w.+]*[-_]config\d*$")


def is_probe(program: str) -> bool:
    """Whether *program* (a base name) is a read-only probe: :data:`PROBE_COMMANDS` or a
    build-configuration query."""
    return program in PROBE_COMMANDS or bool(_CONFIG_QUERY.match(program))


def shell_probe_only(argv: tuple[str, ...] | None, also: frozenset[str] = frozenset()) -> bool:
    """``sh -c 'uname -m'``: a shell whose command line only runs read-only probes (or
    the programs named in *also*, as written on the command line)."""
    import shlex

    if not argv or len(argv) < 3 or argv[1] != "-c":
        return False
    script = argv[2]
    if any(ch in script for ch in (">", "<", "`", "$(", "\n")):
        return False
    try:
        tokens = shlex.split(
            script.replace(";", " ; ").replace("&&", " ; ").replace("||", " ; ").replace("|", " ; ")
        )
    except ValueError:
        return False
    starts = [True] + [t == ";" for t in tokens[:-1]]
    programs = [posixpath.basename(t) for t, first in zip(tokens, starts, strict=False) if first and t != ";"]
    return bool(programs) and all(is_probe(p) or p in also for p in programs)


def _builds(ctx: Context) -> Builds:
    # the tools' reads of the venv's lib are runtime-labelled (what every interpreter
    # reads), yet a blob the package wrote there is what it fed the linker
    return Builds(e for e in ctx.obs.events if e.origin is not Origin.HARNESS)


def linker_built(ctx: Context, written: dict[str, Event], builds: Builds | None = None) -> set[str]:
    """Files of *written* whose last writer was the system linker building from what the
    toolchain produced (:mod:`sandbox.judge.rules.linked`)."""
    if not written:
        return set()  # the index over every read of the run is not needed
    b = builds or _builds(ctx)
    return {path for path, w in written.items() if b.linked(path, w)}


def rule_spawn(ctx: Context) -> list[Finding]:
    interps = interpreters(in_order(ctx.obs.events))  # no key tuple per event of a big run
    hits = []
    for e in ctx.events:
        if e.kind is not EventKind.EXEC or ctx.is_allowed(e):
            continue
        name = exec_name(e, interps)
        if name in SHELLS or name in DOWNLOADERS:
            # PATH search makes one failed execve per directory: keep the successful
            # one, or the last attempt when none succeeded.
            hits.append(e)
    if not hits:
        return []
    hits = [e for e in hits if e.errno is None] or hits
    built = _built(ctx)
    built_names = _names(built)
    shells = _ShellExecs(ctx)
    out = []
    for phase, evs in per_phase(hits).items():
        uniq = dedupe(evs, lambda e: (e.pid, e.argv))
        probes = [
            e
            for e in uniq
            if exec_name(e, interps) in SHELLS
            and shell_probe_only(e.argv, built_names)
            and shells.runs_only(e, built)
        ]
        real = [e for e in uniq if e not in probes]
        if real:
            names = sorted({exec_name(e, interps) for e in real})
            out.append(
                make_finding("PS003", phase, f"spawned {', '.join(names)}", [ctx.evidence(e) for e in real])
            )
        if probes:
            out.append(
                make_finding(
                    "PS003",
                    phase,
                    "spawned a shell for read-only system probes or programs it linked only",
                    [ctx.evidence(e) for e in probes],
                    Severity.LOW,
                )
            )
    return out


def _built(ctx: Context) -> set[str]:
    """The linker's outputs of this run (paths)."""
    return linker_built(ctx, last_writes(ctx.events))


def _names(paths: set[str]) -> frozenset[str]:
    """How a shell command line names the linker's outputs (``./a.out``, ``a.out``, the path)."""
    return frozenset(n for p in paths for n in (posixpath.basename(p), p))


class _ShellExecs:
    """The execs of each process and its children, per phase (built once per rule run)."""

    def __init__(self, ctx: Context) -> None:
        self.execs: dict[tuple[Phase, int], list[Event]] = {}
        self.kids: dict[tuple[Phase, int], set[int]] = {}
        for p in ctx.procs.values():
            if p.ppid is not None:
                self.kids.setdefault((p.phase, p.ppid), set()).add(p.pid)
        for e in ctx.events:
            if e.kind is EventKind.EXEC and e.errno is None:
                self.execs.setdefault((e.phase, e.pid), []).append(e)
            elif e.kind is EventKind.SPAWN and e.target:
                # a fork the process table missed is still in the parent's spawn events
                self.kids.setdefault((e.phase, e.pid), set()).add(e.target)

    def runs_only(self, shell: Event, built: set[str]) -> bool:
        """Whether every program the *shell* really ran (its own later execs and its
        children's) is a probe command or one of the linker's outputs: the command line
        names a program, the exec shows which file that was."""
        ran = [e for e in self.execs.get((shell.phase, shell.pid), []) if e.seq > shell.seq]
        for kid in self.kids.get((shell.phase, shell.pid), set()):
            ran += self.execs.get((shell.phase, kid), [])
        for e in ran:
            image = e.path2 or e.path or ""
            if image not in built and not is_probe(posixpath.basename(image)):
                return False
        return True


# The dynamic loader run as a program (``ld-linux-x86-64.so.2 ./payload``): it maps and
# runs a file that needs neither an exec bit nor an execve of its own.
_LOADER = re.compile(
    r"^(?:ld-linux[\w.-]*\.so(?:\.\d+)*|ld(?:64)?\.so(?:\.\d+)*|ld-musl-[\w.-]+\.so(?:\.\d+)*)$"
)


def _loaded_program(ctx: Context, e: Event, written: dict[str, Event]) -> str | None:
    """The written file a dynamic-loader exec was given on its command line to run, if
    any (``--list``/``--verify`` and ``ldd``'s own calls only list its libraries)."""
    if not _LOADER.match(posixpath.basename(e.path2 or e.path or "")):
        return None
    argv = e.argv or ()
    proc = ctx.procs.get((e.phase, e.pid))
    parent = ctx.procs.get((e.phase, proc.ppid)) if proc and proc.ppid is not None else None
    if {"--list", "--verify"} & set(argv) or (parent and posixpath.basename(parent.exe) == "ldd"):
        return None
    for arg in argv[1:]:
        if arg.startswith("-"):
            continue
        if arg in written:
            return arg
        rel = "/" + posixpath.normpath(arg).lstrip("/")
        match = next((p for p in written if p.endswith(rel)), None)
        if match:
            return match
    return None


def rule_exec_written(ctx: Context) -> list[Finding]:
    written = Written()  # as of each exec: a later write does not count
    hits: list[tuple[Event, Event]] = []
    for e in in_order(ctx.events):
        # a refused exec counts too: the sinkhole serves empty bodies, so a dropped
        # second stage fails with ENOEXEC, and trying to run it is the act
        if e.kind is EventKind.EXEC and e.path and e.path in written and e.errno != "ENOENT":
            hits.append((e, written[e.path]))
        elif e.kind is EventKind.EXEC and e.errno is None and (run := _loaded_program(ctx, e, written)):
            # the dynamic loader runs the file it is given: the same as exec'ing it
            hits.append((e.model_copy(update={"path": run}), written[run]))
        else:
            written.record(e)
    builds = _builds(ctx) if hits else None
    built = {(e.phase, e.seq) for e, w in hits if linker_built(ctx, {e.path or "": w}, builds)}
    out = []
    for linked in (False, True):
        chosen = [e for e, _ in hits if ((e.phase, e.seq) in built) is linked]
        for phase, evs in per_phase(chosen).items():
            evid = []
            for e in evs:
                w = written.get(e.path or "")
                evid.append(ctx.evidence(e, detail=f"written by pid {w.pid} in {w.phase.value}" if w else ""))
            paths = ", ".join(sorted({e.path or "" for e in evs}))
            if all(e.errno for e in evs):
                paths += f" (refused: {', '.join(sorted({e.errno or '' for e in evs}))})"
            if linked:
                out.append(
                    make_finding(
                        "PS004",
                        phase,
                        f"ran program(s) it built with the system linker: {paths} (judged by what they do)",
                        evid,
                        Severity.LOW,
                    )
                )
            else:
                out.append(make_finding("PS004", phase, f"executed file(s) it wrote: {paths}", evid))
    return out


_FD_EXEC = re.compile(r"^(?:/proc/(?:self|thread-self|\d+)/fd/\d+|/dev/fd/\d+|/memfd:.*)$")


def rule_fd_exec(ctx: Context) -> list[Finding]:
    hits = [
        e
        for e in ctx.events
        if e.kind is EventKind.EXEC
        and (
            (e.path is not None and _FD_EXEC.match(e.path))
            or (e.syscall == "execveat" and "AT_EMPTY_PATH" in (e.flags or ""))
        )
    ]
    hits = [e for e in hits if e.errno is None] or hits
    out = []
    for phase, evs in per_phase(hits).items():
        uniq = dedupe(evs, lambda e: (e.pid, e.path, e.argv))
        what = sorted({f"{e.path} ({e.path2})" if e.path2 else (e.path or "?") for e in uniq})
        out.append(
            make_finding(
                "PS029",
                phase,
                f"executed through a file descriptor: {', '.join(what[:6])}",
                [ctx.evidence(e) for e in uniq],
            )
        )
    return out


def _judged_span(window: float) -> float:
    """The part of the window a survivor's CPU is measured over (the agent's settle)."""
    return window - min(CPU_SETTLE_SECONDS, window / 2)


def rule_lingering(ctx: Context) -> list[Finding]:
    out = []
    for pr in ctx.obs.phases:
        active = [lg for lg in pr.lingering if lg.active]
        if not active:
            continue  # idle worker threads of the step's own process are noted, not judged
        evid = [
            Evidence(
                phase=pr.phase,
                pid=lg.pid,
                time=0.0,
                syscall="(alive)",
                process=lg.argv[:32],
                detail=f"{lg.threads} thread(s), state {lg.status}, {lg.cpu:.2f}s CPU in the last "
                f"{_judged_span(pr.window):.1f}s of the {pr.window:.1f}s window",
            )
            for lg in active
        ]
        out.append(
            make_finding(
                "PS006", pr.phase, f"{len(active)} process(es) still running when the window closed", evid
            )
        )
    return out


# Processes of the candidate holding a pid at once (running, or exited and not yet
# reaped: a zombie keeps its pid until its parent waits for it) past which a phase is
# a fork bomb in the making; the total spawned past which it is one whatever their
# overlap. Importing a big package runs helpers one after another (ctypes.util.find_library
# runs ldconfig and gcc per lookup: a top-600 web framework's import spawned 5047, at
# most 3 alive at once), native builds run hundreds of compilers, a command may start a
# worker pool per task: none of those is many at once. A fork bomb is, and meets the
# pids limit; so is a pile of children that exit at once but are never waited for.
CONCURRENT_PROCESSES = 64
TOTAL_PROCESSES = 20000

_INF = float("inf")


def _reaps(evs: list[Event]) -> dict[int, list[tuple[float, int]]]:
    """Child pid → (time, waiter pid) of each wait that reaped it (the recorder's wait4 and
    waitid, their target set by the parser)."""
    out: dict[int, list[tuple[float, int]]] = {}
    for e in evs:
        if e.target is not None and e.syscall in ("wait4", "waitid"):
            out.setdefault(e.target, []).append((e.time, e.pid))
    return out


def _released(ctx: Context, proc: ProcessInfo, reaps: dict[int, list[tuple[float, int]]]) -> float:
    """When *proc*'s pid was free again: its parent's wait after its exit (a wait that
    blocked before the exit is timed at its start), else its parent's end (the orphan
    is reaped by the container's init), else never within the trace. Only the parent's
    wait counts: anyone else's wait on that pid fails without reaping it."""
    if proc.end is None:
        return _INF
    waits = sorted(t for t, waiter in reaps.get(proc.pid, ()) if waiter == proc.ppid)
    if waits:
        after = [t for t in waits if t >= proc.start]
        return max(proc.end, after[0]) if after else proc.end
    parent = ctx.procs.get((proc.phase, proc.ppid)) if proc.ppid is not None else None
    if parent is not None and parent.end is not None:
        return max(proc.end, parent.end)
    return _INF


def _most_alive(
    ctx: Context, phase: Phase, spawns: list[Event], reaps: dict[int, list[tuple[float, int]]]
) -> int:
    """The most of the spawned processes holding a pid at the same time (from start to
    reaping)."""
    edges: list[tuple[float, int]] = []
    for e in spawns:
        proc = ctx.procs.get((phase, e.target)) if e.target is not None else None
        start = proc.start if proc is not None else e.time
        end = _released(ctx, proc, reaps) if proc is not None else _INF
        edges += [(start, 1), (end, -1)]
    alive = most = 0
    for _, step in sorted(edges):  # an exit at the instant of a start counts first
        alive += step
        most = max(most, alive)
    return most


def rule_explosion(ctx: Context) -> list[Finding]:
    out = []
    for phase, evs in per_phase(ctx.obs.events).items():
        spawns = [
            e
            for e in evs
            if e.kind is EventKind.SPAWN
            and (e.flags or "") != "thread"
            and e.origin is Origin.CANDIDATE
            # a fork interrupted by a signal (ERESTARTNOINTR) is tried again: no process
            and e.errno is None
        ]
        limited = [
            e for e in evs if e.syscall in ("clone", "fork", "vfork", "clone3") and e.errno == "EAGAIN"
        ]
        if len(spawns) > CONCURRENT_PROCESSES:
            most = _most_alive(ctx, phase, spawns, _reaps(evs))
        else:
            most = len(spawns)
        if most > CONCURRENT_PROCESSES or len(spawns) > TOTAL_PROCESSES or len(limited) >= 5:
            sample = (limited or spawns)[:MAX_EVIDENCE]
            sev = Severity.HIGH if limited else Severity.MEDIUM
            out.append(
                make_finding(
                    "PS022",
                    phase,
                    f"{len(spawns)} processes spawned, at most {most} alive or unreaped at once, "
                    f"{len(limited)} refused by the pids limit",
                    [ctx.evidence(e) for e in sample],
                    sev,
                )
            )
    return out


BURN_SHARE = 0.3


def rule_cpu_burn(ctx: Context) -> list[Finding]:
    out = []
    for pr in ctx.obs.phases:
        # a third of the window: a miner takes all the CPU it can get, but on a loaded
        # host (or with a CPU quota) that may be well under one full core
        # measured over the window after the agent's settle, so judged against that span
        span = _judged_span(pr.window)
        burners = [lg for lg in pr.lingering if pr.window > 0 and lg.cpu >= BURN_SHARE * span]
        if burners:
            evid = [
                Evidence(
                    phase=pr.phase,
                    pid=lg.pid,
                    time=0.0,
                    syscall="(cpu)",
                    process=lg.argv[:32],
                    detail=f"{lg.cpu:.1f}s CPU during a {pr.window:.1f}s window",
                )
                for lg in burners
            ]
            out.append(make_finding("PS023", pr.phase, f"{len(burners)} survivor(s) burning CPU", evid))
    return out


def rule_self_stop(ctx: Context) -> list[Finding]:
    hits = [
        e
        for e in ctx.events
        if e.kind is EventKind.SIGNAL
        and (e.flags or "").startswith("SIGSTOP")
        and e.target is not None
        and e.target in (e.pid, 0)
    ]
    out = []
    for phase, evs in per_phase(hits).items():
        out.append(
            make_finding(
                "PS028",
                phase,
                "a process stopped itself with SIGSTOP",
                [ctx.evidence(e) for e in dedupe(evs, lambda e: e.pid)],
            )
        )
    return out
