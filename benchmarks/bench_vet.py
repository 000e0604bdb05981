"""Vet wall time vs a bare ``docker run`` of the same work, measured in one run.

For each package: (1) ``pkgsandbox vet`` end to end (image warm); (2) fetching alone;
(3) a bare ``docker run`` of the same image with the same staged artifacts doing the
same install, the same start-up commands and the same imports — no strace, no agent,
no hardening. Prints the ratios; targets (issue 2): vet ÷ (bare + fetch) ≤ 1.5 and
six end to end ≤ 2.5 s.

    python benchmarks/bench_vet.py [SPEC ...]        (default: six requests boto3)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandbox.fetch import TargetEnv, fetch
from sandbox.runner.engine import connect
from sandbox.runner.image import ensure_image
from sandbox.runner.interface import Observer
from sandbox.vet import VetOptions, vet


def bare_run(image: str, stage: Path, target: str, modules: list[str]) -> float:
    imports = "import importlib, sys\nfor m in sys.argv[1:]:\n    try: importlib.import_module(m)\n    except BaseException: pass\n"  # noqa: E501
    script = (
        "set -e; cp -a /opt/pkgsandbox/venv /tmp/v; "
        "/tmp/v/bin/python -m pip install -q --no-index --find-links /stage --no-cache-dir "
        f"--disable-pip-version-check /stage/{target}; "
        "/tmp/v/bin/python -c pass; /tmp/v/bin/python -m pip --version >/dev/null; "
        f"/tmp/v/bin/python -c '{imports}' {' '.join(modules)}"
    )
    t0 = time.monotonic()
    subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "-v", f"{stage}:/stage:ro", image, "sh", "-c", script],
        check=True,
        capture_output=True,
    )
    return time.monotonic() - t0


def main(specs: list[str]) -> None:
    client = connect()
    image = ensure_image(client)
    target = TargetEnv(python_version=image.python, platforms=image.platforms)
    print(f"image {image.tag} (Python {image.python})")
    print(
        f"{'package':<12} {'vet s':>7} {'fetch s':>8} {'bare s':>7} {'vet/(bare+fetch)':>17} {'sandbox/bare':>13}"  # noqa: E501
    )
    for spec in specs:
        vet(spec, VetOptions(), Observer())  # warm pip's cache so both sides fetch alike
        t0 = time.monotonic()
        report = vet(spec, VetOptions(), Observer())
        t_vet = time.monotonic() - t0
        tmp = Path(tempfile.mkdtemp())
        try:
            t0 = time.monotonic()
            staged = fetch(spec, target, tmp / "a")
            t_fetch = time.monotonic() - t0
            (tmp / "a").chmod(0o755)
            t_bare = bare_run(image.tag, tmp / "a", staged.install_target, list(report.inventory.modules))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(
            f"{spec:<12} {t_vet:7.2f} {t_fetch:8.2f} {t_bare:7.2f} {t_vet / (t_bare + t_fetch):17.2f} "
            f"{(t_vet - t_fetch) / t_bare:13.2f}   verdict={report.verdict.value} "
            f"modules={len(report.inventory.modules)}"
        )


if __name__ == "__main__":
    main(sys.argv[1:] or ["six", "requests", "boto3"])
