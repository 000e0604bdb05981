"""The agent's survivor judgement (issue 11, H5): what a left-over thread waits in.

Real threads of this test process, blocked in real syscalls, read back through
/proc exactly as the agent reads the candidate's (the agent is stdlib + psutil).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

from sandbox.agent import watch


def _thread_in(fn: Callable[[threading.Event], None]) -> Iterator[int]:
    stop = threading.Event()
    tid: list[int] = []

    def run() -> None:
        tid.append(threading.get_native_id())
        fn(stop)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    while not tid:
        time.sleep(0.01)
    time.sleep(0.3)  # let it block
    try:
        yield tid[0]
    finally:
        stop.set()


def _syscall(tid: int) -> str:
    with open(f"/proc/self/task/{tid}/syscall") as fh:
        return fh.read()


@pytest.mark.parametrize(
    "how",
    [
        "sleep",  # clock_nanosleep, absolute deadline (CPython 3.11+)
        "event",  # futex WAIT_BITSET with an absolute deadline
        "select",  # pselect6/select with a relative timeout
        "poll",  # poll with a timeout in ms
    ],
)
def test_a_long_timed_wait_reports_the_time_left(how: str) -> None:
    secs = 400 + (os.getpid() % 300)

    def block(stop: threading.Event) -> None:
        if how == "sleep":
            time.sleep(secs)
        elif how == "event":
            stop.wait(secs)
        elif how == "select":
            select.select([], [], [], secs)
        else:
            p = select.poll()
            p.poll(secs * 1000)

    gen = _thread_in(block)
    tid = next(gen)
    got = watch.wait_left(os.getpid(), _syscall(tid))
    assert got is not None, _syscall(tid)
    name, left = got
    assert left is not None and secs - 5 < left <= secs + 0.01, (name, left)
    reasons = watch.dormant_threads(os.getpid())
    assert any(f"thread {tid} sleeps in {name}" in r for r in reasons), reasons
    if how == "event":
        gen.close()


def test_an_untimed_wait_is_idle() -> None:
    """A pool thread parked without a timeout (what BLAS/OpenMP leave) is not dormant."""
    gen = _thread_in(lambda stop: stop.wait())
    tid = next(gen)
    name, left = watch.wait_left(os.getpid(), _syscall(tid)) or ("", 0.0)
    assert name == "futex" and left is None
    before = watch.thread_snapshot([psutil.Process()])[os.getpid()]
    time.sleep(0.3)
    assert not [r for r in watch.dormant_threads(os.getpid(), before) if f"thread {tid} " in r]
    gen.close()


def test_a_polling_thread_counts_its_wakeups() -> None:
    """A loop of short sleeps waiting for a date: no long wait, but many wake-ups."""

    def poll_loop(stop: threading.Event) -> None:
        while not stop.is_set():
            time.sleep(0.01)

    gen = _thread_in(poll_loop)
    tid = next(gen)
    before = watch.thread_snapshot([psutil.Process()])[os.getpid()]
    time.sleep(0.5)
    reasons = watch.dormant_threads(os.getpid(), before)
    assert any(r.startswith(f"thread {tid} woke ") for r in reasons), reasons
    gen.close()


def test_short_and_unknown_waits_are_not_long() -> None:
    assert watch.wait_left(os.getpid(), "running\n") is None
    assert watch.wait_left(os.getpid(), "0 0x3 0x1 0x2000 0x0 0x0 0x0 0x7ffc 0x7fc0\n") is None  # read
    # poll with 50 ms and with no timeout, epoll_wait forever (x86_64 numbers)
    if os.uname().machine == "x86_64":
        assert watch.wait_left(1, "7 0x0 0x0 0x32 0x0 0x0 0x0 0x1 0x2") == ("poll", 0.05)
        assert watch.wait_left(1, "7 0x0 0x0 0xffffffff 0x0 0x0 0x0 0x1 0x2") == ("poll", None)
        assert watch.wait_left(1, "232 0x4 0x0 0x1 0xffffffff 0x0 0x0 0x1 0x2") == ("epoll_wait", None)


def test_describe_marks_the_main_process_with_a_sleeping_thread_active() -> None:
    gen = _thread_in(lambda stop: stop.wait(700))
    tid = next(gen)
    me = psutil.Process()
    cpu = watch.cpu_snapshot([me])[me.pid]
    wake = watch.thread_snapshot([me])[me.pid]
    d = watch.describe(me, cpu, me.pid, wake)
    assert d["active"] is True and f"thread {tid} sleeps in futex" in d["status"], d
    gen.close()


def test_finishing_counts_a_survivor_stopped_at_a_traced_syscall() -> None:
    """Under strace a tearing-down interpreter spends much of a loaded window in
    tracing stop, waiting for strace to handle its syscall: it is making progress and
    gets its extensions (on main it was judged lingering, PS006, at load 12)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    attach, detach = 16, 17  # PTRACE_ATTACH, PTRACE_DETACH
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        assert libc.ptrace(attach, busy.pid, None, None) == 0, ctypes.get_errno()
        os.waitpid(busy.pid, 0)  # it stops for its tracer and stays stopped
        p = psutil.Process(busy.pid)
        assert p.status() == psutil.STATUS_TRACING_STOP
        assert watch.finishing([p])
        libc.ptrace(detach, busy.pid, None, None)
    finally:
        busy.kill()
        busy.wait()


def test_finishing_is_every_survivor_single_threaded_and_runnable() -> None:
    """Runnable single-threaded survivors get one window extension (slow exits under
    load); a sleeper among them does not."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        b, s = psutil.Process(busy.pid), psutil.Process(sleeper.pid)
        deadline = time.monotonic() + 10
        while b.status() != psutil.STATUS_RUNNING and time.monotonic() < deadline:
            time.sleep(0.05)  # scheduled out for a moment: wait until it is seen running
        assert watch.finishing([b])
        while s.status() != psutil.STATUS_SLEEPING and time.monotonic() < deadline + 20:
            time.sleep(0.05)  # still starting up (the machine may be loaded)
        assert not watch.finishing([s])
        assert not watch.finishing([b, s])
        assert not watch.finishing([])
    finally:
        busy.kill()
        sleeper.kill()
        busy.wait()
        sleeper.wait()


_LINGER_PROBE = r"""
import os, sys, threading
exec(sys.argv[1])  # the drivers' linger loop
if sys.argv[2]:
    exec(sys.argv[2])  # the time pass's sitecustomize: time.sleep shortened
calls = [0]
real, sel = _dt_linger.__defaults__

def counting(path):
    calls[0] += path == "/proc/self/task"
    return real(path)

def hijack(*a):
    raise SystemExit("the candidate's os.listdir ran in the linger loop")

os.listdir = hijack  # patched after the driver started: never called by the loop
_dt_linger.__defaults__ = (counting, sel)
threading.Thread(target=lambda: threading.Event().wait(2.0), daemon=True).start()
_dt_linger()
print(calls[0])
"""


@pytest.mark.parametrize("time_pass", [False, True])
def test_the_drivers_linger_loop_wakes_rarely(time_pass: bool) -> None:
    """The drivers' linger loop runs on the main thread of the very process the window
    judges by its CPU (watch.describe): at one wake-up per 50 ms it cost 0.07-0.11 s
    of CPU under load in a window (more under libfaketime), and scikit-learn's parked
    BLAS threads were judged a lingering process (PS006). It must back off, also when
    the time pass shortens time.sleep, and still return once the other threads end."""
    from sandbox.agent.passes import TIME_SITECUSTOMIZE
    from sandbox.agent.scripts import LINGER

    out = subprocess.run(
        [sys.executable, "-c", _LINGER_PROBE, LINGER, TIME_SITECUSTOMIZE if time_pass else ""],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    wakeups = int(out.stdout)
    # a thread alive for 2 s: 50 ms doubling to 1 s looks 7 times (the old loop: ~40)
    assert 2 <= wakeups <= 10, wakeups


# A child that arms a clock and leaves only a thread parked without a timeout: the
# payload waits for the clock, not in any sleep the thread shows (redteam7: each shape
# vetted CLEAN on main, its process noted idle, no time pass).
_ARMED = {
    "itimer": "signal.signal(signal.SIGALRM, lambda *a: None)\nsignal.setitimer(signal.ITIMER_REAL, SECS)\n",
    "sigtimedwait": (
        "def later():\n"
        "    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])\n"
        "    signal.sigtimedwait([signal.SIGUSR2], SECS)\n"
        "threading.Thread(target=later, daemon=True).start()\n"
    ),
    "timerfd": (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "fd = libc.timerfd_create(1, 0)\n"  # CLOCK_MONOTONIC
        "spec = (ctypes.c_long * 4)(0, 0, SECS, 0)\n"  # it_interval, it_value
        "assert libc.timerfd_settime(fd, 0, spec, None) == 0\n"
        "threading.Thread(target=os.read, args=(fd, 8), daemon=True).start()\n"
    ),
}


@pytest.mark.parametrize("how", sorted(_ARMED))
def test_a_clock_armed_for_later_makes_the_process_active(how: str) -> None:
    secs = 400 + (os.getpid() % 300)
    src = (
        "import os, signal, sys, threading\n"
        + _ARMED[how].replace("SECS", str(secs))
        + "threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
        "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", src], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        time.sleep(0.3)  # let the threads block
        p = psutil.Process(child.pid)
        d = watch.describe(p, watch.cpu_snapshot([p])[p.pid], child.pid, watch.thread_snapshot([p])[p.pid])
        assert d["active"] is True, (how, d)
        said = {"itimer": "SIGALRM", "sigtimedwait": "rt_sigtimedwait", "timerfd": "timerfd"}[how]
        assert said in d["status"], d
    finally:
        child.kill()
        child.wait()


def test_a_plain_interpreter_arms_no_clock() -> None:
    """What a step's own process has of its own: no SIGALRM handler, no timer."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, threading; print('ready', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        assert watch.armed_timers(child.pid) == []
    finally:
        child.kill()
        child.wait()


_SHORTENED = r"""
import signal, sys, time
exec(sys.argv[1])  # the time pass's sitecustomize
start = time.monotonic()
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
assert signal.sigtimedwait([signal.SIGUSR2], 900) is None  # back within seconds
assert time.monotonic() - start < 20
fired = []
signal.signal(signal.SIGALRM, lambda *a: fired.append(time.monotonic()))
start = time.monotonic()
signal.setitimer(signal.ITIMER_REAL, 600)
assert signal.getitimer(signal.ITIMER_REAL)[0] <= 2.5
while not fired and time.monotonic() - start < 20:
    signal.pause()
assert signal.alarm(600) == 0 and signal.alarm(0) <= 2
# the deep profile's caller keeps its own deadline
signal.setitimer.__wrapped__(signal.ITIMER_REAL, 50)
assert signal.getitimer(signal.ITIMER_REAL)[0] > 40
print(round(fired[0] - start, 1) if fired else -1)
"""


def test_the_time_pass_shortens_the_signal_clocks_too() -> None:
    """``setitimer(ITIMER_REAL, 600)``, ``alarm`` and ``sigtimedwait(…, 900)`` under the
    time pass's sitecustomize wake within seconds, as its ``time.sleep`` does: the pass
    runs what such a payload waits for."""
    from sandbox.agent.passes import TIME_SITECUSTOMIZE

    out = subprocess.run(
        [sys.executable, "-c", _SHORTENED, TIME_SITECUSTOMIZE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert 0 <= float(out.stdout) <= 20, out


def _lingering_child(extra: str) -> subprocess.Popen[str]:
    """A driver-like child: *extra*, a thread parked on an Event with no timeout, then
    the drivers' own linger loop on the main thread."""
    from sandbox.agent.scripts import LINGER

    src = (
        "import os, signal, sys, threading, time\n"
        + extra
        + "threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
        + LINGER
        + "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
        "_dt_linger()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", src], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    time.sleep(1.2)  # the threads block and the loop backs off to its longest wait
    return child


def test_threads_parked_for_good_let_the_window_end() -> None:
    """numpy's BLAS pool after each `python -m` step kept the window open 5 s for
    nothing: a futex wait with no timeout that no thread of the process can end."""
    child = _lingering_child("")
    try:
        p = psutil.Process(child.pid)
        first = watch.parked([p], child.pid)
        time.sleep(0.5)
        assert first is not None and first == watch.parked([p], child.pid), first
        # the linger loop is allowed only as the step's own driver's
        assert watch.parked([p], None) is None
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize(
    "extra",
    [
        "threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n",
        "threading.Thread(target=threading.Event().wait, args=(600,), daemon=True).start()\n",
        "threading.Thread(target=lambda: [None for _ in iter(int, 1)], daemon=True).start()\n",
        *(_ARMED[k].replace("SECS", "500") for k in sorted(_ARMED)),
    ],
    ids=["sleep", "timed-event", "busy", *sorted(_ARMED)],
)
def test_a_thread_that_can_still_act_keeps_the_window_open(extra: str) -> None:
    child = _lingering_child(extra)
    try:
        assert watch.parked([psutil.Process(child.pid)], child.pid) is None
    finally:
        child.kill()
        child.wait()
