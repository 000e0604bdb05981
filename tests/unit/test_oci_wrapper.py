"""The runc wrapper's pure parts (sandbox.oci.wrapper): runc's argv, the bundle
rewrite, and finding a process's cgroup directories from real ``/proc`` text (this
machine's cgroup v1 hierarchies, captured 2026-12-05, and a v2-only host)."""

from __future__ import annotations

from sandbox.oci.wrapper import cgroup_dirs, drop_network_binds, option, session_scope, split_argv

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
    dirs = cgroup_dirs(1, V1_CGROUP, V1_MOUNTINFO)
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
    assert dirs == [f"/sys/fs/cgroup/{n}/docker/{CID}" for n in names]
    # a joined hierarchy ("cpu,cpuacct" on most distributions) is one mount
    joined = "33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
    assert cgroup_dirs(1, "2:cpu,cpuacct:/docker/x\n", joined) == ["/sys/fs/cgroup/cpu,cpuacct/docker/x"]
    # a cgroup namespace's view of part of a hierarchy (root field not "/") is not a root
    inner = "50 31 0:30 /docker/x /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
    assert cgroup_dirs(1, "1:cpu:/\n", inner) == []


def test_a_v2_only_host() -> None:
    mi = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
    cg = f"0::/system.slice/docker-{CID}.scope\n"
    assert cgroup_dirs(1, cg, mi) == [f"/sys/fs/cgroup/system.slice/docker-{CID}.scope"]


def test_the_session_scope_is_a_login_session_s_and_stable_per_container() -> None:
    scope = session_scope(CID)
    assert scope == session_scope(CID)
    assert scope.startswith("user.slice/user-1000.slice/session-") and scope.endswith(".scope")
    assert 2 <= int(scope.rsplit("-", 1)[1].split(".")[0]) <= 8
    assert session_scope("not-hex!").startswith("user.slice/")
