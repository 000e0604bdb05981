"""What the lockfile parsers share: reading files, pip's option tables, PEP 508 and path/URL helpers."""

from __future__ import annotations

import importlib
import os
import re
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion

from sandbox.errors import InputError
from sandbox.fetch.archive import SDIST_SUFFIXES, split_sdist_filename
from sandbox.gate.models import LockedRequirement, SourceKind

# tomllib is 3.11+, its backport tomli a dependency on 3.10; importing by name keeps
# one code path for both (and for mypy's 3.10 target), as sandbox.fetch.metadata does.
tomllib = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")


Reader = Callable[[Path], str]

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_VCS = re.compile(r"^(git|hg|svn|bzr)\+", re.IGNORECASE)
_ENV_VAR = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)\}")  # pip expands only this form
_COMMENT = re.compile(r"(^|\s+)#.*$")
_EXTRAS_SUFFIX = re.compile(r"^(?P<body>.+?)(?P<extras>\[[^\[\]]*\])?$")
_TOML_POS = re.compile(r"\(at line (?P<line>\d+), column \d+\)")
_PYLOCK_NAME = re.compile(r"^pylock\.([^.]+\.)?toml$")
_MAX_INCLUDE_DEPTH = 32
ARCHIVE_SUFFIXES = (".whl", *SDIST_SUFFIXES)

# pip's options that may appear on a line of their own in a requirements file.
_GLOBAL_WITH_VALUE = {
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links",
    "--find-links": "--find-links",
    "--trusted-host": "--trusted-host",
    "--only-binary": "--only-binary",
    "--no-binary": "--no-binary",
    "--use-feature": "--use-feature",
    "-r": "--requirement",
    "--requirement": "--requirement",
    "-c": "--constraint",
    "--constraint": "--constraint",
    "-e": "--editable",
    "--editable": "--editable",
}
_GLOBAL_FLAGS = {"--no-index", "--pre", "--prefer-binary", "--require-hashes"}
# Options allowed after a requirement on the same line.
_PER_REQ_WITH_VALUE = {"--hash", "--global-option", "--config-settings"}


# --------------------------------------------------------------------------- reading


def read_text(path: Path) -> str:
    """The default reader: the file on disk, as UTF-8 (a BOM is dropped)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not a dependency file") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text") from None


# --------------------------------------------------------------------------- shared helpers


def _under(base_dir: Path, rel: str) -> Path:
    """*rel* (as a lockfile writes it) made absolute against the lockfile's directory."""
    return Path(os.path.abspath(base_dir / os.path.expanduser(rel)))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def pinned_version(specifier: str) -> str | None:
    """The version of an exact ``==X`` / ``===X`` pin (no wildcard), else None."""
    try:
        specs = list(SpecifierSet(specifier))
    except InvalidSpecifier:
        return None
    if len(specs) == 1 and specs[0].operator in ("==", "===") and not specs[0].version.endswith(".*"):
        return specs[0].version
    return None


def _is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _name_version_from_filename(filename: str) -> tuple[str, str] | None:
    """(canonical name, version) of a wheel or sdist file name, or None."""
    if filename.lower().endswith(".whl"):
        try:
            name, version, _, _ = parse_wheel_filename(filename)
        except (InvalidWheelFilename, InvalidVersion):
            return None
        return str(name), str(version)
    split = split_sdist_filename(filename)
    if split is None:
        return None
    return str(split[0]), split[1]


def _file_url_path(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.request.url2pathname(parts.path)


def _egg_name(url: str) -> str | None:
    frag = urllib.parse.urlsplit(url).fragment
    for part in frag.split("&"):
        key, _, value = part.partition("=")
        if key == "egg" and value:
            return canonicalize_name(value.split("[")[0])
    return None


def _extras_of(text: str) -> tuple[str, ...]:
    inner = text.strip()[1:-1]
    return tuple(sorted({canonicalize_name(e.strip()) for e in inner.split(",") if e.strip()}))


@dataclass
class _Where:
    """Where an entry is written; its ``error`` is the one way to complain about it."""

    display: str
    line: int

    def error(self, message: str, advice: str | None = None) -> InputError:
        loc = f"{self.display}:{self.line}" if self.line else self.display
        return InputError(f"{loc}: {message}", advice=advice)


def _direct_reference(
    url: str,
    *,
    name: str | None,
    base_dir: Path,
    where: _Where,
    extras: tuple[str, ...],
    markers: str,
    hashes: tuple[str, ...],
    editable: bool,
) -> LockedRequirement:
    """A requirement given as a URL or VCS reference (``name @ url`` or a bare URL)."""
    common: dict[str, Any] = {
        "extras": extras,
        "markers": markers,
        "hashes": hashes,
        "editable": editable,
        "source_file": where.display,
        "line": where.line,
    }
    if url.lower().startswith("file:"):
        return _local_path(_file_url_path(url), name=name, base_dir=base_dir, where=where, **common)
    tail = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    parsed = _name_version_from_filename(tail) if _is_archive(tail) else None
    if _VCS.match(url):
        guess = name or _egg_name(url) or canonicalize_name(tail.removesuffix(".git") or "unknown")
        return LockedRequirement(name=guess, kind=SourceKind.VCS, url=url, **common)
    found = name or _egg_name(url) or (parsed[0] if parsed else None)
    if found is None:
        raise where.error(f"cannot tell the package name of {url!r}", advice="write it as NAME @ URL")
    version = parsed[1] if parsed and parsed[0] == canonicalize_name(found) else None
    return LockedRequirement(name=found, version=version, kind=SourceKind.URL, url=url, **common)


def _local_path(
    raw: str,
    *,
    name: str | None,
    base_dir: Path,
    where: _Where,
    **common: Any,
) -> LockedRequirement:
    """A local archive (vetted by path) or source tree (the project's own code)."""
    path = Path(os.path.expanduser(raw))
    if not path.is_absolute():
        # Relative to the file that names it, so a gate gives the same answer from any
        # working directory (pip itself resolves archive paths against the cwd).
        path = base_dir / path
    # Absolute, so the vet (which resolves paths against its working directory) and the
    # records agree whatever directory the gate runs from.
    path = Path(os.path.abspath(path))
    if _is_archive(path.name):
        parsed = _name_version_from_filename(path.name)
        if parsed is None:
            raise where.error(f"{path.name} is not a valid wheel or sdist file name")
        if name is not None and canonicalize_name(name) != parsed[0]:
            raise where.error(f"{raw!r} is named {parsed[0]}, not {canonicalize_name(name)}")
        return LockedRequirement(
            name=parsed[0], version=parsed[1], kind=SourceKind.LOCAL, path=str(path), **common
        )
    guess = canonicalize_name(name) if name else canonicalize_name(path.name or "project")
    return LockedRequirement(name=guess, kind=SourceKind.DIRECTORY, path=str(path), **common)


def _from_pep508(
    text: str,
    *,
    base_dir: Path,
    where: _Where,
    hashes: tuple[str, ...] = (),
    editable: bool = False,
    groups: tuple[str, ...] = (),
) -> LockedRequirement:
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise where.error(f"invalid requirement {text!r}: {_first_line(exc)}") from None
    extras = tuple(sorted({canonicalize_name(e) for e in req.extras}))
    markers = str(req.marker) if req.marker is not None else ""
    if req.url:
        out = _direct_reference(
            req.url,
            name=canonicalize_name(req.name),
            base_dir=base_dir,
            where=where,
            extras=extras,
            markers=markers,
            hashes=hashes,
            editable=editable,
        )
        return out.model_copy(update={"groups": groups})
    spec = str(req.specifier)
    return LockedRequirement(
        name=canonicalize_name(req.name),
        version=pinned_version(spec),
        specifier=spec,
        markers=markers,
        extras=extras,
        hashes=hashes,
        editable=editable,
        groups=groups,
        source_file=where.display,
        line=where.line,
    )
