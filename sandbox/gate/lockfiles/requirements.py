"""requirements.txt (pip's format): options, ``-r``/``-c`` includes, hashes, editables, env vars."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from sandbox.errors import InputError
from sandbox.gate.lockfiles._common import (
    _COMMENT,
    _ENV_VAR,
    _EXTRAS_SUFFIX,
    _GLOBAL_FLAGS,
    _GLOBAL_WITH_VALUE,
    _MAX_INCLUDE_DEPTH,
    _PER_REQ_WITH_VALUE,
    _URL,
    _VCS,
    Reader,
    _direct_reference,
    _extras_of,
    _from_pep508,
    _is_archive,
    _local_path,
    _Where,
    read_text,
)
from sandbox.gate.models import LockedRequirement, SourceKind

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
