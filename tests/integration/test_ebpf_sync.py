"""The eBPF recorder's synced stop: the trace is whole without waiting for bpftrace's detach.

A burst of records right before the stop, on every CPU at once, must all be in the
trace: the stop kills bpftrace as soon as its sync markers are written, so a marker
that came before the records it should follow would lose them.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from pathlib import Path

from sandbox.runner.ebpf_recorder import EbpfRecorder, online_cpus
from sandbox.trace.ebpf import parse_ebpf

NOBODY = 65534
BURST = 2500


def _burst(prefix: str) -> subprocess.Popen[bytes]:
    # stats of names that do not exist: a record each, nothing touched
    code = (
        f"import os\nfor i in range({BURST}):\n"
        f"    try: os.stat('{prefix}-%d' % i)\n    except OSError: pass\n"
    )
    return subprocess.Popen(["/usr/bin/python3", "-c", code], preexec_fn=lambda: os.setuid(NOBODY))


def test_a_synced_stop_keeps_every_record_and_leaves_no_recorder(tmp_path: Path) -> None:
    recorder = EbpfRecorder(os.getpid(), tmp_path, uid=NOBODY)
    recorder.start()
    try:
        recorder.wait_ready(120)
        prefixes = [f"/nonexistent-{secrets.token_hex(6)}" for _ in sorted(online_cpus())]
        for proc in [_burst(p) for p in prefixes]:  # one per CPU, at once
            assert proc.wait(60) == 0
        stats = recorder.stop()
        assert recorder.cut is not None, "the sync markers never came"
        assert stats.exit_code == 0
        text = recorder.trace_path.read_bytes()
        for prefix in prefixes:
            seen = {int(n) for n in re.findall(re.escape(prefix.encode()) + rb"-(\d+)", text)}
            assert seen == set(range(BURST)), f"{BURST - len(seen)} records of {prefix} lost"
        assert text.count(b"\x1eSYNC ") >= len(online_cpus())
        decoded = parse_ebpf(text.decode("utf-8", "backslashreplace"), [])
        assert decoded.unparsed == 0 and decoded.lost == 0 and decoded.ready
        assert not recorder.live_path.exists()
    finally:
        recorder.kill()
    assert recorder.proc is not None and recorder.proc.poll() is not None


def test_sync_answers_none_when_bpftrace_is_gone(tmp_path: Path) -> None:
    recorder = EbpfRecorder(os.getpid(), tmp_path, uid=NOBODY)
    recorder.start()
    recorder.wait_ready(120)
    recorder.kill()
    assert recorder.sync(1.0) is None
    # and the stop then takes the old path: the whole output, bpftrace's exit code
    stats = recorder.stop()
    assert recorder.cut is None and stats.exit_code == -9
    assert recorder.trace_path.exists() and not recorder.live_path.exists()
