"""Vet what a change introduces, in parallel, with a cache and a time budget; decide the exit code.

:func:`run_gate` never passes a package it did not look at: an entry that could
not be vetted (over the ``max_time`` budget, a URL the sandbox cannot fetch, an
engine error, an ``incomplete`` verdict, or a vetted file that is not one the lock
pins) makes the gate exit 3 unless ``allow_incomplete`` is set. Findings at or
above ``fail_on`` make it exit 1, and take precedence.

The vet itself is injected (``vet_fn: (spec) -> Report``): the CLI passes
:func:`make_vet_fn` (the real sandbox), unit tests a fake built on the same
interface. Progress goes to a :class:`GateObserver`; nothing here imports rich.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from sandbox import __version__
from sandbox.cache import ORIGIN_INDEX, ORIGIN_LOCAL, CacheContext, ResultCache
from sandbox.errors import ExitCode, PkgSandboxError
from sandbox.gate.models import (
    EntryStatus,
    GateEntry,
    GateOutcome,
    GatePlan,
    GateResult,
    LockFormat,
    SourceKind,
    fails,
)
from sandbox.models import Phase, PhaseStatus, Report, Verdict
from sandbox.report.sanitize import printable
from sandbox.runner.interface import Observer, Sandbox
from sandbox.tempdirs import owned_tempdir

if TYPE_CHECKING:
    from sandbox.models import ImageInfo
    from sandbox.vet import VetOptions

VetFn = Callable[[str], Report]


# --------------------------------------------------------------------------- progress


class GateObserver:
    """Progress callbacks of a gate run (every method a no-op by default).

    ``status``/``phase_*`` come from worker threads, one vet per thread, keyed by
    the entry's spec: implementations must be thread-safe.
    """

    def planned(self, entries: Sequence[GateEntry], cached: int) -> None:
        """The gate knows what it will vet (*cached* of them are served from the cache)."""

    def started(self, entry: GateEntry) -> None:
        """A vet begins."""

    def status(self, spec: str, message: str) -> None:
        """A progress line of the vet of *spec*."""

    def phase_started(self, spec: str, phase: Phase) -> None:
        """A phase of the vet of *spec* begins."""

    def phase_finished(self, spec: str, phase: Phase, status: PhaseStatus, seconds: float) -> None:
        """A phase of the vet of *spec* ended."""

    def finished(self, outcome: GateOutcome) -> None:
        """An entry is decided (vetted, cached, not vetted, error or skipped)."""


class _EntryObserver(Observer):
    """The vet's observer for one entry: forwards to the gate observer with the spec attached."""

    def __init__(self, gate: GateObserver, spec: str) -> None:
        self.gate = gate
        self.spec = spec

    def status(self, message: str) -> None:
        self.gate.status(self.spec, message)

    def phase_started(self, phase: Phase) -> None:
        self.gate.phase_started(self.spec, phase)

    def phase_finished(self, phase: Phase, status: PhaseStatus, seconds: float) -> None:
        self.gate.phase_finished(self.spec, phase, status, seconds)


class PlainGateObserver(GateObserver):
    """One plain line per event (for CI logs and pipes, where a live display is noise)."""

    def __init__(self, stream: TextIO | None = None, *, verbose: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.verbose = verbose
        self._lock = threading.Lock()
        self._labels: dict[str, str] = {}

    def _line(self, text: str) -> None:
        with self._lock:
            self.stream.write(f"pkgsandbox gate: {printable(text)}\n")  # labels, errors: untrusted
            self.stream.flush()

    def planned(self, entries: Sequence[GateEntry], cached: int) -> None:
        self._labels.update({e.spec: e.label for e in entries})
        self._line(f"{len(entries)} package(s) to vet, {cached} served from the cache")

    def started(self, entry: GateEntry) -> None:
        self._line(f"{entry.label}: vetting")

    def status(self, spec: str, message: str) -> None:
        if self.verbose:
            self._line(f"{self._labels.get(spec, spec)}: {message}")

    def phase_finished(self, spec: str, phase: Phase, status: PhaseStatus, seconds: float) -> None:
        self._line(f"{self._labels.get(spec, spec)}: {phase.value} {status.value} ({seconds:.1f}s)")

    def finished(self, outcome: GateOutcome) -> None:
        what = (
            outcome.verdict.value if outcome.verdict is not None else outcome.status.value.replace("_", " ")
        )
        extra = f" — {outcome.detail}" if outcome.detail else ""
        source = " (cached)" if outcome.status is EntryStatus.CACHED else ""
        self._line(f"{outcome.entry.label}: {what}{source}{extra}")


# --------------------------------------------------------------------------- wiring


def make_vet_fn(
    options: VetOptions, observer: GateObserver | None = None, sandbox: Sandbox | None = None
) -> VetFn:
    """The real vet (:func:`sandbox.vet.vet`) with *options* in *sandbox* (one for every
    worker), reporting to *observer*."""
    from sandbox.vet import vet

    gate_observer = observer or GateObserver()

    def run(spec: str) -> Report:
        return vet(spec, options, _EntryObserver(gate_observer, spec), sandbox)

    return run


def cache_context(options: VetOptions, image: ImageInfo, index_urls: Sequence[str] = ()) -> CacheContext:
    """The cache key parts of a run with *options* in *image* against the configured indexes."""
    from sandbox.cache import index_scope, profile_hash, tool_version

    data: dict[str, object] = options.model_dump(mode="json", exclude={"profile"})
    profile = getattr(options, "profile", None)
    if profile is None:
        # "None" means the shipped default: hash what it is now, so editing it invalidates.
        from sandbox.judge.profiles import load_profile

        profile = load_profile("default")
    # The profile's own digest leaves out where it was loaded from, so checkouts at
    # different paths (CI runners) share cache entries.
    digest = getattr(profile, "digest", None)
    data["profile"] = digest() if callable(digest) else str(profile)
    return CacheContext(
        profile_hash=profile_hash(data),
        tool_version=tool_version(),
        image_id=image.id,
        index=index_scope(index_urls),
    )


# --------------------------------------------------------------------------- the gate


def file_sha256(path: Path) -> str:
    """sha256 of a local artifact (read in chunks: wheels can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def gate_exit_code(outcomes: Sequence[GateOutcome], fail_on: Verdict, allow_incomplete: bool) -> ExitCode:
    """1 if any verdict is at or above *fail_on*; else 3 if anything could not be vetted
    (unless *allow_incomplete*); else 0."""
    if any(o.verdict is not None and fails(o.verdict, fail_on) for o in outcomes):
        return ExitCode.FINDINGS
    if not allow_incomplete and any(o.incomplete for o in outcomes):
        return ExitCode.SANDBOX
    return ExitCode.CLEAN


def _sha256_hashes(entry: GateEntry) -> set[str]:
    return {h.split(":", 1)[1] for h in entry.requirement.hashes if h.startswith("sha256:")}


def _check_hashes(entry: GateEntry, report: Report) -> tuple[bool, str]:
    """Whether the vetted candidate is a file the lock allows (True, "") or not (False, why)."""
    allowed = _sha256_hashes(entry)
    if not allowed:
        return True, ""
    for art in report.artifacts:
        if art.role.value == "candidate":
            if art.sha256.lower() in allowed:
                return True, ""
            return False, (
                f"the vetted file {art.filename} (sha256 {art.sha256[:16]}…) is not one the lock pins "
                f"({entry.requirement.location})"
            )
    return False, "the report names no candidate artifact"


class _Gate:
    def __init__(
        self,
        vet_fn: VetFn,
        cache: ResultCache | None,
        ctx: CacheContext | None,
        observer: GateObserver,
        baseline_previous: bool = True,
    ) -> None:
        self.vet_fn = vet_fn
        self.cache = cache
        self.ctx = ctx
        self.observer = observer
        self.baseline_previous = baseline_previous

    def prepare(self, entry: GateEntry, workdir: Callable[[], Path]) -> GateEntry | GateOutcome:
        """A local source tree that is not the project's own becomes a vettable entry:
        packed on the host like an sdist (nothing executed) into *workdir*, its spec
        the archive's path; a tree that cannot be packed is reported not vetted."""
        req = entry.requirement
        if req.kind is not SourceKind.DIRECTORY or req.own_project or not req.path:
            return entry
        from sandbox.gate.pack import pack_tree

        try:
            packed = pack_tree(Path(req.path), workdir(), entry.name)
        except (PkgSandboxError, OSError) as exc:
            why = exc.message if isinstance(exc, PkgSandboxError) else f"{exc.strerror or exc}"
            return GateOutcome(
                entry=entry,
                status=EntryStatus.NOT_VETTED,
                detail=f"local source tree {req.path}: not the project's own directory, and it "
                f"could not be packed for the sandbox ({why})",
            )
        return entry.model_copy(update={"spec": str(packed)})

    def precheck(self, entry: GateEntry) -> GateOutcome | None:
        """The outcome of an entry that needs no vet (not vettable, or a cache hit), else None."""
        req = entry.requirement
        if req.kind is SourceKind.DIRECTORY and req.own_project:
            return GateOutcome(
                entry=entry,
                status=EntryStatus.SKIPPED,
                detail=f"local source tree {req.path}: the project's own code, not an artifact",
            )
        if req.kind is SourceKind.DIRECTORY and not entry.spec:
            # Installing it runs its build backend (setup.py …) like any sdist's: never
            # pass it unseen. prepare() packs it; an entry left without a spec could not be.
            return GateOutcome(
                entry=entry,
                status=EntryStatus.NOT_VETTED,
                detail=f"local source tree {req.path}: not the project's own directory, and it "
                "could not be packed for the sandbox",
            )
        if req.kind in (SourceKind.URL, SourceKind.VCS) or not entry.spec:
            return GateOutcome(
                entry=entry,
                status=EntryStatus.NOT_VETTED,
                detail=f"{req.kind.value} reference {req.url}: the sandbox vets index releases and "
                "local files only (download the artifact and reference its path)",
            )
        sha: str | None = None
        if req.kind is SourceKind.DIRECTORY:
            sha = file_sha256(Path(entry.spec))  # the packed tree (deterministic)
        elif req.kind is SourceKind.LOCAL and req.path:
            try:
                sha = file_sha256(Path(req.path))
            except OSError as exc:
                return GateOutcome(
                    entry=entry,
                    status=EntryStatus.ERROR,
                    detail=f"cannot read {req.path} ({req.location}): {exc.strerror or exc}",
                )
        if self.cache is None or self.ctx is None:
            return None
        if req.kind is SourceKind.INDEX and entry.version is None:
            return None  # unpinned: what it resolves to is only known by fetching
        report = self.cache.find(
            self.ctx, name=entry.name, version=entry.version, hashes=req.hashes, sha256=sha
        )
        if report is None:
            return None
        report, note = self.with_baseline(entry, report)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(report.finished))
        return GateOutcome(
            entry=entry,
            status=EntryStatus.CACHED,
            report=report,
            detail="; ".join(x for x in (f"cached result of {when}", note) if x),
        )

    def with_baseline(self, entry: GateEntry, report: Report) -> tuple[Report, str]:
        """Judge an upgrade against the previous version's behaviour (issue: a learned
        baseline): behaviour the previous version did not show is a PS024 deviation and
        findings it already showed are dropped. The previous report comes from the cache,
        else from a vet of ``NAME==PREVIOUS`` (then cached); without one, no baseline."""
        from sandbox.judge.baseline import apply_baseline, make_baseline

        if not entry.previous or entry.requirement.kind is not SourceKind.INDEX or not self.baseline_previous:
            return report, ""
        prev: Report | None = None
        if self.cache is not None and self.ctx is not None:
            prev = self.cache.lookup(entry.name, entry.previous, self.ctx)
        if prev is None:
            try:
                prev = self.vet_fn(f"{entry.name}=={entry.previous}")
            except PkgSandboxError as exc:
                return (
                    report,
                    f"no baseline: {entry.name} {entry.previous} could not be vetted ({exc.message})",
                )
            if self.cache is not None and self.ctx is not None:
                with contextlib.suppress(PkgSandboxError):
                    self.cache.put(prev, self.ctx, origin=ORIGIN_INDEX)
        if prev.verdict is Verdict.INCOMPLETE:
            return report, f"no baseline: the run of {entry.name} {entry.previous} was incomplete"
        judged = apply_baseline(report, make_baseline(prev))
        return judged, f"judged against {entry.name} {entry.previous}'s behaviour"

    def vet(self, entry: GateEntry) -> GateOutcome:
        """Run the vet of one entry (in a worker thread); every failure becomes an outcome."""
        start = time.monotonic()
        try:
            report = self.vet_fn(entry.spec)
        except PkgSandboxError as exc:
            return GateOutcome(
                entry=entry,
                status=EntryStatus.ERROR,
                detail=exc.diagnostics(),
                seconds=time.monotonic() - start,
            )
        except Exception as exc:  # a bug must not pass the gate: it is reported as not vetted
            return GateOutcome(
                entry=entry,
                status=EntryStatus.ERROR,
                detail=f"internal error: {type(exc).__name__}: {exc}",
                seconds=time.monotonic() - start,
            )
        seconds = time.monotonic() - start
        ok, why = _check_hashes(entry, report)
        if self.cache is not None and self.ctx is not None:
            local = entry.requirement.kind in (SourceKind.LOCAL, SourceKind.DIRECTORY)
            origin = ORIGIN_LOCAL if local else ORIGIN_INDEX
            try:
                self.cache.put(report, self.ctx, origin=origin)
            except PkgSandboxError as exc:
                why = "; ".join(x for x in (why, f"not cached: {exc.message}") if x)
        report, note = self.with_baseline(entry, report)
        detail = "; ".join(x for x in (why, note) if x)
        if entry.version is None and entry.requirement.kind is SourceKind.INDEX:
            resolved = next((a.version for a in report.artifacts if a.role.value == "candidate"), "?")
            note = f"unpinned requirement resolved to {resolved}"
            detail = f"{note}; {detail}" if detail else note
        return GateOutcome(
            entry=entry,
            status=EntryStatus.VETTED,
            report=report,
            detail=detail,
            hash_mismatch=not ok,
            seconds=seconds,
        )


def run_gate(
    plan: GatePlan | Sequence[GateEntry],
    *,
    vet_fn: VetFn,
    workers: int | None = None,
    max_time: float | None = None,
    cache: ResultCache | None = None,
    cache_context: CacheContext | None = None,
    fail_on: Verdict = Verdict.SUSPICIOUS,
    allow_incomplete: bool = False,
    observer: GateObserver | None = None,
    clock: Callable[[], float] = time.monotonic,
    baseline_previous: bool = True,
) -> GateResult:
    """Vet every entry of *plan* and decide the gate.

    Cache hits (by file sha256, the lock's hashes, or index name and version under
    *cache_context*) are served without calling *vet_fn*. The rest run in a pool of
    *workers* threads (default: the number of cores). Once *max_time* seconds have
    passed no new vet starts; vets already running finish (each is bounded by its
    own phase timeouts) and the entries never started are reported as not vetted.
    """
    if cache is not None and cache_context is None:
        raise ValueError("a cache needs a cache_context")
    if workers is not None and workers < 1:
        raise ValueError("workers must be >= 1")
    n_workers = workers or os.cpu_count() or 1
    obs = observer or GateObserver()
    if isinstance(plan, GatePlan):
        entries = list(plan.entries)
        lockfile, fmt, base = plan.head.path, plan.head.format, plan.base_label
        unchanged, removed = len(plan.unchanged), tuple(_label(r.name, r.version) for r in plan.removed)
        notes = plan.head.notes + (plan.base.notes if plan.base else ())
    else:
        entries = list(plan)
        lockfile = entries[0].requirement.source_file if entries else ""
        fmt, base, unchanged, removed, notes = None, "", 0, (), ()
    started_wall = time.time()
    t0 = clock()
    gate = _Gate(vet_fn, cache, cache_context, obs, baseline_previous)

    packed_dir: list[Path] = []

    def workdir() -> Path:
        if not packed_dir:
            packed_dir.append(owned_tempdir("gate"))
            os.chmod(packed_dir[0], 0o755)
        return packed_dir[0]

    try:
        outcomes: dict[str, GateOutcome] = {}
        prepared: list[GateEntry] = []
        for entry in entries:
            ready = gate.prepare(entry, workdir)
            if isinstance(ready, GateOutcome):
                outcomes[_key(entry)] = ready
            prepared.append(entry if isinstance(ready, GateOutcome) else ready)
        entries = prepared
        queue: deque[GateEntry] = deque()
        for entry in entries:
            key = _key(entry)
            if key in outcomes or any(q.spec == entry.spec and entry.spec for q in queue):
                continue
            done = gate.precheck(entry)
            if done is not None:
                outcomes[key] = done
            else:
                queue.append(entry)
        obs.planned(entries, sum(1 for o in outcomes.values() if o.status is EntryStatus.CACHED))
        for o in outcomes.values():
            obs.finished(o)

        def over_budget() -> bool:
            return max_time is not None and clock() - t0 >= max_time

        if queue:
            pool = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="pkgsandbox-gate")
            running: dict[Future[GateOutcome], GateEntry] = {}
            try:
                while queue or running:
                    while queue and len(running) < n_workers and not over_budget():
                        entry = queue.popleft()
                        obs.started(entry)
                        running[pool.submit(gate.vet, entry)] = entry
                    if not running:
                        break  # over budget: what is left is reported below
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        entry = running.pop(fut)
                        outcome = fut.result()
                        outcomes[_key(entry)] = outcome
                        obs.finished(outcome)
            finally:
                # On Ctrl-C, vets already running finish and clean up their own
                # containers; nothing new starts.
                pool.shutdown(wait=False, cancel_futures=True)
            for entry in queue:
                outcome = GateOutcome(
                    entry=entry,
                    status=EntryStatus.NOT_VETTED,
                    detail=f"not started: the --max-time budget of {max_time:g}s was spent"
                    if max_time is not None
                    else "not started",
                )
                outcomes[_key(entry)] = outcome
                obs.finished(outcome)

        ordered = []
        for entry in entries:
            key = _key(entry)
            if key in outcomes:
                ordered.append(outcomes.pop(key))
        return GateResult(
            tool_version=__version__,
            lockfile=lockfile,
            lock_format=fmt or LockFormat.REQUIREMENTS,
            base=base,
            outcomes=tuple(ordered),
            unchanged=unchanged,
            removed=removed,
            fail_on=fail_on,
            allow_incomplete=allow_incomplete,
            max_time=max_time,
            workers=n_workers,
            started=started_wall,
            finished=time.time(),
            exit_code=gate_exit_code(ordered, fail_on, allow_incomplete),
            notes=tuple(notes),
        )
    finally:
        if packed_dir:  # the packed trees: nothing is left behind
            shutil.rmtree(packed_dir[0], ignore_errors=True)


def _key(entry: GateEntry) -> str:
    """What makes two entries the same piece of work (the spec; the source for unvettable ones)."""
    req = entry.requirement
    return entry.spec or f"{req.kind.value}:{entry.name}:{req.path or req.url}"


def _label(name: str, version: str | None) -> str:
    return f"{name}=={version}" if version else name
