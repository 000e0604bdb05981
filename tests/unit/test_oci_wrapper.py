"""The runc wrapper's pure parts (sandbox.oci.wrapper): runc's argv, the bundle
rewrite, and finding a process's cgroup directories from real ``/proc`` text (this
machine's cgroup v1 hierarchies, captured 2026-12-05, and a v2-only host)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sandbox.oci import wrapper
from sandbox.oci.wrapper import (
    cgroup_dirs,
    drop_network_binds,
    option,
    session_scope,
    split_argv,
    unit_path,
    write_root_files,
)

# /proc/self/mountinfo (cgroup lines) and /proc/<pid>/cgroup of a container's first
# process, as the host sees them (captured on the project's machine)
V1_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
CID = "d8fdb4f61761f6ffc6b739e47602617fb1e29fe77567bbe732eea1299d65a4b1"
V1_CGROUP = "".join(
    f"{n}:{c}:/docker/{CID}\n"
    for n, c in (
        (9, "name=systemd"),
        (8, "pids"),
        (7, "blkio"),
        (6, "freezer"),
        (5, "devices"),
        (4, "memory"),
        (3, "cpuset"),
        (2, "cpuacct"),
        (1, "cpu"),
        (0, ""),
    )
)


def test_argv_split_at_the_command_after_runc_s_global_options() -> None:
    argv = [
        "--root",
        "/var/run/docker/runtime-runc/moby",
        "--log",
        "/run/containerd/x/log.json",
        "--log-format",
        "json",
        "--systemd-cgroup",
        "create",
        "--bundle",
        "/run/b",
        "--pid-file",
        "/run/b/init.pid",
        CID,
    ]
    glob, command, args = split_argv(argv)
    assert command == "create" and glob == argv[:7] and args[-1] == CID
    assert option(args, "--bundle", "-b") == "/run/b" and option(["--bundle=/x", CID], "--bundle") == "/x"
    assert option(args, "--console-socket") is None
    assert split_argv(["--debug"]) == (["--debug"], "", [])


def test_engine_network_files_leave_the_mounts_and_nothing_else_does() -> None:
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/etc/resolv.conf",
            "type": "bind",
            "source": f"/var/lib/docker/containers/{CID}/resolv.conf",
        },
        {
            "destination": "/etc/hostname",
            "type": "bind",
            "source": f"/var/lib/docker/containers/{CID}/hostname",
        },
        {"destination": "/etc/hosts", "type": "bind", "source": f"/var/lib/docker/containers/{CID}/hosts"},
        {"destination": "/etc/hosts.d", "type": "bind", "source": "/somewhere"},
        {"destination": "/stage", "type": "bind", "source": "/tmp/tmpab12cd34/stage"},
    ]
    config: dict[str, object] = {"mounts": list(mounts)}
    files = drop_network_binds(config)
    assert files == {m["destination"]: m["source"] for m in mounts[1:4]}
    assert config["mounts"] == [mounts[0], mounts[4], mounts[5]]
    assert drop_network_binds({"mounts": "junk"}) == {} and drop_network_binds({}) == {}


def test_every_hierarchy_s_directory_is_found_v1_and_unified() -> None:
    dirs = cgroup_dirs(CID, V1_CGROUP, V1_MOUNTINFO)
    names = (
        "systemd",
        "pids",
        "blkio",
        "freezer",
        "devices",
        "memory",
        "cpuset",
        "cpuacct",
        "cpu",
        "unified",
    )
    assert [d for _, d in dirs] == [f"/sys/fs/cgroup/{n}/docker/{CID}" for n in names]
    assert dirs[0][0] == {"name=systemd"} and dirs[-1][0] == {""}
    # a joined hierarchy ("cpu,cpuacct" on most distributions) is one mount
    joined = "33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
    assert cgroup_dirs("x", "2:cpu,cpuacct:/docker/x\n", joined) == [
        (frozenset({"cpu", "cpuacct"}), "/sys/fs/cgroup/cpu,cpuacct/docker/x")
    ]
    # a cgroup namespace's view of part of a hierarchy (root field not "/") is not a root
    inner = "50 31 0:30 /docker/x /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
    assert cgroup_dirs("x", "1:cpu:/docker/x\n", inner) == []


def test_a_hierarchy_runc_did_not_place_the_container_in_is_never_touched() -> None:
    # hostile read (s28): a hybrid host's unified line can name containerd's service;
    # the wrapper made cgroups there and moved PID 1 out of the container's cgroup
    mi = (
        "30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n"
        "31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    )
    cg = f"5:memory:/docker/{CID}\n0::/system.slice/containerd.service\n"
    assert cgroup_dirs(CID, cg, mi) == [(frozenset({"memory"}), f"/sys/fs/cgroup/memory/docker/{CID}")]


def test_a_v2_only_host() -> None:
    mi = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
    cg = f"0::/system.slice/docker-{CID}.scope\n"
    assert cgroup_dirs(CID, cg, mi) == [(frozenset({""}), f"/sys/fs/cgroup/system.slice/docker-{CID}.scope")]


def test_units_show_where_systemd_puts_them_per_controller() -> None:
    session = session_scope(CID)
    assert unit_path(frozenset({"memory"}), session) == session
    assert unit_path(frozenset({"name=systemd"}), session) == session
    assert unit_path(frozenset({""}), session) == session
    assert unit_path(frozenset({"cpu", "cpuacct"}), session) == "user.slice"
    assert unit_path(frozenset({"cpuset"}), session) is None  # the root, as systemd leaves it
    assert unit_path(frozenset({"freezer"}), "init.scope") is None
    svc = "system.slice/cron.service"
    assert unit_path(frozenset({"devices"}), svc, service=True) == svc


def test_engine_files_are_never_written_through_a_link(tmp_path: Path) -> None:
    # hostile read (s28): O_NOFOLLOW held for the last component only; an image whose
    # /etc is a link had the host file it names rewritten
    root, outside, src = tmp_path / "root", tmp_path / "outside", tmp_path / "hosts"
    root.mkdir()
    outside.mkdir()
    src.write_text("127.0.0.1 localhost\n")
    (root / "etc").symlink_to(outside)
    with pytest.raises(OSError):
        write_root_files(str(root), {"/etc/hosts": str(src)})
    assert not (outside / "hosts").exists()
    (root / "etc").unlink()
    (root / "etc").mkdir()
    write_root_files(str(root), {"/etc/hosts": str(src)})
    assert (root / "etc/hosts").read_text() == "127.0.0.1 localhost\n"


def _front(tmp_path: Path, argv: list[str], state: str | None) -> list[str]:
    """The shell front's argv to runc (a fake that prints it), given a state file."""
    fake = tmp_path / "runc"
    # prints its argv; writes a pid file as runc does (no newline)
    fake.write_text(
        '#!/bin/sh\nfor a; do printf "%s\\n" "$a"; [ "$p" = --pid-file ] && printf 4242 >"$a"; p=$a; done\n'
    )
    fake.chmod(0o755)
    (tmp_path / "state").mkdir(exist_ok=True)
    if state is not None:
        (tmp_path / "state" / CID).write_text(state)
    front = Path(wrapper.__file__).with_name("runc-wrapper.sh")
    env = {**os.environ, "PKGSANDBOX_RUNC": str(fake), "PKGSANDBOX_OCI_STATE": str(tmp_path / "state")}
    out = subprocess.run(["/bin/sh", str(front), *argv], env=env, capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def test_the_shell_front_adds_the_session_cgroups_to_exec_only(tmp_path: Path) -> None:
    glob = ["--root", "/run/docker/runtime-x/moby", "--log", "/run/l.json", "--log-format", "json"]
    exec_args = ["exec", "--process", "/tmp/p.json", "--detach", "--pid-file", "/tmp/p.pid", CID]
    state = "4242\nmemory,pids:user.slice/a/session-3.scope cpu:user.slice\n"
    assert _front(tmp_path, [*glob, *exec_args], state) == [
        *glob,
        "exec",
        "--cgroup",
        "memory,pids:user.slice/a/session-3.scope",
        "--cgroup",
        "cpu:user.slice",
        *exec_args[1:],
    ]
    # cgroup v1 beside a unified hierarchy: the exec'd pid is written to the unified
    # session's cgroup.procs (runc leaves it at the root there)
    procs = tmp_path / "procs"
    procs.write_text("")
    state_u = f"4242\nmemory:user.slice/a/session-3.scope\n{procs}\n"
    pid_file = str(tmp_path / "p.pid")
    argv = [*glob, "exec", "--detach", "--pid-file", pid_file, CID]
    assert _front(tmp_path, argv, state_u)[len(glob) : len(glob) + 3] == [
        "exec",
        "--cgroup",
        "memory:user.slice/a/session-3.scope",
    ]
    assert procs.read_text() == "4242\n"
    # no state (the wrapper could not place the container): runc's argv as is
    (tmp_path / "state" / CID).unlink()
    assert _front(tmp_path, [*glob, *exec_args], None) == [*glob, *exec_args]
    assert _front(tmp_path, [*glob, "kill", CID, "9"], state) == [*glob, "kill", CID, "9"]
    assert _front(tmp_path, [*glob, "state", CID], state) == [*glob, "state", CID]


def test_the_session_scope_is_a_login_session_s_and_stable_per_container() -> None:
    scope = session_scope(CID)
    assert scope == session_scope(CID)
    assert scope.startswith("user.slice/user-1000.slice/session-") and scope.endswith(".scope")
    assert 2 <= int(scope.rsplit("-", 1)[1].split(".")[0]) <= 8
    assert session_scope("not-hex!").startswith("user.slice/")
