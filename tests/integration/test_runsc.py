"""The same defanged fixture under runc and under runsc (gVisor) gets the same verdict
and the same findings (issue 13 item 5).

No skip when runsc is missing: CI provisions it (`pkgsandbox doctor --provision` in the
README's test command registers it), and a run that cannot use it exits 3, which fails
here. Differences between the runtimes are in README "Runtimes".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.models import Phase, PhaseStatus, Report, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel, exfil_source, pth_line

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")


def _findings(report: Report) -> set[tuple[str, str]]:
    return {(f.rule_id, f.phase.value) for f in report.findings}


def _without_sinkhole(runc: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """What runc's findings become without the sinkhole, which gVisor cannot host (no
    veth, no netfilter NAT in its netstack): the exfiltration the capture proved
    (PS010) is left as the honeytoken read the trace shows (PS012); the attempt itself
    (PS002) is recorded either way."""
    return {f for f in runc if f[0] != "PS010"} | {
        ("PS012", phase) for rule, phase in runc if rule == "PS010"
    }


def test_runsc_gives_the_same_verdict_and_findings_as_runc(tmp_path: Path) -> None:
    r = Randomised()
    name, cred, host, port = r.name("helper"), r.credential(), r.address(), r.port()
    whl = build_wheel(
        tmp_path,
        name,
        "2.0.0",
        {
            f"{name}/__init__.py": "import os\nVERSION = os.environ.get('HOME', '')\n",
            f"{name}_init.pth": pth_line(exfil_source(cred, host, port)),
        },
    )
    reports: dict[str, Report] = {}
    for runtime in ("runc", "runsc"):
        code, report = run_cli(tmp_path, str(whl), "--runtime", runtime)
        assert report is not None, f"no report under {runtime} (exit {code}): is runsc registered?"
        assert code == 1, (runtime, code, report.verdict_reason)
        assert all(p.status is PhaseStatus.OK and p.trace_complete for p in report.phases), (
            runtime,
            [(p.phase.value, p.status.value, p.problems) for p in report.phases],
        )
        reports[runtime] = report
    runc, runsc = reports["runc"], reports["runsc"]
    assert runc.verdict is Verdict.MALICIOUS and runsc.verdict is Verdict.MALICIOUS
    assert _findings(runsc) == _without_sinkhole(_findings(runc)), (_findings(runc), _findings(runsc))
    assert {("PS001", Phase.STARTUP.value), ("PS002", Phase.STARTUP.value)} <= _findings(runsc)
    # the evidence is the same syscalls: the credential read and the connect to the fixture's address
    out = next(f for f in runsc.findings if f.rule_id == "PS002")
    assert any(e.destination == f"{host}:{port}" for e in out.evidence), out
    read = next(f for f in runsc.findings if f.rule_id == "PS001")
    assert any(e.path and e.path.endswith("/" + cred) for e in read.evidence), read
    assert any("runtime: runsc" in n and "not captured" in n for n in runsc.notes), runsc.notes
    assert not any("runtime: runsc" in n for n in runc.notes)


def test_ebpf_under_runsc_is_refused_before_any_container(tmp_path: Path) -> None:
    code, report = run_cli(tmp_path, "x.invalid", "--runtime", "runsc", "--recorder", "ebpf")
    assert code == 2 and report is None


def test_a_fork_bomb_under_runsc_never_ends_clean(tmp_path: Path) -> None:
    # gVisor's tasks are not the host's: pids.max counts the sandbox's host threads, so
    # the bomb meets gVisor's memory or the ptrace platform's limits instead. Whatever
    # stops it, the run must not pass. Capped: at most 3000 fork attempts, children exit.
    src = """
import os, time
for _ in range(3000):
    try:
        if os.fork() == 0:
            time.sleep(2)
            os._exit(0)
    except OSError:
        time.sleep(0.001)
"""
    name = Randomised().name("hostile")
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(
        tmp_path, str(whl), "--runtime", "runsc", "--window", "1", "--module-timeout", "20"
    )
    assert code in (1, 3), code
    assert report is None or report.verdict is not Verdict.CLEAN, report.verdict
