"""Benign-corpus benchmark: the most-downloaded PyPI projects, vetted under a profile.

The corpus is a committed rank list (``benchmarks/data/top-pypi-DATE.txt``, derived
from the env package list's download ranks), so runs are comparable. For each of the
top N projects the newest release the sandbox's Python/platform can install is
resolved from the index (a compatible wheel, else an sdist, as pip would pick) and
vetted with ``pkgsandbox vet NAME==VERSION``. Results go through the gate's result
cache, so an interrupted run resumes and a re-run of the whole corpus is a cache hit
(a change to the judging code, the profile or the image is a miss, by design).
Projects with no file the sandbox can install at all (Windows-only wheels, no sdist)
are skipped and listed with the reason.

Prints one line per project, then every finding at any severity per rule, the counts
(incomplete with its cause), the wall time and a final line. Target (issue 12):
0 malicious, ≤ 1 % suspicious, ≤ 1 % incomplete.

    python benchmarks/bench_corpus.py [--n 300] [--offset 0] [--jobs 2] [--profile default]
        [--cache PATH] [--no-cache] [--jsonl FILE] [--list FILE]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from sandbox.cache import ResultCache
from sandbox.errors import PkgSandboxError
from sandbox.fetch import TargetEnv
from sandbox.fetch.index import IndexClient, IndexFile, load_config, load_constraints
from sandbox.fetch.pip import Deadline, PipRunner
from sandbox.gate import cache_context
from sandbox.judge.profiles import load_profile
from sandbox.models import Finding, Report, Severity, Verdict
from sandbox.runner.docker_backend import DockerSandbox
from sandbox.runner.interface import Observer
from sandbox.runner.plan import run_options
from sandbox.vet import VetOptions, vet

DATA = Path(__file__).resolve().parent / "data"
DEFAULT_LIST = DATA / "top-pypi-2026-12-01.txt"


def load_corpus(path: Path, n: int, offset: int = 0) -> list[tuple[int, str]]:
    """(rank, name) of the projects ranked offset+1 … offset+n in the committed list."""
    rows: list[tuple[int, str]] = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        rank, name = line.split("\t")
        rows.append((int(rank), name.strip()))
    rows.sort()
    return rows[offset : offset + n]


def _installable(file: IndexFile, target: TargetEnv, tags: frozenset[object]) -> bool:
    if file.yanked or not file.python_ok(target.full_version):
        return False
    return file.kind == "sdist" or bool(file.tags & tags)


def resolve(
    client: IndexClient, target: TargetEnv, name: str, constraint: SpecifierSet | None = None
) -> tuple[str, list[IndexFile]] | str:
    """The newest version pip would install in the sandbox and its files, or why there is none.

    As pip's finder: final releases unless only pre-releases exist; yanked files and
    files whose Requires-Python excludes the sandbox's Python are out; a version counts
    when it has a wheel for the sandbox's tags or an sdist; pip's constraint files
    (*constraint*, this project's entry) narrow the choice, as they do the vet's fetch."""
    listing = client.listing(name)
    if not listing.exists:
        why = "; ".join(f"{loc}: {reason}" for loc, reason in listing.errors)
        return f"not on the index{f' ({why})' if why else ''}"
    tags = target.tags()
    ok = [f for f in listing.files if _installable(f, target, tags)]
    if constraint is not None:
        ok = [f for f in ok if constraint.contains(f.version, prereleases=True)]
    if not ok:
        kinds = sorted({t.platform for f in listing.files for t in f.tags})
        shown = ", ".join(kinds[:4]) or "none"
        return f"no file installs on Linux CPython {target.major_minor} (wheel platforms: {shown}; no sdist)"
    final = [f for f in ok if not f.version.is_prerelease] or ok
    best: Version = max(f.version for f in final)
    return str(best), [f for f in final if f.version == best]


@dataclass
class Outcome:
    rank: int
    name: str
    version: str = ""
    verdict: str = ""  # a Verdict value, "error" or "skipped"
    seconds: float = 0.0
    cached: bool = False
    kind: str = ""  # wheel / sdist of the vetted candidate
    reason: str = ""
    findings: list[Finding] = field(default_factory=list)
    recorder: str = ""  # the report's recorder notes (which one looked, and why a second look)


def _candidate_kind(report: Report) -> str:
    return next((a.kind.value for a in report.artifacts if a.role.value == "candidate"), "?")


def evidence_line(f: Finding) -> str:
    """The first evidence of a finding, as one line (what the closing note quotes)."""
    ev = f.evidence[0]
    parts = [ev.syscall, ev.path or ev.destination or "", ev.detail, " ".join(ev.process)[:120]]
    return " | ".join(p for p in parts if p)


class Corpus:
    def __init__(self, args: argparse.Namespace) -> None:
        profile = load_profile(args.profile)
        self.options = VetOptions(run=run_options(profile), profile=profile)
        # One sandbox (engine connection and image) for every vet, as the gate does.
        self.sandbox = DockerSandbox.connect(base_image=None, offline=None)
        self.image = self.sandbox.image
        self.target = TargetEnv.for_image(self.image)
        pip = PipRunner(None, Deadline(120))
        config = load_config(pip)
        self.index = IndexClient(config, Deadline(24 * 3600))
        self.constraints = load_constraints(config, [])
        self.cache = None if args.no_cache else ResultCache(args.cache)
        self.ctx = cache_context(
            self.options,
            self.image,
            [u for u in (config.index_url, *config.extra_index_urls, *config.find_links) if u],
        )
        self.lock = threading.Lock()

    def one(self, rank: int, name: str) -> Outcome:
        out = Outcome(rank, name)
        t0 = time.monotonic()
        try:
            with self.lock:  # the index client's listing cache is not thread-safe
                cap = self.constraints.get(canonicalize_name(name))
                resolved = resolve(self.index, self.target, name, cap)
        except PkgSandboxError as exc:
            out.verdict, out.reason = "error", f"resolve: {exc.message}"
            return out
        if isinstance(resolved, str):
            out.verdict, out.reason = "skipped", resolved
            return out
        out.version, files = resolved
        report: Report | None = None
        if self.cache is not None:
            digests = [h for f in files if (h := f.hash("sha256"))]
            report = self.cache.get(digests, self.ctx) if digests else None
            report = report or self.cache.lookup(canonicalize_name(name), out.version, self.ctx)
            out.cached = report is not None
        if report is None:
            try:
                report = vet(f"{name}=={out.version}", self.options, Observer(), self.sandbox)
            except PkgSandboxError as exc:
                out.verdict, out.reason = "error", exc.message
                out.seconds = time.monotonic() - t0
                return out
            if self.cache is not None:
                self.cache.put(report, self.ctx)
        out.seconds = time.monotonic() - t0
        out.verdict = report.verdict.value
        out.kind = _candidate_kind(report)
        out.findings = list(report.findings)
        out.recorder = " | ".join(
            n[:240] for n in report.notes if n.startswith(("recorder:", "eBPF recorder"))
        )
        if report.verdict is not Verdict.CLEAN:
            out.reason = report.verdict_reason
        return out


def _print_outcome(o: Outcome) -> None:
    ids = " ".join(sorted({f"{f.rule_id}:{f.severity.value}" for f in o.findings}))
    src = "cached" if o.cached else f"{o.seconds:5.1f}s"
    spec = f"{o.name}=={o.version}" if o.version else o.name
    print(f"{o.rank:5d} {spec:<48} {o.kind:<5} {o.verdict:<10} {src:>7} {ids}", flush=True)
    if o.verdict in ("malicious", "suspicious", "incomplete", "error", "skipped"):
        print(f"      {o.reason[:300]}", flush=True)
    for f in o.findings:
        if f.severity.rank >= Severity.MEDIUM.rank:
            print(
                f"      {f.rule_id} {f.severity.value} {f.phase.value}: {evidence_line(f)[:300]}", flush=True
            )


def summarise(outcomes: list[Outcome], wall: float) -> str:
    """The per-rule table, the counts and the final line."""
    lines: list[str] = []
    per_rule: dict[tuple[str, str], list[str]] = defaultdict(list)
    hits: Counter[tuple[str, str]] = Counter()
    for o in outcomes:
        seen: set[tuple[str, str]] = set()
        for f in o.findings:
            key = (f.rule_id, f.severity.value)
            hits[key] += 1
            if key not in seen:
                seen.add(key)
                per_rule[key].append(o.name)
    lines.append("")
    lines.append(f"{'rule':<6} {'severity':<9} {'findings':>8} {'projects':>8}  projects")
    for key in sorted(per_rule, key=lambda k: (-Severity(k[1]).rank, k[0])):
        names = per_rule[key]
        shown = ", ".join(names[:8]) + (f" … (+{len(names) - 8})" if len(names) > 8 else "")
        lines.append(f"{key[0]:<6} {key[1]:<9} {hits[key]:>8} {len(names):>8}  {shown}")
    if not per_rule:
        lines.append("(no findings)")
    counts = Counter(o.verdict for o in outcomes)
    vetted = sum(counts[v.value] for v in Verdict)
    lines.append("")
    for v in ("clean", "suspicious", "malicious", "incomplete", "error", "skipped"):
        share = f" ({100 * counts[v] / vetted:.1f} %)" if vetted and v in ("suspicious", "incomplete") else ""
        lines.append(f"{v:<11} {counts[v]:>4}{share}")
        if v in ("incomplete", "error", "skipped"):
            for o in outcomes:
                if o.verdict == v:
                    lines.append(f"    {o.name} {o.version}: {o.reason[:240]}")
    cached = sum(o.cached for o in outcomes)
    lines.append("")
    lines.append(
        f"corpus: {len(outcomes)} projects, {vetted} vetted ({cached} from the cache), "
        f"{counts['clean']} clean, {counts['suspicious']} suspicious, {counts['malicious']} malicious, "
        f"{counts['incomplete']} incomplete, {counts['error']} error, {counts['skipped']} skipped "
        f"in {wall:.0f} s wall"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=300, help="how many projects (default 300)")
    ap.add_argument("--offset", type=int, default=0, help="skip the first OFFSET projects")
    ap.add_argument("--jobs", type=int, default=2, help="vets at once (default 2)")
    ap.add_argument("--profile", default="default")
    ap.add_argument("--list", type=Path, default=DEFAULT_LIST, help="the rank list")
    ap.add_argument("--cache", type=Path, help="result cache (default: the gate's)")
    ap.add_argument("--no-cache", action="store_true", help="vet everything again, store nothing")
    ap.add_argument("--jsonl", type=Path, help="append one JSON line per project here")
    ap.add_argument("names", nargs="*", help="vet these projects instead of the list")
    args = ap.parse_args(argv)
    corpus = [(0, n) for n in args.names] if args.names else load_corpus(args.list, args.n, args.offset)
    t0 = time.monotonic()

    def _on_term(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops like Ctrl-C (a background job ignores SIGINT)

    signal.signal(signal.SIGTERM, _on_term)
    runner = Corpus(args)
    outcomes: list[Outcome] = []
    sink = args.jsonl.open("a") if args.jsonl else None
    pool = ThreadPoolExecutor(max_workers=max(1, args.jobs))
    futures = [pool.submit(runner.one, rank, name) for rank, name in corpus]
    try:
        for fut in as_completed(futures):
            o = fut.result()
            outcomes.append(o)
            _print_outcome(o)
            if sink is not None:
                record = {
                    "rank": o.rank,
                    "name": o.name,
                    "version": o.version,
                    "verdict": o.verdict,
                    "kind": o.kind,
                    "cached": o.cached,
                    "seconds": round(o.seconds, 1),
                    "reason": o.reason,
                    "recorder": o.recorder,
                    "findings": [
                        {
                            "rule": f.rule_id,
                            "severity": f.severity.value,
                            "phase": f.phase.value,
                            "message": f.message,
                            "evidence": evidence_line(f),
                        }
                        for f in o.findings
                    ],
                }
                sink.write(json.dumps(record) + "\n")
                sink.flush()
    except KeyboardInterrupt:
        # Running vets clean up after themselves (their own Ctrl-C path); queued ones never start.
        pool.shutdown(wait=False, cancel_futures=True)
        outcomes.sort(key=lambda o: o.rank)
        print(summarise(outcomes, time.monotonic() - t0))
        print("interrupted: finished results are in the cache, a re-run resumes", file=sys.stderr)
        return 130
    pool.shutdown()
    if sink is not None:
        sink.close()
    outcomes.sort(key=lambda o: o.rank)
    print(summarise(outcomes, time.monotonic() - t0))
    counts = Counter(o.verdict for o in outcomes)
    return 1 if counts["malicious"] or counts["suspicious"] else 0


if __name__ == "__main__":
    sys.exit(main())
