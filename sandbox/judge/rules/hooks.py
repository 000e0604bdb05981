"""Start-up hook rules: PS009 (.pth files that run code) and PS021 (exec of code
decoded at run time, on a command line or in a .pth)."""

from __future__ import annotations

import re

from sandbox.judge.rules.context import Context, dedupe, make_finding, per_phase
from sandbox.models import (
    EventKind,
    Evidence,
    Finding,
    Phase,
    PthFile,
)


def _pth_evidence(p: PthFile) -> Evidence:
    """A start-up hook found in site-packages after install, as evidence."""
    return Evidence(
        phase=Phase.INSTALL,
        pid=0,
        time=0.0,
        syscall="(inventory)",
        path=p.path,
        bytes=p.size,
        data=p.head[:512],
        detail=f"sha256 {p.sha256}",
    )


def rule_pth(ctx: Context) -> list[Finding]:
    execs = [
        p
        for p in ctx.obs.inventory.pth_files
        if p.executes and not (ctx.allow is not None and ctx.allow.pth_allowed(p.sha256))
    ]
    if not execs:
        return []
    evid = [_pth_evidence(p) for p in execs]
    return [
        make_finding("PS009", Phase.INSTALL, f"{len(execs)} .pth file(s) run code at interpreter start", evid)
    ]


# Decoded exec: an exec/eval/compile call and a decoder anywhere in the same command
# line or .pth, in either order (``p=b64decode(..); exec(p)`` as well as ``exec(b64decode(..))``).
_EXEC_CALL = re.compile(r"\b(?:exec|eval|compile)\s*\(")


_DECODER = re.compile(
    r"b64decode|b32decode|b16decode|b85decode|a85decode|fromhex|unhexlify|decompress|marshal\.loads|"
    r"codecs\.decode|rot13|\[::-1\]"
)


def _decoded_exec(text: str) -> bool:
    return bool(_EXEC_CALL.search(text) and _DECODER.search(text))


def rule_decoded_exec(ctx: Context) -> list[Finding]:
    out = []
    hits = [e for e in ctx.events if e.kind is EventKind.EXEC and e.argv and _decoded_exec(" ".join(e.argv))]
    for phase, evs in per_phase(hits).items():
        uniq = dedupe(evs, lambda e: (e.pid, e.argv))
        out.append(
            make_finding(
                "PS021",
                phase,
                "ran code decoded at run time (exec of encoded data)",
                [ctx.evidence(e) for e in uniq],
            )
        )
    pths = [p for p in ctx.obs.inventory.pth_files if p.executes and _decoded_exec(p.head)]
    if pths:
        evid = [_pth_evidence(p) for p in pths]
        out.append(
            make_finding("PS021", Phase.INSTALL, "a start-up hook (.pth) executes decoded, hidden code", evid)
        )
    return out
