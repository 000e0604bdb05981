"""The ``ci`` pass's environment: a GitHub Actions job on a Linux runner, with GitLab CI's
markers and job token beside it (pure, host side).

Payloads that want a CI job's credentials (the runtime token, the OIDC request token,
``GITHUB_TOKEN``) fire only where ``GITHUB_ACTIONS == "true"``; the sandbox otherwise
looks like a laptop. Values are random per run and shaped like a runner's; the tokens
are canaries (:mod:`sandbox.judge.canary` proves them when sent). The workflow-command
files (``GITHUB_ENV`` …) are created at setup under a runner temp dir in HOME, writable
by the candidate: a write to ``GITHUB_ENV`` or ``GITHUB_PATH`` reaches every later step
of the job (PS005, :data:`RUNNER_FILE_COMMANDS`).
"""

from __future__ import annotations

import base64
import json
import random
import string
import uuid
from collections.abc import Callable

# Where the runner keeps the step's command files (actions/runner: _runner_file_commands
# under RUNNER_TEMP); the prefixes of the files whose lines reach later steps.
RUNNER_TEMP = "{home}/work/_temp"
COMMANDS_DIR = RUNNER_TEMP + "/_runner_file_commands"
RUNNER_FILE_COMMANDS = r"/_runner_file_commands/(?:set_env|add_path)_[^/]+$"
# variable → file-name prefix (the runner's own names)
CI_FILES = {
    "GITHUB_ENV": "set_env",
    "GITHUB_PATH": "add_path",
    "GITHUB_OUTPUT": "set_output",
    "GITHUB_STATE": "save_state",
    "GITHUB_STEP_SUMMARY": "step_summary",
}
_HEX = "0123456789abcdef"
_B64URL = string.ascii_letters + string.digits + "-_"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _jwt(r: random.Random, claims: dict[str, object]) -> str:
    """A token shaped like the runner's (RS256 JWT; the signature is the random part)."""
    head = {"typ": "JWT", "alg": "RS256", "x5t": _b64url(r.randbytes(20))}
    sig = "".join(r.choice(_B64URL) for _ in range(342))
    return f"{_b64url(json.dumps(head).encode())}.{_b64url(json.dumps(claims).encode())}.{sig}"


def ci_env(
    r: random.Random, user: str, project_rel: str, canary: Callable[[str, str, str], str]
) -> tuple[dict[str, str], list[str]]:
    """The ``ci`` pass's variables (``{home}``-relative paths) and the files to create
    at setup. *canary* (name, value, location) registers a honeytoken and returns it."""
    run_id = str(r.randrange(6_000_000_000, 13_000_000_000))
    repo = f"{user}/service"  # the honey project's git remote (agent/home.py _git_checkout)
    sha = "".join(r.choice(_HEX) for _ in range(40))
    plan_id, job_id = str(uuid.UUID(int=r.getrandbits(128))), str(uuid.UUID(int=r.getrandbits(128)))
    region = r.choice(["ghubeus", "ghubwus", "ghubweu"])
    host = f"pipelines{region}{r.randrange(1, 30)}.actions.githubusercontent.com"
    hub = f"https://{host}/{''.join(r.choice(_B64URL[:62]) for _ in range(50))}/"
    now = r.randrange(1_750_000_000, 1_800_000_000)
    claims: dict[str, object] = {
        "nameid": "dddddddd-dddd-dddd-dddd-dddddddddddd",
        "scp": f"Actions.Results:{run_id}",
    }
    claims.update({"iss": "vstoken.actions.githubusercontent.com", "nbf": now, "exp": now + 21600})
    runtime = canary("ACTIONS_RUNTIME_TOKEN", _jwt(r, claims), "env ACTIONS_RUNTIME_TOKEN")
    id_req = canary(
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        _jwt(r, {**claims, "scp": "Actions.GenericRead"}),
        "env ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    )
    files = {
        var: f"{COMMANDS_DIR}/{prefix}_{uuid.UUID(int=r.getrandbits(128))}"
        for var, prefix in CI_FILES.items()
    }
    env = {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKFLOW": r.choice(["CI", "Tests", "Build", "test", "Python package"]),
        "GITHUB_JOB": r.choice(["test", "build", "tests", "lint"]),
        "GITHUB_RUN_ID": run_id,
        "GITHUB_RUN_NUMBER": str(r.randrange(40, 4000)),
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_ACTION": "__run_2",
        "GITHUB_ACTOR": user,
        "GITHUB_REPOSITORY": repo,
        "GITHUB_REPOSITORY_OWNER": user,
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_SHA": sha,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_REF_NAME": "main",
        "GITHUB_REF_TYPE": "branch",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_API_URL": "https://api.github.com",
        "GITHUB_GRAPHQL_URL": "https://api.github.com/graphql",
        "GITHUB_WORKSPACE": "{home}/" + project_rel,
        "RUNNER_OS": "Linux",
        "RUNNER_ARCH": "X64",
        "RUNNER_NAME": f"GitHub Actions {r.randrange(2, 900)}",
        "RUNNER_ENVIRONMENT": "github-hosted",
        "RUNNER_TEMP": RUNNER_TEMP,
        "RUNNER_TOOL_CACHE": "/opt/hostedtoolcache",
        "ACTIONS_RUNTIME_URL": hub,
        "ACTIONS_RUNTIME_TOKEN": runtime,
        "ACTIONS_CACHE_URL": hub.replace("pipelines", "artifactcache", 1),
        "ACTIONS_ID_TOKEN_REQUEST_URL": (
            f"https://{host}/{plan_id[:8]}/00000000-0000-0000-0000-000000000000/_apis/distributedtask/hubs/"
            f"Actions/plans/{plan_id}/jobs/{job_id}/idtoken?api-version=2.0"
        ),
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": id_req,
        **files,
        **_gitlab(run_id, repo, sha, canary),
    }
    return env, sorted(files.values())


def _gitlab(run_id: str, repo: str, sha: str, canary: Callable[[str, str, str], str]) -> dict[str, str]:
    """GitLab CI's markers and job token beside the GitHub job's: a payload gated on
    ``GITLAB_CI`` (the ci hint names it) wakes in the same pass and takes a canary. Drawn
    from the run id, not from the run's generator: a seeded set's other values stay."""
    g = random.Random(run_id)
    token = canary(
        "CI_JOB_TOKEN", "glcbt-64_" + "".join(g.choice(_B64URL) for _ in range(20)), "env CI_JOB_TOKEN"
    )
    return {
        "GITLAB_CI": "true",
        "CI_SERVER_URL": "https://gitlab.com",
        "CI_PROJECT_PATH": repo,
        "CI_PIPELINE_ID": str(g.randrange(1_000_000_000, 2_000_000_000)),
        "CI_JOB_ID": str(g.randrange(8_000_000_000, 12_000_000_000)),
        "CI_COMMIT_SHA": sha,
        "CI_JOB_TOKEN": token,
    }
