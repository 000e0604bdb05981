"""Issue 11, M4: events the harness made and events the profile exempts are classified
in the report, not dropped (the README says "classified rather than dropped"); only
runtime noise is left to the per-phase summary."""

from __future__ import annotations

import time

from sandbox.agent.protocol import HOME, VENV
from sandbox.judge.profiles import load_profile
from sandbox.judge.report import judge
from sandbox.models import Event, EventKind, Observation, Origin, Phase, PhaseResult, PhaseStatus


def test_harness_and_exempted_events_stay_in_the_report_labelled() -> None:
    def ev(seq: int, origin: Origin, path: str) -> Event:
        return Event(
            phase=Phase.IMPORT, seq=seq, pid=40 + seq, time=1.0 + seq, syscall="openat",
            kind=EventKind.FILE_WRITE, origin=origin, path=path,
        )  # fmt: skip

    harness = ev(1, Origin.HARNESS, f"{VENV}/lib/python3.11/site-packages/x.dist-info/RECORD")
    exempted = ev(2, Origin.CANDIDATE, f"{HOME}/.cache/matplotlib/fontlist.json")  # allowed by ~/.cache/**
    runtime = ev(3, Origin.RUNTIME, f"{HOME}/project/__pycache__/m.cpython-311.pyc")
    obs = Observation(
        events=(harness, exempted, runtime),
        processes=(),
        phases=(PhaseResult(phase=Phase.IMPORT, status=PhaseStatus.OK, duration=1.0),),
        home=HOME,
        venv=VENV,
    )
    report = judge(
        obs, target="t", started=time.time(), image=None, staged=None, profile=load_profile("default")
    )
    assert [(e.seq, e.origin) for e in report.events] == [(1, Origin.HARNESS), (2, Origin.CANDIDATE)]
    assert not report.findings  # exempted: no finding, but still shown
    assert report.summary[0].by_origin.get("runtime") == 1
