"""Recorder overhead, side by side in one run: bare vs strace vs eBPF on the same work.

For each package the artifacts are fetched once (fetch excluded from every side), then
one network-less container of the sandbox image runs the same work as the candidate
uid, several times per mode: install into a fresh copy of the venv, ``python -c
pass``, ``pip --version`` and the imports vet would do.

- bare: no recorder;
- strace: the project's strace command line (``strace_argv``) in the container;
- ebpf: the host-side compiled recorder (:class:`EbpfRecorder`, see
  :mod:`sandbox.runner.bpfbuild`) attached to the container, and ebpf-bpftrace: the
  same recorder as bpftrace (attach time excluded from both, reported apart), plus the
  peak RSS on the host: the ``VmHWM`` of the recorder's only process, in MiB and MB.

The modes take turns within each round, in an order rotated every round: a
container's runs drift (by a factor of two in session 26's runs), so running one
mode's runs after another's measured the drift too.

Targets (issue 13): eBPF at most 1.15 times bare; recorder host RSS ≤ 100 MB. Root only (eBPF).

    python benchmarks/bench_recorder.py [-n RUNS] [SPEC ...]     (default: six requests boto3)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from sandbox.agent.protocol import SANDBOX_UID, privilege_drop
from sandbox.fetch import TargetEnv, fetch
from sandbox.runner.ebpf_recorder import EbpfRecorder, RecorderStats
from sandbox.runner.engine import LABEL, LABEL_DEADLINE, LABEL_OWNER, LABEL_RUN, connect
from sandbox.runner.image import ensure_image
from sandbox.runner.seccomp import TRACED_DENIED
from sandbox.tempdirs import owner_label
from sandbox.trace.ebpf import parse_ebpf
from sandbox.trace.strace import strace_argv

MODES = ("bare", "strace", "ebpf", "ebpf-bpftrace")  # ebpf: the compiled recorder
IMPORTS = "import importlib, sys\nfor m in sys.argv[1:]:\n    try: importlib.import_module(m)\n    except BaseException: pass\n"  # noqa: E501


def work(target: str, modules: list[str], run: int) -> str:
    v = f"/tmp/v{run}"
    return (
        f"set -e; cp -a /usr/local/lib/devtools/venv {v}; "
        f"{v}/bin/python -m pip install -q --no-index --find-links /stage --no-cache-dir "
        f"--disable-pip-version-check /stage/{target}; "
        f"{v}/bin/python -c pass; {v}/bin/python -m pip --version >/dev/null; "
        f"{v}/bin/python -c '{IMPORTS}' {' '.join(modules)}; rm -rf {v}"
    )


def timed_exec(container: str, argv: list[str]) -> float:
    t0 = time.monotonic()
    subprocess.run(["docker", "exec", "-u", "0", container, *argv], check=True, capture_output=True)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=3, help="runs per mode")
    ap.add_argument("specs", nargs="*", default=["six", "requests", "boto3"])
    args = ap.parse_args()
    client = connect()
    image = ensure_image(client)
    target = TargetEnv(python_version=image.python, platforms=image.platforms)
    drop = privilege_drop(SANDBOX_UID, SANDBOX_UID)
    strace = strace_argv("/tmp/trace", denied=TRACED_DENIED)
    print(f"image {image.tag} (Python {image.python}); medians of {args.n} runs, fetch excluded")
    print(
        f"{'package':<10} {'recorder':<14} {'bare s':>7} {'strace s':>9} {'ebpf s':>7} {'strace/bare':>12} "
        f"{'ebpf/bare':>10} {'attach s':>9} {'rss MiB':>8} {'rss MB':>7} {'records':>8} {'lost':>5}"
    )
    for spec in args.specs:
        tmp = Path(tempfile.mkdtemp(prefix="pkgsandbox-bench-"))
        name = f"pkgsandbox-bench-{tmp.name[-8:]}"
        try:
            staged = fetch(spec, target, tmp / "a")
            (tmp / "a").chmod(0o755)
            import_names = [spec.replace("-", "_")] if spec != "boto3" else ["boto3", "botocore"]
            stage = f"{tmp / 'a'}:/stage:ro"
            # labelled as a live run of ours: sweeps of other runs leave it alone
            labels = [f"{LABEL}=bench", f"{LABEL_RUN}={name}", f"{LABEL_OWNER}={owner_label()}"]
            labels.append(f"{LABEL_DEADLINE}={int(time.time()) + 3600}")
            start = ["docker", "run", "-d", "--rm", "--name", name, "--network", "none"]
            start += [arg for label in labels for arg in ("--label", label)]
            subprocess.run(
                [*start, "--cap-add", "SYS_PTRACE", "-v", stage, image.tag, "sleep", "3600"],
                check=True,
                capture_output=True,
            )
            pid = int(client.api.inspect_container(name)["State"]["Pid"])
            times: dict[str, list[float]] = {mode: [] for mode in MODES}
            seen: dict[str, list[RecorderStats | int]] = {mode: [] for mode in MODES[2:]}
            for i in range(args.n):
                sh = ["sh", "-c", work(staged.install_target, import_names, i)]
                # rotated each round: a container's runs drift (its page cache, the
                # host's other load), and no mode may always come first or last
                for mode in MODES[i % len(MODES) :] + MODES[: i % len(MODES)]:
                    if mode == "bare":
                        times[mode].append(timed_exec(name, [*drop, *sh]))
                    elif mode == "strace":
                        times[mode].append(timed_exec(name, [*strace, "--", *drop, *sh]))
                    else:
                        out = tmp / f"{mode}-{i}"
                        out.mkdir()
                        recorder = EbpfRecorder(pid, out, compiled=mode == "ebpf")
                        recorder.start()
                        recorder.wait_ready()  # attach excluded (reported apart)
                        times[mode].append(timed_exec(name, [*drop, *sh]))
                        stats = recorder.stop()
                        recorder.kill()
                        decoded = parse_ebpf(recorder.trace_path.read_text(errors="replace"), [])
                        seen[mode] += [stats, decoded.records, decoded.lost]
            b, s, e, e2 = (statistics.median(times[mode]) for mode in MODES)
            for mode, med in (("ebpf", e), ("ebpf-bpftrace", e2)):
                stats_list = [x for x in seen[mode] if isinstance(x, RecorderStats)]
                counts = [x for x in seen[mode] if isinstance(x, int)]
                print(
                    f"{spec:<10} {mode:<14} {b:7.2f} {s:9.2f} {med:7.2f} {s / b:12.2f} {med / b:10.2f} "
                    f"{statistics.median(x.attach_seconds for x in stats_list):9.2f} "
                    f"{max(x.peak_rss_kb for x in stats_list) / 1024:8.0f} "
                    f"{max(x.peak_rss_kb for x in stats_list) * 1024 / 1e6:7.0f} "
                    f"{sum(counts[0::2]):8d} {sum(counts[1::2]):5d}",
                    flush=True,
                )
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
