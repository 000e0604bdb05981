"""Observation → report: findings, verdict and the per-phase summary."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from sandbox import __version__
from sandbox.fetch import StagedSet
from sandbox.judge.calls import as_context, fetched_only_what_we_handed, proof_only, without_calls
from sandbox.judge.incomplete import capped_modules
from sandbox.judge.profiles import Profile
from sandbox.judge.rules import apply_profile, evaluate, incomplete_reasons
from sandbox.judge.rules.accounted import FED_NOTE
from sandbox.judge.rules.differential import (
    CONTROL,
    REPLAY,
    SECRETS,
    rule_secret_dependence,
    seeded_phases,
)
from sandbox.judge.static import DECODE_RULES, SPEAKS_ALONE, second_opinion
from sandbox.judge.static import RULE_ID as STATIC_RULE
from sandbox.judge.verdict import verdict_for
from sandbox.models import (
    DEFAULT_PASS,
    Artifact,
    Event,
    EventKind,
    Finding,
    ImageInfo,
    Inventory,
    NetworkCapture,
    Observation,
    Origin,
    Phase,
    PhaseResult,
    PhaseSummary,
    Report,
    Round,
    Severity,
    Verdict,
)

# The harness's file events listed per phase and pass (pip installing a big closure
# writes a million files: a gigabyte of report); the summary counts them all, and
# rules judged every one. Its other events (execs, spawns, network) are all listed.
HARNESS_FILES_LISTED = 2000
_FILE_KINDS = frozenset(k for k in EventKind if k.value.startswith(("file_", "dir_")))


def listed_events(obs: Observation) -> tuple[tuple[Event, ...], list[str]]:
    """The events a report lists: every candidate event and every harness event but
    the harness's file events past :data:`HARNESS_FILES_LISTED` in a phase of a pass
    (runtime noise is only counted); a note for each phase whose list was cut."""
    listed: list[Event] = []
    files: Counter[tuple[Phase, str]] = Counter()
    for e in obs.events:
        if e.origin is Origin.RUNTIME:
            continue
        if e.origin is Origin.HARNESS and e.kind in _FILE_KINDS:
            key = (e.phase, e.pass_name)
            files[key] += 1
            if files[key] > HARNESS_FILES_LISTED:
                continue
        listed.append(e)
    cut = [
        f"{phase.value}{'' if name == DEFAULT_PASS else f' [{name}]'} {n}"
        for (phase, name), n in files.items()
        if n > HARNESS_FILES_LISTED
    ]
    # one note for the run (pip alone passes the cut on most vets: a note per phase was noise)
    notes = (
        [
            f"report: the first {HARNESS_FILES_LISTED} harness file events of each phase listed, "
            f"all counted in the summary and judged ({', '.join(cut)})"
        ]
        if cut
        else []
    )
    return tuple(listed), notes


def summarise(obs: Observation) -> tuple[PhaseSummary, ...]:
    """Per-phase event counts by kind and origin."""
    # one pass over the events (a big run has millions), counted by (phase, pass, kind,
    # origin); the per-phase counts come out of that
    counts = Counter((e.phase, e.pass_name, e.kind, e.origin) for e in obs.events)
    out = []
    for pr in obs.phases:
        mine = [
            (k, o, n) for (ph, name, k, o), n in counts.items() if ph is pr.phase and name == pr.pass_name
        ]
        by_kind: Counter[str] = Counter()
        by_origin: Counter[str] = Counter()
        for k, o, n in mine:
            by_kind[k.value] += n
            by_origin[o.value] += n
        out.append(
            PhaseSummary(
                phase=pr.phase,
                events=sum(n for _, _, n in mine),
                by_kind=dict(by_kind),
                by_origin=dict(by_origin),
                processes=sum(
                    1 for p in obs.processes if p.phase is pr.phase and p.pass_name == pr.pass_name
                ),
                pass_name=pr.pass_name,
            )
        )
    return tuple(out)


def pass_names(obs: Observation) -> list[str]:
    """The passes an observation holds, the default one first."""
    return list(dict.fromkeys([DEFAULT_PASS, *(pr.pass_name for pr in obs.phases)]))


def pass_observation(obs: Observation, name: str) -> Observation:
    """The part of *obs* one pass saw: its phases, events and processes only (the
    install inventory belongs to the default pass: an extra pass does not install)."""
    return obs.model_copy(
        update={
            "events": tuple(e for e in obs.events if e.pass_name == name),
            "processes": tuple(p for p in obs.processes if p.pass_name == name),
            "phases": tuple(pr for pr in obs.phases if pr.pass_name == name),
            "fs_changes": tuple(c for c in obs.fs_changes if c.pass_name == name),
            "inventory": obs.inventory if name == DEFAULT_PASS else Inventory(),
        }
    )


def pass_network(net: NetworkCapture, name: str) -> NetworkCapture:
    """What the sinkhole got during one pass."""
    return net.model_copy(
        update={
            "dns": tuple(q for q in net.dns if q.pass_name == name),
            "connections": tuple(c for c in net.connections if c.pass_name == name),
            "datagrams": tuple(d for d in net.datagrams if d.pass_name == name),
            "exfiltration": tuple(x for x in net.exfiltration if x.pass_name == name),
            "honeytoken_reads": tuple(r for r in net.honeytoken_reads if r.pass_name == name),
        }
    )


def _in_pass(f: Finding, name: str) -> Finding:
    return f.model_copy(
        update={
            "pass_name": name,
            "message": f"{f.message} (in the {name} pass)",
            "evidence": tuple(e.model_copy(update={"pass_name": name}) for e in f.evidence),
        }
    )


def pass_findings(
    obs: Observation, network: NetworkCapture | None, profile: Profile, hostname: str
) -> list[Finding]:
    """Findings of every pass, each judged on that pass's events alone (the default
    pass's never mix in); an extra pass's finding the default pass already made is
    not repeated (nor, in the secrets and control passes, one the default pass made by
    the same rule in the same phase at the same or a higher severity)."""
    findings: list[Finding] = []
    seen: set[tuple[str, str, str]] = set()
    for name in pass_names(obs):
        sub = pass_observation(obs, name)
        if name != DEFAULT_PASS and not sub.phases:
            continue
        net = pass_network(network, name) if network is not None else None
        for f in _evaluate(sub, profile, net, hostname):
            key = (f.rule_id, f.phase.value, f.message)
            if name == DEFAULT_PASS:
                seen.add(key)
                findings.append(f)
            elif key not in seen and not (name in REPEATS and _repeated(f, findings)):
                findings.append(_in_pass(f, name))
    return findings


def _evaluate(obs: Observation, profile: Profile, net: NetworkCapture | None, hostname: str) -> list[Finding]:
    """The rules over one pass; under a proof-only profile the execute phase's calls
    count only for what proves harm, and the other phases are judged without them."""
    if not proof_only(profile) or not any(pr.phase is Phase.EXECUTE for pr in obs.phases):
        return evaluate(obs, profile, net, hostname)
    rest, rest_net = without_calls(obs, net)
    asked = fetched_only_what_we_handed(net)
    calls = [
        as_context(f, asked=asked) for f in evaluate(obs, profile, net, hostname) if f.phase is Phase.EXECUTE
    ]
    return [*evaluate(rest, profile, rest_net, hostname), *calls]


# Passes that re-run the default pass's environment (the secrets one with other values
# of its honeytokens) to compare what is sent (PS031): a finding the default pass made
# by the same rule in the same phase, as severe or more, is not said again (a fetch with
# a nonce in its path would be said three times).
REPEATS = frozenset({SECRETS, CONTROL, REPLAY})


def _repeated(f: Finding, found: list[Finding]) -> bool:
    return any(
        g.pass_name == DEFAULT_PASS
        and g.rule_id == f.rule_id
        and g.phase is f.phase
        and g.severity.rank >= f.severity.rank
        for g in found
    )


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
    rounds: Sequence[Round] = (),
    extra_artifacts: Sequence[Artifact] = (),
) -> Report:
    """Findings and verdict for an observation under *profile*, as a report (with the
    sinkhole's *network* section and its rules when there is one)."""
    if rounds:  # what the rounds' wheels install is theirs (PS005 checks it byte for byte)
        hooks = tuple(
            h.model_copy(update={"phase": r.phase, "pass_name": r.pass_name}) for r in rounds for h in r.hooks
        )
        obs = obs.model_copy(update={"round_hooks": hooks})
    # one evaluate per pass: sinkhole connections the trace already shows are not judged
    # twice, and PS030's escalation sees every finding of that pass
    findings = pass_findings(obs, network, profile, hostname)
    # across passes: the secrets pass against the default and control ones
    findings += apply_profile(rule_secret_dependence(network, seeded_phases(obs.phases)), profile)
    findings.sort(key=lambda f: (-f.severity.rank, f.phase.order, f.rule_id))
    # Incomplete means the default pass could not look; an extra pass that failed is
    # a note in its phase rows (it only ever adds findings).
    best_effort = (Phase.EXECUTE,) if proof_only(profile) else ()  # the calls: only a lost trace counts
    verdict, reason = verdict_for(
        findings, incomplete_reasons(pass_observation(obs, DEFAULT_PASS), best_effort)
    )
    if verdict is Verdict.CLEAN and (capped := capped_modules(obs.phases)):
        reason = (
            f"no finding at or above medium; every phase completed with a full trace, {_cap_words(capped)}"
        )
    events, cut = listed_events(obs)
    return Report(
        tool_version=__version__,
        target=target,
        started=started,
        finished=time.time(),
        profile=f"{profile.name} ({profile.digest()})",
        image=image,
        artifacts=(staged.artifacts if staged else ()) + tuple(extra_artifacts),
        phases=obs.phases,
        summary=summarise(obs),
        processes=obs.processes,
        # harness events stay, labelled (what was exempted is shown); runtime noise does not
        events=events,
        findings=tuple(findings),
        verdict=verdict,
        verdict_reason=reason,
        inventory=obs.inventory,
        hostname=hostname,
        notes=tuple(notes) + tuple(cut) + (staged.notes if staged else ()),
        network=network,
        rounds=tuple(rounds),
    )


def _cap_words(capped: int) -> str:
    return (
        f"but the import phase's module cap left {capped} of the deepest module(s) unimported "
        "(every top-level and entry-point module imported)"
    )


def with_static_opinion(report: Report, artifact: Path, profile: Profile) -> Report:
    """A run that could not look gets a second opinion from static rules over the
    candidate's sources: a hit makes it ``suspicious`` (never ``malicious``), with the
    evidence marked static and the reason it was incomplete kept.  So does a clean run
    whose import cap left modules unimported (code that never ran, as padding would
    hide a payload there).  A run that looked but whose fetches are LOW only because
    the bait stage never ran gets the same opinion (:func:`_doubt_the_bait`)."""
    if STATIC_RULE in profile.rules.disabled:
        return report
    why = f"the run could not look: {report.verdict_reason}"
    ran: frozenset[str] = frozenset()
    if report.verdict is not Verdict.INCOMPLETE:
        report = _doubt_the_bait(report, artifact)
        capped = capped_modules(report.phases)
        if report.verdict is not Verdict.CLEAN:
            return report
        if not capped:
            return _hidden_from_the_run(report, artifact)
        why = f"{capped} module(s) beyond the import phase's cap never ran"
        ran = frozenset(report.inventory.modules)  # the modules imported: judged by what they did
    # a capped import left the deepest modules out, never a test suite (the import phase
    # skips those by design, capped or not: sglang's test helpers post the hostname)
    finding, note = second_opinion(artifact, ran=ran, suites=report.verdict is Verdict.INCOMPLETE)
    if finding is not None:
        return _suspicious_on(report, finding, note, why)
    report = report.model_copy(update={"notes": (*report.notes, note)})
    return _hidden_from_the_run(report, artifact) if report.verdict is Verdict.CLEAN else report


def _suspicious_on(report: Report, finding: Finding, note: str, why: str) -> Report:
    """*report* raised to ``suspicious`` on a static *finding*, saying *why* it spoke."""
    return report.model_copy(
        update={
            "findings": (*report.findings, finding),
            "verdict": Verdict.SUSPICIOUS,
            "verdict_reason": f"{finding.message} (static: {why})",
            "notes": (*report.notes, note),
        }
    )


def _hidden_from_the_run(report: Report, artifact: Path) -> Report:
    """A clean run whose installed sources (its modules outside a test suite, and the
    setup.py install ran) pack code to hide it or hard-code a collector's secret
    (:data:`SPEAKS_ALONE`): ``suspicious`` on that static evidence. The run saw
    nothing, which for such code says only that its payload waits for an argument, a
    machine or a day the sandbox did not offer."""
    finding, note = second_opinion(
        artifact,
        only=SPEAKS_ALONE,
        suites=False,
        what="code the run saw do nothing harmful",
        within=frozenset(report.inventory.modules),
    )
    if finding is None:
        return report
    why = "the run saw no harm, but its sources hide packed code or a collector's secret"
    return _suspicious_on(report, finding, note, why)


def _doubt_the_bait(report: Report, artifact: Path) -> Report:
    """The bait stage proves only that the answer, as sent, never ran: a downloader
    that decodes (base64, zlib, marshal …) or unwraps its answer before it runs it
    fails on the bait and looks like a library that parsed a data file.  When the
    candidate's sources match the static decode-then-exec and obfuscation rules (not
    the others: a keylogging or file-reading match says nothing about the answer),
    the findings lowered on the bait's word go back to MEDIUM, with the static
    evidence, as they were before there was a bait."""
    fed = [f for f in report.findings if f.severity is Severity.LOW and FED_NOTE in f.message]
    if not fed:
        return report
    static, note = second_opinion(artifact, only=DECODE_RULES)
    if static is None:
        return report.model_copy(update={"notes": (*report.notes, note)})
    rules = static.message.split(": ", 1)[-1]
    why = f" — but its sources match static rules ({rules}): it may decode its answer before running it"
    findings = [
        f.model_copy(update={"severity": Severity.MEDIUM, "message": f.message + why}) if f in fed else f
        for f in report.findings
    ]
    findings.append(static)
    findings.sort(key=lambda f: (-f.severity.rank, f.phase.order, f.rule_id))
    verdict, reason = verdict_for(findings, [])
    return report.model_copy(
        update={
            "findings": tuple(findings),
            "verdict": verdict,
            "verdict_reason": reason,
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
    *,
    reason: str = "interrupted before the run finished",
    notes: Sequence[str] = ("partial report: traces of an interrupted run are not collected",),
) -> Report:
    """What a run that stopped early knew (interrupted, or never started because it
    could not fit): finished phases' status, no verdict but incomplete for *reason*."""
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
        verdict_reason=reason,
        notes=tuple(notes) + (staged.notes if staged else ()),
    )
