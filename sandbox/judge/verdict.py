"""From findings and run status to a verdict and an exit code (defined here only)."""

from __future__ import annotations

from collections.abc import Sequence

from sandbox.errors import ExitCode
from sandbox.models import Finding, Severity, Verdict


def verdict_for(findings: Sequence[Finding], incomplete: Sequence[str]) -> tuple[Verdict, str]:
    """``malicious`` on any HIGH/CRITICAL finding, ``suspicious`` on MEDIUM; otherwise
    ``incomplete`` when a phase failed, timed out or lost trace — a run that could not
    look never passes — else ``clean``."""
    worst = max((f.severity.rank for f in findings), default=-1)
    if worst >= Severity.HIGH.rank:
        top = [f for f in findings if f.severity.rank >= Severity.HIGH.rank]
        return Verdict.MALICIOUS, "; ".join(sorted({f"{f.rule_id} {f.title}" for f in top}))
    if worst >= Severity.MEDIUM.rank:
        top = [f for f in findings if f.severity is Severity.MEDIUM]
        return Verdict.SUSPICIOUS, "; ".join(sorted({f"{f.rule_id} {f.title}" for f in top}))
    if incomplete:
        return Verdict.INCOMPLETE, "; ".join(incomplete)
    return Verdict.CLEAN, "no finding at or above medium; every phase completed with a full trace"


def fails(verdict: Verdict, fail_on: Verdict) -> bool:
    """A finding verdict at or above *fail_on* (``incomplete`` is handled apart: it is not a finding)."""
    return verdict not in (Verdict.CLEAN, Verdict.INCOMPLETE) and verdict.rank >= fail_on.rank


def exit_code_for_verdict(verdict: Verdict, fail_on: Verdict = Verdict.SUSPICIOUS) -> ExitCode:
    """0 clean, 1 findings at or above *fail_on*, 3 incomplete."""
    if verdict is Verdict.INCOMPLETE:
        return ExitCode.SANDBOX
    if fails(verdict, fail_on):
        return ExitCode.FINDINGS
    return ExitCode.CLEAN
