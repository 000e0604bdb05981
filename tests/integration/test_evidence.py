"""Evidence bundle (--evidence DIR) and --keep."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.models import Report, Verdict
from tests.conftest import recorder, run_cli
from tests.fixtures.builders import Randomised, build_wheel, exfil_source

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")


def test_evidence_bundle_holds_traces_dropped_files_and_report(tmp_path: Path) -> None:
    r = Randomised()
    name, host, port = r.name("dropper"), r.address(), r.port()
    blob = f"payload-{r.name('x')}".encode()
    drop = f"/tmp/.{r.name('cache')}/agent.bin"
    src = (
        f"import os\nos.makedirs(os.path.dirname({drop!r}), exist_ok=True)\n"
        f"open({drop!r}, 'wb').write({blob!r})\n" + exfil_source(".netrc", host, port)
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    bundle = tmp_path / "evidence"
    code, report = run_cli(tmp_path, str(whl), "--evidence", str(bundle))
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1
    assert (
        Report.model_validate(json.loads((bundle / "report.json").read_text())).verdict is Verdict.MALICIOUS
    )
    raw = {p.name for p in (bundle / "raw").iterdir()}
    if recorder() == "ebpf":  # one host-side trace for the whole run, with its program
        program = (
            {"ebpf.program", "ebpf.cfg"} if "ebpf.program" in raw else {"ebpf.bt"}
        )  # compiled or bpftrace
        assert {"ebpf.trace", *program} <= raw and not any(n.endswith(".strace") for n in raw)
        assert "\x1eREADY" in (bundle / "raw" / "ebpf.trace").read_text(errors="replace")
    else:
        assert {"install.0.strace", "import.0.strace", "startup.python-c-pass.strace"} <= raw
    diff = json.loads((bundle / "fsdiff.json").read_text())
    entry = next(c for c in diff["import"] if c["path"] == drop)
    assert entry["change"] == "created" and entry["kept"]
    digest = hashlib.sha256(blob).hexdigest()
    assert entry["sha256"] == digest
    assert (bundle / "files" / digest).read_bytes() == blob


def test_keep_leaves_the_container_for_inspection(tmp_path: Path, docker_client: Any) -> None:
    r = Randomised()
    name = r.name("kept")
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": "X = 1\n"})
    code, report = run_cli(tmp_path, str(whl), "--keep")
    cname = ""
    try:
        assert report is not None and code == 0
        note = next(n for n in report.notes if n.startswith("kept container "))
        cname = note.split()[2].rstrip(":")
        c = docker_client.containers.get(cname)
        assert c.status == "running"
        out = c.exec_run(["ls", "/var/lib/devtools/out"], user="root").output.decode()
        if recorder() == "ebpf":  # nothing traces inside the container
            assert "import.0.strace" not in out
        else:
            assert "import.0.strace" in out
    finally:
        if cname:
            docker_client.containers.get(cname).remove(force=True)
