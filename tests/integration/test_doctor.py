"""``pkgsandbox doctor``: the effective hardening, probed from inside as the candidate user."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")


def test_doctor_security_reports_what_the_candidate_sees() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "sandbox", "doctor", "--security"], capture_output=True, text=True, timeout=120
    )
    out = p.stderr
    assert p.returncode == 0, out
    for line in (
        "capabilities CapBnd: 0000000000000000",
        "NoNewPrivs 1",
        "Seccomp mode 2",
        "pids.max 512",
        "candidate runs as uid 1000",
        "writing / allowed: False",
        "network mode none",
    ):
        assert line in out.replace("\n", " ").replace("  ", " ") or line in out, (line, out)
    assert "FAIL" not in out
