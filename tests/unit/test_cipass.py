"""The ci pass, the pure parts: the host's trigger on the sources, the plan and its
variables, the agent's decision and setup, and what PS005 makes of the job's files."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from sandbox.agent import passes
from sandbox.judge.canary import CanaryMatcher
from sandbox.judge.cienv import CI_FILES
from sandbox.judge.honeytokens import make_honeytokens
from sandbox.judge.profiles import load_profile
from sandbox.judge.rules.persistence import PERSISTENCE_PATHS
from sandbox.judge.static import CI_COMPUTED_PREFIX, CI_PREFIX, ci_hint, write_pass_hint
from sandbox.runner.interface import RunOptions
from sandbox.runner.plan import passes_plan, run_options
from tests.fixtures.builders import Randomised, build_sdist, build_wheel, ci_gated_source


@pytest.mark.parametrize(
    "line",
    [
        'if os.environ.get("GITHUB_ACTIONS") == "true": go()',
        "tok = os.environ['ACTIONS_RUNTIME_TOKEN']",
        'url = os.getenv("ACTIONS_ID_TOKEN_REQUEST_URL")',
        "t = environ.get('GITHUB_TOKEN')",
        'if "GITLAB_CI" in os.environ: go()',
        "os.environ.get('CI_JOB_TOKEN')",
        "on = bool(os.getenv('CIRCLECI') or os.getenv('TRAVIS'))",
        'os.environ.get("JENKINS_URL")',
        "os.environ.get('BUILDKITE')",
        'os.environ.get("TF_BUILD")',
        'if os.environ.get("CI"): plain = True',
        "ci = os.environ['CI']",
        "ci = os.getenv( 'CI' )",
        'if "CI" in os.environ: go()',
    ],
)
def test_ci_hint_fires_on_ci_variables_in_the_sources(tmp_path: Path, line: str) -> None:
    r = Randomised()
    name = r.name("m")
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/util.py": f"import os\n{line}\n"})
    hint = ci_hint(whl)
    assert hint.startswith(CI_PREFIX) and f"{name}/util.py" in hint, hint


@pytest.mark.parametrize(
    "line",
    [
        '"""Runs fine on CI and locally."""',
        "CI = 3",
        'os.environ.get("CIRCLE")',
        'os.environ.get("CI_SERVER")',
        'os.environ.get("MY_GITHUB_ACTIONS_X")',
        "TRAVIS_URL = 'https://travis.invalid'",
        'home = os.environ.get("HOME", "/")',
        "os.environ['LANG'] = 'C'",
        'p = os.getenv(r"PATH")',
        'if "HOME" in os.environ: go()',
        'env = dict(os.environ, LANG="C")',
        "def app(environ, start_response): return environ[key]",  # WSGI's environ is a dict
    ],
)
def test_ci_hint_ignores_other_mentions(tmp_path: Path, line: str) -> None:
    name = Randomised().name("m")
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": f"import os\n{line}\n"})
    assert ci_hint(whl) == ""


def test_ci_hint_reads_an_sdists_setup_py_and_write_pass_hint_keeps_both_keys(tmp_path: Path) -> None:
    name = Randomised().name("s")
    setup_py = ci_gated_source("pass\n") + "from setuptools import setup\nsetup()\n"
    sdist = build_sdist(tmp_path, name, "1.0", {}, setup_py=setup_py)
    stage = tmp_path / "stage"
    stage.mkdir()
    write_pass_hint(sdist, stage, windows=False, ci=True)
    got = json.loads((stage / "static.json").read_text())
    assert got["hint"] == "" and got["ci"].startswith(CI_PREFIX) and "GITHUB_ACTIONS in" in got["ci"]
    assert ci_hint(tmp_path / "missing.whl") == ""


@pytest.mark.parametrize(
    "line",
    [
        'if os.environ.get("GITHUB_" + part) == "true": go()',
        "if os.getenv(base64.b64decode(b'R0lUSFVCX0FDVElPTlM=').decode()): go()",
        'tok = os.environ[f"ACTIONS_{kind}_TOKEN"]',
        "if any(k.startswith('GIT' + 'HUB') for k in os.environ): go()",
        "for key, value in os.environ.items(): go(key, value)",
        "names = list(os.environ.keys())",
        "raw = open('/proc/self/environ', 'rb').read()",
        "v = os.environb.get(name)",
        "from os import environ\nv = environ[name]",
    ],
)
def test_ci_hint_fires_on_environment_lookups_by_computed_names(tmp_path: Path, line: str) -> None:
    # a CI gate need not spell the variable: each of these was `""` before (the pass
    # never ran and a payload gated this way stayed dormant under the default profile)
    name = Randomised().name("m")
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/util.py": f"import base64, os\n{line}\n"})
    hint = ci_hint(whl)
    assert hint.startswith(CI_COMPUTED_PREFIX) and f"{name}/util.py" in hint, hint


def test_the_agent_knows_the_hosts_ci_prefix() -> None:
    # the agent cannot import the judge: the prefixes are spelt twice, and must agree
    assert CI_PREFIX in passes.STATIC_PREFIXES and CI_COMPUTED_PREFIX in passes.STATIC_PREFIXES


def test_should_run_the_ci_pass_on_the_hosts_hint_only(tmp_path: Path) -> None:
    static = tmp_path / "static.json"
    plan = {"passes": {"ci": {"when": "auto", "trigger": "ci"}}}
    assert passes.should_run(plan, "ci", tmp_path, static) == ""  # no promise: no wait
    plan["passes"]["ci"]["static_hint"] = True
    static.write_text(json.dumps({"hint": "static rules matched the candidate's sources (x)", "ci": ""}))
    assert passes.should_run(plan, "ci", tmp_path, static) == ""  # the Windows hint is not its
    static.write_text(json.dumps({"hint": "", "ci": f"{CI_PREFIX} (CI in m/__init__.py)"}))
    assert passes.should_run(plan, "ci", tmp_path, static).startswith(CI_PREFIX)
    plan["passes"]["ci"]["when"] = "never"
    assert passes.should_run(plan, "ci", tmp_path, static) == ""
    plan["passes"]["ci"]["when"] = "always"
    assert passes.should_run(plan, "ci", tmp_path, static) == "always run by the profile"


def test_profiles_and_plan_carry_the_ci_pass() -> None:
    assert load_profile("deep").passes.ci == "always"
    for name in ("default", "strict", "build"):
        assert load_profile(name).passes.ci == "auto", name
        assert run_options(load_profile(name)).passes["ci"] == "auto"
    tokens = make_honeytokens(random.Random(7), user="dev")
    conf = passes_plan(RunOptions(passes={"ci": "auto"}), tokens)["ci"]
    assert conf["when"] == "auto" and conf["trigger"] == "ci" and "stubs" not in conf
    assert conf["env"] == tokens.ci_env and sorted(conf["files"]) == sorted(tokens.ci_files)
    assert passes_plan(RunOptions(passes={"ci": "never"}), tokens) == {}
    assert passes_plan(RunOptions(passes={"ci": "always"}), None) == {}  # nothing to steal, nothing to prove


def test_ci_variables_look_like_a_runner_and_are_random_per_run() -> None:
    a, b = (make_honeytokens(random.Random(seed), user="dev") for seed in (1, 2))
    env = a.ci_env
    assert env["CI"] == env["GITHUB_ACTIONS"] == "true" and env["RUNNER_OS"] == "Linux"
    assert env["GITHUB_REPOSITORY"] == "dev/service" and env["GITHUB_WORKSPACE"] == "{home}/project"
    assert re.fullmatch(r"[0-9a-f]{40}", env["GITHUB_SHA"]) and env["GITHUB_REF"] == "refs/heads/main"
    assert env["GITHUB_RUN_ID"].isdigit() and env["RUNNER_TEMP"].startswith("{home}/")
    assert re.match(
        r"https://pipelines\w+\.actions\.githubusercontent\.com/", env["ACTIONS_ID_TOKEN_REQUEST_URL"]
    )
    for var, prefix in CI_FILES.items():
        assert env[var].startswith(env["RUNNER_TEMP"] + f"/_runner_file_commands/{prefix}_"), var
        assert env[var] in a.ci_files
    for var in ("ACTIONS_RUNTIME_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"):
        assert env[var].count(".") == 2 and env[var].startswith("eyJ") and env[var] != b.ci_env[var]
        assert next(c for c in a.canaries if c.name == var).value == env[var]
    assert {k for k, v in env.items() if v != b.ci_env[k]} >= {"GITHUB_RUN_ID", "GITHUB_SHA", "GITHUB_ENV"}


def test_a_runner_token_sent_anywhere_is_proven(tmp_path: Path) -> None:
    tokens = make_honeytokens(random.Random(3))
    body = b"POST /c HTTP/1.1\r\n\r\nrt=" + tokens.ci_env["ACTIONS_RUNTIME_TOKEN"].encode()
    found = CanaryMatcher(tokens.canaries).search(body)
    assert [m.canary.name for m in found] == ["ACTIONS_RUNTIME_TOKEN"]


def test_setup_makes_the_jobs_files_and_dirs_under_home(tmp_path: Path) -> None:
    tokens = make_honeytokens(random.Random(5))
    conf = passes_plan(RunOptions(passes={"ci": "auto"}), tokens)["ci"]
    passes.make_pass_dirs({"home": str(tmp_path), "passes": {"ci": conf}})
    for var in CI_FILES:
        path = Path(conf["env"][var].replace("{home}", str(tmp_path)))
        assert path.is_file() and path.stat().st_size == 0, var
    assert Path(conf["env"]["RUNNER_TEMP"].replace("{home}", str(tmp_path))).is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project", "work"]
    env = passes.pass_env({"home": "/home/dev", "passes": {"ci": conf}}, "ci", {"HOME": "/home/dev"})
    assert env["GITHUB_WORKSPACE"] == "/home/dev/project" and "PYTHONPATH" not in env


@pytest.mark.parametrize(
    ("name", "persists"),
    [
        ("set_env", True),
        ("add_path", True),
        ("set_output", False),
        ("save_state", False),
        ("step_summary", False),
    ],
)
def test_only_the_files_that_reach_later_steps_are_persistence(name: str, persists: bool) -> None:
    path = f"/home/dev/work/_temp/_runner_file_commands/{name}_0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
    assert bool(PERSISTENCE_PATHS.search(path)) is persists


def test_the_ci_pass_is_a_gitlab_job_too() -> None:
    """A payload gated on ``GITLAB_CI`` (the ci hint names it) stayed dormant in the ci
    pass, which set GitHub's variables only; it now finds GitLab's markers and a job
    token that is a canary."""
    tokens = make_honeytokens(random.Random())
    env = tokens.ci_env
    assert env["GITLAB_CI"] == "true" and env["CI_SERVER_URL"].startswith("https://")
    (token,) = [c for c in tokens.canaries if c.location == "env CI_JOB_TOKEN"]
    assert env["CI_JOB_TOKEN"] == token.value
