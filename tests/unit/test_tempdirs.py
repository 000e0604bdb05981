"""Scratch directories survive no SIGKILL: every kind a run makes (the run's own, the
fetch's, an adaptive round's, the gate's) is marked before use and swept once its
owner is dead, while a live owner's directory and unmarked ones are left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sandbox.tempdirs import OWNER_FILE, owned_tempdir, sweep_temp

_KILLED = """
import os, signal, sys
from pathlib import Path
from sandbox.tempdirs import owned_tempdir
root = Path(sys.argv[1])
for kind in ("run", "fetch", "round", "gate"):
    d = owned_tempdir(kind, root)
    (d / "half-downloaded.whl").write_bytes(b"x" * 100)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_dirs_of_a_killed_process_are_swept(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", _KILLED, str(tmp_path)], check=False)
    assert proc.returncode == -signal.SIGKILL
    left = sorted(p.name.split("-")[1] for p in tmp_path.iterdir())
    assert left == ["fetch", "gate", "round", "run"]
    removed = sweep_temp(tmp_path)
    assert len(removed) == 4 and all(r.startswith("temp dir ") for r in removed)
    assert list(tmp_path.iterdir()) == []


def test_live_owner_and_unmarked_dirs_are_kept(tmp_path: Path) -> None:
    mine = owned_tempdir("fetch", tmp_path)
    assert (mine / OWNER_FILE).read_text().split(":")[1] == str(os.getpid())
    stranger = tmp_path / "pkgsandbox-fetch-notours"
    stranger.mkdir()
    assert sweep_temp(tmp_path) == []
    assert mine.is_dir() and stranger.is_dir()


def test_a_marker_read_half_written_is_never_a_dead_owner(tmp_path: Path) -> None:
    # a concurrent sweep can read the marker between its creation and its content:
    # an empty or cut marker was read as a dead owner, and a live run's fetch dir
    # vanished under a parallel gate (FileNotFoundError on its stubs dir)
    for text in ("", "host:12"):
        d = tmp_path / f"pkgsandbox-fetch-{len(text)}"
        d.mkdir()
        (d / OWNER_FILE).write_text(text)
    assert sweep_temp(tmp_path) == []
    assert len(list(tmp_path.iterdir())) == 2
    # and the marker is written whole at once (no temp file left beside it)
    mine = owned_tempdir("run", tmp_path)
    assert sorted(p.name for p in mine.iterdir()) == [OWNER_FILE]


def test_a_live_owner_stays_alive_when_the_wall_clock_moves(monkeypatch: object) -> None:
    # psutil's create_time is the boot time (wall clock minus uptime, read anew) plus the
    # start ticks: a clock step or slew across a second between the run that labelled
    # its container and the run that swept made a live owner look dead; the sweep then
    # removed the live run's container (its agent exited 137, no report) in CI
    import psutil._pslinux as pslinux
    import pytest

    from sandbox.tempdirs import owner_alive, owner_label

    label = owner_label()
    assert owner_alive(label)
    mp = pytest.MonkeyPatch()
    try:
        real = pslinux.boot_time
        mp.setattr(pslinux, "boot_time", lambda: real() + 1.0)  # the clock stepped a second
        assert owner_alive(label)
    finally:
        mp.undo()
    # a dead pid is dead, and a reused pid (another start) is not the owner
    host, pid, start = label.rsplit(":", 2)
    assert not owner_alive(f"{host}:{pid}:t{int(start[1:]) + 1}")
    proc = subprocess.run(
        [sys.executable, "-c", "from sandbox.tempdirs import owner_label; print(owner_label())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert not owner_alive(proc.stdout.strip())
