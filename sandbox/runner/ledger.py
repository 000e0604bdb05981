"""Memory the sandboxes of this host's vets hold, so that a sandbox grown for a big
closure (sandbox/runner/sizing.py) is admitted only beside what the others hold.

HOME is a tmpfs counted toward the container's memory: a grown sandbox really uses
what it is given. One file per live sandbox in a per-user directory holds its memory
limit and its owner (``host:pid:start``, as container labels do); a file whose owner
died (SIGKILL skips every ``finally``) no longer counts and is removed. Under an
flock, a grown run adds its file only while the total stays within the budget, and
otherwise waits for other vets to finish; a run with the profile's limits is always
admitted (it is recorded, so that grown runs see it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sandbox.runner.image import cache_dir
from sandbox.runner.sizing import Room, budget_mb, gib
from sandbox.tempdirs import owner_alive, owner_label


def ledger_dir() -> Path:
    """The per-user directory of the ledger."""
    return cache_dir() / "memory"


class Reservation:
    """One sandbox's entry in the ledger; :meth:`release` removes it (twice is harmless)."""

    def __init__(self, path: Path, mb: int) -> None:
        self.path = path
        self.mb = mb

    def release(self) -> None:
        """Remove the entry."""
        with contextlib.suppress(OSError):
            self.path.unlink()


class Ledger:
    """The memory the live sandboxes of this host's vets hold (see the module docstring)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or ledger_dir()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def held_mb(self) -> int:
        """MiB the live entries hold (dead owners' entries are removed)."""
        with self._locked():
            return self._held()

    def _held(self) -> int:
        total = 0
        for entry in self.root.glob("*.json"):
            try:
                data = json.loads(entry.read_text())
                mb, owner = int(data["mb"]), str(data["owner"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if owner_alive(owner):
                total += mb
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()
        return total

    def reserve(
        self,
        mb: int,
        budget_mb: int | None,
        *,
        wait: float = 0.0,
        poll: float = 2.0,
        on_wait: Callable[[int], None] | None = None,
    ) -> Reservation | None:
        """Record *mb* for this run: at once when *budget_mb* is None, else once the
        live entries plus *mb* fit in *budget_mb*, waiting up to *wait* seconds
        (*on_wait* hears what the others hold, once). None: it never fit."""
        deadline = time.monotonic() + wait
        told = False
        while True:
            with self._locked():
                held = self._held()
                if budget_mb is None or held + mb <= budget_mb:
                    path = self.root / f"{os.getpid()}-{secrets.token_hex(4)}.json"
                    path.write_text(json.dumps({"mb": mb, "owner": owner_label()}))
                    return Reservation(path, mb)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if on_wait is not None and not told:
                on_wait(held)
                told = True
            time.sleep(min(poll, left))


def admit(
    room: Room,
    engine_bytes: int | None,
    *,
    wait: float,
    status: Callable[[str], None],
    ledger: Ledger | None = None,
) -> tuple[Reservation | None, str]:
    """The run's entry in the ledger and "", or None and why it cannot run. A closure
    that fits the profile's limits is recorded at once; a grown sandbox waits up to
    *wait* seconds for room in the host's budget (an engine of unknown size: no entry)."""
    if not room.fits:
        return None, room.cause()
    if engine_bytes is None:
        return None, ""
    ledger = ledger or Ledger()
    budget = budget_mb(engine_bytes)
    if not room.grown or budget is None:
        return ledger.reserve(room.limits.memory_mb, None), ""
    status(room.note())
    mb = room.limits.memory_mb

    def waiting(held: int) -> None:
        status(f"waiting for {gib(mb)} of memory: other vets on this host hold {gib(held)} of {gib(budget)}")

    got = ledger.reserve(mb, budget, wait=wait, on_wait=waiting)
    if got is None:
        return None, (
            f"install phase not run: the staged closure needs a sandbox of {gib(mb)} and other vets on "
            f"this host held too much of its {gib(budget)} for {wait:.0f}s (run it alone)"
        )
    return got, ""
