"""The page's limits, escaping helpers, and the compact JSON its long lists are embedded as.

Strings are interned (a path read, stat-ed and opened 40 times is stored once; paths
are split into a shared directory and a name), times are integer microseconds
delta-encoded, trailing empty columns are left off; over budget, rows are left out,
never those a finding cites.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from typing import Any

from sandbox.report.views import (
    ReportView,
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
