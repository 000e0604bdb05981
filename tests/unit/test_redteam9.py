"""Session 9's hostile read, pure parts. The ci pass trigger (sandbox/judge/static.py
``ci_hint``): CI gates that neither spell a listed variable nor look one up by a
computed name in ``os.environ`` directly, so the ci pass never ran and the payload
stayed dormant under the default profile (each firing line below gave ``""`` on main).
The exercise phase: a library with no command is imported again."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.agent.exercise import again_target
from sandbox.judge.static import CI_COMPUTED_PREFIX, CI_PREFIX, ci_hint
from sandbox.models import PhaseStatus, StepResult
from sandbox.report.builders import SECOND_SESSION, commands
from tests.fixtures.builders import Randomised, build_wheel


def _hint(tmp_path: Path, line: str) -> tuple[str, str]:
    name = Randomised().name("m")
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/util.py": f"import os, subprocess\n{line}\n"})
    return ci_hint(whl), f"{name}/util.py"


@pytest.mark.parametrize(
    "line",
    [
        # variables the ci pass sets, named plainly (only four of them were listed)
        'if os.environ.get("RUNNER_OS") == "Linux": go()',
        "if os.getenv('GITHUB_WORKSPACE'): go()",
        'if "GITHUB_REPOSITORY" in os.environ: go()',
        'import ctypes\nif ctypes.CDLL(None).getenv(b"RUNNER_TEMP"): go()',
        'subprocess.call(["sh", "-c", "test -n \\"${RUNNER_NAME}\\""])',
    ],
)
def test_ci_hint_names_every_variable_family_the_ci_pass_sets(tmp_path: Path, line: str) -> None:
    hint, path = _hint(tmp_path, line)
    assert hint.startswith(CI_PREFIX) and path in hint, hint


@pytest.mark.parametrize(
    "line",
    [
        # a copy or alias of os.environ looked up by a computed name
        'e = os.environ\nif e.get("GITHUB_" + part): go()',
        'env = dict(os.environ)\nif env.get("GITHUB_" + part): go()',
        'env = os.environ.copy()\nif env["GIT" + part]: go()',
        "env = dict(os.environ)\nfor k, v in env.items(): go(k, v)",
        # os's namespace read reflectively
        'if getattr(os, "environ").get("GITHUB_" + part): go()',
        'if vars(os)["env" + "iron"].get(k): go()',
        'if os.__dict__["environ"].get(k): go()',
        'if __import__("os").environ.get(k): go()',
        # the mapping walked or dumped by a function, or a computed membership test
        'if any(k.startswith("GITHUB") for k in dict(os.environ)): go()',
        'if any(map(lambda k: k.startswith("GIT" + "HUB"), os.environ)): go()',
        'if str(os.environ).count("GITHUB"): go()',
        'if "GITHUB_" + part in os.environ: go()',
        'k = "GITHUB_" + part\nif k in os.environ: go()',
        'if os.environ.__contains__("GITHUB_" + part): go()',
        # the raw environment block by an assembled path, or a program that prints it
        'raw = open("/proc/self/" + "environ").read()',
        'raw = open(os.path.join("/proc", "self", "environ")).read()',
        'out = subprocess.check_output(["printenv"])',
        "ok = subprocess.call(['sh', '-c', 'env | grep -q ^GIT''HUB_'])",
    ],
)
def test_ci_hint_fires_on_other_routes_to_the_environment(tmp_path: Path, line: str) -> None:
    hint, path = _hint(tmp_path, line)
    assert hint.startswith(CI_COMPUTED_PREFIX) and path in hint, hint


@pytest.mark.parametrize(
    "line",
    [
        # what benign code does with the environment, which must not cost a pass
        'GITHUB_URL = "https://github.com/org/x"',  # a constant, not a variable
        "env = os.environ.copy()\nenv['LANG'] = 'C'\nsubprocess.run(['true'], env=env)",
        "env = dict(os.environ)\nenv[key] = value\nsubprocess.run(['true'], env=env)",
        'env = dict(os.environ, LANG="C")',
        'flags = getattr(os, "O_BINARY", 0)',
        "if '256' in os.environ.get('TERM', ''): go()",
        'elif "NO_COLOR" in os.environ: go()',
        "raise ValueError(f'invalid line in environment file: {line}')",
        'path = "/proc/self/status"',
        "run(['env', 'LANG=C', 'ls'])",
    ],
)
def test_ci_hint_still_ignores_benign_uses_of_the_environment(tmp_path: Path, line: str) -> None:
    hint, _ = _hint(tmp_path, line)
    assert hint == "", hint


def test_a_library_with_no_command_is_imported_again_in_the_exercise_phase(tmp_path: Path) -> None:
    # code that acts only on a second run (a marker left by the first import) never
    # showed: on main the exercise phase had nothing to run for a library
    plan = {"venv": "/v", "_pass": "default"}
    inv = {"modules": ["lib", "lib.sub", "_lib_native", "tests", "other"], "entry_points": ""}
    again = again_target(plan, inv)
    assert again is not None
    label, tag, argv = again
    assert tag == "again" and label.endswith(SECOND_SESSION), label
    assert argv[0] == "/v/bin/python" and argv[1].endswith("import_all.py")
    assert argv[2:] == ["lib", "other"]  # top-level, no test suite, no private module
    assert again_target(plan, {"modules": ["tests"]}) is None
    assert commands((StepResult(name=label, status=PhaseStatus.OK, duration=0.1),)) == 0
