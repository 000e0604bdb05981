"""Find, describe and kill the candidate's processes (psutil; agent runs as root)."""

from __future__ import annotations

import contextlib
import os
import signal
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


def describe(
    proc: psutil.Process, cpu_before: float | None = None, main_pid: int | None = None
) -> dict[str, Any]:
    """A JSON-ready description of a surviving process.

    ``active`` is False only for the step's own main process when all it has left
    are idle threads; any other process (a daemon, a forked child) is active.
    """
    try:
        with proc.oneshot():
            t = proc.cpu_times()
            cpu = t.user + t.system
            delta = cpu - cpu_before if cpu_before is not None else cpu
            extra = proc.pid != main_pid
            return {
                "pid": proc.pid,
                "ppid": proc.ppid(),
                "argv": proc.cmdline()[:64],
                "threads": proc.num_threads(),
                "status": proc.status(),
                "cpu": round(delta, 3),
                "active": extra or delta >= IDLE_CPU_SECONDS,
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


def _kill_as(uid: int, gid: int) -> bool:
    """kill(-1, SIGKILL) from a child running as the candidate uid.

    The kernel delivers it to every process that uid may signal in one pass, which
    beats a fork bomb that outruns a list-then-kill loop. Needs one free pid.
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
    os.waitpid(child, 0)
    return True


def kill_all(uid: int, gid: int, deadline: float = 5.0) -> int:
    """Kill every candidate process; returns how many rounds it took (0 = none alive)."""
    end = time.monotonic() + deadline
    rounds = 0
    while time.monotonic() < end:
        alive = candidate_processes(uid)
        if not alive:
            return rounds
        rounds += 1
        if not _kill_as(uid, gid):
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
