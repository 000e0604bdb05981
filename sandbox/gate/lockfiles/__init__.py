"""Pure parsers of dependency files: requirements.txt, pyproject.toml, uv.lock, poetry.lock, pylock.toml.

Nothing here executes or fetches anything: every format is read as text (TOML
through :mod:`tomllib`) and turned into :class:`~sandbox.gate.models.LockedRequirement`
records carrying the file and line they came from, so every complaint can name
``file:line``. A file that does not parse raises :class:`~sandbox.errors.InputError`
(exit code 2).

Files are read through a *reader* (``Path -> str``) so the same parsers read a
lockfile as it was at a git ref (``git show REF:path``, see :mod:`sandbox.gate.diff`),
``-r`` includes included.

One module per format (:mod:`.requirements`, :mod:`.pyproject`, :mod:`.uv_lock`,
:mod:`.poetry_lock`, :mod:`.pylock`); this package keeps the public names and the
dispatch (:func:`detect_format`, :func:`read_lockfile`).
"""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.errors import InputError
from sandbox.gate.lockfiles._common import (
    _PYLOCK_NAME,
    ARCHIVE_SUFFIXES,
    Reader,
    pinned_version,
    read_text,
    tomllib,
)
from sandbox.gate.lockfiles.poetry_lock import parse_poetry_lock
from sandbox.gate.lockfiles.pylock import parse_pylock
from sandbox.gate.lockfiles.pyproject import parse_pyproject
from sandbox.gate.lockfiles.requirements import parse_requirements
from sandbox.gate.lockfiles.uv_lock import parse_uv_lock
from sandbox.gate.models import LockedRequirement, Lockfile, LockFormat, SourceKind


def detect_format(path: Path, text: str | None = None) -> LockFormat:
    """The format of *path*, by its name, else by what its content looks like."""
    name = path.name.lower()
    if name == "uv.lock":
        return LockFormat.UV_LOCK
    if name == "poetry.lock":
        return LockFormat.POETRY_LOCK
    if name == "pyproject.toml":
        return LockFormat.PYPROJECT
    if _PYLOCK_NAME.match(name):
        return LockFormat.PYLOCK
    if name.endswith((".txt", ".in", ".pip")):
        return LockFormat.REQUIREMENTS
    if text is not None:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return LockFormat.REQUIREMENTS  # `name==1.0` lines are not TOML
        if "lock-version" in data and "packages" in data:
            return LockFormat.PYLOCK
        meta = data.get("metadata")
        if isinstance(meta, dict) and ("lock-version" in meta or "content-hash" in meta):
            return LockFormat.POETRY_LOCK
        if "package" in data and isinstance(data.get("version"), int):
            return LockFormat.UV_LOCK
        if "project" in data or "dependency-groups" in data or "build-system" in data:
            return LockFormat.PYPROJECT
    raise InputError(
        f"cannot tell the format of {path}",
        advice="name it requirements*.txt, pyproject.toml, uv.lock, poetry.lock or pylock.toml",
    )


def read_lockfile(
    path: Path | str,
    *,
    fmt: LockFormat | None = None,
    reader: Reader = read_text,
    display: str | None = None,
    prefix: str = "",
) -> Lockfile:
    """Parse the dependency file at *path* (any supported format).

    *display* is how the file is named in records and messages (default: *path*
    as given), after *prefix* (``"origin/main:"`` for a file read at a git ref);
    *reader* supplies file contents (default: the disk).
    """
    p = Path(path)
    plain = display if display is not None else str(path)
    shown = prefix + plain
    text = reader(p)
    fmt = fmt or detect_format(p, text)
    notes: list[str] = []
    reqs: list[LockedRequirement]
    if fmt is LockFormat.REQUIREMENTS:
        reqs = parse_requirements(text, p, reader=reader, display=plain, prefix=prefix, notes=notes)
    elif fmt is LockFormat.PYPROJECT:
        reqs = parse_pyproject(text, p, display=shown)
    elif fmt is LockFormat.UV_LOCK:
        reqs = parse_uv_lock(text, p, display=shown)
    elif fmt is LockFormat.POETRY_LOCK:
        reqs = parse_poetry_lock(text, p, display=shown)
    else:
        reqs = parse_pylock(text, p, display=shown)
    reqs = [_mark_own_project(r, p) for r in reqs]
    return Lockfile(path=shown, format=fmt, requirements=tuple(reqs), notes=tuple(notes))


def _mark_own_project(req: LockedRequirement, lockfile: Path) -> LockedRequirement:
    """A source tree is the project itself when it is the dependency file's own
    directory or one above it (``-e .``, ``-e ..`` from requirements/); any other
    directory (``-e ./vendored``, ``../elsewhere``) is code the gate must vet."""
    if req.kind is not SourceKind.DIRECTORY or not req.path:
        return req
    home = Path(os.path.abspath(lockfile)).parent
    tree = Path(req.path)
    if tree == home or tree in home.parents:
        return req.model_copy(update={"own_project": True})
    return req


__all__ = [
    "ARCHIVE_SUFFIXES",
    "Reader",
    "detect_format",
    "parse_poetry_lock",
    "parse_pylock",
    "parse_pyproject",
    "parse_requirements",
    "parse_uv_lock",
    "pinned_version",
    "read_lockfile",
    "read_text",
]
