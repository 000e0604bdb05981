"""Vet wall time per recorder vs a bare ``docker run`` of the same work, in one run.

For each package: fetching alone; ``pkgsandbox vet`` end to end (image and pip cache
warm) under each recorder (strace in the sandbox, eBPF on the host); a bare ``docker
run`` of the same image with the same staged artifacts doing the same install,
start-up commands and imports — no recorder, no agent, no hardening. Ratios are
(vet - fetch - rounds) / bare: fetching is excluded from both sides, the vet's fetch
rounds too (a missing optional dependency fetched and installed mid-run). Also the eBPF recorder's
host memory: the peak RSS (``VmHWM``) of the recorder's only process (the compiled
recorder, else bpftrace), read
from /proc when the run ends and carried by the report's note (MiB and MB), with
whether it meets the target. Targets (issue 13): eBPF ≤ 1.15 x bare, six end to end
≤ 2.0 s warm, recorder RSS ≤ 100 MB.

    python benchmarks/bench_vet.py [-n ROUNDS] [--recorders strace,ebpf,runsc] [SPEC ...]
    (default: one round of six requests boto3; medians of the rounds, recorders taking turns;
    ``runsc`` is gVisor with strace inside it, where ``doctor --provision`` registered it)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from sandbox.fetch import TargetEnv, fetch
from sandbox.models import Report
from sandbox.runner.engine import LABEL, LABEL_DEADLINE, LABEL_OWNER, LABEL_RUN, connect
from sandbox.runner.image import ensure_image
from sandbox.runner.interface import Observer, RunOptions
from sandbox.tempdirs import owner_label
from sandbox.vet import VetOptions, vet


def bare_run(image: str, stage: Path, target: str, modules: list[str]) -> float:
    imports = "import importlib, sys\nfor m in sys.argv[1:]:\n    try: importlib.import_module(m)\n    except BaseException: pass\n"  # noqa: E501
    script = (
        "set -e; cp -a /usr/local/lib/devtools/venv /tmp/v; "
        "/tmp/v/bin/python -m pip install -q --no-index --find-links /stage --no-cache-dir "
        f"--disable-pip-version-check /stage/{target}; "
        "/tmp/v/bin/python -c pass; /tmp/v/bin/python -m pip --version >/dev/null; "
        f"/tmp/v/bin/python -c '{imports}' {' '.join(modules)}"
    )
    # labelled as a live run of ours: a concurrent sweep kills unlabelled sandbox-image containers
    name = f"pkgsandbox-bench-bare-{os.getpid()}"
    labels = [f"{LABEL}=bench", f"{LABEL_RUN}={name}", f"{LABEL_OWNER}={owner_label()}"]
    labels.append(f"{LABEL_DEADLINE}={int(time.time()) + 3600}")
    t0 = time.monotonic()
    subprocess.run(
        [
            *("docker", "run", "--rm", "--name", name),
            *(a for lab in labels for a in ("--label", lab)),
            *("--network", "none", "-v", f"{stage}:/stage:ro", image, "sh", "-c", script),
        ],
        check=True,
        capture_output=True,
    )
    return time.monotonic() - t0


def timed_vet(spec: str, combo: str) -> tuple[float, Report]:
    """One vet of *spec* under *combo*: ``strace`` or ``ebpf`` (runc), or ``runsc``
    (gVisor, whose recorder is strace inside it: eBPF does not see into it)."""
    if combo == "runsc":
        options = VetOptions(run=RunOptions(recorder="strace", runtime="runsc"))
    else:
        options = VetOptions(run=RunOptions(recorder=combo))  # type: ignore[arg-type]
    t0 = time.monotonic()
    report = vet(spec, options, Observer())
    return time.monotonic() - t0, report


def recorder_rss(report: Report) -> str:
    """The eBPF recorder's peak RSS from the report's note ("89 MiB = 94 MB"), and
    whether it meets the 100 MB target."""
    for note in report.notes:
        if "peak RSS" in note:
            figure = note.split("peak RSS ")[1].split(")")[0]
            mb = figure.split("= ")[-1].split()[0]
            return f"{figure} ({'ok' if mb.isdigit() and int(mb) <= 100 else 'over'})"
    return "-"


def main(specs: list[str], recorders: list[str], n: int = 1) -> None:
    client = connect()
    image = ensure_image(client)
    target = TargetEnv(python_version=image.python, platforms=image.platforms)
    print(f"image {image.tag} (Python {image.python}); recorders {', '.join(recorders)}; medians of {n}")
    cols = "".join(f" {r + ' s':>9} {r + '/bare':>11}" for r in recorders)
    print(f"{'package':<10} {'fetch s':>8} {'bare s':>7}{cols}  {'eBPF peak RSS (≤100 MB)':>24}  verdicts")
    for spec in specs:
        vet(spec, VetOptions(), Observer())  # warm pip's cache so every side fetches alike
        tmp = Path(tempfile.mkdtemp())
        try:
            t0 = time.monotonic()
            staged = fetch(spec, target, tmp / "a")
            t_fetch = time.monotonic() - t0
            (tmp / "a").chmod(0o755)
            times: dict[str, list[float]] = {r: [] for r in ("bare", *recorders)}
            reports: dict[str, Report] = {}
            for i in range(n):
                # the recorders take turns, rotated each round (the bare run needs the
                # modules a vet found, so it comes last)
                for r in recorders[i % len(recorders) :] + recorders[: i % len(recorders)]:
                    took, reports[r] = timed_vet(spec, r)
                    times[r].append(took)
                modules = list(next(iter(reports.values())).inventory.modules)
                times["bare"].append(bare_run(image.tag, tmp / "a", staged.install_target, modules))
            t_bare = statistics.median(times["bare"])
            runs = {r: (statistics.median(times[r]), reports[r]) for r in recorders}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        # fetch excluded from the vet side (it overlaps nothing in a bare run), and so are
        # the vet's fetch rounds (a module that failed to import for a missing optional
        # dependency: fetched and installed mid-run, which a bare run never does)
        line = "".join(f" {t:9.2f} {(t - t_fetch - _rounds(rep)) / t_bare:11.2f}" for t, rep in runs.values())
        rounds = ", ".join(f"{r} {_rounds(rep):.1f}" for r, (_, rep) in runs.items() if rep.rounds)
        rss = recorder_rss(runs["ebpf"][1]) if "ebpf" in runs else "-"
        verdicts = ",".join(f"{r}={rep.verdict.value}" for r, (_, rep) in runs.items())
        tail = f"  (fetch rounds s: {rounds})" if rounds else ""
        print(f"{spec:<10} {t_fetch:8.2f} {t_bare:7.2f}{line}  {rss:>24}  {verdicts}{tail}", flush=True)


def _rounds(report: Report) -> float:
    """Seconds the vet spent in fetch rounds (missing dependencies fetched mid-run)."""
    return sum(r.seconds for r in report.rounds)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--recorders", default="strace,ebpf,runsc", help="comma-separated: strace, ebpf (root), runsc (gVisor)"
    )
    ap.add_argument("-n", type=int, default=1, help="rounds (medians are printed)")
    ap.add_argument("specs", nargs="*", default=["six", "requests", "boto3"])
    args = ap.parse_args()
    main(args.specs, args.recorders.split(","), args.n)
