"""The compiled eBPF recorder (sandbox.runner.bpfbuild) against bpftrace's, record by record.

Both recorders attach to one container at once and see the same syscalls of one
workload (every record shape: paths, two-path calls, fd bookkeeping, sockets with and
without an address, AF_UNIX names, sends, an exec's argv, waits, signals, a script's
``#!`` line); their outputs must decode to the same records, but for the clock (and fstat(fd), which
only bpftrace prints and the decoder drops).
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from sandbox.agent.protocol import SANDBOX_UID, privilege_drop
from sandbox.runner.bpfbuild import build
from sandbox.runner.ebpf_program import syscall_numbers
from sandbox.runner.ebpf_recorder import EbpfRecorder
from sandbox.runner.engine import LABEL, LABEL_DEADLINE, LABEL_OWNER, LABEL_RUN, connect
from sandbox.runner.image import ensure_image
from sandbox.tempdirs import owner_label
from sandbox.trace.ebpf import _ready_end, _split, _unbuf
from tests.fixtures.builders import Randomised

WORKLOAD = r"""
import ctypes, os, socket, subprocess, tempfile
d = tempfile.mkdtemp(dir="/tmp")
p = os.path.join(d, "f.txt")
with open(p, "w") as f:
    f.write("x")
os.stat(p); os.access(p, os.R_OK); os.chmod(p, 0o600)
os.symlink(p, p + ".lnk"); os.readlink(p + ".lnk"); os.rename(p + ".lnk", p + ".l2")
os.link(p, p + ".hard"); os.unlink(p + ".hard"); os.mkdir(d + "/sub"); os.rmdir(d + "/sub")
fd = os.open(p, os.O_RDONLY); os.dup(fd); os.dup2(fd, 50); os.close(50)
import fcntl; fcntl.fcntl(fd, fcntl.F_DUPFD, 60)
with open(d + "/run.sh", "w") as f:
    f.write("#!/bin/sh\necho hi\n")
    os.fchmod(f.fileno(), 0o700)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.sendto(b"hello\x00\x01 back\\slash", ("192.0.2.7", 9))
except OSError:
    pass
u.connect(("127.0.0.1", 9))
for data in (b"connected payload \xff", b"via sendmsg"):
    try:
        u.sendmsg([data]) if data.startswith(b"via") else u.send(data)
    except OSError:  # refused: nothing listens on the port
        pass
x = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for name in ("/tmp/nowhere.sock", "\0abstract-name"):
    try:
        x.sendto(b"u", name)
    except OSError:
        pass
    try:
        x.connect(name)
    except OSError:
        pass
os.memfd_create("scratch")
subprocess.run(["/bin/echo", "one", "two words", "back\\slash"], stdout=subprocess.DEVNULL)
os.kill(os.getpid(), 0)
# openat with the number's upper 32 bits set: the kernel and seccomp use the low 32 only
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
hi = libc.syscall(ctypes.c_long((1 << 32) + 257), ctypes.c_long(-100), os.fsencode(p + ".hi"), 0o101, 0o600)
assert hi >= 0, ctypes.get_errno()
# int arguments with the register's upper half set: the kernel reads the low 32 bits
# (an F_DUPFD the filter took for another cmd went unrecorded)
assert libc.syscall(ctypes.c_long(72), ctypes.c_long(hi), ctypes.c_long(1 << 32), ctypes.c_long(70)) == 70
# close-on-exec cleared and set (fcntl F_SETFD, ioctl FIONCLEX/FIOCLEX), one with the upper half set
fcntl.fcntl(hi, fcntl.F_SETFD, 0); os.set_inheritable(hi, False); os.set_inheritable(hi, True)
assert libc.syscall(ctypes.c_long(16), ctypes.c_long(hi), ctypes.c_long((1 << 32) | 0x5451), 0) == 0
# newfstatat(AT_FDCWD, buf + 36, buf, AT_EMPTY_PATH): the path sits where the kernel writes
# the stat (padding: zero), so at exit it reads empty, like an fstat(fd)
st = ctypes.create_string_buffer(256)
ctypes.memmove(ctypes.addressof(st) + 36, os.fsencode(p) + b"\0", len(p) + 1)
at = ctypes.c_void_p(ctypes.addressof(st) + 36)
assert libc.syscall(ctypes.c_long(262), ctypes.c_long(-100), at, st, 0x1000) == 0
assert st.raw[36] == 0
os.pwrite(os.open(d + "/pw", os.O_WRONLY | os.O_CREAT), b"#!/usr/bin/env python3\n", 0)
ctypes.CDLL(None, use_errno=True).ptrace(2, 1, 0, 0)  # PTRACE_PEEKDATA of pid 1: refused
child = subprocess.Popen(["/bin/true"])
os.waitid(os.P_PID, child.pid, os.WEXITED)
try:
    os.setuid(0)
except OSError:
    pass
"""


# fstat(fd): newfstatat or statx of "" that succeeded (AT_EMPTY_PATH)
_FSTAT_IDS = frozenset(syscall_numbers()[n] for n in ("newfstatat", "statx"))


def _records(text: str) -> Counter[tuple[object, ...]]:
    """Each record's kind, numbers but the clock, and string (bytes of a buffer)."""
    chunks = text.split("\x1e")[1:]
    end = ""
    out: Counter[tuple[object, ...]] = Counter()
    for chunk in chunks:
        body = chunk[:-1] if chunk.endswith("\n") else chunk
        if (ready := _ready_end(body)) is not None:
            end = ready
            continue
        if body.startswith("SYNC"):
            continue
        rec = _split(body, end)
        assert rec is not None, body[:200]
        kind, nums, strs = rec
        if kind == "A" and nums[7] == 0 and nums[0] in _FSTAT_IDS and not strs[0]:
            out[("fstat",)] += 1  # fstat(fd): bpftrace prints it, the compiled recorder does not
            continue
        key_nums = tuple(n for i, n in enumerate(nums) if i != 1)
        value: object = tuple(strs)
        if kind in ("S", "h", "y"):  # the bytes a decoder keeps (those past are garbage)
            ret, length = nums[7], nums[9] if kind == "S" else nums[7]
            keep = length if kind == "y" or ret < 0 else min(length, ret)
            value = _unbuf(strs[0])[:keep]
        out[(kind, key_nums, value)] += 1
    return out


@pytest.mark.serial  # two recorders and a container: timing-free, but heavy
def test_the_compiled_recorder_prints_what_bpftrace_prints(tmp_path: Path) -> None:
    build()  # CI builds it (doctor --provision installs clang and libbpf-dev): a failure fails
    client = connect()
    image = ensure_image(client)
    name = f"pkgsandbox-parity-{Randomised().name('')}"
    labels = [f"{LABEL}=test", f"{LABEL_RUN}={name}", f"{LABEL_OWNER}={owner_label()}"]
    labels.append(f"{LABEL_DEADLINE}={int(time.time()) + 900}")
    start = ["docker", "run", "-d", "--rm", "--name", name, "--network", "none"]
    start += [arg for label in labels for arg in ("--label", label)]
    subprocess.run([*start, image.tag, "sleep", "900"], check=True, capture_output=True)
    recorders: list[EbpfRecorder] = []
    try:
        pid = int(client.api.inspect_container(name)["State"]["Pid"])
        for compiled in (False, True):
            out = tmp_path / ("compiled" if compiled else "bpftrace")
            out.mkdir()
            recorders.append(EbpfRecorder(pid, out, compiled=compiled))
            recorders[-1].start()
        for rec in recorders:
            rec.wait_ready()
        drop = privilege_drop(SANDBOX_UID, SANDBOX_UID)
        done = subprocess.run(
            ["docker", "exec", "-u", "0", name, *drop, "python3", "-c", WORKLOAD],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-800:]
        stats = [rec.stop() for rec in recorders]
    finally:
        for rec in recorders:
            rec.kill()
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    assert [s.loader for s in stats] == ["bpftrace", "compiled"]
    old, new = (_records(rec.trace_path.read_bytes().decode("utf-8", "surrogateescape")) for rec in recorders)
    kinds = Counter(k[0] for k in new.elements())
    # the workload reached every shape it was written for
    assert {
        "P",
        "A",
        "R",
        "r",
        "G",
        "U",
        "O",
        "C",
        "S",
        "u",
        "E",
        "a",
        "e",
        "x",
        "y",
        "X",
        "M",
        "Z",
        "h",
        "V",
        "K",
        "F",
    } <= set(kinds), kinds
    assert sum(old.values()) > 200
    hi = [k for k in new if k[0] == "A" and isinstance(k[2], tuple) and k[2] and k[2][0].endswith("f.txt.hi")]
    assert hi, "the openat with the number's upper bits set was not recorded"
    fcntl_nr = syscall_numbers()["fcntl"]
    duped = [k for k in new if k[0] == "U" and k[1][0] == fcntl_nr and k[1][6] == 70]
    assert duped, "fcntl(F_DUPFD | 1 << 32) was not recorded"
    ioctl_nr = syscall_numbers()["ioctl"]
    flagged = sorted(
        (k for k in new if k[0] == "U" and k[1][0] in (fcntl_nr, ioctl_nr) and k[1][8] in (2, 21584, 21585)),
        key=lambda k: k[1][8],  # type: ignore[index]
    )
    # two FIOCLEX (one with the upper half set) are one key of the counter
    assert new[flagged[-1]] == 2 and len(flagged) == 3, f"F_SETFD / FIONCLEX / FIOCLEX: {flagged}"
    # the compiled recorder leaves out fstat(fd), decided at entry: the one stat whose
    # path the kernel overwrote with the stat (empty at exit) is recorded by both
    assert old.pop(("fstat",), 0) > 1 and new.pop(("fstat",), 0) == 1
    assert old == new, (old - new, new - old)


@pytest.mark.serial  # takes the host's bpftrace room: a neighbour's bpftrace vet would not attach
def test_the_compiled_recorder_attaches_where_bpftrace_has_no_room(tmp_path: Path) -> None:
    from tests.conftest import run_cli
    from tests.fixtures.builders import build_wheel
    from tests.integration.test_ebpf import _hog, _our_bpftrace

    build()
    hogs = []
    try:
        for _ in range(2):  # 54 of the 64 programs raw_syscalls:sys_exit takes: bpftrace's 11 do not fit
            hogs.append(_hog(tmp_path, 27))
        name = Randomised().name("roomy")
        whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": "VALUE = 1\n"})
        code, report = run_cli(tmp_path, str(whl), "--recorder", "ebpf", "--phases", "import")
    finally:
        for hog in hogs:
            hog.terminate()
            hog.wait(30)
    assert report is not None and code == 0, report and report.notes
    assert any("recorder: eBPF (host-side compiled" in n for n in report.notes), report.notes
    assert all(p.trace_complete for p in report.phases)
    assert not _our_bpftrace()


@pytest.mark.serial  # attaches bpftrace: a neighbour's bpftrace vet would compete for room
def test_a_build_that_does_not_load_here_gives_way_to_bpftrace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """doctor's proof: the compiled recorder fails to attach (here: an object that is
    not one), so the build is marked and bpftrace's recorder proven instead; on main
    ``auto`` then went to strace."""
    import shutil

    from sandbox.runner import bpfbuild, ebpf_recorder

    real = build()
    broken = tmp_path / "build"
    broken.mkdir()
    shutil.copy2(real / bpfbuild.LOADER, broken / bpfbuild.LOADER)
    (broken / bpfbuild.OBJECT).write_bytes(b"\x7fELF not an object " + Randomised().marker().encode())
    monkeypatch.delenv("PKGSANDBOX_EBPF_LOADER", raising=False)
    monkeypatch.setattr(bpfbuild, "_built", lambda: broken)
    monkeypatch.setattr(ebpf_recorder, "_PROOF", tmp_path / "proof.json")
    assert bpfbuild.available() == broken
    ok, why = ebpf_recorder.prove(60)
    assert ok, why
    assert "compiled recorder failed to attach" in why and "bpftrace recorder" in why, why
    assert (broken / bpfbuild.UNLOADABLE).exists() and bpfbuild.available() is None
    support = ebpf_recorder.ebpf_support()
    assert support.proven and not support.compiled  # auto: eBPF, by bpftrace
