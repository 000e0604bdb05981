"""PS013: the sinkhole's answer ran.  Every HTTP request is answered with the run's bait
second stage (``sandbox/agent/sinkhole/http.py`` ``stage_body``): a Python/sh polyglot
whose only act is to look for a random path that appears nowhere else.  An event naming
that path proves the run executed what it downloaded — a downloader, caught with its
own stage.  Conversely a phase whose every fetch got the stage and never ran it hid no
second stage of that shape: :mod:`sandbox.judge.rules.accounted` may then call its
accounted fetches LOW."""

from __future__ import annotations

from sandbox.judge.rules.context import Context, dedupe, make_finding, per_phase
from sandbox.models import Finding, NetworkCapture, Phase


def rule_stage_ran(ctx: Context, net: NetworkCapture | None) -> list[Finding]:
    """PS013 for every phase in which any process (the harness included: only the
    candidate's code could have learnt the path) touched the stage's path."""
    if net is None or not net.stage:
        return []
    hits = [
        e
        for e in ctx.obs.events
        if any(net.stage in x for x in (e.path or "", e.path2 or "", *(e.argv or ())))
    ]
    out = []
    for phase, evs in per_phase(dedupe(hits, lambda e: (e.pid, e.syscall))).items():
        out.append(
            make_finding(
                "PS013",
                phase,
                "ran code it downloaded: the sinkhole's answer (a bait second stage) was executed",
                [ctx.evidence(e, detail=f"the bait stage looks for {net.stage}") for e in evs],
            )
        )
    return out


def staged_phases(net: NetworkCapture | None) -> set[Phase]:
    """Phases in which at least one request was answered with the bait stage and every
    connection either got it or sent nothing (a refused TLS hello got nothing, so what
    it would have run is unknown)."""
    if net is None or not net.stage:
        return set()
    out = set()
    for phase in {c.phase for c in net.connections}:
        conns = [c for c in net.connections if c.phase is phase]
        served = any(h.staged for c in conns for h in c.http)
        fed = all(
            c.protocol == "empty" or (c.http and all(h.staged or h.method == "HEAD" for h in c.http))
            for c in conns
        )
        if served and fed:
            out.add(phase)
    return out
