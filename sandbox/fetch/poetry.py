"""Static dependencies of a Poetry project (``[tool.poetry.dependencies]``), as PEP 508.

poetry-core turns that table into the wheel's ``Requires-Dist`` when it builds, and pip
then resolves them; an sdist whose ``PKG-INFO`` does not list them (built by another
tool from a Poetry template) would otherwise have none staged, and every one would cost
an adaptive round inside the sandbox.  Read as text, never run.  Poetry's own constraint
syntax is translated: ``^1.2.3`` → ``>=1.2.3,<2.0.0``, ``~1.2.3`` → ``>=1.2.3,<1.3.0``,
``*`` → any, a bare version → ``==``; alternatives (``||``) and anything untranslatable
keep the name with no version (the newest the sandbox can install).  Optional
dependencies (extras), path, git and URL dependencies, and ``python`` are left out.
"""

from __future__ import annotations

import re
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

_NUM = re.compile(r"^\d+(?:\.\d+)*$")
MAX_DEPENDENCIES = 200


def _bump(parts: list[int], index: int) -> str:
    up = [*parts[:index], parts[index] + 1]
    return ".".join(str(p) for p in up + [0] * (max(len(parts), 2) - len(up)))


def _caret(version: str) -> str:
    parts = [int(p) for p in version.split(".")]
    # ^1.2.3 <2; ^0.2.3 <0.3; ^0.0.3 <0.0.4: the left-most non-zero part is held
    index = next((i for i, p in enumerate(parts) if p != 0), len(parts) - 1)
    return f">={version},<{_bump(parts, index)}"


def _tilde(version: str) -> str:
    parts = [int(p) for p in version.split(".")]
    return f">={version},<{_bump(parts, 0 if len(parts) == 1 else 1)}"


def specifier(constraint: str) -> str:
    """Poetry's version constraint as a PEP 440 specifier ("" when any version will do
    or it cannot be translated)."""
    c = constraint.strip()
    if not c or c == "*" or "||" in c:
        return ""
    if c.startswith("^") and _NUM.match(c[1:].strip()):
        return _caret(c[1:].strip())
    if c.startswith("~") and not c.startswith("~=") and _NUM.match(c[1:].strip()):
        return _tilde(c[1:].strip())
    if _NUM.match(c):
        return f"=={c}"
    return ",".join(part.strip() for part in c.split(","))


def _requirement(name: str, value: Any) -> str | None:
    extras: list[str] = []
    marker = ""
    if isinstance(value, list):  # several constraints by marker: the name alone
        value = ""
    if isinstance(value, dict):
        if value.get("optional") or any(k in value for k in ("path", "git", "url", "file")):
            return None
        extras = [str(e) for e in value.get("extras") or []]
        marker = str(value.get("markers") or "")
        value = str(value.get("version") or "")
    spec = specifier(str(value))
    text = name + (f"[{','.join(extras)}]" if extras else "") + spec + (f"; {marker}" if marker else "")
    for candidate in (text, name):
        try:
            return str(Requirement(candidate))
        except InvalidRequirement:
            continue
    return None


def poetry_requires(pyproject: dict[str, Any]) -> list[str] | None:
    """The Poetry project's runtime dependencies as PEP 508 strings, or None when the
    pyproject has no ``[tool.poetry.dependencies]`` table."""
    tool = pyproject.get("tool")
    poetry = tool.get("poetry") if isinstance(tool, dict) else None
    deps = poetry.get("dependencies") if isinstance(poetry, dict) else None
    if not isinstance(deps, dict):
        return None
    out = []
    for name, value in deps.items():
        if str(name).lower() == "python":
            continue
        req = _requirement(str(name), value)
        if req is not None:
            out.append(req)
    return out[:MAX_DEPENDENCIES]
