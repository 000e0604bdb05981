"""Behaviour rules: stable ids, severities, evidence. No package name appears here.

Each rule is a function ``Observation → list[Finding]`` registered in :data:`RULES`
with its metadata in :data:`CATALOGUE`. Rules only look at candidate-attributed
events (see :mod:`sandbox.judge.classify`); the harness and runtime noise are
classified, not judged.
"""

from __future__ import annotations

from collections.abc import Callable

from sandbox.judge.incomplete import incomplete_reasons  # re-exported: callers import it from here
from sandbox.judge.profiles import Allowlist, Profile
from sandbox.judge.rules.accounted import (
    accounted_phases,
    calm_command_config,
    free_text,
    sinkhole_phases,
    soften,
)
from sandbox.judge.rules.catalogue import CATALOGUE, RuleInfo
from sandbox.judge.rules.context import MAX_EVIDENCE, Context, is_outbound
from sandbox.judge.rules.credentials import (
    CREDENTIAL_PATHS,
    METADATA_HOSTS,
    SYSTEM_SECRETS,
    rule_credentials,
    rule_honeytoken_read,
)
from sandbox.judge.rules.escape import (
    PROBE_PATHS,
    escalate,
    escape_kind,
    rule_escape,
    rule_evasion_probe,
    rule_tamper,
)
from sandbox.judge.rules.hooks import rule_decoded_exec, rule_pth
from sandbox.judge.rules.network import (
    rule_dns,
    rule_exfiltration,
    rule_handed_secret,
    rule_outbound,
    rule_sinkhole_outbound,
)
from sandbox.judge.rules.persistence import (
    PERSISTENCE_PATHS,
    PERSISTENCE_TOOLS,
    rule_persistence,
    rule_write_outside,
)
from sandbox.judge.rules.process import (
    BURN_SHARE,
    DOWNLOADERS,
    PROBE_COMMANDS,
    SHELLS,
    interpreters,
    rule_cpu_burn,
    rule_exec_written,
    rule_explosion,
    rule_fd_exec,
    rule_lingering,
    rule_self_stop,
    rule_spawn,
    shell_probe_only,
)
from sandbox.judge.rules.resources import FLOOD_BYTES, rule_flood, rule_oom, rule_storage
from sandbox.judge.rules.stage import rule_stage_ran, staged_phases
from sandbox.models import Finding, NetworkCapture, Observation, Phase

__all__ = [
    "BURN_SHARE",
    "CATALOGUE",
    "CREDENTIAL_PATHS",
    "DOWNLOADERS",
    "FLOOD_BYTES",
    "MAX_EVIDENCE",
    "METADATA_HOSTS",
    "PERSISTENCE_PATHS",
    "PERSISTENCE_TOOLS",
    "PROBE_COMMANDS",
    "PROBE_PATHS",
    "RULES",
    "SHELLS",
    "SYSTEM_SECRETS",
    "Context",
    "RuleInfo",
    "apply_profile",
    "escalate",
    "escape_kind",
    "evaluate",
    "evaluate_network",
    "incomplete_reasons",
    "interpreters",
    "is_outbound",
    "rule_cpu_burn",
    "rule_credentials",
    "rule_decoded_exec",
    "rule_dns",
    "rule_escape",
    "rule_evasion_probe",
    "rule_exec_written",
    "rule_exfiltration",
    "rule_explosion",
    "rule_fd_exec",
    "rule_flood",
    "rule_handed_secret",
    "rule_honeytoken_read",
    "rule_lingering",
    "rule_oom",
    "rule_outbound",
    "rule_persistence",
    "rule_pth",
    "rule_self_stop",
    "rule_sinkhole_outbound",
    "rule_spawn",
    "rule_storage",
    "rule_tamper",
    "rule_write_outside",
    "shell_probe_only",
]


RULES: tuple[Callable[[Context], list[Finding]], ...] = (
    rule_credentials,
    rule_outbound,
    rule_spawn,
    rule_exec_written,
    rule_fd_exec,
    rule_persistence,
    rule_lingering,
    rule_tamper,
    rule_escape,
    rule_pth,
    rule_write_outside,
    rule_decoded_exec,
    rule_explosion,
    rule_cpu_burn,
    rule_oom,
    rule_storage,
    rule_flood,
    rule_self_stop,
    rule_evasion_probe,
)


def evaluate(
    obs: Observation,
    profile: Profile | None = None,
    network: NetworkCapture | None = None,
    hostname: str = "",
) -> list[Finding]:
    """Run every rule under *profile* (disabled rules, severity overrides, exceptions
    as :class:`Context` says), plus the sinkhole rules over *network* when given; then
    :func:`escalate`.  Findings ordered by severity (worst first), then phase."""
    allow = Allowlist(profile, obs.home, obs.inventory.site_packages or obs.venv) if profile else None
    ctx = Context(obs, allow)
    findings = [f for rule in RULES for f in rule(ctx)]
    findings = apply_profile(findings, profile)
    if network is not None:
        traced = {(e.phase, e.address.render()) for e in ctx.outbound() if e.address is not None}
        findings += evaluate_network(network, profile, hostname, traced)
        findings += apply_profile(rule_stage_ran(ctx, network), profile)
        accounted = accounted_phases(ctx.outbound(), network, hostname)
        # a phase the sinkhole saw traffic in is networked too (its own account, never
        # another phase's): its sender may be one the trace does not show as such
        networked = {e.phase for e in ctx.outbound()} | sinkhole_phases(network)
        carried = {p: free_text(network, p) for p in accounted}
        commanded: dict[Phase, int] = {
            p: free_text(network, p, trace_ids=False) for p in accounted if p is Phase.EXERCISE
        }
        findings = soften(findings, accounted, staged_phases(network), networked, carried, commanded)
    return escalate(calm_command_config(findings))


def evaluate_network(
    net: NetworkCapture | None,
    profile: Profile | None = None,
    hostname: str = "",
    traced: set[tuple[Phase, str]] | None = None,
) -> list[Finding]:
    """The sinkhole rules (PS010 to PS012, and PS002 for what the trace missed) over the
    report's network section, under the profile's disabled rules and severity
    overrides; worst first.  *traced*: (phase, destination) of the outbound attempts the
    trace shows (judged by rule_outbound); None: judge every sinkhole connection."""
    if net is None:
        return []
    findings = rule_exfiltration(net) + rule_handed_secret(net) + rule_dns(net, profile, hostname)
    findings += rule_honeytoken_read(net)
    findings += rule_sinkhole_outbound(net, profile, traced or set())
    return apply_profile(findings, profile)


def apply_profile(findings: list[Finding], profile: Profile | None) -> list[Finding]:
    """Drop the profile's disabled rules, apply its severity overrides, order worst first."""
    if profile is not None:
        findings = [
            f.model_copy(update={"severity": profile.rules.severity[f.rule_id]})
            if f.rule_id in profile.rules.severity
            else f
            for f in findings
            if f.rule_id not in profile.rules.disabled
        ]
    return sorted(findings, key=lambda f: (-f.severity.rank, f.phase.order, f.rule_id))
