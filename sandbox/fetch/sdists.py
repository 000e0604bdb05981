"""Index access and sdists fetched as plain files (hash checked, static metadata only).

:class:`SdistSource` is the index-facing half of the fetcher in :mod:`sandbox.fetch.core`:
it finds the sdist that stands in for a requirement pip found no wheel for, and
checks the index for a newer release published only as an sdist.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidWheelFilename, NormalizedName, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from sandbox.errors import FetchError, IndexUnavailable, InputError
from sandbox.fetch.archive import inspect_sdist
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
from sandbox.fetch.metadata import read_static_metadata
from sandbox.fetch.pip import Deadline, PipResult, PipRunner, Unsatisfied
from sandbox.fetch.spec import Spec
from sandbox.fetch.stage import Dist, Root, Sdist, python_ok
from sandbox.fetch.target import TargetEnv
from sandbox.models import ArtifactKind

MAX_SDIST_TRIES = 3  # sdists downloaded per requirement before giving up
_WHEEL_TOKEN = re.compile(r"[\w.+!-]+\.whl")
_BARE_NAME = re.compile(r"[A-Za-z0-9._-]+")


class SdistSource:
    """The fetcher's state, lazy index access, and the sdist look-ups."""

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
        self._sdists: dict[tuple[NormalizedName, str], Sdist] = {}
        self._seen_versions: dict[NormalizedName, str] = {}
        self.kit: tuple[str, ...] = ()
        self.kit_in_image = False
        self.missing: list[str] = []
        self.fell_back = False  # dependencies could not all be staged: install with --no-deps

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

    def _extend_notes(self, notes: Iterable[str]) -> None:
        for note in notes:
            self._note(note)

    def _remember_versions(self, result: PipResult) -> None:
        # Only for messages ("dependency 'x' of bar 1.0"): pip names the
        # requester without its version, its progress output has the wheel.
        for token in _WHEEL_TOKEN.findall(result.stdout):
            try:
                name, version, _, _ = parse_wheel_filename(token.rsplit("/", 1)[-1])
            except (InvalidWheelFilename, InvalidVersion):
                continue
            self._seen_versions[name] = str(version)

    def _describe(self, problem: Unsatisfied, roots: Sequence[Root]) -> str:
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
    def _is_root(problem: Unsatisfied, roots: Sequence[Root]) -> bool:
        name = canonicalize_name(problem.requirement.name)
        return problem.requester is None and any(r.name == name for r in roots)

    def _sdist_for(
        self,
        problem: Unsatisfied,
        roots: Sequence[Root],
        stubbed: set[tuple[NormalizedName, str]],
        pip_summary: str,
    ) -> Sdist:
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
            if python_ok(sdist.meta.requires_python, self.target.full_version):
                return sdist
            self._note(f"{file.filename} requires Python {sdist.meta.requires_python}; skipped")
        raise FetchError(
            f"cannot stage {what}: no sdist on the index supports Python {self.target.python_version}"
        )

    def _fetch_sdist(self, file: IndexFile, name: NormalizedName) -> Sdist:
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
        sdist = Sdist(path=path, sha256=sha256, source=redact(file.url), meta=meta)
        self._sdists[key] = sdist
        return sdist

    def _newer_sdist_release(self, candidate: Dist) -> Version | None:
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
