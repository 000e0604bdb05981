"""Import from the unpacked sdist when its install failed (runs in the sandbox only).

Malicious releases are often packaged in haste: a ``pyproject.toml`` naming a package
folder that does not exist, a ``setup.py`` that crashes before ``setup()``, metadata
pip refuses.  pip then installs nothing and the payload, which sits in the package's
modules, never runs.  A developer whose ``pip install`` fails does what comes next:
unpacks the source and imports it from the checkout.  This module unpacks the
candidate's sdist into ``~/src/<stem>`` (regular files and folders only, no path
leaving it, bounded) and lists the modules found there, as an inventory the import
phase reads; the import step then runs with the checkout on ``PYTHONPATH`` and as its
working directory, under the same recorder as every step.

The unpacking is the agent's own code (:mod:`unpack`), run as the candidate's uid so
the checkout is the developer's own, isolated from anything the install planted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import legacy, protocol
from .common import OUT, RUN_DIR

# unpack.py as the image build copies it next to the drivers (images/Dockerfile)
UNPACK_SCRIPT = "unpack_sdist.py"

UNPACK_TIMEOUT = 60.0
INVENTORY = "checkout.inventory.json"
# Not the project's code: a developer imports none of these from a checkout
SKIP_DIRS = frozenset(
    {"tests", "test", "testing", "docs", "doc", "examples", "example", "build", "dist", "benchmarks", "venv"}
)
SKIP_FILES = frozenset({"setup", "conftest", "noxfile", "fabfile", "tasks", "tox"})


def source_root(dest: Path) -> Path:
    """Where the modules sit: the one top folder (if any), or its ``src/``."""
    entries = [p for p in dest.iterdir() if not p.name.startswith(".")]
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() else dest
    src = root / "src"
    if src.is_dir() and _tops(src):
        return src
    return root


def _is_package(path: Path) -> bool:
    return path.is_dir() and (path / "__init__.py").is_file()


def _tops(root: Path) -> list[str]:
    out = []
    for p in sorted(root.iterdir()):
        if p.name.startswith(".") or p.name.endswith(".egg-info"):
            continue
        if p.is_dir() and p.name.isidentifier() and p.name.lower() not in SKIP_DIRS and _is_package(p):
            out.append(p.name)
        elif p.is_file() and p.suffix == ".py" and p.stem.isidentifier() and p.stem not in SKIP_FILES:
            out.append(p.stem)
    return out


def modules(root: Path, limit: int) -> tuple[list[str], int, int]:
    """The checkout's importable modules: top-level names first, then submodules of its
    packages by depth (as :func:`phases.modules_from_record` orders a wheel's); how many
    the limit left out (at least); how many top-level names head the list."""
    tops = _tops(root)
    rest: list[str] = []
    for top in tops:
        base = root / top
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            here = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames if d.isidentifier() and _is_package(here / d))
            parts = here.relative_to(root).parts
            if here != base:
                rest.append(".".join(parts))
            for f in sorted(filenames):
                stem = f[:-3]
                if f.endswith(".py") and stem.isidentifier() and stem not in ("__init__", "__main__"):
                    rest.append(".".join((*parts, stem)))
            if len(rest) > limit:
                break
    rest.sort(key=lambda n: (n.count("."), n))
    full = tops + rest
    return full[:limit], max(0, len(full) - limit), len(tops)


def prepare(plan: dict[str, Any], pids: list[int]) -> dict[str, Any] | None:
    """Unpack the candidate's sdist as a developer's checkout (as the candidate's uid;
    the unpacking process's pid goes to *pids*) and write the inventory the import
    phase reads; None for a wheel, or an sdist with no module in it."""
    sdist = legacy.candidate_sdist(plan)
    if sdist is None or not sdist.is_file():
        return None
    stem = sdist.name
    for suffix in legacy.SDIST_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    base = Path(plan["home"]) / "src" / (stem or "checkout")
    # a name nothing holds yet (the unpacker refuses an existing one: a planted link)
    free = (base, *(base.with_name(f"{base.name}-{n}") for n in range(1, 100)))
    dest = next((d for d in free if not os.path.lexists(d)), None)
    if dest is None:
        return None
    drop = protocol.privilege_drop(int(plan["uid"]), int(plan["gid"]))
    # the image's copy in the drivers' folder: the agent's own (lib/) is root-only
    script = RUN_DIR / UNPACK_SCRIPT
    proc = subprocess.Popen(
        [*drop, sys.executable, "-I", "-S", str(script), str(sdist), str(dest)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "HOME": str(plan["home"])},
        cwd="/",
    )
    pids.append(proc.pid)  # the eBPF recorder sees it (candidate uid): the agent's, not the candidate's
    try:
        proc.wait(timeout=UNPACK_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.returncode != 0 or dest.is_symlink() or not dest.is_dir():
        return None
    root = source_root(dest)
    names, capped, first = modules(root, int(plan.get("max_modules", 5000)))
    if not names:
        return None
    inv = {
        "site_packages": str(root),
        "checkout": str(root),
        "distributions": [],
        "pth_files": [],
        "candidate_dist_info": None,
        "modules": names,
        "modules_capped": capped,
        "modules_first": first,
        "entry_points": "",
    }
    (OUT / INVENTORY).write_text(json.dumps(inv))
    return inv


def load() -> dict[str, Any] | None:
    """The inventory :func:`prepare` wrote in this run, if it did."""
    try:
        inv: dict[str, Any] = json.loads((OUT / INVENTORY).read_text())
    except (OSError, ValueError):
        return None
    return inv if inv.get("checkout") else None
