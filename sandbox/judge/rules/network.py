"""Network rules: PS002 (outbound attempts, from the trace and from the sinkhole),
PS010 (proven exfiltration) and PS011 (DNS). The sinkhole rules read the report's
network section, not events: :func:`sandbox.judge.rules.evaluate_network` runs them."""

from __future__ import annotations

from sandbox.judge.calls import HANDED_HOSTS
from sandbox.judge.honeytokens import HANDED, bare_host
from sandbox.judge.profiles import Profile, glob_regex
from sandbox.judge.rules.context import Context, dedupe, is_vsock, make_finding, per_phase
from sandbox.models import (
    Event,
    Evidence,
    Exfiltration,
    Finding,
    NetworkCapture,
    Phase,
)


def rule_outbound(ctx: Context) -> list[Finding]:
    out = []
    for phase, evs in per_phase(ctx.outbound()).items():
        uniq = dedupe(evs, lambda e: (e.pid, e.syscall, e.address))
        dests = sorted({_dest(e) for e in uniq})
        out.append(
            make_finding(
                "PS002",
                phase,
                f"attempted connection(s) to {', '.join(dests[:6])}",
                [ctx.evidence(e) for e in uniq],
            )
        )
    return out


def _dest(e: Event) -> str:
    if is_vsock(e):
        return "AF_VSOCK (the VM's host, outside any network namespace)"
    return e.address.render() if e.address else "?"


def _handed_here(x: Exfiltration) -> bool:
    return bare_host(x.host) in HANDED_HOSTS


def rule_handed_secret(net: NetworkCapture) -> list[Finding]:
    """PS032: a secret the execute phase's caller handed a call left for a host the call
    was not handed (the made-up URL's host is a client doing what it was asked)."""
    hits = [x for x in net.exfiltration if x.location == HANDED and not _handed_here(x)]
    out = []
    for phase, xs in per_phase(hits).items():
        hosts = sorted({x.host or x.destination or "?" for x in xs})
        out.append(
            make_finding(
                "PS032",
                phase,
                f"sent the secret it was handed to {', '.join(hosts[:6])}",
                [_exfil_evidence(x) for x in xs],
            )
        )
    return out


def _exfil_evidence(x: Exfiltration) -> Evidence:
    return Evidence(
        phase=x.phase,
        pid=x.pid or 0,
        time=x.time,
        syscall=f"(sinkhole {x.channel})",
        process=x.process,
        path=x.location,
        destination=x.destination,
        bytes=x.bytes,
        data=x.excerpt[:512],
        detail=f"{x.canary} found {x.encoding}"
        + (f" in traffic for {x.host}" if x.host else "")
        + (f" ({x.channel}: {x.request})" if x.request else ""),
    )


def rule_exfiltration(net: NetworkCapture) -> list[Finding]:
    out = []
    # a secret handed to a call is not planted: rule_handed_secret
    planted = [x for x in net.exfiltration if x.location != HANDED]
    for phase, hits in per_phase(planted).items():
        what = sorted({f"{x.canary} ({x.location}) via {x.channel}" for x in hits})
        evid = [_exfil_evidence(x) for x in hits]
        out.append(
            make_finding("PS010", phase, f"credential exfiltration proven: {', '.join(what[:6])}", evid)
        )
    return out


def _name_allowed(profile: Profile | None, name: str, phase: Phase) -> bool:
    if profile is None:
        return False
    for rule in profile.allow.network:
        if rule.phases and phase not in rule.phases:
            continue
        if glob_regex(rule.host.replace("/", "\0"), "", "").match(name.rstrip(".")):
            return True
    return False


def _loopback_reverse(name: str) -> bool:
    """A well-formed reverse name of a loopback address (``1.0.0.127.in-addr.arpa``): what
    resolvers ask for the machine itself.  Any other ``.in-addr.arpa``/``.ip6.arpa`` name
    is a DNS query like any other (labels there carry data as well as anywhere); no
    benign run here asked the sinkhole any reverse name at all."""
    n = name.lower().rstrip(".")
    if n.endswith(".in-addr.arpa"):
        octets = n[: -len(".in-addr.arpa")].split(".")
        return len(octets) == 4 and all(o.isdigit() and int(o) < 256 for o in octets) and octets[3] == "127"
    return n == ".".join(["1"] + ["0"] * 31) + ".ip6.arpa"


def rule_dns(net: NetworkCapture, profile: Profile | None, hostname: str) -> list[Finding]:
    own = {"localhost", "localhost.localdomain", hostname.lower()} - {""}
    hits = [
        q
        for q in net.dns
        if q.malformed
        or (
            q.name.lower().rstrip(".") not in own
            and not _loopback_reverse(q.name)
            and not _name_allowed(profile, q.name, q.phase)
        )
    ]
    out = []
    for phase in sorted({q.phase for q in hits}, key=lambda p: p.order):
        qs = [q for q in hits if q.phase is phase]
        uniq = list({(q.pid, q.name, q.malformed): q for q in qs}.values())
        names = sorted({q.name or "(malformed query)" for q in uniq})
        evid = [
            Evidence(
                phase=q.phase,
                pid=q.pid or 0,
                time=q.time,
                syscall=f"(dns {q.qtype or '?'})",
                process=q.process,
                destination=q.resolver,
                detail=q.detail or f"{q.name} → {q.answer}",
            )
            for q in uniq
        ]
        out.append(
            make_finding(
                "PS011",
                phase,
                f"resolved {', '.join(names[:6])}" + (f" (+{len(names) - 6} more)" if len(names) > 6 else ""),
                evid,
            )
        )
    return out


def rule_sinkhole_outbound(
    net: NetworkCapture, profile: Profile | None, traced: set[tuple[Phase, str]]
) -> list[Finding]:
    """PS002 from the sinkhole itself: a connection or datagram it received is an outbound
    attempt even when the trace shows no matching connect (a syscall the tracer missed,
    io_uring, a lost line).  Destinations the trace already shows are left to rule_outbound."""
    hits: list[tuple[Phase, str, Evidence]] = []
    for c in net.connections:
        if (c.phase, c.destination) in traced or _name_allowed(profile, c.host or c.destination, c.phase):
            continue
        hits.append(
            (
                c.phase,
                c.destination,
                Evidence(
                    phase=c.phase,
                    pid=c.pid or 0,
                    time=c.time,
                    syscall=f"(sinkhole tcp {c.protocol})",
                    process=c.process,
                    destination=c.destination,
                    bytes=c.bytes,
                    data=c.data[:512] or None,
                    detail="received by the sinkhole; no matching connect in the trace",
                ),
            )
        )
    for g in net.datagrams:
        dest = g.destination or "(unknown destination)"
        if (g.phase, dest) in traced:
            continue
        hits.append(
            (
                g.phase,
                dest,
                Evidence(
                    phase=g.phase,
                    pid=g.pid or 0,
                    time=g.time,
                    syscall="(sinkhole udp)",
                    process=g.process,
                    destination=g.destination,
                    bytes=g.bytes,
                    data=g.data[:512] or None,
                    detail="received by the sinkhole; no matching send in the trace",
                ),
            )
        )
    out = []
    for phase in sorted({h[0] for h in hits}, key=lambda p: p.order):
        mine = [h for h in hits if h[0] is phase]
        dests = sorted({h[1] for h in mine})
        out.append(
            make_finding(
                "PS002",
                phase,
                f"sinkhole received connection(s) to {', '.join(dests[:6])}",
                [h[2] for h in mine],
            )
        )
    return out
