"""Real-malware benchmark: vet every release in ../shared/realworld/malregistry-dev/.

LIVE MALWARE. Each release is only ever handed to ``pkgsandbox vet`` (a subprocess
running the real CLI: the hardened, network-less container); this script reads
nothing but the directory listing and the JSON reports.

Resumable: one JSON line per release in ``--results`` (default
``.bench/realworld.jsonl``); a release already there is not vetted again unless
``--fresh``. Prints a table (flagged / malicious with dynamic evidence /
suspicious / incomplete by cause / clean / median seconds) and one final line.
Targets (issue 10): ≥ 90 % flagged, ≥ 75 % malicious with dynamic evidence,
≤ 5 % incomplete, median ≤ 10 s.

    python benchmarks/bench_realworld.py [--jobs 2] [--dir DIR] [--results FILE]
        [--fresh] [--limit N] [--only SUBSTR|@FILE ...] [--table-only]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sandbox.vet import FALLBACK_NOTE

HERE = Path(__file__).resolve().parent
DEFAULT_DIR = HERE.parent.parent.parent / "shared" / "realworld" / "malregistry-dev"
if not DEFAULT_DIR.is_dir():
    DEFAULT_DIR = Path("/work/shared/realworld/malregistry-dev")
SUFFIXES = (".tar.gz", ".tgz", ".zip", ".whl", ".tar.bz2", ".egg")

_TRACEBACK_LAST = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b.*)$")
_PIP_ERROR = re.compile(r"^\s*(ERROR: .+)$")


def _pkgsandbox() -> list[str]:
    # BENCH_PKGSANDBOX="python -m sandbox" runs a frozen copy of the tree (a baseline).
    if os.environ.get("BENCH_PKGSANDBOX"):
        return shlex.split(os.environ["BENCH_PKGSANDBOX"])
    exe = Path(sys.executable).with_name("pkgsandbox")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "sandbox"]


def cause_of(text: str) -> str:
    """The last traceback line (or pip ``ERROR:`` line) of a step's output, shortened."""
    last = ""
    for line in text.splitlines():
        m = _TRACEBACK_LAST.match(line) or _PIP_ERROR.match(line)
        if m:
            last = m.group(1).strip()
    return last[:160]


def normalise_cause(cause: str) -> str:
    """Group causes for the table: drop quoted names and versions."""
    c = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", cause)
    c = re.sub(r"\(from versions: [^)]*\)", "", c)
    c = re.sub(r"for \S+", "for …", c)
    return c[:90].strip()


def _dynamic(finding: dict[str, Any]) -> bool:
    """A finding proven by something that ran (not a static look at the sources)."""
    for ev in finding.get("evidence", ()):
        static = ev.get("syscall") in ("static", "(static)") or str(ev.get("detail", "")).startswith("static")
        if not static:
            return True
    return False


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """The per-release line: verdict, rules, phases, dynamic proof and incomplete cause."""
    findings = report.get("findings", [])
    cause = ""
    if report.get("verdict") == "incomplete":
        for phase in report.get("phases", []):
            if phase.get("status") in ("error", "timeout"):
                texts = [phase.get("output_tail", "")]
                texts += [s.get("detail", "") for s in phase.get("steps", [])]
                cause = next((c for c in map(cause_of, reversed(texts)) if c), "")
                if cause:
                    break
        if not cause:
            cause = str(report.get("verdict_reason", ""))[:160]
    high = [f for f in findings if f.get("severity") in ("high", "critical")]
    return {
        "verdict": report.get("verdict"),
        "reason": str(report.get("verdict_reason", ""))[:300],
        "rules": sorted({f"{f['rule_id']}:{f['severity']}" for f in findings}),
        "phases": sorted({f["phase"] for f in findings}),
        "phase_status": {p["phase"]: p["status"] for p in report.get("phases", [])},
        "dynamic": report.get("verdict") == "malicious" and any(_dynamic(f) for f in high),
        "cause": cause,
        "rounds": len(report.get("rounds", []) or []),
        "round_detail": [
            {k: r.get(k) for k in ("phase", "requested", "installed", "missing")}
            for r in report.get("rounds") or []
        ],
        "phase_seconds": {p["phase"]: p.get("duration") for p in report.get("phases", [])},
        "pass_seconds": _pass_seconds(report),
        "exfiltration": len((report.get("network") or {}).get("exfiltration", []) or []),
        # which recorder judged (auto's eBPF, or strace after an eBPF shortfall, and why)
        "recorder": next((n[:240] for n in report.get("notes") or [] if n.startswith("recorder:")), ""),
    }


def _pass_seconds(report: dict[str, Any]) -> dict[str, float]:
    """Seconds spent in each pass's phases (``phase_seconds`` keeps only the last pass of
    a phase name): where a vet's time goes, the rest being set-up, judging and teardown."""
    spent: dict[str, float] = {}
    for p in report.get("phases", []):
        name = str(p.get("pass_name") or "default")
        spent[name] = round(spent.get(name, 0.0) + float(p.get("duration") or 0.0), 3)
    return spent


def _lines(path: str) -> list[str]:
    """The non-empty lines of a subset file (one file name or name part a line)."""
    return [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]


def vet_one(path: Path, timeout: float, profile: str = "default") -> dict[str, Any]:
    """Run ``pkgsandbox vet PATH`` (the sandbox) under *profile* and summarise its JSON report."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-rw-") as tmp:
        out = Path(tmp) / "report.json"
        cmd = [*_pkgsandbox(), "vet", str(path), "--profile", profile, "--format", "json", "-q"]
        cmd += ["-o", str(out)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"verdict": "error", "cause": f"benchmark timeout {timeout:.0f}s", "seconds": timeout}
        seconds = time.monotonic() - t0
        if out.exists():
            try:
                row = summarise(json.loads(out.read_text(encoding="utf-8")))
            except (ValueError, KeyError) as e:
                row = {"verdict": "error", "cause": f"unreadable report: {e}"}
        else:
            tail = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            row = {"verdict": "error", "cause": (tail[-1] if tail else "")[:200]}
        row.update(exit=proc.returncode, seconds=round(seconds, 1))
        return row


def load_results(path: Path) -> dict[str, dict[str, Any]]:
    """Results already recorded (the last line per file wins)."""
    done: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            done[row["file"]] = row
    return done


def table(rows: list[dict[str, Any]]) -> str:
    """The benchmark table and its final line."""
    n = len(rows) or 1
    verdicts = Counter(r["verdict"] for r in rows)
    flagged = verdicts["malicious"] + verdicts["suspicious"]
    dynamic = sum(1 for r in rows if r.get("dynamic"))
    incomplete = [r for r in rows if r["verdict"] in ("incomplete", "error")]
    causes = Counter(normalise_cause(r.get("cause", "") or "(no cause)") for r in incomplete)
    secs = [r["seconds"] for r in rows if "seconds" in r]
    median = statistics.median(secs) if secs else 0.0

    def pct(k: int) -> str:
        return f"{k:4d}  {100 * k / n:5.1f} %"

    lines = [
        f"releases                              {len(rows):4d}",
        f"flagged (suspicious or malicious)     {pct(flagged)}   (target ≥ 90 %)",
        f"malicious with dynamic evidence       {pct(dynamic)}   (target ≥ 75 %)",
        f"malicious (all)                       {pct(verdicts['malicious'])}",
        f"suspicious                            {pct(verdicts['suspicious'])}",
        f"incomplete (incl. errors)             {pct(len(incomplete))}   (target ≤ 5 %)",
    ]
    lines += [f"    {k:4d}  {cause}" for cause, k in causes.most_common()]
    lines += [
        f"clean                                 {pct(verdicts['clean'])}",
        f"median seconds                        {median:6.1f}   (target ≤ 10 s)",
    ]
    fell = sum(1 for r in rows if str(r.get("recorder", "")).startswith(FALLBACK_NOTE))
    ebpf = sum(1 for r in rows if str(r.get("recorder", "")).startswith("recorder: eBPF"))
    lines.append(
        f"recorded by eBPF {ebpf}, by strace after an eBPF shortfall {fell}, other {len(rows) - ebpf - fell}"
    )
    rules = Counter(rule for r in rows for rule in r.get("rules", ()))
    lines.append("rules: " + ", ".join(f"{k} {v}" for k, v in sorted(rules.items())))
    lines.append(
        f"realworld: {len(rows)} releases, {100 * flagged / n:.0f}% flagged, "
        f"{100 * dynamic / n:.0f}% malicious with dynamic evidence, "
        f"{100 * len(incomplete) / n:.0f}% incomplete, {100 * verdicts['clean'] / n:.0f}% clean, "
        f"median {median:.1f}s"
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--results", type=Path, default=Path(".bench/realworld.jsonl"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=900.0, help="per-release limit of the whole vet")
    ap.add_argument("--fresh", action="store_true", help="ignore recorded results")
    ap.add_argument("--profile", default="default", help="the profile every vet runs under (e.g. deep)")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument(
        "--only",
        action="append",
        default=[],
        help="only files whose name contains this (repeatable: any of them; @FILE reads one a line)",
    )
    ap.add_argument("--table-only", action="store_true", help="print the table of recorded results")
    args = ap.parse_args()

    wanted = [w for o in args.only for w in (_lines(o[1:]) if o.startswith("@") else [o])]
    files = sorted(
        p
        for p in args.dir.iterdir()
        if p.name.endswith(SUFFIXES) and (not wanted or any(w in p.name for w in wanted))
    )
    if args.limit:
        files = files[: args.limit]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    if args.fresh and args.results.exists():
        args.results.unlink()
    done = load_results(args.results)
    todo = [] if args.table_only else [p for p in files if p.name not in done]
    lock = threading.Lock()
    print(f"{len(files)} releases, {len(files) - len(todo)} recorded, {len(todo)} to vet", flush=True)

    def work(path: Path) -> None:
        row = {"file": path.name, **vet_one(path, args.timeout, args.profile)}
        with lock:
            done[path.name] = row
            with args.results.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
            extra = row.get("cause") or " ".join(row.get("rules", ()))
            print(
                f"{len(done):4d} {path.name[:44]:<44} {row['verdict']:<11} {row.get('seconds', 0):6.1f}s "
                f"{extra[:110]}",
                flush=True,
            )

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(work, todo))
    rows = [done[p.name] for p in files if p.name in done]
    print()
    print(table(rows))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
