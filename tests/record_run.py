"""Record a real sandbox run for :class:`tests.fakes.FakeSandbox` (needs the engine).

    python -m tests.record_run SPEC NAME

Writes ``tests/data/runs/NAME/run.json`` and the gzip-compressed traces and captures.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

from sandbox.agent.protocol import Plan
from sandbox.runner.docker_backend import DockerSandbox
from sandbox.runner.interface import Observer, RawRun, RunOptions, Session
from sandbox.vet import VetOptions, vet
from tests.fakes import RUNS


class _Recording(Session):
    def __init__(self, inner: Session, dest: Path, sandbox: DockerSandbox) -> None:
        self.inner, self.dest, self.sandbox = inner, dest, sandbox
        self.finished = inner.finished
        self.hostname = inner.hostname

    def run_phases(self, plan: Plan, observer: Observer) -> RawRun:
        raw = self.inner.run_phases(plan, observer)
        shutil.rmtree(self.dest, ignore_errors=True)
        self.dest.mkdir(parents=True)
        for item in sorted(Path(raw.trace_dir).iterdir()):
            if item.is_file():
                (self.dest / (item.name + ".gz")).write_bytes(gzip.compress(item.read_bytes(), mtime=0))
        data = {"image": self.sandbox.image.model_dump(mode="json"), "raw": raw.model_dump(mode="json")}
        data["raw"].pop("trace_dir")
        (self.dest / "run.json").write_text(json.dumps(data, indent=1) + "\n")
        return raw

    def keep(self) -> str:
        return self.inner.keep()

    def close(self) -> None:
        self.inner.close()


class _RecordingSandbox(DockerSandbox):
    dest = Path()

    def open(self, staging: Path, setup: Plan, options: RunOptions, observer: Observer) -> _Recording:  # type: ignore[override]
        return _Recording(super().open(staging, setup, options, observer), self.dest, self)


def main(spec: str, name: str) -> None:
    base = DockerSandbox.connect()
    sandbox = _RecordingSandbox(base.client, base.image)
    sandbox.dest = RUNS / name
    report = vet(spec, VetOptions(), Observer(), sandbox)
    print(name, report.verdict.value, [f.rule_id for f in report.findings])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
