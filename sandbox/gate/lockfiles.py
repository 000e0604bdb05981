"""Pure parsers of dependency files: requirements.txt, pyproject.toml, uv.lock, poetry.lock, pylock.toml.

Nothing here executes or fetches anything: every format is read as text (TOML
through :mod:`tomllib`) and turned into :class:`~sandbox.gate.models.LockedRequirement`
records carrying the file and line they came from, so every complaint can name
``file:line``. A file that does not parse raises :class:`~sandbox.errors.InputError`
(exit code 2).

Files are read through a *reader* (``Path -> str``) so the same parsers read a
lockfile as it was at a git ref (``git show REF:path``, see :mod:`sandbox.gate.diff`),
``-r`` includes included.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from sandbox.errors import InputError
from sandbox.fetch.archive import SDIST_SUFFIXES, split_sdist_filename
from sandbox.gate.models import LockedRequirement, Lockfile, LockFormat, SourceKind

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
    return Lockfile(path=shown, format=fmt, requirements=tuple(reqs), notes=tuple(notes))


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


# --------------------------------------------------------------------------- requirements.txt


@dataclass
class _Constraint:
    version: str
    location: str


@dataclass
class _RequirementsParser:
    reader: Reader
    prefix: str = ""
    requirements: list[LockedRequirement] = field(default_factory=list)
    constraints: dict[str, _Constraint] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    stack: list[str] = field(default_factory=list)

    def parse(self, text: str, path: Path, display: str, *, constraint: bool) -> None:
        key = os.path.normpath(str(path))
        shown = self.prefix + display
        if key in self.stack:
            chain = " -> ".join([*self.stack, key])
            raise InputError(f"{shown}: requirement files include each other ({chain})")
        if len(self.stack) >= _MAX_INCLUDE_DEPTH:
            raise InputError(f"{shown}: requirement files nested more than {_MAX_INCLUDE_DEPTH} deep")
        self.stack.append(key)
        try:
            for lineno, line in _logical_lines(text):
                self._line(line, path, display, lineno, constraint=constraint)
        finally:
            self.stack.pop()

    def _line(self, line: str, path: Path, display: str, lineno: int, *, constraint: bool) -> None:
        where = _Where(self.prefix + display, lineno)
        args, options = _break_args_options(line)
        try:
            opts = shlex.split(options)
        except ValueError as exc:
            raise where.error(f"cannot split options {options!r}: {exc}") from None
        if not args:
            self._global_option(opts, path, display, where, constraint=constraint)
            return
        hashes = _per_requirement_options(opts, where)
        req = self._requirement(args, path.parent, where, hashes=hashes, editable=False)
        self._add(req, where, constraint=constraint)

    def _add(self, req: LockedRequirement, where: _Where, *, constraint: bool) -> None:
        if not constraint:
            self.requirements.append(req)
        elif req.version is not None and req.kind is SourceKind.INDEX:
            self.constraints[req.name] = _Constraint(req.version, f"{where.display}:{where.line}")

    def _requirement(
        self, text: str, base_dir: Path, where: _Where, *, hashes: tuple[str, ...], editable: bool
    ) -> LockedRequirement:
        if _URL.match(text) or _VCS.match(text):
            # For URLs pip only takes "; " as the marker separator (";" may be part of a URL).
            url, extras, marker = _split_extras_marker(text, "; ")
            return _direct_reference(
                url,
                name=None,
                base_dir=base_dir,
                where=where,
                extras=extras,
                markers=marker,
                hashes=hashes,
                editable=editable,
            )
        if _looks_like_path(text):
            raw, extras, marker = _split_extras_marker(text, ";")
            return _local_path(
                raw,
                name=None,
                base_dir=base_dir,
                where=where,
                extras=extras,
                markers=marker,
                hashes=hashes,
                editable=editable,
                source_file=where.display,
                line=where.line,
            )
        return _from_pep508(text, base_dir=base_dir, where=where, hashes=hashes, editable=editable)

    def _global_option(
        self, opts: list[str], path: Path, display: str, where: _Where, *, constraint: bool
    ) -> None:
        i = 0
        while i < len(opts):
            token = opts[i]
            name, value = _split_option(token)
            if name in _GLOBAL_FLAGS:
                i += 1
                continue
            canon = _GLOBAL_WITH_VALUE.get(name)
            if canon is None:
                raise where.error(f"unknown or misplaced option {token!r}")
            if value is None:
                if i + 1 >= len(opts):
                    raise where.error(f"option {name} needs a value")
                value = opts[i + 1]
                i += 1
            i += 1
            if canon in ("--index-url", "--extra-index-url", "--find-links") and not constraint:
                # The vet fetches with the user's pip configuration, not with the file's.
                self.notes.append(
                    f"{where.display}:{where.line}: {canon} {value} is not used by the vet "
                    "(it fetches with your pip configuration)"
                )
            if canon in ("--requirement", "--constraint"):
                self._include(value, path, display, where, constraint=constraint or canon == "--constraint")
            elif canon == "--editable":
                req = self._requirement(value, path.parent, where, hashes=(), editable=True)
                self._add(req, where, constraint=constraint)

    def _include(self, target: str, path: Path, display: str, where: _Where, *, constraint: bool) -> None:
        if _URL.match(target):
            raise where.error(
                f"remote requirement files are not supported ({target})",
                advice="download it and include the local copy",
            )
        # pip resolves a nested -r/-c against the directory of the file that names it.
        child = (
            Path(os.path.normpath(path.parent / target)) if not Path(target).is_absolute() else Path(target)
        )
        child_display = os.path.normpath(os.path.join(os.path.dirname(display), target))
        try:
            text = self.reader(child)
        except InputError as exc:
            raise where.error(f"cannot include {target}: {exc.message}") from None
        self.parse(text, child, child_display, constraint=constraint)


def _split_option(token: str) -> tuple[str, str | None]:
    if token.startswith("--"):
        name, eq, value = token.partition("=")
        return name, value if eq else None
    if len(token) > 2 and token[0] == "-" and token[1] in "rceif":
        return token[:2], token[2:]  # optparse-style attached value: -rfile.txt
    return token, None


def _per_requirement_options(opts: list[str], where: _Where) -> tuple[str, ...]:
    hashes: list[str] = []
    i = 0
    while i < len(opts):
        name, value = _split_option(opts[i])
        if name not in _PER_REQ_WITH_VALUE:
            raise where.error(f"unknown or misplaced option {opts[i]!r} after a requirement")
        if value is None:
            if i + 1 >= len(opts):
                raise where.error(f"option {name} needs a value")
            value = opts[i + 1]
            i += 1
        i += 1
        if name == "--hash":
            algo, sep, digest = value.partition(":")
            if not sep or not algo or not re.fullmatch(r"[0-9a-fA-F]+", digest):
                raise where.error(f"invalid --hash {value!r} (expected ALGORITHM:HEXDIGEST)")
            hashes.append(f"{algo.lower()}:{digest.lower()}")
    return tuple(hashes)


def _break_args_options(line: str) -> tuple[str, str]:
    """pip's split of a line into the requirement and the options after it."""
    tokens = line.split(" ")
    args: list[str] = []
    rest = tokens[:]
    for token in tokens:
        if token.startswith("-"):
            break
        args.append(token)
        rest.pop(0)
    return " ".join(args).strip(), " ".join(rest)


_PEP508_DIRECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*@")


def _split_extras_marker(text: str, separator: str) -> tuple[str, tuple[str, ...], str]:
    """``path-or-url[extra1,extra2] <sep> marker`` → (body, extras, marker)."""
    head, _, marker = text.partition(separator)
    body = _EXTRAS_SUFFIX.match(head.strip())
    extras = _extras_of(body.group("extras")) if body and body.group("extras") else ()
    return (body.group("body") if body else head.strip()), extras, marker.strip()


def _looks_like_path(text: str) -> bool:
    if _PEP508_DIRECT.match(text):
        return False  # "name @ https://…/x.whl" is a PEP 508 direct reference, not a path
    head = text.split(";", 1)[0].strip()
    body = _EXTRAS_SUFFIX.match(head)
    candidate = body.group("body") if body else head
    return (
        candidate.startswith((".", "/", "~"))
        or "/" in candidate
        or "\\" in candidate
        or _is_archive(candidate)
    )


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first physical line number, text) of each logical line: joined, comment-free, expanded."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        is_comment = raw.lstrip().startswith("#")
        if raw.endswith("\\") and not is_comment:
            pending.append(raw[:-1])
            continue
        if is_comment and pending:
            # A comment line ends a continuation (pip does the same).
            yield from _clean(start, " ".join(pending))
            pending = []
            continue
        pending.append(raw)
        yield from _clean(start, " ".join(pending))
        pending = []
    if pending:
        yield from _clean(start, " ".join(pending))


def _clean(number: int, line: str) -> Iterator[tuple[int, str]]:
    line = _COMMENT.sub("", line).strip()
    if not line:
        return
    line = _ENV_VAR.sub(lambda m: os.environ.get(m.group("name"), m.group(0)), line)
    yield number, line


def parse_requirements(
    text: str,
    path: Path,
    *,
    reader: Reader = read_text,
    display: str | None = None,
    prefix: str = "",
    notes: list[str] | None = None,
) -> list[LockedRequirement]:
    """Requirements of a pip requirements file, ``-r`` includes and ``-c`` constraints applied.

    ``-r``/``-c`` paths resolve against the including file's directory and are
    read with *reader*; records and messages name them *prefix* + their path. A
    constraint that pins an otherwise unpinned requirement supplies its version
    (recorded in ``pinned_by``); constraints add no requirement.
    """
    parser = _RequirementsParser(reader=reader, prefix=prefix)
    parser.parse(text, path, display if display is not None else str(path), constraint=False)
    out = []
    for req in parser.requirements:
        pin = parser.constraints.get(req.name)
        # A constraint the requirement's own range excludes is not applied: pip would
        # refuse the combination, and guessing a version would vet the wrong thing.
        if (
            req.version is None
            and req.kind is SourceKind.INDEX
            and pin is not None
            and (not req.specifier or Version(pin.version) in SpecifierSet(req.specifier, prereleases=True))
        ):
            req = req.model_copy(update={"version": pin.version, "pinned_by": pin.location})
        out.append(req)
    if notes is not None:
        notes.extend(parser.notes)
    return out


# --------------------------------------------------------------------------- TOML formats


def _load_toml(text: str, display: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = tomllib.loads(text)
        return data
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_POS.search(msg)
        line = int(m.group("line")) if m else max(1, text.count("\n") + 1)
        raise InputError(f"{display}:{line}: not valid TOML: {_TOML_POS.sub('', msg).strip()}") from None


def _header_lines(text: str, header: str) -> list[int]:
    """Line numbers of each ``[[header]]`` line, in order (tomllib keeps no positions)."""
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.split("#", 1)[0].strip().replace(" ", "") == f"[[{header}]]":
            out.append(number)
    return out


def _line_of(text: str, needle: str, start_line: int = 1) -> int:
    """First line at or after *start_line* holding *needle* (0 when not found)."""
    for number, raw in enumerate(text.splitlines(), 1):
        if number >= start_line and needle in raw:
            return number
    return 0


def _table(value: object, what: str, where: _Where) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise where.error(f"{what} must be a table")
    return value


def _array(value: object, what: str, where: _Where) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise where.error(f"{what} must be an array")
    return value


def _string(value: object, what: str, where: _Where, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise where.error(f"{what} is missing")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise where.error(f"{what} must be a non-empty string")
    return value


class _Packages:
    """The ``[[package]]``/``[[packages]]`` tables of a lock, each with its line."""

    def __init__(self, data: Mapping[str, Any], key: str, text: str, display: str) -> None:
        self.display = display
        self.items = _array(data.get(key), f"[[{key}]]", _Where(display, 0))
        lines = _header_lines(text, key)
        self.lines = lines if len(lines) == len(self.items) else [0] * len(self.items)

    def __iter__(self) -> Iterator[tuple[_Where, dict[str, Any]]]:
        for line, item in zip(self.lines, self.items, strict=True):
            where = _Where(self.display, line)
            if not isinstance(item, dict):
                raise where.error("a package entry must be a table")
            yield where, item


def _version(value: object, where: _Where, name: str) -> str | None:
    text = _string(value, f"version of {name}", where)
    if text is None:
        return None
    try:
        Version(text)
    except InvalidVersion:
        raise where.error(f"invalid version {text!r} of {name}") from None
    return text


def _hash_list(values: Sequence[str | None]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        if v and ":" in v:
            algo, _, digest = v.partition(":")
            item = f"{algo.lower()}:{digest.lower()}"
            if item not in out:
                out.append(item)
    return tuple(out)


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


def parse_uv_lock(text: str, path: Path, *, display: str | None = None) -> list[LockedRequirement]:
    """Every ``[[package]]`` of a uv.lock (version 1) with its source and file hashes.

    Workspace members (``editable``/``virtual``/``directory`` sources) are the
    project's own code and come back as ``DIRECTORY`` entries.
    """
    shown = display if display is not None else str(path)
    data = _load_toml(text, shown)
    version = data.get("version")
    if version != 1:
        raise _Where(shown, _line_of(text, "version")).error(
            f"unsupported uv.lock version {version!r} (this tool reads version 1)"
        )
    base_dir = path.parent
    out: list[LockedRequirement] = []
    for where, pkg in _Packages(data, "package", text, shown):
        name = canonicalize_name(_string(pkg.get("name"), "package name", where, required=True) or "")
        ver = _version(pkg.get("version"), where, name)
        source = _table(pkg.get("source"), f"source of {name}", where)
        sdist = _table(pkg.get("sdist"), f"sdist of {name}", where)
        wheels = [
            _table(w, f"wheel of {name}", where)
            for w in _array(pkg.get("wheels"), f"wheels of {name}", where)
        ]
        hashes = _hash_list([sdist.get("hash"), *(w.get("hash") for w in wheels)])
        # resolution-markers only say which fork of the resolution a version belongs to; the
        # gate vets every locked version in the sandbox, so they are not carried as markers.
        common: dict[str, Any] = {
            "name": name,
            "version": ver,
            "hashes": hashes,
            "source_file": shown,
            "line": where.line,
        }
        if "registry" in source:
            out.append(
                LockedRequirement(
                    kind=SourceKind.INDEX,
                    url=str(source["registry"]),
                    specifier=f"=={ver}" if ver else "",
                    **common,
                )
            )
        elif "git" in source:
            out.append(LockedRequirement(kind=SourceKind.VCS, url=f"git+{source['git']}", **common))
        elif "url" in source:
            out.append(LockedRequirement(kind=SourceKind.URL, url=str(source["url"]), **common))
        elif "path" in source:
            local = _under(base_dir, str(source["path"]))
            kind = SourceKind.LOCAL if _is_archive(local.name) else SourceKind.DIRECTORY
            out.append(LockedRequirement(kind=kind, path=str(local), **common))
        elif any(k in source for k in ("editable", "virtual", "directory")):
            rel = source.get("editable") or source.get("virtual") or source.get("directory")
            out.append(
                LockedRequirement(
                    kind=SourceKind.DIRECTORY,
                    path=str(_under(base_dir, str(rel))),
                    editable="editable" in source,
                    **common,
                )
            )
        else:
            raise where.error(f"package {name} has no source uv knows ({sorted(source)})")
    return out


def parse_poetry_lock(text: str, path: Path, *, display: str | None = None) -> list[LockedRequirement]:
    """Every ``[[package]]`` of a poetry.lock (lock-version 1.x and 2.x) with its files' hashes."""
    shown = display if display is not None else str(path)
    data = _load_toml(text, shown)
    meta = _table(data.get("metadata"), "[metadata]", _Where(shown, _line_of(text, "[metadata]")))
    lock_version = str(meta.get("lock-version", ""))
    if lock_version and lock_version.split(".")[0] not in ("1", "2"):
        raise _Where(shown, _line_of(text, "lock-version")).error(
            f"unsupported poetry.lock lock-version {lock_version!r} (this tool reads 1.x and 2.x)"
        )
    legacy_files = _table(meta.get("files"), "[metadata.files]", _Where(shown, 0))  # lock-version 1.1
    base_dir = path.parent
    out: list[LockedRequirement] = []
    for where, pkg in _Packages(data, "package", text, shown):
        raw_name = _string(pkg.get("name"), "package name", where, required=True) or ""
        name = canonicalize_name(raw_name)
        ver = _version(pkg.get("version"), where, name)
        files = pkg.get("files")
        if files is None:
            files = legacy_files.get(raw_name, legacy_files.get(name, []))
        hashes = _hash_list(
            [_table(f, f"file of {name}", where).get("hash") for f in _array(files, "files", where)]
        )
        raw_groups = pkg.get("groups")
        if raw_groups is None and isinstance(pkg.get("category"), str):
            raw_groups = [pkg["category"]]
        groups = tuple(str(g) for g in _array(raw_groups, f"groups of {name}", where))
        markers_value = pkg.get("markers", "")
        if isinstance(markers_value, dict):  # Poetry 2: a marker per group
            markers = " or ".join(sorted({f"({m})" for m in markers_value.values() if m}))
        else:
            markers = str(markers_value or "")
        source = _table(pkg.get("source"), f"source of {name}", where)
        stype = str(source.get("type", ""))
        common: dict[str, Any] = {
            "name": name,
            "version": ver,
            "hashes": hashes,
            "markers": markers,
            "groups": groups,
            "source_file": shown,
            "line": where.line,
        }
        if stype in ("", "legacy"):
            out.append(
                LockedRequirement(
                    kind=SourceKind.INDEX,
                    url=source.get("url") or None,
                    specifier=f"=={ver}" if ver else "",
                    **common,
                )
            )
        elif stype == "git":
            out.append(LockedRequirement(kind=SourceKind.VCS, url=f"git+{source.get('url', '')}", **common))
        elif stype == "url":
            out.append(LockedRequirement(kind=SourceKind.URL, url=str(source.get("url", "")), **common))
        elif stype in ("file", "directory"):
            local = _under(base_dir, str(source.get("url", "")))
            kind = SourceKind.LOCAL if stype == "file" and _is_archive(local.name) else SourceKind.DIRECTORY
            out.append(
                LockedRequirement(kind=kind, path=str(local), editable=bool(pkg.get("develop")), **common)
            )
        else:
            raise where.error(f"package {name} has an unknown source type {stype!r}")
    return out


def parse_pylock(text: str, path: Path, *, display: str | None = None) -> list[LockedRequirement]:
    """Every ``[[packages]]`` of a PEP 751 ``pylock.toml`` (lock-version 1.x)."""
    shown = display if display is not None else str(path)
    data = _load_toml(text, shown)
    version_where = _Where(shown, _line_of(text, "lock-version"))
    lock_version = _string(data.get("lock-version"), "lock-version", version_where, required=True) or ""
    if lock_version.split(".")[0] != "1":
        raise version_where.error(f"unsupported pylock lock-version {lock_version!r} (this tool reads 1.x)")
    base_dir = path.parent
    out: list[LockedRequirement] = []
    for where, pkg in _Packages(data, "packages", text, shown):
        name = canonicalize_name(_string(pkg.get("name"), "package name", where, required=True) or "")
        ver = _version(pkg.get("version"), where, name)
        marker = _string(pkg.get("marker"), f"marker of {name}", where) or ""
        sdist = _table(pkg.get("sdist"), f"sdist of {name}", where)
        wheels = [
            _table(w, f"wheel of {name}", where)
            for w in _array(pkg.get("wheels"), f"wheels of {name}", where)
        ]
        archive = _table(pkg.get("archive"), f"archive of {name}", where)
        hashes: list[str | None] = []
        for item in (sdist, archive, *wheels):
            for algo, digest in _table(item.get("hashes"), f"hashes of {name}", where).items():
                hashes.append(f"{algo}:{digest}")
        common: dict[str, Any] = {
            "name": name,
            "version": ver,
            "hashes": _hash_list(hashes),
            "markers": marker,
            "source_file": shown,
            "line": where.line,
        }
        if "vcs" in pkg:
            vcs = _table(pkg["vcs"], f"vcs of {name}", where)
            out.append(
                LockedRequirement(
                    kind=SourceKind.VCS,
                    url=f"{vcs.get('type', 'git')}+{vcs.get('url') or vcs.get('path')}",
                    **common,
                )
            )
        elif "directory" in pkg:
            d = _table(pkg["directory"], f"directory of {name}", where)
            local = _under(base_dir, str(d.get("path", ".")))
            out.append(
                LockedRequirement(
                    kind=SourceKind.DIRECTORY, path=str(local), editable=bool(d.get("editable")), **common
                )
            )
        elif archive:
            if archive.get("path"):
                local = _under(base_dir, str(archive["path"]))
                out.append(LockedRequirement(kind=SourceKind.LOCAL, path=str(local), **common))
            else:
                out.append(LockedRequirement(kind=SourceKind.URL, url=str(archive.get("url", "")), **common))
        elif sdist or wheels:
            index = _string(pkg.get("index"), f"index of {name}", where)
            out.append(
                LockedRequirement(
                    kind=SourceKind.INDEX, url=index, specifier=f"=={ver}" if ver else "", **common
                )
            )
        else:
            raise where.error(f"package {name} names no source (sdist, wheels, archive, vcs or directory)")
    return out
