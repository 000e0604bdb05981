"""The memory ledger (sandbox/runner/ledger.py): a grown sandbox is admitted only
beside what the other vets' sandboxes on this host hold; dead owners do not count."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sandbox.runner import sizing
from sandbox.runner.interface import Limits
from sandbox.runner.ledger import Ledger, admit

GIB = 1 << 30


def test_entries_add_up_and_release_removes_them(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    a = ledger.reserve(3072, None)
    b = ledger.reserve(5000, 10000)
    assert a is not None and b is not None and ledger.held_mb() == 8072
    assert ledger.reserve(3000, 10000) is None  # 8072 + 3000 > 10000, no wait
    b.release()
    b.release()  # twice is harmless
    assert ledger.held_mb() == 3072
    assert ledger.reserve(3000, 10000) is not None


def test_an_entry_of_a_dead_owner_does_not_count(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    (tmp_path / f"{pid}-x.json").write_text(json.dumps({"mb": 9000, "owner": f"nohost:{pid}:1.0"}))
    (tmp_path / "junk.json").write_text("{not json")
    ledger = Ledger(tmp_path)
    assert ledger.held_mb() == 0
    assert not (tmp_path / f"{pid}-x.json").exists()  # swept
    assert ledger.reserve(9000, 10000) is not None


def test_a_grown_sandbox_waits_for_room_then_gives_up_with_a_cause(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    engine = 24 * GIB
    base = Limits()
    room = sizing.room_for(base, 9000, sizing.memory_ceiling_mb(base, engine))
    assert room.fits and room.grown
    other = ledger.reserve(room.limits.memory_mb, None)  # another grown vet runs
    heard: list[str] = []
    entry, cannot = admit(room, engine, wait=0.3, status=heard.append, ledger=ledger)
    assert entry is None and "install phase not run" in cannot and "run it alone" in cannot
    assert any(h.startswith("waiting for ") for h in heard), heard
    assert other is not None
    other.release()
    entry, cannot = admit(room, engine, wait=0.3, status=heard.append, ledger=ledger)
    assert entry is not None and not cannot and ledger.held_mb() == room.limits.memory_mb


def test_a_run_with_the_profiles_limits_is_recorded_without_waiting(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    base = Limits()
    huge = ledger.reserve(100_000, None)
    room = sizing.room_for(base, 1000, sizing.memory_ceiling_mb(base, 24 * GIB))
    entry, cannot = admit(room, 24 * GIB, wait=0.0, status=lambda s: None, ledger=ledger)
    assert entry is not None and not cannot and huge is not None
    assert ledger.held_mb() == 100_000 + base.memory_mb


def test_a_closure_that_cannot_fit_is_refused_before_the_ledger(tmp_path: Path) -> None:
    base = Limits()
    room = sizing.room_for(base, 40_000, sizing.memory_ceiling_mb(base, 24 * GIB))
    entry, cannot = admit(room, 24 * GIB, wait=0.0, status=lambda s: None, ledger=Ledger(tmp_path))
    assert entry is None and cannot == room.cause()
    assert not list(tmp_path.glob("*.json"))
