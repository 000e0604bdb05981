"""Benign-corpus benchmark: popular pinned packages under the default profile.

Prints counts of malicious / suspicious / clean / incomplete and the rule ids hit.
Target (issue 4): 0 malicious, ≤ 2 suspicious. False positives are bugs.

    python benchmarks/bench_corpus.py [--profile NAME] [SPEC ...]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from sandbox.errors import PkgSandboxError
from sandbox.judge.profiles import load_profile
from sandbox.runner.interface import Observer
from sandbox.runner.plan import run_options
from sandbox.vet import VetOptions, vet

CORPUS = [
    "setuptools==80.9.0",
    "matplotlib==3.10.3",
    "numpy==2.3.1",
    "cryptography==45.0.5",
    "boto3==1.39.4",
    "requests==2.32.4",
    "pydantic==2.11.7",
    "rich==14.0.0",
    "six==1.17.0",
    "urllib3==2.5.0",
    "certifi==2025.7.9",
    "idna==3.10",
    "charset-normalizer==3.4.2",
    "python-dateutil==2.9.0.post0",
    "pyyaml==6.0.2",
    "packaging==25.0",
    "attrs==25.3.0",
    "click==8.2.1",
    "jinja2==3.1.6",
    "markupsafe==3.0.2",
    "pytz==2025.2",
    "typing-extensions==4.14.1",
    "wheel==0.45.1",
    "pip==25.1.1",
    "filelock==3.18.0",
    "platformdirs==4.3.8",
    "tomli==2.2.1",
    "pluggy==1.6.0",
    "iniconfig==2.1.0",
    "pygments==2.19.2",
    "jmespath==1.0.1",
    "s3transfer==0.13.0",
    "botocore==1.39.4",
    "psutil==7.0.0",
    "pandas==2.3.1",
    "lxml==6.0.0",
    "pillow==11.3.0",
    "sqlalchemy==2.0.41",
    "flask==3.1.1",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="default")
    ap.add_argument("specs", nargs="*")
    args = ap.parse_args()
    profile = load_profile(args.profile)
    options = VetOptions(run=run_options(profile), profile=profile)
    verdicts: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    t_all = time.monotonic()
    for spec in args.specs or CORPUS:
        t0 = time.monotonic()
        try:
            report = vet(spec, options, Observer())
        except PkgSandboxError as exc:
            verdicts["error"] += 1
            print(f"{spec:<32} ERROR {exc.diagnostics()}", flush=True)
            continue
        verdicts[report.verdict.value] += 1
        hit = sorted({f"{f.rule_id}:{f.severity.value}" for f in report.findings})
        rules.update(hit)
        print(
            f"{spec:<32} {report.verdict.value:<11} {time.monotonic() - t0:6.1f}s {' '.join(hit)}", flush=True
        )
        if report.verdict.value in ("malicious", "suspicious", "incomplete"):
            for f in report.findings[:3]:
                print(f"    {f.rule_id} {f.phase.value}: {f.message[:160]}")
            if report.verdict.value == "incomplete":
                print(f"    {report.verdict_reason[:200]}")
    print()
    print("verdicts:", dict(verdicts), f"in {time.monotonic() - t_all:.0f}s")
    print("rules hit:", dict(rules))


if __name__ == "__main__":
    main()
