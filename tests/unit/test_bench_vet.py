"""bench_vet's recorder-RSS column reads the figure the report's note carries."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]


def test_recorder_rss_column_reads_the_note_and_checks_the_target() -> None:
    spec = importlib.util.spec_from_file_location("bench_vet", ROOT / "benchmarks" / "bench_vet.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    note = "recorder: eBPF (host-side bpftrace, 16743 records, peak RSS {} MiB = {} MB)"
    under = SimpleNamespace(notes=["other", note.format(89, 94)])
    over = SimpleNamespace(notes=[note.format(102, 107)])
    assert bench.recorder_rss(under) == "89 MiB = 94 MB (ok)"
    assert bench.recorder_rss(over) == "102 MiB = 107 MB (over)"
    assert bench.recorder_rss(SimpleNamespace(notes=["recorder: strace"])) == "-"
