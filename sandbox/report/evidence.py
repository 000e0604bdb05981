"""The evidence bundle (``vet --evidence DIR``): what a security engineer needs to
check a verdict without re-running it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from sandbox.errors import PkgSandboxError
from sandbox.models import Report
from sandbox.report.json_format import write_json_file
from sandbox.runner.interface import RawRun


def write_evidence(dest: Path, raw: RawRun, report: Report) -> None:
    """Raw strace logs and captures per phase (``raw/``; under eBPF the recorder's
    one trace, its program and its stderr instead of strace logs), copies of the
    files the candidate wrote or dropped (``files/<sha256>``, size-capped), the
    filesystem diff (``fsdiff.json``) and the JSON report."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
        src = Path(raw.trace_dir)
        (dest / "raw").mkdir(exist_ok=True)
        diff: dict[str, Any] = {}
        for item in sorted(src.iterdir()):
            if item.is_dir():
                shutil.copytree(item, dest / item.name, dirs_exist_ok=True)
            elif item.name.startswith("fsdiff.") and item.suffix == ".json":
                diff[item.name.split(".")[1]] = json.loads(item.read_text())
            else:
                shutil.copy2(item, dest / "raw" / item.name)
        if raw.recorder_trace:
            # the eBPF recorder writes beside the trace dir (ebpf.trace, ebpf.stderr, and ebpf.bt or
            # the compiled recorder's ebpf.program and ebpf.cfg)
            for item in sorted(Path(raw.recorder_trace).parent.glob("ebpf.*")):
                shutil.copy2(item, dest / "raw" / item.name)
        (dest / "fsdiff.json").write_text(json.dumps(diff, indent=1))
        write_json_file(report, dest / "report.json")
    except OSError as exc:
        raise PkgSandboxError(f"cannot write the evidence bundle to {dest}: {exc.strerror or exc}") from exc
