"""PS008 tells escape primitives from reading harmless kernel values (issue 12)."""

from __future__ import annotations

import pytest

from sandbox.judge.rules import evaluate
from sandbox.judge.verdict import verdict_for
from sandbox.models import Address, Event, EventKind, Finding, Severity, Verdict
from tests.unit.test_rules import ev, obs, proc

READ = EventKind.FILE_READ
WRITE = EventKind.FILE_WRITE


def ps008(*events: object) -> list[Finding]:
    return [f for f in evaluate(obs(list(events))) if f.rule_id == "PS008"]  # type: ignore[arg-type]


# Harmless kernel values that benign packages read (filelock reads boot_id for stale
# locks; allocators read overcommit and THP settings; cgroup limits size thread pools).
HARMLESS_READS = [
    "/proc/sys/kernel/random/boot_id",
    "/proc/sys/kernel/osrelease",
    "/proc/sys/kernel/hostname",
    "/proc/sys/kernel/pid_max",
    "/proc/sys/kernel/random/uuid",
    "/proc/sys/vm/overcommit_memory",
    "/proc/sys/fs/file-max",
    "/proc/sys/net/core/somaxconn",
    "/sys/kernel/mm/transparent_hugepage/enabled",
    "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size",
    "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    "/sys/devices/system/cpu/online",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/self/status",
    "/proc/self/environ",
]


@pytest.mark.parametrize("path", HARMLESS_READS)
@pytest.mark.parametrize("kind,syscall", [(READ, "openat"), (EventKind.FILE_STAT, "newfstatat")])
def test_reading_a_harmless_kernel_value_is_no_finding(path: str, kind: EventKind, syscall: str) -> None:
    assert ps008(ev(kind, syscall, path=path)) == []


ESCAPE_WRITES = [
    "/proc/sys/kernel/core_pattern",
    "/proc/sys/kernel/modprobe",
    "/proc/sys/vm/overcommit_memory",
    "/proc/sys/kernel/random/boot_id",  # writing even a "harmless" value is tampering with the kernel
    "/proc/sysrq-trigger",
    "/sys/kernel/uevent_helper",
    "/sys/fs/cgroup/memory/release_agent",
    "/sys/fs/cgroup/rdma/notify_on_release",
    "/sys/class/net/eth0/mtu",
]


@pytest.mark.parametrize("path", ESCAPE_WRITES)
@pytest.mark.parametrize("errno", [None, "EACCES", "EROFS"])
def test_writing_kernel_or_cgroup_settings_is_high(path: str, errno: str | None) -> None:
    """An attempt counts whether or not the kernel refused it."""
    fs = ps008(ev(WRITE, "openat", path=path, flags="O_WRONLY|O_TRUNC", errno=errno))
    assert [f.severity for f in fs] == [Severity.HIGH], fs
    assert fs[0].evidence[0].path == path
    assert verdict_for(fs, [])[0] is Verdict.MALICIOUS


@pytest.mark.parametrize(
    "kind,syscall",
    [
        (EventKind.FILE_RENAME, "rename"),
        (EventKind.FILE_LINK, "symlink"),
        (EventKind.FILE_CHMOD, "chmod"),
        (EventKind.FILE_DELETE, "unlink"),
        (EventKind.DIR_CREATE, "mkdir"),
    ],
)
def test_other_writes_under_sys_are_high(kind: EventKind, syscall: str) -> None:
    fs = ps008(ev(kind, syscall, path="/sys/fs/cgroup/x/release_agent", errno="EROFS"))
    assert [f.severity for f in fs] == [Severity.HIGH]


def test_rename_into_proc_sys_is_caught_by_its_target() -> None:
    fs = ps008(ev(EventKind.FILE_RENAME, "rename", path="/tmp/x", path2="/proc/sys/kernel/core_pattern"))
    assert [f.severity for f in fs] == [Severity.HIGH]


PRIMITIVES_ANY_ACCESS = [
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/proc/sysrq-trigger",
    "/proc/kcore",
    "/dev/mem",
    "/dev/kmem",
    "/dev/port",
    "/dev/sda",
    "/dev/nvme0n1",
    "/proc/1/mem",
    "/proc/1/root/etc/shadow",
    "/var/lib/docker/overlay2",
]


@pytest.mark.parametrize("path", PRIMITIVES_ANY_ACCESS)
def test_escape_primitives_are_high_even_when_only_read(path: str) -> None:
    fs = ps008(ev(READ, "openat", path=path, errno="ENOENT"))
    assert [f.severity for f in fs] == [Severity.HIGH], path


def test_engine_socket_connect_is_high() -> None:
    sock = Address(family="unix", path="/run/containerd/containerd.sock")
    fs = ps008(ev(EventKind.CONNECT, "connect", address=sock, errno="ENOENT"))
    assert [f.severity for f in fs] == [Severity.HIGH]


@pytest.mark.parametrize(
    "path",
    ["/proc/sys/kernel/core_pattern", "/sys/fs/cgroup/memory/release_agent", "/sys/kernel/security/lsm"],
)
def test_reading_an_escape_knob_is_low_reconnaissance(path: str) -> None:
    fs = ps008(ev(READ, "openat", path=path))
    assert [f.severity for f in fs] == [Severity.LOW]
    assert "read escape knob" in fs[0].message
    assert verdict_for(fs, [])[0] is Verdict.CLEAN


def test_a_read_next_to_a_write_keeps_both_findings() -> None:
    fs = ps008(
        ev(READ, "openat", path="/proc/sys/kernel/core_pattern", seq=1),
        ev(WRITE, "openat", path="/proc/sys/kernel/core_pattern", seq=2, errno="EROFS"),
    )
    assert sorted(f.severity.value for f in fs) == ["high", "low"]


def test_another_processs_environ_read_is_high_a_refused_one_low_its_own_none() -> None:
    """Reading another process's environment is an attempt; a refused open (EACCES on a
    root process), like the readlink of its root, is what process listers do (Rust's
    sysinfo sweeps every /proc/N: a top-300 wheel was called malicious for it)."""
    own = obs([ev(READ, "openat", path="/proc/10/environ")], [proc(10, ["python"])])
    assert not [f for f in evaluate(own) if f.rule_id == "PS008"]
    read = obs([ev(READ, "openat", path="/proc/7/environ")], [proc(10, ["python"])])
    assert [f.severity for f in evaluate(read) if f.rule_id == "PS008"] == [Severity.HIGH]
    for e in (
        ev(READ, "openat", path="/proc/7/environ", errno="EACCES"),
        ev(READ, "openat", path="/proc/1/environ", errno="EACCES"),
        ev(READ, "readlink", path="/proc/1/root", errno="EACCES"),
        ev(EventKind.FILE_STAT, "newfstatat", path="/proc/7/root"),
    ):
        fs = [f for f in evaluate(obs([e], [proc(10, ["python"])])) if f.rule_id == "PS008"]
        assert [f.severity for f in fs] == [Severity.LOW], e.path
    through = obs(
        [ev(READ, "openat", path="/proc/1/root/etc/shadow", errno="EACCES")], [proc(10, ["python"])]
    )
    assert [f.severity for f in evaluate(through) if f.rule_id == "PS008"] == [Severity.HIGH]


@pytest.mark.parametrize("syscall", ["mount", "unshare", "setns", "init_module", "bpf", "pivot_root"])
def test_escape_syscalls_stay_high(syscall: str) -> None:
    fs = ps008(ev(EventKind.PRIVILEGED, syscall, errno="EPERM"))
    assert [f.severity for f in fs] == [Severity.HIGH]


def _probe(path: str, pid: int = 10, seq: int = 0) -> Event:
    return ev(READ, "openat", path=path, pid=pid, seq=seq)


def _ps030(*events: Event) -> list[Severity]:
    return [f.severity for f in evaluate(obs(list(events), [proc(10, ["python"])])) if f.rule_id == "PS030"]


def test_own_status_and_cgroup_or_a_process_sweep_stay_low() -> None:
    """A Rust/Go runtime reads its own status (memory) and cgroup (CPU quota); sysinfo
    sweeps /proc/N/{status,cmdline,cgroup}: without a pointed look, LOW."""
    own = (_probe("/proc/self/status", seq=1), _probe("/proc/10/cgroup", seq=2))
    assert _ps030(*own) == [Severity.LOW]
    sweep = [
        _probe(f"/proc/{n}/{f}", seq=i)
        for i, (n, f) in enumerate((n, f) for n in (1, 14, 19, 70) for f in ("status", "cmdline"))
    ]
    assert _ps030(*own, *sweep) == [Severity.LOW]


def test_two_pointed_looks_are_medium_the_is_docker_idiom_is_not() -> None:
    status = _probe("/proc/self/status", seq=1)
    # telemetry's "am I in Docker": /.dockerenv and its own cgroup (a top-300 SDK)
    assert _ps030(_probe("/.dockerenv", seq=1), _probe("/proc/10/cgroup", seq=2), status) == [Severity.LOW]
    # "am I in a container" is one look, whichever cgroup it reads: a top-400 ML runtime
    # reads /.dockerenv, /run/.containerenv, PID 1's cgroup and its own at import
    container = ("/.dockerenv", "/run/.containerenv", "/proc/1/cgroup", "/proc/10/cgroup")
    assert _ps030(status, *(_probe(p, seq=i + 2) for i, p in enumerate(container))) == [Severity.LOW]
    # pointed kinds: the container idiom, PID 1's own files (its name: which init), one
    # other process: any two are environment-aware code
    pointed = ("/.dockerenv", "/proc/1/cmdline", "/proc/7/status")
    for a in pointed:
        for b in pointed:
            if a < b:
                assert _ps030(status, _probe(a, seq=2), _probe(b, seq=3)) == [Severity.MEDIUM], (a, b)
    assert _ps030(_probe("/proc/1/cgroup", seq=1), _probe("/proc/1/sched", seq=2)) == [Severity.MEDIUM]
    # PID 1's own files alone are one kind: LOW
    assert _ps030(_probe("/proc/1/comm", seq=1), _probe("/proc/1/cmdline", seq=2)) == [Severity.LOW]


def test_reading_its_own_memory_is_no_escape_another_process_is() -> None:
    """An APM library's profiler reads its own memory with process_vm_readv (a safe
    memcpy); the same call at a process outside the candidate's (the harness's) is an
    attempt, and so is one whose target the recorder could not read."""

    def vm(target: int | None) -> list[Severity]:
        e = ev(EventKind.PTRACE, "process_vm_readv", pid=10, target=target)
        return [f.severity for f in evaluate(obs([e], [proc(10, ["python"])])) if f.rule_id == "PS008"]

    assert vm(10) == []
    assert vm(7) == [Severity.HIGH]
    assert vm(None) == [Severity.HIGH]
