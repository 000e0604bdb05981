"""pyproject.toml: ``[project]`` dependencies, optional dependencies and PEP 735 dependency groups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from sandbox.errors import InputError
from sandbox.gate.lockfiles._common import _from_pep508, _Where
from sandbox.gate.lockfiles._toml import _array, _line_of, _load_toml, _table
from sandbox.gate.models import LockedRequirement


def parse_pyproject(text: str, path: Path, *, display: str | None = None) -> list[LockedRequirement]:
    """``[project]`` dependencies and optional-dependencies, and PEP 735 ``[dependency-groups]``.

    Groups are recorded in ``groups``: ``()`` for the main dependencies, the extra's
    name for an optional group, ``"group:NAME"`` for a dependency group.
    """
    shown = display if display is not None else str(path)
    data = _load_toml(text, shown)
    top = _Where(shown, 0)
    project = _table(data.get("project"), "[project]", top)
    groups = _table(data.get("dependency-groups"), "[dependency-groups]", top)
    if not project and not groups:
        raise InputError(
            f"{shown}: no [project] table and no [dependency-groups]: nothing to gate",
            advice="for Poetry or other tool-specific tables, gate the tool's lockfile (poetry.lock …)",
        )
    dynamic = _array(project.get("dynamic"), "[project].dynamic", top)
    if "dependencies" in dynamic and "dependencies" not in project:
        # Silently gating nothing would pass a build that was never looked at.
        raise InputError(
            f"{shown}: [project].dependencies is dynamic (computed by the build backend)",
            advice="gate a lockfile or a requirements file instead",
        )
    base_dir = path.parent
    out: list[LockedRequirement] = []

    def add(items: list[Any], what: str, section_line: int, group: tuple[str, ...]) -> None:
        cursor = section_line
        for item in items:
            if not isinstance(item, str):
                raise _Where(shown, section_line).error(f"{what} entries must be strings, got {item!r}")
            line = _line_of(text, f'"{item}"', cursor) or _line_of(text, f"'{item}'", cursor) or section_line
            cursor = line
            out.append(_from_pep508(item, base_dir=base_dir, where=_Where(shown, line), groups=group))

    proj_line = _line_of(text, "[project]")
    add(
        _array(project.get("dependencies"), "[project].dependencies", top),
        "[project].dependencies",
        _line_of(text, "dependencies", proj_line) or proj_line,
        (),
    )
    optional = _table(project.get("optional-dependencies"), "[project.optional-dependencies]", top)
    opt_line = _line_of(text, "optional-dependencies") or proj_line
    for extra, items in optional.items():
        where = _Where(shown, _line_of(text, extra, opt_line) or opt_line)
        add(
            _array(items, f"optional-dependencies.{extra}", where),
            f"optional-dependencies.{extra}",
            where.line,
            (canonicalize_name(extra),),
        )
    grp_line = _line_of(text, "[dependency-groups]")
    for group, items in groups.items():
        where = _Where(shown, _line_of(text, group, grp_line) or grp_line)
        plain = []
        for item in _array(items, f"dependency-groups.{group}", where):
            if isinstance(item, dict):
                # {include-group = "other"}: the other group is gated under its own name.
                included = item.get("include-group")
                if not isinstance(included, str) or set(item) != {"include-group"}:
                    raise where.error(f"dependency-groups.{group}: invalid entry {item!r}")
                if included not in groups:
                    raise where.error(f"dependency-groups.{group} includes unknown group {included!r}")
                continue
            plain.append(item)
        add(plain, f"dependency-groups.{group}", where.line, (f"group:{canonicalize_name(group)}",))
    return out
