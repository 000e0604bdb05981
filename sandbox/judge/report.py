"""Observation → report: findings, verdict and the per-phase summary."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from sandbox import __version__
from sandbox.fetch import StagedSet
from sandbox.judge.profiles import Profile
from sandbox.judge.rules import evaluate, incomplete_reasons
from sandbox.judge.static import RULE_ID as STATIC_RULE
from sandbox.judge.static import second_opinion
from sandbox.judge.verdict import verdict_for
from sandbox.models import (
    ImageInfo,
    NetworkCapture,
    Observation,
    Origin,
    PhaseResult,
    PhaseSummary,
    Report,
    Verdict,
)


def summarise(obs: Observation) -> tuple[PhaseSummary, ...]:
    """Per-phase event counts by kind and origin."""
    out = []
    for pr in obs.phases:
        evs = [e for e in obs.events if e.phase is pr.phase]
        out.append(
            PhaseSummary(
                phase=pr.phase,
                events=len(evs),
                by_kind=dict(Counter(e.kind.value for e in evs)),
                by_origin=dict(Counter(e.origin.value for e in evs)),
                processes=sum(1 for p in obs.processes if p.phase is pr.phase),
            )
        )
    return tuple(out)


def judge(
    obs: Observation,
    *,
    target: str,
    started: float,
    image: ImageInfo | None,
    staged: StagedSet | None,
    profile: Profile,
    hostname: str = "",
    notes: Iterable[str] = (),
    network: NetworkCapture | None = None,
) -> Report:
    """Findings and verdict for an observation under *profile*, as a report (with the
    sinkhole's *network* section and its rules when there is one)."""
    # one call: sinkhole connections the trace already shows are not judged twice, and
    # PS030's escalation sees every finding
    findings = evaluate(obs, profile, network, hostname)
    verdict, reason = verdict_for(findings, incomplete_reasons(obs))
    return Report(
        tool_version=__version__,
        target=target,
        started=started,
        finished=time.time(),
        profile=f"{profile.name} ({profile.digest()})",
        image=image,
        artifacts=staged.artifacts if staged else (),
        phases=obs.phases,
        summary=summarise(obs),
        processes=obs.processes,
        # harness events stay, labelled (what was exempted is shown); runtime noise does not
        events=tuple(e for e in obs.events if e.origin is not Origin.RUNTIME),
        findings=tuple(findings),
        verdict=verdict,
        verdict_reason=reason,
        inventory=obs.inventory,
        hostname=hostname,
        notes=tuple(notes) + (staged.notes if staged else ()),
        network=network,
    )


def with_static_opinion(report: Report, artifact: Path, profile: Profile) -> Report:
    """A run that could not look gets a second opinion from static rules over the
    candidate's sources: a hit makes it ``suspicious`` (never ``malicious``), with the
    evidence marked static and the reason it was incomplete kept."""
    if report.verdict is not Verdict.INCOMPLETE or STATIC_RULE in profile.rules.disabled:
        return report
    finding, note = second_opinion(artifact)
    if finding is None:
        return report.model_copy(update={"notes": (*report.notes, note)})
    return report.model_copy(
        update={
            "findings": (*report.findings, finding),
            "verdict": Verdict.SUSPICIOUS,
            "verdict_reason": f"{finding.message} (static: the run could not look: {report.verdict_reason})",
            "notes": (*report.notes, note),
        }
    )


def partial_report(
    target: str,
    started: float,
    image: ImageInfo | None,
    staged: StagedSet | None,
    profile: Profile,
    phases: Sequence[PhaseResult],
) -> Report:
    """What an interrupted run knew: finished phases' status, no verdict but incomplete."""
    return Report(
        tool_version=__version__,
        target=target,
        started=started,
        finished=time.time(),
        profile=f"{profile.name} ({profile.digest()})",
        image=image,
        artifacts=staged.artifacts if staged else (),
        phases=tuple(phases),
        summary=(),
        processes=(),
        events=(),
        findings=(),
        verdict=Verdict.INCOMPLETE,
        verdict_reason="interrupted before the run finished",
        notes=("partial report: traces of an interrupted run are not collected",),
    )
