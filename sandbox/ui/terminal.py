"""Rich rendering for the terminal: live status and the report summary (CLI only)."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sandbox.models import Evidence, Phase, PhaseStatus, Report, Severity, Verdict
from sandbox.runner.interface import Observer

VERDICT_STYLE = {
    Verdict.CLEAN: "bold green",
    Verdict.SUSPICIOUS: "bold yellow",
    Verdict.MALICIOUS: "bold red",
    Verdict.INCOMPLETE: "bold magenta",
}
SEVERITY_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


class LiveObserver(Observer):
    """Live phase status on stderr: a spinner on a terminal, plain lines otherwise."""

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.interactive = console.is_terminal
        self._status: Any = None
        self._t0 = time.monotonic()

    def __enter__(self) -> LiveObserver:
        if self.interactive and not self.quiet:
            self._status = self.console.status("starting")
            self._status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(None, None, None)
            self._status = None

    def _line(self, text: str) -> None:
        if self.quiet:
            return
        stamp = f"{time.monotonic() - self._t0:6.1f}s"
        if self._status is not None:
            self._status.update(f"[dim]{stamp}[/] {escape(text)}")
        else:
            print(f"[pkgsandbox {stamp}] {text}", file=sys.stderr, flush=True)

    def status(self, message: str) -> None:
        self._line(message)

    def phase_started(self, phase: Phase) -> None:
        self._line(f"phase {phase.value}: running")

    def phase_finished(self, phase: Phase, status: PhaseStatus, seconds: float) -> None:
        if self.quiet:
            return
        text = f"phase {phase.value}: {status.value} in {seconds:.1f}s"
        if self._status is not None:
            style = "green" if status is PhaseStatus.OK else "magenta"
            self.console.print(f"  [{style}]●[/] {escape(text)}")
        else:
            self._line(text)


def _evidence_line(ev: Evidence) -> str:
    parts = [f"{ev.phase.value}", f"pid {ev.pid}", ev.syscall]
    if ev.process:
        parts.append("`" + " ".join(ev.process)[:100] + "`")
    if ev.path:
        parts.append(ev.path)
    if ev.destination:
        parts.append(f"→ {ev.destination}")
    if ev.bytes is not None:
        parts.append(f"{ev.bytes} B")
    if ev.errno:
        parts.append(f"({ev.errno})")
    if ev.detail and not ev.process:
        parts.append(ev.detail[:120])
    return " · ".join(parts)


def render_summary(report: Report, console: Console, *, max_evidence: int = 4) -> None:
    """The human summary: verdict, phases, findings with their evidence."""
    style = VERDICT_STYLE[report.verdict]
    cand = next((a for a in report.artifacts if a.role.value == "candidate"), None)
    title = f"{cand.name} {cand.version}" if cand else report.target
    console.print()
    console.print(f"[bold]{escape(title)}[/]  verdict: [{style}]{report.verdict.value.upper()}[/]")
    console.print(f"[dim]{escape(report.verdict_reason)}[/]")
    if cand:
        console.print(f"[dim]{escape(cand.filename)} sha256 {cand.sha256[:16]}…  "
                      f"image {report.image.tag if report.image else '?'}[/]")
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("phase", "status", "time", "events", "processes", "notes"):
        table.add_column(col)
    summaries = {s.phase: s for s in report.summary}
    for pr in report.phases:
        s = summaries.get(pr.phase)
        notes = []
        if pr.phase is Phase.IMPORT:
            bad = [st for st in pr.steps if st.status is not PhaseStatus.OK]
            notes.append(f"{len(pr.steps)} modules, {len(bad)} failed")
        if pr.lingering:
            notes.append(f"{len(pr.lingering)} lingering")
        if not pr.trace_complete:
            notes.append("trace incomplete")
        notes.extend(pr.problems[:2])
        st_style = "green" if pr.status is PhaseStatus.OK else "magenta"
        table.add_row(
            pr.phase.value,
            f"[{st_style}]{pr.status.value}[/]",
            f"{pr.duration:.1f}s",
            str(s.by_origin.get("candidate", 0)) + f" / {s.events}" if s else "-",
            str(s.processes) if s else "-",
            escape("; ".join(notes))[:100],
        )
    console.print(table)
    if not report.findings:
        console.print("[green]no findings[/]")
    for f in report.findings:
        sev = SEVERITY_STYLE[f.severity]
        console.print(f"[{sev}]{f.severity.value.upper():8}[/] [bold]{f.rule_id}[/] {escape(f.title)} "
                      f"[dim]({f.phase.value})[/] — {escape(f.message)}")
        for ev in f.evidence[:max_evidence]:
            console.print(f"           [dim]{escape(_evidence_line(ev))}[/]")
        if len(f.evidence) > max_evidence:
            console.print(f"           [dim]… {len(f.evidence) - max_evidence} more (see the JSON report)[/]")
    for note in report.notes[:5]:
        console.print(f"[dim]note: {escape(note)}[/]")


def render_diff(result: Any, judged: Report, console: Console) -> None:
    """``pkgsandbox diff``: verdicts, then added (+) and removed (-) behaviour per category."""
    old_style, new_style = VERDICT_STYLE[result.old_verdict], VERDICT_STYLE[result.new_verdict]
    console.print()
    console.print(f"[bold]{escape(result.old)}[/] [{old_style}]{result.old_verdict.value}[/]  →  "
                  f"[bold]{escape(result.new)}[/] [{new_style}]{result.new_verdict.value}[/]")
    any_change = False
    for cat, change in result.changes.items():
        if not change.added and not change.removed:
            continue
        any_change = True
        console.print(f"[bold]{cat}[/]")
        for key in change.added[:40]:
            console.print(f"  [red]+ {escape(key)}[/]")
        for key in change.removed[:20]:
            console.print(f"  [green]- {escape(key)}[/]")
        hidden = max(0, len(change.added) - 40) + max(0, len(change.removed) - 20)
        if hidden:
            console.print(f"  [dim]… {hidden} more (see --format json)[/]")
    if not any_change:
        console.print("[green]no behavioural change[/]")
    top = [f for f in judged.findings if f.rule_id != "PS024"]
    for f in top:
        console.print(f"[{SEVERITY_STYLE[f.severity]}]{f.severity.value.upper():8}[/] [bold]{f.rule_id}[/] "
                      f"{escape(f.title)} [dim]({f.phase.value})[/] — {escape(f.message)}")
