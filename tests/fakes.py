"""Fakes built from the real seams: a :class:`FakeSandbox` that replays a recorded run.

A recorded run (``tests/data/runs/NAME/``) holds ``run.json`` — the sandbox image and
the :class:`~sandbox.runner.interface.RawRun` the Docker sandbox returned, minus its
trace directory — and the trace and capture files gzip-compressed (``*.gz``).
``python -m tests.record_run SPEC NAME`` records one with the real engine.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox.agent.protocol import Plan
from sandbox.models import ImageInfo
from sandbox.runner.interface import AgentPhase, Observer, RawRun, RunOptions, Sandbox, Session

RUNS = Path(__file__).parent / "data" / "runs"


class FakeSession(Session):
    """Replays the recorded phases into a fresh trace directory; records what it was asked."""

    def __init__(self, recorded: Path, raw: RawRun, staging: Path, setup: Plan) -> None:
        self.recorded = recorded
        self.raw = raw
        self.staging = staging
        self.setup = setup
        self.plans: list[Plan] = []
        self.finished: list[AgentPhase] = []
        self.hostname = raw.hostname
        self.closed = False

    def run_phases(
        self,
        plan: Plan,
        observer: Observer,
        on_need: Callable[[dict[str, Any]], None] | None = None,
        on_result: Callable[[AgentPhase, Path | None], None] | None = None,
    ) -> RawRun:
        self.plans.append(plan)
        out = self.staging.parent / "traces"  # where the Docker sandbox collects them too
        out.mkdir(exist_ok=True)
        for src in self.recorded.glob("*.gz"):
            (out / src.name[: -len(".gz")]).write_bytes(gzip.decompress(src.read_bytes()))
        for ap in self.raw.phases:
            observer.phase_started(ap.phase)
            self.finished.append(ap)
            observer.phase_finished(ap.phase, ap.status, ap.duration)
            if on_result is not None:
                on_result(ap, None)  # a replay: no live host-side trace
        return self.raw.model_copy(update={"trace_dir": str(out)})

    def keep(self) -> str:
        return ""

    def close(self) -> None:
        self.closed = True


class FakeSandbox(Sandbox):
    """A sandbox that runs nothing: each session replays the recorded run *name*."""

    def __init__(self, name: str) -> None:
        self.recorded = RUNS / name
        data = json.loads((self.recorded / "run.json").read_text())
        self.image = ImageInfo.model_validate(data["image"])
        self.raw = RawRun.model_validate({**data["raw"], "trace_dir": ""})
        self.sessions: list[FakeSession] = []
        self.opened: list[RunOptions] = []  # the options of each open, in order

    def open(self, staging: Path, setup: Plan, options: RunOptions, observer: Observer) -> FakeSession:
        self.opened.append(options)
        session = FakeSession(self.recorded, self.raw, staging, setup)
        self.sessions.append(session)
        return session
