"""A setup.py that acts only on the command a developer types (``python setup.py
install``): pip builds a wheel and never passes ``install``, so the install phase also
runs ``setup.py install`` for such an sdist, under the same recorder. Defanged,
randomised fixtures built here; each runs only inside the sandbox and connects only to
TEST-NET addresses."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import pytest

from sandbox.models import Phase, Report, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_sdist, exfil_source

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")

# the shapes real releases gate their payload with (argv as `python setup.py install` sets it)
GATES = (
    "if 'install' in sys.argv:",
    'if sys.argv[-1] == "install":',
    "if len(sys.argv) > 1 and sys.argv[1] == 'install':",
)


def _gated_setup(name: str, body: str) -> str:
    gate = random.choice(GATES)
    return (
        "import sys\nfrom setuptools import setup\n"
        f"{gate}\n{textwrap.indent(body, '    ')}\n"
        f"setup(name={name!r}, version='1.0', py_modules=[{name!r}])\n"
    )


def test_an_argv_gated_setup_py_payload_fires_under_setup_py_install(tmp_path: Path) -> None:
    r = Randomised()
    name, host, port = r.name("gated"), r.address(), r.port()
    setup_py = _gated_setup(name, exfil_source(r.credential(), host, port))
    sdist = build_sdist(tmp_path, name, "1.0", {f"{name}.py": "VALUE = 1\n"}, setup_py=setup_py)
    code, report = run_cli(tmp_path, str(sdist), "--window", "1")
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason
    net = [f for f in report.findings if f.rule_id == "PS002"]
    assert net and all(f.phase is Phase.INSTALL for f in net), [(f.rule_id, f.phase) for f in net]
    assert any(e.destination == f"{host}:{port}" for f in net for e in f.evidence)
    install = next(p for p in report.phases if p.phase is Phase.INSTALL and p.pass_name == "default")
    assert any(s.name.endswith("setup-install") for s in install.steps), [s.name for s in install.steps]


def test_a_setup_py_that_only_talks_on_install_stays_clean(tmp_path: Path) -> None:
    """The legacy install of a well-behaved sdist (writes its files, prints) is no finding."""
    r = Randomised()
    name = r.name("polite")
    setup_py = _gated_setup(name, "print('thank you for installing')")
    sdist = build_sdist(tmp_path, name, "1.0", {f"{name}.py": "VALUE = 1\n"}, setup_py=setup_py)
    code, report = run_cli(tmp_path, str(sdist), "--window", "1")
    assert report is not None
    install = next(p for p in report.phases if p.phase is Phase.INSTALL and p.pass_name == "default")
    assert any(s.name.endswith("setup-install") for s in install.steps), [s.name for s in install.steps]
    assert report.verdict is Verdict.CLEAN and code == 0, [(f.rule_id, f.title) for f in report.findings]


def test_a_beacon_in_a_hyphenated_top_level_package_runs_at_import(tmp_path: Path) -> None:
    """A dependency-confusion probe ships its beacon as ``<dist-name>/__init__.py``: no
    ``import`` statement names it, but importlib.import_module (plugin loaders) does."""
    r = Randomised()
    name, host, port = r.name("confused"), r.address(), r.port()
    folder = f"{name}-solver-core"
    setup_py = f"from setuptools import setup\nsetup(name={name!r}, version='1.0', packages=[{folder!r}])\n"
    files = {f"{folder}/__init__.py": exfil_source(r.credential(), host, port)}
    sdist = build_sdist(tmp_path, name, "1.0", files, setup_py=setup_py)
    code, report = run_cli(tmp_path, str(sdist), "--window", "1")
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason
    net = [f for f in report.findings if f.rule_id == "PS002" and f.phase is Phase.IMPORT]
    assert any(e.destination == f"{host}:{port}" for f in net for e in f.evidence), report.verdict_reason
    imported = next(p for p in report.phases if p.phase is Phase.IMPORT and p.pass_name == "default")
    assert folder in [s.name for s in imported.steps], [s.name for s in imported.steps]


def _vet_setup_requires(tmp_path: Path, requirement: str) -> Report:
    """A benign legacy sdist whose ``setup.py`` names *requirement* in ``setup_requires``,
    vetted: clean, nothing reaches the network (setuptools fetched nothing itself)."""
    r = Randomised()
    name = r.name("sreq")
    setup_py = (
        "from setuptools import setup\n"
        f"setup(name={name!r}, version='1.0', py_modules=[{name!r}], setup_requires=[{requirement!r}])\n"
    )
    sdist = build_sdist(tmp_path, name, "1.0", {f"{name}.py": "VALUE = 1\n"}, setup_py=setup_py)
    code, report = run_cli(tmp_path, str(sdist), "--window", "1")
    assert report is not None and report.verdict is Verdict.CLEAN and code == 0, report.verdict_reason
    assert report.network is not None and not report.network.connections and not report.network.dns
    return report


@pytest.mark.online  # the round fetches the requirement from the index
def test_a_legacy_setup_requires_is_staged_first_not_fetched_by_setuptools(tmp_path: Path) -> None:
    """``setup_requires`` built without isolation: setuptools fetched it with its own
    ``pip wheel`` from pypi.org (answered by the sinkhole), and a benign sdist was
    malicious (PS001/PS002/PS011 high). A round now stages it before the build."""
    report = _vet_setup_requires(tmp_path, "pytest-runner")
    staged = [
        a for rnd in report.rounds if "setup_requires" in rnd.reason for a in (*rnd.added, *rnd.installed)
    ]
    assert any(a.replace("_", "-").startswith("pytest-runner") for a in staged), report.rounds


@pytest.mark.online  # the round fetches the requirement from the index
def test_a_setup_requires_published_as_sdists_only_is_built_in_the_sandbox(tmp_path: Path) -> None:
    """``fernet`` (and its ``pyaes``) have sdists only: the round staged no wheel, so
    setuptools fetched it from pypi.org itself and a benign sdist was MALICIOUS. The
    round now stages the sdists as files and the sandbox builds them (their build
    backend judged as candidate code); nothing reaches the network."""
    report = _vet_setup_requires(tmp_path, "fernet")
    rnd = next(rnd for rnd in report.rounds if "setup_requires" in rnd.reason)
    assert rnd.installed == ("fernet",) and any(
        a.startswith("fernet-") and a.endswith(".tar.gz") for a in rnd.added
    )
    assert any(
        a.kind.value == "sdist" and a.name == "fernet" and a.source == "round" for a in report.artifacts
    )
