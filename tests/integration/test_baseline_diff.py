"""v1 (benign) → v2 (adds a .pth that reads a credential and connects out)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.cli import main
from sandbox.judge.baseline import DiffReport
from sandbox.models import Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel, exfil_source, pth_line

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")


@pytest.fixture()
def pair(tmp_path: Path) -> tuple[Path, Path, str, str, str]:
    r = Randomised()
    name, cred, host, port = r.name("lib"), r.credential(), r.address(), r.port()
    src = {f"{name}/__init__.py": "import json\nVALUE = json.dumps({'a': 1})\n", f"{name}/util.py": "X = 1\n"}
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    v1 = build_wheel(tmp_path / "v1", name, "1.82.6", src)
    v2 = build_wheel(
        tmp_path / "v2", name, "1.82.8", {**src, f"{name}_init.pth": pth_line(exfil_source(cred, host, port))}
    )
    return v1, v2, name, cred, f"{host}:{port}"


def test_diff_shows_exactly_the_additions(tmp_path: Path, pair: tuple[Path, Path, str, str, str]) -> None:
    v1, v2, name, cred, dest = pair
    out = tmp_path / "diff.json"
    code = main(["diff", str(v1), str(v2), "--format", "json", "-o", str(out), "-q"])
    d = DiffReport.model_validate(json.loads(out.read_text()))
    assert code == 1 and d.old_verdict is Verdict.CLEAN and d.new_verdict is Verdict.MALICIOUS
    ch = d.changes
    assert [k.split()[0] for k in ch["pth"].added] == [f"{name}_init.pth"]
    assert ch["pth"].removed == ()
    assert ch["endpoints"].added and all(k.endswith(dest) for k in ch["endpoints"].added)
    # a library with no command is imported again in the exercise phase (its second
    # session), where the start-up hook and the import beacon fire once more, and so
    # they do in the calls' interpreter (execute)
    assert {k.split()[0] for k in ch["endpoints"].added} == {"startup", "import", "exercise", "execute"}
    assert ch["files"].added and all(k.endswith("~/" + cred) for k in ch["files"].added), ch["files"].added
    assert ch["processes"].added == () and ch["processes"].removed == ()
    assert ch["files"].removed == () and ch["endpoints"].removed == ()
    added_rules = {k.split()[0] for k in ch["findings"].added}
    assert {"PS001", "PS002", "PS009"} <= added_rules


def test_vet_against_baseline(tmp_path: Path, pair: tuple[Path, Path, str, str, str]) -> None:
    v1, v2, *_ = pair
    base = tmp_path / "baseline.json"
    assert main(["baseline", str(v1), "-o", str(base), "-q"]) == 0
    code, report = run_cli(tmp_path, str(v1), "--baseline", str(base))
    assert report is not None and report.verdict is Verdict.CLEAN and code == 0
    assert not [f for f in report.findings if f.rule_id == "PS024"]
    code, report = run_cli(tmp_path, str(v2), "--baseline", str(base))
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1
    dev = [f for f in report.findings if f.rule_id == "PS024"]
    assert dev and any("endpoints" in f.message for f in dev)


def test_bad_baseline_file(tmp_path: Path) -> None:
    bad = tmp_path / "b.json"
    bad.write_text('{"hello": 1}')
    assert main(["vet", "six", "--baseline", str(bad), "-q"]) == 2
