"""Pure parts of issue 10: what a failed step lacked, module → distribution, causes."""

from __future__ import annotations

import zipfile
from pathlib import Path

from sandbox.agent.phases import _WRONG_PYTHON, _dist_of, _failed_builds
from sandbox.agent.rounds import absent, imported_tops, missing_module, needs_from_output
from sandbox.fetch.modmap import distribution_for, wheel_provides
from sandbox.judge.incomplete import incomplete_reasons, last_error_line
from sandbox.models import Observation, Phase, PhaseResult, PhaseStatus, StepResult

# captured from pip 23.0.1 in the sandbox (a legacy setup.py importing requests)
PIP_SETUP_PY_FAILURE = """\
Processing /stage/artifacts/evil-1.0.tar.gz
  Preparing metadata (setup.py): started
  Preparing metadata (setup.py): finished with status 'error'
  error: subprocess-exited-with-error

  \u00d7 python setup.py egg_info did not run successfully.
  │ exit code: 1
  ╰─> [6 lines of output]
      Traceback (most recent call last):
        File "<string>", line 2, in <module>
        File "<pip-setuptools-caller>", line 34, in <module>
        File "/tmp/pip-req-build-4x1k2c/setup.py", line 2, in <module>
          import websocket.client
      ModuleNotFoundError: No module named 'websocket'
      [end of output]

  note: This error originates from a subprocess, and is likely not a problem with pip.
error: metadata-generation-failed
"""
PIP_NO_DIST = """\
Processing /stage/artifacts/lukz-3.0.0.tar.gz
  Preparing metadata (setup.py): finished with status 'done'
ERROR: Could not find a version that satisfies the requirement cryptography==40.0.2 (from lukz) \
(from versions: none)
ERROR: No matching distribution found for cryptography==40.0.2
"""


def test_needs_from_pip_output() -> None:
    assert needs_from_output(PIP_SETUP_PY_FAILURE) == (["websocket"], [])
    assert needs_from_output(PIP_NO_DIST) == ([], ["cryptography==40.0.2"])
    assert needs_from_output("ImportError: No module named win32api\n") == (["win32api"], [])
    assert needs_from_output("ImportError: cannot import name 'windll' from 'ctypes'\n") == ([], [])


def test_missing_module_of_an_import_failure() -> None:
    assert missing_module("ModuleNotFoundError: No module named 'Crypto.Cipher'") == "Crypto"
    assert missing_module("SyntaxError: invalid syntax") is None


def test_a_failing_module_names_its_other_imports(tmp_path: Path) -> None:
    """One round for every import a failing module lacks, read from its source (parsed,
    not run): stdlib, the candidate's own, relative and installed ones left out."""
    src = tmp_path / "mod.py"
    src.write_text(
        "import colorama, os, sys, json as j\n"
        "from alpha.beta import gamma\n"
        "from . import sibling\n"
        "def f():\n    import lazymod\n"
        "try:\n    import optional_x\nexcept ImportError:\n    pass\n"
        "from own_pkg import thing\nimport installed_one, installed_two, ext_mod\n"
    )
    assert imported_tops(src) == [
        "colorama", "os", "sys", "json", "alpha", "lazymod", "optional_x", "own_pkg",
        "installed_one", "installed_two", "ext_mod",
    ]  # fmt: skip
    site = tmp_path / "site"
    (site / "installed_one").mkdir(parents=True)
    (site / "installed_two.py").write_text("")
    (site / "ext_mod.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    assert absent(site, imported_tops(src), {"own_pkg", "colorama"}) == ["alpha", "lazymod", "optional_x"]
    bad = tmp_path / "bad.py"
    bad.write_text("print 'py2'\n")
    assert imported_tops(bad) == []


def test_a_requires_python_refusal_is_recognised() -> None:
    out = (
        "Processing ./x.tar.gz\n"
        "ERROR: Package 'python-template' requires a different Python: 3.11.2 not in '<3.9,>=3.8.0'\n"
    )
    m = _WRONG_PYTHON.search(out)
    assert m is not None and m.group(0).endswith("'<3.9,>=3.8.0'")
    assert _WRONG_PYTHON.search("ERROR: No matching distribution found for requests") is None


def test_dependencies_that_did_not_build_are_named() -> None:
    out = (
        "  Building wheel for PyAudio (pyproject.toml): finished with status 'error'\n"
        "  ERROR: Failed building wheel for PyAudio\n"
        "Failed to build PyAudio\n"
        "ERROR: Could not build wheels for PyAudio, which is required to install "
        "pyproject.toml-based projects\n"
    )
    assert _failed_builds(out) == {"pyaudio"}
    assert _failed_builds("ERROR: Failed building wheel for some_pkg.x\n") == {"some-pkg-x"}
    assert _failed_builds("Successfully installed six-1.16.0\n") == set()
    assert _dist_of("/stage/artifacts/PyAudio-0.2.14.tar.gz") == "pyaudio"
    assert (
        _dist_of("/stage/artifacts/opencv_python-4.9.0.80-cp37-abi3-manylinux_2_17_x86_64.whl")
        == "opencv-python"
    )


def test_module_to_distribution() -> None:
    assert distribution_for("websocket") == ("websocket-client", "known mapping")
    assert distribution_for("Crypto.Cipher")[0] == "pycryptodome"
    assert distribution_for("win32crypt")[0] is None
    assert distribution_for("urllib2")[0] is None
    assert distribution_for("requests") == ("requests", "same name")


def test_wheel_provides_reads_top_level_or_files(tmp_path: Path) -> None:
    whl = tmp_path / "websocket_client-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("websocket/__init__.py", "")
        zf.writestr("websocket_client-1.0.dist-info/top_level.txt", "websocket\n")
    assert wheel_provides(whl, "websocket")
    assert not wheel_provides(whl, "websocket_client")
    bare = tmp_path / "one-1.0-py3-none-any.whl"
    with zipfile.ZipFile(bare, "w") as zf:
        zf.writestr("one.py", "")
    assert wheel_provides(bare, "one") and not wheel_provides(bare, "two")


def test_last_error_line_prefers_the_traceback() -> None:
    assert last_error_line(PIP_SETUP_PY_FAILURE) == "ModuleNotFoundError: No module named 'websocket'"
    assert last_error_line(PIP_NO_DIST) == "ERROR: No matching distribution found for cryptography==40.0.2"
    assert last_error_line("all good\n") == ""


def _phase(
    phase: Phase, status: PhaseStatus, steps: tuple[StepResult, ...] = (), tail: str = ""
) -> PhaseResult:
    return PhaseResult(phase=phase, status=status, duration=1.0, steps=steps, output_tail=tail, exit_code=0)


def test_failed_install_names_its_cause() -> None:
    obs = Observation(
        events=(), processes=(), phases=(_phase(Phase.INSTALL, PhaseStatus.ERROR, tail=PIP_SETUP_PY_FAILURE),)
    )
    assert incomplete_reasons(obs) == [
        "install phase error: ModuleNotFoundError: No module named 'websocket'"
    ]


def test_every_module_failing_to_import_is_not_a_completed_look() -> None:
    err = "ModuleNotFoundError: No module named 'websocket'"
    steps = (
        StepResult(name="pkg", status=PhaseStatus.ERROR, duration=0.1, detail=err),
        StepResult(name="pkg.sub", status=PhaseStatus.ERROR, duration=0.1, detail=err),
    )
    obs = Observation(
        events=(),
        processes=(),
        phases=(_phase(Phase.INSTALL, PhaseStatus.OK), _phase(Phase.IMPORT, PhaseStatus.OK, steps)),
    )
    reasons = incomplete_reasons(obs)
    assert reasons == [f"import phase: every module failed to import (2): {err}"]
    ok = (*steps[:1], StepResult(name="pkg.sub", status=PhaseStatus.OK, duration=0.1))
    assert (
        incomplete_reasons(obs.model_copy(update={"phases": (_phase(Phase.IMPORT, PhaseStatus.OK, ok),)}))
        == []
    )
