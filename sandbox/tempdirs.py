"""Host-side scratch directories that a later run can clean up after a SIGKILL.

Every ``pkgsandbox-*`` (or neutral ``tmp*``) directory a run makes in the temp dir carries an owner marker
(``host:pid:start`` of the process); :func:`sweep_temp` (called by every vet and by
``pkgsandbox sweep``) removes those whose owner is dead. A directory without the marker
is never touched: it may be someone else's.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

OWNER_FILE = ".owner"
PREFIX = "pkgsandbox-"


def owner_label() -> str:
    """``host:pid:tSTART`` of this process (its start in clock ticks since boot), so a
    later run can tell whether we are dead."""
    return f"{socket.gethostname()}:{os.getpid()}:t{_start_ticks(os.getpid())}"


def _start_ticks(pid: int) -> int:
    """When *pid* started, in clock ticks since boot (``/proc/PID/stat`` field 22): the
    kernel's own count, untouched by the wall clock. A start time in wall-clock seconds
    (psutil's create_time: boot time from ``/proc/stat``'s ``btime`` plus those ticks)
    moved with the clock: ``btime`` is the wall clock minus uptime, read per process, so
    a clock step or slew across a second made a live owner's start differ by a second
    in another process, which then swept the live run's container (its agent died with
    137, no report) and its scratch dirs."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return -1


def owner_alive(owner: str) -> bool:
    """Whether the process named by an :func:`owner_label` still runs (another
    machine's owner counts as alive: leave it to its deadline)."""
    try:
        host, pid_s, start_s = owner.rsplit(":", 2)
        pid = int(pid_s)
        ticks = int(start_s[1:]) if start_s.startswith("t") else None
        legacy = None if ticks is not None else int(start_s)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True
    if ticks is not None:
        return ticks >= 0 and _start_ticks(pid) == ticks
    # a label of an older version: wall-clock seconds, compared loosely (a reused pid
    # started within the same two seconds is not a case worth keeping a leak for)
    try:
        import psutil

        return abs(psutil.Process(pid).create_time() - float(legacy or 0)) <= 2.0
    except Exception:
        return False


def mark_owner(workdir: Path) -> None:
    """Record which process owns a staging directory, for :func:`sweep_temp`: written
    aside and renamed, so a concurrent sweep never reads it empty (an empty marker
    read as a dead owner removed a live run's fetch directory under a parallel gate)."""
    tmp = workdir / f"{OWNER_FILE}.tmp"
    tmp.write_text(owner_label())
    tmp.replace(workdir / OWNER_FILE)


# A directory the sandbox shows the candidate (the staging bind mount's source is in
# /proc/self/mountinfo) is named as Python's tempfile names one: nothing naming a
# sandbox or this tool. It is swept like the others (the owner marker says it is ours).
NEUTRAL_PREFIX = "tmp"


def owned_tempdir(kind: str, root: Path | None = None, *, neutral: bool = False) -> Path:
    """A new ``pkgsandbox-KIND-*`` directory (``tmp*`` when *neutral*) under *root* (the
    temp dir), marked as ours before anything is put in it, so a SIGKILL at any later
    point leaves it sweepable."""
    path = Path(tempfile.mkdtemp(prefix=NEUTRAL_PREFIX if neutral else f"{PREFIX}{kind}-", dir=root))
    mark_owner(path)
    return path


def owned_dirs(base: Path) -> list[Path]:
    """The directories under *base* that this code may have made (by name; the owner
    marker decides whether they are ours)."""
    return [*base.glob(f"{PREFIX}*"), *base.glob(f"{NEUTRAL_PREFIX}*")]


def sweep_temp(root: Path | None = None) -> list[str]:
    """Remove ``pkgsandbox-*`` (and neutral ``tmp*``) directories with our owner marker
    whose owner process is dead (a run killed with SIGKILL cannot clean up after itself)."""
    base = root or Path(tempfile.gettempdir())
    removed = []
    for d in owned_dirs(base):
        marker = d / OWNER_FILE
        try:
            if not d.is_dir() or d.is_symlink() or d.stat().st_uid != os.getuid() or not marker.is_file():
                continue
            owner = marker.read_text().strip()
            if owner.count(":") < 2 or owner_alive(owner):
                continue  # not a marker this code wrote whole: never someone else's to remove
        except OSError:
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(f"temp dir {d}")
    return removed
