"""Making real-world malware reach its payload (issue 10): dependency closure, adaptive
rounds, a developer machine. Defanged, randomised fixtures built here; each runs only
inside the sandbox (``pkgsandbox vet``) and connects only to TEST-NET addresses."""

from __future__ import annotations

import io
import tarfile
import textwrap
from pathlib import Path

import pytest

from sandbox.models import ArtifactRole, EventKind, Phase, PhaseStatus, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_sdist, build_wheel

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")


def beacon(host: str, port: int) -> str:
    """Connect to a TEST-NET address and send a few bytes (the sinkhole answers)."""
    return textwrap.dedent(
        f"""\
        import socket as _s
        _c = _s.socket(); _c.settimeout(2)
        try:
            _c.connect(({host!r}, {port})); _c.sendall(b"GET /b HTTP/1.1\\r\\nHost: x.invalid\\r\\n\\r\\n")
        except OSError:
            pass
        _c.close()
        """
    )


def legacy_sdist(
    out: Path, name: str, setup_top: str, *, pkg_info: str = "", root_level: bool = False
) -> Path:
    """A setup.py-only sdist (no [build-system]); *setup_top* runs before setup()."""
    setup_py = f"{setup_top}\nfrom setuptools import setup\n"
    setup_py += f"setup(name={name!r}, version='1.0', py_modules=[{name!r}])\n"
    files = {
        "setup.py": setup_py,
        f"{name}.py": "VALUE = 1\n",
        "PKG-INFO": pkg_info or f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
    }
    return sdist_of(out, name, files, root_level=root_level)


def sdist_of(out: Path, name: str, files: dict[str, str], *, root_level: bool = False) -> Path:
    """``name-1.0.tar.gz`` holding *files* (in one top folder, or at the archive root)."""
    path = out / f"{name}-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for rel, text in sorted(files.items()):
            data = text.encode()
            ti = tarfile.TarInfo(rel if root_level else f"{name}-1.0/{rel}")
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(ti, io.BytesIO(data))
    return path


def test_local_sdist_gets_its_declared_dependencies(tmp_path: Path) -> None:
    r = Randomised()
    name = r.name("deps")
    sdist = build_sdist(
        tmp_path,
        name,
        "1.0",
        {f"{name}/__init__.py": "import six\nVALUE = six.PY3\n"},
        pyproject=(
            f'[project]\nname = "{name}"\nversion = "1.0"\ndependencies = ["six"]\n'
            '[build-system]\nrequires = ["setuptools>=61", "wheel"]\n'
            'build-backend = "setuptools.build_meta"\n'
        ),
    )
    code, report = run_cli(tmp_path, str(sdist))
    assert report is not None
    deps = [a.name for a in report.artifacts if a.role is ArtifactRole.DEPENDENCY]
    assert "six" in deps, report.artifacts
    assert report.verdict is Verdict.CLEAN and code == 0, (report.verdict_reason, report.findings)
    imported = {s.name: s.status for s in report.phases[2].steps}
    assert imported.get(name) is PhaseStatus.OK, report.phases[2].steps


def test_setup_py_importing_an_undeclared_module_then_beaconing_is_malicious(tmp_path: Path) -> None:
    r = Randomised()
    name, host, port = r.name("undecl"), r.address(), r.port()
    sdist = legacy_sdist(tmp_path, name, "import six\n" + beacon(host, port))
    code, report = run_cli(tmp_path, str(sdist))
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason
    install = report.phases[0]
    assert install.status is PhaseStatus.OK, install.output_tail[-500:]
    # the developer kit: baked into the image (images/kit/), or staged when the image lacks it
    kit_staged = any(a.role is ArtifactRole.KIT and a.name == "six" for a in report.artifacts)
    assert kit_staged or any("six (from the image)" in n for n in report.notes), report.notes
    dests = {e.address.render() for e in report.events if e.kind is EventKind.CONNECT and e.address}
    assert f"{host}:{port}" in dests
    assert any(f.rule_id == "PS002" and f.phase is Phase.INSTALL for f in report.findings), report.findings


def test_import_time_undeclared_dependency_gets_a_round(tmp_path: Path) -> None:
    r = Randomised()
    name, host, port = r.name("lazy"), r.address(), r.port()
    whl = build_wheel(
        tmp_path,
        name,
        "1.0.0",
        {f"{name}/__init__.py": "import websocket\n" + beacon(host, port)},
    )
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    assert report.rounds, "no adaptive round"
    rnd = report.rounds[0]
    assert rnd.phase is Phase.IMPORT and "module websocket" in rnd.requested
    assert any("websocket" in i for i in rnd.installed), rnd
    steps = {s.name: s for s in report.phases[2].steps}
    assert steps[name].status is PhaseStatus.OK, steps[name]
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason
    assert any(a.source == "round" and a.name == "websocket-client" for a in report.artifacts)


def test_a_failing_module_gets_all_its_missing_imports_in_one_round(tmp_path: Path) -> None:
    """The module's other imports are read (parsed, not run) when it fails: what it
    lacks after the first comes in the same round, not one round each."""
    r = Randomised()
    name, host, port = r.name("greedy"), r.address(), r.port()
    src = "import os, json\nimport websocket\nfrom colorama import Fore\n" + beacon(host, port)
    whl = build_wheel(tmp_path, name, "1.0.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    assert len(report.rounds) == 1, report.rounds
    assert {"module websocket", "module colorama"} <= set(report.rounds[0].requested), report.rounds[0]
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason


def test_a_requires_python_refusal_installs_anyway(tmp_path: Path) -> None:
    """Requires-Python is a declaration: a developer on another Python forces it. (An
    sdist whose setup.py alone says so: the host's static metadata has no opinion.)"""
    r = Randomised()
    name, host, port = r.name("oldpy"), r.address(), r.port()
    setup_py = (
        "from setuptools import setup\n"
        f"setup(name={name!r}, version='1.0', py_modules=[{name!r}], python_requires='>=3.6,<3.9')\n"
    )
    sdist = build_sdist(tmp_path, name, "1.0", {f"{name}.py": beacon(host, port)}, setup_py=setup_py)
    code, report = run_cli(tmp_path, str(sdist))
    assert report is not None
    install = report.phases[0]
    assert install.status is PhaseStatus.OK, install.output_tail[-500:]
    assert any("--ignore-requires-python" in p for p in install.problems), install.problems
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason


def test_a_module_nobody_provides_is_recorded_and_the_run_is_incomplete(tmp_path: Path) -> None:
    r = Randomised()
    name = r.name("winonly")
    whl = build_wheel(tmp_path, name, "1.0.0", {f"{name}/__init__.py": "import win32crypt\n"})
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None and report.verdict is Verdict.INCOMPLETE and code == 3
    assert "No module named 'win32crypt'" in report.verdict_reason
    assert report.rounds and any("win32crypt" in m for m in report.rounds[0].missing)


def test_input_in_setup_py_gets_an_answer(tmp_path: Path) -> None:
    r = Randomised()
    name, host, port = r.name("asker"), r.address(), r.port()
    top = "answer = input('Proceed with setup? [y/N] ')\nif answer.strip().lower() == 'y':\n"
    top += textwrap.indent(beacon(host, port), "    ")
    sdist = legacy_sdist(tmp_path, name, top)
    code, report = run_cli(tmp_path, str(sdist))
    assert report is not None
    assert "EOFError" not in report.phases[0].output_tail
    assert report.phases[0].status is PhaseStatus.OK, report.phases[0].output_tail[-500:]
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason


def test_root_level_sdist_is_vetted(tmp_path: Path) -> None:
    r = Randomised()
    name = r.name("rooted")
    sdist = legacy_sdist(tmp_path, name, "", root_level=True)
    code, report = run_cli(tmp_path, str(sdist))
    assert report is not None, "a root-level sdist was refused"
    assert report.phases[0].status is PhaseStatus.OK, report.phases[0].output_tail[-500:]
    assert report.verdict is Verdict.CLEAN and code == 0, (report.verdict_reason, report.findings)
    assert any("archive root" in n for n in report.notes)


def test_unsatisfiable_dependency_installs_with_no_deps(tmp_path: Path) -> None:
    r = Randomised()
    name = r.name("needswin")
    pkg_info = (
        f"Metadata-Version: 2.2\nName: {name}\nVersion: 1.0\nRequires-Dist: six\n"
        f"Requires-Dist: {r.name('nosuchdist')}\n"
    )
    sdist = legacy_sdist(tmp_path, name, "", pkg_info=pkg_info)
    code, report = run_cli(tmp_path, str(sdist))
    assert report is not None
    assert report.phases[0].status is PhaseStatus.OK, report.phases[0].output_tail[-500:]
    assert any("--no-deps" in n for n in report.notes), report.notes
    assert any(a.name == "six" and a.role is ArtifactRole.DEPENDENCY for a in report.artifacts)
    assert report.verdict is Verdict.CLEAN and code == 0, report.verdict_reason


def test_a_failed_install_still_imports_the_unpacked_sources(tmp_path: Path) -> None:
    # Packaged in haste: setup.py names a package folder that does not exist, so pip
    # installs nothing; the payload sits in the real package, run on import.
    r = Randomised()
    name, host, port = r.name("hasty"), r.address(), r.port()
    setup_py = "from setuptools import setup\n"
    setup_py += f"setup(name={name!r}, version='1.0', packages=['{name}_missing'])\n"
    files = {
        "setup.py": setup_py,
        f"{name}/__init__.py": "import attrs\n" + beacon(host, port),
        # a declared dependency: staged, and installed for the checkout (no round needed)
        "PKG-INFO": f"Metadata-Version: 2.2\nName: {name}\nVersion: 1.0\nRequires-Dist: attrs\n",
    }
    sdist = sdist_of(tmp_path, name, files)
    code, report = run_cli(tmp_path, str(sdist))
    assert report is not None
    install, imported = report.phases[0], next(p for p in report.phases if p.phase is Phase.IMPORT)
    assert install.status is PhaseStatus.ERROR, install.output_tail[-500:]
    assert any("unpacked sdist" in p for p in imported.problems), imported.problems
    assert {s.name: s.status for s in imported.steps}.get(name) is PhaseStatus.OK, imported.steps
    assert not report.rounds, report.rounds
    assert any(f.rule_id == "PS002" and f.phase is Phase.IMPORT for f in report.findings), report.findings
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason


def test_modules_importing_their_siblings_by_bare_name_run_from_their_folder(tmp_path: Path) -> None:
    # Python 2 style: the package's modules import each other by bare name, so under
    # Python 3 every one fails; the payload sits in a sibling that imports another.
    r = Randomised()
    name, host, port = r.name("flat"), r.address(), r.port()
    helper, worker = r.name("helper"), r.name("worker")
    whl = build_wheel(
        tmp_path,
        name,
        "1.0",
        {
            f"{name}/__init__.py": f"from {worker} import VALUE\n",
            f"{name}/{worker}.py": f"import {helper}\n{beacon(host, port)}VALUE = {helper}.BASE\n",
            f"{name}/{helper}.py": "BASE = 1\n",
        },
    )
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    imported = next(p for p in report.phases if p.phase is Phase.IMPORT)
    by_name = {s.name: s.status for s in imported.steps}
    assert by_name.get(name) is PhaseStatus.ERROR, by_name
    assert f"{name}/{worker}.py" in by_name, by_name
    # the sibling was never asked of the index as a distribution
    assert not any(helper in m or worker in m for rd in report.rounds for m in rd.missing), report.rounds
    assert any(f.rule_id == "PS002" and f.phase is Phase.IMPORT for f in report.findings), report.findings
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason
