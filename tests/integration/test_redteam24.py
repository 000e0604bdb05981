"""Session 24's hostile read, end to end under both recorders."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.models import Phase, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")
RECORDERS = pytest.mark.parametrize("recorder", ["strace", "ebpf"])


@RECORDERS
def test_a_script_swapped_into_place_by_rename_exchange_and_run_is_caught(
    tmp_path: Path, recorder: str
) -> None:
    """``renameat2(b, a, RENAME_EXCHANGE)``: b, an empty directory, takes the script
    written at a. Both recorders took every rename for a one-way move, so b was never
    written and running it was not a dropped payload's run (no PS004)."""
    r = Randomised()
    name, folder = r.name("swap"), f"/tmp/.{r.name('s')}"
    source = f"""
import ctypes, os, subprocess
d = {folder!r}
os.makedirs(d, exist_ok=True)
a, b = d + "/a", d + "/b"
with open(a, "w") as fh:
    fh.write("#!/bin/sh\\nexit 0\\n")
os.chmod(a, 0o755)
os.mkdir(b)
libc = ctypes.CDLL(None, use_errno=True)
if libc.renameat2(-100, b.encode(), -100, a.encode(), 2) != 0:  # AT_FDCWD, RENAME_EXCHANGE
    raise OSError(ctypes.get_errno(), "renameat2")
subprocess.run([b], check=False)
"""
    whl = build_wheel(tmp_path, name, "0.1", {f"{name}/__init__.py": source})
    code, report = run_cli(tmp_path, str(whl), "--recorder", recorder)
    assert report is not None
    found = [f for f in report.findings if f.rule_id == "PS004" and f.phase is Phase.IMPORT]
    assert any(e.path == f"{folder}/b" for f in found for e in f.evidence), [
        (f.rule_id, f.severity, [(e.syscall, e.path) for e in f.evidence[:4]]) for f in report.findings
    ]
    assert report.verdict is Verdict.MALICIOUS and code == 1


@RECORDERS
def test_signals_by_sigqueue_and_pidfd_and_fd_theft_from_pid_1_are_recorded_and_judged(
    tmp_path: Path, recorder: str
) -> None:
    """The eBPF recorder recorded kill, tkill and tgkill only: a signal sent with
    ``rt_sigqueueinfo``/``rt_tgsigqueueinfo`` or through a pidfd (Python's own
    ``signal.pidfd_send_signal``) left no record (PS007), nor did ``pidfd_getfd``
    (PS008, like ``process_vm_readv``). Each is aimed at PID 1 here (refused: it is
    root's)."""
    name = Randomised().name("sig")
    source = """
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
info = ctypes.create_string_buffer(128)
libc.syscall(129, 1, signal.SIGUSR1, info)  # rt_sigqueueinfo(1, SIGUSR1, info)
libc.syscall(297, 1, 1, signal.SIGUSR2, info)  # rt_tgsigqueueinfo(1, 1, SIGUSR2, info)
try:
    fd = os.pidfd_open(1)
    try:
        signal.pidfd_send_signal(fd, signal.SIGTERM)
    except OSError:
        pass
    libc.syscall(438, fd, 0, 0)  # pidfd_getfd(fd, 0, 0)
except OSError:
    pass
buf = ctypes.create_string_buffer(16)
local = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 16)
libc.syscall(310, 1, local, 1, local, 1, 0)  # process_vm_readv(1, ...)
"""
    whl = build_wheel(tmp_path, name, "0.1", {f"{name}/__init__.py": source})
    code, report = run_cli(tmp_path, str(whl), "--recorder", recorder)
    assert report is not None

    def calls(rule: str) -> set[str]:
        return {
            e.syscall
            for f in report.findings
            if f.rule_id == rule and f.phase is Phase.IMPORT
            for e in f.evidence
        }

    summary = [(f.rule_id, f.severity) for f in report.findings]
    assert {"rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal"} <= calls("PS007"), summary
    assert {"pidfd_getfd", "process_vm_readv"} <= calls("PS008"), summary
    assert report.verdict is not Verdict.CLEAN and code == 1
