"""The exercise phase: what a user does right after installing (runs in the sandbox only).

A payload that lives in a command (``console_scripts``/``gui_scripts``), in a
package's ``__main__`` or behind ``if __name__ == "__main__":`` never runs at import.
A user runs the command, or ``python -m`` the module: so does this phase, each with
``--help`` and a short deadline, one traced step per command. A module written as a
script (it imports its sibling files as top-level modules, so importing it failed) is
run as its author ran it: ``python path/to/module.py``. A command that outlives
its deadline is a program that keeps running (a server, a prompt), not a failed look:
the step is stopped and noted, the phase stays ``ok``.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from . import rounds
from .common import OUT, RUN_DIR, STAGE, STAGE_ARTIFACTS, emit, load_plan, module_file, site_packages
from .steps import ImportRun, StepRun

MAX_SCRIPTS = 6  # commands of the candidate's entry points
MAX_MODULES = 8  # modules run as __main__
GUARD_SCAN = 1 << 20  # bytes of a module searched for a __main__ guard
_GUARD = re.compile(
    rb"""^[ \t]*if\s+\(?\s*(?:__name__\s*==\s*['"]__main__['"]|['"]__main__['"]\s*==\s*__name__)""", re.M
)
# test suites shipped inside packages: `__main__` there runs the tests, not the product;
# private modules (`_lua_builtins`): `__main__` there is a maintainer's script (pygments
# regenerates its tables from the web), which no user runs with `python -m`
_TEST_PART = re.compile(r"^(?:tests?|testing|conftest|test_\w*|\w*_tests?|_\w*)$")


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


def script_modules(site: Path, modules: list[str], failed: set[str], limit: int = MAX_MODULES) -> list[str]:
    """Modules written to run as scripts from their own folder: their import failed and
    they import a sibling file as a top-level module (``from receiver import Receiver``
    next to ``receiver.py``, nothing of that name installed) — the way their author ran
    them, ``python path/to/module.py``, is the only way they run."""
    out: list[str] = []
    for name in modules:
        if len(out) >= limit:
            break
        if name not in failed or any(_TEST_PART.match(part) for part in name.split(".")):
            continue
        path, _ = module_file(site, name)
        if path is None:
            continue
        folder = path.parent
        for top in rounds.absent(site, rounds.imported_tops(path), set()):
            if (folder / f"{top}.py").is_file() or (folder / top / "__init__.py").is_file():
                out.append(name)
                break
    return out


def _failed_imports(plan: dict[str, Any]) -> set[str]:
    """The candidate's modules whose import failed in this pass's import phase."""
    own = plan.get("_pass") or "default"
    path = OUT / ("import.result.json" if own == "default" else f"{own}.import.result.json")
    try:
        res = json.loads(path.read_text())
    except (OSError, ValueError):
        return set()
    return {str(m.get("name")) for m in res.get("modules") or [] if m.get("status") == "error"}


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
    py, driver = f"{venv}/bin/python", str(RUN_DIR / "run_main.py")
    modules = [str(m) for m in inv.get("modules") or []]
    scripts = script_modules(site, modules, _failed_imports(plan))
    for mod in scripts:
        path, _ = module_file(site, mod)
        if path is not None:
            rel = str(path.relative_to(site))
            found.append((f"python {rel} --help", f"file-{mod}", [py, str(path), "--help"]))
    left = MAX_MODULES - len(scripts)
    for mod in main_modules(site, [m for m in modules if m not in scripts], left):
        found.append((f"python -m {mod} --help", f"main-{mod}", [py, driver, mod, "--help"]))
    return found


def again_target(plan: dict[str, Any], inv: dict[str, Any]) -> tuple[str, str, list[str]] | None:
    """A library with no command: the user's next session imports it again. Code that
    acts only on a second run (a marker file left by the first import), or only on a
    terminal (``sys.stdout.isatty()``: every other step's streams are pipes), never
    showed in the import phase; this fresh interpreter, on a pty, imports the top-level
    modules that imported there (test suites left out). None when there are none."""
    failed = _failed_imports(plan)
    tops = [
        m
        for m in dict.fromkeys(str(m) for m in inv.get("modules") or [] if "." not in str(m))
        if m not in failed and not _TEST_PART.match(m)
    ][:MAX_MODULES]
    if not tops:
        return None
    label = f"import {', '.join(tops[:3])}{' …' if len(tops) > 3 else ''} again (a second session)"
    return (label, "again", [f"{plan['venv']}/bin/python", str(RUN_DIR / "import_all.py"), *tops])


def _inventory(plan: dict[str, Any]) -> dict[str, Any]:
    own = OUT / f"{plan.get('_pass') or 'default'}.inventory.json"
    path = own if own.exists() else OUT / "inventory.json"
    try:
        found: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found


def _round(
    plan: dict[str, Any],
    res: dict[str, Any],
    argv: list[str],
    inv: dict[str, Any],
    left: float,
    window: float,
) -> list[dict[str, Any]]:
    """A command that failed on a module nobody installed: a round (the host stages the
    distribution, a harness pip step installs it; with it, what else the command's
    file imports that is absent). The pip step's result, or [] when nothing came."""
    own = {str(m).split(".")[0] for m in inv.get("modules") or []}
    missing = [m for m in rounds.needs_from_output(str(res.get("output", "")))[0] if m not in own]
    rnd = rounds.shared(load_plan(), STAGE)
    if res.get("exit_code") == 0 or not missing or not rnd.available() or left <= 2:
        return []
    file: Path | None = Path(argv[1]) if argv[1].endswith(".py") and len(argv) == 3 else None
    site = Path(str(inv.get("site_packages") or "/nonexistent"))
    if argv[1:2] == [str(RUN_DIR / "run_main.py")]:
        file, _ = module_file(site, argv[2])
        if file is not None and file.name == "__init__.py" and (file.parent / "__main__.py").is_file():
            file = file.parent / "__main__.py"
    more = rounds.absent(site, rounds.imported_tops(file), own | set(missing)) if file else []
    if file is not None:  # a sibling is importable where the file runs: nothing to fetch
        more = [m for m in more if not (file.parent / f"{m}.py").is_file() and not (file.parent / m).is_dir()]
    wanted = [*missing, *(m for m in more if f"m:{m}" not in rnd.asked)][: rounds.MAX_NEEDS]
    reason = next(
        (ln.strip() for ln in reversed(str(res["output"]).splitlines()) if "No module named" in ln), ""
    )
    answer = rnd.ask("exercise", wanted, [], reason)
    names = rounds.to_install(answer)
    if not names:
        return []
    argv_pip = rounds.pip_install_argv(plan, STAGE_ARTIFACTS, names)
    return [StepRun(plan, "exercise", f"round{rnd.used}-pip", argv_pip).run(left, window).result()]


def phase_exercise(plan: dict[str, Any], timeout: float, window: float) -> dict[str, Any]:
    """Run each entry point and each ``__main__`` of the candidate with ``--help``."""
    inv = _inventory(plan)
    per_step = float(plan.get("call_timeout", 10))
    end = time.monotonic() + timeout
    steps: list[dict[str, Any]] = []
    ran: list[dict[str, Any]] = []
    problems: list[str] = []
    todo = targets(plan, inv)
    # the second session is the default pass's: an extra pass re-runs the import phase
    # itself, which already is a later session of the same machine (and each costs time)
    default = (plan.get("_pass") or "default") == "default"
    if not todo:
        again = again_target(plan, inv) if default else None
        todo = [again] if again else []
        problems.append(
            "no entry point, no __main__ module: the library imported again in a fresh interpreter"
            if again
            else "nothing to exercise: no entry point, no __main__ module"
        )
    for label, tag, argv in todo:
        attempt = 0
        t0 = time.time()  # the span holds every attempt: events are attributed to the command
        while True:
            left = end - time.monotonic()
            if left <= 1:
                ran.append({"name": label, "status": "skipped", "duration": 0, "detail": "not reached"})
                break
            emit("status", phase="exercise", msg=label[:120])
            driver = argv[1:2] == [str(RUN_DIR / "run_main.py")]
            tagged = tag + (f"-again{attempt}" if attempt else "")
            step = (
                ImportRun(plan, tagged, argv, per_step, phase="exercise")
                if tag == "again"
                else StepRun(plan, "exercise", tagged, argv, driver=driver)
            )
            step.tty = tag == "again"  # a user's own session: on a terminal
            res = step.run(min(left, per_step), window).result()
            res["context"] = label
            steps.append(res)
            timed_out = res["status"] == "timeout"
            if timed_out:
                res["status"] = "ok"
                res["problems"] = [*res.get("problems", []), f"{label}: still running, stopped"]
            settled = attempt or timed_out or tag == "again"
            more = [] if settled else _round(plan, res, argv, inv, end - time.monotonic(), window)
            if more:  # what it lacked came in a round: the command runs again
                steps.extend(more)
                attempt += 1
                continue
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
            break
    if any(r["status"] == "skipped" for r in ran):
        problems.append("exercise budget spent before every command ran")
    return {"phase": "exercise", "status": "ok", "steps": steps, "modules": ran, "problems": problems}
