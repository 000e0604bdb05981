"""Modules that import their siblings by bare name (runs in the sandbox only).

Code written for Python 2, or run only from its own folder by its author, imports the
files next to it by bare name: ``import uac_bypass`` in ``pkg/manager.py`` for
``pkg/uac_bypass.py``, ``from pkg import init`` in ``pkg/__init__.py`` meaning the
module ``pkg/pkg.py``. Imported as a package under Python 3 every such module fails
(``No module named 'uac_bypass'``, a circular ``partially initialized module``), the
index is asked for a distribution that is really the candidate's own file, and the
payload never runs. A developer runs it the way its author did: from the folder. When
failures name a sibling, the modules of those folders are imported again by bare name
with the folders first on ``PYTHONPATH`` (a separate step, its results named by file).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from .common import RUN_DIR, TEST_PART, emit, module_file
from .steps import ImportRun

_PARTIAL = re.compile(r"partially initialized module '([A-Za-z_][\w.]*)'")
_NO_MODULE = re.compile(r"No module named '?([A-Za-z_][\w.]*)'?")
MAX_MODULES = 200
# How deep below the import root a failing module may sit for its folder to be imported
# by bare name: a Python-2-style package keeps its modules at its top (``pkg/mod.py``,
# ``pkg/sub/mod.py``); a folder deep in a vendored tree holds a tool's own scratch
# scripts (a debugger's attach experiments call gdb on a hard-coded pid), which no
# user imports or runs, and which fail as package modules for everyone.
MAX_DEPTH = 2
SKIP = frozenset({"__init__", "__main__", "setup", "conftest"})


def _sibling(folder: Path, name: str) -> bool:
    return (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file()


def _folder(site: Path, module: str) -> Path | None:
    path, _ = module_file(site, module)
    if path is None:
        return None
    return path.parent


def sibling_folders(site: Path, results: list[dict[str, Any]]) -> tuple[list[Path], set[str]]:
    """The candidate's folders whose failed modules named a sibling file, and those
    sibling names (not distributions to ask the index for)."""
    folders: list[Path] = []
    names: set[str] = set()
    for r in results:
        if r.get("status") != "error":
            continue
        detail = str(r.get("detail", ""))
        folder = _folder(site, str(r["name"]))
        if folder is None:
            continue
        m = _NO_MODULE.search(detail) or _PARTIAL.search(detail)
        if m is None:
            continue
        if any(TEST_PART.match(part) for part in str(r["name"]).split(".")[1:]):
            continue  # a test suite's helpers: not what a user imports
        if str(r["name"]).count(".") > MAX_DEPTH:
            continue
        wanted = m.group(1).split(".")[0]
        # a package's __init__ that imports its own name means pkg/pkg.py
        if _sibling(folder, wanted):
            names.add(wanted)
            if folder not in folders:
                folders.append(folder)
    return folders, names


def flat_modules(folders: list[Path]) -> list[tuple[str, Path]]:
    """(bare module name, folder) for every module file of *folders*, first folder
    first (it is first on ``PYTHONPATH``: a name in two folders is the first's)."""
    seen: set[str] = set()
    out: list[tuple[str, Path]] = []
    for folder in folders:
        for p in sorted(folder.glob("*.py")):
            if p.stem.isidentifier() and p.stem not in SKIP and p.stem not in seen:
                seen.add(p.stem)
                out.append((p.stem, folder))
    return out[:MAX_MODULES]


def import_by_bare_name(
    plan: dict[str, Any], site: Path, folders: list[Path], end: float, window: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The modules of *folders* imported by bare name, the folders first on the path
    (see above); each result is named by its file."""
    names = flat_modules(folders)
    emit("status", phase="import", msg=f"importing {len(names)} modules by bare name from their folders")
    py = f"{plan['venv']}/bin/python"
    run = ImportRun(
        {**plan, "_pythonpath": [str(f) for f in folders]},
        "flat",
        [py, str(RUN_DIR / "import_all.py"), *(n for n, _ in names)],
        float(plan.get("module_timeout", 30)),
    )
    run.run(max(1.0, end - time.monotonic()), window)
    res = run.result()
    res["argv"] = [*res["argv"][:2], f"<{len(names)} modules, by bare name>"]
    results = run.outcomes()
    folder_of = dict(names)
    for r in results:
        folder = folder_of.get(str(r["name"]))
        if folder is not None:
            rel = folder.relative_to(site) if folder.is_relative_to(site) else folder
            r["name"] = f"{rel}/{r['name']}.py"
    return results, [res]
