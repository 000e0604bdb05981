"""Find, describe and kill the candidate's processes (psutil; agent runs as root)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import struct
import time
from typing import Any

import psutil


def candidate_processes(uid: int, exclude: frozenset[int] = frozenset()) -> list[psutil.Process]:
    """Every live (non-zombie) process whose real uid is the candidate's."""
    found = []
    for proc in psutil.process_iter(["uids", "status"]):
        try:
            if proc.pid in exclude or proc.info["uids"] is None:
                continue
            if proc.info["uids"].real != uid or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def cpu_snapshot(procs: list[psutil.Process]) -> dict[int, float]:
    """CPU seconds used so far by each process (all its threads)."""
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


# A survivor that burnt less CPU than this during the whole window was idle
# (a thread pool parked on a condition variable), not working.
IDLE_CPU_SECONDS = 0.05
# A thread blocked in a timed wait that ends this far past the window's close is
# waiting to act later (time.sleep(600), Event.wait(600), a Timer, select with a
# timeout): dormant, not idle. Short waits (a poll loop's 50 ms) are left to the
# wake-up count below.
LONG_WAIT_SECONDS = 1.0
# A thread other than the main one that woke this often during the window is
# polling (a loop of short sleeps waiting for a date). Worker pools parked on a
# condition variable (BLAS/OpenMP threads in futex without a timeout) wake 0 times.
POLL_WAKEUPS = 10

# Syscall numbers of the blocking waits, per architecture:
# name -> (x86_64, aarch64); None where the call does not exist.
_WAITS: dict[str, tuple[int | None, int | None]] = {
    "nanosleep": (35, 101),
    "clock_nanosleep": (230, 115),
    "select": (23, None),
    "pselect6": (270, 72),
    "poll": (7, None),
    "ppoll": (271, 73),
    "epoll_wait": (232, None),
    "epoll_pwait": (281, 22),
    "epoll_pwait2": (441, 441),
    "futex": (202, 98),
    "futex_waitv": (449, 449),
    "rt_sigtimedwait": (128, 137),  # signal.sigtimedwait(sigs, 600): a sleep by another name
}
_ARCH = 1 if os.uname().machine in ("aarch64", "arm64") else 0
WAIT_SYSCALLS = {nums[_ARCH]: name for name, nums in _WAITS.items() if nums[_ARCH] is not None}
CLOCK_REALTIME, TIMER_ABSTIME = 0, 1
FUTEX_WAIT, FUTEX_WAIT_BITSET, FUTEX_CMD_MASK, FUTEX_CLOCK_REALTIME = 0, 9, 0x7F, 0x100


def _read_timespec(pid: int, addr: int) -> float | None:
    """A struct timespec/timeval (two longs) from the process's memory, in seconds
    (tv_nsec and tv_usec differ: the caller scales; here nanoseconds)."""
    if not addr:
        return None
    try:
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as fh:
            fh.seek(addr)
            raw = fh.read(16)
    except (OSError, ValueError, OverflowError):
        return None
    if len(raw) != 16:
        return None
    sec, nsec = struct.unpack("=qq", raw)
    return float(sec) + float(nsec) / 1e9


def _clock_now(clock: int) -> float:
    try:
        return time.clock_gettime(clock)
    except OSError:
        return time.clock_gettime(time.CLOCK_MONOTONIC)


def wait_left(pid: int, syscall_line: str) -> tuple[str, float | None] | None:
    """What a blocked thread waits in, from ``/proc/PID/task/TID/syscall``, and how
    many seconds its timeout has left (None: no timeout, it waits for an event).

    Absolute deadlines (Python's time.sleep is clock_nanosleep TIMER_ABSTIME, its
    locks futex WAIT_BITSET) give the exact time left; relative ones give what was
    asked. Returns None when the thread is not in a known wait (running, other call).
    """
    parts = syscall_line.split()
    if len(parts) < 7 or not parts[0].lstrip("-").isdigit():
        return None
    name = WAIT_SYSCALLS.get(int(parts[0]))
    if name is None:
        return None
    args = [int(a, 16) for a in parts[1:7]]
    if name in ("nanosleep",):
        return name, _read_timespec(pid, args[0])
    if name == "clock_nanosleep":
        ts = _read_timespec(pid, args[2])
        if ts is not None and args[1] & TIMER_ABSTIME:
            ts -= _clock_now(args[0])
        return name, ts
    if name in ("poll", "epoll_wait", "epoll_pwait"):
        idx = 2 if name == "poll" else 3
        ms = struct.unpack("=i", struct.pack("=I", args[idx] & 0xFFFFFFFF))[0]
        return name, None if ms < 0 else ms / 1000
    if name in ("ppoll", "epoll_pwait2"):
        return name, _read_timespec(pid, args[2] if name == "ppoll" else args[3])
    if name == "pselect6":
        return name, _read_timespec(pid, args[4])
    if name == "select":
        tv = _read_timespec(pid, args[4])  # timeval: microseconds in the second long
        return name, None if tv is None else int(tv) + (tv - int(tv)) * 1e3
    if name == "futex":
        cmd = args[1] & FUTEX_CMD_MASK
        if cmd not in (FUTEX_WAIT, FUTEX_WAIT_BITSET):
            return name, None
        ts = _read_timespec(pid, args[3])
        if ts is not None and cmd == FUTEX_WAIT_BITSET:
            clock = CLOCK_REALTIME if args[1] & FUTEX_CLOCK_REALTIME else time.CLOCK_MONOTONIC
            ts -= _clock_now(clock)
        return name, ts
    if name == "rt_sigtimedwait":
        return name, _read_timespec(pid, args[2])  # relative
    if name == "futex_waitv":
        ts = _read_timespec(pid, args[3])
        return name, None if ts is None else ts - _clock_now(args[4])
    return name, None


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""


def _wakeups(status: str) -> int:
    for line in status.splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return 0


def thread_snapshot(procs: list[psutil.Process]) -> dict[int, dict[int, int]]:
    """Voluntary context switches (wake-ups from a sleep) of every thread, by pid and tid."""
    out: dict[int, dict[int, int]] = {}
    for p in procs:
        try:
            tids = os.listdir(f"/proc/{p.pid}/task")
        except OSError:
            continue
        out[p.pid] = {int(t): _wakeups(_read(f"/proc/{p.pid}/task/{t}/status")) for t in tids if t.isdigit()}
    return out


def dormant_threads(pid: int, wakeups_before: dict[int, int] | None = None) -> list[str]:
    """Why threads of *pid* are waiting to act rather than idle, one line per thread.

    A thread counts when it sleeps with a timeout past the window (``LONG_WAIT_SECONDS``)
    or, except the main thread (the driver's own linger loop), woke ``POLL_WAKEUPS``
    times during the window. A thread parked without a timeout is idle.
    """
    reasons: list[str] = []
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if t.isdigit())
    except OSError:
        return reasons
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}/"
        wait = wait_left(pid, _read(base + "syscall"))
        if wait is not None and wait[1] is not None and wait[1] >= LONG_WAIT_SECONDS:
            reasons.append(f"thread {tid} sleeps in {wait[0]}, {wait[1]:.0f}s left")
            continue
        if tid != pid and wakeups_before is not None:
            woke = _wakeups(_read(base + "status")) - wakeups_before.get(tid, 0)
            if woke >= POLL_WAKEUPS:
                what = f" in {wait[0]}" if wait else ""
                reasons.append(f"thread {tid} woke {woke} times during the window{what}")
    return reasons


# The driver's own linger loop (scripts.LINGER) waits at most 0.5 s at a time.
LINGER_WAIT_SECONDS = 0.6
_LINGER_WAITS = frozenset({"select", "pselect6"})


def _io_uring(pid: int) -> bool:
    """Whether *pid* holds an io_uring (whose queued timeouts and futex wakes no
    ``/proc`` wait or timer shows)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds[:4096]:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[io_uring]":
                return True
    return False


def parked(procs: list[psutil.Process], linger_pid: int | None = None) -> dict[tuple[int, int], int] | None:
    """The wake-up count of every thread when nothing in *procs* can run again without
    an event from outside them, else None: every thread asleep in a futex wait with no
    timeout (a BLAS/OpenMP pool, ``Event().wait()``), no clock armed (:func:`armed_timers`),
    no io_uring; zombies count as parked. Only the main thread of *linger_pid* (the
    step's driver, done with the candidate's work and in its own linger loop) may sleep
    in a short ``select``. A futex no thread of these processes can wake stays parked
    for ever: two equal results taken apart (no thread woke in between) let the window
    end early instead of waiting it out."""
    counts: dict[tuple[int, int], int] = {}
    for p in procs:
        pid = p.pid
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue  # gone: nothing left to run
        if armed_timers(pid) or _io_uring(pid):
            return None
        try:
            tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if t.isdigit())
        except OSError:
            continue
        for tid in tids:
            base = f"/proc/{pid}/task/{tid}/"
            status = _read(base + "status")
            if not status:
                continue  # the thread ended
            if "\nState:\tS" not in status:
                return None  # running, traced, in I/O: not parked
            line = _read(base + "syscall")
            wait = wait_left(pid, line)
            if wait is None:
                return None
            if tid == pid == linger_pid and wait[0] in _LINGER_WAITS:
                if wait[1] is None or wait[1] > LINGER_WAIT_SECONDS:
                    return None
                continue  # our loop: its wake-ups are not the candidate's
            # a futex wait whose timeout pointer is NULL (not merely unreadable)
            if wait != ("futex", None) or line.split()[4:5] not in (["0x0"], ["0"]):
                return None
            counts[(pid, tid)] = _wakeups(status)
    return counts


SIGALRM = 14
_TIMERFD_VALUE = re.compile(r"^it_value:\s*\((\d+),\s*(\d+)\)", re.M)


def armed_timers(pid: int) -> list[str]:
    """Clocks a process set to wake it later without any thread waiting on them: a
    ``SIGALRM`` handler (``signal.setitimer``/``alarm`` then deliver the payload to the
    main thread, its threads all parked without a timeout), POSIX timers
    (``timer_create``), and timerfds armed to fire past :data:`LONG_WAIT_SECONDS`
    (a thread blocked in ``read`` on one is not in a known wait).  One line each."""
    reasons: list[str] = []
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith("SigCgt:"):
            with contextlib.suppress(ValueError, IndexError):
                if int(line.split()[1], 16) & (1 << (SIGALRM - 1)):
                    reasons.append("catches SIGALRM (an alarm or interval timer may be armed)")
    posix = _read(f"/proc/{pid}/timers").count("ID:")
    if posix:
        reasons.append(f"{posix} POSIX timer(s)")
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        fds = []
    for fd in fds[:4096]:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[timerfd]":
                continue
        except OSError:
            continue
        m = _TIMERFD_VALUE.search(_read(f"/proc/{pid}/fdinfo/{fd}"))
        left = int(m.group(1)) + int(m.group(2)) / 1e9 if m else 0.0
        if left >= LONG_WAIT_SECONDS:
            reasons.append(f"timerfd {fd} fires in {left:.0f}s")
    return reasons


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds used so far by each thread of *pid* (``/proc/PID/task/TID/stat``)."""
    out: dict[int, float] = {}
    try:
        tids = [t for t in os.listdir(f"/proc/{pid}/task") if t.isdigit()]
    except OSError:
        return out
    for tid in tids:
        fields = _read(f"/proc/{pid}/task/{tid}/stat").rsplit(")", 1)[-1].split()
        if len(fields) > 12:
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return out


def busy_threads(pid: int, before: dict[int, float]) -> list[str]:
    """The threads of *pid* that used CPU since *before* (``thread_cpu``), busiest first."""
    used = sorted(((cpu - before.get(tid, 0.0), tid) for tid, cpu in thread_cpu(pid).items()), reverse=True)
    return [f"thread {tid} {cpu:.2f}s CPU" for cpu, tid in used if cpu >= 0.01]


def describe(
    proc: psutil.Process,
    cpu_before: float | None = None,
    main_pid: int | None = None,
    wakeups_before: dict[int, int] | None = None,
    threads_before: dict[int, float] | None = None,
) -> dict[str, Any]:
    """A JSON-ready description of a surviving process.

    ``active`` is False only for the step's own main process when all it has left
    are idle threads: no CPU used since *cpu_before* (the window once settled, see
    ``protocol.CPU_SETTLE_SECONDS``), no thread sleeping until later or polling
    (:func:`dormant_threads`) and no timer armed (:func:`armed_timers`; the reasons
    are appended to ``status``, and so are the
    threads that used CPU since *threads_before*). Any other process (a daemon, a
    forked child) is active.
    """
    try:
        with proc.oneshot():
            t = proc.cpu_times()
            cpu = t.user + t.system
            delta = cpu - cpu_before if cpu_before is not None else cpu
            extra = proc.pid != main_pid
            status: str = proc.status()
            dormant = dormant_threads(proc.pid, wakeups_before) + armed_timers(proc.pid)
            busy = (
                busy_threads(proc.pid, threads_before) if delta >= IDLE_CPU_SECONDS and threads_before else []
            )
            if dormant or busy:
                status = f"{status}; " + "; ".join(dormant[:8] + busy[:4])
            return {
                "pid": proc.pid,
                "ppid": proc.ppid(),
                "argv": proc.cmdline()[:64],
                "threads": proc.num_threads(),
                "status": status,
                "cpu": round(delta, 3),
                "active": extra or delta >= IDLE_CPU_SECONDS or bool(dormant),
            }
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return {
            "pid": proc.pid,
            "ppid": None,
            "argv": [],
            "threads": 0,
            "status": "gone",
            "cpu": 0.0,
            "active": False,
        }


# Window extensions for survivors that look like interpreters still exiting.
FINISH_EXTENSIONS = 4
# States of a process that is getting on with it: on a CPU or queued for one, stopped
# at a traced syscall while strace (itself short of CPU under load) handles it, or in
# uninterruptible I/O (paging in what it frees).  A sleeper is in none of them.
_MAKING_PROGRESS = frozenset({psutil.STATUS_RUNNING, psutil.STATUS_TRACING_STOP, psutil.STATUS_DISK_SLEEP})


def finishing(survivors: list[psutil.Process]) -> bool:
    """Every survivor is single-threaded and making progress (runnable, or stopped at a
    traced syscall) with no thread waiting to act
    later: interpreters tearing down after their work (freeing thousands of modules
    takes seconds when the CPU is shared).  The window is extended (up to
    :data:`FINISH_EXTENSIONS` times) while this holds; whatever they do meanwhile is
    recorded like the rest, and anything still alive after that is judged as before."""
    if not survivors:
        return False
    try:
        return all(
            p.num_threads() == 1 and p.status() in _MAKING_PROGRESS and not dormant_threads(p.pid)
            for p in survivors
        )
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _kill_as(uid: int, gid: int, sweepers: list[int] | None = None) -> bool:
    """kill(-1, SIGKILL) from a child running as the candidate uid.

    The kernel delivers it to every process that uid may signal in one pass, which
    beats a fork bomb that outruns a list-then-kill loop. Needs one free pid.
    The child's pid goes to *sweepers*: the host-side eBPF recorder sees it (it runs
    as the candidate's uid) and must tell the agent's sweep from the candidate's
    ``kill(-1)``; strace never traces it.
    """
    try:
        child = os.fork()
    except OSError:
        return False
    if child == 0:  # pragma: no cover - runs in the forked child
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            for _ in range(3):
                with contextlib.suppress(OSError):
                    os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    if sweepers is not None:
        sweepers.append(child)
    os.waitpid(child, 0)
    return True


def kill_all(uid: int, gid: int, deadline: float = 5.0, sweepers: list[int] | None = None) -> int:
    """Kill every candidate process; returns how many rounds it took (0 = none alive).
    The pids of the sweeping children go to *sweepers* (see :func:`_kill_as`)."""
    end = time.monotonic() + deadline
    rounds = 0
    while time.monotonic() < end:
        alive = candidate_processes(uid)
        if not alive:
            return rounds
        rounds += 1
        if not _kill_as(uid, gid, sweepers):
            # No pid left to fork (pids limit): stop them first so they cannot
            # respawn, then kill; root holds CAP_KILL for this path.
            for proc in alive:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    proc.send_signal(signal.SIGSTOP)
            for proc in alive:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    proc.send_signal(signal.SIGKILL)
        time.sleep(0.02)
    return rounds
