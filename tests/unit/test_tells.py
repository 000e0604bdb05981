"""``doctor --tells`` judges raw facts seen by the candidate (issue 11 item 6)."""

from __future__ import annotations

import socket
from pathlib import Path

from sandbox.doctor import tell_checks

# What a candidate read on a developer's laptop (the shape `agent tells` reports).
WORKSTATION: dict[str, object] = {
    "pid1_comm": "systemd",
    "pid1_cmdline": "/sbin/init\0splash\0",
    "tracer_pid": "0",
    "dockerenv": False,
    "containerenv": False,
    "mounts": "/dev/nvme0n1p2 / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n",
    "mountinfo": "26 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n",
    "cgroup_self": "0::/user.slice/user-1000.slice/session-2.scope\n",
    "cgroup_1": "0::/init.scope\n",
    "processes": [[1, 0, "systemd", "/sbin/init splash"], [2, 0, "kthreadd", ""]]
    + [[100 + i, 1, f"d{i}", f"/usr/libexec/d{i} --daemon"] for i in range(60)]
    + [[200, 1, "python3", "python3 -m pip install --user requests"]],
    "hostname": "alex-thinkpad",
    "env": ["HOME", "PATH", "USER", "SHELL", "LANG"],
    "uptime": "86400.5 170000.1",
    "cpu_count": 8,
    "cpu_affinity": 8,
    "mem_total": 16 << 30,
    "version": "Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14))",
    "dmi": {"product_name": "20XW0055GE", "sys_vendor": "LENOVO"},
    "net": {"lo": "00:00:00:00:00:00", "wlp0s20f3": "3c:21:9c:11:22:33"},
    "shm": ["pulse-shm-2713392910", "sem.mp-k2x9_q1z"],
}

# What the probe saw in the sandbox on main: docker-init, strace, overlay, six processes.
SANDBOX = {
    **WORKSTATION,
    "pid1_comm": "docker-init",
    "pid1_cmdline": "/sbin/docker-init\0--\0sleep\0900\0",
    "tracer_pid": "27",
    "dockerenv": True,
    "mounts": "overlay / overlay rw,lowerdir=/var/lib/docker/overlay2/l/AB 0 0\n",
    "mountinfo": "600 500 0:52 / / rw - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/AB\n",
    "cgroup_self": "12:memory:/\n11:pids:/\n",
    "cgroup_1": "12:memory:/\n11:pids:/\n",
    "processes": [
        [1, 0, "docker-init"],
        [7, 1, "sleep"],
        [8, 0, "python", "/opt/pkgsandbox/python -I -c import sys; sys.path.insert(0, "],
        [9, 8, "strace", "strace -f -o /trace/x.strace -- setpriv"],
        [10, 9, "python3", "/home/dev/project/.venv/bin/python /opt/pkgsandbox/run/pkgsandbox_import.py x"],
    ],
    "hostname": "3f2a9c1d7e4b",
    "env": ["HOME", "PATH", "PYTHON_VERSION", "GPG_KEY", "container"],
    "uptime": "120.0 200.0",
    "cpu_count": 1,
    "mem_total": 1 << 30,
    "version": "Linux version 4.4.0 #1 SMP Sun Jan 10 15:06:54 PST 2016",
    "dmi": {"product_name": "Standard PC (Q35 + ICH9, 2009)", "sys_vendor": "QEMU"},
    "net": {"lo": "00:00:00:00:00:00", "eth0": "02:42:ac:11:00:02"},
    "shm": ["dt_ft_shm", "sem.dt_ft_sem"],  # libfaketime's files, made at setup (session 25)
}


def test_a_workstation_shows_no_tell() -> None:
    bad = [(c.name, c.detail) for c in tell_checks(WORKSTATION) if not c.ok]
    assert bad == []


def test_every_sandbox_fact_is_a_tell() -> None:
    checks = {c.name: c for c in tell_checks(SANDBOX)}
    assert {n for n, c in checks.items() if c.ok} == set(), [(n, c.detail) for n, c in checks.items() if c.ok]
    assert "parent 0" in checks["processes"].detail and "python" in checks["processes"].detail
    assert checks["command lines"].detail == "name pkgsandbox, strace", checks["command lines"].detail
    assert "Docker" in checks["MAC addresses"].detail
    assert "PYTHON_VERSION" in checks["environment"].detail and "container" in checks["environment"].detail
    assert "eBPF" in checks["TracerPid"].detail  # says what removes it
    assert checks["/dev/shm"].detail == "holds dt_ft_shm, sem.dt_ft_sem"


def test_missing_facts_are_tells_not_crashes() -> None:
    checks = list(tell_checks({}))
    assert len(checks) == len(list(tell_checks(WORKSTATION)))
    assert not any(
        c.ok for c in checks if c.name in ("PID 1 name", "TracerPid", "uptime", "memory", "command lines")
    )
    # processes listed without their command lines: nothing says none names the tool
    bare = {**WORKSTATION, "processes": [x[:3] for x in WORKSTATION["processes"]]}  # type: ignore[attr-defined]
    assert not next(c for c in tell_checks(bare) if c.name == "command lines").ok


# What the probe saw under runsc (gVisor 2022-12), strace in front, before this branch's fixes.
GVISOR = {
    **WORKSTATION,
    "pid1_cmdline": "/opt/pkgsandbox/python\0-I\0-c\0import sys\0init\0002309\0",
    "tracer_pid": "9",
    "mounts": "none / 9p rw,trans=fd,rfdno=4,wfdno=4,aname=/,cache=fscache,overlayfs_stale_read 0 0\n",
    "mountinfo": "1 0 0:1 / / rw - 9p none rw,trans=fd,rfdno=4,wfdno=4\n",
    "cgroup_self": "",
    "cgroup_1": "",
    "uptime": "3.2 1.0",
    "mem_total": 3072 << 20,
    "version": "Linux version 4.4.0 #1 SMP Sun Jan 10 15:06:54 PST 2016",
    "net": {"lo": "00:00:00:00:00:00"},
}


def test_gvisor_facts_are_tells() -> None:
    bad = {c.name: c.detail for c in tell_checks(GVISOR) if not c.ok}
    assert set(bad) == {
        "PID 1 command line",
        "TracerPid",
        "/proc/self/mounts",
        "/proc/self/mountinfo",
        "/proc/self/cgroup",
        "/proc/1/cgroup",
        "uptime",
        "memory",
        "/proc/version",
    }
    assert "9p" in bad["/proc/self/mounts"] and "9p" in bad["/proc/self/mountinfo"]
    assert "empty" in bad["/proc/self/cgroup"]


# Real lines from sandbox containers on storage drivers other than overlay2 (measured
# on a second dockerd, data-root /var/lib/mounts-eval): the root is no longer
# "overlay", yet Docker's layer and container ids and its per-container network files
# still give the container away.
_ID = "abb13d3997ce5bf558d06f4ec7ab80a8fee06384560e73a06ba97350dc6362a4"
_CID = "377f70fcc72c1800212a1e62f103f22e7f55d9608b63c0e2902fa49329e55805"
BTRFS = {
    **WORKSTATION,
    "mounts": f"/dev/loop0 / btrfs rw,relatime,discard=async,space_cache=v2,subvolid=288,"
    f"subvol=/btrfs/subvolumes/{_ID} 0 0\nproc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n",
    "mountinfo": f"132 83 0:71 /btrfs/subvolumes/{_ID} / rw,relatime master:4 - btrfs /dev/loop0 "
    f"rw,discard=async,space_cache=v2,subvolid=288,subvol=/btrfs/subvolumes/{_ID}\n",
}
VFS = {
    **WORKSTATION,
    "mounts": "/dev/vda / ext4 rw,relatime,discard,resv_strict,resuid=65534,resgid=65534 0 0\n"
    "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n"
    "/dev/vda /etc/hostname ext4 rw,relatime,discard,resv_strict,resuid=65534,resgid=65534 0 0\n"
    "/dev/vda /etc/hosts ext4 rw,relatime,discard,resv_strict,resuid=65534,resgid=65534 0 0\n",
    "mountinfo": f"141 55 254:0 /var/lib/mounts-eval/vfs/dir/{_ID} / rw,relatime master:4 - ext4 "
    "/dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534\n"
    f"160 141 254:0 /var/lib/mounts-eval/containers/{_CID}/hosts /etc/hosts rw,relatime - ext4 "
    "/dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534\n",
}


def test_container_ids_and_network_file_mounts_are_tells_on_any_storage_driver() -> None:
    """Failed on main: btrfs and vfs roots (no 'overlay', no 'docker') passed as ok."""
    for facts in (BTRFS, VFS):
        bad = {c.name: c.detail for c in tell_checks(facts) if not c.ok}
        assert set(bad) == {"/proc/self/mounts", "/proc/self/mountinfo"}, bad
    btrfs = {c.name: c.detail for c in tell_checks(BTRFS)}
    assert "64-hex" in btrfs["/proc/self/mounts"] and "64-hex" in btrfs["/proc/self/mountinfo"]
    vfs = {c.name: c.detail for c in tell_checks(VFS)}
    assert "/etc/hosts" in vfs["/proc/self/mounts"] and "/etc/hostname" in vfs["/proc/self/mounts"]
    assert "64-hex" in vfs["/proc/self/mountinfo"] and "/etc/hosts" in vfs["/proc/self/mountinfo"]


def test_a_workstation_with_ids_elsewhere_shows_no_mount_tell() -> None:
    """A snap loop mount and a LUKS mapper name (a UUID, not 64 hex digits) are ordinary."""
    facts = {
        **WORKSTATION,
        "mounts": "/dev/mapper/luks-3f1c2b7a-9d2e-4c1b-8e5f-0a1b2c3d4e5f / ext4 rw,relatime 0 0\n"
        "/dev/loop3 /snap/core22/1380 squashfs ro,nodev,relatime,errors=continue 0 0\n"
        "tmpfs /run/user/1000 tmpfs rw,nosuid,nodev,relatime,size=1620468k,mode=700,uid=1000 0 0\n",
    }
    assert [c.name for c in tell_checks(facts) if not c.ok] == []


def test_a_bind_mount_from_a_folder_naming_the_tool_is_a_tell() -> None:
    """The staging folder's host path is the source of a bind mount, in mountinfo: on
    main a vet's was /tmp/pkgsandbox-run-*/stage, and doctor did not look for it."""
    line = "125 108 254:0 {src} /stage ro,relatime - ext4 /dev/vda rw,discard\n"
    named = {**WORKSTATION, "mountinfo": line.format(src="/tmp/pkgsandbox-run-k2j3h4ks/stage")}
    bad = {c.name: c.detail for c in tell_checks(named) if not c.ok}
    assert set(bad) == {"/proc/self/mountinfo"} and "'sandbox' in a path" in bad["/proc/self/mountinfo"], bad
    neutral = {**WORKSTATION, "mountinfo": line.format(src="/tmp/tmpk2j3h4ks/stage")}
    assert [c.name for c in tell_checks(neutral) if not c.ok] == []


def test_a_runs_staging_folder_is_named_like_any_temp_folder_and_swept(tmp_path: Path) -> None:
    from sandbox.tempdirs import owned_tempdir, sweep_temp

    d = owned_tempdir("run", tmp_path, neutral=True)
    assert d.name.startswith("tmp") and "sandbox" not in str(d.relative_to(tmp_path))
    other = tmp_path / "tmpnotours"
    other.mkdir()  # someone else's: no owner marker, never swept
    (d / ".owner").write_text(f"{socket.gethostname()}:999999999:t1")  # its owner died
    assert sweep_temp(tmp_path) == [f"temp dir {d}"] and other.is_dir() and not d.exists()
