"""One sanitiser for every rendering: ESC, CSI, OSC 8 links and bidi controls in paths and argv are inert.

A report is built whose events, processes, findings and evidence carry terminal
escape sequences, hyperlinks, bidi overrides and forged line breaks, then rendered
in every format a human reads (terminal summary of ``vet``, ``show``, HTML,
Markdown, SARIF, JUnit). No raw control character may survive (for the structured
formats: after decoding JSON, XML and HTML entities, as a viewer would), and the
text must stay readable (the escapes are visible, the words around them intact).
"""

from __future__ import annotations

import html
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console

from sandbox.gate.formats import OutputFormat, render
from sandbox.models import Evidence, Report
from sandbox.report.html import to_html
from sandbox.report.sanitize import argv_text, is_inert, printable, printable_lines
from sandbox.ui.show import render_show
from sandbox.ui.terminal import render_diff, render_summary
from tests.unit.test_gate_fakes import make_report

ESC = "\x1b"
CSI = "\x1b[31mRED\x1b[0m"
C1_CSI = "\x9b32mGREEN"
OSC8 = "\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\"
OSC_TITLE = "\x1b]0;pwned\x07"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
HOSTILE_PATH = f"/tmp/inv{CSI}/{OSC8}/gnp\u202eexe.txt\bX\rY\x7fZ{BIDI}\nforged row"
HOSTILE_ARGV = ("python3", "-c", f"print('{OSC_TITLE}')", f"\u202etxt.exe{C1_CSI}", "two\nlines")

# Every character a terminal or a bidi-aware viewer acts on (tab and newline are judged apart).
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (ESC, "\\x1b"),
        (CSI, "\\x1b[31mRED\\x1b[0m"),
        (C1_CSI, "\\x9b32mGREEN"),
        (OSC8, "\\x1b]8;;https://evil.example/\\x1b\\click me\\x1b]8;;\\x1b\\"),
        (OSC_TITLE, "\\x1b]0;pwned\\x07"),
        ("a\bb\rc\x7fd", "a\\x08b\\rc\\x7fd"),
        ("x\ny", "x\\ny"),
        (BIDI, "\\u202a\\u202b\\u202c\\u202d\\u202e\\u2066\\u2067\\u2068\\u2069\\u200e\\u200f\\u061c"),
        ("plain caf\u00e9 \u6f22\u5b57", "plain caf\u00e9 \u6f22\u5b57"),
    ],
)
def test_printable_makes_each_payload_visible_and_inert(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert is_inert(printable(raw)) and not RAW.search(printable(raw))


def test_block_keeps_line_breaks_only() -> None:
    assert printable_lines(f"one\n{CSI}\r\ntwo\u202e") == "one\n\\x1b[31mRED\\x1b[0m\\r\ntwo\\u202e"
    assert argv_text(HOSTILE_ARGV).count("\\n") == 1 and "\n" not in argv_text(HOSTILE_ARGV)


def hostile_report() -> Report:
    """A real report (real rules) whose paths, argv and messages carry the payloads."""
    base = make_report("hostile==1", "malicious", name="hostile", version="1")
    events = tuple(
        ev.model_copy(
            update={
                "path": HOSTILE_PATH if ev.path is not None else None,
                "argv": HOSTILE_ARGV if ev.argv is not None else None,
                "data": f"payload {CSI}{OSC8}" if ev.data is not None else None,
            }
        )
        for ev in base.events
    )
    hostile = {"argv": HOSTILE_ARGV, "exe": HOSTILE_PATH}
    processes = tuple(p.model_copy(update=hostile) for p in base.processes)
    findings = tuple(
        f.model_copy(
            update={
                "message": f"wrote {HOSTILE_PATH}",
                "evidence": tuple(
                    e.model_copy(
                        update={
                            "path": HOSTILE_PATH,
                            "process": HOSTILE_ARGV,
                            "destination": f"192.0.2.7:443{OSC_TITLE}",
                            "data": f"{CSI}{BIDI}",
                            "detail": f"detail {OSC8}",
                        }
                    )
                    for e in f.evidence
                ),
            }
        )
        for f in base.findings
    )
    assert any(e.path for e in events) and processes and findings
    return base.model_copy(
        update={
            "events": events,
            "processes": processes,
            "findings": findings,
            "notes": (f"note {OSC8}",),
            "verdict_reason": f"reason {CSI}\u202e",
        }
    )


def strings(value: Any) -> Iterator[str]:
    """Every string inside decoded JSON."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def assert_inert(text: str, *, lines: bool = True) -> None:
    found = RAW.search(text)
    where = text[max(0, found.start() - 40) : found.end() + 40] if found else ""
    assert found is None, f"raw {found.group(0) if found else ''!r} near {where!r}"
    if not lines:
        assert "\n" not in text


def assert_readable(text: str) -> None:
    """The payloads are shown as escapes; the words around them survive."""
    assert "\\x1b[31mRED" in text or "\\\\x1b[31mRED" in text
    assert "\\u202e" in text
    assert "gnp" in text and "exe.txt" in text


def console(buf: io.StringIO) -> Console:
    return Console(file=buf, width=400, force_terminal=False, color_system=None, highlight=False)


def test_vet_terminal_summary_is_inert() -> None:
    buf = io.StringIO()
    render_summary(hostile_report(), console(buf))
    out = buf.getvalue()
    assert_inert(out)
    assert_readable(out)
    assert "https://evil.example/" in out  # the link target is shown as text, never as a link


def test_vet_terminal_summary_is_inert_on_a_real_terminal() -> None:
    """With colours on, the only escapes are rich's own SGR styles, never the payload's."""
    buf = io.StringIO()
    colour = Console(file=buf, width=400, force_terminal=True, color_system="truecolor")
    render_summary(hostile_report(), colour)
    out = re.sub(r"\x1b\[[0-9;]*m", "", buf.getvalue())  # rich's styling
    assert_inert(out)
    assert "\x1b]8" not in buf.getvalue()


def test_diff_terminal_is_inert() -> None:
    from sandbox.judge.baseline import CategoryDiff

    class Result:
        old = f"old{CSI}"
        new = "new\u202e"
        old_verdict = new_verdict = hostile_report().verdict
        changes = {"files": CategoryDiff(added=(HOSTILE_PATH,), removed=(OSC8,))}

    buf = io.StringIO()
    render_diff(Result(), hostile_report(), console(buf))
    assert_inert(buf.getvalue())
    assert "\\x1b[31mRED" in buf.getvalue()


def test_show_is_inert() -> None:
    buf = io.StringIO()
    render_show(hostile_report(), console(buf))
    out = buf.getvalue()
    assert_inert(out)
    assert_readable(out)


def test_html_is_inert() -> None:
    page = to_html(hostile_report())
    assert_inert(page)
    assert_inert(html.unescape(page))  # no character entity smuggles one in either
    blobs = re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', page, re.S)
    assert blobs
    for blob in blobs:  # the page's script puts these strings into the DOM
        for s in strings(json.loads(blob)):
            assert_inert(s, lines=False)
    assert_readable(html.unescape(page))


def test_markdown_is_inert() -> None:
    md = render(hostile_report(), OutputFormat.MARKDOWN)
    assert_inert(md)
    assert_inert(html.unescape(md))
    assert_readable(md)
    assert not any("forged row" in line and not line.lstrip().startswith("- ") for line in md.splitlines())


def test_sarif_is_inert() -> None:
    log = json.loads(render(hostile_report(), OutputFormat.SARIF))
    for s in strings(log):
        assert_inert(s, lines=False)
    text = json.dumps(log, ensure_ascii=False)
    assert_readable(text)


def test_junit_is_inert() -> None:
    root = ET.fromstring(render(hostile_report(), OutputFormat.JUNIT))
    texts = []
    for el in root.iter():
        texts.extend(el.attrib.values())
        for attr in el.attrib.values():
            assert_inert(attr, lines=False)
        if el.text:
            assert_inert(el.text)
            texts.append(el.text)
    assert_readable("\n".join(texts))


def test_evidence_line_of_the_gate_is_one_line() -> None:
    from sandbox.gate.formats.summary import evidence_text

    ev = Evidence(phase="install", pid=1, time=0.0, syscall="openat", path=HOSTILE_PATH, process=HOSTILE_ARGV)
    line = evidence_text(ev)
    assert_inert(line, lines=False)
    assert "forged row" in line
