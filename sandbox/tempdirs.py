"""Host-side scratch directories that a later run can clean up after a SIGKILL.

Every ``pkgsandbox-*`` directory a run makes in the temp dir carries an owner marker
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
    """``host:pid:start`` of this process, so a later run can tell whether we are dead."""
    return f"{socket.gethostname()}:{os.getpid()}:{int(_proc_start(os.getpid()))}"


def _proc_start(pid: int) -> float:
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:
        return 0.0


def owner_alive(owner: str) -> bool:
    """Whether the process named by an :func:`owner_label` still runs (another
    machine's owner counts as alive: leave it to its deadline)."""
    try:
        host, pid_s, start_s = owner.rsplit(":", 2)
        pid, start = int(pid_s), int(start_s)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True
    try:
        import psutil

        return int(psutil.Process(pid).create_time()) == start
    except Exception:
        return False


def mark_owner(workdir: Path) -> None:
    """Record which process owns a staging directory, for :func:`sweep_temp`: written
    aside and renamed, so a concurrent sweep never reads it empty (an empty marker
    read as a dead owner removed a live run's fetch directory under a parallel gate)."""
    tmp = workdir / f"{OWNER_FILE}.tmp"
    tmp.write_text(owner_label())
    tmp.replace(workdir / OWNER_FILE)


def owned_tempdir(kind: str, root: Path | None = None) -> Path:
    """A new ``pkgsandbox-KIND-*`` directory under *root* (the temp dir), marked as ours
    before anything is put in it, so a SIGKILL at any later point leaves it sweepable."""
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-", dir=root))
    mark_owner(path)
    return path


def sweep_temp(root: Path | None = None) -> list[str]:
    """Remove ``pkgsandbox-*`` directories whose owner process is dead (a run killed
    with SIGKILL cannot clean up after itself)."""
    base = root or Path(tempfile.gettempdir())
    removed = []
    for d in base.glob(f"{PREFIX}*"):
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
