"""JUnit XML for test dashboards: one test suite, one test case per package.

A package whose verdict is at or above ``fail_on`` is a ``<failure>`` carrying the
findings and their evidence; one that could not be vetted is an ``<error>`` (a
``<skipped>`` when the gate allows incomplete results, since it then does not
fail the build); the project's own source trees are ``<skipped>``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime, timezone

from sandbox.gate.formats.summary import as_result, change_text, evidence_text, finding_title, outcome_word
from sandbox.gate.models import EntryStatus, GateOutcome, GateResult, fails
from sandbox.models import Report
from sandbox.report.sanitize import printable, printable_lines

MAX_EVIDENCE_PER_FINDING = 10

# Characters XML 1.0 cannot carry at all (even escaped). Evidence comes from
# untrusted packages (file names, argv), so it is made printable, never dropped.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """*text* with characters illegal in XML 1.0 written as ``\\xNN`` / ``\\uNNNN``."""

    def sub(m: re.Match[str]) -> str:
        code = ord(m.group(0))
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _XML_ILLEGAL.sub(sub, text)


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    # Attributes are single lines, bodies blocks of lines; both inert (the one sanitiser),
    # then whatever XML cannot carry at all.
    el = ET.SubElement(parent, tag, {k: xml_safe(printable(v)) for k, v in attrs.items()})
    if text is not None:
        el.text = xml_safe(printable_lines(text))
    return el


def _findings_text(o: GateOutcome) -> str:
    if o.report is None:
        return ""
    lines = [f"verdict: {o.report.verdict.value} — {printable(o.report.verdict_reason)}"]
    for f in o.report.findings:
        lines.append(f"{finding_title(f)} [{f.severity.value}, {f.phase.value}]: {printable(f.message)}")
        for ev in f.evidence[:MAX_EVIDENCE_PER_FINDING]:
            lines.append(f"    {evidence_text(ev)}")
        if len(f.evidence) > MAX_EVIDENCE_PER_FINDING:
            lines.append(
                f"    … {len(f.evidence) - MAX_EVIDENCE_PER_FINDING} more (see the SARIF or JSON report)"
            )
    return "\n".join(lines)


def _case_name(o: GateOutcome) -> str:
    change = change_text(o)
    return f"{o.entry.label} ({change})" if change not in ("new", "vetted (no base)") else o.entry.label


def to_junit(value: GateResult | Sequence[Report]) -> str:
    """The JUnit XML of a gate result (or of plain vet reports) as text."""
    result = as_result(value)
    suite_name = f"pkgsandbox gate {result.lockfile}".strip()
    classname = f"pkgsandbox.{result.lockfile or 'vet'}"
    failures = errors = skipped = 0
    root = ET.Element("testsuites", {"name": "pkgsandbox"})
    suite = _el(
        root,
        "testsuite",
        name=suite_name,
        timestamp=datetime.fromtimestamp(result.started, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        time=f"{max(0.0, result.finished - result.started):.3f}",
    )
    props = _el(suite, "properties")
    for key, val in (
        ("tool_version", result.tool_version),
        ("lockfile", result.lockfile),
        ("base", result.base),
        ("fail_on", result.fail_on.value),
        ("allow_incomplete", str(result.allow_incomplete).lower()),
        ("exit_code", str(int(result.exit_code))),
    ):
        _el(props, "property", name=key, value=val)
    for o in result.outcomes:
        case = _el(suite, "testcase", name=_case_name(o), classname=classname, time=f"{o.seconds:.3f}")
        body = _findings_text(o)
        if o.verdict is not None and fails(o.verdict, result.fail_on):
            failures += 1
            top = ", ".join(sorted({finding_title(f) for f in o.report.findings})) if o.report else ""
            _el(case, "failure", body, message=f"{o.verdict.value}: {top}", type=o.verdict.value)
        elif o.status is EntryStatus.SKIPPED:
            skipped += 1
            _el(case, "skipped", message=o.detail or "skipped")
        elif o.incomplete:
            why = printable(o.detail or (o.report.verdict_reason if o.report is not None else ""))
            if result.allow_incomplete:
                skipped += 1
                _el(case, "skipped", message=f"{outcome_word(o)} (allowed): {why}")
            else:
                errors += 1
                kind = o.verdict.value if o.verdict is not None else o.status.value
                _el(case, "error", body or why, message=f"{outcome_word(o)}: {why}", type=kind)
        out = [f"status: {o.status.value}", f"change: {printable(change_text(o))}"]
        if o.detail:
            out.append(f"detail: {printable(o.detail)}")
        cand = (
            next((a for a in o.report.artifacts if a.role.value == "candidate"), None) if o.report else None
        )
        if cand is not None:
            out.append(f"artifact: {printable(cand.filename)} sha256 {printable(cand.sha256)}")
        if body and not (o.verdict is not None and fails(o.verdict, result.fail_on)):
            out.append(body)  # findings below fail_on are shown, not failed
        _el(case, "system-out", "\n".join(out))
    for el, n in ((suite, len(result.outcomes)), (root, len(result.outcomes))):
        el.set("tests", str(n))
        el.set("failures", str(failures))
        el.set("errors", str(errors))
        el.set("skipped", str(skipped))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
