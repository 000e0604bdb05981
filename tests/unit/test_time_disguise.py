"""The time pass wakes environment-aware code (issue 11, items 5 and 6): a default pass
that probed for a sandbox triggers it, and its interpreters read no tell.

The disguise is the tool's own code (the stub ``sitecustomize``), run here in a plain
interpreter; no candidate code runs."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.agent import passes

# Real lines as the project's strace command line writes them (tests/data/strace).
SETPRIV_STATUS = (
    '52    1796122491.039171 openat(AT_FDCWD</home/dev/project>, "/proc/52/status", '
    "O_RDONLY|O_CLOEXEC) = 4</proc/52/status>\n"
)
PROBES = {
    "/.dockerenv": '61    1796122491.2 newfstatat(AT_FDCWD</home/dev/project>, "/.dockerenv", 0x7ffd, 0) '
    "= -1 ENOENT (No such file or directory)\n",
    "/proc/1/cgroup": '61    1796122491.3 openat(AT_FDCWD</home/dev/project>, "/proc/1/cgroup", '
    "O_RDONLY|O_CLOEXEC) = 3</proc/1/cgroup>\n",
    "/proc/self/status": '61    1796122491.4 openat(AT_FDCWD</home/dev/project>, "/proc/self/status", '
    "O_RDONLY|O_CLOEXEC) = 3</proc/61/status>\n",
    "PTRACE_TRACEME": "61    1796122491.5 ptrace(PTRACE_TRACEME) = -1 EPERM (Operation not permitted)\n",
}


@pytest.mark.parametrize("probe", sorted(set(PROBES) - {"/proc/self/status"}))
def test_a_probe_in_the_default_pass_triggers_the_time_pass(tmp_path: Path, probe: str) -> None:
    """On main the time pass ran only after a timeout or a lingering process: a package
    that saw the sandbox and stayed dormant ended the run unseen."""
    noise = SETPRIV_STATUS * random.randrange(1, 50)
    (tmp_path / "import.m0.strace").write_text(noise + PROBES[probe] + noise)
    (tmp_path / "startup.s0.strace").write_text(noise)
    plan = {"passes": {"time": {"when": "auto", "trigger": "time", "clock_shift": 86400 * 40}}}
    why = passes.should_run(plan, "time", tmp_path)
    assert "probed for a sandbox" in why and probe in why and "import" in why


def test_own_status_alone_is_not_enough_with_another_look_it_is(tmp_path: Path) -> None:
    """numpy reads /proc/self/status at import (measured: it cost numpy a 90 s time pass)."""
    plan = {"passes": {"time": {"when": "auto", "trigger": "time", "clock_shift": 86400 * 40}}}
    (tmp_path / "import.m0.strace").write_text(PROBES["/proc/self/status"] * 3)
    assert passes.should_run(plan, "time", tmp_path) == ""
    (tmp_path / "startup.s0.strace").write_text(PROBES["/proc/1/cgroup"])
    why = passes.should_run(plan, "time", tmp_path)
    assert "/proc/self/status in import" in why and "/proc/1/cgroup in startup" in why


def test_no_probe_no_time_pass(tmp_path: Path) -> None:
    (tmp_path / "import.m0.strace").write_text(SETPRIV_STATUS * 20)
    # an extra pass's own probes do not count (its traces carry the pass prefix)
    (tmp_path / "time.import.m0.strace").write_text(PROBES["/.dockerenv"])
    plan = {"passes": {"time": {"when": "auto", "trigger": "time", "clock_shift": 86400 * 40}}}
    assert passes.should_run(plan, "time", tmp_path) == ""


READ_TELLS = r"""
import json, os
def rd(p):
    with open(p) as fh:
        return fh.read()
fd = os.open("/proc/self/status", os.O_RDONLY)
raw = os.read(fd, 65536).decode()
os.close(fd)
nics = [n for n in os.listdir("/sys/class/net") if n != "lo"]
print(json.dumps({
    "tracer": [l for l in rd("/proc/self/status").splitlines() if l.startswith("TracerPid:")],
    "tracer_os": [l for l in raw.splitlines() if l.startswith("TracerPid:")],
    "mounts": rd("/proc/self/mounts"),
    "mountinfo": rd("/proc/self/mountinfo"),
    "cgroup1": rd("/proc/1/cgroup"),
    "cgroup": rd("/proc/self/cgroup"),
    "procs": sum(1 for d in os.listdir("/proc") if d.isdigit()),
    "macs": [rd("/sys/class/net/" + n + "/address").strip() for n in nics],
    "uptime": float(rd("/proc/uptime").split()[0]),
}))
"""


def test_the_time_pass_interpreter_reads_no_tell(tmp_path: Path) -> None:
    passes.install_stubs(tmp_path, rng=random.Random(7))
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "time")}
    p = subprocess.run(
        [sys.executable, "-c", READ_TELLS], env=env, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got["tracer"] == got["tracer_os"] == ["TracerPid:\t0"]
    for view in ("mounts", "mountinfo"):
        assert "overlay" not in got[view] and "docker" not in got[view] and " ext4 " in got[view]
    assert got["cgroup1"] == "0::/init.scope\n"
    assert got["cgroup"].startswith("0::/user.slice/user-1000.slice/session-")
    assert got["procs"] >= 160
    assert got["macs"] and all(not int(m[:2], 16) & 2 and m != "00:00:00:00:00:00" for m in got["macs"])
    assert got["uptime"] > 3 * 3600
