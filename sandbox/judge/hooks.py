"""Code the candidate planted, loaded by a harness process, is the candidate's (issue 11 M3).

The venv is the candidate's to write: a build backend (candidate code, during install)
can drop a ``.pth``, a ``sitecustomize.py`` or a patched module of pip into
site-packages. A harness process that starts later in the run (pip's build-env
installer, which the classifier exempts by lineage) then runs that code at start-up,
and what it does would be labelled harness. This pass, run after
:func:`sandbox.judge.classify.classify`, takes the harness label away from the moment
a harness process opens a code file whose last write in the run was the candidate's:
that event, every later event of the process and of what it spawns are candidate.
"""

from __future__ import annotations

from collections.abc import Iterable

from sandbox.models import Event, EventKind, Origin, Phase, ProcessInfo

# What Python runs when it finds it on sys.path: start-up hooks and modules.
CODE_SUFFIXES = (".pth", ".py", ".pyc", ".so")


def _is_code(path: str | None, venv: str) -> bool:
    return bool(path) and str(path).startswith(venv + "/") and str(path).endswith(CODE_SUFFIXES)


def untrust_hooked_harness(
    events: Iterable[Event], processes: Iterable[ProcessInfo], venv: str
) -> tuple[list[Event], list[ProcessInfo]]:
    """Relabel harness events caused by candidate-written code as candidate.

    *events* in the classifier's order (phase, then sequence). Writes (and renames or
    links onto a path) by the candidate mark a code file under *venv*; a later write
    by the harness (pip installing or compiling it) clears the mark.
    """
    planted: set[str] = set()
    tainted: set[tuple[Phase, int]] = set()
    out: list[Event] = []
    for ev in events:
        key = (ev.phase, ev.pid)
        if (
            ev.origin is Origin.HARNESS
            and key not in tainted
            and ev.kind is EventKind.FILE_READ
            and ev.errno is None
            and ev.path in planted
        ):
            tainted.add(key)
        if key in tainted:
            if ev.kind is EventKind.SPAWN and ev.target is not None:
                tainted.add((ev.phase, ev.target))
            if ev.origin is Origin.HARNESS:
                ev = ev.model_copy(update={"origin": Origin.CANDIDATE})
        if ev.errno is None and ev.kind in (EventKind.FILE_WRITE, EventKind.FILE_RENAME, EventKind.FILE_LINK):
            dest = ev.path2 if ev.kind is not EventKind.FILE_WRITE else ev.path
            if dest is not None and _is_code(dest, venv):
                if ev.origin is Origin.CANDIDATE:
                    planted.add(dest)
                else:
                    planted.discard(dest)
        out.append(ev)
    procs = [
        p.model_copy(update={"origin": Origin.CANDIDATE})
        if (p.phase, p.pid) in tainted and p.origin is Origin.HARNESS
        else p
        for p in processes
    ]
    return out, procs
