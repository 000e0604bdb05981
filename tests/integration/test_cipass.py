"""The ci pass (real engine): payloads that fire only inside a CI job (``GITHUB_ACTIONS``)
wake there, their findings say so, and a package that only reads ``CI`` to turn its
colours off stays clean.

Fixtures are defanged and built here: they only ever talk to TEST-NET addresses, which
the network-less sandbox's sinkhole answers; nothing leaves the container.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sandbox.models import DEFAULT_PASS, Phase, Report, Severity, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import (
    Randomised,
    build_wheel,
    ci_env_injection_body,
    ci_gated_source,
    ci_token_exfil_body,
)

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")

CI_NOTE = "the candidate's sources name CI variables"


def _vet(tmp_path: Path, name: str, src: str) -> tuple[int, Report]:
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    return code, report


def _ci_import(report: Report) -> str:
    rows = [p for p in report.phases if p.pass_name == "ci"]
    assert {p.phase for p in rows} >= {Phase.STARTUP, Phase.IMPORT}, [
        (p.phase, p.pass_name) for p in report.phases
    ]
    return next(p for p in rows if p.phase is Phase.IMPORT).pass_note


def test_a_payload_gated_on_github_actions_steals_the_runner_token_in_the_ci_pass(tmp_path: Path) -> None:
    r = Randomised()
    host, port = r.address(), r.port()
    wanted = ("ACTIONS_RUNTIME_TOKEN", "GITHUB_TOKEN")
    src = ci_gated_source(ci_token_exfil_body(host, port, wanted))
    code, report = _vet(tmp_path, r.name("cistl"), src)
    note = _ci_import(report)
    assert note.startswith(CI_NOTE) and "GITHUB_ACTIONS" in note, note

    assert report.verdict is Verdict.MALICIOUS and code == 1
    ps010 = [f for f in report.findings if f.rule_id == "PS010"]
    assert ps010 and all(f.pass_name == "ci" for f in ps010), [(f.rule_id, f.pass_name) for f in ps010]
    assert ps010[0].severity is Severity.CRITICAL and "ci pass" in ps010[0].message
    assert report.network is not None
    sent = {x.canary: x for x in report.network.exfiltration}
    assert {"ACTIONS_RUNTIME_TOKEN", "GITHUB_TOKEN"} <= set(sent), sorted(sent)
    x = sent["ACTIONS_RUNTIME_TOKEN"]
    assert x.pass_name == "ci" and x.channel == "http" and x.destination == f"{host}:{port}"
    # dormant on the laptop: the default pass sent nothing and found nothing of it
    assert not [f for f in report.findings if f.pass_name == DEFAULT_PASS and f.rule_id == "PS010"]
    assert not [x for x in report.network.exfiltration if x.pass_name == DEFAULT_PASS]


def test_a_line_appended_to_github_env_is_persistence_in_the_ci_pass(tmp_path: Path) -> None:
    r = Randomised()
    preload = f"/tmp/.{r.name('l')}.so"
    output = f"{r.name('k')}=ok"
    src = ci_gated_source(
        ci_env_injection_body({"GITHUB_ENV": f"LD_PRELOAD={preload}", "GITHUB_OUTPUT": output})
    )
    code, report = _vet(tmp_path, r.name("ciinj"), src)
    assert _ci_import(report).startswith(CI_NOTE)

    ps005 = [f for f in report.findings if f.rule_id == "PS005"]
    assert ps005 and all(f.pass_name == "ci" for f in ps005), [
        (f.rule_id, f.pass_name) for f in report.findings
    ]
    assert ps005[0].severity is Severity.HIGH and report.verdict is not Verdict.CLEAN and code == 1
    paths = {e.path or "" for f in ps005 for e in f.evidence}
    assert any("/_runner_file_commands/set_env_" in p for p in paths), paths
    # the evidence carries the line the later steps would get (trace or snapshot diff)
    assert any(f"LD_PRELOAD={preload}" in (e.data or "") for f in ps005 for e in f.evidence), ps005[
        0
    ].evidence
    # a step output reaches no later step's environment: never persistence
    assert not any("set_output_" in p for p in paths), paths
    assert not [f for f in report.findings if f.pass_name == DEFAULT_PASS and f.rule_id == "PS005"]


def test_a_package_that_reads_ci_to_turn_colours_off_stays_clean(tmp_path: Path) -> None:
    r = Randomised()
    name = r.name("tint")
    src = textwrap.dedent("""\
        import os, sys

        _PLAIN = bool(os.environ.get("CI")) or not sys.stdout.isatty() or "NO_COLOR" in os.environ

        def paint(text, code=32):
            return text if _PLAIN else f"\\033[{code}m{text}\\033[0m"

        LEVEL = paint("ok")
        """)
    code, report = _vet(tmp_path, name, src)
    note = _ci_import(report)
    assert note.startswith(CI_NOTE) and "CI in" in note, note
    assert report.verdict is Verdict.CLEAN and code == 0, [
        (f.rule_id, f.pass_name, f.message) for f in report.findings
    ]


def test_a_setup_py_gated_on_github_actions_is_caught_in_a_ci_reinstall(tmp_path: Path) -> None:
    """The common case: the payload runs in the job's install step. The sdist installs
    fine outside CI; the ci pass builds it again under the job's environment."""
    from tests.integration.test_detonate import legacy_sdist

    r = Randomised()
    host, port = r.address(), r.port()
    top = ci_gated_source(ci_token_exfil_body(host, port, ("ACTIONS_ID_TOKEN_REQUEST_TOKEN",)))
    code, report = run_cli(tmp_path, str(legacy_sdist(tmp_path, r.name("cisetup"), top)))
    assert report is not None
    rows = {(p.phase, p.pass_name): p for p in report.phases}
    assert rows[(Phase.INSTALL, DEFAULT_PASS)].status.value == "ok"
    assert rows[(Phase.INSTALL, "ci")].pass_note.startswith(CI_NOTE)
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason
    assert report.network is not None
    x = next(x for x in report.network.exfiltration if x.canary == "ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    assert x.pass_name == "ci" and x.phase is Phase.INSTALL and x.destination == f"{host}:{port}"
    ps010 = [f for f in report.findings if f.rule_id == "PS010"]
    assert ps010 and all(f.pass_name == "ci" and f.phase is Phase.INSTALL for f in ps010)


def test_a_ci_gate_that_never_spells_a_variable_still_wakes(tmp_path: Path) -> None:
    """The gate and the stolen names are built at run time (no CI variable appears in
    the sources): the host's scan sees an environment lookup by a computed name, so the
    ci pass runs and the theft is proven there."""
    r = Randomised()
    host, port = r.address(), r.port()

    # each name split at a random point inside its first word, so no regex over the
    # source could spell it (nor its family: "ACTIONS_RU" would name one)
    def split(var: str) -> str:
        cut = r.rng.randrange(2, var.index("_"))
        return f"{var[:cut]!r} + {var[cut:]!r}"

    names = f"({split('ACTIONS_RUNTIME_TOKEN')}, {split('GITHUB_TOKEN')})"
    body = ci_token_exfil_body(host, port, ()).replace("()", "WANTED", 1)
    src = f"WANTED = {names}\n" + ci_gated_source(
        body, gate=f"os.environ.get({split('GITHUB_ACTIONS')}) == 'true'"
    )
    assert "GITHUB_ACTIONS" not in src and "ACTIONS_RUNTIME_TOKEN" not in src
    code, report = _vet(tmp_path, r.name("cisplit"), src)
    note = _ci_import(report)
    # the scan joins the literal pieces back (sandbox/judge/layers.py), so it names them
    assert note.startswith(
        ("the candidate's sources name CI variables", "the candidate's sources read the environment")
    ), note

    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason
    ps010 = [f for f in report.findings if f.rule_id == "PS010"]
    assert ps010 and all(f.pass_name == "ci" for f in ps010), [(f.rule_id, f.pass_name) for f in ps010]
    assert report.network is not None
    assert {"ACTIONS_RUNTIME_TOKEN", "GITHUB_TOKEN"} <= {x.canary for x in report.network.exfiltration}


def test_a_ci_gate_inside_exec_of_a_compressed_blob_still_wakes(tmp_path: Path) -> None:
    """The whole gated stealer is a zlib+base64 blob run by exec(): no CI variable and no
    environment lookup appears in the text. On main the hint was "" and no ci pass ran
    (clean); the host's scan now reads the decoded layer (sandbox/judge/layers.py)."""
    import base64
    import zlib

    r = Randomised()
    host, port = r.address(), r.port()
    inner = ci_gated_source(ci_token_exfil_body(host, port, ("ACTIONS_RUNTIME_TOKEN", "GITHUB_TOKEN")))
    blob = base64.b64encode(zlib.compress(inner.encode())).decode()
    src = f"import base64, zlib\nexec(zlib.decompress(base64.b64decode({blob!r})))\n"
    assert "GITHUB" not in src and "environ" not in src
    code, report = _vet(tmp_path, r.name("ciblob"), src)
    note = _ci_import(report)
    assert note.startswith("the candidate's sources name CI variables") and "(decoded)" in note, note
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason
    ps010 = [f for f in report.findings if f.rule_id == "PS010"]
    assert ps010 and all(f.pass_name == "ci" for f in ps010), [(f.rule_id, f.pass_name) for f in ps010]
