"""Records of resolved distribution files, and copying them into the staging directory.

Nothing here opens an archive: only hashes, copies, names and versions.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from sandbox.errors import FetchError, InputError
from sandbox.fetch.metadata import StaticMetadata
from sandbox.models import Artifact, ArtifactKind, ArtifactRole

_ROLE_ORDER = {
    ArtifactRole.CANDIDATE: 0,
    ArtifactRole.DEPENDENCY: 1,
    ArtifactRole.BUILD: 2,
    ArtifactRole.KIT: 3,
}


# --------------------------------------------------------------------------- internal records


@dataclass
class Sdist:
    path: Path
    sha256: str
    source: str
    meta: StaticMetadata


@dataclass
class Dist:
    """One resolved distribution file in the work directory."""

    path: Path
    name: NormalizedName
    version: str
    kind: ArtifactKind
    source: str
    requires: tuple[str, ...] | None  # None: unknown
    sdist: Sdist | None = None

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Root:
    """A top-level requirement handed to pip (a requirement string or a file path)."""

    pip: str
    name: NormalizedName
    extras: frozenset[str] = frozenset()


@dataclass
class Resolution:
    dists: list[Dist] = field(default_factory=list)

    def by_name(self) -> dict[NormalizedName, list[Dist]]:
        out: dict[NormalizedName, list[Dist]] = {}
        for dist in self.dists:
            out.setdefault(dist.name, []).append(dist)
        return out


def sha256_of(path: Path) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


def lenient(req: str) -> Requirement | None:
    """*req* parsed, or None when it is not a valid PEP 508 requirement."""
    try:
        return Requirement(req)
    except InvalidRequirement:
        return None


def root_for(req: Requirement) -> Root:
    """The pip root for a requirement (name canonicalised, markers and URL dropped)."""
    extras = sorted(canonicalize_name(e) for e in req.extras)
    suffix = f"[{','.join(extras)}]" if extras else ""
    name = canonicalize_name(req.name)
    return Root(pip=f"{name}{suffix}{req.specifier}", name=name, extras=frozenset(extras))


def python_ok(requires_python: str | None, version: str) -> bool:
    """Whether *version* satisfies Requires-Python (a missing or invalid one allows all)."""
    if not requires_python:
        return True
    try:
        return SpecifierSet(requires_python).contains(version, prereleases=True)
    except InvalidSpecifier:
        return True


# --------------------------------------------------------------------------- staging


def prepare_dest(dest: Path) -> bool:
    """Create or check the (empty) staging directory; True when it was created."""
    if dest.exists():
        if not dest.is_dir():
            raise InputError(f"staging directory {dest} is not a directory")
        if any(dest.iterdir()):
            raise InputError(f"staging directory {dest} is not empty")
        created = False
    else:
        dest.mkdir(parents=True)
        created = True
    # Bind-mounted read-only into the container, where another uid reads it.
    os.chmod(dest, 0o755)
    return created


def copy_file(source: Path, dest: Path) -> tuple[str, int]:
    """Copy *source* to *dest* via a temporary name; (sha256, size) of the bytes written."""
    partial = dest.with_name(f".{dest.name}.partial")
    h = hashlib.sha256()
    size = 0
    with open(source, "rb") as src, open(partial, "wb") as out:
        for chunk in iter(lambda: src.read(1024 * 1024), b""):
            out.write(chunk)
            h.update(chunk)
            size += len(chunk)
    os.chmod(partial, 0o644)
    os.replace(partial, dest)
    return h.hexdigest(), size


def stage(dest: Path, entries: Sequence[tuple[Dist, ArtifactRole]]) -> list[Artifact]:
    """Copy each distinct file into *dest* once (the top-ranked role wins); the artifacts, candidate first."""
    chosen: dict[str, tuple[Dist, ArtifactRole]] = {}
    for dist, role in entries:
        previous = chosen.get(dist.filename)
        if previous is not None:
            # One file per name in the staging dir: the same name must mean the same bytes.
            if previous[0].path != dist.path and sha256_of(previous[0].path) != sha256_of(dist.path):
                raise FetchError(f"two different files named {dist.filename} were resolved")
            if _ROLE_ORDER[role] >= _ROLE_ORDER[previous[1]]:
                continue
        chosen[dist.filename] = (dist, role)
    ordered = sorted(
        chosen.values(),
        key=lambda item: (_ROLE_ORDER[item[1]], item[0].name, Version(item[0].version), item[0].filename),
    )
    artifacts = []
    for dist, role in ordered:
        sha256, size = copy_file(dist.path, dest / dist.filename)
        if dist.sdist is not None and dist.sdist.sha256 != sha256:
            raise FetchError(f"{dist.filename} changed on disk after it was verified")
        artifacts.append(
            Artifact(
                name=dist.name,
                version=dist.version,
                filename=dist.filename,
                sha256=sha256,
                kind=dist.kind,
                role=role,
                size=size,
                source=dist.source,
            )
        )
    present = sorted(p.name for p in dest.iterdir())
    if present != sorted(a.filename for a in artifacts):
        raise FetchError(f"staging directory {dest} holds unexpected files: {present}")
    return artifacts
