"""One self-contained HTML page per report: the views of :mod:`sandbox.report.views` in a browser.

The page holds everything it needs: inline CSS, one inline script, no fonts, images,
external scripts or CDNs.  A Content-Security-Policy forbids every fetch and allows
only that one script (by its sha256), so even if some value slipped past escaping it
could not run, and the page can never call out.

Escaping, because every value came from a package written by an attacker:

* the server-rendered parts (banner, findings, process trees) go through
  :func:`html.escape` (quotes included; every attribute is double-quoted);
* the long lists (timeline, network, files) are embedded as compact JSON in
  ``<script type="application/json">`` with ``<``, ``>`` and ``&`` written as
  ``\\u003c``/``\\u003e``/``\\u0026``, so ``</script>`` or ``<!--`` inside data
  cannot end or alter the block; the script inserts them with ``textContent``
  only, never ``innerHTML``.

Size: strings are interned (a path read, stat-ed and opened 40 times is stored
once; paths are split into a shared directory and a name), times are integer
microseconds delta-encoded, and trailing empty columns are left off, so a realistic
100k-event report is about 4 MB.  If the data would still exceed ``max_bytes``
(100k distinct long paths), rows are left out, never those a finding cites, and
the page says how many and points at the JSON report.

This module renders the server-side parts and the page; the embedded data and the
page's limits are in :mod:`~sandbox.report.html_data`, the style and script in
:mod:`~sandbox.report.html_assets`.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Sequence

from sandbox.models import Report, Verdict
from sandbox.report.html_assets import _CSS, _SCRIPT
from sandbox.report.html_data import (
    ARGV_SHOWN,
    MAX_BYTES,
    MAX_EVIDENCE,
    MAX_TREE_NODES,
    _cut,
    _data,
    _e,
)
from sandbox.report.views import (
    FileGroup,
    FindingView,
    PhaseView,
    ProcessNode,
    ReportView,
    build_view,
)

# ---------------------------------------------------------------- server-rendered parts

_VERDICT_CLASS = {
    Verdict.CLEAN: "clean",
    Verdict.SUSPICIOUS: "suspicious",
    Verdict.MALICIOUS: "malicious",
    Verdict.INCOMPLETE: "incomplete",
}


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t > 0 else "?"


def _banner(view: ReportView, rid: str) -> str:
    cls = _VERDICT_CLASS[view.verdict]
    facts = [
        ("target", view.target),
        ("pkgsandbox", view.tool_version),
        ("profile", view.profile),
        ("report schema", view.schema_version),
        ("run", _when(view.started)),
        ("took", f"{max(0.0, view.finished - view.started):.1f} s"),
    ]
    if view.image:
        facts.append(("image", view.image))
    if view.candidate:
        facts.append(("candidate", view.candidate))
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    arts = ""
    if view.artifacts:
        rows = "".join(
            f'<tr><td>{_e(role)}</td><td>{_e(nv)}</td><td>{_e(fn)}</td><td class="mono">{_e(sha)}</td></tr>'
            for role, nv, fn, sha in view.artifacts
        )
        arts = (
            f'<details class="artifacts"><summary>Artifacts ({len(view.artifacts)})</summary>'
            f"<table><thead><tr><th>role</th><th>distribution</th><th>file</th><th>sha256</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></details>"
        )
    return (
        f'<header class="banner v-{cls}" id="{rid}-top">'
        f'<div class="verdict">{_e(view.verdict.value.upper())}</div><h1>{_e(view.title)}</h1>'
        f'<p class="reason">{_e(view.verdict_reason)}</p>'
        f'<dl class="facts">{dl}</dl>{arts}</header>'
    )


def _phase_table(view: ReportView, rid: str) -> str:
    rows = []
    for pv in view.phases:
        st = pv.status or "-"
        rows.append(
            f'<tr><td><a href="#{rid}-ph-{_e(pv.phase.value)}">{_e(pv.phase.value)}</a></td>'
            f'<td class="st-{"ok" if st == "ok" else "bad"}">{_e(st)}</td>'
            f"<td>{f'{pv.duration:.1f} s' if pv.ran else '-'}</td>"
            f"<td>{len(pv.timeline)} / {pv.total_events}</td>"
            f"<td>{pv.process_count}</td><td>{_e('; '.join(pv.notes))}</td></tr>"
        )
    return (
        '<section class="phases"><h2>Phases</h2><table><thead><tr><th>phase</th><th>status</th>'
        '<th>time</th><th title="attributed to the candidate / everything traced">events</th>'
        "<th>processes</th><th>notes</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></section>"
    )


def _pid_link(rid: str, phase: str, pid: int) -> str:
    return f'<a class="pid" href="#{rid}-{_e(phase)}-p{pid}">{pid}</a>' if pid > 0 else "-"


def _findings(findings: Sequence[FindingView], rid: str) -> str:
    if not findings:
        return '<section class="findings"><h2>Findings</h2><p class="none">No findings.</p></section>'
    parts = [f'<section class="findings"><h2>Findings ({len(findings)})</h2>']
    for i, f in enumerate(findings):
        sev = f.severity.value
        rows = []
        for ev in f.evidence[:MAX_EVIDENCE]:
            what = []
            if ev.path:
                what.append(f'<span class="path">{_e(ev.path)}</span>')
            if ev.destination:
                what.append(f'→ <span class="dest">{_e(ev.destination)}</span>')
            if ev.bytes is not None:
                what.append(f"{ev.bytes} B")
            if ev.data:
                what.append(f'<code class="data">{_e(ev.data)}</code>')
            if ev.errno:
                what.append(f'<span class="errno">({_e(ev.errno)})</span>')
            if ev.detail:
                what.append(f'<span class="detail">{_e(ev.detail)}</span>')
            rows.append(
                f'<tr><td class="num">{_pid_link(rid, ev.phase.value, ev.pid)}</td>'
                f'<td class="num">{"" if ev.t is None else f"{ev.t:.6f}"}</td>'
                f'<td class="nw">{_e(ev.syscall)}</td>'
                f'<td><code class="argv">{_e(ev.process)}</code></td>'
                f"<td>{' '.join(what)}</td></tr>"
            )
        more = ""
        if len(f.evidence) > MAX_EVIDENCE:
            more = f'<p class="note">… {len(f.evidence) - MAX_EVIDENCE} more in the JSON report</p>'
        parts.append(
            f'<details open class="finding sev-{_e(sev)}" id="{rid}-f{i}" data-rule="{_e(f.rule_id)}">'
            f'<summary><span class="sev">{_e(sev.upper())}</span> <b class="rule">{_e(f.rule_id)}</b> '
            f'{_e(f.title)} <span class="ph">({_e(f.phase.value)})</span> — '
            f'<span class="msg">{_e(f.message)}</span></summary>'
            f'<p class="desc">{_e(f.description)}</p>'
            f'<table class="evidence"><thead><tr><th>pid</th><th>t (s)</th><th>syscall</th><th>process</th>'
            f"<th>what</th></tr></thead><tbody>{''.join(rows)}</tbody></table>{more}</details>"
        )
    parts.append("</section>")
    return "".join(parts)


def _node(n: ProcessNode, rid: str, phase: str) -> str:
    bits = [f'<span class="pidn">pid {n.pid}</span>']
    if n.known:
        argv = n.argv or n.exe or "(no argv)"
        title = f' title="{_e(argv)}"' if len(argv) > ARGV_SHOWN else ""
        bits.append(f'<code class="argv"{title}>{_e(_cut(argv, ARGV_SHOWN))}</code>')
        bits.append(f'<span class="st {"bad" if n.failed else "ok"}">{_e(n.status)}</span>')
        if n.start is not None:
            bits.append(f'<span class="t">+{n.start:.3f} s</span>')
    else:
        bits.append(f'<span class="st unknown">{_e(n.status)}</span>')
    if n.via:
        full = _e(" ⟶ ".join(n.execs))
        bits.append(f'<span class="via" title="{full}">via {_e(" → ".join(n.via))}</span>')
    if n.origin and n.origin != "candidate":
        bits.append(f'<span class="tag">{_e(n.origin)}</span>')
    if n.lingering:
        bits.append('<span class="tag linger">still running at window close</span>')
    if n.events:
        bits.append(f'<span class="ev">{n.events} event{"s" if n.events != 1 else ""}</span>')
    if n.rules:
        bits.append(f'<span class="rules">⚑ {_e(" ".join(n.rules))}</span>')
    cls = "proc flagged" if n.rules else "proc"
    return f'<li id="{rid}-{_e(phase)}-p{n.pid}" class="{cls}"><div class="node">{" ".join(bits)}</div>'


def _tree(pv: PhaseView, rid: str) -> str:
    """Nested lists from the pre-order walk; no recursion, however deep the tree."""
    if not pv.processes:
        return '<p class="none">No processes recorded.</p>'
    phase = pv.phase.value
    out = ['<ul class="tree">']
    shown = 0
    prev = -1  # depth of the last <li>, still open
    for depth, node in (x for root in pv.processes for x in root.walk()):
        if shown >= MAX_TREE_NODES:
            break
        if depth > prev:
            if prev >= 0:
                out.append("<ul>")  # first child: open a list inside the parent's <li>
        else:
            out.append("</li>" + "</ul></li>" * (prev - depth))
        out.append(_node(node, rid, phase))
        prev = depth
        shown += 1
    out.append("</li>" + "</ul></li>" * prev + "</ul>")
    if shown < pv.process_count:
        out.append(f'<p class="note">… {pv.process_count - shown} more processes: see the JSON report</p>')
    return "".join(out)


def _files(groups: Sequence[FileGroup], rid: str, phase: str) -> str:
    if not groups:
        return '<p class="none">No files touched.</p>'
    parts = []
    for g in groups:
        opened = " open" if g.location == "credentials" or any(r.rules for r in g.rows) else ""
        n = len(g.rows)
        parts.append(
            f'<details class="fgroup loc-{_e(g.location)}"{opened}><summary><b>{_e(g.location)}</b> — '
            f"{_e(g.label)}, {n} path{'s' if n != 1 else ''}</summary>"
            f'<div class="lazy" data-kind="files" data-phase="{_e(phase)}" '
            f'data-group="{_e(g.location)}"></div></details>'
        )
    return "".join(parts)


def _phase(pv: PhaseView, rid: str) -> str:
    phase = pv.phase.value
    head = f"Phase {phase} — {pv.status or 'no result'}" + (f", {pv.duration:.1f} s" if pv.ran else "")
    notes = f'<p class="notes">{_e("; ".join(pv.notes))}</p>' if pv.notes else ""
    steps = ""
    if pv.steps:
        rows = "".join(
            f'<tr><td>{_e(n)}</td><td class="st-{"ok" if st == "ok" else "bad"}">{_e(st)}</td>'
            f'<td class="num">{d:.3f}</td><td>{_e(det)}</td></tr>'
            for n, st, d, det in pv.steps
        )
        steps = (
            f'<details class="steps"><summary>Steps ({len(pv.steps)})</summary><table><thead><tr>'
            f"<th>step</th><th>status</th><th>s</th><th>detail</th></tr></thead><tbody>{rows}</tbody>"
            f"</table></details>"
        )
    tail = ""
    if pv.output_tail:
        opened = " open" if pv.failed else ""
        tail = (
            f'<details class="output"{opened}><summary>Output (tail)</summary>'
            f"<pre>{_e(pv.output_tail)}</pre></details>"
        )
    nfiles = sum(len(g.rows) for g in pv.files)
    lazy = f'data-phase="{_e(phase)}"'
    return (
        f'<section class="phase" id="{rid}-ph-{_e(phase)}" data-phase="{_e(phase)}">'
        f"<h2>{_e(head)}</h2>{notes}{steps}"
        f'<details open class="procs"><summary>Process tree ({pv.process_count})</summary>{_tree(pv, rid)}'
        f"</details>"
        f'<details open class="timeline"><summary>Timeline ({len(pv.timeline)} events, seconds since the '
        f'phase start)</summary><div class="lazy" data-kind="tl" {lazy}>'
        f"<noscript>The timeline needs JavaScript; the JSON report has every event.</noscript></div>"
        f"</details>"
        f'<details open class="network"><summary>Network ({len(pv.network)} distinct operations)</summary>'
        f'<div class="lazy" data-kind="net" {lazy}></div></details>'
        f'<details open class="files"><summary>Files by location ({nfiles} paths)</summary>'
        f"{_files(pv.files, rid, phase)}</details>{tail}</section>"
    )


def _default_phase(view: ReportView) -> str:
    """The phase shown first: where the worst finding is, else the first with candidate events."""
    for f in view.findings:
        if view.phase(f.phase) is not None:
            return f.phase.value
    for pv in view.phases:
        if pv.timeline:
            return pv.phase.value
    return view.phases[0].phase.value if view.phases else ""


def _report_body(view: ReportView, rid: str, label: str, dropped: int, budget: int) -> str:
    """The markup of one report (its data block is separate)."""
    tabs = "".join(
        f'<button type="button" role="tab" data-phase="{_e(pv.phase.value)}">{_e(pv.phase.value)}'
        f'<span class="count">{len(pv.timeline)}</span>'
        + (f'<span class="flag">⚑ {len(pv.timeline.cited)}</span>' if pv.timeline.cited else "")
        + "</button>"
        for pv in view.phases
    )
    tabs += '<button type="button" role="tab" data-phase="*">all phases</button>'
    note = ""
    if dropped:
        note = (
            f'<p class="warn">This page leaves out {dropped} rows to stay under '
            f"{max(1, budget // 1_000_000)} MB of data (rows cited by findings are all kept); the JSON "
            f"report has everything.</p>"
        )
    notes = "".join(f"<li>{_e(n)}</li>" for n in view.notes)
    notes = f'<ul class="notes">{notes}</ul>' if notes else ""
    pth = ""
    if view.pth_files:
        items = "".join(
            f"<li><code>{_e(p)}</code>{' <b>runs code</b>' if ex else ''}<pre>{_e(h)}</pre></li>"
            for p, h, ex in view.pth_files
        )
        pth = (
            f'<details class="pth"><summary>.pth files ({len(view.pth_files)})</summary>'
            f"<ul>{items}</ul></details>"
        )
    caption = f'<p class="label">{_e(label)}</p>' if label else ""
    return (
        f'<div class="report" id="{rid}" data-default-phase="{_e(_default_phase(view))}">{caption}'
        f"{_banner(view, rid)}{note}{_phase_table(view, rid)}{_findings(view.findings, rid)}{pth}"
        f'<nav class="tabs" role="tablist" aria-label="phases">{tabs}</nav>'
        + "".join(_phase(pv, rid) for pv in view.phases)
        + f"{notes}</div>"
    )


def to_html_many(
    reports: Sequence[tuple[str, Report]], *, title: str = "", max_bytes: int = MAX_BYTES
) -> str:
    """One page for several reports (a diff's two runs, a gate's packages), each under its label.

    With one report the label is not shown.  The data of each report gets an equal
    share of what *max_bytes* leaves after the markup.
    """
    views = [(label, build_view(r)) for label, r in reports]
    head_title = title or (" · ".join(f"{v.title} {v.verdict.value}" for _, v in views) or "no reports")
    labels = [label if len(views) > 1 else "" for label, _ in views]
    shells = [_report_body(v, f"r{i}", labels[i], 0, 0) for i, (_, v) in enumerate(views)]
    # The markup is measured in UTF-8 bytes (⚑, →, — are 3 bytes); 400 covers a "rows left out" note.
    fixed = len(_page(head_title, "".join(shells), "").encode("utf-8")) + 400 * len(views)
    share = max(10_000, (max_bytes - fixed) // max(1, len(views)))
    bodies, blocks = [], []
    for i, (_, v) in enumerate(views):
        data, dropped = _data(v, share)
        bodies.append(_report_body(v, f"r{i}", labels[i], dropped, share))
        blocks.append(f'<script type="application/json" id="r{i}-data">{data}</script>')
    page = _page(head_title, "".join(bodies), "".join(blocks))
    try:
        page.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate that escaped sanitising: never fail to write the page
        page = page.encode("utf-8", "replace").decode("utf-8")
    return page


def to_html(report: Report, *, max_bytes: int = MAX_BYTES) -> str:
    """The report as one self-contained HTML page (text to write as UTF-8).

    The page stays under *max_bytes* UTF-8 bytes by leaving rows out of the lists
    (see the module docstring) unless its fixed markup alone is larger.
    """
    return to_html_many([("", report)], max_bytes=max_bytes)


def _page(title: str, body: str, data: str) -> str:
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode("utf-8")).digest()).decode("ascii")
    # Nothing may be fetched, framed or submitted; only our script runs; inline style is harmless.
    csp = (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>pkgsandbox: {_e(title)}</title><style>{_CSS}</style></head><body>"
        f"{body}<footer>pkgsandbox report · a self-contained page: it loads nothing and sends nothing."
        "</footer>"
        f"{data}<script>{_SCRIPT}</script></body></html>\n"
    )
