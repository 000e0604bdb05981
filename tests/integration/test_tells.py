"""No tells (issue 11 item 6): PID 1 looks like a workstation's init and still does an
init's job; ``doctor --tells`` lists what a candidate can still read."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from sandbox.agent.init import DECOYS, decoy_names
from sandbox.oci.wrapper import STATE_DIR
from sandbox.runner.docker_backend import DockerSandbox, realistic_hostname
from sandbox.runner.interface import RunOptions
from sandbox.runner.runtime import WRAPPED
from tests.conftest import recorder

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")


def _exec(container: Any, cmd: str, user: str = "1000") -> str:
    code, out = container.exec_run(["sh", "-c", cmd], user=user)
    assert code == 0, out
    return str(out.decode("utf-8", "replace"))


@pytest.mark.serial  # times the deadline stop (20-60 s)
def test_pid1_is_a_disguised_init_that_reaps_and_stops_at_its_deadline(
    docker_client: Any, sandbox_image: Any, tmp_path: Path
) -> None:
    """On main PID 1 was `docker-init -- sleep N`; now comm systemd, cmdline /sbin/init,
    and it still reaps orphans and stops the container at the deadline."""
    tmp_path.chmod(0o755)
    box = DockerSandbox(docker_client, sandbox_image)
    # a deadline 30 s away (labelled too, so no concurrent sweep removes it earlier)
    container = box._create(
        "t" + str(int(time.time())), tmp_path, time.time() + 30, RunOptions(), realistic_hostname()
    )
    try:
        container.start()
        started = time.monotonic()
        for _ in range(50):  # the interpreter starting (setup takes longer than this)
            if _exec(container, "cat /proc/1/comm") == "systemd\n":
                break
            time.sleep(0.1)
        assert _exec(container, "cat /proc/1/comm") == "systemd\n"
        assert _exec(container, "cat /proc/1/cmdline | od -An -c | tr -s ' '").split() == [
            *"/sbin/init",
            "\\0",
        ]
        names = _exec(container, "cat /proc/[0-9]*/comm")
        assert "sleep" not in names and "docker-init" not in names, names
        # decoy daemons: a process count finds a machine; the candidate cannot signal them
        decoys = {decoy_names(d)[0].decode() for d in DECOYS}
        listing = "for p in /proc/[0-9]*; do echo $(basename $p) $(cat $p/comm 2>/dev/null); done"
        rows = [ln.split(" ", 1) for ln in _exec(container, listing).splitlines() if " " in ln]
        found = [pid for pid, comm in rows if comm in decoys]
        assert len(found) >= 30, rows  # 30-34 by design
        code, out = container.exec_run(["sh", "-c", f"kill -0 {found[0]}"], user="1000")
        assert code != 0 and b"not permitted" in out, out
        # an orphan (its parent exits at once) is re-parented to PID 1 and must be reaped
        _exec(container, "(sleep 1 &) ; true", user="root")
        time.sleep(3)
        states = _exec(
            container, "for s in /proc/[0-9]*/stat; do cut -d' ' -f3 $s; done 2>/dev/null", user="root"
        )
        assert "Z" not in states.split(), states
        # the deadline: PID 1 exits when it passes, and the container stops with it
        status = "running"
        while status == "running" and time.monotonic() - started < 90:
            time.sleep(1)
            try:
                container.reload()
                status = container.status
            except docker.errors.NotFound:
                status = "removed"
        took = time.monotonic() - started
        assert status != "running" and 20 < took < 60, (status, took)
    finally:
        box._remove(container)


def _full(controllers: str) -> bool:
    return bool({"name=systemd", "", "memory", "pids"} & set(controllers.split(",")))


def _slice(controllers: str) -> bool:
    return bool({"cpu", "cpuacct", "blkio", "devices"} & set(controllers.split(",")))


def test_the_runc_wrapper_places_cgroups_and_drops_the_engine_s_files(
    docker_client: Any, sandbox_image: Any, tmp_path: Path
) -> None:
    """Under runc, /proc/self/cgroup and /proc/1/cgroup read '/' (a cgroup namespace's
    root) and mountinfo showed the engine's /etc/hosts, hostname and resolv.conf binds
    (their sources under /var/lib/docker/containers). The wrapper (sandbox.oci.wrapper,
    registered by `doctor --provision`) places PID 1 in init.scope and every exec in a
    login session's scope, and writes those files into the root instead. Nothing of
    its own outlives the container."""
    tmp_path.chmod(0o755)
    box = DockerSandbox(docker_client, sandbox_image)
    host = realistic_hostname()
    container = box._create("w" + str(int(time.time())), tmp_path, time.time() + 120, RunOptions(), host)
    try:
        container.start()
        container.reload()
        assert container.attrs["HostConfig"]["Runtime"] == WRAPPED
        # as systemd places a login session, init and a service in each hierarchy
        session = r"/user\.slice/user-1000\.slice/session-\d\.scope"
        # read by a process the shell forks after the wrapper's move (on a v1 host the
        # unified hierarchy's comes a moment after the exec'd process starts: the agent
        # waits for it, sandbox.agent.detach.await_placement)
        for line in _exec(container, "sleep 0.5; cat /proc/self/cgroup").splitlines():
            ctl, path = line.split(":", 2)[1:]
            want = session if _full(ctl) else "/user.slice" if _slice(ctl) else "/"
            assert re.fullmatch(want, path), line
        for line in _exec(container, "cat /proc/1/cgroup").splitlines():
            ctl, path = line.split(":", 2)[1:]
            assert path == ("/init.scope" if _full(ctl) or _slice(ctl) else "/"), line
        # PID 1's decoy daemons leave init.scope for a service each (moved after start)
        count = (
            "for p in /proc/[0-9]*; do grep -qs ':/system.slice/[^/]*[.]service$' $p/cgroup && echo $p; done"
        )
        services: list[str] = []
        for _ in range(50):
            services = _exec(container, count + "; true").split()
            if len(services) >= 30:
                break
            time.sleep(0.1)
        assert len(services) >= 30, services

        mounts = _exec(container, "cat /proc/self/mountinfo")
        assert not re.search(r" /etc/(hosts|hostname|resolv\.conf) ", mounts), mounts
        assert "/var/lib/docker/containers" not in mounts, mounts
        assert _exec(container, "cat /etc/hostname").strip() == host
        assert re.search(rf"^127\.0\.1\.1\s+{re.escape(host)}$", _exec(container, "cat /etc/hosts"), re.M)
        # the candidate's uid cannot write them (they were root-owned binds before)
        code, _ = container.exec_run(["sh", "-c", "echo x >> /etc/hosts"], user="1000")
        assert code != 0
    finally:
        box._remove(container)
    assert not Path(STATE_DIR, container.id).exists()
    left = [p for p in Path("/sys/fs/cgroup").glob(f"**/*{container.id}*") if p.is_dir()]
    assert not left, left


def test_doctor_tells_lists_what_remains() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "sandbox", "doctor", "--tells"], capture_output=True, text=True, timeout=300
    )
    out = " ".join(p.stderr.split())
    for fixed in (
        "ok PID 1 name",
        "ok PID 1 command line",
        "ok container marker files",
        "ok hostname",
        "ok environment",
        "ok /proc/self/cgroup",  # the runc wrapper's scopes
        "ok /proc/1/cgroup",
        "ok processes",  # the agent runs detached: PID 1's child, no parent 0 in sight
        "ok /proc/self/mounts",  # a btrfs snapshot root (sandbox.oci.roots), no engine binds
        "ok /proc/self/mountinfo",
    ):
        assert fixed in out, (fixed, out)
    # exactly what the README ("What gives the sandbox away", the table under "Runtimes")
    # says is still there under runc and this session's recorder: exit 1 lists them
    assert f"with the {recorder()} recorder" in out, out
    remaining: set[str] = set()
    if recorder() == "strace":
        remaining.add("TracerPid")  # the eBPF recorder runs on the host: TracerPid 0
        remaining.add("command lines")  # strace's own, in front of every step
    else:
        assert "ok TracerPid: TracerPid 0" in out, out
        # the tool's files are named like a developer's (agent/protocol.py TOOL_ROOT):
        # neither the agent's interpreter line nor the candidate's argv names the tool
        assert "ok command lines" in out, out
    tells = set(re.findall(r"TELL ([^:]+):", out))
    # the host's own figures show through (a fresh CI machine's uptime, a small VM)
    assert remaining <= tells and tells - remaining <= {"uptime", "CPU count", "memory"}, out
    assert p.returncode == (1 if tells else 0), out


def test_a_payload_quiet_while_dev_shm_holds_libfaketime_files_is_caught(tmp_path: Path) -> None:
    """Session 25 made libfaketime's shared files at setup, under fixed names
    (``dt_ft_shm``, ``sem.dt_ft_sem``): every pass, the default one too, could see them
    in ``/dev/shm``, and a payload that stays quiet when it does was clean. Now they are
    made when the first pass that preloads libfaketime starts, under the run's secret
    names that look like a desktop's (``pulse-shm-…``, ``sem.mp-…``)."""
    import textwrap

    from sandbox.models import Verdict
    from tests.conftest import run_cli
    from tests.fixtures.builders import Randomised, build_wheel, exfil_source

    r = Randomised()
    name = r.name("shmwary")
    wary = textwrap.dedent(
        """\
        import os, re
        def _quiet():
            try:
                names = os.listdir("/dev/shm")
            except OSError:
                return True
            return any(re.search(r"faketime|dt_ft|ft_s", n) for n in names)
        if not _quiet():
        """
    )
    src = wary + textwrap.indent(exfil_source(".aws/credentials", r.address(), r.port()), "    ")
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    assert report.verdict is Verdict.MALICIOUS and code == 1, (report.verdict_reason, report.notes)
