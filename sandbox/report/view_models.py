"""The view models of a report: frozen slotted dataclasses the terminal and the HTML page lay out.

Built by :mod:`sandbox.report.builders`; every string in them is already printable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import overload

from sandbox.models import (
    Event,
    EventKind,
    Phase,
    PhaseStatus,
    Severity,
    Verdict,
)
from sandbox.report.describe import describe
from sandbox.report.sanitize import printable

# ---------------------------------------------------------------- models


@dataclass(frozen=True, slots=True)
class EvidenceView:
    """One observation a finding rests on, with its time relative to the phase start."""

    phase: Phase
    pid: int
    t: float | None  # None for evidence that is not a syscall (inventory, lingering)
    syscall: str
    process: str
    path: str
    destination: str
    bytes: int | None
    data: str
    errno: str
    detail: str


@dataclass(frozen=True, slots=True)
class FindingView:
    """A finding with the catalogue's description of its rule and its evidence."""

    rule_id: str
    title: str
    severity: Severity
    phase: Phase
    message: str
    description: str
    evidence: tuple[EvidenceView, ...]


@dataclass(frozen=True, slots=True)
class ProcessNode:
    """A process of one phase and its children (by ``ppid`` within the phase)."""

    pid: int
    ppid: int | None
    argv: str
    exe: str
    origin: str
    start: float | None  # seconds since the phase start
    end: float | None
    status: str  # "exit 0", "killed by SIGKILL", "no exit seen"
    failed: bool  # non-zero exit or killed
    execs: tuple[str, ...]  # earlier images of this pid, full command lines (setpriv …, choom …)
    via: tuple[str, ...]  # their program names, for a one-line "via setpriv → choom"
    rules: tuple[str, ...]  # ids of findings whose evidence names this pid
    events: int  # candidate events of this pid in the report
    lingering: bool
    known: bool  # False: the pid only appears in events or evidence (no process record)
    children: tuple[ProcessNode, ...] = ()

    def walk(self) -> Iterator[tuple[int, ProcessNode]]:
        """Depth-first (depth, node) pairs, without recursion (trees can be thousands deep)."""
        stack: list[tuple[int, ProcessNode]] = [(0, self)]
        while stack:
            depth, node = stack.pop()
            yield depth, node
            stack.extend((depth + 1, c) for c in reversed(node.children))


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One event of the per-phase timeline."""

    seq: int
    t: float  # seconds since the phase start
    pid: int
    kind: str
    syscall: str
    subject: str  # what it acted on: a path, an address, a command line, a pid
    detail: str  # the rest: flags, rename target, bytes and data
    errno: str
    rules: tuple[str, ...]  # ids of findings citing this very event

    @property
    def description(self) -> str:
        """The row as one line: ``syscall subject detail (ERRNO)``."""
        text = f"{self.syscall} {self.subject}" if self.subject else self.syscall
        if self.detail:
            text += f" {self.detail}"
        if self.errno:
            text += f" ({self.errno})"
        return text


@dataclass(frozen=True, slots=True)
class NetworkRow:
    """Identical network operations of one process, grouped (a retry loop is one row)."""

    pid: int
    process: str
    syscall: str
    kind: str
    destination: str
    protocol: str
    outbound: bool  # towards a non-loopback internet address
    count: int
    bytes: int | None
    errno: str
    first: float  # seconds since the phase start
    data: str  # a sample of the bytes (strace's escaped form)
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FileRow:
    """Every access to one path in one phase."""

    path: str
    access: tuple[str, ...]  # "read", "write", "stat", "exec" …, in a fixed order
    count: int
    errnos: tuple[str, ...]  # distinct errors (empty when every access succeeded)
    ok: int  # accesses that succeeded
    pids: tuple[int, ...]
    first: float
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FileGroup:
    """Paths in one location class (home, credentials, site-packages, system, temp, other)."""

    location: str
    label: str
    rows: tuple[FileRow, ...]


@dataclass(frozen=True, slots=True)
class PhaseView:
    """Everything shown for one phase."""

    phase: Phase
    status: str
    ran: bool  # False when the phase has no result record (not run, or not in this report)
    duration: float
    exit_code: int | None
    trace_complete: bool
    total_events: int  # everything traced, noise included (from the summary)
    t0: float  # absolute time the relative seconds count from
    notes: tuple[str, ...]
    output_tail: str
    steps: tuple[tuple[str, str, float, str], ...]  # (name, status, seconds, detail)
    processes: tuple[ProcessNode, ...]  # roots
    process_count: int
    timeline: Timeline
    network: tuple[NetworkRow, ...]
    files: tuple[FileGroup, ...]

    @property
    def failed(self) -> bool:
        """The phase ran and did not end ``ok`` (error, timeout …)."""
        return self.status not in (PhaseStatus.OK.value, "")


@dataclass(frozen=True, slots=True)
class ReportView:
    """The whole report, ready to lay out."""

    title: str
    target: str
    verdict: Verdict
    verdict_reason: str
    tool_version: str
    schema_version: str
    profile: str
    started: float
    finished: float
    image: str
    candidate: str  # "file.whl sha256 …" or ""
    artifacts: tuple[tuple[str, str, str, str], ...]  # (role, name==version, filename, sha256)
    findings: tuple[FindingView, ...]
    phases: tuple[PhaseView, ...]
    notes: tuple[str, ...]
    pth_files: tuple[tuple[str, str, bool], ...] = field(default=())  # (path, head, executes)

    def phase(self, phase: Phase) -> PhaseView | None:
        return next((p for p in self.phases if p.phase is phase), None)


Cited = dict[tuple[int, float, str], tuple[str, ...]]
"""Rule ids by cited event of one phase: (pid, time, syscall) → ids."""

_KIND_VALUE = {k: k.value for k in EventKind}  # Enum.value is a descriptor call: too slow per event
_by_time = attrgetter("time", "seq")


class Timeline(Sequence[TimelineRow]):
    """One phase's events by time (then trace order), as rows built on access.

    ``pkgsandbox show`` prints a few hundred rows of a 100k-event phase: building
    every row up front would be most of its run time.  The sequence is immutable
    (the events are a sorted tuple); :attr:`cited` lists the indices of rows a
    finding cites, found without building any row.
    """

    __slots__ = ("_cited", "_events", "_t0", "cited")

    def __init__(self, events: Iterable[Event], t0: float, cited: Cited | None = None) -> None:
        self._events: tuple[Event, ...] = tuple(sorted(events, key=_by_time))
        self._t0 = t0
        self._cited: Cited = cited or {}
        self.cited: tuple[int, ...] = (
            tuple(i for i, ev in enumerate(self._events) if (ev.pid, ev.time, ev.syscall) in self._cited)
            if self._cited
            else ()
        )

    def __len__(self) -> int:
        return len(self._events)

    @overload
    def __getitem__(self, index: int) -> TimelineRow: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[TimelineRow]: ...

    def __getitem__(self, index: int | slice) -> TimelineRow | Sequence[TimelineRow]:
        if isinstance(index, slice):
            return [self._row(ev) for ev in self._events[index]]
        return self._row(self._events[index])

    def __iter__(self) -> Iterator[TimelineRow]:
        row = self._row
        for ev in self._events:
            yield row(ev)

    def _row(self, ev: Event) -> TimelineRow:
        return TimelineRow(*self._fields(ev))

    def fields(self) -> Iterator[tuple[int, float, int, str, str, str, str, str, tuple[str, ...]]]:
        """Every row as a plain tuple, in :class:`TimelineRow` field order.

        For a renderer that converts every row (the HTML page): it skips building
        100k dataclass instances it would throw away at once.
        """
        fields = self._fields
        for ev in self._events:
            yield fields(ev)

    def _fields(self, ev: Event) -> tuple[int, float, int, str, str, str, str, str, tuple[str, ...]]:
        subject, detail = describe(ev)
        syscall = ev.syscall
        t0 = self._t0
        return (
            ev.seq,
            ev.time - t0 if t0 > 0 else ev.time,
            ev.pid,
            _KIND_VALUE[ev.kind],
            syscall if syscall.isprintable() else printable(syscall, 40),
            subject,
            detail,
            printable(ev.errno, 40) if ev.errno else "",  # printable(): a report file can be forged
            self._cited.get((ev.pid, ev.time, syscall), ()) if self._cited else (),
        )
