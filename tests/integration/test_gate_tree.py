"""The gate vets a ``-e ./vendored`` source tree (issue 11, low item): packed on the host
without running anything, built and judged inside the sandbox. On main it was reported
not vetted and never looked at. The tree's ``setup.py`` is defanged (a TEST-NET
address, a honey credential) and only ever runs inside the sandbox."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sandbox.errors import ExitCode
from sandbox.gate import EntryStatus, make_vet_fn, plan_gate, run_gate
from sandbox.models import Verdict
from sandbox.vet import VetOptions
from tests.fixtures.builders import Randomised, exfil_source

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")


def test_a_vendored_tree_whose_build_steals_is_vetted_and_fails_the_gate(tmp_path: Path) -> None:
    r = Randomised()
    name = r.name("vend")
    tree = tmp_path / "repo" / "vendored"
    (tree / name).mkdir(parents=True)
    (tree / name / "__init__.py").write_text("X = 1\n")
    (tree / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta:__legacy__"\n'
    )
    payload = exfil_source(r.credential(), r.address(), r.port())
    (tree / "setup.py").write_text(
        payload
        + textwrap.dedent(
            f"from setuptools import setup\nsetup(name={name!r}, version='1.0', packages=[{name!r}])\n"
        )
    )
    reqs = tmp_path / "repo" / "requirements.txt"
    reqs.write_text("-e ./vendored\n")
    plan = plan_gate(reqs)
    result = run_gate(plan, vet_fn=make_vet_fn(VetOptions()), workers=1)
    (outcome,) = result.outcomes
    assert outcome.status is EntryStatus.VETTED, outcome.detail
    assert outcome.report is not None
    # setup.py alone names it (code, not read on the host): the packed file is named after the tree
    assert [(a.name, a.kind.value) for a in outcome.report.artifacts if a.role.value == "candidate"] == [
        ("vendored", "sdist")
    ]
    assert outcome.verdict is Verdict.MALICIOUS, [(f.rule_id, f.message) for f in outcome.report.findings]
    assert result.exit_code is ExitCode.FINDINGS
