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

import logging
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging.markers import InvalidMarker, Marker
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from sandbox.errors import FetchError, IndexUnavailable, InputError
from sandbox.fetch.archive import inspect_sdist, inspect_wheel
from sandbox.fetch.metadata import (
    check_requirement,
    marker_applies,
    read_static_metadata,
    write_stub_wheel,
)
from sandbox.fetch.pip import Deadline, PipResult, PipRunner, unsatisfied
from sandbox.fetch.sdists import SdistSource
from sandbox.fetch.spec import SpecKind, parse_spec
from sandbox.fetch.stage import (
    Dist,
    Resolution,
    Root,
    Sdist,
    lenient,
    prepare_dest,
    python_ok,
    root_for,
    sha256_of,
    stage,
)
from sandbox.fetch.target import TargetEnv
from sandbox.models import Artifact, ArtifactKind, ArtifactRole, Frozen
from sandbox.tempdirs import owned_tempdir

log = logging.getLogger(__name__)

MAX_ROUNDS = 20  # pip runs per resolution (each adds a stub or target-only deps)
MAX_BUILD_DEPTH = 3  # build requirements of build requirements of …
# What a developer's venv has when they run a legacy setup.py (pip without build
# isolation): staged for sdists without [build-system], installed before the candidate.
KIT = ("wheel", "requests", "six")


class StagedSet(Frozen):
    """The files staged for one vet run, and how to install the candidate from them."""

    directory: str
    artifacts: tuple[Artifact, ...]
    candidate: Artifact
    install_target: str
    requested: str
    notes: tuple[str, ...] = ()
    kit: tuple[str, ...] = ()  # requirements to install before the candidate (legacy setup.py)
    kit_in_image: bool = False  # the kit comes from the image (images/kit/), not from staged wheels
    missing: tuple[str, ...] = ()  # declared dependencies nobody could stage, and why
    no_deps: bool = False  # install the candidate with --no-deps (dependencies missing)


# --------------------------------------------------------------------------- the fetcher


class _Fetcher(SdistSource):
    def run(self) -> tuple[Dist, list[tuple[Dist, ArtifactRole]]]:
        spec = self.spec
        preset: dict[str, tuple[Sdist, str]] = {}
        if spec.kind is SpecKind.REQUIREMENT:
            self._check_spec_marker()
            roots = [
                Root(pip=spec.requirement(), name=NormalizedName(spec.name), extras=frozenset(spec.extras))
            ]
        elif spec.kind is SpecKind.WHEEL:
            roots = [self._local_wheel_root()]
        else:
            root, sdist, stub = self._local_sdist_root()
            roots = [root]
            preset[stub.name] = (sdist, sha256_of(stub))
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
                resolution = self.resolve([Root(pinned, roots[0].name, roots[0].extras)], label=pinned)
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
        legacy = candidate.sdist is not None and candidate.sdist.meta.legacy
        # A legacy candidate builds without isolation in the kit's venv: what that venv
        # already has (the image's kit and template) need not be staged for its builds.
        provided = self._provided() if legacy and self._kit_in_image() else frozenset()
        staged += [(d, ArtifactRole.BUILD) for d in self._build_requirements(resolution.dists, provided)]
        if legacy:
            staged += [(d, ArtifactRole.KIT) for d in self._kit()]
        self._python_note()
        return candidate, staged

    def _kit_in_image(self) -> bool:
        return {canonicalize_name(n) for n in KIT} <= {canonicalize_name(n) for n in self.target.kit}

    def _provided(self) -> frozenset[str]:
        return frozenset(canonicalize_name(n) for n in (*self.target.kit, *self.target.venv))

    def _kit(self) -> list[Dist]:
        """The developer packages for a legacy setup.py (best effort: a note if not);
        nothing to stage when the sandbox image has them baked in (images/kit/)."""
        if self._kit_in_image():
            self.kit, self.kit_in_image = KIT, True
            self._note(
                f"legacy setup.py: built without isolation in a venv with {', '.join(KIT)} (from the image)"
            )
            return []
        try:
            resolution = self.resolve([Root(r, NormalizedName(r)) for r in KIT], label="developer packages")
        except (FetchError, InputError) as exc:
            self._note(f"developer packages ({', '.join(KIT)}) could not be staged: {exc.message}")
            return []
        self.kit = KIT
        return list(resolution.dists)

    def _best_effort(self, preset: dict[str, tuple[Sdist, str]], exc: FetchError | InputError) -> Resolution:
        """The local candidate alone plus each declared dependency that can be staged;
        the others are recorded in :attr:`missing` (the install then uses --no-deps)."""
        path = Path(self.spec.path)
        if self.spec.kind is SpecKind.WHEEL:
            wheel = inspect_wheel(path)
            cand = Dist(
                path, wheel.name, str(wheel.version), ArtifactKind.WHEEL, str(path), wheel.requires_dist
            )
        else:
            sdist = next(iter(preset.values()))[0]
            meta = sdist.meta
            cand = Dist(
                path,
                meta.name,
                str(Version(meta.version)),
                ArtifactKind.SDIST,
                str(path),
                meta.requires_dist,
                sdist,
            )
        resolution = Resolution([cand])
        self.fell_back = True
        env = self.target.markers()
        for text in cand.requires or ():
            req = lenient(text)
            if req is None or req.url or not marker_applies(req.marker, env, self.spec.extras):
                continue
            root = root_for(req)
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

    def _local_wheel_root(self) -> Root:
        path = Path(self.spec.path)
        wheel = inspect_wheel(path)
        if not wheel.tags & self.target.tags():
            tags = ", ".join(sorted(str(t) for t in wheel.tags))
            raise InputError(
                f"{path.name} ({tags}) does not install on the sandbox's {self.target.describe()}"
            )
        if not python_ok(wheel.requires_python, self.target.full_version):
            raise InputError(
                f"{path.name} requires Python {wheel.requires_python}; "
                f"the sandbox has {self.target.python_version}"
            )
        for req in wheel.requires_dist:
            check_requirement(req, path.name)
        return Root(
            pip=f"{path}{self.spec.extras_suffix()}", name=wheel.name, extras=frozenset(self.spec.extras)
        )

    def _local_sdist_root(self) -> tuple[Root, Sdist, Path]:
        path = Path(self.spec.path)
        meta = read_static_metadata(inspect_sdist(path))
        if not python_ok(meta.requires_python, self.target.full_version):
            raise InputError(
                f"{path.name} requires Python {meta.requires_python}; "
                f"the sandbox has {self.target.python_version}"
            )
        self._extend_notes(meta.notes)
        sdist = Sdist(path=path, sha256=sha256_of(path), source=str(path), meta=meta)
        # The root is the stub's *path*, not NAME==VERSION: a wheel of the same
        # name and version on the index must not replace the user's file.
        stub = write_stub_wheel(meta, self._mkdtemp("local-stub-"))
        root = Root(
            pip=f"{stub}{self.spec.extras_suffix()}", name=meta.name, extras=frozenset(self.spec.extras)
        )
        return root, sdist, stub

    def _candidate(self, resolution: Resolution) -> Dist:
        name = canonicalize_name(self.spec.name)
        matches = resolution.by_name().get(name, [])
        if self.spec.kind is SpecKind.SDIST:
            matches = [d for d in matches if d.kind is ArtifactKind.SDIST] or matches
        if len(matches) != 1:
            raise FetchError(
                f"pip's resolution of {self.spec.raw!r} did not yield exactly one {name} distribution"
            )
        return matches[0]

    def resolve(
        self, roots: Sequence[Root], *, label: str, preset: dict[str, tuple[Sdist, str]] | None = None
    ) -> Resolution:
        """Wheel-only pip resolution of *roots*, with sdists standing in (as stubs) where needed.

        *preset* maps stub filenames already among the roots to their sdist and
        the stub's sha256.
        """
        stubdir = self._mkdtemp("stubs-")
        stubs: dict[str, tuple[Sdist, str]] = dict(preset or {})  # stub filename -> (sdist, stub sha256)
        extra: dict[str, Root] = {}
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

    def _add_stubs(
        self,
        result: PipResult,
        roots: Sequence[Root],
        stubdir: Path,
        stubs: dict[str, tuple[Sdist, str]],
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
            stubs[stub.name] = (sdist, sha256_of(stub))
            progressed = True
        if progressed:
            return
        if result.conflict():
            raise FetchError(f"conflicting dependencies while resolving {label}: {result.conflict()}")
        if first_error is not None:
            raise first_error
        problem = problems[0]
        raise FetchError(f"cannot stage {self._describe(problem, roots)}: {result.summary()}")

    def _stub_for(self, sdist: Sdist, directory: Path) -> Path:
        return write_stub_wheel(sdist.meta, directory)

    def _collect(self, out: Path, stubs: dict[str, tuple[Sdist, str]]) -> Resolution:
        """What pip downloaded, with stubs swapped back for their sdists."""
        resolution = Resolution()
        for entry in sorted(out.iterdir()):
            stub = stubs.get(entry.name)
            if stub is not None and sha256_of(entry) == stub[1]:
                sdist = stub[0]
                resolution.dists.append(
                    Dist(
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
                Dist(
                    path=entry,
                    name=wheel.name,
                    version=str(wheel.version),
                    kind=ArtifactKind.WHEEL,
                    source="pip",
                    requires=wheel.requires_dist,
                )
            )
        return resolution

    def _missing_for_target(self, resolution: Resolution, roots: Sequence[Root]) -> list[Root]:
        """Dependencies the *target* needs that pip left out.

        pip evaluates environment markers for the interpreter it runs on, not
        for ``--python-version``; a dependency whose marker is true only for
        the target is added as a top-level requirement for the next run.
        """
        env = self.target.markers()
        by_name = resolution.by_name()
        missing: dict[str, Root] = {}
        queue = [(r.name, r.extras) for r in roots]
        seen: set[tuple[NormalizedName, frozenset[str]]] = set()
        while queue:
            name, extras = queue.pop()
            if (name, extras) in seen:
                continue
            seen.add((name, extras))
            for dist in by_name.get(name, []):
                for text in dist.requires or ():
                    req = lenient(text)
                    if req is None or req.url or not marker_applies(req.marker, env, extras):
                        continue
                    dep = canonicalize_name(req.name)
                    dep_extras = frozenset(canonicalize_name(e) for e in req.extras)
                    if dep in by_name:
                        queue.append((dep, dep_extras))
                    else:
                        root = root_for(req)
                        missing.setdefault(root.pip, root)
        return list(missing.values())

    def _build_requirements(
        self, dists: Sequence[Dist], provided: frozenset[str] = frozenset()
    ) -> list[Dist]:
        """Wheels (and sdists) needed to build every staged sdist inside the sandbox.

        A legacy sdist whose build requirements are all in *provided* (the venv it is
        built in without isolation) stages none."""
        env = {**self.target.markers(), "extra": ""}
        out: list[Dist] = []
        done: set[str] = set()
        resolved: dict[tuple[str, ...], Resolution] = {}
        pending = [d for d in dists if d.sdist is not None]
        for _ in range(MAX_BUILD_DEPTH):
            next_pending: list[Dist] = []
            for dist in pending:
                if dist.filename in done or dist.sdist is None:
                    continue
                done.add(dist.filename)
                reqs = []
                for text in dist.sdist.meta.build_requires:
                    req = check_requirement(text, f"build requirements of {dist.filename}")
                    if req.marker is None or req.marker.evaluate(env):
                        reqs.append(root_for(req))
                if not reqs:
                    continue
                legacy = dist.sdist.meta.legacy
                if legacy and provided and all(canonicalize_name(r.name) in provided for r in reqs):
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


# --------------------------------------------------------------------------- the entry point


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
    created = prepare_dest(dest)
    work = owned_tempdir("fetch")  # sweepable after a SIGKILL
    try:
        fetcher = _Fetcher(parsed, target, work, runner, deadline)
        candidate, entries = fetcher.run()
        artifacts = stage(dest, entries)
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
        kit_in_image=fetcher.kit_in_image,
        missing=tuple(fetcher.missing),
        no_deps=fetcher.fell_back,
    )


def resolve_with_sdists(
    requirement: str, target: TargetEnv, work: Path, pip: PipRunner, deadline: Deadline
) -> tuple[list[Dist], bool]:
    """What an adaptive round stages for *requirement* when no wheel fits: wheels, with
    the index's sdists standing in where none does, and what those sdists need to build
    (wheels and sdists). Fetched as files like the closure's (hash checked, static
    metadata only): they are built inside the sandbox, where a build backend is judged
    as candidate code. Returns the distributions and whether they build in the venv
    without isolation (every sdist a legacy ``setup.py`` whose build requirements the
    image's developer kit provides: none staged for it, and no isolated build env)."""
    fetcher = _Fetcher(parse_spec(requirement), target, work, pip, deadline)
    resolution = fetcher.resolve([root_for(check_requirement(requirement, "a round"))], label=requirement)
    sdists = [d for d in resolution.dists if d.sdist is not None]
    in_venv = fetcher._kit_in_image() and all(d.sdist is not None and d.sdist.meta.legacy for d in sdists)
    provided = fetcher._provided() if in_venv else frozenset()
    build = fetcher._build_requirements(resolution.dists, provided)
    return list(resolution.dists) + build, in_venv and not build
