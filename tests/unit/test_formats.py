"""SARIF (validated against the official OASIS 2.1.0 schema), JUnit XML and Markdown outputs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from sandbox.gate import GateResult, LockedRequirement, SourceKind, diff_requirements, run_gate
from sandbox.gate.formats.junit import to_junit, xml_safe
from sandbox.gate.formats.markdown import code, to_markdown
from sandbox.gate.formats.sarif import to_sarif
from sandbox.judge.rules import CATALOGUE
from sandbox.models import Evidence, Finding, Phase, Report, Severity
from tests.unit.test_gate_fakes import FakeVet, make_report

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "sarif" / "sarif-schema-2.1.0.json"


def validate_sarif(text: str) -> dict[str, Any]:
    """Parse *text* and validate it against the vendored official SARIF 2.1.0 schema."""
    jsonschema = pytest.importorskip(
        "jsonschema", reason="jsonschema validates SARIF against the official schema"
    )
    log: dict[str, Any] = json.loads(text)
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    return log


def req(name: str, version: str | None = None, line: int = 3, **kw: object) -> LockedRequirement:
    spec = kw.pop("specifier", f"=={version}" if version else "")
    return LockedRequirement(
        name=name, version=version, specifier=spec, source_file="requirements.txt", line=line, **kw
    )  # type: ignore[arg-type]


def gate_result(**kw: Any) -> GateResult:
    base = [req("bad", "1.0"), req("fine", "1.0")]
    head = [
        req("bad", "1.1", line=4),
        req("fine", "1.0"),
        req("odd", "0.3", line=5),
        req("slow", "2.0", line=6),
        req("u", "1.0", specifier="", kind=SourceKind.URL, url="https://example.org/u-1.0.tar.gz", line=7),
        req("proj", specifier="", kind=SourceKind.DIRECTORY, path="/src/proj", line=8, own_project=True),
    ]
    todo, _, _ = diff_requirements(head, base)
    vet = FakeVet({"bad": "malicious", "odd": "suspicious", "slow": "incomplete"})
    return run_gate(todo, vet_fn=vet, workers=2, **kw)


def test_schema_is_the_official_oasis_file() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert (
        schema["id"]
        == "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    )
    assert "$schema" in schema["properties"] and "run" in schema["definitions"]


def test_sarif_is_schema_valid_and_carries_the_findings(tmp_path: Path) -> None:
    result = gate_result()
    log = validate_sarif(to_sarif(result, root=Path.cwd()))
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [*CATALOGUE, "PSG001"]
    assert all(r["name"][0].isupper() and " " not in r["name"] for r in rules)
    assert rules[list(CATALOGUE).index("PS002")]["properties"]["security-severity"] == "8.0"
    results = run["results"]
    outbound = next(r for r in results if r["ruleId"] == "PS002")
    assert outbound["level"] == "error" and rules[outbound["ruleIndex"]]["id"] == "PS002"
    assert outbound["message"]["text"].startswith(
        "bad 1.1 (startup phase): attempted connection(s) to 192.0.2.7:443"
    )
    (loc,) = outbound["locations"]
    assert loc["logicalLocations"][0]["fullyQualifiedName"] == "bad==1.1/startup"
    assert loc["physicalLocation"] == {
        "artifactLocation": {"uri": "requirements.txt"},
        "region": {"startLine": 4},
    }
    ev = outbound["properties"]["evidence"][0]
    assert ev["destination"] == "192.0.2.7:443" and ev["syscall"] == "connect" and ev["pid"] == 42
    assert outbound["properties"]["previousVersion"] == "1.0"
    assert next(r for r in results if r["ruleId"] == "PS006")["level"] == "warning"
    not_vetted = {r["properties"]["package"]: r for r in results if r["ruleId"] == "PSG001"}
    assert set(not_vetted) == {"slow", "u"} and not_vetted["u"]["level"] == "error"
    assert run["invocations"][0]["exitCode"] == 1 and run["invocations"][0]["executionSuccessful"] is True
    statuses = {p["name"]: p["status"] for p in run["properties"]["packages"]}
    assert statuses == {
        "bad": "vetted",
        "odd": "vetted",
        "slow": "vetted",
        "u": "not_vetted",
        "proj": "skipped",
    }


def test_sarif_marks_allowed_incomplete_as_warnings_and_handles_plain_reports() -> None:
    log = validate_sarif(to_sarif(gate_result(allow_incomplete=True)))
    assert {r["level"] for r in log["runs"][0]["results"] if r["ruleId"] == "PSG001"} == {"warning"}
    plain = validate_sarif(to_sarif([make_report("evil==2.0", "malicious", name="evil", version="2.0")]))
    res = plain["runs"][0]["results"]
    assert {r["ruleId"] for r in res} >= {"PS001", "PS002"}
    assert all("physicalLocation" not in r["locations"][0] for r in res)
    assert res[0]["locations"][0]["logicalLocations"][0]["name"] == "evil==2.0"


def test_sarif_of_an_empty_gate_is_valid() -> None:
    log = validate_sarif(to_sarif(run_gate([], vet_fn=FakeVet())))
    assert log["runs"][0]["results"] == []


def test_sarif_describes_rules_it_does_not_know() -> None:
    report = make_report("x==1", "clean", name="x", version="1")
    ev = Evidence(phase=Phase.IMPORT, pid=1, time=0.0, syscall="openat", path="/x")
    novel = Finding(
        rule_id="PS999",
        title="something new",
        severity=Severity.LOW,
        phase=Phase.IMPORT,
        message="m",
        evidence=(ev,),
    )
    log = validate_sarif(to_sarif([report.model_copy(update={"findings": (novel,)})]))
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert rules[log["runs"][0]["results"][0]["ruleIndex"]]["id"] == "PS999"


# --------------------------------------------------------------------------- JUnit


def test_junit_one_suite_one_case_per_package() -> None:
    root = ET.fromstring(to_junit(gate_result()))
    (suite,) = root.findall("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert len(cases) == 5 and suite.get("tests") == "5"
    assert suite.get("failures") == "2" and suite.get("errors") == "2" and suite.get("skipped") == "1"
    bad = cases["bad==1.1 (1.0 -> 1.1)"]
    failure = bad.find("failure")
    assert failure is not None and failure.get("type") == "malicious"
    assert "PS002" in (failure.get("message") or "")
    assert "to 192.0.2.7:443" in (failure.text or "") and "/home/dev/.ssh/id_rsa" in (failure.text or "")
    assert cases["odd==0.3"].find("failure") is not None
    slow_err = cases["slow==2.0"].find("error")
    assert slow_err is not None and "incomplete" in (slow_err.get("message") or "")
    assert cases["u==1.0"].find("error") is not None
    assert cases["proj (directory)"].find("skipped") is not None


def test_junit_below_fail_on_passes_and_allowed_incomplete_is_skipped() -> None:
    from sandbox.models import Verdict

    root = ET.fromstring(to_junit(gate_result(fail_on=Verdict.MALICIOUS, allow_incomplete=True)))
    suite = root.find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    odd = cases["odd==0.3"]
    assert odd.find("failure") is None and "PS006" in (odd.findtext("system-out") or "")
    assert cases["slow==2.0"].find("skipped") is not None and suite.get("errors") == "0"


def test_junit_survives_hostile_evidence() -> None:
    nasty = "/tmp/\x00\x07evil\x1b[31m]]></failure><x>&\ud800"
    report = make_report("h==1", "malicious", name="h", version="1")
    f = report.findings[0]
    ev = f.evidence[0].model_copy(update={"path": nasty, "data": "\x01\x02<script>"})
    hostile = report.model_copy(update={"findings": (f.model_copy(update={"evidence": (ev,)}),)})
    text = to_junit([hostile])
    root = ET.fromstring(text.encode("utf-8", "surrogatepass"))
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None and "\\x00\\x07evil\\x1b[31m]]></failure><x>&\\ud800" in (failure.text or "")
    assert xml_safe("ok\ttab\nnl") == "ok\ttab\nnl"


# --------------------------------------------------------------------------- Markdown


def test_markdown_summary_table_and_findings() -> None:
    md = to_markdown(gate_result())
    assert md.startswith("## pkgsandbox gate — ❌ failed: findings (exit 1)")
    assert "| Package | Version | Change | Verdict | Findings | How |" in md
    assert "| `bad` | `1.1` | `1.0 -> 1.1` | 🔴 malicious | PS001, PS002 |" in md
    assert "### Findings" in md and "**PS002 outbound connection attempt** (high, startup phase)" in md
    assert "`[startup] pid 42 connect by python -c pass to 192.0.2.7:443 -> ENETUNREACH`" in md
    assert "### Not vetted" in md and "`u==1.0`: not vetted" in md and "`slow==2.0`: incomplete" in md
    assert "**1 malicious** · **1 suspicious** · 1 incomplete · 1 not vetted · 1 skipped" in md


def test_markdown_passed_gate() -> None:
    todo, _, _ = diff_requirements([req("fine", "1.0")], None)
    md = to_markdown(run_gate(todo, vet_fn=FakeVet()))
    assert md.startswith("## pkgsandbox gate — ✅ passed (exit 0)") and "### Findings" not in md


def test_markdown_cannot_be_broken_by_package_controlled_text() -> None:
    assert code("a|b", in_table=True) == "`a\\|b`"
    assert code("has `tick`") == "`` has `tick` ``"
    span = code("x ``` y")
    assert span.startswith("````") and span.endswith("````")
    assert code("`edge`") == "`` `edge` ``"
    assert code("line\nbreak") == "`line\\nbreak`"  # shown as an escape, like every renderer
    report = make_report("h==1", "malicious", name="h", version="1")
    f = report.findings[0]
    ev = f.evidence[0].model_copy(update={"path": "/x/`](http://evil.example)<img src=x> @admin | ## h"})
    hostile = report.model_copy(update={"findings": (f.model_copy(update={"evidence": (ev,)}),)})
    md = to_markdown([hostile])
    line = next(ln for ln in md.splitlines() if "evil.example" in ln)
    assert line.strip().startswith("- ``") and line.strip().endswith("``")


def test_markdown_stays_under_the_limit() -> None:
    report = make_report("big==1", "malicious", name="big", version="1")
    f = report.findings[0]
    many = tuple(f.evidence[0].model_copy(update={"path": f"/home/dev/.ssh/key{i}"}) for i in range(20))
    big = report.model_copy(
        update={"findings": tuple(f.model_copy(update={"evidence": many}) for _ in range(40))}
    )
    full = to_markdown([big], max_chars=1_000_000)
    assert "key19" in full
    short = to_markdown([big], max_chars=6000)
    assert len(short) <= 6000 and "key19" not in short
    tiny = to_markdown([big], max_chars=500)
    assert len(tiny) <= 500 and tiny.rstrip().endswith("the full result is in the SARIF/JSON report.")


def test_renderers_accept_plain_reports() -> None:
    reports: list[Report] = [
        make_report("a==1", "clean", name="a", version="1"),
        make_report("b==2", "incomplete", name="b", version="2"),
    ]
    assert "b==2" in to_markdown(reports) and "⚪ incomplete" in to_markdown(reports)
    root = ET.fromstring(to_junit(reports))
    assert root.find("testsuite") is not None and root.find("testsuite").get("errors") == "1"  # type: ignore[union-attr]
    validate_sarif(to_sarif(reports))


# --------------------------------------------------------------------------- the registry


def test_every_format_has_a_renderer_and_the_cli_offers_the_registry() -> None:
    """The enum is exhaustive: each member dispatches, renders both input shapes, and is offered."""
    from sandbox.cli import build_parser
    from sandbox.gate.formats import GATE_FORMATS, VET_FORMATS, OutputFormat, render

    result = gate_result()
    report = make_report("b==2", "malicious", name="b", version="2")
    for fmt in OutputFormat:
        assert callable(fmt.to_format())
        for value in (result, report, [report]):
            text = render(value, fmt, root=Path.cwd())
            assert text.endswith("\n") or fmt is OutputFormat.MARKDOWN
            assert "b" in text and len(text) > 100
    assert set(GATE_FORMATS) == set(OutputFormat) and set(VET_FORMATS) <= set(OutputFormat)
    assert json.loads(render(report, OutputFormat.JSON))["verdict"] == "malicious"
    validate_sarif(render(report, OutputFormat.SARIF))
    for fmt in GATE_FORMATS:
        assert build_parser().parse_args(["gate", "r.txt", "--format", fmt.value]).format == [fmt.value]
    for fmt in VET_FORMATS:
        assert build_parser().parse_args(["vet", "x", "--format", fmt.value]).format == fmt.value


def test_an_unknown_member_is_refused_loudly() -> None:
    from sandbox.gate.formats import OutputFormat, assert_never

    with pytest.raises(AssertionError, match="unhandled format"):
        assert_never("yaml")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        OutputFormat("yaml")
