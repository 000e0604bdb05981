"""``pkgsandbox show REPORT.json``: a saved report laid out for an investigator, with rich.

The content comes from :mod:`sandbox.report.views` (shared with the HTML page); this
module only lays it out.  Every value from the sandbox goes into a :class:`~rich.text.Text`
as plain text, never through console markup, so a path like ``[bold]x[/]`` prints as
itself, and :func:`~sandbox.report.sanitize.printable` has already made control characters
visible.

Long traces are cut: at most *limit* timeline rows and network rows per phase, plus
every event a finding cites (those are never hidden), with a note saying how much
was left out and where to see it all.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from sandbox.models import Phase, Report
from sandbox.report.views import (
    FileGroup,
    FindingView,
    NetworkRow,
    PhaseView,
    ProcessNode,
    ReportView,
    Timeline,
    build_view,
    phase_order,
)
from sandbox.ui.terminal import SEVERITY_STYLE, VERDICT_STYLE

DEFAULT_LIMIT = 200
FILES_PER_GROUP = 25
MAX_PROCESSES = 300

DESCRIPTION_WIDTH = 300  # characters of one timeline row; the HTML page shows the whole row

FLAG = "⚑ "


def _phase_arg(phase: Phase | str | None) -> Phase | None:
    if phase is None or isinstance(phase, Phase):
        return phase
    try:
        return Phase(phase)
    except ValueError:
        names = ", ".join(p.value for p in Phase)
        raise ValueError(f"unknown phase {phase!r} (phases: {names})") from None


def render_show(
    report: Report,
    console: Console,
    *,
    phase: Phase | str | None = None,
    limit: int = DEFAULT_LIMIT,
    files_per_group: int = FILES_PER_GROUP,
    max_processes: int = MAX_PROCESSES,
) -> None:
    """Print the investigation view of *report*: header, phases, findings, then per phase
    the process tree, the timeline, the network table and the files by location.

    *phase* restricts everything (findings included) to one phase; a :class:`str` is
    parsed as a phase name (``ValueError`` naming the phases when it is not one).
    *limit* caps the timeline and network rows per phase; events cited by a finding
    are shown beyond it.
    """
    wanted = _phase_arg(phase)
    limit = max(1, limit)
    view = build_view(report, phases=None if wanted is None else (wanted,))
    _header(view, console)
    _phase_table(view, console)
    _findings(view.findings, console)
    if wanted is not None and view.phase(wanted) is None:
        present = ", ".join(p.value for p in phase_order(report)) or "none"
        console.print(Text(f"phase {wanted.value} is not in this report (phases: {present})", style="yellow"))
    for pv in view.phases:
        _phase(pv, console, limit=limit, files_per_group=files_per_group, max_processes=max_processes)
    for note in view.notes:
        console.print(Text(f"note: {note}", style="dim"))


# ---------------------------------------------------------------- header


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + " UTC" if t > 0 else "?"


def _header(view: ReportView, console: Console) -> None:
    style = VERDICT_STYLE[view.verdict]
    console.print()
    console.rule(
        Text.assemble((view.title, "bold"), "  verdict: ", (view.verdict.value.upper(), style)),
        style=style.replace("bold ", ""),
    )
    console.print(Text(view.verdict_reason, style=style.replace("bold ", "")))
    facts = [
        f"target {view.target}",
        f"pkgsandbox {view.tool_version}",
        f"profile {view.profile}",
        f"report schema {view.schema_version}",
        f"run {_when(view.started)}",
        f"{max(0.0, view.finished - view.started):.1f}s",
    ]
    if view.image:
        facts.append(f"image {view.image}")
    console.print(Text(" · ".join(facts), style="dim"))
    if view.candidate:
        console.print(Text(f"candidate {view.candidate}", style="dim"))


def _phase_table(view: ReportView, console: Console) -> None:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("phase", "status", "time", "events", "processes", "notes"):
        table.add_column(col)
    for pv in view.phases:
        ok = pv.status == "ok"
        table.add_row(
            pv.phase.value,
            Text(pv.status or "-", style="green" if ok else "magenta"),
            f"{pv.duration:.1f}s" if pv.ran else "-",
            f"{len(pv.timeline)} / {pv.total_events}",
            str(pv.process_count),
            Text("; ".join(pv.notes)[:200]),
        )
    console.print(table)
    console.print(Text("events: attributed to the candidate / everything traced", style="dim"))


# ---------------------------------------------------------------- findings


def _findings(findings: Sequence[FindingView], console: Console) -> None:
    console.print()
    if not findings:
        console.print(Text("no findings", style="green"))
        return
    console.print(Text(f"findings ({len(findings)})", style="bold"))
    for f in findings:
        sev = SEVERITY_STYLE[f.severity]
        console.print(
            Text.assemble(
                (f"{f.severity.value.upper():8} ", sev),
                (f.rule_id, "bold"),
                " ",
                f.title,
                (f" ({f.phase.value}) ", "dim"),
                "— ",
                f.message,
            )
        )
        if f.description:
            console.print(Text(f"         {f.description}", style="dim"))
        table = Table(box=None, pad_edge=False, show_header=True, header_style="dim", padding=(0, 1))
        table.add_column("", width=7)
        for col in ("pid", "t", "syscall", "process", "what"):
            table.add_column(col, overflow="fold")
        for ev in f.evidence:
            what = [
                x
                for x in (
                    ev.path,
                    f"→ {ev.destination}" if ev.destination else "",
                    f"{ev.bytes} B" if ev.bytes is not None else "",
                    f'"{ev.data}"' if ev.data else "",
                    f"({ev.errno})" if ev.errno else "",
                    ev.detail,
                )
                if x
            ]
            table.add_row(
                "",
                str(ev.pid) if ev.pid else "-",
                f"{ev.t:.6f}" if ev.t is not None else "-",
                Text(ev.syscall),
                Text(ev.process, style="cyan"),
                Text(" ".join(what)),
            )
        console.print(table)


# ---------------------------------------------------------------- one phase


def _phase(pv: PhaseView, console: Console, *, limit: int, files_per_group: int, max_processes: int) -> None:
    console.print()
    head = f"phase {pv.phase.value} · {pv.status or 'no result'}"
    if pv.ran:
        head += f" · {pv.duration:.1f}s"
    console.rule(Text(head, style="bold"), style="magenta" if pv.failed else "blue")
    if pv.notes:
        console.print(Text("; ".join(pv.notes), style="magenta" if pv.failed else "dim"))
    if pv.failed and pv.output_tail:
        console.print(Text("output (tail):", style="bold"))
        console.print(Text("\n".join(pv.output_tail.splitlines()[-15:]), style="dim"))
    _tree(pv, console, max_processes)
    _timeline(pv.timeline, console, limit)
    _network(pv.network, console, limit)
    _files(pv.files, console, files_per_group)


def _node_label(n: ProcessNode) -> Text:
    label = Text.assemble((f"pid {n.pid}", "bold"), " ")
    if n.known:
        label.append(n.argv or n.exe or "(no argv)", style="cyan")
        label.append(f"  {n.status}", style="red" if n.failed else "dim")
        if n.start is not None:
            label.append(f"  +{n.start:.3f}s", style="dim")
    else:
        label.append(n.status, style="yellow")
    if n.via:
        label.append(f"  via {' → '.join(n.via)}", style="dim")
    if n.origin and n.origin != "candidate":
        label.append(f"  [{n.origin}]", style="dim")
    if n.lingering:
        label.append("  still running at window close", style="magenta")
    if n.events:
        label.append(f"  {n.events} event{'s' if n.events != 1 else ''}", style="dim")
    if n.rules:
        label.append(f"  {FLAG}{' '.join(n.rules)}", style="bold red")
    return label


def _tree(pv: PhaseView, console: Console, max_processes: int) -> None:
    if not pv.processes:
        console.print(Text("processes: none recorded", style="dim"))
        return
    tree = Tree(Text(f"processes ({pv.process_count})", style="bold"), guide_style="dim")
    shown = 0
    # Iterative walk keeping a stack of rich branches, one per depth.
    branches: list[Tree] = [tree]
    for depth, node in _walk(pv.processes):
        if shown >= max_processes:
            break
        del branches[depth + 1 :]
        branch = branches[depth].add(_node_label(node))
        branches.append(branch)
        shown += 1
    console.print(tree)
    if shown < pv.process_count:
        console.print(
            Text(f"… {pv.process_count - shown} more processes (see the HTML or JSON report)", style="yellow")
        )


def _walk(roots: Iterable[ProcessNode]) -> Iterable[tuple[int, ProcessNode]]:
    for root in roots:
        yield from root.walk()


def _selected(rows: Timeline, limit: int) -> list[int]:
    """Indices to show: the first *limit* rows, then every row a finding cites (up to *limit* more)."""
    if len(rows) <= limit:
        return list(range(len(rows)))
    return list(range(limit)) + [i for i in rows.cited if i >= limit][:limit]


class _Lines:
    """Rows printed as wrapped lines with a hanging indent.

    A rich Table measures every cell of every row to size its columns: for the
    hundreds of rows of a timeline that is most of the run time.  These rows have
    fixed-width leading columns, so plain lines do the same job in a fraction of it.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.width = console.width
        self.text = Text()

    def add(self, prefix: str, body: Text) -> None:
        avail = max(20, self.width - len(prefix))
        lines = body.wrap(self.console, avail, overflow="fold") if body.cell_len > avail else [body]
        pad = " " * len(prefix)
        for i, line in enumerate(lines):
            if self.text:
                self.text.append("\n")
            self.text.append(prefix if i == 0 else pad, style="dim" if i == 0 else "")
            self.text.append_text(line)

    def note(self, text: str, style: str) -> None:
        if self.text:
            self.text.append("\n")
        self.text.append(text, style=style)

    def print(self) -> None:
        if self.text:
            self.console.print(self.text, crop=False, overflow="ignore", soft_wrap=True)


def _flags(rules: Sequence[str]) -> Text:
    return Text("  " + FLAG + " ".join(rules), style="bold red") if rules else Text()


def _timeline(rows: Timeline, console: Console, limit: int) -> None:
    console.print()
    if not rows:
        console.print(Text("timeline: no candidate events", style="dim"))
        return
    console.print(Text(f"timeline ({len(rows)} events, seconds since the phase start)", style="bold"))
    console.print(Text(f"{'t':>10} {'pid':>7}  {'kind':<10}  event", style="dim"))
    out = _Lines(console)
    picked = _selected(rows, limit)
    prev = -1
    for i in picked:
        if i != prev + 1:
            out.note(f"{'':>10} {'':>7}  ⋮ {_plural(i - prev - 1, 'event')} not shown", "dim italic")
        r = rows[i]
        desc = r.description
        if len(desc) > DESCRIPTION_WIDTH:
            desc = desc[: DESCRIPTION_WIDTH - 1] + "…"
        body = Text(desc, style="bold red" if r.rules else ("dim" if r.errno else ""))
        body.append_text(_flags(r.rules))
        out.add(f"{r.t:>10.6f} {r.pid:>7}  {r.kind:<10}  ", body)
        prev = i
    out.print()
    if len(picked) < len(rows):
        console.print(
            Text(
                f"showing {len(picked)} of {len(rows)} events (the first {limit}, and every event a finding "
                "cites); the HTML report (--format html) and the JSON report have them all",
                style="yellow",
            )
        )


def _network(rows: Sequence[NetworkRow], console: Console, limit: int) -> None:
    console.print()
    if not rows:
        console.print(Text("network: no connect, send, bind or listen", style="dim"))
        return
    console.print(Text(f"network ({len(rows)} distinct operations, identical ones counted)", style="bold"))
    console.print(
        Text(
            f"{'first':>8} {'pid':>7}  {'op':<9}  destination, protocol, count, bytes, result, process",
            style="dim",
        )
    )
    out = _Lines(console)
    # Outbound attempts and cited rows first: they are what the table is for.
    ordered = sorted(rows, key=lambda r: (not r.rules, not r.outbound, r.first))
    for r in ordered[:limit]:
        body = Text(r.destination, style="bold red" if r.outbound else "bold")
        body.append(f"  {r.protocol or '?'}  x{r.count}")
        if r.bytes is not None:
            body.append(f"  {r.bytes} B")
        body.append(f"  {r.errno or 'ok'}", style="dim" if r.errno else "green")
        body.append(f"  {r.process}", style="cyan")
        if r.data:
            body.append(f'  "{r.data}"', style="dim")
        body.append_text(_flags(r.rules))
        out.add(f"{r.first:>8.3f} {r.pid:>7}  {r.syscall:<9}  ", body)
    out.print()
    if len(rows) > limit:
        console.print(
            Text(f"… {len(rows) - limit} more network rows (see the HTML or JSON report)", style="yellow")
        )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _files(groups: Sequence[FileGroup], console: Console, per_group: int) -> None:
    console.print()
    if not groups:
        console.print(Text("files: none touched", style="dim"))
        return
    total = sum(len(g.rows) for g in groups)
    console.print(Text(f"files ({_plural(total, 'path')}, by location)", style="bold"))
    out = _Lines(console)
    for g in groups:
        # Credentials are what an investigator reads first: never cut that group short.
        cap = max(per_group, 200) if g.location == "credentials" else per_group
        out.note("", "")
        out.text.append_text(
            Text.assemble(
                ("  " + g.location, "bold red" if g.location == "credentials" else "bold"),
                (f" — {g.label}, {_plural(len(g.rows), 'path')}", "dim"),
            )
        )
        for r in g.rows[:cap]:
            result = "ok" if not r.errnos else (" ".join(r.errnos) + (f" ({r.ok} ok)" if r.ok else ""))
            pids = " ".join(str(p) for p in r.pids[:4]) + (" …" if len(r.pids) > 4 else "")
            body = Text(r.path, style="bold red" if r.rules else "")
            body.append(f"  {','.join(r.access)} x{r.count}")
            body.append(f"  {result}", style="dim" if r.errnos else "")
            body.append(f"  pid {pids}", style="dim")
            body.append_text(_flags(r.rules))
            out.add("    ", body)
        if len(g.rows) > cap:
            out.note(f"    … {len(g.rows) - cap} more paths in {g.location}", "yellow")
    out.print()
