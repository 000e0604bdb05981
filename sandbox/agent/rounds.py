"""Adaptive rounds, agent side: what a failed step was missing, and asking the host for it.

A step that fails on ``ModuleNotFoundError`` (setup.py, an import) or on pip's
"No matching distribution found for X" names what it lacked; a module that failed so
also has its other imports read (parsed, never run), so that what it will lack next
comes in the same round. The agent asks the
host (a ``need`` message on the exec stream); the host fetches wheels only,
executing nothing, and drops them into the read-only staging mount, then writes
``/stage/rounds/N.json`` with what to install. The agent installs that (a harness
pip step, traced) and re-runs the step in the same container.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

# "ModuleNotFoundError: No module named 'websocket'", "ImportError: No module named win32api"
_NO_MODULE = re.compile(r"(?:ModuleNotFoundError|ImportError): No module named '?([A-Za-z_][\w.]*)'?")
# pip: "ERROR: No matching distribution found for requests==2.31.0"
_NO_DIST = re.compile(
    r"ERROR: (?:No matching distribution found for|Could not find a version that satisfies the requirement)"
    r" ([^\s(]+)"
)
MAX_NEEDS = 8
_SHARED: Rounds | None = None


def needs_from_output(text: str) -> tuple[list[str], list[str]]:
    """(missing top-level modules, missing requirements) named by a step's output, in order."""
    modules: list[str] = []
    reqs: list[str] = []
    for m in _NO_MODULE.finditer(text):
        top = m.group(1).split(".")[0]
        if top not in modules:
            modules.append(top)
    for m in _NO_DIST.finditer(text):
        req = m.group(1).strip().rstrip(",;")
        if req not in reqs:
            reqs.append(req)
    return modules[:MAX_NEEDS], reqs[:MAX_NEEDS]


def imported_tops(path: Path, limit: int = 1 << 20) -> list[str]:
    """Top-level modules a source file imports (absolute imports, anywhere in it), in
    order. Parsed, never run: the file is the candidate's."""
    try:
        tree = ast.parse(path.read_bytes()[:limit])
    except (OSError, SyntaxError, ValueError):
        return []
    names: list[str] = []
    nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    for node in sorted(nodes, key=lambda n: (n.lineno, n.col_offset)):
        if isinstance(node, ast.Import):
            found = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found = [node.module]
        else:
            continue
        for name in found:
            top = name.split(".")[0]
            if top and top not in names:
                names.append(top)
    return names


def absent(site: Path, names: list[str], own: set[str]) -> list[str]:
    """Of *names*, those neither the standard library, the candidate's own, nor installed
    in *site* (a package, a module, an extension, a namespace directory)."""
    out = []
    for name in names:
        if name in sys.stdlib_module_names or name in own or name in out:
            continue
        if (site / name).is_dir() or (site / f"{name}.py").is_file() or any(site.glob(f"{name}.*.so")):
            continue
        out.append(name)
    return out


def missing_module(detail: str) -> str | None:
    """The top-level module an import failure names (``No module named 'x.y'`` → ``x``)."""
    m = _NO_MODULE.search(detail)
    return m.group(1).split(".")[0] if m else None


class Rounds:
    """The run's round counter and budget (shared by every phase of one ``agent run``)."""

    def __init__(self, plan: dict[str, Any], stage: Path) -> None:
        conf = plan.get("rounds") or {}
        self.max = int(conf.get("max", 0))
        self.wait = float(conf.get("wait", 120))
        self.dir = stage / "rounds"
        self.used = 0
        self.asked: set[str] = set()

    def available(self) -> bool:
        return self.used < self.max

    def ask(
        self, phase: str, modules: list[str], requirements: list[str], reason: str
    ) -> dict[str, Any] | None:
        """Ask the host for what is missing; its answer (``install``, ``missing``) or None.

        Something already asked for is not asked again (the host had no answer then)."""
        modules = [m for m in modules if f"m:{m}" not in self.asked]
        requirements = [r for r in requirements if f"r:{r}" not in self.asked]
        if not (modules or requirements) or not self.available():
            return None
        self.asked.update([f"m:{m}" for m in modules] + [f"r:{r}" for r in requirements])
        self.used += 1
        number = self.used
        sys_emit(
            "need", round=number, phase=phase, modules=modules, requirements=requirements, reason=reason[:300]
        )
        path = self.dir / f"{number}.json"
        end = time.monotonic() + self.wait
        while time.monotonic() < end:
            try:
                answer: dict[str, Any] = json.loads(path.read_text())
                return answer
            except (OSError, ValueError):
                time.sleep(0.05)
        return None


def shared(plan: dict[str, Any], stage: Path) -> Rounds:
    """The run's one round counter (install, import and exercise draw on one budget)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = Rounds(plan, stage)
    return _SHARED


# pip options a round's answer may ask for (nothing else from it becomes an option)
ROUND_FLAGS = frozenset({"--no-build-isolation"})


def to_install(answer: dict[str, Any] | None) -> list[str]:
    """What a round's pip step installs: the host's names after the options it asked
    for (legacy sdists that build in the venv: ``--no-build-isolation``); [] for none."""
    names = [str(n) for n in (answer or {}).get("install") or [] if not str(n).startswith("-")]
    flags = [str(f) for f in (answer or {}).get("flags") or [] if f in ROUND_FLAGS]
    return [*flags, *names] if names else []


# -P (3.11+): the harness's pips run in the project folder, and ``-m`` puts the working
# directory first on sys.path: pip imports ``typing`` (and more) before it drops it, so a
# ``typing.py`` the candidate left there would run inside a process labelled harness.
SAFE_PATH = ["-P"] if sys.version_info >= (3, 11) else []


def harness_python(plan: dict[str, Any]) -> list[str]:
    """The venv's interpreter as the harness runs it (pip steps): cwd off sys.path."""
    return [f"{plan['venv']}/bin/python", *SAFE_PATH]


def pip_install_argv(plan: dict[str, Any], stage_artifacts: Path, names: list[str]) -> list[str]:
    """argv of a harness pip step installing staged index packages (wheels) into the venv."""
    return [
        *harness_python(plan),
        "-m",
        "pip",
        "install",
        "--no-index",
        "--find-links",
        str(stage_artifacts),
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        *names,
    ]


def sys_emit(kind: str, **fields: Any) -> None:
    """One JSON line to the host (the same channel as ``main.emit``)."""
    import sys

    sys.stdout.write(json.dumps({"type": kind, **fields}) + "\n")
    sys.stdout.flush()
