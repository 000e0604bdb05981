"""The exercise phase: what a user does right after installing (runs in the sandbox only).

A payload that lives in a command (``console_scripts``/``gui_scripts``), in a
package's ``__main__`` or behind ``if __name__ == "__main__":`` never runs at import.
A user runs the command, or ``python -m`` the module: so does this phase, each with
``--help`` and a short deadline, one traced step per command. A command that outlives
its deadline is a program that keeps running (a server, a prompt), not a failed look:
the step is stopped and noted, the phase stays ``ok``.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from .common import OUT, RUN_DIR, emit, module_file, site_packages
from .steps import StepRun

MAX_SCRIPTS = 6  # commands of the candidate's entry points
MAX_MODULES = 8  # modules run as __main__
GUARD_SCAN = 1 << 20  # bytes of a module searched for a __main__ guard
_GUARD = re.compile(
    rb"""^[ \t]*if\s+\(?\s*(?:__name__\s*==\s*['"]__main__['"]|['"]__main__['"]\s*==\s*__name__)""", re.M
)
# test suites shipped inside packages: `__main__` there runs the tests, not the product
_TEST_PART = re.compile(r"^(?:tests?|testing|conftest|test_\w*|\w*_tests?)$")


def entry_point_scripts(text: str) -> list[str]:
    """Names of console_scripts and gui_scripts in an entry_points.txt."""
    names, section = [], ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif "=" in line and section in ("console_scripts", "gui_scripts"):
            name = line.split("=", 1)[0].strip()
            if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
                names.append(name)
    return names


def has_main_guard(path: Path) -> bool:
    """Whether *path* has an ``if __name__ == "__main__":`` block (code run as a script)."""
    try:
        with path.open("rb") as fh:
            return _GUARD.search(fh.read(GUARD_SCAN)) is not None
    except OSError:
        return False


def main_modules(site: Path, modules: list[str], limit: int = MAX_MODULES) -> list[str]:
    """The candidate's modules a user could run with ``python -m``: packages with a
    ``__main__`` module and modules with a ``__main__`` guard, shallowest first (the
    inventory's order), test suites left out."""
    out: list[str] = []
    for name in modules:
        if len(out) >= limit:
            break
        if any(_TEST_PART.match(part) for part in name.split(".")):
            continue
        path, package = module_file(site, name)
        if path is None:
            continue
        if (package and (path.parent / "__main__.py").is_file()) or has_main_guard(path):
            out.append(name)
    return out


def targets(plan: dict[str, Any], inv: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(label, step tag, argv) of every command the phase runs, entry points first."""
    venv = plan["venv"]
    found: list[tuple[str, str, list[str]]] = []
    for name in list(dict.fromkeys(entry_point_scripts(str(inv.get("entry_points") or ""))))[:MAX_SCRIPTS]:
        tag = "script-" + re.sub(r"[^A-Za-z0-9._-]", "_", name)
        found.append((f"entry point {name} --help", tag, [f"{venv}/bin/{name}", "--help"]))
    try:
        site = Path(str(inv["site_packages"])) if inv.get("site_packages") else site_packages(Path(venv))
    except RuntimeError:
        return found
    py, driver = f"{venv}/bin/python", str(RUN_DIR / "pkgsandbox_main.py")
    for mod in main_modules(site, [str(m) for m in inv.get("modules") or []]):
        found.append((f"python -m {mod} --help", f"main-{mod}", [py, driver, mod, "--help"]))
    return found


def _inventory(plan: dict[str, Any]) -> dict[str, Any]:
    own = OUT / f"{plan.get('_pass') or 'default'}.inventory.json"
    path = own if own.exists() else OUT / "inventory.json"
    try:
        found: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found


def phase_exercise(plan: dict[str, Any], timeout: float, window: float) -> dict[str, Any]:
    """Run each entry point and each ``__main__`` of the candidate with ``--help``."""
    inv = _inventory(plan)
    per_step = float(plan.get("call_timeout", 10))
    end = time.monotonic() + timeout
    steps: list[dict[str, Any]] = []
    ran: list[dict[str, Any]] = []
    problems: list[str] = []
    todo = targets(plan, inv)
    if not todo:
        problems.append("nothing to exercise: no entry point, no __main__ module")
    for label, tag, argv in todo:
        left = end - time.monotonic()
        if left <= 1:
            ran.append({"name": label, "status": "skipped", "duration": 0, "detail": "not reached"})
            continue
        emit("status", phase="exercise", msg=label[:120])
        t0 = time.time()
        step = StepRun(plan, "exercise", tag, argv, driver=argv[1:2] == [str(RUN_DIR / "pkgsandbox_main.py")])
        res = step.run(min(left, per_step), window).result()
        res["context"] = label
        steps.append(res)
        timed_out = res["status"] == "timeout"
        ran.append(
            {
                "name": label,
                # a command still running at its deadline is a program doing its job
                "status": "ok",
                "duration": round(time.time() - t0, 3),
                "detail": f"stopped after {per_step:.0f}s" if timed_out else f"exit {res['exit_code']}",
                "t0": t0,
                "t1": time.time(),
            }
        )
        if timed_out:
            res["status"] = "ok"
            res["problems"] = [*res.get("problems", []), f"{label}: still running, stopped"]
    if any(r["status"] == "skipped" for r in ran):
        problems.append("exercise budget spent before every command ran")
    return {"phase": "exercise", "status": "ok", "steps": steps, "modules": ran, "problems": problems}
