"""The eBPF recorder in the real sandbox: invisible to the candidate, fail closed on drops.

The fixtures report what they see through the argv of a harmless exec (``/bin/true
KEY=VALUE …``): the argv is in the report, the candidate has no other way out.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from sandbox.models import EventKind, Phase, Report, Verdict
from sandbox.runner.bpfbuild import LOADER
from sandbox.vet import EBPF_RUN_DIR, FALLBACK_NOTE
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")

LOOK_AROUND = """
import os, subprocess
status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
comms = []
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            comms.append(open(f"/proc/{p}/comm").read().strip())
        except OSError:
            pass
subprocess.run(["/bin/true", "tracer=" + status["TracerPid"].strip(), "comms=" + ",".join(sorted(comms))])
"""


def _seen(report: Report) -> dict[str, str]:
    for e in report.events:
        if e.kind is EventKind.EXEC and e.argv and e.argv[0] == "/bin/true" and len(e.argv) == 3:
            return dict(a.split("=", 1) for a in e.argv[1:])
    execs = [(e.phase.value, e.argv) for e in report.events if e.kind is EventKind.EXEC]
    phases = [(p.phase.value, p.status.value, p.exit_code, p.problems) for p in report.phases]
    raise AssertionError(f"the fixture's exec is missing: {execs} {phases}")


RECORDER_COMMS = ("bpftrace", LOADER[:15])  # the kernel keeps 15 bytes of a name


def _our_bpftrace() -> list[int]:
    """Recorder processes (bpftrace or the compiled one) this test process started
    (the recorder must be gone)."""
    mine = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
            comm = Path(f"/proc/{p}/comm").read_text().strip()
        except OSError:
            continue
        if comm in RECORDER_COMMS and int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
            mine.append(int(p))
    return mine


@pytest.mark.parametrize("recorder", ["strace", "ebpf"])
def test_the_candidate_sees_no_tracer_under_ebpf(tmp_path: Path, recorder: str) -> None:
    name = Randomised().name("looker")
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": LOOK_AROUND})
    code, report = run_cli(tmp_path, str(whl), "--recorder", recorder)
    assert report is not None and code in (0, 1)
    seen = _seen(report)
    comms = seen["comms"].split(",")
    if recorder == "ebpf":
        assert seen["tracer"] == "0", seen
        assert not {"strace", *RECORDER_COMMS} & set(comms), comms
        assert any("recorder: eBPF" in n for n in report.notes), report.notes
    else:  # the contrast that makes the check mean something
        assert seen["tracer"] != "0" and "strace" in comms, seen
    assert all(p.trace_complete for p in report.phases)
    assert not _our_bpftrace()


FLOOD = """
import os, threading
def spin():
    for _ in range(100_000):
        try:
            os.stat("/nonexistent/" + "x" * 150)
        except OSError:
            pass
ts = [threading.Thread(target=spin) for _ in range(3)]
for t in ts:
    t.start()
for t in ts:
    t.join()
"""


def _vet_flood(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recorder: str, *extra: str
) -> tuple[int, Report | None]:
    """Vet a wheel whose import floods the recorder, under *recorder*: a 32 KiB ring
    per CPU (the default is 4 MiB), which the flood overruns within a second on any
    machine, however fast bpftrace drains it."""
    monkeypatch.setenv("PKGSANDBOX_EBPF_PERF_PAGES", "8")
    name = Randomised().name("flood")
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": FLOOD})
    return run_cli(tmp_path, str(whl), "--recorder", recorder, "--phases", "import", *extra)


def test_a_syscall_flood_that_overruns_the_recorder_is_incomplete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, report = _vet_flood(tmp_path, monkeypatch, "ebpf")
    assert report is not None
    lost = [n for n in report.notes if "lost" in n and "event" in n]
    assert lost, report.notes
    imp = next(p for p in report.phases if p.phase is Phase.IMPORT)
    assert not imp.trace_complete
    # never clean: incomplete, unless what was recorded already proves worse (a lossy
    # trace can also lose a process's spawn, making its signals look foreign: PS007)
    assert report.verdict is not Verdict.CLEAN and code in (1, 3), report.verdict_reason
    if code == 3:
        assert report.verdict is Verdict.INCOMPLETE
    assert not _our_bpftrace()


def test_the_program_compiles_to_the_same_bytecode_without_the_kernel_btf(tmp_path: Path) -> None:
    # The recorder hands bpftrace an empty BTF (13 MB less peak RSS): that is only
    # safe while bpftrace builds exactly the same programs without the kernel's.
    import shutil
    import subprocess

    from sandbox.runner.ebpf_program import build_program
    from sandbox.runner.ebpf_recorder import bpftrace_env

    bpftrace = shutil.which("bpftrace")
    assert bpftrace, "bpftrace is missing (CI installs it)"
    program = tmp_path / "ebpf.bt"
    program.write_text(build_program(os.stat("/proc/self/ns/pid").st_ino, 65534, 0))
    ours = bpftrace_env(tmp_path)
    kernels = {k: v for k, v in ours.items() if k != "BPFTRACE_BTF"}
    elves = []
    for name, env in (("ours", ours), ("kernel", kernels)):
        elf = tmp_path / f"{name}.elf"
        done = subprocess.run(
            [bpftrace, "--no-warnings", "--emit-elf", str(elf), str(program)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0 and elf.stat().st_size > 0, done.stderr[-600:]
        elves.append(elf.read_bytes())
    assert elves[0] == elves[1]


def test_auto_vets_again_under_strace_when_the_ebpf_run_loses_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the flood above, under the default recorder choice: the lossy eBPF run is not the
    # answer (it proves nothing malicious), a full strace look is
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "mine.txt").write_text("the user's own file stays where it is")
    code, report = _vet_flood(tmp_path, monkeypatch, "auto", "--evidence", str(evidence))
    assert report is not None
    assert code == 0 and report.verdict is Verdict.CLEAN, (report.verdict_reason, report.notes)
    assert all(p.trace_complete for p in report.phases)
    fallback = [n for n in report.notes if n.startswith(FALLBACK_NOTE)]
    assert fallback and "lost" in fallback[0], report.notes
    assert not any(n.startswith("recorder: eBPF") for n in report.notes)  # the lossy run's notes are gone
    assert not _our_bpftrace()
    # the bundle is the strace run's, with the answer's notes; the eBPF run's is beside it
    top = Report.model_validate_json((evidence / "report.json").read_text())
    assert top.notes == report.notes
    assert not (evidence / "raw" / "ebpf.trace").exists()
    aside = evidence / EBPF_RUN_DIR
    first = Report.model_validate_json((aside / "report.json").read_text())
    assert any("lost" in n for n in first.notes) and (aside / "raw" / "ebpf.trace").stat().st_size > 0
    assert (evidence / "mine.txt").exists() and not (aside / "mine.txt").exists()


def _hog(tmp_path: Path, probes: int) -> subprocess.Popen[bytes]:
    """A bpftrace program of *probes* no-op programs on ``raw_syscalls:sys_exit`` (the
    kernel takes 64 per tracepoint), started and attached."""
    prog = tmp_path / f"hog-{secrets.token_hex(3)}.bt"
    blocks = [f"tracepoint:raw_syscalls:sys_exit /pid == 1/ {{ @x[{i}] = 1; }}" for i in range(probes)]
    prog.write_text('BEGIN { printf("up\\n"); }\n' + "\n".join(blocks) + "\n")
    out = prog.with_suffix(".out")
    proc = subprocess.Popen(["bpftrace", str(prog)], stdout=out.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    try:
        while b"up" not in out.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)
    except BaseException:
        proc.kill()  # a hog that never attached leaves nothing behind either
        proc.wait(30)
        raise
    return proc


@pytest.mark.serial  # takes the host's eBPF room: a neighbour's eBPF vet would not attach
def test_auto_vets_under_strace_when_the_host_has_no_room_for_another_recorder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bpftrace's recorder: the compiled one's raw tracepoints are outside that room
    monkeypatch.setenv("PKGSANDBOX_EBPF_LOADER", "bpftrace")
    from sandbox.runner.ebpf_recorder import prove

    assert prove()[0]  # auto's proof stamp names the recorder: bpftrace's, made while there is room
    hogs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(2):  # 54 of 64: the recorder's 11 do not fit
            hogs.append(_hog(tmp_path, 27))
        name = Randomised().name("roomless")
        whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": "VALUE = 1\n"})
        code, report = run_cli(tmp_path, str(whl), "--recorder", "ebpf", "--phases", "import")
        assert code == 3 and report is None  # asked for by name: the failure is the answer
        code, report = run_cli(tmp_path, str(whl), "--recorder", "auto", "--phases", "import")
    finally:
        for hog in hogs:
            hog.terminate()
            hog.wait(30)
    assert report is not None
    assert code == 0 and report.verdict is Verdict.CLEAN, (report.verdict_reason, report.notes)
    assert all(p.trace_complete for p in report.phases)
    fallback = [n for n in report.notes if n.startswith(FALLBACK_NOTE)]
    assert fallback and "too many eBPF recorders" in fallback[0], report.notes
    assert not _our_bpftrace()
