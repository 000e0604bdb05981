"""Which modules of an installed distribution the import phase tries (runs in the
sandbox only): its top-level names, then every module RECORD lists, a test suite the
package ships left out unless something the user runs reaches it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .common import TEST_PART, module_file

MAX_SCANNED = 3000  # modules whose imports are read to find a test suite's users
SCAN_BYTES = 1 << 20


def suite_root(name: str) -> str | None:
    """The test-suite part of a module name (``pkg.tests`` of ``pkg.tests.test_x``,
    ``pkg.testing``): None for a top-level module or one outside any suite."""
    parts = name.split(".")
    for i in range(1, len(parts)):
        if TEST_PART.match(parts[i]):
            return ".".join(parts[: i + 1])
    return None


def _resolve(base: str, level: int, module: str) -> str:
    """A relative import's absolute name, *base* being the importing package."""
    parts = base.split(".") if base else []
    if level - 1 > len(parts):
        return module
    parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, *([module] if module else [])])


def imported_names(source: bytes, module: str, package: bool) -> set[str]:
    """Absolute dotted names *source* imports: import statements anywhere (a function
    body, ``__getattr__``) and ``import_module``/``__import__`` of a constant string."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    base = module if package else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            root = _resolve(base, node.level, node.module or "") if node.level else node.module or ""
            out.add(root)
            out |= {f"{root}.{a.name}" if root else a.name for a in node.names}
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            fn = node.func
            called = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
            if called in ("import_module", "__import__"):
                target = node.args[0].value
                level = len(target) - len(target.lstrip("."))
                out.add(_resolve(base, level, target.lstrip(".")) if level else target)
    return out


def suites_imported(site: Path, names: list[str]) -> set[str]:
    """The test-suite modules of *names* (:func:`suite_root`) that the package's other
    modules import, with the packages holding them: library code, whatever its name."""
    wanted = {n for n in names if suite_root(n)}
    if not wanted:
        return set()
    # any import of a suite module spells its suite's own name (``testing``, ``tests``):
    # a file without one is not parsed (a big package has thousands)
    leaves = {str(suite_root(n)).rpartition(".")[2].encode() for n in wanted}
    out: set[str] = set()
    for name in [n for n in names if not suite_root(n)][:MAX_SCANNED]:
        path, package = module_file(site, name)
        if path is None:
            continue
        try:
            with path.open("rb") as fh:
                source = fh.read(SCAN_BYTES)
        except OSError:
            continue
        if not any(leaf in source for leaf in leaves):
            continue
        for imported in imported_names(source, name, package):
            parts = imported.split(".")
            out |= {p for p in (".".join(parts[:i]) for i in range(1, len(parts) + 1)) if p in wanted}
    return out


_EXT_SUFFIX = re.compile(r"\.(cpython-[^.]+|abi3|pypy[^.]*)?\.?so$")


def entry_point_modules(info: Path) -> set[str]:
    """The modules a distribution's entry points name, in any group (a console script,
    a pytest plugin, an extension a host application loads): what the user runs imports them."""
    try:
        text = (info / "entry_points.txt").read_text(errors="replace")
    except OSError:
        return set()
    out: set[str] = set()
    for line in text.splitlines():
        line = line.strip()
        if "=" not in line or line.startswith(("#", ";", "[")):
            continue
        target = line.split("=", 1)[1].split(":", 1)[0].split("[", 1)[0].strip()
        if target and all(p.isidentifier() for p in target.split(".")):
            out.add(target)
    return out


# A top-level folder named like its distribution (``my-plugin/__init__.py``): no
# ``import`` statement can name it, but ``importlib.import_module("my-plugin")`` and the
# plugin loaders built on it do, and so does the import phase (dependency-confusion
# probes ship their beacon so). Below the top, a hyphenated folder is data or examples.
_HYPHENATED_TOP = re.compile(r"[A-Za-z_][\w-]*\Z")


def _importable(parts: list[str]) -> bool:
    """Whether the dotted *parts* (a RECORD path's folders and stem) name a module
    ``importlib.import_module`` finds."""
    head, rest = parts[0], parts[1:]
    return (head.isidentifier() or bool(_HYPHENATED_TOP.match(head))) and all(p.isidentifier() for p in rest)


def modules_from_record(info: Path, limit: int) -> tuple[list[str], int, int]:
    """Importable module names of a distribution, at most *limit*: its top-level names,
    then the modules its entry points name, then the rest of RECORD shallow first; how
    many the limit left out; how many of the list's head are top-level or entry-point
    modules (what a user reaches by name: padding deeper cannot push them past the cap)."""
    names: list[str] = []
    seen: set[str] = set()
    record = info / "RECORD"
    rows = record.read_text(errors="replace").splitlines() if record.exists() else []
    tops: list[str] = []
    top_file = info / "top_level.txt"
    if top_file.exists():
        tops = [t.strip() for t in top_file.read_text().splitlines() if t.strip()]
    for row in rows:
        rel = row.split(",", 1)[0]
        if rel.startswith(("..", "/")) or ".dist-info/" in rel or ".data/" in rel or "__pycache__" in rel:
            continue
        if rel.endswith(".py"):
            dotted = rel[:-3]
        elif rel.endswith(".pyc"):  # a sourceless module: Python imports it all the same
            dotted = rel[:-4]
        elif rel.endswith(".so"):
            dotted = _EXT_SUFFIX.sub("", rel)
        else:
            continue
        parts = dotted.split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not parts or not _importable(parts) or parts[-1] == "__main__":
            continue
        mod = ".".join(parts)
        if mod not in seen:
            seen.add(mod)
            names.append(mod)
    shipped = {n.split(".")[0] for n in names}
    # a name top_level.txt declares but no file of RECORD provides is not the candidate's
    # (a companion extension declares its parent's namespace): importing it can only fail
    top_level = [t for t in tops if _importable([t]) and (t in shipped or not rows)] or sorted(shipped)
    # a test suite shipped inside a package is not what its user imports (gevent's opens
    # sockets and asks DNS at import, as tests do); a top-level module is always tried,
    # and so is a module an entry point names (pytest imports every pytest11 plugin) or
    # one the package's own code imports (a lazy ``from .testing import X`` in a
    # function or ``__getattr__``: the import phase would not reach it otherwise)
    entry = entry_point_modules(info)
    kept = entry | suites_imported(info.parent, names)
    names = [n for n in names if n in kept or not suite_root(n)]
    ordered = [t for t in top_level if t not in ("__main__",)]
    ordered += sorted((n for n in names if n in entry and n not in ordered), key=_shallow_first)
    rest = sorted((n for n in names if n not in ordered), key=_shallow_first)
    full = ordered + rest
    return full[:limit], max(0, len(full) - limit), len(ordered)


def _shallow_first(name: str) -> tuple[int, str]:
    return name.count("."), name
