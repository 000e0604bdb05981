"""Padding past the import phase's module cap: a wheel of more dummy modules than the
cap cannot push out the module its console script names, and what the cap did leave out
gets the static second opinion. On main both runs were clean, "every phase completed".
The cap is lowered with ``--max-modules`` (the default 3000 makes the same case, at
minutes a run)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from sandbox.models import Phase, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")

CAP = 40
PADDING = 60  # shallow modules, more than the cap


def _padded(tmp_path: Path, payload_path: str, payload: str, entry_points: str = "") -> tuple[Path, str]:
    r = Randomised()
    name = r.name("padded")
    files: dict[str, str | bytes] = {f"{name}/__init__.py": ""}
    files.update({f"{name}/p{i:04}.py": f"N = {i}\n" for i in range(PADDING)})
    files[f"{name}/zz/__init__.py"] = ""
    files[f"{name}/{payload_path}"] = payload
    return build_wheel(tmp_path, name, "1.0", files, entry_points=entry_points.replace("NAME", name)), name


def test_the_entry_points_module_is_imported_whatever_the_padding(tmp_path: Path) -> None:
    # the console script's module reads a credential file at import (the sandbox's bait)
    payload = "import os\nopen(os.path.expanduser('~/.aws/credentials')).read()\n"
    whl, _name = _padded(tmp_path, "zz/cli.py", payload, "[console_scripts]\ntool = NAME.zz.cli:main\n")
    code, report = run_cli(tmp_path, str(whl), "--max-modules", str(CAP))
    assert report is not None
    hits = [f for f in report.findings if f.rule_id == "PS001" and f.phase is Phase.IMPORT]
    assert hits, (report.verdict_reason, report.findings)
    assert report.verdict is Verdict.SUSPICIOUS and code == 1


def test_modules_left_out_by_the_cap_get_the_static_opinion(tmp_path: Path) -> None:
    # nothing names the deep module: the cap leaves it out, its source still speaks
    code64 = base64.b64encode(b"X = 1").decode()
    payload = f"import base64\nexec(base64.b64decode('{code64}'))\n"
    whl, name = _padded(tmp_path, "zz/deep.py", payload)
    code, report = run_cli(tmp_path, str(whl), "--max-modules", str(CAP))
    assert report is not None
    imp = next(p for p in report.phases if p.phase is Phase.IMPORT and p.pass_name == "default")
    assert imp.modules_capped > 0 and imp.named_capped == 0, imp
    static = [f for f in report.findings if f.rule_id == "PS040"]
    assert static and {e.path for e in static[0].evidence} == {f"{name}/zz/deep.py"}, report.findings
    assert report.verdict is Verdict.SUSPICIOUS and code == 1
    assert "beyond the import phase's cap never ran" in report.verdict_reason
