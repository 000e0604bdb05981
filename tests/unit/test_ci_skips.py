"""A skipped test fails the session under CI (issue 11, M6), and only under CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SKIPPING = """
import pytest

def test_skips_inside():
    pytest.skip("no root here")

@pytest.mark.skipif(True, reason="marker")
def test_skipped_by_marker():
    pass

def test_passes():
    assert True
"""


def _run(tmp_path: Path, ci: str | None, body: str = SKIPPING) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(body)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.ci_skips",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_skip_fails_the_session_in_ci(tmp_path: Path, ci: str) -> None:
    proc = _run(tmp_path, ci)
    assert proc.returncode == 1, proc.stdout
    assert "a skip is a failure in CI" in proc.stdout
    assert "1 passed" in proc.stdout


@pytest.mark.parametrize("ci", [None, "false", "0"])
def test_a_skip_is_a_skip_outside_ci(tmp_path: Path, ci: str | None) -> None:
    proc = _run(tmp_path, ci)
    assert proc.returncode == 0, proc.stdout
    assert "2 skipped" in proc.stdout


def test_a_module_skipped_at_collection_fails_in_ci(tmp_path: Path) -> None:
    body = 'import pytest\npytest.skip("module", allow_module_level=True)\n'
    assert _run(tmp_path, "true", body).returncode not in (0, 5)  # a collection error
    assert _run(tmp_path, None, body).returncode == 5  # nothing collected, nothing ran
