"""Resource rules: PS025 (OOM kills), PS026 (storage full) and PS027 (output flood)."""

from __future__ import annotations

from sandbox.judge.rules.context import MAX_EVIDENCE, WRITE_KINDS, Context, dedupe, make_finding, per_phase
from sandbox.models import (
    Evidence,
    Finding,
)


def rule_oom(ctx: Context) -> list[Finding]:
    out = []
    for pr in ctx.obs.phases:
        if pr.oom_kills:
            killed = [p for p in ctx.obs.processes if p.phase is pr.phase and p.killed_by == "SIGKILL"]
            evid = [
                Evidence(
                    phase=pr.phase,
                    pid=p.pid,
                    time=p.end or 0.0,
                    syscall="(killed)",
                    process=p.argv[:32],
                    detail="killed by SIGKILL",
                )
                for p in killed[:MAX_EVIDENCE]
            ]
            if not evid:
                evid = [
                    Evidence(
                        phase=pr.phase, pid=0, time=0.0, syscall="(oom)", detail="memory cgroup oom_kill"
                    )
                ]
            out.append(
                make_finding("PS025", pr.phase, f"the OOM killer killed {pr.oom_kills} process(es)", evid)
            )
    return out


FLOOD_BYTES = 16 << 20


def rule_storage(ctx: Context) -> list[Finding]:
    hits = [e for e in ctx.events if e.errno in ("ENOSPC", "EDQUOT") and e.kind in WRITE_KINDS]
    out = []
    for phase, evs in per_phase(hits).items():
        uniq = dedupe(evs, lambda e: (e.pid, e.path))
        out.append(
            make_finding(
                "PS026", phase, f"{len(evs)} write(s) refused: storage full", [ctx.evidence(e) for e in uniq]
            )
        )
    return out


def rule_flood(ctx: Context) -> list[Finding]:
    out = []
    for pr in ctx.obs.phases:
        if pr.output_bytes > FLOOD_BYTES:
            evid = [
                Evidence(
                    phase=pr.phase,
                    pid=0,
                    time=0.0,
                    syscall="(output)",
                    bytes=pr.output_bytes,
                    detail=f"{pr.output_bytes} bytes to stdout/stderr; head and tail kept",
                )
            ]
            out.append(
                make_finding("PS027", pr.phase, f"wrote {pr.output_bytes >> 20} MiB to stdout/stderr", evid)
            )
    return out
