"""The import phase's module cap in the verdict: a cut into the top-level or
entry-point modules is not a full look (incomplete); a cut of the deepest modules
only is said in a clean verdict, and the static second opinion reads what never ran.
On main the judge ignored the cap: "every phase completed with a full trace"."""

from __future__ import annotations

import time
from pathlib import Path

from sandbox.judge.profiles import load_profile
from sandbox.judge.report import judge, with_static_opinion
from sandbox.judge.rules import incomplete_reasons
from sandbox.judge.static import RULE_ID
from sandbox.models import Inventory, Observation, Phase, PhaseResult, PhaseStatus, Verdict
from tests.fixtures.builders import Randomised, build_wheel


def _obs(capped: int, named: int, modules: tuple[str, ...] = ()) -> Observation:
    phases = tuple(
        PhaseResult(phase=p, status=PhaseStatus.OK, duration=1.0)
        if p is not Phase.IMPORT
        else PhaseResult(
            phase=p, status=PhaseStatus.OK, duration=1.0, modules_capped=capped, named_capped=named
        )
        for p in Phase
    )
    inv = Inventory(modules=modules, modules_capped=capped)
    return Observation(events=(), processes=(), phases=phases, inventory=inv)


def _judge(o: Observation, target: str = "x") -> tuple[Verdict, str]:
    report = judge(
        o, target=target, started=time.time(), image=None, staged=None, profile=load_profile("default")
    )
    return report.verdict, report.verdict_reason


def test_a_cap_that_cut_top_level_or_entry_point_modules_is_incomplete() -> None:
    reasons = incomplete_reasons(_obs(capped=7000, named=2))
    assert reasons == [
        "import phase: the module cap left out 2 top-level or entry-point module(s) "
        "(7000 module(s) not imported)"
    ]
    verdict, reason = _judge(_obs(capped=7000, named=2))
    assert verdict is Verdict.INCOMPLETE and "module cap" in reason


def test_a_cap_of_the_deepest_modules_only_is_said_in_a_clean_verdict() -> None:
    assert incomplete_reasons(_obs(capped=45, named=0)) == []
    verdict, reason = _judge(_obs(capped=45, named=0))
    assert verdict is Verdict.CLEAN and "left 45 of the deepest module(s) unimported" in reason
    verdict, reason = _judge(_obs(capped=0, named=0))
    assert verdict is Verdict.CLEAN and reason.endswith("every phase completed with a full trace")


def _padded(tmp_path: Path, payload_in: str) -> tuple[Path, str]:
    r = Randomised()
    name = r.name("pad")
    # a rule the capped opinion hears but that does not speak alone for a clean run (a
    # module that ran and decodes-then-execs is suspicious anyway: test_static.py)
    payload = f"CHANNEL = '{r.name()}'  # telegram.sendMessage\n"
    files = {f"{name}/__init__.py": "", f"{name}/a.py": "X = 1\n", f"{name}/z/deep.py": "Y = 2\n"}
    files[f"{name}/{payload_in}"] = payload
    return build_wheel(tmp_path, name, "1.0", files), name


def test_the_static_opinion_reads_the_modules_the_cap_left_out(tmp_path: Path) -> None:
    whl, name = _padded(tmp_path, "z/deep.py")
    o = _obs(capped=1, named=0, modules=(name, f"{name}.a"))
    report = judge(
        o, target=str(whl), started=time.time(), image=None, staged=None, profile=load_profile("default")
    )
    assert report.verdict is Verdict.CLEAN
    judged = with_static_opinion(report, whl, load_profile("default"))
    assert judged.verdict is Verdict.SUSPICIOUS, judged.verdict_reason
    (finding,) = [f for f in judged.findings if f.rule_id == RULE_ID]
    assert {e.path for e in finding.evidence} == {f"{name}/z/deep.py"}
    assert "1 module(s) beyond the import phase's cap never ran" in judged.verdict_reason


def test_the_static_opinion_leaves_alone_a_module_that_ran_or_a_run_without_a_cap(tmp_path: Path) -> None:
    # the same pattern in a module the import phase imported: judged by what it did
    whl, name = _padded(tmp_path, "a.py")
    o = _obs(capped=1, named=0, modules=(name, f"{name}.a"))
    report = judge(
        o, target=str(whl), started=time.time(), image=None, staged=None, profile=load_profile("default")
    )
    judged = with_static_opinion(report, whl, load_profile("default"))
    assert judged.verdict is Verdict.CLEAN and not judged.findings
    assert any(n.startswith("static second opinion: no rule matched") for n in judged.notes)
    (tmp_path / "b").mkdir()
    whl, name = _padded(tmp_path / "b", "z/deep.py")
    uncapped = judge(
        _obs(capped=0, named=0, modules=(name, f"{name}.a", f"{name}.z.deep")),
        target=str(whl),
        started=time.time(),
        image=None,
        staged=None,
        profile=load_profile("default"),
    )
    assert with_static_opinion(uncapped, whl, load_profile("default")) is uncapped
