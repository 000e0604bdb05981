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
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from sandbox.models import Report, Verdict
from sandbox.report.views import (
    FileGroup,
    FindingView,
    PhaseView,
    ProcessNode,
    ReportView,
    build_view,
    no_cyclic_gc,
)

MAX_BYTES = 4_800_000  # the page stays under 5 MB (the target) with some headroom
MAX_TREE_NODES = 1000  # per phase; beyond that the tree is cut with a note
MAX_EVIDENCE = 200  # per finding (the judge keeps 20)
ARGV_SHOWN = 300  # characters of a command line shown in the tree; the whole line is in its title
HTML_SUBJECT = 400  # characters of a path/address kept per row in the embedded data
HTML_DETAIL = 200


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _json_for_script(data: object) -> str:
    """JSON that is inert inside a ``<script>`` element, whatever the strings hold."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# ---------------------------------------------------------------- embedded data
#
# Layout of the JSON block (``S`` is the string table, 0 is ""; "str" columns hold indices into it):
#   tl    [t µs, pid, op "kind syscall", dir, name, detail, errno, rules]  t as a delta from the previous
#         row (rows are in time order); dir + name is the subject split after its last "/" (a directory
#         is shared by many paths); trailing zero columns are left off
#   net   [first µs, pid, syscall, destination, protocol, count, bytes|null, errno, process, data, rules,
#          outbound 0/1]
#   files {location: [[dir, name, access, count, ok, errnos, pids, rules], ...]}  trailing zeros left off
_TL_STR = (2, 3, 4, 5, 6, 7)
_NET_STR = (2, 3, 4, 7, 8, 9, 10)
_FILE_STR = (0, 1, 2, 5, 6, 7)
_TL_RULES, _NET_RULES, _FILE_RULES = 7, 10, 7


class _Strings:
    """An interning table: each distinct string is stored once; rows hold indices."""

    def __init__(self) -> None:
        self.items: list[str] = [""]
        self.index: dict[str, int] = {"": 0}

    def __call__(self, s: str) -> int:
        i = self.index.get(s)
        if i is None:
            i = self.index[s] = len(self.items)
            self.items.append(s)
        return i


def _us(t: float) -> int:
    return round(t * 1_000_000)


def _split(path: str) -> tuple[str, str]:
    """("/usr/lib/", "x.py") for "/usr/lib/x.py"; ("", text) when there is no directory part."""
    i = path.rfind("/")
    return (path[: i + 1], path[i + 1 :]) if i > 0 else ("", path)


@dataclass
class _Encoded:
    """Rows of every phase with indices into one string table, before the size budget is applied."""

    strings: _Strings
    phases: dict[str, dict[str, Any]]


def _encode(view: ReportView) -> _Encoded:
    s = _Strings()
    phases: dict[str, dict[str, Any]] = {}
    for pv in view.phases:
        ops: dict[tuple[str, str], int] = {}
        tl = []
        for _seq, t, pid, kind, syscall, subject, detail, errno, rules in pv.timeline.fields():
            op = ops.get((kind, syscall))
            if op is None:
                op = ops[(kind, syscall)] = s(f"{kind} {syscall}")
            d, n = _split(subject if len(subject) <= HTML_SUBJECT else _cut(subject, HTML_SUBJECT))
            tl.append(
                [
                    round(t * 1_000_000),
                    pid,
                    op,
                    s(d),
                    s(n),
                    s(detail if len(detail) <= HTML_DETAIL else _cut(detail, HTML_DETAIL)),
                    s(errno),
                    s(" ".join(rules)) if rules else 0,
                ]
            )
        net = [
            [
                _us(r.first),
                r.pid,
                s(r.syscall),
                s(_cut(r.destination, HTML_SUBJECT)),
                s(r.protocol),
                r.count,
                r.bytes,
                s(r.errno),
                s(_cut(r.process, HTML_DETAIL)),
                s(_cut(r.data, HTML_DETAIL)),
                s(" ".join(r.rules)),
                1 if r.outbound else 0,
            ]
            for r in sorted(pv.network, key=lambda r: (not r.rules, not r.outbound, r.first))
        ]
        files: dict[str, list[list[Any]]] = {}
        for g in pv.files:
            rows = []
            for f in g.rows:
                d, n = _split(_cut(f.path, HTML_SUBJECT))
                pids = " ".join(map(str, f.pids[:20])) + (" …" if len(f.pids) > 20 else "")
                rows.append(
                    [
                        s(d),
                        s(n),
                        s(",".join(f.access)),
                        f.count,
                        f.ok,
                        s(" ".join(f.errnos)),
                        s(pids),
                        s(" ".join(f.rules)),
                    ]
                )
            files[g.location] = rows
        phases[pv.phase.value] = {"tl": tl, "net": net, "files": files}
    return _Encoded(s, phases)


def _keep(rows: list[list[Any]], fraction: float, rules_col: int) -> tuple[list[list[Any]], int]:
    """The first *fraction* of *rows* plus every row a finding cites; and how many were left out."""
    if fraction >= 1.0:
        return rows, 0
    n = int(len(rows) * fraction)
    kept = rows[:n] + [r for r in rows[n:] if r[rules_col]]
    return kept, len(rows) - len(kept)


def _trim(row: list[Any]) -> list[Any]:
    while len(row) > 2 and row[-1] == 0:
        row.pop()
    return row


def _serialise(enc: _Encoded, fraction: float) -> tuple[str, int]:
    """The JSON text keeping *fraction* of each list (cited rows always), with an unused-free string table."""
    strings = enc.strings.items
    used: dict[int, int] = {0: 0}
    table = [""]
    if fraction >= 1.0:  # every interned string is used: keep the table as it is
        table = strings

    def remap(row: list[Any], cols: tuple[int, ...]) -> list[Any]:
        out = list(row)
        if fraction >= 1.0:
            return out
        for c in cols:
            i = out[c]
            j = used.get(i)
            if j is None:
                j = used[i] = len(table)
                table.append(strings[i])
            out[c] = j
        return out

    phases: dict[str, Any] = {}
    dropped_all = 0
    for name, pd in enc.phases.items():
        tl, d_tl = _keep(pd["tl"], fraction, _TL_RULES)
        net, d_net = _keep(pd["net"], fraction, _NET_RULES)
        prev = 0
        tl_rows = []
        for r in tl:
            row = remap(r, _TL_STR)
            row[0], prev = r[0] - prev, r[0]  # delta-encode the time: a few digits instead of eight
            tl_rows.append(_trim(row))
        files = {}
        d_files = 0
        for loc, rows in pd["files"].items():
            kept, d = _keep(rows, fraction, _FILE_RULES)
            d_files += d
            files[loc] = [_trim(remap(r, _FILE_STR)) for r in kept]
        out: dict[str, Any] = {"tl": tl_rows, "net": [remap(r, _NET_STR) for r in net], "files": files}
        if d_tl or d_net or d_files:
            out["dropped"] = {"tl": d_tl, "net": d_net, "files": d_files}
        dropped_all += d_tl + d_net + d_files
        phases[name] = out
    return _json_for_script({"s": table, "phases": phases}), dropped_all


def _data(view: ReportView, budget: int) -> tuple[str, int]:
    """The JSON block for one report within *budget* bytes; and how many rows it had to leave out."""
    with no_cyclic_gc():
        enc = _encode(view)
    fraction = 1.0
    text, dropped = _serialise(enc, fraction)
    for _ in range(8):
        size = len(text.encode("utf-8"))
        if size <= budget or fraction == 0.0:
            break
        # Shrink in proportion, a little more than needed: shared strings do not shrink linearly.
        fraction = fraction * budget / size * 0.9
        if fraction < 0.001:
            fraction = 0.0
        text, dropped = _serialise(enc, fraction)
    return text, dropped


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


# ---------------------------------------------------------------- style and behaviour

_CSS = """
:root{--bg:#fff;--fg:#1d2329;--mute:#5f6b76;--line:#dde2e7;--soft:#f4f6f8;--red:#b3261e;--amber:#9a6700;
--green:#1a7f37;--purple:#8250df;--blue:#0b5cad;--mark:#fff4d6}
@media (prefers-color-scheme:dark){:root{--bg:#14171a;--fg:#e3e7eb;--mute:#98a3ad;--line:#2c3238;
--soft:#1c2126;--red:#ff7b72;--amber:#e3b341;--green:#56d364;--purple:#bc8cff;--blue:#79c0ff;--mark:#3a3320}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1400px;padding:0 16px 40px;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
code,pre,.mono,td.num,.argv,.path,.dest,.data{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,
"Liberation Mono",monospace;font-size:12.5px}
code,.argv,.path,.dest,.data,td{overflow-wrap:anywhere}
pre{white-space:pre-wrap;background:var(--soft);padding:8px;border-radius:4px;max-height:30em;overflow:auto}
h1{margin:4px 0;font-size:22px}h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid var(--line)}
a{color:var(--blue)}
.banner{margin-top:16px;padding:14px 18px;border-radius:6px;border-left:8px solid var(--mute);
background:var(--soft)}
.banner .verdict{font-weight:700;letter-spacing:.08em;font-size:13px}
.v-malicious{border-color:var(--red)}.v-malicious .verdict{color:var(--red)}
.v-suspicious{border-color:var(--amber)}.v-suspicious .verdict{color:var(--amber)}
.v-clean{border-color:var(--green)}.v-clean .verdict{color:var(--green)}
.v-incomplete{border-color:var(--purple)}.v-incomplete .verdict{color:var(--purple)}
.reason{margin:4px 0 8px;font-weight:600}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:1px 12px;margin:0;color:var(--mute);
font-size:13px}
.facts dt{font-weight:600}.facts dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;margin:4px 0}
th,td{text-align:left;vertical-align:top;padding:3px 8px;border-bottom:1px solid var(--line)}
th{font-weight:600;color:var(--mute);font-size:12px}
td.num{text-align:right;white-space:nowrap}
td.nw{white-space:nowrap;overflow-wrap:normal}
.evidence td:last-child{min-width:16em}.evidence td:nth-child(4){max-width:36em}
.st-ok,.st.ok{color:var(--green)}.st-bad,.st.bad{color:var(--red)}.st.unknown{color:var(--amber)}
details{margin:6px 0}summary{cursor:pointer;font-weight:600;padding:2px 0}
.finding{border:1px solid var(--line);border-left:6px solid var(--mute);border-radius:4px;padding:6px 10px}
.finding summary{font-weight:400}
.sev-critical,.sev-high{border-left-color:var(--red)}.sev-medium{border-left-color:var(--amber)}
.sev-low{border-left-color:var(--blue)}
.sev{font-weight:700;font-size:12px;letter-spacing:.05em}
.sev-critical .sev,.sev-high .sev{color:var(--red)}.sev-medium .sev{color:var(--amber)}
.desc,.ph,.note,.notes,.t,.ev,.via,.none,footer,.count{color:var(--mute)}
.desc{margin:4px 0;font-size:13px}
.errno{color:var(--mute)}.dest{font-weight:600}
.tabs{position:sticky;top:0;z-index:2;background:var(--bg);padding:8px 0;margin-top:18px;
border-bottom:2px solid var(--line);display:flex;gap:6px;flex-wrap:wrap}
.tabs button{font:inherit;border:1px solid var(--line);background:var(--soft);color:var(--fg);
border-radius:4px;padding:4px 12px;cursor:pointer}
.tabs button[aria-selected=true]{background:var(--blue);color:var(--bg);border-color:var(--blue)}
.tabs button[aria-selected=true] .count{color:var(--bg)}
.count{margin-left:6px;font-size:12px}.flag{margin-left:6px;color:var(--red);font-weight:700}
.tabs button[aria-selected=true] .flag{color:var(--bg)}
ul.tree,ul.tree ul{list-style:none;margin:0;padding-left:20px}
ul.tree{padding-left:4px}
ul.tree li{border-left:1px solid var(--line);padding-left:10px;margin:2px 0}
.node{padding:1px 4px;border-radius:3px}
.node>span,.node>code{margin-right:6px}
.pidn{font-weight:700}
.proc.flagged>.node{background:var(--mark)}
.rules,.flagcell{color:var(--red);font-weight:700;white-space:nowrap}
.tag{font-size:11px;border:1px solid var(--line);border-radius:8px;padding:0 6px;color:var(--mute)}
.tag.linger{color:var(--purple);border-color:var(--purple)}
:target>.node,:target{outline:2px solid var(--blue);outline-offset:1px}
tr.flagged td{background:var(--mark)}tr.failed td.evt{color:var(--mute)}
tr.outbound .dest{color:var(--red)}
.controls{display:flex;gap:12px;align-items:center;flex-wrap:wrap;margin:4px 0}
.controls input[type=search]{font:inherit;padding:3px 8px;min-width:24em;border:1px solid var(--line);
border-radius:4px;background:var(--bg);color:var(--fg)}
.shown{color:var(--mute);font-size:12px}
button.more{font:inherit;margin:6px 0;border:1px solid var(--line);background:var(--soft);color:var(--fg);
border-radius:4px;padding:3px 12px;cursor:pointer}
.loc-credentials>summary b{color:var(--red)}
.warn{background:var(--mark);padding:6px 10px;border-radius:4px}
.label{font-weight:700;font-size:16px;margin:24px 0 0}
footer{margin-top:30px;font-size:12px}
"""

# Vanilla JS, no libraries.  Data only ever reaches the page through textContent.
_SCRIPT = r"""
(function () {
  "use strict";
  var PAGE = 500;
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }
  function secs(us) { return (us / 1e6).toFixed(6); }
  function pidLink(rid, phase, pid) {
    var a = el("a", "pid", String(pid));
    a.href = "#" + rid + "-" + phase + "-p" + String(Number(pid));
    return a;
  }
  function terms(text) {
    return text.toLowerCase().split(/\s+/).filter(function (t) { return t.length > 0; });
  }
  function matches(hay, ts) {
    for (var i = 0; i < ts.length; i++) {
      var t = ts[i];
      if (t.charAt(0) === "-" && t.length > 1) { if (hay.indexOf(t.slice(1)) >= 0) { return false; } }
      else if (hay.indexOf(t) < 0) { return false; }
    }
    return true;
  }

  // A table over rows held in memory: filtered by words, shown a page at a time.
  function LazyTable(host, spec) {
    var rows = spec.rows, hay = new Array(rows.length), selected = [], shown = 0;
    var controls = el("div", "controls");
    var input = el("input");
    input.type = "search";
    input.placeholder = spec.placeholder;
    input.setAttribute("aria-label", "filter");
    controls.appendChild(input);
    var onlyFlagged = null;
    if (spec.flagged) {
      var lab = el("label");
      onlyFlagged = el("input");
      onlyFlagged.type = "checkbox";
      lab.appendChild(onlyFlagged);
      lab.appendChild(document.createTextNode(" only rows cited by findings"));
      controls.appendChild(lab);
    }
    var counter = el("span", "shown");
    controls.appendChild(counter);
    var table = el("table", spec.cls), thead = el("thead"), htr = el("tr"), tbody = el("tbody");
    spec.head.forEach(function (h) { htr.appendChild(el("th", null, h)); });
    thead.appendChild(htr); table.appendChild(thead); table.appendChild(tbody);
    var more = el("button", "more", "");
    more.type = "button";
    host.appendChild(controls); host.appendChild(table); host.appendChild(more);
    if (spec.dropped) { host.appendChild(el("p", "note", spec.dropped)); }

    function text(i) {
      if (hay[i] === undefined) { hay[i] = spec.text(rows[i]).toLowerCase(); }
      return hay[i];
    }
    function update() {
      counter.textContent = "showing " + shown + " of " + selected.length +
        (selected.length !== rows.length ? " matching (" + rows.length + " in all)" : "");
      var left = selected.length - shown;
      more.hidden = left <= 0;
      more.textContent = "show " + Math.min(PAGE, left) + " more (" + left + " left)";
    }
    function page() {
      var frag = document.createDocumentFragment(), end = Math.min(selected.length, shown + PAGE);
      for (var k = shown; k < end; k++) { frag.appendChild(spec.render(rows[selected[k]])); }
      tbody.appendChild(frag);
      shown = end;
      update();
    }
    function apply() {
      var ts = terms(input.value), flagOnly = onlyFlagged !== null && onlyFlagged.checked;
      selected = [];
      for (var i = 0; i < rows.length; i++) {
        if (flagOnly && !spec.flagged(rows[i])) { continue; }
        if (ts.length === 0 || matches(text(i), ts)) { selected.push(i); }
      }
      tbody.textContent = "";
      shown = 0;
      page();
    }
    var timer = null;
    input.addEventListener("input", function () {
      if (timer !== null) { clearTimeout(timer); }
      timer = setTimeout(apply, 150);
    });
    if (onlyFlagged !== null) { onlyFlagged.addEventListener("change", apply); }
    more.addEventListener("click", page);
    apply();
  }

  function cell(tr, cls, content) {
    var td = el("td", cls);
    if (typeof content === "string") { td.textContent = content; }
    else if (content) { td.appendChild(content); }
    tr.appendChild(td);
    return td;
  }
  function droppedNote(d, key) {
    if (!d || !d[key]) { return ""; }
    return d[key] + " rows left out of this page to keep it small; the JSON report has them.";
  }

  function initReport(root) {
    var rid = root.id;
    var node = document.getElementById(rid + "-data");
    var data = JSON.parse(node.textContent), S = data.s, ops = {};
    function str(r, i) { return S[r[i] || 0]; }  // trailing zero columns are left off
    function op(i) {  // "kind syscall" → [kind, syscall], split once per distinct value
      if (!ops[i]) { var t = S[i], k = t.indexOf(" "); ops[i] = [t.slice(0, k), t.slice(k + 1)]; }
      return ops[i];
    }

    function specFor(kind, phase, group) {
      var pd = data.phases[phase];
      if (!pd) { return null; }
      if (kind === "tl") {
        if (!pd.tlReady) {  // times are deltas from the previous row: make them absolute once
          var acc = 0;
          pd.tl.forEach(function (r) { acc += r[0]; r[0] = acc; });
          pd.tlReady = true;
        }
        return {
          rows: pd.tl, cls: "tl", dropped: droppedNote(pd.dropped, "tl"),
          head: ["t (s)", "pid", "kind", "event", ""],
          placeholder: "filter: words, pid:123, kind:connect, PS002, -stat (exclude)",
          flagged: function (r) { return (r[7] || 0) !== 0; },
          text: function (r) {
            var o = op(r[2]);
            return "pid:" + r[1] + " kind:" + o[0] + " " + o[1] + " " + str(r, 3) + str(r, 4) + " " +
              str(r, 5) + " " + str(r, 6) + " " + str(r, 7);
          },
          render: function (r) {
            var o = op(r[2]), err = str(r, 6), rules = str(r, 7), det = str(r, 5);
            var subj = str(r, 3) + str(r, 4);
            var tr = el("tr", rules ? "flagged" : (err ? "failed" : ""));
            cell(tr, "num", secs(r[0]));
            cell(tr, "num", pidLink(rid, phase, r[1]));
            cell(tr, "nw", o[0]);
            cell(tr, "evt mono", o[1] + (subj ? " " + subj : "") + (det ? " " + det : "") +
              (err ? " (" + err + ")" : ""));
            cell(tr, "flagcell", rules ? "⚑ " + rules : "");
            return tr;
          }
        };
      }
      if (kind === "net") {
        return {
          rows: pd.net, cls: "net", dropped: droppedNote(pd.dropped, "net"),
          head: ["first (s)", "pid", "op", "destination", "proto", "count", "bytes", "result", "process", ""],
          placeholder: "filter: destination, pid:123, connect, ENETUNREACH …",
          flagged: function (r) { return r[10] !== 0; },
          text: function (r) {
            return "pid:" + r[1] + " " + S[r[2]] + " " + S[r[3]] + " " + S[r[4]] + " " +
              (S[r[7]] || "ok") + " " + S[r[8]] + " " + S[r[9]] + " " + S[r[10]] + (r[11] ? " outbound" : "");
          },
          render: function (r) {
            var tr = el("tr", (r[10] ? "flagged " : "") + (r[11] ? "outbound" : ""));
            cell(tr, "num", secs(r[0]));
            cell(tr, "num", pidLink(rid, phase, r[1]));
            cell(tr, "nw", S[r[2]]);
            var td = cell(tr, "", el("span", "dest", S[r[3]]));
            if (S[r[9]]) { td.appendChild(el("div", "data", "\"" + S[r[9]] + "\"")); }
            cell(tr, "", S[r[4]]);
            cell(tr, "num", String(r[5]));
            cell(tr, "num", r[6] === null ? "-" : String(r[6]));
            cell(tr, "", S[r[7]] || "ok");
            cell(tr, "argv", S[r[8]]);
            cell(tr, "flagcell", S[r[10]] ? "⚑ " + S[r[10]] : "");
            return tr;
          }
        };
      }
      var rows = pd.files[group] || [];
      return {
        rows: rows, cls: "files", dropped: group === "credentials" ? droppedNote(pd.dropped, "files") : "",
        head: ["path", "access", "count", "result", "pids", ""],
        placeholder: "filter: path words, write, exec, ENOENT …",
        flagged: function (r) { return (r[7] || 0) !== 0; },
        text: function (r) {
          return str(r, 0) + str(r, 1) + " " + str(r, 2) + " " + str(r, 5) + " pid:" +
            str(r, 6).split(" ").join(" pid:") + " " + str(r, 7);
        },
        render: function (r) {
          var rules = str(r, 7), errs = str(r, 5), ok = r[4] || 0;
          var tr = el("tr", rules ? "flagged" : "");
          cell(tr, "path", str(r, 0) + str(r, 1));
          cell(tr, "", str(r, 2));
          cell(tr, "num", "x" + r[3]);
          cell(tr, "", errs ? errs + (ok ? " (" + ok + " ok)" : "") : "ok");
          cell(tr, "mono", str(r, 6));
          cell(tr, "flagcell", rules ? "⚑ " + rules : "");
          return tr;
        }
      };
    }

    function ensure(host) {
      if (host.getAttribute("data-ready") === "1") { return; }
      var spec = specFor(host.getAttribute("data-kind"), host.getAttribute("data-phase"),
                         host.getAttribute("data-group"));
      host.setAttribute("data-ready", "1");
      if (spec === null) { return; }
      if (spec.rows.length === 0) { host.appendChild(el("p", "none", "none")); return; }
      LazyTable(host, spec);
    }
    // Tables are built when first seen: an open <details> in the shown phase, or on opening.
    function renderVisible() {
      root.querySelectorAll(".lazy").forEach(function (host) {
        var sec = host.closest(".phase");
        if (sec && sec.hidden) { return; }
        var d = host.parentElement;
        while (d && d !== root) {
          if (d.tagName === "DETAILS" && !d.open) { return; }
          d = d.parentElement;
        }
        ensure(host);
      });
    }
    root.querySelectorAll("details").forEach(function (d) {
      d.addEventListener("toggle", function () { if (d.open) { renderVisible(); } });
    });

    var tabs = root.querySelectorAll(".tabs button");
    var sections = root.querySelectorAll("section.phase");
    function select(phase) {
      tabs.forEach(function (b) {
        b.setAttribute("aria-selected", b.getAttribute("data-phase") === phase ? "true" : "false");
      });
      sections.forEach(function (s) { s.hidden = phase !== "*" && s.getAttribute("data-phase") !== phase; });
      renderVisible();
    }
    tabs.forEach(function (b) {
      b.addEventListener("click", function () { select(b.getAttribute("data-phase")); });
    });
    // Links to a process (pid cells, evidence) switch to its phase and open what hides it.
    root.addEventListener("click", function (ev) {
      var a = ev.target.closest ? ev.target.closest("a[href^='#']") : null;
      if (!a) { return; }
      var target = document.getElementById(a.getAttribute("href").slice(1));
      if (!target) { return; }
      var sec = target.closest("section.phase");
      if (sec && sec.hidden) { select(sec.getAttribute("data-phase")); }
      for (var d = target.parentElement; d; d = d.parentElement) {
        if (d.tagName === "DETAILS") { d.open = true; }
      }
    });
    select(root.getAttribute("data-default-phase") || "*");
  }

  document.querySelectorAll(".report").forEach(function (root) {
    try { initReport(root); } catch (e) {
      var p = el("p", "warn", "This page could not lay out its data: " + e);
      root.insertBefore(p, root.firstChild);
      throw e;
    }
  });
})();
"""
