"""The sandbox's root filesystem (sandbox.oci.roots through the runc wrapper): a btrfs
snapshot that reads like a workstation's root in /proc/self/mounts, never Docker's
overlay with its /var/lib/docker layer paths, whose btrfs ioctls answer as a plain
filesystem's; gone with its container; the collector removes what a killed engine
left, nested subvolumes and all."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from sandbox.oci import roots
from sandbox.runner.docker_backend import DockerSandbox, realistic_hostname
from sandbox.runner.interface import RunOptions

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")

# btrfs's own ioctls, which a candidate could ask the root: its subvolume's info (the
# snapshot's creation time, seconds ago) and making a subvolume (a tree the host must
# take apart); seccomp answers ENOTTY, as on a filesystem without them
_BTRFS_IOCTLS = (
    "import errno, fcntl, os\n"
    "fd = os.open('/', os.O_RDONLY)\n"
    "for cmd in (0x81F8943C, 0x5000940E, (1 << 32) | 0x81F8943C):\n"
    "    try:\n"
    "        fcntl.ioctl(fd, cmd, bytearray(4096))\n"
    "        print('answered', hex(cmd))\n"
    "    except OSError as exc:\n"
    "        print(errno.errorcode[exc.errno], hex(cmd))\n"
)


def _exec(container: Any, cmd: list[str], user: str = "root") -> str:
    code, out = container.exec_run(cmd, user=user)
    assert code == 0, out
    return str(out.decode("utf-8", "replace"))


def test_the_root_is_a_btrfs_snapshot_that_goes_with_its_container(
    docker_client: Any, sandbox_image: Any, tmp_path: Path
) -> None:
    assert roots.ready(), "doctor --provision makes the root volume"
    tmp_path.chmod(0o755)
    box = DockerSandbox(docker_client, sandbox_image)
    container = box._create(
        "r" + str(int(time.time())), tmp_path, time.time() + 120, RunOptions(), realistic_hostname()
    )
    try:
        container.start()
        mounts = _exec(container, ["cat", "/proc/self/mounts"], user="1000")
        info = _exec(container, ["cat", "/proc/self/mountinfo"], user="1000")
        m = re.search(r"^/dev/nvme0n1p2 / btrfs \S*,subvol=/@/\.snapshots/(\d+)/snapshot 0 0$", mounts, re.M)
        assert m, mounts
        for text in (mounts, info):
            assert not re.search(r"docker|overlay|[0-9a-f]{64}", text), text
        # the root field is the subvolume's path, as on an openSUSE machine
        assert re.search(
            r"^\d+ \d+ \d+:\d+ /@/\.snapshots/\d+/snapshot / \S+ - btrfs /dev/nvme0n1p2 ", info, re.M
        ), info
        n = m.group(1)
        _exec(container, ["sh", "-c", "echo mine > /root/marker"])
        for user in ("root", "1000"):
            said = _exec(container, ["python3", "-c", _BTRFS_IOCTLS], user=user).split()
            assert said[::2] == ["ENOTTY"] * 3, said
        assert _exec(container, ["readlink", "/etc/mtab"]).strip() == "../proc/self/mounts"
        assert Path(roots.SNAPSHOTS, n, "snapshot/root/marker").read_text() == "mine\n"
    finally:
        box._remove(container)
    assert not Path(roots.STATE, container.id).exists()
    assert not Path(roots.SNAPSHOTS, n).exists()
    templates = [p for p in Path(roots.TEMPLATES).iterdir() if len(p.name) == 16]
    assert templates and not any((t / "root/marker").exists() for t in templates)


def test_the_collector_removes_what_a_killed_engine_left() -> None:
    assert roots.ready()
    old = time.time() - roots.GC_AGE - 60
    # a container whose runc state is gone (a killed shim), and a numbered directory no
    # state entry claims (a create killed between the two)
    n1, n2 = 900000 + os.getpid() % 1000 * 2, 900001 + os.getpid() % 1000 * 2
    for n in (n1, n2):
        Path(roots.SNAPSHOTS, str(n)).mkdir()
        roots.subvol_create(f"{roots.SNAPSHOTS}/{n}", "snapshot")
        Path(roots.SNAPSHOTS, str(n), "snapshot", "f").write_text("x")
        roots.subvol_create(f"{roots.SNAPSHOTS}/{n}/snapshot", "nested")  # taken apart first
        os.utime(Path(roots.SNAPSHOTS, str(n)), (old, old))
    gone = "f" * 64
    Path(roots.STATE).mkdir(exist_ok=True)
    Path(roots.STATE, gone).write_text(json.dumps({"n": n1, "runc_root": "/nonexistent", "created": old}))
    roots.gc()
    assert not Path(roots.STATE, gone).exists()
    assert not Path(roots.SNAPSHOTS, str(n1)).exists() and not Path(roots.SNAPSHOTS, str(n2)).exists()
