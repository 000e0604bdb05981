"""Throughput of the strace parser on the real ``pip install requests`` trace.

Prints lines per second; it is a script, not a test.  The trace (~8.6k lines) is
repeated to ~200k lines and parsed as one text, best of ``--rounds`` runs::

    .venv/bin/python benchmarks/bench_parser.py [--lines 200000] [--rounds 5] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import gzip
import pstats
import time
from pathlib import Path

from sandbox.models import Phase
from sandbox.trace.strace import parse_strace

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "strace"
TRACE = DATA / "pip-install-requests.strace.gz"


def main() -> None:
    """Parse the repeated trace and print the best lines/s."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=200_000, help="approximate size of the parsed text")
    ap.add_argument("--rounds", type=int, default=5, help="runs; the best is reported")
    ap.add_argument("--profile", action="store_true", help="print a cProfile summary of one run")
    opts = ap.parse_args()

    one = gzip.decompress(TRACE.read_bytes()).decode("utf-8", "replace")
    per_copy = one.count("\n")
    copies = max(1, round(opts.lines / per_copy))
    text = one * copies
    lines = per_copy * copies

    if opts.profile:
        prof = cProfile.Profile()
        prof.enable()
        parse_strace(text, Phase.INSTALL)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)

    best = float("inf")
    summary = ""
    for _ in range(opts.rounds):
        gc.collect()  # start each round from the same heap; freeing the last result is not timed
        t0 = time.perf_counter()
        result = parse_strace(text, Phase.INSTALL)
        best = min(best, time.perf_counter() - t0)
        summary = (
            f"events: {len(result.events):,}  processes: {len(result.processes)}  unparsed: {result.unparsed}"
        )
        del result
    print(f"trace: {TRACE.name} x{copies} = {lines:,} lines, {len(text) / 1e6:.1f} MB")
    print(summary)
    print(f"best of {opts.rounds}: {best:.3f} s  ->  {lines / best:,.0f} lines/s")


if __name__ == "__main__":
    main()
