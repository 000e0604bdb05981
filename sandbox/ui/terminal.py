"""Rich rendering for the terminal: live status and the report summary (CLI only)."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sandbox.models import (
    DEFAULT_PASS,
    Evidence,
    Finding,
    NetworkCapture,
    Phase,
    PhaseStatus,
    Report,
    Severity,
    Verdict,
)
from sandbox.report.builders import commands
from sandbox.report.sanitize import printable
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


def safe(text: str, limit: int | None = None) -> str:
    """Untrusted *text* for rich markup: made printable (inert controls, bidi), then markup-escaped."""
    return escape(printable(text, limit))


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
            self._status.update(f"[dim]{stamp}[/] {safe(text)}")
        else:
            print(f"[pkgsandbox {stamp}] {printable(text)}", file=sys.stderr, flush=True)

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
            self.console.print(f"  [{style}]●[/] {safe(text)}")
        else:
            self._line(text)


def _where(f: Finding) -> str:
    """A finding's phase, and its pass when an extra pass saw it."""
    return safe(f.phase.value if f.pass_name == DEFAULT_PASS else f"{f.phase.value}, {f.pass_name} pass")


def _evidence_line(ev: Evidence) -> str:
    """One line of evidence, every untrusted part made printable (not yet markup-escaped)."""
    parts = [f"{ev.phase.value}", f"pid {ev.pid}", printable(ev.syscall, 40)]
    if ev.process:
        parts.append("`" + printable(" ".join(ev.process), 100) + "`")
    if ev.path:
        parts.append(printable(ev.path, 300))
    if ev.destination:
        parts.append(f"→ {printable(ev.destination, 200)}")
    if ev.bytes is not None:
        parts.append(f"{ev.bytes} B")
    if ev.errno:
        parts.append(f"({printable(ev.errno, 40)})")
    if ev.detail and not ev.process:
        parts.append(printable(ev.detail, 120))
    return " · ".join(parts)


def render_rounds(report: Report, console: Console) -> None:
    """Adaptive rounds: what a failing step lacked, what was staged, what nobody had."""
    for r in report.rounds:
        added = ", ".join(r.installed) or "nothing"
        line = f"round {r.number} ({r.phase.value}): {', '.join(r.requested)} → added {added}"
        if r.missing:
            line += f"; missing: {'; '.join(r.missing)}"
        console.print(f"[cyan]{escape(line[:300])}[/]")
        if r.reason:
            console.print(f"  [dim]because {escape(r.reason[:200])}[/]")


def render_summary(report: Report, console: Console, *, max_evidence: int = 4) -> None:
    """The human summary: verdict, phases, findings with their evidence."""
    style = VERDICT_STYLE[report.verdict]
    cand = next((a for a in report.artifacts if a.role.value == "candidate"), None)
    title = f"{cand.name} {cand.version}" if cand else report.target
    console.print()
    console.print(f"[bold]{safe(title, 200)}[/]  verdict: [{style}]{report.verdict.value.upper()}[/]")
    console.print(f"[dim]{safe(report.verdict_reason, 1000)}[/]")
    if cand:
        console.print(
            f"[dim]{safe(cand.filename, 300)} sha256 {safe(cand.sha256[:16])}…  "
            f"image {safe(report.image.tag) if report.image else '?'}[/]"
        )
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("phase", "status", "time", "events", "processes", "notes"):
        table.add_column(col)
    summaries = {(s.phase, s.pass_name): s for s in report.summary}
    noted: set[str] = set()  # a pass's note on its first row (the secrets pass may skip startup)
    for pr in report.phases:
        s = summaries.get((pr.phase, pr.pass_name))
        notes = [pr.pass_note] if pr.pass_note and pr.pass_name not in noted else []
        noted.add(pr.pass_name)
        if pr.phase is Phase.IMPORT:
            bad = [st for st in pr.steps if st.status is not PhaseStatus.OK]
            notes.append(f"{len(pr.steps)} modules, {len(bad)} failed")
        elif pr.phase is Phase.EXERCISE and commands(pr.steps):
            notes.append(f"{commands(pr.steps)} commands run with --help")
        if pr.lingering:
            notes.append(f"{len(pr.lingering)} lingering")
        if not pr.trace_complete:
            notes.append("trace incomplete")
        notes.extend(pr.problems[:2])
        st_style = "green" if pr.status is PhaseStatus.OK else "magenta"
        table.add_row(
            safe(pr.phase.value if pr.pass_name == DEFAULT_PASS else f"{pr.phase.value} [{pr.pass_name}]"),
            f"[{st_style}]{pr.status.value}[/]",
            f"{pr.duration:.1f}s",
            str(s.by_origin.get("candidate", 0)) + f" / {s.events}" if s else "-",
            str(s.processes) if s else "-",
            safe("; ".join(notes), 100),
        )
    console.print(table)
    render_rounds(report, console)
    if report.network is not None:
        render_network(report.network, console)
    if not report.findings:
        console.print("[green]no findings[/]")
    for f in report.findings:
        sev = SEVERITY_STYLE[f.severity]
        console.print(
            f"[{sev}]{f.severity.value.upper():8}[/] [bold]{safe(f.rule_id, 40)}[/] {safe(f.title, 200)} "
            f"[dim]({_where(f)})[/] — {safe(f.message, 2000)}"
        )
        for ev in f.evidence[:max_evidence]:
            console.print(f"           [dim]{escape(_evidence_line(ev))}[/]")
        if len(f.evidence) > max_evidence:
            console.print(f"           [dim]… {len(f.evidence) - max_evidence} more (see the JSON report)[/]")
    for note in report.notes[:5]:
        console.print(f"[dim]note: {safe(note, 500)}[/]")


def _network_lines(net: NetworkCapture) -> list[tuple[float, str, str]]:
    """(time, phase, text) per DNS name, connection and datagram, in time order."""
    rows: list[tuple[float, str, str]] = []
    seen_names: set[tuple[str, str]] = set()
    for q in net.dns:
        if (q.phase.value, q.name) in seen_names:
            continue  # A and AAAA of one lookup: one line
        seen_names.add((q.phase.value, q.name))
        who = f" · pid {q.pid}" if q.pid else ""
        what = (
            f"malformed query ({q.detail[:60]})" if q.malformed else f"{q.name} {q.qtype} → {q.answer or '-'}"
        )
        rows.append((q.time, q.phase.value, f"dns   {what}{who}"))
    for c in net.connections:
        dest = c.destination + (f" ({c.host})" if c.host else "")
        detail = []
        for h in c.http[:2]:
            detail.append(f"{h.method} {h.target[:60]}" + (f" body {h.body_bytes} B" if h.body_bytes else ""))
        if c.tls is not None:
            detail.append(
                f"SNI {c.tls.sni}" + (f" ALPN {','.join(c.tls.alpn)}" if c.tls.alpn else "")
                if c.tls.sni
                else f"TLS: {c.tls.error[:40] or 'no SNI'}"
            )
            if c.tls.intercepted:
                detail.append(f"decrypted {c.decrypted} B")
            elif c.tls.handshake_error:
                detail.append(f"refused the CA: {c.tls.handshake_error[:40]}")
        if c.truncated:
            detail.append("truncated")
        if c.labels:
            detail.append(", ".join(c.labels).upper())
        rows.append(
            (
                c.time,
                c.phase.value,
                f"{c.protocol:<5} → {dest} {c.bytes} B" + (f" · {'; '.join(detail)}" if detail else ""),
            )
        )
    for d in net.datagrams:
        dest = d.destination or "(destination not in trace)"
        cut = " · truncated" if d.truncated else ""
        rows.append((d.time, d.phase.value, f"udp   → {dest} {d.bytes} B{cut}"))
    return sorted(rows)


def render_network(net: NetworkCapture, console: Console, *, max_lines: int = 12) -> None:
    """The network section: what the sinkhole received (nothing left the sandbox)."""
    if not net.enabled:
        why = safe("; ".join(net.problems), 200)
        console.print(f"[magenta]network capture unavailable[/] [dim]{why}[/]")
        return
    if net.quiet:
        console.print("[dim]network: no DNS query, connection or datagram[/]")
    else:
        names = len({q.name for q in net.dns})
        console.print(
            f"[bold]network[/] [dim](sinkhole: answered inside the sandbox, nothing left it)[/] "
            f"{names} name(s) resolved, {len(net.connections)} connection(s), "
            f"{len(net.datagrams)} datagram(s)" + (f", {net.dropped} not recorded" if net.dropped else "")
        )
        rows = _network_lines(net)
        for _t, phase, text in rows[:max_lines]:
            console.print(f"  [dim]{phase:<8}[/] {safe(text, 150)}")
        if len(rows) > max_lines:
            console.print(f"  [dim]… {len(rows) - max_lines} more (see the JSON report)[/]")
    for x in net.exfiltration[:6]:
        to = x.destination or "?"
        console.print(
            f"  [bold red]EXFILTRATION[/] {safe(x.canary)} [dim]({safe(x.location)})[/] "
            f"{safe(x.encoding)} via {safe(str(x.channel))} → {safe(to)}"
            + (f" ({safe(x.host, 60)})" if x.host else "")
            + (f" [dim]{safe(x.request, 80)}[/]" if x.request else "")
        )
    if net.honeytoken_reads:
        places = sorted({r.location for r in net.honeytoken_reads})
        console.print(f"  [yellow]honeytokens read[/]: {safe(', '.join(places[:6]))}")


def render_diff(result: Any, judged: Report, console: Console) -> None:
    """``pkgsandbox diff``: verdicts, then added (+) and removed (-) behaviour per category."""
    old_style, new_style = VERDICT_STYLE[result.old_verdict], VERDICT_STYLE[result.new_verdict]
    console.print()
    console.print(
        f"[bold]{safe(result.old)}[/] [{old_style}]{result.old_verdict.value}[/]  →  "
        f"[bold]{safe(result.new)}[/] [{new_style}]{result.new_verdict.value}[/]"
    )
    any_change = False
    for cat, change in result.changes.items():
        if not change.added and not change.removed:
            continue
        any_change = True
        console.print(f"[bold]{cat}[/]")
        for key in change.added[:40]:
            console.print(f"  [red]+ {safe(key, 500)}[/]")
        for key in change.removed[:20]:
            console.print(f"  [green]- {safe(key, 500)}[/]")
        hidden = max(0, len(change.added) - 40) + max(0, len(change.removed) - 20)
        if hidden:
            console.print(f"  [dim]… {hidden} more (see --format json)[/]")
    if not any_change:
        console.print("[green]no behavioural change[/]")
    top = [f for f in judged.findings if f.rule_id != "PS024"]
    for f in top:
        console.print(
            f"[{SEVERITY_STYLE[f.severity]}]{f.severity.value.upper():8}[/] [bold]{f.rule_id}[/] "
            f"{safe(f.title, 200)} [dim]({f.phase.value})[/] — {safe(f.message, 2000)}"
        )


class RichGateObserver:
    """Live gate progress on a terminal: one row per package with its current phase."""

    def __init__(self, console: Console) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, Any] = {}
        self.labels: dict[str, str] = {}

    def __enter__(self) -> RichGateObserver:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _set(self, spec: str, text: str) -> None:
        label = safe(self.labels.get(spec, spec), 200)
        if spec not in self.tasks:
            self.tasks[spec] = self.progress.add_task(f"{label}: {text}", total=None)
        else:
            self.progress.update(self.tasks[spec], description=f"{label}: {text}")

    def planned(self, entries: Any, cached: int) -> None:
        self.labels.update({e.spec: e.label for e in entries})
        self.progress.console.print(f"{len(entries)} package(s) to vet, {cached} served from the cache")

    def started(self, entry: Any) -> None:
        self._set(entry.spec, "starting")

    def status(self, spec: str, message: str) -> None:
        self._set(spec, safe(message, 80))

    def phase_started(self, spec: str, phase: Phase) -> None:
        self._set(spec, f"phase {phase.value}")

    def phase_finished(self, spec: str, phase: Phase, status: PhaseStatus, seconds: float) -> None:
        self._set(spec, f"{phase.value} {status.value} ({seconds:.1f}s)")

    def finished(self, outcome: Any) -> None:
        verdict = outcome.verdict
        what = verdict.value if verdict is not None else outcome.status.value.replace("_", " ")
        style = VERDICT_STYLE.get(verdict, "magenta") if verdict is not None else "magenta"
        spec = outcome.entry.spec
        text = f"[{style}]{what}[/]" + (f" [dim]{safe(outcome.detail, 80)}[/]" if outcome.detail else "")
        if spec in self.tasks:
            label = safe(outcome.entry.label, 200)
            self.progress.update(self.tasks[spec], description=f"{label}: {text}", total=1, completed=1)
        else:
            self.progress.console.print(f"{safe(outcome.entry.label, 200)}: {text}")
