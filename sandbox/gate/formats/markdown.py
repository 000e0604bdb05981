"""A Markdown summary of a gate: a table of packages, then the findings with their evidence.

Fit for ``$GITHUB_STEP_SUMMARY`` and pull-request comments. Everything that came
from a package (paths, argv, addresses) is untrusted: it is made printable
(:func:`~sandbox.report.sanitize.printable`) and only ever written inside code
spans, so it cannot inject links, HTML, @-mentions or terminal controls, and the output
is kept under *max_chars* (a PR comment holds 65,536 characters) by dropping
evidence first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sandbox.gate.formats.summary import (
    as_result,
    change_text,
    evidence_text,
    finding_title,
    outcome_word,
    version_text,
)
from sandbox.gate.models import EntryStatus, GateOutcome, GateResult, fails
from sandbox.models import Report, Verdict
from sandbox.report.sanitize import printable

DEFAULT_MAX_CHARS = 60_000
_ICON = {
    Verdict.MALICIOUS: "🔴",
    Verdict.SUSPICIOUS: "🟠",
    Verdict.INCOMPLETE: "⚪",
    Verdict.CLEAN: "🟢",
}


def code(text: str, *, in_table: bool = False, limit: int = 300) -> str:
    """*text* as an inline code span that nothing inside can break out of."""
    text = printable(text, limit)  # controls, line breaks and bidi shown as escapes
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    span = f"{fence}{pad}{text}{pad}{fence}"
    # GFM splits table cells at "|" even inside code spans unless it is escaped.
    return span.replace("|", "\\|") if in_table else span


def _verdict_cell(o: GateOutcome) -> str:
    if o.verdict is not None:
        icon = _ICON[o.verdict]
        extra = " ⚠️ hash mismatch" if o.hash_mismatch else ""
        return f"{icon} {o.verdict.value}{extra}"
    if o.status is EntryStatus.SKIPPED:
        return "⏭️ skipped"
    return f"⚠️ {outcome_word(o)}"


def _how(o: GateOutcome) -> str:
    if o.status is EntryStatus.CACHED:
        return "cache"
    if o.status is EntryStatus.VETTED:
        return f"vetted in {o.seconds:.1f}s"
    return str(o.status.value).replace("_", " ")


def _headline(result: GateResult) -> str:
    code_ = int(result.exit_code)
    if code_ == 0:
        state = "✅ passed"
    elif code_ == 1:
        state = "❌ failed: findings"
    else:
        state = "❌ failed: not everything could be vetted"
    return f"## pkgsandbox gate — {state} (exit {code_})"


def _counts(result: GateResult) -> str:
    by: dict[str, int] = {}
    for o in result.outcomes:
        key = o.verdict.value if o.verdict is not None else o.status.value.replace("_", " ")
        by[key] = by.get(key, 0) + 1
    order = ["malicious", "suspicious", "incomplete", "clean", "not vetted", "error", "skipped"]
    parts = [
        f"**{by[k]} {k}**" if k in ("malicious", "suspicious") else f"{by[k]} {k}" for k in order if by.get(k)
    ]
    cached = sum(1 for o in result.outcomes if o.status is EntryStatus.CACHED)
    tail = f" · {cached} from cache" if cached else ""
    allow = ", incomplete allowed" if result.allow_incomplete else ""
    return (" · ".join(parts) or "nothing to vet") + tail + f" — fails on {result.fail_on.value}{allow}"


def _render(result: GateResult, evidence_limit: int | None) -> str:
    lines = [_headline(result), ""]
    if result.lockfile:
        scope = f"{code(result.lockfile)}"
        if result.base:
            scope += f" compared with {code(result.base)}"
        lines.append(
            f"{scope}: {len(result.outcomes)} package(s) new or changed, {result.unchanged} unchanged"
            + (f", {len(result.removed)} removed" if result.removed else "")
            + "."
        )
    lines += [_counts(result), ""]
    if result.outcomes:
        lines += ["| Package | Version | Change | Verdict | Findings | How |", "|---|---|---|---|---|---|"]
        for o in result.outcomes:
            rules = ", ".join(sorted({f.rule_id for f in o.report.findings})) if o.report else ""
            lines.append(
                f"| {code(o.entry.name, in_table=True)} | {code(version_text(o), in_table=True)} "
                f"| {code(change_text(o), in_table=True)} | {_verdict_cell(o)} | {rules or '—'} | {_how(o)} |"
            )
        lines.append("")
    with_findings = [o for o in result.outcomes if o.report is not None and o.report.findings]
    if with_findings:
        lines += ["### Findings", ""]
        for o in with_findings:
            assert o.report is not None
            gate = " (fails the gate)" if o.verdict is not None and fails(o.verdict, result.fail_on) else ""
            lines.append(f"#### {code(o.entry.label)} — {o.report.verdict.value}{gate}")
            lines.append("")
            for f in o.report.findings:
                lines.append(
                    f"- **{finding_title(f)}** ({f.severity.value}, {f.phase.value} phase): "
                    f"{code(f.message, limit=500)}"
                )
                if evidence_limit == 0:
                    continue
                shown = f.evidence if evidence_limit is None else f.evidence[:evidence_limit]
                lines.append(f"  <details><summary>evidence ({len(f.evidence)})</summary>")
                lines.append("")
                for ev in shown:
                    lines.append(f"  - {code(evidence_text(ev), limit=600)}")
                if len(shown) < len(f.evidence):
                    lines.append(f"  - … {len(f.evidence) - len(shown)} more in the SARIF/JSON report")
                lines += ["", "  </details>"]
            lines.append("")
    problems = [o for o in result.outcomes if o.incomplete or o.status is EntryStatus.SKIPPED]
    if problems:
        lines += ["### Not vetted", ""]
        for o in problems:
            why = o.detail or (o.report.verdict_reason if o.report is not None else "")
            lines.append(f"- {code(o.entry.label)}: {outcome_word(o)} — {code(why, limit=500)}")
        lines.append("")
    if result.notes:
        lines += ["### Notes", ""] + [f"- {code(n, limit=500)}" for n in result.notes] + [""]
    return "\n".join(lines)


def to_markdown(value: GateResult | Sequence[Report], *, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The Markdown summary of a gate result (or of plain vet reports), at most *max_chars* long."""
    result = as_result(value)
    for limit in (None, 5, 1, 0):
        text = _render(result, limit)
        if len(text) <= max_chars:
            return text
    note = "\n\n… truncated: the full result is in the SARIF/JSON report.\n"
    return text[: max(0, max_chars - len(note))] + note
