"""Where a vet run's seconds go, before vs after, side by side in one run.

Runs ``vet`` on each spec with two source trees, alternating (A B A B …) so both sides
share the machine's load: the current tree and a baseline ref (``git archive`` into a
temporary directory; its own images/ and agent build its own image on first use). Each
side runs in a subprocess with a driver that times the pipeline's stages by wrapping
the functions both trees have (fetch, container create/start, agent setup, the phases,
collect, removal, observe/judge), and a second subprocess times the CLI end to end
(interpreter start and imports included). Prints per-stage medians and after/before
ratios, then one line for ``six`` warm end to end (target: ≤ 2.0 s, issue 13).

    python benchmarks/bench_speed.py [--against REF] [-n N] [SPEC ...]

Default specs: ``six`` and a legacy setup.py sdist of the real-malware set (LIVE
MALWARE: only ``pkgsandbox vet`` ever runs it, inside the sandbox; read
../shared/realworld/README.md). Default REF: the merge base with ``main``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEGACY = ROOT.parent.parent / "shared" / "realworld" / "malregistry-dev" / "16Cent-999.0.1.tar.gz"
if not LEGACY.exists():
    LEGACY = Path("/work/shared/realworld/malregistry-dev/16Cent-999.0.1.tar.gz")

# Runs inside each side's interpreter, with that side's tree first on sys.path.
DRIVER = r"""
import json, sys, threading, time
T0 = time.monotonic()
import sandbox, sandbox.vet as vet_mod, sandbox.runner.docker_backend as db
from sandbox.runner.interface import Observer
assert sandbox.__file__.startswith(sys.argv[2]), (sandbox.__file__, sys.argv[2])
marks = []   # (stage, start, end) relative to T0
lock = threading.Lock()

def timed(owner, name, stage=None, key=None):
    fn = getattr(owner, name, None)
    if fn is None:
        return
    def wrapper(*a, **kw):
        t = time.monotonic()
        try:
            return fn(*a, **kw)
        finally:
            label = key(a, kw) if key else stage
            if label:
                with lock:
                    marks.append((label, t - T0, time.monotonic() - T0))
    setattr(owner, name, wrapper)

timed(vet_mod, "fetch", "fetch (host, parallel)")
timed(vet_mod, "observe", "observe (parse traces)")
timed(vet_mod, "observe_network", "observe network")
timed(vet_mod, "judge", "judge")
timed(vet_mod, "with_static_opinion", "static opinion")
timed(db.DockerSandbox, "connect", "connect + image check")
timed(db.DockerSandbox, "_create", "container create")
timed(db.DockerSandbox, "_collect", "collect traces (exec+extract; after: extract)")
timed(db.DockerSandbox, "_remove", "container remove")
EXECS = {"setup": "agent setup", "run": "agent run (all phases)"}
timed(db.DockerSandbox, "_exec_json", key=lambda a, kw: EXECS.get(a[2][0]))
orig_call = db.engine_call
def engine_call(what, *a, **kw):
    t = time.monotonic()
    try:
        return orig_call(what, *a, **kw)
    finally:
        if what == "start sandbox container":
            with lock:
                marks.append(("container start", t - T0, time.monotonic() - T0))
db.engine_call = engine_call

class Obs(Observer):
    extra = ""
    def status(self, msg):
        if msg.startswith("extra pass "):
            self.extra = msg.split()[2].rstrip(":") + " "
    def phase_finished(self, phase, status, seconds):
        now = time.monotonic() - T0
        marks.append((f"phase {self.extra}{phase.value}", now - seconds, now))

sb = db.DockerSandbox.connect(observer=Obs())
t = time.monotonic()
report = vet_mod.vet(sys.argv[1], vet_mod.VetOptions(), Obs(), sandbox=sb)
marks.append(("vet total (image warm)", t - T0, time.monotonic() - T0))
print(json.dumps({"verdict": report.verdict.value, "marks": marks}))
"""


CLI = "import sys; from sandbox.cli import main; sys.exit(main())"


def export(ref: str, dest: Path) -> None:
    """The tree of *ref* (tracked files only) into *dest*."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def run_side(tree: Path, spec: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, spec, str(tree)], env=env, cwd=tree, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"driver failed in {tree}: {proc.stderr.strip()[-800:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    stages: dict[str, float] = {}
    for name, start, end in data["marks"]:
        stages[name] = stages.get(name, 0.0) + (end - start)
    run = stages.get("agent run (all phases)", 0.0)
    phases = sum(v for k, v in stages.items() if k.startswith("phase "))
    stages["run exec overhead (agent start, messages)"] = max(0.0, run - phases)
    t0 = time.monotonic()
    cli = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from sandbox.cli import main; sys.exit(main())",
            "vet",
            spec,
            "-q",
        ],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
    )
    stages["CLI end to end (imports included)"] = time.monotonic() - t0
    if cli.returncode not in (0, 1):
        raise SystemExit(f"CLI failed in {tree} (exit {cli.returncode}): {cli.stderr.strip()[-400:]}")
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", "import sandbox.cli"], env=env, cwd=tree, check=True)
    stages["CLI import alone"] = time.monotonic() - t0
    stages["_verdict"] = 0.0 if data["verdict"] == "clean" else 1.0
    return stages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", help="baseline git ref (default: merge base with main)")
    ap.add_argument("-n", type=int, default=3, help="repetitions per side (medians)")
    ap.add_argument("specs", nargs="*")
    args = ap.parse_args()
    specs = args.specs or ["six", str(LEGACY)]
    ref = (
        args.against
        or subprocess.run(
            ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    tmp = Path(tempfile.mkdtemp(prefix="pkgsandbox-bench-"))
    try:
        base = tmp / "before"
        base.mkdir()
        export(ref, base)
        sides = {"before": base, "after": ROOT}
        print(f"before = {ref[:12]}, after = working tree; {args.n} runs per side, alternating")
        for spec in specs:
            for tree in sides.values():
                run_side(tree, spec)  # warm: image built, pip cache and page cache filled
            got: dict[str, list[dict[str, float]]] = {k: [] for k in sides}
            loads = []
            for _ in range(args.n):
                for name, tree in sides.items():
                    loads.append(os.getloadavg()[0])
                    got[name].append(run_side(tree, spec))
            label = Path(spec).name if os.sep in spec else spec
            print(f"\n{label}  (load average {min(loads):.1f} to {max(loads):.1f} during the runs)")
            print(f"  {'stage (median s)':<44} {'before':>8} {'after':>8} {'after/before':>13}")
            keys = sorted(
                {k for runs in got.values() for r in runs for k in r if not k.startswith("_")}, key=_order
            )
            for key in keys:
                b = statistics.median(r.get(key, 0.0) for r in got["before"])
                a = statistics.median(r.get(key, 0.0) for r in got["after"])
                ratio = f"{a / b:13.2f}" if b > 0.005 else f"{'':>13}"
                print(f"  {key:<44} {b:8.2f} {a:8.2f} {ratio}")
            if spec == "six":
                e2e = statistics.median(r["CLI end to end (imports included)"] for r in got["after"])
                print(f"  six warm end to end: {e2e:.2f} s (target ≤ 2.0 s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_ORDER = [
    "connect",
    "fetch",
    "container create",
    "container start",
    "agent setup",
    "agent run",
    "phase install",
    "phase startup",
    "phase import",
    "phase execute",
    "phase windows",
    "phase time",
    "run exec",
    "collect",
    "container remove",
    "observe",
    "judge",
    "static",
    "vet total",
    "CLI",
]


def _order(key: str) -> tuple[int, str]:
    return next((i for i, p in enumerate(_ORDER) if key.startswith(p)), len(_ORDER)), key


if __name__ == "__main__":
    main()
