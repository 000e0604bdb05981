"""Host memory of judging a big run: peak RSS against trace size.

A real recorded run (``tests/data/runs/benign-wheel`` by default, or ``--source`` a
recorded run or an evidence bundle of a bigger package) is replicated into runs of
about ``--lines`` trace lines each (distinct task ids and package paths, see
:mod:`tests.fixtures.bigtrace`); each is parsed, judged and written as a JSON report
in a fresh child process, as ``pkgsandbox vet`` does after the sandbox run, and the
child's peak RSS (``ru_maxrss``) is printed with its bytes per trace line. It is a
script, not a test::

    .venv/bin/python benchmarks/bench_bigtrace.py [--lines 300000,1000000,3000000]
        [--source DIR] [--tracemalloc]

Measured 2026-12-02 (2 cores, loaded), source an evidence bundle of ``vet pandas``
(230k lines, write-heavy: pip and a round's pip write 80k files): 0.92M lines took
2,974 MB before the streaming parse / shared event keys / in-place relabelling /
capped harness listing / streamed JSON report (3.4 kB a line, ~10 GB at 3M), 743 MB
after; 3.0M lines 2,136 MB (of which 180 MB is the interpreter and the run record).
The recorded benign-wheel run replicated to 1.0M lines: 606 MB; to 3.0M lines: 1,572 MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.judge.profiles import load_profile  # noqa: E402
from sandbox.judge.report import judge  # noqa: E402
from sandbox.report.json_format import write_json_file  # noqa: E402
from sandbox.runner.interface import AgentPhase, RawRun  # noqa: E402
from sandbox.trace.observe import observe, observe_network  # noqa: E402
from tests.fixtures.bigtrace import load_recorded, read_trace, scale_run, trace_lines  # noqa: E402

DEFAULT_SOURCE = ROOT / "tests" / "data" / "runs" / "benign-wheel"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(run_json: Path, out: Path, trace_malloc: bool) -> None:
    """Parse, judge and write one run; print its figures as one JSON line."""
    if trace_malloc:
        tracemalloc.start(1)
    raw = RawRun.model_validate_json(run_json.read_text())
    stages: dict[str, float] = {"start": _rss_mb()}
    t0 = time.perf_counter()
    obs, notes = observe(raw)
    stages["observe"] = _rss_mb()
    if trace_malloc:
        snap = tracemalloc.take_snapshot()
        for stat in snap.statistics("lineno")[:15]:
            print(f"  {stat.size / 2**20:8.1f} MiB  {stat.count:>9}  {stat.traceback}", file=sys.stderr)
    network = observe_network(raw, obs, None)
    report = judge(
        obs,
        target="bigtrace",
        started=time.time(),
        image=None,
        staged=None,
        profile=load_profile("default"),
        hostname=raw.hostname,
        notes=notes,
        network=network,
    )
    stages["judge"] = _rss_mb()
    write_json_file(report, out)  # what `vet -o report.json` and the evidence bundle do
    stages["report"] = _rss_mb()
    print(
        json.dumps(
            {
                "events": len(obs.events),
                "report_events": len(report.events),
                "findings": sorted(f"{f.rule_id} {f.phase.value} {f.message}" for f in report.findings),
                "verdict": report.verdict.value,
                "seconds": round(time.perf_counter() - t0, 1),
                "stages": stages,
                "report_bytes": out.stat().st_size,
            }
        )
    )


def source_run(src: Path, dest: Path) -> tuple[RawRun, Path]:
    """A recorded run, or one rebuilt from an evidence bundle's ``raw/`` files."""
    if (src / "run.json").exists():
        return load_recorded(src)
    raw_dir = src / "raw"
    phases = [AgentPhase.model_validate_json(p.read_text()) for p in sorted(raw_dir.glob("*.result.json"))]
    order = {"install": 0, "startup": 1, "import": 2, "exercise": 3, "execute": 4}
    phases.sort(key=lambda ap: (ap.pass_name != "default", ap.started, order.get(ap.phase.value, 9)))
    harness = {
        f"{'' if ap.pass_name == 'default' else ap.pass_name + '.'}{ap.phase.value}.{s.tag}": tuple(s.argv)
        for ap in phases
        for s in ap.steps
    }
    inventory = next((ap.inventory for ap in phases if ap.phase.value == "install"), {})
    raw = RawRun(
        run_id="bigtrace",
        container="bigtrace",
        hostname="ws-017",
        phases=tuple(phases),
        trace_dir=str(raw_dir),
        harness_argv=harness,
        inventory=inventory,
    )
    return raw, raw_dir


def main() -> None:
    """Build each size, judge it in a child, print peak RSS per size."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", default="300000,1000000,3000000", help="comma-separated trace sizes")
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="recorded run or evidence bundle")
    ap.add_argument("--tracemalloc", action="store_true", help="print the top allocation sites after observe")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.child is not None:
        child(opts.child, opts.child.parent / "report.json", opts.tracemalloc)
        return
    with tempfile.TemporaryDirectory(prefix="bench-bigtrace-") as tmp:
        raw, src = source_run(opts.source, Path(tmp))
        per_copy = sum(len(_lines(src, s.trace)) for a in raw.phases for s in a.steps)
        print(f"source: {opts.source} ({per_copy:,} trace lines)")
        print(f"{'lines':>10} {'events':>10} {'peak RSS':>10} {'B/line':>7} {'s':>6}  verdict / findings")
        for want in (int(x) for x in opts.lines.split(",")):
            dest = Path(tmp) / f"run-{want}"
            big = scale_run(raw, src, dest, max(1, round(want / per_copy)))
            run_json = dest / "rawrun.json"
            run_json.write_text(big.model_dump_json())
            lines = trace_lines(big)
            cmd = [sys.executable, __file__, "--child", str(run_json)]
            if opts.tracemalloc:
                cmd.append("--tracemalloc")
            out = subprocess.run(cmd, check=True, capture_output=True, text=True)
            sys.stderr.write(out.stderr)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            peak = max(res["stages"].values())
            print(
                f"{lines:>10,} {res['events']:>10,} {peak:>8,.0f}MB {peak * 2**20 / lines:>7,.0f} "
                f"{res['seconds']:>6}  {res['verdict']} / {len(res['findings'])} "
                f"(stages MB: {', '.join(f'{k} {v:,.0f}' for k, v in res['stages'].items())}; "
                f"report {res['report_bytes'] / 2**20:,.0f} MiB, {res['report_events']:,} events)"
            )
            shutil.rmtree(dest)


def _lines(src: Path, name: str) -> list[str]:
    return read_trace(src, name).splitlines()


if __name__ == "__main__":
    main()
