"""View models of a report, shared by the terminal (``pkgsandbox show``) and the HTML page.

Everything here is a pure function of a :class:`~sandbox.models.Report`: no I/O, no
rich, no HTML.  The renderers only lay out what these builders decide, so the
terminal and the HTML page show the same process tree, timeline, network table,
file groups and findings, whichever command (``vet``, ``diff``, ``gate``) wrote
the report.

Every string that came out of the sandbox (paths, argv, payload bytes, even pip's
output) is attacker-controlled.  The one sanitiser, :func:`~sandbox.report.sanitize.printable`,
is applied once, here, so that neither renderer can be handed a raw control character
(a terminal escape sequence), a line break that forges a row, or a bidirectional
override that makes ``exe.txt`` read as ``txt.exe``.  Markup escaping (rich, HTML)
stays the renderers' job.

The builders are written for 100k-event reports: one pass over the events per
view, no per-event pydantic objects (frozen slotted dataclasses instead), and
sanitising only the strings that need it.
"""

from __future__ import annotations

import gc
import json
import posixpath
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter
from pathlib import Path
from typing import Any, overload

from pydantic import ValidationError

from sandbox.errors import InputError
from sandbox.judge.rules import CATALOGUE, CREDENTIAL_PATHS, SYSTEM_SECRETS
from sandbox.models import (
    SCHEMA_VERSION,
    Address,
    ArtifactRole,
    Event,
    EventKind,
    Evidence,
    Finding,
    Phase,
    PhaseResult,
    PhaseStatus,
    ProcessInfo,
    Report,
    Severity,
    Verdict,
)
from sandbox.report.sanitize import argv_text, printable, printable_lines

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


# ---------------------------------------------------------------- locations

LOCATIONS: tuple[tuple[str, str], ...] = (
    ("credentials", "credentials (keys, tokens, cloud config, secrets)"),
    ("home", "home directory"),
    ("site-packages", "site-packages and the virtualenv"),
    ("temp", "temporary directories"),
    ("system", "system (/usr, /etc, /proc, /dev …)"),
    ("other", "other"),
)
_LOCATION_ORDER = {name: i for i, (name, _) in enumerate(LOCATIONS)}
_LABELS = dict(LOCATIONS)
_TEMP = re.compile(r"^/(?:tmp|var/tmp|dev/shm)(?:/|$)")
_HOME = re.compile(r"^/(?:root|home/[^/]+)(?:/|$)")
_SITE = re.compile(r"/(?:site|dist)-packages(?:/|$)")
_SYSTEM = re.compile(
    r"^/(?:usr|etc|lib|lib32|lib64|libx32|bin|sbin|opt|var|run|proc|sys|dev|boot|srv)"
    r"(?:/|$)"
)


def venv_root(site_packages: str) -> str:
    """The virtualenv of a site-packages directory: ``…/.venv`` for ``…/.venv/lib/pythonX/site-packages``."""
    m = re.match(r"^(.*)/lib\d*/python[^/]*/(?:site|dist)-packages/?$", site_packages)
    return m.group(1) if m else ""


def _maybe_secret(path: str) -> bool:
    """A cheap superset test of the judge's credential patterns (a hidden name, ``secrets``, ``/etc/``).

    The full patterns cost microseconds per path and most paths are nowhere near a
    credential; ``test_views`` checks that every credential pattern stays inside this test.
    """
    return "/." in path or "secrets" in path or path.startswith("/etc/")


def location_of(path: str, venv: str = "") -> str:
    """The location class of an absolute path; credentials win over where they live."""
    if _maybe_secret(path) and (CREDENTIAL_PATHS.search(path) or SYSTEM_SECRETS.match(path)):
        return "credentials"
    if venv and (path == venv or (path.startswith(venv) and path[len(venv) : len(venv) + 1] == "/")):
        return "site-packages"
    if _TEMP.match(path):
        return "temp"  # pip's build environments live here, site-packages or not
    if _HOME.match(path):
        return "home"
    if _SITE.search(path):
        return "site-packages"
    if _SYSTEM.match(path):
        return "system"
    return "other"


# ---------------------------------------------------------------- descriptions

_ACCESS = {
    EventKind.FILE_READ: "read",
    EventKind.FILE_WRITE: "write",
    EventKind.FILE_STAT: "stat",
    EventKind.FILE_LIST: "list",
    EventKind.FILE_DELETE: "delete",
    EventKind.FILE_RENAME: "rename",
    EventKind.FILE_CHMOD: "chmod",
    EventKind.FILE_LINK: "link",
    EventKind.DIR_CREATE: "mkdir",
    EventKind.EXEC: "exec",
}
ACCESS_ORDER: tuple[str, ...] = (
    "exec",
    "write",
    "rename",
    "rename-to",
    "link",
    "chmod",
    "delete",
    "mkdir",
    "read",
    "list",
    "stat",
)
_ACCESS_RANK = {a: i for i, a in enumerate(ACCESS_ORDER)}
_ACCESS_BIT = {a: 1 << i for i, a in enumerate(ACCESS_ORDER)}
_KIND_BIT = {k: _ACCESS_BIT[a] for k, a in _ACCESS.items()}


@lru_cache(maxsize=4096)
def _access_names(mask: int) -> tuple[str, ...]:
    """Access kinds of a bit mask, in :data:`ACCESS_ORDER`."""
    return tuple(a for a in ACCESS_ORDER if mask & _ACCESS_BIT[a])


_NET_KINDS = {
    EventKind.CONNECT,
    EventKind.SEND,
    EventKind.RECV,
    EventKind.BIND,
    EventKind.LISTEN,
    EventKind.DNS,
}
_ADDRESS_KINDS = _NET_KINDS | {EventKind.SOCKET}
_SOCK_TYPE = re.compile(r"SOCK_(STREAM|DGRAM|RAW|SEQPACKET)")
_PROTO = {"STREAM": "tcp", "DGRAM": "udp", "RAW": "raw", "SEQPACKET": "seqpacket"}
# Bounds on what one row carries: the JSON report keeps everything, the views are for reading.
SUBJECT_LIMIT = 1000
DETAIL_LIMIT = 300
DATA_LIMIT = 200


def _address(a: Address) -> str:
    return printable(a.render(), SUBJECT_LIMIT)


def describe(ev: Event) -> tuple[str, str]:
    """(subject, detail) of an event: what it acted on, and the rest worth a glance."""
    kind = ev.kind
    if kind is EventKind.EXEC:
        argv = ev.argv or ()
        if ev.path and argv and argv[0] == ev.path:
            # the usual case: argv[0] repeats the path, show it once
            return printable(ev.path, SUBJECT_LIMIT), argv_text(argv[1:], DETAIL_LIMIT)
        # argv[0] differs from what ran (PATH lookup, or a process lying about its name): show both
        return printable(ev.path or "", SUBJECT_LIMIT), argv_text(argv, DETAIL_LIMIT)
    if kind is EventKind.SPAWN:
        return (f"pid {ev.target}" if ev.target is not None else "?"), printable(ev.flags or "", DETAIL_LIMIT)
    if kind is EventKind.EXIT:
        if ev.syscall == "killed":
            return printable(ev.flags or "signal", DETAIL_LIMIT), ""
        return f"status {ev.result}" if ev.result is not None else "", ""
    if kind in (EventKind.SIGNAL, EventKind.PTRACE):
        subject = f"pid {ev.target}" if ev.target is not None else printable(ev.path or "", SUBJECT_LIMIT)
        return subject, printable(ev.flags or "", DETAIL_LIMIT)
    if kind in _ADDRESS_KINDS:
        subject = _address(ev.address) if ev.address is not None else printable(ev.path or "", SUBJECT_LIMIT)
        parts = []
        if kind is EventKind.SOCKET and ev.flags:
            return printable(ev.flags, SUBJECT_LIMIT), ""
        if ev.size is not None:
            parts.append(f"{ev.size} B")
        if ev.data:
            parts.append('"' + printable(ev.data, DATA_LIMIT) + '"')
        return subject, " ".join(parts)
    # files and the rest: the path (or what strace printed for a path-less fd)
    subject = printable(ev.path, SUBJECT_LIMIT) if ev.path else printable(ev.flags or "", SUBJECT_LIMIT)
    parts = []
    if ev.path2:
        parts.append("→ " + printable(ev.path2, DETAIL_LIMIT))
    elif ev.path and ev.flags:
        parts.append(printable(ev.flags, DETAIL_LIMIT))
    if ev.size is not None:
        parts.append(f"{ev.size} B")
    if ev.data:  # what was written: often the most telling part of a file or pipe write
        parts.append('"' + printable(ev.data, DATA_LIMIT) + '"')
    return subject, " ".join(parts)


# ---------------------------------------------------------------- builders

Cited = dict[tuple[int, float, str], tuple[str, ...]]
"""Rule ids by cited event of one phase: (pid, time, syscall) → ids."""


def _evidence_keys(
    findings: Iterable[Finding],
) -> tuple[dict[Phase, Cited], dict[tuple[str, int], tuple[str, ...]]]:
    """Rule ids by cited event (per phase: pid, time, syscall) and by cited process (phase, pid).

    Evidence copies the event's time exactly, so (pid, time, syscall) finds the event.
    """
    by_event: dict[Phase, dict[tuple[int, float, str], list[str]]] = {}
    by_pid: dict[tuple[str, int], list[str]] = {}
    for f in findings:
        for ev in f.evidence:
            ids = by_event.setdefault(ev.phase, {}).setdefault((ev.pid, ev.time, ev.syscall), [])
            if f.rule_id not in ids:
                ids.append(f.rule_id)
            ids = by_pid.setdefault((ev.phase.value, ev.pid), [])
            if f.rule_id not in ids:
                ids.append(f.rule_id)
    return (
        {ph: {k: tuple(v) for k, v in d.items()} for ph, d in by_event.items()},
        {k: tuple(v) for k, v in by_pid.items()},
    )


def phase_order(report: Report) -> list[Phase]:
    """Phases in run order: those with a result, then any that only appear in events or processes."""
    seen = list(dict.fromkeys(p.phase for p in report.phases))
    extra = (
        {e.phase for e in report.events}
        | {p.phase for p in report.processes}
        | {f.phase for f in report.findings}
    )
    return seen + sorted(extra - set(seen), key=lambda p: p.order)


def _phase_starts(report: Report) -> dict[Phase, float]:
    """The earliest timestamp seen in each phase: relative seconds count from it."""
    t0: dict[Phase, float] = {}
    for p in report.processes:
        if p.start > 0 and p.start < t0.get(p.phase, float("inf")):
            t0[p.phase] = p.start
    for e in report.events:
        if e.time > 0 and e.time < t0.get(e.phase, float("inf")):
            t0[e.phase] = e.time
    return t0


def build_findings(report: Report, t0: dict[Phase, float] | None = None) -> tuple[FindingView, ...]:
    """Findings, worst first, each with its rule's description and its evidence."""
    starts = t0 if t0 is not None else _phase_starts(report)
    out = []
    for f in sorted(report.findings, key=lambda f: (-f.severity.rank, f.phase.order)):
        info = CATALOGUE.get(f.rule_id)
        out.append(
            FindingView(
                rule_id=printable(f.rule_id, 40),
                title=printable(f.title, 200),
                severity=f.severity,
                phase=f.phase,
                message=printable(f.message, 2000),
                description=info.description if info else "",
                evidence=tuple(_evidence(ev, starts) for ev in f.evidence),
            )
        )
    return tuple(out)


def _evidence(ev: Evidence, t0: dict[Phase, float]) -> EvidenceView:
    start = t0.get(ev.phase, 0.0)
    return EvidenceView(
        phase=ev.phase,
        pid=ev.pid,
        t=(ev.time - start) if ev.time > 0 and start > 0 else None,
        syscall=printable(ev.syscall, 60),
        process=argv_text(ev.process, DETAIL_LIMIT),
        path=printable(ev.path or "", SUBJECT_LIMIT),
        destination=printable(ev.destination or "", 300),
        bytes=ev.bytes,
        data=printable(ev.data or "", 600),
        errno=printable(ev.errno or "", 40),
        detail=printable(ev.detail, 600),
    )


def _status(p: ProcessInfo) -> tuple[str, bool]:
    if p.killed_by:
        return f"killed by {printable(p.killed_by, 60)}", True
    if p.exit_code is not None:
        return f"exit {p.exit_code}", p.exit_code != 0
    return "no exit seen", False


def build_process_tree(
    phase: Phase,
    processes: Sequence[ProcessInfo],
    *,
    t0: float = 0.0,
    event_counts: dict[int, int] | None = None,
    rules_by_pid: dict[tuple[str, int], tuple[str, ...]] | None = None,
    lingering: Iterable[int] = (),
    extra_pids: Iterable[int] = (),
) -> tuple[ProcessNode, ...]:
    """The process forest of one phase.

    A process whose parent is not a process of the phase (the harness, or a pid the
    trace never saw) is a root.  Parent links are followed without recursion and a
    cycle (pid reuse, or a hostile report) cannot loop: each pid is placed once.
    *extra_pids* (pids that appear in events or evidence without a process record)
    become roots marked ``known=False``.
    """
    counts = event_counts or {}
    rules = rules_by_pid or {}
    linger = set(lingering)
    procs: dict[int, ProcessInfo] = {}
    for p in processes:
        procs.setdefault(p.pid, p)  # first record wins when a pid repeats

    def rel(t: float | None) -> float | None:
        return (t - t0) if t is not None and t > 0 and t0 > 0 else None

    children: dict[int, list[int]] = {}
    roots: list[int] = []
    for pid, p in procs.items():
        if p.ppid is not None and p.ppid in procs and p.ppid != pid:
            children.setdefault(p.ppid, []).append(pid)
        else:
            roots.append(pid)

    def by_start(k: int) -> tuple[float, int]:
        return (procs[k].start, k)

    for kids in children.values():
        kids.sort(key=by_start)
    roots.sort(key=by_start)

    # Depth-first placement from the roots.  A pid left unplaced sits in a ppid cycle
    # (pid reuse, or a forged report): it becomes a root, which breaks the cycle.
    tree_parent: dict[int, int] = {}
    order: list[int] = []
    placed: set[int] = set()
    root_list: list[int] = []

    def place(root: int) -> None:
        root_list.append(root)
        stack = [root]
        while stack:
            pid = stack.pop()
            if pid in placed:
                continue
            placed.add(pid)
            order.append(pid)
            for c in reversed(children.get(pid, [])):
                if c not in placed:
                    tree_parent[c] = pid
                    stack.append(c)

    for r in roots:
        place(r)
    for pid in sorted(procs, key=by_start):
        if pid not in placed:
            place(pid)

    # Build nodes bottom-up (reverse pre-order: children before parents), no recursion.
    built: dict[int, ProcessNode] = {}
    for pid in reversed(order):
        p = procs[pid]
        status, failed = _status(p)
        child_nodes = tuple(built[c] for c in children.get(pid, []) if tree_parent.get(c) == pid)
        built[pid] = ProcessNode(
            pid=pid,
            ppid=p.ppid,
            argv=argv_text(p.argv, SUBJECT_LIMIT),
            exe=printable(p.exe, SUBJECT_LIMIT),
            origin=p.origin.value,
            start=rel(p.start),
            end=rel(p.end),
            status=status,
            failed=failed,
            execs=tuple(argv_text(x, SUBJECT_LIMIT) for x in p.execs[:-1]),
            via=tuple(printable(posixpath.basename(x[0]), 80) for x in p.execs[:-1] if x),
            rules=rules.get((phase.value, pid), ()),
            events=counts.get(pid, 0),
            lingering=pid in linger,
            known=True,
            children=child_nodes,
        )
    out = [built[pid] for pid in root_list]
    for pid in sorted(set(extra_pids) - set(procs)):
        out.append(
            ProcessNode(
                pid=pid,
                ppid=None,
                argv="",
                exe="",
                origin="",
                start=None,
                end=None,
                status="no process record",
                failed=False,
                execs=(),
                via=(),
                rules=rules.get((phase.value, pid), ()),
                events=counts.get(pid, 0),
                lingering=pid in linger,
                known=False,
            )
        )
    return tuple(out)


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


def build_timeline(events: Sequence[Event], t0: float, cited: Cited | None = None) -> Timeline:
    """One phase's timeline (see :class:`Timeline`)."""
    return Timeline(events, t0, cited)


_KIND_VALUE = {k: k.value for k in EventKind}  # Enum.value is a descriptor call: too slow per event
_by_time = attrgetter("time", "seq")


def protocol_of(socket_flags: str | None, address: Address | None) -> str:
    """``tcp``/``udp``/``raw`` from a socket() call's flags, else the address family."""
    if socket_flags:
        m = _SOCK_TYPE.search(socket_flags)
        if m:
            proto = _PROTO[m.group(1)]
            return f"unix/{proto}" if socket_flags.startswith("AF_UNIX") else proto
    if address is not None:
        return address.family
    return ""


def build_network(
    events: Sequence[Event],
    t0: float,
    argv_of: dict[int, str],
    cited: Cited | None = None,
) -> tuple[NetworkRow, ...]:
    """Connect/send/recv/bind/listen/DNS events of one phase, identical ones grouped.

    The protocol comes from the last ``socket()`` the same process made with the same
    address family: events carry no fd, so this is a heuristic that holds for the
    usual socket-then-connect sequence.
    """
    cited = cited or {}
    last_socket: dict[tuple[int, str], str] = {}
    groups: dict[tuple[int, str, str, str, str], list[Any]] = {}
    for ev in sorted((e for e in events if e.kind in _NET_KINDS or e.kind is EventKind.SOCKET), key=_by_time):
        if ev.kind is EventKind.SOCKET:
            flags = ev.flags or ""
            family = flags.split(",", 1)[0].strip()
            last_socket[(ev.pid, family)] = flags
            continue
        if ev.kind not in _NET_KINDS:
            continue
        a = ev.address
        family = {"inet": "AF_INET", "inet6": "AF_INET6", "unix": "AF_UNIX"}.get(a.family, "") if a else ""
        proto = protocol_of(last_socket.get((ev.pid, family)), a)
        dest = _address(a) if a is not None else printable(ev.path or "", SUBJECT_LIMIT)
        key = (ev.pid, ev.syscall, dest, proto, printable(ev.errno, 40) if ev.errno else "")
        rules = cited.get((ev.pid, ev.time, ev.syscall), ())
        g = groups.get(key)
        if g is None:
            outbound = a is not None and a.family in ("inet", "inet6") and not a.is_loopback
            groups[key] = [
                ev.kind.value,
                outbound,
                1,
                ev.size,
                ev.time - t0 if t0 > 0 else ev.time,
                printable(ev.data, DATA_LIMIT) if ev.data else "",
                list(rules),
            ]
        else:
            g[2] += 1
            if ev.size is not None:
                g[3] = (g[3] or 0) + ev.size
            if not g[5] and ev.data:
                g[5] = printable(ev.data, DATA_LIMIT)
            g[6].extend(r for r in rules if r not in g[6])
    return tuple(
        NetworkRow(
            pid=pid,
            process=argv_of.get(pid, ""),
            syscall=printable(syscall, 40),
            kind=g[0],
            destination=dest,
            protocol=proto,
            outbound=g[1],
            count=g[2],
            bytes=g[3],
            errno=errno,
            first=g[4],
            data=g[5],
            rules=tuple(g[6]),
        )
        for (pid, syscall, dest, proto, errno), g in groups.items()
    )


def build_files(
    events: Sequence[Event],
    t0: float,
    venv: str = "",
    cited: Cited | None = None,
) -> tuple[FileGroup, ...]:
    """Paths one phase touched, grouped by location; within a group, flagged and written paths first."""
    cited = cited or {}
    # path -> [access bits, count, errnos or None, ok, pids, first time, rules or None]; plain lists
    # and bit masks because this loop runs once per event.
    agg: dict[str, list[Any]] = {}
    rename_bit, rename_to_bit = _ACCESS_BIT["rename"], _ACCESS_BIT["rename-to"]
    renames = []
    for ev in events:
        bit = _KIND_BIT.get(ev.kind)
        path = ev.path
        if bit is None or not path:
            continue
        if ev.path2 and ev.kind is EventKind.FILE_RENAME:
            renames.append(ev)
            continue
        a = agg.get(path)
        if a is None:
            a = agg[path] = [bit, 1, None, 0, {ev.pid}, ev.time, None]
        else:
            a[0] |= bit
            a[1] += 1
            a[4].add(ev.pid)
        if ev.errno:
            if a[2] is None:
                a[2] = set()
            a[2].add(ev.errno)
        else:
            a[3] += 1
        if cited:
            rules = cited.get((ev.pid, ev.time, ev.syscall))
            if rules:
                a[6] = list(dict.fromkeys((a[6] or []) + list(rules)))
    for ev in renames:  # rare: the source and the target both count
        rules = cited.get((ev.pid, ev.time, ev.syscall)) if cited else None
        for p, b in ((ev.path or "", rename_bit), (ev.path2 or "", rename_to_bit)):
            a = agg.get(p)
            if a is None:
                a = agg[p] = [0, 0, None, 0, set(), ev.time, None]
            a[0] |= b
            a[1] += 1
            if ev.errno:
                a[2] = (a[2] or set()) | {ev.errno}
            else:
                a[3] += 1
            a[4].add(ev.pid)
            if ev.time < a[5]:
                a[5] = ev.time
            if rules:
                a[6] = list(dict.fromkeys((a[6] or []) + list(rules)))

    grouped: dict[str, list[FileRow]] = {}
    for path, (mask, count, errnos, ok, pids, first, rules) in agg.items():
        row = FileRow(
            path=printable(path, SUBJECT_LIMIT),
            access=_access_names(mask),
            count=count,
            errnos=tuple(sorted(printable(e, 40) for e in errnos)) if errnos else (),
            ok=ok,
            pids=tuple(pids) if len(pids) == 1 else tuple(sorted(pids)),
            first=first - t0 if t0 > 0 else first,
            rules=tuple(rules) if rules else (),
        )
        grouped.setdefault(location_of(path, venv), []).append(row)
    out = []
    for loc in sorted(grouped, key=_LOCATION_ORDER.__getitem__):
        rows = grouped[loc]
        # Most telling first: cited by a finding, then changed (exec/write…) before read, then path.
        rows.sort(key=lambda r: (not r.rules, _ACCESS_RANK[r.access[0]] > _ACCESS_RANK["mkdir"], r.path))
        out.append(FileGroup(location=loc, label=_LABELS[loc], rows=tuple(rows)))
    return tuple(out)


def _tail(output: str, limit: int = 4000) -> str:
    """The end of a phase's output, line breaks kept, every line made printable."""
    return printable_lines(output[-limit:])


def _phase_notes(pr: PhaseResult | None) -> tuple[str, ...]:
    if pr is None:
        return ("not run",)
    notes = []
    if pr.phase is Phase.IMPORT and pr.steps:
        bad = sum(1 for st in pr.steps if st.status is not PhaseStatus.OK)
        notes.append(f"{len(pr.steps)} modules, {bad} failed")
    if pr.lingering:
        notes.append(f"{len(pr.lingering)} lingering")
    if not pr.trace_complete:
        notes.append("trace incomplete")
    notes.extend(printable(x, 300) for x in pr.problems)
    return tuple(notes)


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic GC while building many small acyclic objects.

    A view of a 100k-event report allocates a few objects per event and frees none
    of them, so the collector keeps rescanning a growing heap (a third of the build
    time) and finds nothing: the objects form no cycles.  The parser does the same.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def build_view(report: Report, *, phases: Iterable[Phase] | None = None) -> ReportView:
    """The view model of a whole report (or of the given *phases* only)."""
    with no_cyclic_gc():
        return _build_view(report, phases)


def _build_view(report: Report, phases: Iterable[Phase] | None) -> ReportView:
    wanted = set(phases) if phases is not None else None
    order = [p for p in phase_order(report) if wanted is None or p in wanted]
    t0 = _phase_starts(report)
    by_event, by_pid = _evidence_keys(report.findings)
    results = {pr.phase: pr for pr in report.phases}
    summaries = {s.phase: s for s in report.summary}
    venv = venv_root(report.inventory.site_packages) if report.inventory.site_packages else ""

    events_by_phase: dict[Phase, list[Event]] = {p: [] for p in order}
    for ev in report.events:
        bucket = events_by_phase.get(ev.phase)
        if bucket is not None:
            bucket.append(ev)
    procs_by_phase: dict[Phase, list[ProcessInfo]] = {p: [] for p in order}
    for proc in report.processes:
        plist = procs_by_phase.get(proc.phase)
        if plist is not None:
            plist.append(proc)

    views = []
    for phase in order:
        events = events_by_phase[phase]
        procs = procs_by_phase[phase]
        start = t0.get(phase, 0.0)
        pr = results.get(phase)
        counts: dict[int, int] = {}
        for ev in events:
            counts[ev.pid] = counts.get(ev.pid, 0) + 1
        known = {p.pid for p in procs}
        cited_pids = {pid for (ph, pid) in by_pid if ph == phase.value and pid > 0}
        extra = (set(counts) | cited_pids) - known
        lingering = [lg.pid for lg in pr.lingering] if pr else []
        argv_of = {p.pid: argv_text(p.argv, 200) for p in procs}
        summary = summaries.get(phase)
        views.append(
            PhaseView(
                phase=phase,
                status=pr.status.value if pr else "",
                ran=pr is not None,
                duration=pr.duration if pr else 0.0,
                exit_code=pr.exit_code if pr else None,
                trace_complete=pr.trace_complete if pr else True,
                total_events=summary.events if summary else len(events),
                t0=start,
                notes=_phase_notes(pr),
                output_tail=_tail(pr.output_tail) if pr else "",
                steps=tuple(
                    (printable(s.name, 200), s.status.value, s.duration, printable(s.detail, 300))
                    for s in pr.steps
                )
                if pr
                else (),
                processes=build_process_tree(
                    phase,
                    procs,
                    t0=start,
                    event_counts=counts,
                    rules_by_pid=by_pid,
                    lingering=lingering,
                    extra_pids=extra,
                ),
                process_count=len(known) + len(extra),
                timeline=build_timeline(events, start, by_event.get(phase)),
                network=build_network(events, start, argv_of, by_event.get(phase)),
                files=build_files(events, start, venv, by_event.get(phase)),
            )
        )

    cand = next((a for a in report.artifacts if a.role is ArtifactRole.CANDIDATE), None)
    return ReportView(
        title=report_title(report),
        target=printable(report.target, 500),
        verdict=report.verdict,
        verdict_reason=printable(report.verdict_reason, 1000),
        tool_version=printable(report.tool_version, 60),
        schema_version=printable(report.schema_version, 20),
        profile=printable(report.profile, 100),
        started=report.started,
        finished=report.finished,
        image=printable(f"{report.image.tag} (Python {report.image.python})", 200) if report.image else "",
        candidate=printable(f"{cand.filename} sha256 {cand.sha256}", 300) if cand else "",
        artifacts=tuple(
            (
                a.role.value,
                printable(f"{a.name}=={a.version}", 200),
                printable(a.filename, 300),
                printable(a.sha256, 64),
            )
            for a in report.artifacts
        ),
        findings=tuple(f for f in build_findings(report, t0) if wanted is None or f.phase in wanted),
        phases=tuple(views),
        notes=tuple(printable(n, 500) for n in report.notes),
        pth_files=tuple(
            (printable(p.path, 500), printable(p.head, 500), p.executes) for p in report.inventory.pth_files
        ),
    )


# ---------------------------------------------------------------- documents holding reports


def _is_report(node: dict[str, Any]) -> bool:
    return "schema_version" in node and "events" in node and "findings" in node


def find_reports(document: object) -> list[tuple[str, dict[str, Any]]]:
    """Every report object inside a JSON document, with its JSON path (``$`` for the top level).

    ``vet`` writes a report at the top level; a gate result holds one per package
    (``$.outcomes[3].report``), a diff two.  An object with ``schema_version``,
    ``events`` and ``findings`` is taken for a report and not searched further.
    """
    found: list[tuple[str, dict[str, Any]]] = []
    stack: list[tuple[str, object]] = [("$", document)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            if _is_report(node):
                found.append((path, node))
                continue
            stack.extend((f"{path}.{k}", v) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(node))))
    return found


def report_title(report: Report) -> str:
    """``name version`` of the candidate, else the target."""
    cand = next((a for a in report.artifacts if a.role is ArtifactRole.CANDIDATE), None)
    return printable(f"{cand.name} {cand.version}" if cand else report.target, 200)


def load_reports(path: Path) -> list[tuple[str, Report]]:
    """The reports in a JSON file written by ``vet``, ``gate`` or ``diff``, each with a label.

    A ``vet`` report gives one entry labelled with its candidate; a document holding
    several gives one per report, labelled with the candidate and where it sits in
    the document.  Anything else is one clear :class:`~sandbox.errors.InputError`
    (exit 2), as :func:`~sandbox.report.json_format.load_report` does for one report.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read report {path}: {exc}") from exc
    major = SCHEMA_VERSION.split(".")[0]
    # Fast path, the common case: the file is one report.  pydantic's own JSON parser validates a
    # 100k-event report in ~70% of the time of json.loads + model_validate.  Anything else (a gate
    # result, another schema, a broken file) takes the slow path, which explains what is wrong.
    try:
        report = Report.model_validate_json(text)
    except ValueError:  # ValidationError is a ValueError, and so is malformed JSON
        pass
    else:
        if report.schema_version.split(".")[0] == major:
            return [(report_title(report), report)]
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{path} is not JSON: {exc}") from exc
    del text  # a 100k-event report is ~40 MB of text: do not hold it while validating
    found = find_reports(data)
    if not found:
        raise InputError(
            f"{path} holds no pkgsandbox report (no object with schema_version, events and findings)"
        )
    out = []
    for where, node in found:
        version = str(node.get("schema_version"))
        if version.split(".")[0] != major:
            raise InputError(f"{path}: {where} has report schema {version}, this tool reads {SCHEMA_VERSION}")
        try:
            report = Report.model_validate(node)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(x) for x in first["loc"])
            raise InputError(f"{path} is not a valid report: {where}.{loc}: {first['msg']}") from exc
        title = report_title(report)
        out.append((title if where == "$" else f"{title} ({where})", report))
    return out
