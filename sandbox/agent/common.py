"""What every agent module shares: container paths, the host channel, the plan, the
candidate's environment."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from . import protocol, trust

PLAN_PATH = Path(os.environ.get("PKGSANDBOX_PLAN", protocol.PLAN_PATH))
OUT = Path(protocol.OUT)
RUN_DIR = Path(protocol.RUN_DIR)
VENV_TEMPLATE = Path(protocol.VENV_TEMPLATE)
KIT_PREFIX = Path(protocol.KIT_PREFIX)
STAGE = PLAN_PATH.parent
STAGE_ARTIFACTS = STAGE / "artifacts"
EXIT_OK, EXIT_USAGE, EXIT_FAIL = 0, 2, 3
TEST_PART = protocol.TEST_PART


def emit(kind: str, **fields: Any) -> None:
    """One JSON line to the host (our stdout is the docker exec stream, not the candidate's)."""
    sys.stdout.write(json.dumps({"type": kind, **fields}) + "\n")
    sys.stdout.flush()


def load_plan() -> dict[str, Any]:
    with PLAN_PATH.open() as fh:
        plan: dict[str, Any] = json.load(fh)
    return plan


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    if not found:
        raise RuntimeError(f"no site-packages under {venv}")
    return found[0]


def module_file(site: Path, name: str) -> tuple[Path | None, bool]:
    """The source file of module *name* under *site*, and whether it is a package."""
    base = site.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py", True
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py"), False
    return None, False


def candidate_env(plan: dict[str, Any]) -> dict[str, str]:
    """The environment a developer's shell would give the candidate."""
    venv = plan["venv"]
    env = {
        "HOME": plan["home"],
        "USER": plan["user"],
        "LOGNAME": plan["user"],
        "SHELL": "/bin/bash",
        "PATH": f"{venv}/bin:{plan['home']}/.local/bin:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "VIRTUAL_ENV": venv,
        "PWD": plan["project"],
        "HOSTNAME": plan.get("hostname", "localhost"),
    }
    env.update(trust.env_vars(trust.load_state()))
    env.update(plan.get("env", {}))
    return env
