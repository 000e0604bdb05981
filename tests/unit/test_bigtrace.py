"""Big runs: the host's parse streams the trace files and its events are built compactly,
with the same events as before; a flood of benign events does not hide what comes
after it (the report may list fewer harness events, the rules still judge every one)."""

from __future__ import annotations

import gzip
import io
import re
import time
from pathlib import Path

import pytest

from sandbox.agent.protocol import HOME
from sandbox.eventrows import EVENT_TEMPLATE, make_event, relabel_owned, replace_event
from sandbox.judge.profiles import load_profile
from sandbox.judge.report import HARNESS_FILES_LISTED, judge
from sandbox.models import Event, EventKind, Origin, Phase, Report, in_order
from sandbox.report import json_format
from sandbox.report.json_format import load_report, to_json, write_json
from sandbox.trace.observe import observe
from sandbox.trace.strace import parse_strace, parse_strace_file
from tests.fixtures.bigtrace import append_tail, load_recorded, scale_run, trace_lines
from tests.unit.test_strace import DATA, DATA_FILES

RUNS = Path(__file__).resolve().parent.parent / "data" / "runs"
RECORDED = sorted(str(p.relative_to(RUNS)) for p in RUNS.glob("*/*.strace.gz"))


def _text(path: Path) -> str:
    raw = path.read_bytes()
    return (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8", "replace")


@pytest.mark.parametrize(
    "path", [DATA / n for n in DATA_FILES] + [RUNS / n for n in RECORDED], ids=lambda p: p.name
)
def test_streamed_file_parse_gives_the_events_of_the_text_parse(path: Path) -> None:
    """Real captured traces: the file, read line by line, gives what its whole text gave
    (the text parse is the one the parser had before it streamed)."""
    streamed = parse_strace_file(path, Phase.IMPORT, seq_start=7)
    whole = parse_strace(_text(path), Phase.IMPORT, seq_start=7)
    assert streamed.lines and streamed.model_dump() == whole.model_dump()
    assert streamed.lines == _text(path).count("\n")


def test_streamed_parse_of_a_cut_file_and_odd_line_ends(tmp_path: Path) -> None:
    """A file cut mid-line is incomplete either way; a carriage return stays in its line
    (the stream splits on newlines only, as the text parse does); bad bytes are replaced."""
    lines = (DATA / "behaviours.strace").read_bytes().splitlines(keepends=True)
    body = b"".join(lines[:40]) + b"\xff\xfe\r\n" + b"".join(lines[40:80]) + lines[80][:30]
    path = tmp_path / "cut.strace"
    path.write_bytes(body)
    streamed = parse_strace_file(path, Phase.INSTALL)
    whole = parse_strace(body.decode("utf-8", "replace"), Phase.INSTALL)
    assert streamed.model_dump() == whole.model_dump()
    assert not streamed.complete and streamed.lines == 82 and streamed.unparsed >= 1


def test_fast_copies_are_model_copies() -> None:
    """replace_event gives model_copy's event; relabel_owned changes a parsed event
    itself and copies any other; the events keep their shared key table."""
    fields = EVENT_TEMPLATE | {
        "phase": Phase.IMPORT,
        "seq": 3,
        "pid": 40,
        "time": 1.5,
        "syscall": "openat",
        "kind": EventKind.FILE_READ,
        "path": "/etc/hosts",
    }
    parsed = make_event(dict(fields))
    copied = replace_event(parsed, origin=Origin.RUNTIME, context="call f")
    assert copied == parsed.model_copy(update={"origin": Origin.RUNTIME, "context": "call f"})
    assert parsed.origin is Origin.CANDIDATE  # the original is untouched
    assert relabel_owned(parsed, pass_name="windows") is parsed and parsed.pass_name == "windows"
    validated = Event(phase=Phase.IMPORT, seq=1, pid=2, time=1.0, syscall="openat", kind=EventKind.FILE_READ)
    other = relabel_owned(validated, origin=Origin.HARNESS)
    assert other is not validated and validated.origin is Origin.CANDIDATE and other.origin is Origin.HARNESS
    assert list(make_event(EVENT_TEMPLATE.copy()).__dict__) == list(Event.model_fields)


def test_in_order_is_phase_then_seq() -> None:
    def ev(phase: Phase, seq: int) -> Event:
        return Event(phase=phase, seq=seq, pid=1, time=0.0, syscall="x", kind=EventKind.OTHER)

    rising = [ev(Phase.IMPORT, 5), ev(Phase.INSTALL, 1), ev(Phase.IMPORT, 9), ev(Phase.INSTALL, 2)]
    mixed = [ev(Phase.IMPORT, 9), ev(Phase.INSTALL, 2), ev(Phase.IMPORT, 5), ev(Phase.INSTALL, 1)]
    want = [(Phase.INSTALL, 1), (Phase.INSTALL, 2), (Phase.IMPORT, 5), (Phase.IMPORT, 9)]
    assert [(e.phase, e.seq) for e in in_order(rising)] == want
    assert [(e.phase, e.seq) for e in in_order(mixed)] == want


# The act after the flood, in the import step's main process (a candidate import):
# a private key read, then a connection to a TEST-NET address.
MALICIOUS_TAIL = (
    '{tid}    {t} openat(AT_FDCWD</home/dev/project>, "' + HOME + '/.ssh/id_rsa", O_RDONLY|O_CLOEXEC) '
    "= 9<" + HOME + "/.ssh/id_rsa>",
    "{tid}    {t} socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 10<TCP:[990001]>",
    "{tid}    {t} connect(10<TCP:[990001]>, {{sa_family=AF_INET, sin_port=htons(443), "
    'sin_addr=inet_addr("203.0.113.9")}}, 16) = -1 ECONNREFUSED (Connection refused)',
)


def _judged(raw_dir: Path, copies: int, tail: bool) -> tuple[Report, int]:
    raw, src = load_recorded(RUNS / "benign-wheel")
    big = scale_run(raw, src, raw_dir, copies)
    if tail:
        append_tail(big, "import.0.strace", MALICIOUS_TAIL, copies - 1)
    obs, notes = observe(big)
    report = judge(
        obs,
        target="big",
        started=time.time(),
        image=None,
        staged=None,
        profile=load_profile("default"),
        notes=notes,
    )
    return report, trace_lines(big)


def test_an_act_after_a_flood_of_benign_events_is_judged(tmp_path: Path) -> None:
    """Flood then act: ~50k real trace lines (five copies of a recorded benign run, each
    with its own processes and packages), then the import reads a private key and
    connects out. The report lists only the first harness file events of each phase;
    the rules judged every event and find the act, with the act as evidence."""
    copies = 5
    benign, lines = _judged(tmp_path / "benign", copies, tail=False)
    flooded, _ = _judged(tmp_path / "flooded", copies, tail=True)
    assert lines > 45_000
    assert benign.verdict.value == "clean" and not benign.findings

    rules = {f.rule_id: f for f in flooded.findings if f.phase is Phase.IMPORT}
    assert {"PS001", "PS002"} <= rules.keys(), [f.rule_id for f in flooded.findings]
    assert flooded.verdict.value in ("suspicious", "malicious")
    assert any(e.path == f"{HOME}/.ssh/id_rsa" for e in rules["PS001"].evidence)
    assert any(e.destination == "203.0.113.9:443" for e in rules["PS002"].evidence)

    install = next(s for s in flooded.summary if s.phase is Phase.INSTALL)
    harness_listed = [e for e in flooded.events if e.phase is Phase.INSTALL and e.origin is Origin.HARNESS]
    assert install.by_origin["harness"] > 5 * HARNESS_FILES_LISTED  # every one counted …
    assert len(harness_listed) < install.by_origin["harness"]  # … not every one listed
    assert (
        sum(1 for e in harness_listed if e.kind.value.startswith(("file_", "dir_"))) == HARNESS_FILES_LISTED
    )
    cut = [n for n in flooded.notes if n.startswith("report: the first")]
    counted = re.search(r"\(install (\d+)\)", cut[0]) if len(cut) == 1 else None
    assert counted and HARNESS_FILES_LISTED < int(counted.group(1)) <= install.by_origin["harness"], cut
    assert all(e.origin is not Origin.RUNTIME for e in flooded.events)


@pytest.mark.parametrize("name", ["pth-exfil.json", "six-clean.json", "hostile-names.json"])
@pytest.mark.parametrize("chunk", [1, 3, 5000])
def test_the_streamed_json_report_is_the_json_report(
    name: str, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report written in pieces is to_json's text, byte for byte (chunk boundaries,
    one event, none)."""
    report = load_report(Path(__file__).resolve().parent.parent / "data" / "reports" / name)
    monkeypatch.setattr(json_format, "_EVENT_CHUNK", chunk)
    for events in (report.events, report.events[:1], ()):
        r = report.model_copy(update={"events": events})
        out = io.StringIO()
        write_json(r, out)
        assert out.getvalue() == to_json(r)
    assert len(report.events) > 3
