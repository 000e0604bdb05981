"""Start-up hook rules: PS009 (.pth files that run code) and PS021 (exec of code
decoded at run time, on a command line or in a .pth)."""

from __future__ import annotations

import re

from sandbox.judge.rules.context import Context, dedupe, make_finding, per_phase
from sandbox.models import (
    EventKind,
    Evidence,
    Finding,
    FsChange,
    Observation,
    Phase,
    PthFile,
    StagedHook,
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


def round_hooks_installed(obs: Observation) -> list[tuple[FsChange, StagedHook]]:
    """The ``.pth`` files a round's wheel installed, with the staged hook: at the top of
    the venv's site-packages, named by a wheel a round of that phase and pass staged
    (an extra pass's round does not vouch for bytes written before it), and left
    by the phase with exactly that wheel's bytes (the snapshot diff's sha256). Like
    the install's inventory, their content is judged here (PS009, PS021)."""
    if not obs.round_hooks:
        return []
    site = re.compile(re.escape(obs.venv) + r"/lib/python3\.\d+/site-packages/([^/]+\.pth)$")
    wanted = {(h.phase, h.pass_name, h.name, h.sha256): h for h in obs.round_hooks if h.phase is not None}
    out = []
    for c in obs.fs_changes:
        m = site.match(c.path)
        hook = wanted.get((c.phase, c.pass_name, m.group(1), c.sha256 or "")) if m else None
        if hook is not None:
            out.append((c, hook))
    return out


def executes(text: str) -> bool:
    """Whether ``site`` runs a line of this ``.pth`` (one starting with ``import``)."""
    return any(line.startswith(("import ", "import\t")) for line in text.splitlines())


def _round_evidence(c: FsChange, h: StagedHook) -> Evidence:
    return Evidence(
        phase=c.phase,
        pid=0,
        time=0.0,
        syscall="(round)",
        path=c.path,
        bytes=len(h.text.encode()),
        data=h.text[:512],
        detail=f"installed by a round's dependency wheel; sha256 {h.sha256}",
    )


def rule_pth(ctx: Context) -> list[Finding]:
    execs = [
        p
        for p in ctx.obs.inventory.pth_files
        if p.executes and not (ctx.allow is not None and ctx.allow.pth_allowed(p.sha256))
    ]
    out = []
    if execs:
        evid = [_pth_evidence(p) for p in execs]
        out.append(
            make_finding(
                "PS009", Phase.INSTALL, f"{len(execs)} .pth file(s) run code at interpreter start", evid
            )
        )
    rounds = [(c, h) for c, h in round_hooks_installed(ctx.obs) if executes(h.text)]
    for phase in sorted({c.phase for c, _ in rounds}, key=lambda p: p.order):
        evid = [_round_evidence(c, h) for c, h in rounds if c.phase is phase]
        out.append(
            make_finding(
                "PS009", phase, f"{len(evid)} .pth file(s) a round installed run code at start", evid
            )
        )
    return out


# Decoded exec: an exec/eval/compile call and a decoder anywhere in the same command
# line or .pth, in either order (``p=b64decode(..); exec(p)`` as well as ``exec(b64decode(..))``).
_EXEC_CALL = re.compile(r"\b(?:exec|eval|compile)\s*\(")


_DECODER = re.compile(
    r"b64decode|b32decode|b16decode|b85decode|a85decode|fromhex|unhexlify|decompress|marshal\.loads|"
    r"codecs\.decode|rot13|\[::-1\]"
)


def decoded_exec(text: str) -> bool:
    """An exec/eval/compile call and a decoder in the same text."""
    return bool(_EXEC_CALL.search(text) and _DECODER.search(text))


def rule_decoded_exec(ctx: Context) -> list[Finding]:
    out = []
    hits = [e for e in ctx.events if e.kind is EventKind.EXEC and e.argv and decoded_exec(" ".join(e.argv))]
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
    pths = [p for p in ctx.obs.inventory.pth_files if p.executes and decoded_exec(p.head)]
    if pths:
        evid = [_pth_evidence(p) for p in pths]
        out.append(
            make_finding("PS021", Phase.INSTALL, "a start-up hook (.pth) executes decoded, hidden code", evid)
        )
    rounds = [(c, h) for c, h in round_hooks_installed(ctx.obs) if executes(h.text) and decoded_exec(h.text)]
    for phase in sorted({c.phase for c, _ in rounds}, key=lambda p: p.order):
        evid = [_round_evidence(c, h) for c, h in rounds if c.phase is phase]
        out.append(
            make_finding(
                "PS021", phase, "a start-up hook (.pth) a round installed executes decoded code", evid
            )
        )
    return out
