"""The static second opinion: GuardDog's YARA rules over sources read in memory, and
how it may (only) raise an incomplete run to suspicious."""

from __future__ import annotations

import base64
import time
from pathlib import Path

from sandbox.judge.profiles import load_profile
from sandbox.judge.report import with_static_opinion
from sandbox.judge.static import RULE_ID, scan
from sandbox.models import Report, Verdict
from tests.fixtures.builders import Randomised, build_wheel, setuptools_sdist


def _hidden_exec_sdist(tmp_path: Path) -> Path:
    r = Randomised()
    payload = base64.b64encode(f"open('/tmp/m-{r.name()}', 'w')".encode()).decode()
    body = f"import base64\nexec(base64.b64decode('{payload}'))\n"
    return setuptools_sdist(tmp_path, r.name("hid"), "1.0", r.name("mod"), "X = 1\n", setup_body=body)


def _report(verdict: Verdict, reason: str = "import phase error") -> Report:
    now = time.time()
    return Report(
        tool_version="t",
        target="x",
        started=now,
        finished=now,
        profile="default",
        image=None,
        artifacts=(),
        phases=(),
        summary=(),
        processes=(),
        events=(),
        findings=(),
        verdict=verdict,
        verdict_reason=reason,
    )


def test_decoded_exec_in_setup_py_is_found_in_memory(tmp_path: Path) -> None:
    hits = scan(_hidden_exec_sdist(tmp_path))
    assert any(
        h.rule == "threat_runtime_obfuscation_base64exec" and h.path.endswith("setup.py") for h in hits
    )


def test_plain_code_has_no_hit(tmp_path: Path) -> None:
    r = Randomised()
    whl = build_wheel(tmp_path, r.name("ok"), "1.0", {"ok/__init__.py": "def add(a, b):\n    return a + b\n"})
    assert scan(whl) == []


def test_incomplete_run_with_a_hit_becomes_suspicious_with_static_evidence(tmp_path: Path) -> None:
    report = with_static_opinion(
        _report(Verdict.INCOMPLETE), _hidden_exec_sdist(tmp_path), load_profile("default")
    )
    assert report.verdict is Verdict.SUSPICIOUS
    (finding,) = [f for f in report.findings if f.rule_id == RULE_ID]
    assert all(e.syscall == "(static)" and e.detail.startswith("static: ") for e in finding.evidence)
    assert "import phase error" in report.verdict_reason  # why it could not look stays said


def test_static_never_touches_a_run_that_looked_or_a_profile_that_disables_it(tmp_path: Path) -> None:
    sdist = _hidden_exec_sdist(tmp_path)
    clean = _report(Verdict.CLEAN, "no finding")
    assert with_static_opinion(clean, sdist, load_profile("default")) is clean
    profile = load_profile("default").model_copy(deep=True)
    profile = profile.model_copy(update={"rules": profile.rules.model_copy(update={"disabled": (RULE_ID,)})})
    incomplete = _report(Verdict.INCOMPLETE)
    assert with_static_opinion(incomplete, sdist, profile).verdict is Verdict.INCOMPLETE


def test_rules_noisy_on_benign_code_stay_silent_unless_measured(tmp_path: Path) -> None:
    from sandbox.judge.static import NOISY_ON_BENIGN

    whl = build_wheel(tmp_path, "uni", "1.0", {"uni/__init__.py": "HOST = 'p\u0430ypal'\n"})
    measured = {h.rule for h in scan(whl, all_rules=True)}
    assert measured & NOISY_ON_BENIGN, measured  # the rule exists and matches this file
    assert scan(whl) == []  # but does not speak for a run


def test_a_capped_import_gets_no_static_opinion_from_a_test_suite(tmp_path: Path) -> None:
    # sglang's wheel: its cap left 1023 deep modules out and a test helper under
    # sglang/test/ posts the hostname; the import phase never imports a test suite,
    # capped or not, so that file is no "code that never ran because of the cap"
    from sandbox.models import Phase, PhaseResult, PhaseStatus

    r = Randomised()
    name = r.name("big")
    code64 = base64.b64encode(b"X = 1").decode()
    payload = f"import base64\nexec(base64.b64decode('{code64}'))\n"
    capped = _report(Verdict.CLEAN, "no finding").model_copy(
        update={
            "phases": (
                PhaseResult(phase=Phase.IMPORT, status=PhaseStatus.OK, duration=1.0, modules_capped=9),
            )
        }
    )
    in_suite = build_wheel(
        tmp_path, name, "1.0", {f"{name}/__init__.py": "", f"{name}/test/helpers.py": payload}
    )
    assert with_static_opinion(capped, in_suite, load_profile("default")).verdict is Verdict.CLEAN
    deep = tmp_path / "deep"
    deep.mkdir()
    beyond = build_wheel(deep, name, "1.0", {f"{name}/__init__.py": "", f"{name}/zz/deep.py": payload})
    assert with_static_opinion(capped, beyond, load_profile("default")).verdict is Verdict.SUSPICIOUS
    # a run that could not look still hears the test suite's sources
    incomplete = _report(Verdict.INCOMPLETE)
    assert with_static_opinion(incomplete, in_suite, load_profile("default")).verdict is Verdict.SUSPICIOUS
