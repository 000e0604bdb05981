"""The execute phase (deep profile): payloads that fire only from a console script or a
function call are found, attributed to the entry point or the function."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.models import Phase, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel, payload_fn

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")


def test_console_script_payload_found_in_execute_phase(tmp_path: Path) -> None:
    r = Randomised()
    name, script, host, port = r.name("tool"), r.name("run-"), r.address(), r.port()
    whl = build_wheel(
        tmp_path,
        name,
        "1.0",
        {
            f"{name}/__init__.py": "VERSION = '1.0'\n",
            f"{name}/cli.py": payload_fn("main", r.credential(), host, port),
        },
        entry_points=f"[console_scripts]\n{script} = {name}.cli:main\n",
    )
    code, report = run_cli(tmp_path, str(whl), "--profile", "deep", "--window", "1")
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1
    # the default pass ends with execute (the deep profile's extra passes follow it)
    assert [p.phase for p in report.phases if p.pass_name == "default"][-1] is Phase.EXECUTE
    # nothing fired before the commands ran: --help in exercise, --version in execute (the
    # default pass; a flow the sinkhole closes after the next pass began is tagged with it)
    net = [f for f in report.findings if f.rule_id in ("PS001", "PS002") and f.pass_name == "default"]
    assert all(f.phase in (Phase.EXERCISE, Phase.EXECUTE) for f in net), [(f.rule_id, f.phase) for f in net]
    contexts = {(f.phase, e.context) for f in net if f.rule_id == "PS002" for e in f.evidence}
    assert (Phase.EXERCISE, f"entry point {script} --help") in contexts, contexts
    assert (Phase.EXECUTE, f"entry point {script} --version") in contexts, contexts
    assert any(e.destination == f"{host}:{port}" for f in net for e in f.evidence)


def test_function_payload_found_with_the_function_named(tmp_path: Path) -> None:
    r = Randomised()
    name, fn, host, port = r.name("api"), f"fetch_{r.name('cfg')}", r.address(), r.port()
    whl = build_wheel(
        tmp_path,
        name,
        "1.0",
        {
            f"{name}/__init__.py": "",
            f"{name}/client.py": "import json\n\n"
            + payload_fn(fn, r.credential(), host, port, "url, timeout=3"),
        },
    )
    code, report = run_cli(tmp_path, str(whl), "--profile", "deep", "--window", "1")
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1
    f = next(f for f in report.findings if f.rule_id == "PS002" and f.phase is Phase.EXECUTE)
    assert any(e.context == f"call {name}.client.{fn}" for e in f.evidence), [e.context for e in f.evidence]
    ex = next(p for p in report.phases if p.phase is Phase.EXECUTE)
    assert any(s.name == f"{name}.client.{fn}" for s in ex.steps)
    assert not any(f.phase is Phase.IMPORT for f in report.findings if f.rule_id == "PS002")
