"""False positives of the static second opinion on the most-downloaded projects.

    python benchmarks/bench_static.py [--n 150] [--offset 0] [--max-mb 40] [--keep DIR] [--paths]

Downloads (files only: nothing is built, installed or run) the newest release's sdist
and one wheel of the top-N projects of the committed rank list, scans each with
:func:`sandbox.judge.static.scan`, and prints the projects and rules that hit. The
static pass only speaks for runs that ended ``incomplete``, and only up to
``suspicious``; this measures how often it would speak on benign code.
"""

from __future__ import annotations

import argparse
import collections
import json
import ssl
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from sandbox.judge.static import in_test_suite, scan

TOP = Path(__file__).parent / "data" / "top-pypi-2026-12-01.txt"
CA = "/etc/ssl/certs/ca-certificates.crt"


def _get(url: str, ctx: ssl.SSLContext) -> bytes:
    with urllib.request.urlopen(url, timeout=60, context=ctx) as resp:
        data: bytes = resp.read()
        return data


def _files(name: str, ctx: ssl.SSLContext, max_bytes: int) -> list[tuple[str, str]]:
    api = f"https://pypi.org/pypi/{name}/json"
    meta = json.loads(_get(api, ctx))
    urls = meta.get("urls", [])
    sdist = [u for u in urls if u["packagetype"] == "sdist"]
    wheels = sorted(
        (u for u in urls if u["packagetype"] == "bdist_wheel"),
        key=lambda u: ("none-any" not in u["filename"], "manylinux" not in u["filename"]),
    )
    picked = sdist[:1] + wheels[:1]
    return [(u["filename"], urllib.parse.urljoin(api, u["url"])) for u in picked if u["size"] <= max_bytes]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--offset", type=int, default=0, help="skip the first K projects of the rank list")
    ap.add_argument("--max-mb", type=int, default=40)
    ap.add_argument("--all-rules", action="store_true", help="also the rules left out as noisy")
    ap.add_argument("--keep", type=Path, help="keep the downloads in DIR (reused: a rescan needs no network)")
    ap.add_argument("--paths", action="store_true", help="name the member each rule hit (test suites marked)")
    args = ap.parse_args()
    names = [
        ln.split("\t")[1].strip() for ln in TOP.read_text().splitlines() if ln and not ln.startswith("#")
    ]
    ctx = ssl.create_default_context(cafile=CA if Path(CA).exists() else None)
    by_rule: collections.Counter[str] = collections.Counter()
    hit: dict[str, list[str]] = {}
    scanned = 0
    t0 = time.time()
    members: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        for name in names[args.offset : args.offset + args.n]:
            try:
                files = _files(name, ctx, args.max_mb << 20)
            except Exception as exc:
                print(f"skip {name}: {exc}", file=sys.stderr)
                continue
            for filename, url in files:
                path = where / filename
                try:
                    if not path.exists():
                        path.write_bytes(_get(url, ctx))
                    hits = scan(path, all_rules=args.all_rules)
                except Exception as exc:
                    print(f"skip {filename}: {exc}", file=sys.stderr)
                    continue
                finally:
                    if args.keep is None:
                        path.unlink(missing_ok=True)
                scanned += 1
                rules = sorted({h.rule for h in hits})
                if rules:
                    hit[filename] = rules
                    by_rule.update(rules)
                for h in hits:
                    test = "(test suite) " if in_test_suite(h.path) else ""
                    members.append(f"  {h.rule}: {filename} {test}{h.path}")
    for filename, rules in sorted(hit.items()):
        print(f"{filename:60} {', '.join(rules)}")
    if args.paths:
        print("\nmembers hit:")
        print("\n".join(sorted(members)))
    print("\nrule hits on benign files:")
    for rule, count in by_rule.most_common():
        print(f"  {count:4}  {rule}")
    share = 100 * len(hit) / max(1, scanned)
    took = time.time() - t0
    print(f"static: {scanned} benign files scanned, {len(hit)} with a hit ({share:.1f} %), {took:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
