"""The runtime choice (issue 13 item 5): runc or runsc (gVisor) behind the Sandbox seam.

Pure parts only: registering runsc in daemon.json (merged, idempotent, never
clobbering), the recorder a runtime allows, the strace flags under gVisor, the
profile key, and the PID 1 disguise where gVisor hides the argument area. The
real engine runs in tests/integration/test_runsc.py.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sandbox import cli
from sandbox.errors import EngineError, InputError, ProfileError
from sandbox.fetch import StagedSet
from sandbox.judge.profiles import load_profile
from sandbox.models import Artifact, ArtifactKind, ArtifactRole
from sandbox.runner.interface import RunOptions
from sandbox.runner.plan import build_plan, run_options, seccomp_bpf, sinkhole_plan
from sandbox.runner.runtime import merge_runsc, registered, require, write_daemon_json

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- daemon.json


def test_merge_keeps_every_other_key_and_runtime() -> None:
    existing = {
        "log-driver": "json-file",
        "runtimes": {"kata": {"path": "/usr/bin/kata-runtime"}},
        "default-runtime": "runc",
    }
    merged = merge_runsc(existing)
    assert merged["log-driver"] == "json-file" and merged["default-runtime"] == "runc"
    assert merged["runtimes"]["kata"] == {"path": "/usr/bin/kata-runtime"}
    assert merged["runtimes"]["runsc"] == {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}
    assert existing["runtimes"] == {"kata": {"path": "/usr/bin/kata-runtime"}}  # input untouched
    assert merge_runsc(merged) == merged  # idempotent


def test_merge_keeps_an_existing_runsc_entry_and_adds_only_the_network_flag() -> None:
    mine = {"runtimes": {"runsc": {"path": "/opt/gvisor/runsc", "runtimeArgs": ["--platform=ptrace"]}}}
    entry = merge_runsc(mine)["runtimes"]["runsc"]
    assert entry == {"path": "/opt/gvisor/runsc", "runtimeArgs": ["--platform=ptrace", "--network=none"]}
    chosen = {"runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=sandbox"]}}}
    # an explicit network choice is the operator's: not doubled, not overridden
    assert merge_runsc(chosen)["runtimes"]["runsc"]["runtimeArgs"] == ["--network=sandbox"]


def test_write_daemon_json_creates_merges_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "docker" / "daemon.json"
    assert write_daemon_json(path) is True
    assert json.loads(path.read_text())["runtimes"]["runsc"]["path"] == "/usr/bin/runsc"
    assert write_daemon_json(path) is False  # nothing to change: no rewrite, no reload needed
    path.write_text(json.dumps({"data-root": "/srv/docker", "runtimes": {}}))
    assert write_daemon_json(path) is True
    doc = json.loads(path.read_text())
    assert doc["data-root"] == "/srv/docker" and "runsc" in doc["runtimes"]
    assert oct(path.stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_a_daemon_json_we_cannot_read_is_left_alone(tmp_path: Path, text: str) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(text)
    with pytest.raises(EngineError, match="not touching it"):
        write_daemon_json(path)
    assert path.read_text() == text


class _Engine:
    """The engine's ``info()`` answer (the seam runtime.py reads)."""

    def __init__(self, runtimes: dict[str, Any] | None = None, fail: bool = False) -> None:
        self.runtimes = runtimes or {}
        self.fail = fail

    def info(self) -> dict[str, Any]:
        if self.fail:
            raise ConnectionError("engine gone")
        return {"Runtimes": self.runtimes}


def test_require_fails_closed_before_any_container_when_runsc_is_missing() -> None:
    require(_Engine(), "runc")  # Docker's default is always there
    require(_Engine({"runc": {}, "runsc": {"path": "/usr/bin/runsc"}}), "runsc")
    with pytest.raises(EngineError, match="no runsc runtime") as exc:
        require(_Engine({"runc": {}}), "runsc")
    assert "doctor --provision" in exc.value.diagnostics()
    assert not registered(_Engine(fail=True), "runsc")


# ---------------------------------------------------------------- recorder and flags


def test_ebpf_under_runsc_is_a_usage_error_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["vet", "x.invalid", "--runtime", "runsc", "--recorder", "ebpf"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "cannot see inside gVisor" in err
    with pytest.raises(InputError):
        cli._recorder("ebpf", "runsc")


def test_auto_under_runsc_records_with_strace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PKGSANDBOX_RECORDER", "ebpf")  # a CI job's default: runsc still uses strace
    assert cli._recorder("auto", "runsc") == "strace"
    assert cli._recorder(None, "runsc") == "strace"
    assert cli._recorder("strace", "runsc") == "strace"
    monkeypatch.setenv("PKGSANDBOX_RECORDER", "strace")
    assert cli._recorder(None, "runc") == "strace"  # the environment's choice under runc


def test_strace_under_gvisor_drops_seccomp_bpf_and_keeps_everything_else() -> None:
    assert seccomp_bpf("runc") and not seccomp_bpf("runsc")
    art = Artifact(
        name="pkg",
        version="1.0",
        filename="pkg-1.0-py3-none-any.whl",
        sha256="0" * 64,
        kind=ArtifactKind.WHEEL,
        role=ArtifactRole.CANDIDATE,
        size=1,
        source="pip",
    )
    staged = StagedSet(
        directory="/stage", artifacts=(art,), candidate=art, install_target=art.filename, requested="pkg"
    )
    runc = build_plan(staged, RunOptions(runtime="runc"))["strace"]
    runsc = build_plan(staged, RunOptions(runtime="runsc"))["strace"]
    assert "--seccomp-bpf" in runc and "--seccomp-bpf" not in runsc
    assert [a for a in runc if a != "--seccomp-bpf"] == runsc  # same syscalls, same injection


def test_profile_key_and_override() -> None:
    default = load_profile("default")
    assert default.sandbox.runtime == "runc"
    assert run_options(default).runtime == "runc"
    assert run_options(default, runtime="runsc").runtime == "runsc"


def test_profile_with_an_unknown_runtime_is_a_profile_error(tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text('name = "p"\nextends = "default"\n[sandbox]\nruntime = "kata"\n')
    with pytest.raises(ProfileError, match=r"sandbox\.runtime"):
        load_profile(str(bad))
    good = tmp_path / "g.toml"
    good.write_text('name = "g"\nextends = "default"\n[sandbox]\nruntime = "runsc"\n')
    assert run_options(load_profile(str(good))).runtime == "runsc"


# ---------------------------------------------------------------- tells removed


def test_sinkhole_interfaces_get_vendor_macs_not_locally_administered_ones() -> None:
    from sandbox.agent.sinkhole import NetConfig, link_commands

    for seed in range(20):
        net = sinkhole_plan(True, 64, random.Random(seed))["net"]
        assert len(net["macs"]) == 2
        for mac in net["macs"]:
            first = int(mac[:2], 16)
            assert not first & 0x02 and not first & 0x01, mac  # universal, unicast
    conf = NetConfig.from_plan({"sinkhole": {"net": net}})
    cmds = link_commands(conf, v6=False)
    assert f"link add eth0 address {net['macs'][0]} type veth peer name eth1 address {net['macs'][1]}" in cmds
    # anything else from the plan is ignored (the kernel's MACs), never passed to `ip`
    odd = NetConfig.from_plan({"sinkhole": {"net": {"macs": ["aa:bb", "x; reboot", "11:22:33:44:55:66"]}}})
    assert odd.macs == () and "link add eth0 type veth peer name eth1\n" in link_commands(odd, False)


def test_init_finds_its_argument_area_where_stat_does_not_say() -> None:
    # gVisor prints 0 for arg_start/arg_end in /proc/self/stat; the fallback must find
    # the same area Linux reports (checked in a fresh interpreter: environ untouched).
    code = (
        f"import ctypes, sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from sandbox.agent.init import _argv_area\n"
        "f = open('/proc/self/stat').read().rsplit(')', 1)[1].split()\n"
        "print(_argv_area(ctypes.CDLL(None)) == (int(f[45]), int(f[46])))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, "a", "b"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stderr


def test_register_reloads_dockerd_with_sighup_never_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal

    from sandbox.runner import runtime

    engine = _Engine({"runc": {}})
    sent: list[tuple[int, int]] = []

    def kill(pid: int, sig: int) -> None:  # the seam: dockerd itself is shared, never signalled here
        sent.append((pid, sig))
        engine.runtimes["runsc"] = {"path": "/usr/bin/runsc"}  # what a reload does

    monkeypatch.setattr(runtime.os, "kill", kill)
    monkeypatch.setattr(runtime, "dockerd_pid", lambda: 4242)
    config = tmp_path / "daemon.json"
    config.write_text('{"log-level": "warn"}')
    logs: list[str] = []
    runtime.register_runsc(engine, logs.append, config=config)
    assert sent == [(4242, signal.SIGHUP)]
    assert json.loads(config.read_text())["log-level"] == "warn"
    runtime.register_runsc(engine, logs.append, config=config)  # again: nothing to do
    assert sent == [(4242, signal.SIGHUP)] and "already registered" in logs[-1]


def test_register_without_a_known_dockerd_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox.runner import runtime

    monkeypatch.setattr(runtime, "dockerd_pid", lambda: None)
    with pytest.raises(EngineError, match="pid is unknown") as exc:
        runtime.register_runsc(_Engine(), lambda m: None, config=tmp_path / "daemon.json")
    assert "SIGHUP" in exc.value.diagnostics()
    assert "runsc" in json.loads((tmp_path / "daemon.json").read_text())["runtimes"]


# ---------------------------------------------------------------- a dead sandbox never hangs a run


class _Inspect:
    """The engine's container state (the seam the exec watch reads)."""

    def __init__(self, running: bool) -> None:
        self.running = running

    def inspect_container(self, cid: str) -> dict[str, Any]:
        return {"State": {"Running": self.running}}


def _silent_exec() -> tuple[Any, Any]:
    import socket

    ours, engine = socket.socketpair()  # the engine side never writes nor closes: as measured
    return ours, engine


@pytest.mark.parametrize(("running", "deadline", "why"), [(False, 60.0, "stopped"), (True, 0.0, "timeout")])
def test_exec_watch_ends_a_stream_the_engine_never_closes(running: bool, deadline: float, why: str) -> None:
    import time

    from docker.utils.socket import demux_adaptor, frames_iter

    from sandbox.runner.docker_backend import _ExecWatch

    ours, engine = _silent_exec()
    try:
        stream = (demux_adaptor(*f) for f in frames_iter(ours, tty=False))
        watch = _ExecWatch(_Inspect(running), "c", ours, time.monotonic() + deadline)
        t0 = time.monotonic()
        assert list(watch.run(stream)) == []
        assert watch.why == why and time.monotonic() - t0 < 10
    finally:
        engine.close()


def test_exec_watch_ends_an_attach_stream_once_the_detached_command_finished() -> None:
    # the attach stream never ends by itself: the reader says when its command did
    import time

    from docker.utils.socket import demux_adaptor, frames_iter

    from sandbox.runner.docker_backend import _ExecWatch

    ours, engine = _silent_exec()
    done = [False]
    try:
        stream = (demux_adaptor(*f) for f in frames_iter(ours, tty=False))
        watch = _ExecWatch(_Inspect(True), "c", ours, time.monotonic() + 60, ended=lambda: done[0])
        t0 = time.monotonic()
        import threading

        threading.Timer(0.7, lambda: done.__setitem__(0, True)).start()
        assert list(watch.run(stream)) == []
        took = time.monotonic() - t0
        assert watch.why == "" and 0.6 < took < 3, took
    finally:
        engine.close()
