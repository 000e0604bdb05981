"""Frozen models of the gate: what a lockfile pins, what changed, and what the gate found.

They follow :mod:`sandbox.models` (immutable, unknown keys refused) so a gate
result can be written as JSON and read back like a report.
"""

from __future__ import annotations

from enum import Enum

from sandbox.errors import ExitCode
from sandbox.judge.verdict import fails as fails  # the one "at or above fail-on", re-exported
from sandbox.models import Frozen, Report, Verdict

GATE_SCHEMA_VERSION = "1.0"


class LockFormat(str, Enum):
    """The dependency files the gate reads."""

    REQUIREMENTS = "requirements"
    PYPROJECT = "pyproject"
    UV_LOCK = "uv.lock"
    POETRY_LOCK = "poetry.lock"
    PYLOCK = "pylock"


class SourceKind(str, Enum):
    """Where a locked requirement comes from, which decides whether the sandbox can vet it."""

    INDEX = "index"  # a name (and version) resolved on a package index: vetted by NAME==VERSION
    LOCAL = "local"  # a local wheel or sdist file: vetted by its path
    URL = "url"  # a direct URL to an archive: the vet refuses URLs, so it is reported as not vetted
    VCS = "vcs"  # git+…, hg+…: not an artifact at all; reported as not vetted
    DIRECTORY = "directory"  # a local source tree (``-e .``, a workspace member): the project's own code


class LockedRequirement(Frozen):
    """One requirement of a dependency file, with where it was written."""

    name: str  # canonical (PEP 503)
    version: str | None = None  # the exact pin; None when the file does not pin one
    specifier: str = ""  # as written, e.g. ">=2,<3" or "==1.0"
    markers: str = ""  # PEP 508 environment marker, "" when none
    extras: tuple[str, ...] = ()
    hashes: tuple[str, ...] = ()  # "sha256:…" of the files the lock allows
    kind: SourceKind = SourceKind.INDEX
    path: str | None = None  # LOCAL/DIRECTORY: absolute path (resolved against the file's directory)
    url: str | None = None  # URL/VCS reference, or the index URL a lock names
    groups: tuple[str, ...] = ()  # optional-dependency / dependency-group / poetry group names
    editable: bool = False
    own_project: bool = False  # DIRECTORY: the dependency file's own project (``-e .``), not a dependency
    pinned_by: str | None = None  # "constraints.txt:4" when a -c file supplied the pin
    source_file: str
    line: int  # 1-based line of the entry in source_file (0 when unknown)

    @property
    def pinned(self) -> bool:
        """The file names an exact version."""
        return self.version is not None

    @property
    def location(self) -> str:
        """``file:line`` for messages."""
        return f"{self.source_file}:{self.line}" if self.line else self.source_file


class Lockfile(Frozen):
    """A parsed dependency file."""

    path: str
    format: LockFormat
    requirements: tuple[LockedRequirement, ...]
    notes: tuple[str, ...] = ()


class ChangeKind(str, Enum):
    NEW = "new"  # not in the base (or no base given: everything is new)
    CHANGED = "changed"  # in the base at another version, source or hash set
    UNCHANGED = "unchanged"


class GateEntry(Frozen):
    """A package the gate has to look at, and what to hand the vet."""

    name: str
    version: str | None  # None: unpinned, the vet resolves it ("resolved and reported as such")
    previous: str | None = None  # the base's version when the package changed
    change: ChangeKind
    reason: str = ""  # why it counts as changed ("1.0 -> 1.1", "hashes changed" …)
    requirement: LockedRequirement
    spec: str  # what vet() receives: NAME==VERSION, NAME>=…, or a local path

    @property
    def unpinned(self) -> bool:
        """An index requirement without an exact pin: the vet resolves it."""
        return self.version is None and self.requirement.kind is SourceKind.INDEX

    @property
    def label(self) -> str:
        """``name==version`` (or ``name (unpinned >=1)``) for humans."""
        if self.version:
            return f"{self.name}=={self.version}"
        if self.requirement.kind is not SourceKind.INDEX:
            return f"{self.name} ({self.requirement.kind.value})"
        if self.requirement.specifier:
            return f"{self.name} (unpinned {self.requirement.specifier})"
        return f"{self.name} (unpinned)"


class GatePlan(Frozen):
    """What a base/head comparison decided to vet."""

    head: Lockfile
    base: Lockfile | None = None
    base_label: str = ""  # "requirements-old.txt" or "origin/main:requirements.txt"
    entries: tuple[GateEntry, ...]  # new or changed: to vet
    unchanged: tuple[GateEntry, ...] = ()
    removed: tuple[LockedRequirement, ...] = ()


class EntryStatus(str, Enum):
    """How the gate dealt with one entry."""

    VETTED = "vetted"  # a fresh sandbox run
    CACHED = "cached"  # served from the result cache: no fetch, no container
    NOT_VETTED = "not_vetted"  # not started (--max-time budget), or a source the sandbox cannot vet
    ERROR = "error"  # the vet raised (unknown version, engine failure …)
    SKIPPED = "skipped"  # the project's own source tree (a directory), not a third-party artifact


class GateOutcome(Frozen):
    """The gate's result for one entry."""

    entry: GateEntry
    status: EntryStatus
    report: Report | None = None
    detail: str = ""  # why not vetted / the error / notes such as a hash mismatch
    hash_mismatch: bool = False  # the vetted file is not one the lock pins
    seconds: float = 0.0

    @property
    def verdict(self) -> Verdict | None:
        """The report's verdict; None when nothing was vetted."""
        return self.report.verdict if self.report is not None else None

    @property
    def resolved_version(self) -> str | None:
        """The version actually vetted (the candidate artifact's), else the pinned one."""
        if self.report is not None:
            for art in self.report.artifacts:
                if art.role.value == "candidate":
                    return art.version
        return self.entry.version

    @property
    def candidate_sha256(self) -> str | None:
        """sha256 of the file that was vetted."""
        if self.report is not None:
            for art in self.report.artifacts:
                if art.role.value == "candidate":
                    return art.sha256
        return None

    @property
    def incomplete(self) -> bool:
        """Could not look (fully): fails the gate unless incomplete results are allowed."""
        if self.status in (EntryStatus.NOT_VETTED, EntryStatus.ERROR):
            return True
        if self.status is EntryStatus.SKIPPED:
            return False
        return self.hash_mismatch or self.verdict is Verdict.INCOMPLETE


class GateResult(Frozen):
    """Everything the gate decided; every output format renders this."""

    schema_version: str = GATE_SCHEMA_VERSION
    tool_version: str
    lockfile: str
    lock_format: LockFormat
    base: str = ""  # what the lockfile was compared with ("" when everything was vetted)
    outcomes: tuple[GateOutcome, ...]
    unchanged: int = 0
    removed: tuple[str, ...] = ()  # "name==version" of requirements the head dropped
    fail_on: Verdict = Verdict.SUSPICIOUS
    allow_incomplete: bool = False
    max_time: float | None = None
    workers: int = 1
    started: float
    finished: float
    exit_code: ExitCode
    notes: tuple[str, ...] = ()

    def failing(self) -> tuple[GateOutcome, ...]:
        """Outcomes whose verdict is at or above ``fail_on``."""
        return tuple(o for o in self.outcomes if o.verdict is not None and fails(o.verdict, self.fail_on))

    def incomplete(self) -> tuple[GateOutcome, ...]:
        """Outcomes that could not be vetted (fully)."""
        return tuple(o for o in self.outcomes if o.incomplete)
