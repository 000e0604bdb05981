"""No import cycle in ``sandbox/``, between modules or between packages.

Every ``import``/``from … import`` is read with :mod:`ast`, wherever it is written
(module top, function bodies, ``if TYPE_CHECKING:`` blocks): a function-level import
only hides a cycle until that function runs. Package level groups each module under
its component below ``sandbox`` (``sandbox.gate.run`` → ``sandbox.gate``;
``sandbox.vet`` is a component of its own), which is the level the issue named
(``gate → vet → report → gate``).

Run alone for the figures: ``python -m tests.unit.test_import_cycles``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "sandbox"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(current: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports_of(name: str, path: Path, known: Iterable[str]) -> set[str]:
    """The ``sandbox`` modules *name* imports, anywhere in its source."""
    known = set(known)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, path.name == "__init__.py", node.level, node.module)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                # `from sandbox import cache` imports a module; `from sandbox.x import f` the package x
                found.add(sub if sub in known else base)
    return {m for m in found if m in known and m != name}


def module_graph() -> dict[str, set[str]]:
    """module → the modules it imports."""
    mods = modules()
    return {name: imports_of(name, path, mods) for name, path in mods.items()}


def component(module: str) -> str:
    """``sandbox.gate.run`` → ``sandbox.gate``; ``sandbox.vet`` → ``sandbox.vet``."""
    return ".".join(module.split(".")[:2])


def package_graph(graph: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """component → the components its modules import (self-edges dropped)."""
    out: dict[str, set[str]] = {}
    for mod, deps in graph.items():
        src = component(mod)
        out.setdefault(src, set()).update(component(d) for d in deps if component(d) != src)
    return out


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                found.append(sorted(scc))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    """The checker itself can fail: a known cycle and a self-contained chain."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    g = {"sandbox.gate.run": {"sandbox.vet"}, "sandbox.vet": {"sandbox.report.x"}}
    g["sandbox.report.x"] = {"sandbox.gate.models"}
    g["sandbox.gate.models"] = set()
    assert cycles(g) == []  # acyclic between modules …
    assert cycles(package_graph(g)) == [["sandbox.gate", "sandbox.report", "sandbox.vet"]]  # … not packages


def test_imports_are_read_everywhere(tmp_path: Path) -> None:
    """Function-level, TYPE_CHECKING and relative imports all count."""
    src = tmp_path / "m.py"
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from sandbox.vet import VetOptions\n"
        "def f():\n    from sandbox import cache\n    import sandbox.gate.run\n"
        "from . import models\n"
    )
    known = {"sandbox.vet", "sandbox.cache", "sandbox.gate.run", "sandbox.gate.models", "sandbox.gate"}
    found = imports_of("sandbox.gate.diff", src, known)
    assert found == {"sandbox.vet", "sandbox.cache", "sandbox.gate.run", "sandbox.gate.models"}


def test_no_module_level_cycle() -> None:
    graph = module_graph()
    assert len(graph) > 40 and sum(len(d) for d in graph.values()) > 100  # the parser saw the imports
    assert cycles(graph) == []


def test_no_package_level_cycle() -> None:
    graph = package_graph(module_graph())
    assert {"sandbox.gate", "sandbox.report", "sandbox.vet", "sandbox.judge"} <= graph.keys()
    assert cycles(graph) == []


def test_report_does_not_know_the_gate() -> None:
    """Reports render one run; the gate renders reports, never the other way round."""
    graph = module_graph()
    reach = {
        (mod, dep)
        for mod, deps in graph.items()
        if component(mod) == "sandbox.report"
        for dep in deps
        if component(dep) in ("sandbox.gate", "sandbox.vet")
    }
    assert reach == set()


if __name__ == "__main__":  # pragma: no cover - figures for the closing note
    g = module_graph()
    p = package_graph(g)
    print(f"{len(g)} modules, {sum(map(len, g.values()))} edges: cycles {cycles(g)}")
    print(f"{len(p)} packages, {sum(map(len, p.values()))} edges: cycles {cycles(p)}")
