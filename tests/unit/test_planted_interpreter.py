"""A step is harness by lineage: the agent's privilege drop, then exactly the step's
argv with the venv's interpreter as image. If the candidate (a setup.py in the install
phase) replaces that interpreter (``.venv/bin/python*``) or what it starts from
(``pyvenv.cfg``), the next harness step — a round's pip, the install's retry — runs
the candidate's program under the harness label, and everything it does is unjudged.
An interpreter written in the run is not the harness's."""

from __future__ import annotations

import secrets

from sandbox.agent.protocol import SANDBOX_UID, privilege_drop
from sandbox.judge.classify import classify
from sandbox.models import Event, EventKind, Origin, Phase, ProcessInfo

HOME = "/home/dev"
VENV = f"{HOME}/project/.venv"
PY = f"{VENV}/bin/python"
MAIN = f"{VENV}/lib/python3.11/site-packages/pip/__main__.py"
INSTALL = (PY, "-m", "pip", "install", "--no-index", "--find-links", "/stage/artifacts", "cand.whl")
ROUND = (PY, "-m", "pip", "install", "--no-index", "--find-links", "/stage/artifacts", "six")


def _ev(pid: int, seq: int, kind: EventKind, **kw: object) -> Event:
    return Event(phase=Phase.INSTALL, seq=seq, pid=pid, time=float(seq), syscall="x", kind=kind, **kw)  # type: ignore[arg-type]


def _step(pid: int, seq: int, cmd: tuple[str, ...]) -> list[Event]:
    drop = tuple(privilege_drop(SANDBOX_UID, SANDBOX_UID))
    return [
        _ev(pid, seq, EventKind.EXEC, path="/usr/bin/setpriv", argv=(*drop, *cmd)),
        _ev(pid, seq + 1, EventKind.EXEC, path="/usr/bin/choom", argv=(*drop[drop.index("--") + 1 :], *cmd)),
        _ev(pid, seq + 2, EventKind.EXEC, path=cmd[0], argv=cmd),
        _ev(pid, seq + 3, EventKind.FILE_READ, path=MAIN),
    ]


def _run(planted: str) -> dict[int, set[Origin]]:
    secret = f"{HOME}/.aws/credentials"
    events = [
        *_step(100, 1, INSTALL),
        _ev(100, 5, EventKind.SPAWN, target=101),
        # the candidate's build backend (setup.py) swaps the interpreter or its config
        _ev(
            101, 6, EventKind.EXEC, path=PY, argv=(PY, "_in_process.py", "build_wheel", secrets.token_hex(3))
        ),
        _ev(101, 7, EventKind.FILE_DELETE, path=planted),
        _ev(101, 8, EventKind.FILE_WRITE, path=planted, flags="O_WRONLY|O_CREAT|O_TRUNC"),
        # the round's pip step, as the agent starts it
        *_step(200, 10, ROUND),
        _ev(200, 14, EventKind.FILE_READ, path=secret),
    ]
    procs = [
        ProcessInfo(pid=100, ppid=None, phase=Phase.INSTALL, argv=INSTALL, exe=PY, start=0.0),
        ProcessInfo(pid=101, ppid=100, phase=Phase.INSTALL, argv=(PY,), exe=PY, start=0.0),
        ProcessInfo(pid=200, ppid=None, phase=Phase.INSTALL, argv=ROUND, exe=PY, start=0.0),
    ]
    out, _ = classify(events, procs, [INSTALL, ROUND], VENV, f"{HOME}/project")
    origins: dict[int, set[Origin]] = {}
    for e in out:
        if e.kind is not EventKind.EXEC or e.path == PY:
            origins.setdefault(e.pid, set()).add(e.origin)
    return origins


def test_the_untouched_interpreter_is_the_harness() -> None:
    origins = _run(f"{HOME}/project/{secrets.token_hex(3)}.txt")
    assert origins[100] <= {Origin.HARNESS, Origin.RUNTIME} and origins[200] <= {
        Origin.HARNESS,
        Origin.RUNTIME,
    }


def test_a_step_run_by_an_interpreter_the_candidate_wrote_is_the_candidates() -> None:
    """Failed on main: the round step's credential read was labelled harness."""
    for planted in (PY, f"{VENV}/bin/python3", f"{VENV}/bin/python3.11", f"{VENV}/pyvenv.cfg"):
        origins = _run(planted)
        assert origins[200] - {Origin.RUNTIME} == {Origin.CANDIDATE}, planted
        assert Origin.HARNESS in origins[100]  # the step before the swap stays harness


def test_a_swap_in_the_default_pass_precedes_an_extra_passs_steps() -> None:
    """Events sort by phase, not pass: the Windows pass's install (a re-install) sorts
    before the default pass's import, where the swap happened."""
    swap = _ev(101, 8, EventKind.FILE_WRITE, path=PY).model_copy(update={"phase": Phase.IMPORT})
    later = [e.model_copy(update={"pass_name": "windows"}) for e in _step(200, 10, ROUND)]
    procs = [
        ProcessInfo(pid=pid, ppid=None, phase=Phase.INSTALL, argv=argv, exe=PY, start=0.0)
        for pid, argv in ((100, INSTALL), (200, ROUND))
    ]
    out, _ = classify(
        [*_step(100, 1, INSTALL), swap, *later], procs, [INSTALL, ROUND], VENV, f"{HOME}/project"
    )
    assert {e.origin for e in out if e.pid == 200 and e.kind is EventKind.FILE_READ} == {Origin.RUNTIME}
    assert Origin.HARNESS not in {e.origin for e in out if e.pid == 200 and e.path == PY}
    # without the swap the Windows pass's step is the harness's
    out, _ = classify([*_step(100, 1, INSTALL), *later], procs, [INSTALL, ROUND], VENV, f"{HOME}/project")
    assert {e.origin for e in out if e.pid == 200 and e.path == PY} == {Origin.HARNESS}
