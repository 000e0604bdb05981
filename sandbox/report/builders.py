"""The builders of the view models, one pass over the events per view (written for 100k-event reports)."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from typing import Any

from sandbox.judge.rules import CATALOGUE
from sandbox.models import (
    Address,
    Event,
    EventKind,
    Evidence,
    Finding,
    Phase,
    PhaseResult,
    PhaseStatus,
    ProcessInfo,
    Report,
    StepResult,
)
from sandbox.report.describe import (
    _ACCESS_BIT,
    _ACCESS_RANK,
    _KIND_BIT,
    _LABELS,
    _LOCATION_ORDER,
    _NET_KINDS,
    _PROTO,
    _SOCK_TYPE,
    DATA_LIMIT,
    DETAIL_LIMIT,
    SUBJECT_LIMIT,
    _access_names,
    _address,
    location_of,
)
from sandbox.report.sanitize import argv_text, printable, printable_lines
from sandbox.report.view_models import (
    Cited,
    EvidenceView,
    FileGroup,
    FileRow,
    FindingView,
    NetworkRow,
    ProcessNode,
    Timeline,
    _by_time,
)

# ---------------------------------------------------------------- builders


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


def build_timeline(events: Sequence[Event], t0: float, cited: Cited | None = None) -> Timeline:
    """One phase's timeline (see :class:`Timeline`)."""
    return Timeline(events, t0, cited)


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


# the exercise phase's re-import of a library with no command (agent/exercise.py
# again_target) is no command run with --help
SECOND_SESSION = "again (a second session)"


def commands(steps: tuple[StepResult, ...]) -> int:
    """The exercise phase's commands among its *steps*."""
    return sum(1 for st in steps if not st.name.endswith(SECOND_SESSION))


def _phase_notes(pr: PhaseResult | None) -> tuple[str, ...]:
    if pr is None:
        return ("not run",)
    notes = []
    if pr.phase is Phase.IMPORT and pr.steps:
        bad = sum(1 for st in pr.steps if st.status is not PhaseStatus.OK)
        notes.append(f"{len(pr.steps)} modules, {bad} failed")
    elif pr.phase is Phase.EXERCISE and commands(pr.steps):
        notes.append(f"{commands(pr.steps)} commands run with --help")
    if pr.lingering:
        notes.append(f"{len(pr.lingering)} lingering")
    if not pr.trace_complete:
        notes.append("trace incomplete")
    notes.extend(printable(x, 300) for x in pr.problems)
    return tuple(notes)
