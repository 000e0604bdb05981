"""Dormant payloads (issue 11, H5): a thread left asleep when the window closes is judged.

The fixtures start a thread that would run a defanged payload (a connect to a TEST-NET
address) only long after the observation window: before this change the main process
with only "idle" threads left counted as inactive and the verdict was clean.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from sandbox.models import Phase, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel, exfil_source, pth_line

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")

# How the thread waits: each is a different syscall (clock_nanosleep, futex with an
# absolute deadline, pselect6, a threading.Timer's futex wait).
WAITS = {
    "sleep": "time.sleep({secs})",
    "event": "threading.Event().wait({secs})",
    "select": "select.select([], [], [], {secs})",
}


def dormant_source(r: Randomised, payload: str, *, timer: bool) -> str:
    secs = r.rng.randrange(300, 900)
    daemon = r.rng.choice([True, False])
    body = textwrap.indent(payload, "    ")
    if timer:
        return (
            "import threading\ndef _later():\n"
            f"{body}\n"
            f"_t = threading.Timer({secs}, _later)\n_t.daemon = {daemon}\n_t.start()\n"
        )
    wait = r.rng.choice(sorted(WAITS))
    return (
        "import select, threading, time\ndef _later():\n"
        f"    {WAITS[wait].format(secs=secs)}\n"
        f"{body}\n"
        f"threading.Thread(target=_later, daemon={daemon}).start()\n"
    )


def _ps006(report: object, phase: Phase) -> list[str]:
    return [
        e.detail or ""
        for f in getattr(report, "findings", [])
        if f.rule_id == "PS006" and f.phase is phase
        for e in f.evidence
    ]


@pytest.mark.parametrize("timer", [False, True], ids=["thread", "timer"])
def test_a_thread_sleeping_past_the_window_is_lingering(tmp_path: Path, timer: bool) -> None:
    r = Randomised()
    name, host, port = r.name("dormant"), r.address(), r.port()
    src = dormant_source(r, exfil_source(r.credential(), host, port), timer=timer)
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    details = _ps006(report, Phase.IMPORT)
    assert any("sleeps in" in d for d in details), [(f.rule_id, f.message) for f in report.findings]
    assert report.verdict is not Verdict.CLEAN and code == 1


def test_a_thread_polling_for_a_date_is_lingering(tmp_path: Path) -> None:
    """No long wait to read, but the thread wakes many times during the window."""
    r = Randomised()
    name, host, port = r.name("poller"), r.address(), r.port()
    step = r.rng.choice([0.02, 0.05, 0.1])
    payload = textwrap.indent(exfil_source(r.credential(), host, port), "    ")
    src = (
        "import threading, time\n"
        "def _later():\n"
        f"    end = time.time() + {r.rng.randrange(300, 900)}\n"
        "    while time.time() < end:\n"
        f"        time.sleep({step})\n"
        f"{payload}\n"
        "threading.Thread(target=_later, daemon=True).start()\n"
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    details = _ps006(report, Phase.IMPORT)
    assert any("woke" in d or "sleeps in" in d for d in details), [
        (f.rule_id, f.message) for f in report.findings
    ]
    assert report.verdict is not Verdict.CLEAN and code == 1


def test_a_startup_hook_thread_asleep_in_a_long_running_program_is_lingering(tmp_path: Path) -> None:
    """A .pth starts a daemon thread that sleeps: the long-running start-up step
    (a program that lives on) now opens its window at once and judges the thread."""
    r = Randomised()
    name, host, port = r.name("hooked"), r.address(), r.port()
    src = dormant_source(r, exfil_source(r.credential(), host, port), timer=False)
    src = src.replace("daemon=False", "daemon=True")  # a non-daemon thread would hang `python -c pass`
    whl = build_wheel(
        tmp_path,
        name,
        "1.0",
        {f"{name}/__init__.py": "X = 1\n", f"{name}_hook.pth": pth_line(src)},
    )
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    details = _ps006(report, Phase.STARTUP)
    assert any("sleeps in" in d for d in details), [(f.rule_id, f.message) for f in report.findings]
    assert report.verdict is not Verdict.CLEAN and code == 1


@pytest.mark.online
def test_numpy_blas_threads_are_idle_not_lingering(tmp_path: Path) -> None:
    """numpy's import leaves an OpenBLAS pool parked in futex without a timeout:
    noted, never a PS006 (a false positive on the most common native import)."""
    code, report = run_cli(tmp_path, "numpy")
    assert report is not None
    imp = next(p for p in report.phases if p.phase is Phase.IMPORT)
    assert not _ps006(report, Phase.IMPORT), [(f.rule_id, f.message) for f in report.findings]
    assert imp.lingering and not any(lg.active for lg in imp.lingering), imp.lingering
    assert report.verdict is Verdict.CLEAN, (report.verdict_reason, report.findings)
    assert code == 0


# A worker thread as an import leaves it: it spins for SECS of wall time, as native
# thread pools do after their last job, then parks without a timeout; with SECS
# infinite it keeps working. The spin is hashing, which runs without the GIL as a
# BLAS pool's does (a pure-Python spin hands the GIL back and forth with the main
# thread through futex wake-ups, which reads as polling).
POOL = """
import hashlib, threading, time
def _worker():
    block = bytes(1 << 22)
    end = time.monotonic() + {secs}
    while time.monotonic() < end:
        hashlib.sha256(block).digest()
    threading.Event().wait()
threading.Thread(target=_worker, daemon=True).start()
"""


def test_a_pool_spinning_down_after_the_import_is_idle(tmp_path: Path) -> None:
    """scikit-learn's BLAS pools burnt 0.07-0.11 s of CPU at the start of the window
    and were judged a lingering process (PS006); the spin-down is not work left running."""
    name = Randomised().name("pool")
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": POOL.format(secs=0.7)})
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    imp = next(p for p in report.phases if p.phase is Phase.IMPORT)
    assert imp.lingering and not any(lg.active for lg in imp.lingering), imp.lingering
    assert report.verdict is Verdict.CLEAN and code == 0, (report.verdict_reason, report.findings)


def test_a_thread_still_working_when_the_window_closes_is_lingering(tmp_path: Path) -> None:
    name = Randomised().name("busy")
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": POOL.format(secs="float('inf')")})
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    details = _ps006(report, Phase.IMPORT)
    # the busy threads are named with what they used
    assert any(re.search(r"thread \d+ \d+\.\d\ds CPU", d) for d in details), details
    assert report.verdict is not Verdict.CLEAN and code == 1
