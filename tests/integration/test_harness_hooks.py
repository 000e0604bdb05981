"""Start-up hooks inside the harness's own pip runs are the candidate's (issue 11 M3).

The start-up phase runs ``python -m pip --version`` to see hooks fire in a pip process;
a ``.pth`` that acts only there (it checks its own command line) must be judged, not
filed under the harness.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.models import Origin, Phase, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel, exfil_source, pth_line

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")


def test_a_pth_that_fires_only_inside_pip_is_judged(tmp_path: Path) -> None:
    r = Randomised()
    name, cred, host, port = r.name("piphook"), r.credential(), r.address(), r.port()
    only_in_pip = (
        "import os\n"
        "if b'pip' in open('/proc/self/cmdline', 'rb').read().split(b'\\0')[1:3]:\n"
        + "".join("    " + line + "\n" for line in exfil_source(cred, host, port).splitlines())
    )
    whl = build_wheel(
        tmp_path,
        name,
        "1.0",
        {f"{name}/__init__.py": "X = 1\n", f"{name}-{r.rng.randrange(100)}.pth": pth_line(only_in_pip)},
    )
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    cred_reads = [
        e
        for f in report.findings
        if f.rule_id == "PS001" and f.phase is Phase.STARTUP
        for e in f.evidence
        if e.path and e.path.endswith("/" + cred)
    ]
    assert cred_reads, [(f.rule_id, f.phase.value, f.message) for f in report.findings]
    assert all(any("pip" in a for a in e.process) for e in cred_reads), cred_reads
    assert not any(
        ev.origin is Origin.HARNESS and ev.path and ev.path.endswith("/" + cred) for ev in report.events
    )
    assert report.verdict is Verdict.MALICIOUS and code == 1
