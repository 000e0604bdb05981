"""Resolve a user's spec to a directory of staged distribution files, executing nothing.

Flow: wheels come from the host's pip in wheel-only mode (``--only-binary=:all:``
for the target interpreter, under the build guard of :mod:`sandbox.fetch.pip`).
When pip finds no wheel for a requirement, its sdist is fetched from the index
as a plain file (hash checked), its *static* metadata is read in memory, and a
metadata-only stub wheel carrying those dependencies is handed to pip so its
resolver can go on; afterwards the stub is swapped for the real sdist. sdists
are built later, inside the sandbox, so their build requirements are staged too.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, NormalizedName, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from sandbox.errors import FetchError, IndexUnavailable, InputError
from sandbox.fetch.archive import inspect_sdist, inspect_wheel
from sandbox.fetch.index import (
    IndexClient,
    IndexConfig,
    IndexFile,
    allowed_versions,
    best_first,
    load_config,
    load_constraints,
    redact,
    yanked_allowed,
)
from sandbox.fetch.metadata import (
    StaticMetadata,
    check_requirement,
    marker_applies,
    read_static_metadata,
    write_stub_wheel,
)
from sandbox.fetch.pip import Deadline, PipResult, PipRunner, Unsatisfied, unsatisfied
from sandbox.fetch.spec import Spec, SpecKind, parse_spec
from sandbox.fetch.target import TargetEnv
from sandbox.models import Artifact, ArtifactKind, ArtifactRole, Frozen

log = logging.getLogger(__name__)

MAX_ROUNDS = 20  # pip runs per resolution (each adds a stub or target-only deps)
MAX_BUILD_DEPTH = 3  # build requirements of build requirements of …
MAX_SDIST_TRIES = 3  # sdists downloaded per requirement before giving up
_ROLE_ORDER = {
    ArtifactRole.CANDIDATE: 0,
    ArtifactRole.DEPENDENCY: 1,
    ArtifactRole.BUILD: 2,
    ArtifactRole.KIT: 3,
}
# What a developer's venv has when they run a legacy setup.py (pip without build
# isolation): staged for sdists without [build-system], installed before the candidate.
KIT = ("wheel", "requests", "six")
_WHEEL_TOKEN = re.compile(r"[\w.+!-]+\.whl")
_BARE_NAME = re.compile(r"[A-Za-z0-9._-]+")


class StagedSet(Frozen):
    """The files staged for one vet run, and how to install the candidate from them."""

    directory: str
    artifacts: tuple[Artifact, ...]
    candidate: Artifact
    install_target: str
    requested: str
    notes: tuple[str, ...] = ()
    kit: tuple[str, ...] = ()  # requirements to install before the candidate (legacy setup.py)
    missing: tuple[str, ...] = ()  # declared dependencies nobody could stage, and why
    no_deps: bool = False  # install the candidate with --no-deps (dependencies missing)


# --------------------------------------------------------------------------- internal records


@dataclass
class _Sdist:
    path: Path
    sha256: str
    source: str
    meta: StaticMetadata


@dataclass
class _Dist:
    """One resolved distribution file in the work directory."""

    path: Path
    name: NormalizedName
    version: str
    kind: ArtifactKind
    source: str
    requires: tuple[str, ...] | None  # None: unknown
    sdist: _Sdist | None = None

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class _Root:
    """A top-level requirement handed to pip (a requirement string or a file path)."""

    pip: str
    name: NormalizedName
    extras: frozenset[str] = frozenset()


@dataclass
class _Resolution:
    dists: list[_Dist] = field(default_factory=list)

    def by_name(self) -> dict[NormalizedName, list[_Dist]]:
        out: dict[NormalizedName, list[_Dist]] = {}
        for dist in self.dists:
            out.setdefault(dist.name, []).append(dist)
        return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


def _lenient(req: str) -> Requirement | None:
    try:
        return Requirement(req)
    except InvalidRequirement:
        return None


def _root_for(req: Requirement) -> _Root:
    extras = sorted(canonicalize_name(e) for e in req.extras)
    suffix = f"[{','.join(extras)}]" if extras else ""
    name = canonicalize_name(req.name)
    return _Root(pip=f"{name}{suffix}{req.specifier}", name=name, extras=frozenset(extras))


def _python_ok(requires_python: str | None, version: str) -> bool:
    if not requires_python:
        return True
    try:
        return SpecifierSet(requires_python).contains(version, prereleases=True)
    except InvalidSpecifier:
        return True


# --------------------------------------------------------------------------- the fetcher


class _Fetcher:
    def __init__(self, spec: Spec, target: TargetEnv, work: Path, pip: PipRunner, deadline: Deadline) -> None:
        self.spec = spec
        self.target = target
        self.work = work
        self.pip = pip
        self.deadline = deadline
        self.notes: list[str] = []
        self._config: IndexConfig | None = None
        self._index: IndexClient | None = None
        self._constraints: dict[NormalizedName, SpecifierSet] | None = None
        self._sdists: dict[tuple[NormalizedName, str], _Sdist] = {}
        self._seen_versions: dict[NormalizedName, str] = {}
        self.kit: tuple[str, ...] = ()
        self.missing: list[str] = []
        self.fell_back = False  # dependencies could not all be staged: install with --no-deps

    # ----------------------------------------------------------------- index access (lazy)

    @property
    def config(self) -> IndexConfig:
        if self._config is None:
            self._config = load_config(self.pip)
        return self._config

    @property
    def index(self) -> IndexClient:
        if self._index is None:
            self._index = IndexClient(self.config, self.deadline)
        return self._index

    @property
    def constraints(self) -> dict[NormalizedName, SpecifierSet]:
        if self._constraints is None:
            self._constraints = load_constraints(self.config, self.notes)
        return self._constraints

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def _mkdtemp(self, prefix: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.work))

    # ----------------------------------------------------------------- entry point

    def run(self) -> tuple[_Dist, list[tuple[_Dist, ArtifactRole]]]:
        spec = self.spec
        preset: dict[str, tuple[_Sdist, str]] = {}
        if spec.kind is SpecKind.REQUIREMENT:
            self._check_spec_marker()
            roots = [
                _Root(pip=spec.requirement(), name=NormalizedName(spec.name), extras=frozenset(spec.extras))
            ]
        elif spec.kind is SpecKind.WHEEL:
            roots = [self._local_wheel_root()]
        else:
            root, sdist, stub = self._local_sdist_root()
            roots = [root]
            preset[stub.name] = (sdist, _sha256(stub))
        label = spec.raw.strip()
        # The index listing for the newer-sdist check does not depend on pip's answer:
        # fetch it (pip config + HTTP, ~0.4 s) while pip resolves.
        listing_job = None
        pool = None
        if spec.kind is SpecKind.REQUIREMENT and spec.pinned_version is None:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pkgsandbox-index")
            listing_job = pool.submit(lambda: self.index.listing(spec.name))
        try:
            try:
                resolution = self.resolve(roots, label=label, preset=preset)
            except (FetchError, InputError) as exc:
                if not spec.is_file:
                    raise
                # A local file whose dependencies cannot all be staged (no Linux wheel …):
                # stage it with what is available; it installs with --no-deps.
                resolution = self._best_effort(preset, exc)
            candidate = self._candidate(resolution)
            self._listing_job = listing_job
            newer = self._newer_sdist_release(candidate) if spec.kind is SpecKind.REQUIREMENT else None
        finally:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        if newer is not None:
            pinned = f"{spec.name}{spec.extras_suffix()}=={newer}"
            try:
                resolution = self.resolve([_Root(pinned, roots[0].name, roots[0].extras)], label=pinned)
            except (InputError, IndexUnavailable) as exc:
                self._note(
                    f"{spec.name} {newer} (sdist only) could not be staged ({exc.message}); "
                    f"staged {candidate.version} instead"
                )
            else:
                self._note(
                    f"{spec.name} {newer} is only published as an sdist for {self.target.describe()}; "
                    f"staged it rather than the wheel of {candidate.version}"
                )
                candidate = self._candidate(resolution)
        if spec.is_file:
            # Stage the user's own file, not pip's copy of it (or of its stub).
            local = Path(spec.path)
            candidate.path = local
            candidate.source = str(local)
        staged = [
            (d, ArtifactRole.CANDIDATE if d is candidate else ArtifactRole.DEPENDENCY)
            for d in resolution.dists
        ]
        staged += [(d, ArtifactRole.BUILD) for d in self._build_requirements(resolution.dists)]
        if candidate.sdist is not None and candidate.sdist.meta.legacy:
            staged += [(d, ArtifactRole.KIT) for d in self._kit()]
        self._python_note()
        return candidate, staged

    def _kit(self) -> list[_Dist]:
        """The developer packages for a legacy setup.py (best effort: a note if not)."""
        try:
            resolution = self.resolve([_Root(r, NormalizedName(r)) for r in KIT], label="developer packages")
        except (FetchError, InputError) as exc:
            self._note(f"developer packages ({', '.join(KIT)}) could not be staged: {exc.message}")
            return []
        self.kit = KIT
        return list(resolution.dists)

    def _best_effort(
        self, preset: dict[str, tuple[_Sdist, str]], exc: FetchError | InputError
    ) -> _Resolution:
        """The local candidate alone plus each declared dependency that can be staged;
        the others are recorded in :attr:`missing` (the install then uses --no-deps)."""
        path = Path(self.spec.path)
        if self.spec.kind is SpecKind.WHEEL:
            wheel = inspect_wheel(path)
            cand = _Dist(
                path, wheel.name, str(wheel.version), ArtifactKind.WHEEL, str(path), wheel.requires_dist
            )
        else:
            sdist = next(iter(preset.values()))[0]
            meta = sdist.meta
            cand = _Dist(
                path,
                meta.name,
                str(Version(meta.version)),
                ArtifactKind.SDIST,
                str(path),
                meta.requires_dist,
                sdist,
            )
        resolution = _Resolution([cand])
        self.fell_back = True
        env = self.target.markers()
        for text in cand.requires or ():
            req = _lenient(text)
            if req is None or req.url or not marker_applies(req.marker, env, self.spec.extras):
                continue
            root = _root_for(req)
            try:
                part = self.resolve([root], label=f"dependency {root.pip} of {path.name}")
            except (FetchError, InputError) as dep_exc:
                self.missing.append(f"{root.pip}: {dep_exc.message[:200]}")
                continue
            known = {d.filename for d in resolution.dists}
            resolution.dists += [d for d in part.dists if d.filename not in known]
        self._note(
            f"not every dependency of {path.name} could be staged ({exc.message[:200]}); "
            f"missing: {'; '.join(self.missing) or 'none'}; the candidate is installed with --no-deps"
        )
        return resolution

    def _check_spec_marker(self) -> None:
        if not self.spec.marker:
            return
        try:
            applies = Marker(self.spec.marker).evaluate({**self.target.markers(), "extra": ""})
        except InvalidMarker as exc:
            raise InputError(f"invalid marker in {self.spec.raw!r}: {exc}") from None
        if not applies:
            raise InputError(
                f"the marker of {self.spec.raw!r} excludes the sandbox ({self.target.describe()}): "
                "nothing to vet"
            )

    def _local_wheel_root(self) -> _Root:
        path = Path(self.spec.path)
        wheel = inspect_wheel(path)
        if not wheel.tags & self.target.tags():
            tags = ", ".join(sorted(str(t) for t in wheel.tags))
            raise InputError(
                f"{path.name} ({tags}) does not install on the sandbox's {self.target.describe()}"
            )
        if not _python_ok(wheel.requires_python, self.target.full_version):
            raise InputError(
                f"{path.name} requires Python {wheel.requires_python}; "
                f"the sandbox has {self.target.python_version}"
            )
        for req in wheel.requires_dist:
            check_requirement(req, path.name)
        return _Root(
            pip=f"{path}{self.spec.extras_suffix()}", name=wheel.name, extras=frozenset(self.spec.extras)
        )

    def _local_sdist_root(self) -> tuple[_Root, _Sdist, Path]:
        path = Path(self.spec.path)
        meta = read_static_metadata(inspect_sdist(path))
        if not _python_ok(meta.requires_python, self.target.full_version):
            raise InputError(
                f"{path.name} requires Python {meta.requires_python}; "
                f"the sandbox has {self.target.python_version}"
            )
        self._extend_notes(meta.notes)
        sdist = _Sdist(path=path, sha256=_sha256(path), source=str(path), meta=meta)
        # The root is the stub's *path*, not NAME==VERSION: a wheel of the same
        # name and version on the index must not replace the user's file.
        stub = write_stub_wheel(meta, self._mkdtemp("local-stub-"))
        root = _Root(
            pip=f"{stub}{self.spec.extras_suffix()}", name=meta.name, extras=frozenset(self.spec.extras)
        )
        return root, sdist, stub

    def _extend_notes(self, notes: Iterable[str]) -> None:
        for note in notes:
            self._note(note)

    def _candidate(self, resolution: _Resolution) -> _Dist:
        name = canonicalize_name(self.spec.name)
        matches = resolution.by_name().get(name, [])
        if self.spec.kind is SpecKind.SDIST:
            matches = [d for d in matches if d.kind is ArtifactKind.SDIST] or matches
        if len(matches) != 1:
            raise FetchError(
                f"pip's resolution of {self.spec.raw!r} did not yield exactly one {name} distribution"
            )
        return matches[0]

    # ----------------------------------------------------------------- resolution

    def resolve(
        self, roots: Sequence[_Root], *, label: str, preset: dict[str, tuple[_Sdist, str]] | None = None
    ) -> _Resolution:
        """Wheel-only pip resolution of *roots*, with sdists standing in (as stubs) where needed.

        *preset* maps stub filenames already among the roots to their sdist and
        the stub's sha256.
        """
        stubdir = self._mkdtemp("stubs-")
        stubs: dict[str, tuple[_Sdist, str]] = dict(preset or {})  # stub filename -> (sdist, stub sha256)
        extra: dict[str, _Root] = {}
        tried: set[str] = set()
        for _ in range(MAX_ROUNDS):
            out = self._mkdtemp("download-")
            requirements = [r.pip for r in roots] + [r.pip for r in extra.values()]
            result = self.pip.download(
                requirements, self.target, out, find_links=[stubdir], what=f"resolving {label}"
            )
            self._remember_versions(result)
            if not result.ok:
                self._add_stubs(result, roots, stubdir, stubs, tried, label)
                continue
            resolution = self._collect(out, stubs)
            missing = [
                m
                for m in self._missing_for_target(resolution, [*roots, *extra.values()])
                if m.pip not in extra
            ]
            if not missing:
                return resolution
            for root in missing:
                extra[root.pip] = root
        raise FetchError(f"resolving {label} did not settle after {MAX_ROUNDS} pip runs")

    def _remember_versions(self, result: PipResult) -> None:
        # Only for messages ("dependency 'x' of bar 1.0"): pip names the
        # requester without its version, its progress output has the wheel.
        for token in _WHEEL_TOKEN.findall(result.stdout):
            try:
                name, version, _, _ = parse_wheel_filename(token.rsplit("/", 1)[-1])
            except (InvalidWheelFilename, InvalidVersion):
                continue
            self._seen_versions[name] = str(version)

    def _add_stubs(
        self,
        result: PipResult,
        roots: Sequence[_Root],
        stubdir: Path,
        stubs: dict[str, tuple[_Sdist, str]],
        tried: set[str],
        label: str,
    ) -> None:
        problems = unsatisfied(result)
        if not problems:
            raise FetchError(f"pip could not resolve {label}: {result.summary()}")
        stubbed = {(s.meta.name, str(Version(s.meta.version))) for s, _ in stubs.values()}
        first_error: InputError | None = None
        progressed = False
        for problem in problems:
            key = str(problem.requirement)
            if key in tried:
                continue
            tried.add(key)
            try:
                sdist = self._sdist_for(problem, roots, stubbed, result.summary())
            except InputError as exc:
                first_error = first_error or exc
                continue
            stub = self._stub_for(sdist, stubdir)
            stubs[stub.name] = (sdist, _sha256(stub))
            progressed = True
        if progressed:
            return
        if result.conflict():
            raise FetchError(f"conflicting dependencies while resolving {label}: {result.conflict()}")
        if first_error is not None:
            raise first_error
        problem = problems[0]
        raise FetchError(f"cannot stage {self._describe(problem, roots)}: {result.summary()}")

    def _stub_for(self, sdist: _Sdist, directory: Path) -> Path:
        return write_stub_wheel(sdist.meta, directory)

    def _describe(self, problem: Unsatisfied, roots: Sequence[_Root]) -> str:
        req = problem.requirement
        shown = str(req).split(";", 1)[0].strip()
        if self._is_root(problem, roots):
            return f"'{shown}'"
        requester = problem.requester or "another package"
        if problem.requester and _BARE_NAME.fullmatch(requester):
            version = self._seen_versions.get(canonicalize_name(requester))
            if version:
                requester = f"{requester} {version}"
        return f"dependency '{shown}' of {requester}"

    @staticmethod
    def _is_root(problem: Unsatisfied, roots: Sequence[_Root]) -> bool:
        name = canonicalize_name(problem.requirement.name)
        return problem.requester is None and any(r.name == name for r in roots)

    def _sdist_for(
        self,
        problem: Unsatisfied,
        roots: Sequence[_Root],
        stubbed: set[tuple[NormalizedName, str]],
        pip_summary: str,
    ) -> _Sdist:
        """The best sdist on the index for a requirement pip found no wheel for (or an error)."""
        req = problem.requirement
        name = canonicalize_name(req.name)
        what = self._describe(problem, roots)
        is_root = self._is_root(problem, roots)
        listing = self.index.listing(name)
        where = self.config.describe()
        if not listing.exists:
            if listing.errors:  # an outage, not an unknown package: exit 3, not 2
                location, reason = listing.errors[0]
                raise IndexUnavailable(f"cannot read the index {location} (looking for {name}): {reason}")
            if is_root:
                raise InputError(f"no such package '{req.name}' on the index ({where})")
            raise FetchError(f"cannot stage {what}: no such package on the index ({where})")
        for location, reason in listing.errors:
            self._note(f"index {location} could not be read while looking for {name}: {reason}")
        versions = allowed_versions(
            req,
            (f.version for f in listing.files),
            pre=self.config.pre,
            constraint=self.constraints.get(name),
        )
        if not versions:
            shown = ", ".join(str(v) for v in listing.versions()[-8:]) or "none"
            if is_root:
                raise InputError(
                    f"package '{req.name}' has no version matching '{req.specifier}' on the index "
                    f"(available: {shown})"
                )
            raise FetchError(f"cannot stage {what}: no version on the index matches (available: {shown})")
        tags = self.target.tags()
        wheels = [
            f
            for f in best_first(listing.files)
            if f.kind == "wheel"
            and f.version in versions
            and not f.yanked
            and f.python_ok(self.target.full_version)
            and f.tags & tags
        ]
        if wheels:
            # pip should have taken this wheel: a network hiccup or a conflict,
            # not a missing wheel. Staging the sdist instead would vet the wrong thing.
            raise FetchError(
                f"cannot stage {what}: the index lists {wheels[0].filename} but pip did not use it "
                f"({pip_summary})"
            )
        sdists = [
            f
            for f in best_first(listing.files)
            if f.kind == "sdist"
            and f.version in versions
            and (not f.yanked or yanked_allowed(req))
            and (name, str(f.version)) not in stubbed
        ]
        fitting = [f for f in sdists if f.python_ok(self.target.full_version)]
        if not fitting:
            if sdists:
                reason = (
                    f"no wheel for {self.target.describe()}, and its sdists require another Python "
                    f"({sdists[0].filename} requires {sdists[0].requires_python})"
                )
            else:
                reason = f"no wheel for {self.target.describe()} and no sdist on the index"
            raise FetchError(f"cannot stage {what}: {reason}")
        for file in fitting[:MAX_SDIST_TRIES]:
            sdist = self._fetch_sdist(file, name)
            if _python_ok(sdist.meta.requires_python, self.target.full_version):
                return sdist
            self._note(f"{file.filename} requires Python {sdist.meta.requires_python}; skipped")
        raise FetchError(
            f"cannot stage {what}: no sdist on the index supports Python {self.target.python_version}"
        )

    def _fetch_sdist(self, file: IndexFile, name: NormalizedName) -> _Sdist:
        key = (name, str(file.version))
        if key in self._sdists:
            return self._sdists[key]
        path, sha256 = self.index.download(file, self._mkdtemp("sdist-"))
        if file.hash("sha256") is None and not file.url.startswith("file:"):
            self._note(f"{file.filename}: the index gave no sha256; the hash was computed on download")
        meta = read_static_metadata(inspect_sdist(path))
        if meta.name != name or Version(meta.version) != file.version:
            raise FetchError(
                f"{file.filename} from {file.source} contains {meta.display_name} {meta.version}, "
                f"not {name} {file.version}"
            )
        self._extend_notes(meta.notes)
        sdist = _Sdist(path=path, sha256=sha256, source=redact(file.url), meta=meta)
        self._sdists[key] = sdist
        return sdist

    def _collect(self, out: Path, stubs: dict[str, tuple[_Sdist, str]]) -> _Resolution:
        """What pip downloaded, with stubs swapped back for their sdists."""
        resolution = _Resolution()
        for entry in sorted(out.iterdir()):
            stub = stubs.get(entry.name)
            if stub is not None and _sha256(entry) == stub[1]:
                sdist = stub[0]
                resolution.dists.append(
                    _Dist(
                        path=sdist.path,
                        name=sdist.meta.name,
                        version=str(Version(sdist.meta.version)),
                        kind=ArtifactKind.SDIST,
                        source=sdist.source,
                        requires=sdist.meta.requires_dist,
                        sdist=sdist,
                    )
                )
                continue
            if not entry.name.endswith(".whl"):
                raise FetchError(f"pip downloaded {entry.name}, which is not a wheel")
            wheel = inspect_wheel(entry)
            resolution.dists.append(
                _Dist(
                    path=entry,
                    name=wheel.name,
                    version=str(wheel.version),
                    kind=ArtifactKind.WHEEL,
                    source="pip",
                    requires=wheel.requires_dist,
                )
            )
        return resolution

    def _missing_for_target(self, resolution: _Resolution, roots: Sequence[_Root]) -> list[_Root]:
        """Dependencies the *target* needs that pip left out.

        pip evaluates environment markers for the interpreter it runs on, not
        for ``--python-version``; a dependency whose marker is true only for
        the target is added as a top-level requirement for the next run.
        """
        env = self.target.markers()
        by_name = resolution.by_name()
        missing: dict[str, _Root] = {}
        queue = [(r.name, r.extras) for r in roots]
        seen: set[tuple[NormalizedName, frozenset[str]]] = set()
        while queue:
            name, extras = queue.pop()
            if (name, extras) in seen:
                continue
            seen.add((name, extras))
            for dist in by_name.get(name, []):
                for text in dist.requires or ():
                    req = _lenient(text)
                    if req is None or req.url or not marker_applies(req.marker, env, extras):
                        continue
                    dep = canonicalize_name(req.name)
                    dep_extras = frozenset(canonicalize_name(e) for e in req.extras)
                    if dep in by_name:
                        queue.append((dep, dep_extras))
                    else:
                        root = _root_for(req)
                        missing.setdefault(root.pip, root)
        return list(missing.values())

    # ----------------------------------------------------------------- build requirements

    def _build_requirements(self, dists: Sequence[_Dist]) -> list[_Dist]:
        """Wheels (and sdists) needed to build every staged sdist inside the sandbox."""
        env = {**self.target.markers(), "extra": ""}
        out: list[_Dist] = []
        done: set[str] = set()
        resolved: dict[tuple[str, ...], _Resolution] = {}
        pending = [d for d in dists if d.sdist is not None]
        for _ in range(MAX_BUILD_DEPTH):
            next_pending: list[_Dist] = []
            for dist in pending:
                if dist.filename in done or dist.sdist is None:
                    continue
                done.add(dist.filename)
                reqs = []
                for text in dist.sdist.meta.build_requires:
                    req = check_requirement(text, f"build requirements of {dist.filename}")
                    if req.marker is None or req.marker.evaluate(env):
                        reqs.append(_root_for(req))
                if not reqs:
                    continue
                key = tuple(sorted(r.pip for r in reqs))
                if key not in resolved:
                    resolved[key] = self.resolve(reqs, label=f"build requirements of {dist.filename}")
                for build in resolved[key].dists:
                    out.append(build)
                    if build.sdist is not None:
                        next_pending.append(build)
            pending = next_pending
        left = sorted({d.filename for d in pending if d.filename not in done})
        if left:
            self._note(f"build requirements of {', '.join(left)} were not staged (nested too deeply)")
        return out

    # ----------------------------------------------------------------- index check for newer sdists

    def _newer_sdist_release(self, candidate: _Dist) -> Version | None:
        """A newer release than pip's wheel choice that exists only as an sdist.

        pip in wheel-only mode silently picks an older release that has a wheel;
        ``pip install`` in the sandbox would pick the newest release and build
        it, so that is what must be vetted.
        """
        if self.spec.pinned_version is not None or candidate.kind is ArtifactKind.SDIST:
            return None
        try:
            job = getattr(self, "_listing_job", None)
            listing = job.result() if job is not None else self.index.listing(self.spec.name)
        except (FetchError, IndexUnavailable) as exc:
            self._note(f"could not check the index for a newer sdist-only release: {exc.message}")
            return None
        for location, reason in listing.errors:
            self._note(f"index {location} could not be read while checking for newer releases: {reason}")
        name = NormalizedName(self.spec.name)
        req = Requirement(self.spec.requirement())
        versions = allowed_versions(
            req,
            (f.version for f in listing.files if not f.yanked),
            pre=self.config.pre,
            constraint=self.constraints.get(name),
        )
        tags = self.target.tags()
        usable = {
            f.version
            for f in listing.files
            if f.version in versions
            and not f.yanked
            and f.python_ok(self.target.full_version)
            and (f.kind == "sdist" or f.tags & tags)
        }
        if not usable or max(usable) <= Version(candidate.version):
            return None
        best = max(usable)
        has_wheel = any(f.version == best and f.kind == "wheel" and f.tags & tags for f in listing.files)
        return None if has_wheel else best

    def _python_note(self) -> None:
        try:
            host = self.pip.python_version()
        except (FetchError, IndexUnavailable):
            return
        if host and host != self.target.major_minor:
            self._note(
                f"pip runs on Python {host}: environment markers were evaluated by pip for {host} "
                f"and re-checked for the target's {self.target.major_minor}"
            )


# --------------------------------------------------------------------------- staging


def _prepare_dest(dest: Path) -> bool:
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


def _copy(source: Path, dest: Path) -> tuple[str, int]:
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


def _stage(dest: Path, entries: Sequence[tuple[_Dist, ArtifactRole]]) -> list[Artifact]:
    chosen: dict[str, tuple[_Dist, ArtifactRole]] = {}
    for dist, role in entries:
        previous = chosen.get(dist.filename)
        if previous is not None:
            # One file per name in the staging dir: the same name must mean the same bytes.
            if previous[0].path != dist.path and _sha256(previous[0].path) != _sha256(dist.path):
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
        sha256, size = _copy(dist.path, dest / dist.filename)
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


def fetch(
    spec: str,
    target: TargetEnv,
    dest: Path,
    *,
    timeout: float = 300.0,
    pip: Sequence[str] | None = None,
) -> StagedSet:
    """Stage *spec* and everything needed to install it in the sandbox into *dest*.

    *spec* is a requirement (``NAME``, ``NAME==VERSION``, any PEP 508
    requirement) or a local wheel/sdist path; *dest* must be empty or absent.
    Wheels come from the host's pip (``pip`` is its command prefix, default
    ``[sys.executable, "-m", "pip"]``; the user's pip configuration applies) in
    wheel-only mode under a build guard; sdists are fetched as files with the
    index's hash checked and only their static metadata read. Nothing from a
    candidate is executed, imported or extracted on the host. *timeout* bounds
    the whole fetch (every pip run and HTTP request).

    Raises :class:`~sandbox.errors.InputError` for a bad spec, an unknown
    package or version, or an invalid archive, and
    :class:`~sandbox.errors.FetchError` when something cannot be staged.
    """
    parsed = parse_spec(spec)
    deadline = Deadline(timeout)
    runner = PipRunner(pip, deadline)
    dest = Path(os.path.abspath(dest))
    created = _prepare_dest(dest)
    work = Path(tempfile.mkdtemp(prefix="pkgsandbox-fetch-"))
    try:
        fetcher = _Fetcher(parsed, target, work, runner, deadline)
        candidate, entries = fetcher.run()
        artifacts = _stage(dest, entries)
    except BaseException:
        # Leave nothing half-staged behind.
        for entry in list(dest.iterdir()) if dest.is_dir() else []:
            if entry.is_file() or entry.is_symlink():
                entry.unlink()
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    staged_candidate = artifacts[0]
    if staged_candidate.role is not ArtifactRole.CANDIDATE or staged_candidate.filename != candidate.filename:
        raise FetchError(f"internal error: the candidate {candidate.filename} was not staged first")
    return StagedSet(
        directory=str(dest),
        artifacts=tuple(artifacts),
        candidate=staged_candidate,
        install_target=f"{staged_candidate.filename}{parsed.extras_suffix()}",
        requested=spec,
        notes=tuple(fetcher.notes),
        kit=fetcher.kit,
        missing=tuple(fetcher.missing),
        no_deps=fetcher.fell_back,
    )
