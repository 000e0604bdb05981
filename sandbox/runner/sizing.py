"""Room for the install: HOME's tmpfs (the venv lives there) and the memory limit that
must hold it, sized from what the host staged.

tmpfs pages count toward the container's memory limit, so HOME cannot simply be
large: the default limits (HOME 2 GiB in 3 GiB) hold almost every closure, and a
closure that needs more gets a bigger HOME *and* the memory to hold it, within a
ceiling that keeps the host safe: at most :data:`MAX_MEMORY_MB`, and no more than
leaves room for a second vet within :data:`HOST_SHARE` of the engine's memory; the
ledger (sandbox/runner/ledger.py) admits a grown sandbox only beside what the
other vets' sandboxes hold, so two grown ones wait for each other.

The size is known before anything is installed: a wheel's members declare their
uncompressed sizes in its zip central directory (read, never extracted), which is
what pip writes, plus the bytecode it compiles; an sdist's built size is unknown
until built, so its compressed size is scaled. A closure that cannot fit under the
ceiling is not run: the run ends incomplete with the space it needs (:meth:`Room.cause`).
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterable
from pathlib import Path

from sandbox.fetch import StagedSet
from sandbox.models import Frozen, Phase
from sandbox.runner.interface import Limits, RunOptions

MIB = 1 << 20
PAGE = 4096  # tmpfs stores each file in whole pages
# an sdist installs roughly this many bytes per compressed byte (its build happens in /tmp)
SDIST_FACTOR = 4.0
# the venv itself, caches written at import, what adaptive rounds add
HOME_SPARE_MB = 768
# hard ceiling per container, whatever the engine has (profile: limits.max_memory_mb)
MAX_MEMORY_MB = 16384
# of the engine's memory, what all sandboxes of this host's vets may hold together
# (sandbox/runner/ledger.py admits a grown one only within it): the rest is the host's
HOST_SHARE = 0.75
# memory for processes beside a grown HOME, as a share of it: sglang's imports (torch,
# CUDA libraries) were OOM-killed with 1.4 GiB beside 10.8 GiB of HOME
PROCESS_SHARE = 0.25
# install seconds per GiB beyond the profile's HOME: pip under strace wrote ~1 GiB a
# minute on a loaded 2-core host (sglang's 10.8 GiB overran the default 600 s)
INSTALL_SECONDS_PER_GIB = 90.0
# strace logs every write with up to 1 KiB of its bytes (escaped): pip writes in
# 64 KiB chunks, so the trace grows by about 6 % of what is installed
TRACE_SHARE = 0.08


def installed_bytes(path: Path) -> int:
    """What installing the staged file *path* writes to HOME's tmpfs, estimated: each
    member of a wheel in whole pages, and the bytecode pip compiles for each ``.py``
    (about its size); any other file (an sdist) scaled from its size."""
    size = path.stat().st_size
    if path.suffix == ".whl":
        try:
            with zipfile.ZipFile(path) as zf:
                members = [i for i in zf.infolist() if not i.is_dir()]
        except (OSError, zipfile.BadZipFile, ValueError):
            members = []  # the fetch validated it; an unreadable one is estimated like an sdist
        if members:
            pages = sum(-(-i.file_size // PAGE) * (2 if i.filename.endswith(".py") else 1) for i in members)
            return pages * PAGE
    return math.ceil(size * SDIST_FACTOR)


def home_needed_mb(paths: Iterable[Path]) -> int:
    """HOME (MiB) an install of the staged files *paths* needs, spare included."""
    return HOME_SPARE_MB + math.ceil(sum(installed_bytes(p) for p in paths) / MIB)


# pip builds an sdist in /tmp: its unpacked tree, the build's copy of it and the
# wheel, about this many bytes per compressed byte (a 430 MB sdist of Java jars ran
# the default 512 MiB /tmp out of space: ENOSPC, a benign top-600 project suspicious)
BUILD_FACTOR = 3.5
TMP_SPARE_MB = 256


def tmp_needed_mb(paths: Iterable[Path]) -> int:
    """/tmp (MiB) building the staged sdists among *paths* needs, spare included (pip
    builds them one at a time, but a wheel cache of each may stay: all counted)."""
    sdists = [p.stat().st_size for p in paths if p.suffix != ".whl"]
    return TMP_SPARE_MB + math.ceil(sum(sdists) * BUILD_FACTOR / MIB)


def budget_mb(engine_bytes: int | None) -> int | None:
    """What all sandboxes of this host's vets may hold together (None: engine unknown)."""
    return int(engine_bytes * HOST_SHARE / MIB) if engine_bytes else None


def memory_ceiling_mb(limits: Limits, engine_bytes: int | None) -> int:
    """The most memory one container may get here: the profile's ceiling, and room
    beside it within the host's budget for one more vet with the profile's limits
    (two jobs); never below the profile's own limit (an engine of unknown size gets
    no growth). The ledger keeps two grown sandboxes from running at once."""
    budget = budget_mb(engine_bytes)
    if budget is None:
        return limits.memory_mb
    return max(limits.memory_mb, min(limits.max_memory_mb, budget - limits.memory_mb))


class Room(Frozen):
    """The limits a run gets for its staged closure, and whether the closure fits."""

    needed_mb: int  # HOME the install needs (estimate)
    ceiling_mb: int  # the most memory one container may get
    base: Limits  # the profile's limits
    limits: Limits  # what the container gets (*base* when the closure fits in it)
    fits: bool

    @property
    def grown(self) -> bool:
        """Whether the container gets more than the profile's limits."""
        return self.limits != self.base

    def options(self, run: RunOptions) -> RunOptions:
        """*run* with this room's limits, and an install timeout grown with HOME
        (writing gigabytes under the recorder takes minutes)."""
        if not self.grown:
            return run
        extra = (self.limits.home_mb - self.base.home_mb) / 1024 * INSTALL_SECONDS_PER_GIB
        timeouts = {**run.timeouts, Phase.INSTALL: run.timeouts[Phase.INSTALL] + extra}
        return run.model_copy(update={"limits": self.limits, "timeouts": timeouts})

    def note(self) -> str:
        """A line for the report: what the closure needs and what the sandbox got."""
        return (
            f"sandbox sized for the staged closure: about {gib(self.needed_mb)} needed in HOME; "
            f"HOME {gib(self.limits.home_mb)}, /tmp {gib(self.limits.tmp_mb)}, "
            f"memory {gib(self.limits.memory_mb)} "
            f"(ceiling {gib(self.ceiling_mb)}), install time grown with it"
        )

    def cause(self) -> str:
        """Why a closure that does not fit was not installed (an incomplete reason)."""
        return (
            f"install phase not run: out of space in the sandbox: the staged closure needs about "
            f"{gib(self.needed_mb)} in HOME, more than the {gib(self.ceiling_mb)} memory ceiling of one "
            f"sandbox here holds (HOME is a tmpfs; raise limits.max_memory_mb on a larger host)"
        )


def room_for(base: Limits, needed_mb: int, ceiling_mb: int, tmp_mb: int = 0) -> Room:
    """The limits for a closure that needs *needed_mb* of HOME and *tmp_mb* of /tmp (its
    sdists' builds): *base* when it fits in them; else HOME and /tmp grown to the need,
    trace storage grown with HOME, and memory for all of it (tmpfs pages are memory)
    plus room for the processes (at least what *base* leaves besides HOME, and a share
    of HOME: a big closure's imports load big native libraries)."""
    if needed_mb <= base.home_mb and tmp_mb <= base.tmp_mb:
        return Room(needed_mb=needed_mb, ceiling_mb=ceiling_mb, base=base, limits=base, fits=True)
    home = max(needed_mb, base.home_mb)
    tmp = max(tmp_mb, base.tmp_mb)
    trace_extra = math.ceil((home - base.home_mb) * TRACE_SHARE)
    processes = max(base.memory_mb - base.home_mb, math.ceil(home * PROCESS_SHARE))
    grown = base.model_copy(
        update={
            "home_mb": home,
            "tmp_mb": tmp,
            "memory_mb": home + (tmp - base.tmp_mb) + trace_extra + processes,
            "trace_mb": base.trace_mb + trace_extra,
        }
    )
    fits = grown.memory_mb <= ceiling_mb
    return Room(
        needed_mb=needed_mb, ceiling_mb=ceiling_mb, base=base, limits=grown if fits else base, fits=fits
    )


def gib(mb: int) -> str:
    """*mb* MiB in GiB, for messages."""
    return f"{mb / 1024:.1f} GiB"


def staged_room(staged: StagedSet, artifacts: Path, base: Limits, engine_bytes: int | None) -> Room:
    """The :class:`Room` for the staged set whose files are in *artifacts*."""
    paths = [p for p in (artifacts / a.filename for a in staged.artifacts) if p.is_file()]
    return room_for(base, home_needed_mb(paths), memory_ceiling_mb(base, engine_bytes), tmp_needed_mb(paths))
