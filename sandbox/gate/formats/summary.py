"""What the gate's output formats share: plain evidence text, outcome words, and reports as a gate result.

The SARIF, JUnit and Markdown renderers take a :class:`GateResult`; a list of
plain ``vet`` reports is turned into one by :func:`result_from_reports` so the
renderers have one input shape.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from packaging.utils import canonicalize_name

from sandbox import __version__
from sandbox.gate.models import (
    ChangeKind,
    EntryStatus,
    GateEntry,
    GateOutcome,
    GateResult,
    LockedRequirement,
    LockFormat,
    SourceKind,
)
from sandbox.models import ArtifactRole, Evidence, Finding, Report, Verdict
from sandbox.report.sanitize import printable


def candidate_of(report: Report) -> tuple[str, str, str] | None:
    """(name, version, sha256) of the report's candidate artifact."""
    for art in report.artifacts:
        if art.role is ArtifactRole.CANDIDATE:
            return art.name, art.version, art.sha256
    return None


def result_from_reports(
    reports: Sequence[Report], *, fail_on: Verdict = Verdict.SUSPICIOUS, allow_incomplete: bool = False
) -> GateResult:
    """A gate result holding plain vet *reports* (one entry each, all "new")."""
    from sandbox.gate.run import gate_exit_code

    outcomes = []
    for report in reports:
        cand = candidate_of(report)
        name = canonicalize_name(cand[0]) if cand else report.target
        version = cand[1] if cand else None
        req = LockedRequirement(name=name, version=version, source_file=report.target, line=0)
        entry = GateEntry(
            name=name, version=version, change=ChangeKind.NEW, requirement=req, spec=report.target
        )
        outcomes.append(
            GateOutcome(
                entry=entry,
                status=EntryStatus.VETTED,
                report=report,
                seconds=max(0.0, report.finished - report.started),
            )
        )
    started = min((r.started for r in reports), default=time.time())
    finished = max((r.finished for r in reports), default=started)
    return GateResult(
        tool_version=__version__,
        lockfile="",
        lock_format=LockFormat.REQUIREMENTS,
        outcomes=tuple(outcomes),
        fail_on=fail_on,
        allow_incomplete=allow_incomplete,
        started=started,
        finished=finished,
        exit_code=gate_exit_code(outcomes, fail_on, allow_incomplete),
    )


def as_result(value: GateResult | Sequence[Report]) -> GateResult:
    """*value* itself, or the reports wrapped by :func:`result_from_reports`."""
    if isinstance(value, GateResult):
        return value
    return result_from_reports(list(value))


def evidence_text(ev: Evidence) -> str:
    """One inert line for one piece of evidence: who did what to what (every part made printable)."""
    parts = [f"[{ev.phase.value}] pid {ev.pid} {printable(ev.syscall, 60)}"]
    if ev.process:
        parts.append("by " + printable(" ".join(ev.process), 300))
    if ev.path:
        parts.append(f"path {printable(ev.path)}")
    if ev.destination:
        parts.append(f"to {printable(ev.destination)}")
    if ev.bytes is not None:
        parts.append(f"{ev.bytes} bytes")
    if ev.errno:
        parts.append(f"-> {printable(ev.errno, 40)}")
    if ev.data:
        parts.append(f"data {printable(ev.data, 120)}")
    if ev.detail:
        parts.append(f"({printable(ev.detail, 300)})")
    return " ".join(parts)


def finding_title(f: Finding) -> str:
    """``PS002 outbound connection attempt``, made printable (a report file can be forged)."""
    return printable(f"{f.rule_id} {f.title}", 300)


def outcome_word(o: GateOutcome) -> str:
    """``malicious``, ``clean`` …, or ``not vetted`` / ``error`` / ``skipped``; ``+ hash mismatch``."""
    if o.verdict is not None:
        word = o.verdict.value
        return f"{word}, hash mismatch" if o.hash_mismatch else word
    return o.status.value.replace("_", " ")


def change_text(o: GateOutcome) -> str:
    """``1.0 -> 1.1``, ``new`` or the diff's reason."""
    e = o.entry
    if e.change is ChangeKind.CHANGED:
        if e.previous and e.version and e.previous != e.version:
            return f"{e.previous} -> {e.version}"
        return e.reason or "changed"
    return "new" if e.reason != "no base: every package is vetted" else "vetted (no base)"


def version_text(o: GateOutcome) -> str:
    """The version vetted; unpinned requirements say what they resolved to."""
    if o.entry.version:
        return o.entry.version
    if o.entry.requirement.kind is not SourceKind.INDEX:
        return str(o.entry.requirement.kind.value)
    resolved = o.resolved_version
    spec = o.entry.requirement.specifier or "any"
    return f"{resolved} (unpinned {spec})" if resolved else f"unpinned {spec}"
