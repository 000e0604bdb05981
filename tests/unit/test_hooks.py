"""Candidate-planted code loaded by a harness process is the candidate's (issue 11 M3).

Failed on main with: a build backend (candidate) writes ``evil.pth`` into the venv; pip's
build-env installer (harness by lineage) starts, runs the .pth, reads ~/.ssh/id_rsa and
connects out — all labelled harness, so no rule saw it.
"""

from __future__ import annotations

import random

from sandbox.agent.protocol import privilege_drop
from sandbox.judge.classify import classify
from sandbox.judge.hooks import untrust_hooked_harness
from sandbox.models import Address, Event, EventKind, Origin, Phase, ProcessInfo

VENV = "/home/dev/project/.venv"
SITE = f"{VENV}/lib/python3.11/site-packages"
PY = f"{VENV}/bin/python"
PIP = (PY, "-m", "pip", "install", "--no-index", "/stage/artifacts/x.tar.gz")
RUNNER = (PY, f"{SITE}/pip/__pip-runner__.py", "install", "--prefix", "/tmp/pip-build-env-x/overlay", "wheel")


def _ev(seq: int, pid: int, kind: EventKind, **kw: object) -> Event:
    return Event(phase=Phase.INSTALL, seq=seq, pid=pid, time=float(seq), syscall="x", kind=kind, **kw)  # type: ignore[arg-type]


def _scenario(pth: str, written_by_backend: bool) -> tuple[list[Event], list[ProcessInfo]]:
    """setpriv → choom → pip (harness); pip forks a build backend (candidate) that writes
    *pth*, then forks its build-env installer (harness) that reads it and acts."""
    drop = (*privilege_drop(1000, 1000), *PIP)
    e = [
        _ev(1, 10, EventKind.EXEC, path="/usr/bin/setpriv", argv=drop),
        _ev(2, 10, EventKind.EXEC, path="/usr/bin/choom", argv=drop[8:]),
        _ev(3, 10, EventKind.EXEC, path=PY, argv=PIP),
        _ev(4, 10, EventKind.FILE_READ, path=f"{SITE}/pip/__main__.py"),
        _ev(5, 10, EventKind.SPAWN, target=11),
        _ev(
            6,
            11,
            EventKind.EXEC,
            path=PY,
            argv=(
                PY,
                f"{SITE}/pip/_vendor/pyproject_hooks/_in_process/_in_process.py",
                "get_requires_for_build_wheel",
                "/tmp/x",
            ),
        ),
    ]
    if written_by_backend:
        e.append(_ev(7, 11, EventKind.FILE_WRITE, path=pth, flags="O_WRONLY|O_CREAT"))
    else:
        e.append(_ev(7, 10, EventKind.FILE_WRITE, path=pth, flags="O_WRONLY|O_CREAT"))  # pip installs it
    e += [
        _ev(8, 10, EventKind.SPAWN, target=12),
        _ev(9, 12, EventKind.EXEC, path=PY, argv=RUNNER),
        _ev(10, 12, EventKind.FILE_READ, path=pth),
        _ev(11, 12, EventKind.FILE_READ, path="/home/dev/.ssh/id_rsa"),
        _ev(12, 12, EventKind.SPAWN, target=13),
        _ev(13, 13, EventKind.CONNECT, address=Address(family="inet", host="192.0.2.9", port=443)),
    ]
    procs = [
        ProcessInfo(pid=10, ppid=None, phase=Phase.INSTALL, argv=PIP, exe=PY, start=0.0),
        ProcessInfo(pid=11, ppid=10, phase=Phase.INSTALL, argv=e[5].argv or (), exe=PY, start=0.0),
        ProcessInfo(pid=12, ppid=10, phase=Phase.INSTALL, argv=RUNNER, exe=PY, start=0.0),
        ProcessInfo(pid=13, ppid=12, phase=Phase.INSTALL, argv=RUNNER, exe=PY, start=0.0),
    ]
    return e, procs


def _run(events: list[Event], procs: list[ProcessInfo]) -> tuple[dict[int, Origin], dict[int, Origin]]:
    ev, pr = classify(events, procs, [PIP], VENV)
    ev, pr = untrust_hooked_harness(ev, pr, VENV)
    by_seq = {e.seq: e.origin for e in ev}
    return by_seq, {p.pid: p.origin for p in pr}


def test_a_harness_process_running_a_planted_pth_is_candidate_from_then_on() -> None:
    pth = f"{SITE}/{random.choice(['zz', 'aa', '_x'])}{random.randrange(10**6)}.pth"
    events, procs = _scenario(pth, written_by_backend=True)
    before, _ = _run(events, procs)
    # classified harness by lineage first: the runner is pip's own
    ev0, _ = classify(events, procs, [PIP], VENV)
    assert {e.seq: e.origin for e in ev0}[11] is Origin.HARNESS
    assert before[9] is Origin.HARNESS  # its exec, before it loaded anything planted
    assert before[10] is Origin.CANDIDATE and before[11] is Origin.CANDIDATE
    assert before[13] is Origin.CANDIDATE  # what it spawned after
    assert before[4] is Origin.HARNESS  # pip itself stays harness


def test_a_pth_installed_by_pip_itself_taints_nothing() -> None:
    events, procs = _scenario(f"{SITE}/distutils-precedence.pth", written_by_backend=False)
    origins, proc_origins = _run(events, procs)
    assert origins[10] is Origin.HARNESS and origins[11] is Origin.HARNESS
    assert proc_origins[12] is Origin.HARNESS
