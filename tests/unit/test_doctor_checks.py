"""The doctor's security checks fail on what a weakened sandbox would show."""

from __future__ import annotations

from sandbox.doctor import security_checks
from sandbox.runner.interface import Limits, RunOptions

GOOD = {
    "uid": 1000,
    "CapEff": "0000000000000000",
    "CapPrm": "0000000000000000",
    "CapBnd": "0000000000000000",
    "CapAmb": "0000000000000000",
    "NoNewPrivs": "1",
    "Seccomp": "2",
    "root_writable": False,
    "etc_writable": False,
    "usr_writable": False,
    "docker_sock": False,
    "kill_init": "Operation not permitted",
    "pids_max": "512",
    "memory_limit": str(3072 << 20),
    "cpu_quota": "150000",
    "cpu_period": "100000",
    "ifaces": ["lo"],
    "connect": "[Errno 101] Network is unreachable",
}
HC = {
    "NetworkMode": "none",
    "PidsLimit": 512,
    "Memory": 3072 << 20,
    "NanoCpus": 1_500_000_000,
    "Mounts": [{"ReadOnly": True}],
}


def failed(probe: dict[str, object], hc: dict[str, object] = HC, opts: RunOptions | None = None) -> set[str]:
    return {c.name for c in security_checks(probe, hc, opts) if not c.ok}


def test_good_sandbox_passes() -> None:
    assert failed(GOOD) == set()


def test_each_weakness_fails_its_check() -> None:
    assert failed({**GOOD, "CapBnd": "00000000a80425fb"}) == {"capabilities CapBnd"}
    assert failed({**GOOD, "uid": 0}) == {"user"}
    assert failed({**GOOD, "NoNewPrivs": "0"}) == {"no-new-privileges"}
    assert failed({**GOOD, "Seccomp": "0"}) == {"seccomp"}
    assert failed({**GOOD, "root_writable": True}) == {"read-only root"}
    assert failed({**GOOD, "pids_max": "max"}) == {"pids limit (seen)"}
    assert failed({**GOOD, "docker_sock": True}) == {"docker socket"}
    assert failed(GOOD, {**HC, "NetworkMode": "bridge"}) == {"network"}
    assert failed(GOOD, {**HC, "Mounts": [{"ReadOnly": False}]}) == {"host mounts"}


def test_profile_asking_for_tighter_limits_than_seen_fails() -> None:
    tight = RunOptions(limits=Limits(memory_mb=1024, pids=128, cpus=1.0))
    assert failed(GOOD, opts=tight) == {"pids limit (seen)", "memory limit (seen)", "cpu limit (seen)"}


def test_under_runsc_limits_are_judged_from_the_engine_record() -> None:
    # gVisor shows the candidate no cgroup files (measured: pids.max, memory and cpu
    # files absent); the limits bind the whole sandbox from the host side.
    seen = {**GOOD, "pids_max": None, "memory_limit": None, "cpu_quota": None, "cpu_period": None}
    runsc = RunOptions(runtime="runsc")
    assert failed(seen, opts=runsc) == set()
    names = {c.name for c in security_checks(seen, HC, runsc)}
    assert {"pids limit (runsc)", "memory limit (runsc)", "cpu limit (runsc)"} <= names
    assert failed(seen, {**HC, "Memory": 0}, runsc) == {"memory limit (runsc)", "limits"}
    assert failed(seen, {**HC, "PidsLimit": 4096}, runsc) == {"pids limit (runsc)"}
    # under runc the same blind probe is a failure: nothing may go unseen there
    assert {"pids limit (seen)", "memory limit (seen)", "cpu limit (seen)"} <= failed(seen)
