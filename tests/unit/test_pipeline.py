"""The vet pipeline end to end on a :class:`~tests.fakes.FakeSandbox` (no engine):
fetch of a local wheel, the plan handed to the sandbox, observation, judging, cleanup."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.agent.protocol import STAGE_ARTIFACTS, VENV
from sandbox.errors import Interrupted
from sandbox.models import Phase, Verdict
from sandbox.runner.interface import Observer, RawRun
from sandbox.vet import VetOptions, vet
from tests.fakes import FakeSandbox, FakeSession
from tests.fixtures.builders import Randomised, build_wheel


def _wheel(tmp_path: Path) -> Path:
    name = Randomised().name("plain")
    return build_wheel(tmp_path, name, "1.0.0", {f"{name}/__init__.py": "X = 1\n"})


def test_benign_recorded_run_is_clean_and_the_plan_names_the_candidate(tmp_path: Path) -> None:
    whl = _wheel(tmp_path)
    sandbox = FakeSandbox("benign-wheel")
    report = vet(str(whl), VetOptions(), Observer(), sandbox)
    assert report.verdict is Verdict.CLEAN, (report.verdict_reason, report.findings)
    assert [p.phase for p in report.phases] == [Phase.INSTALL, Phase.STARTUP, Phase.IMPORT]
    assert report.artifacts and report.artifacts[0].filename == whl.name
    (session,) = sandbox.sessions
    assert session.closed
    (plan,) = session.plans
    assert plan["install_args"][-1] == f"{STAGE_ARTIFACTS}/{whl.name}"
    assert plan["venv"] == VENV and plan["honeytokens"] is True
    assert session.setup["sinkhole"]["enabled"] is True


def test_malicious_recorded_run_is_malicious_with_evidence(tmp_path: Path) -> None:
    report = vet(str(_wheel(tmp_path)), VetOptions(), Observer(), FakeSandbox("pth-exfil"))
    assert report.verdict is Verdict.MALICIOUS
    by_rule = {(f.rule_id, f.phase): f for f in report.findings}
    cred = by_rule[("PS001", Phase.STARTUP)]
    assert any(e.path and e.path.endswith("/.ssh/id_rsa") for e in cred.evidence)
    out = by_rule[("PS002", Phase.STARTUP)]
    assert any(e.destination == "192.0.2.44:8443" and e.pid > 0 for e in out.evidence)
    assert report.network is not None and report.network.connections


def test_interrupt_closes_the_session_and_carries_a_partial_report(tmp_path: Path) -> None:
    class Interrupting(FakeSession):
        def run_phases(  # type: ignore[override]
            self, plan: object, observer: Observer, on_need: object = None, on_result: object = None
        ) -> RawRun:
            self.finished.append(self.raw.phases[0])
            raise KeyboardInterrupt

    sandbox = FakeSandbox("benign-wheel")
    sessions: list[FakeSession] = []

    def open_(staging: Path, setup: object, options: object, observer: Observer) -> FakeSession:
        s = Interrupting(sandbox.recorded, sandbox.raw, staging, setup)  # type: ignore[arg-type]
        sessions.append(s)
        return s

    sandbox.open = open_  # type: ignore[method-assign,assignment]
    with pytest.raises(Interrupted) as info:
        vet(str(_wheel(tmp_path)), VetOptions(), Observer(), sandbox)
    partial = info.value.partial
    assert partial is not None and partial.verdict is Verdict.INCOMPLETE  # type: ignore[attr-defined]
    assert [p.phase for p in partial.phases] == [Phase.INSTALL]  # type: ignore[attr-defined]
    assert sessions[0].closed
    assert not sessions[0].staging.exists()  # the staging directory is gone too
