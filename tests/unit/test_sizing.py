"""Room for the install (sandbox/runner/sizing.py): HOME and the memory that holds it,
sized from the staged files on the host, within a ceiling; ENOSPC named as such."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from sandbox.judge.incomplete import incomplete_reasons
from sandbox.models import Observation, Phase, PhaseResult, PhaseStatus, StepResult, Verdict
from sandbox.runner import sizing
from sandbox.runner.interface import Limits, Observer, RunOptions
from sandbox.vet import VetOptions, vet
from tests.fakes import FakeSandbox
from tests.fixtures.builders import Randomised, build_sdist, build_wheel

GIB = 1 << 30
MIB = 1 << 20


def _stored_wheel(tmp_path: Path, members: dict[str, int]) -> Path:
    """A wheel-named zip whose members declare *members* sizes (deflated zeros: small on disk)."""
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "big-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, size in members.items():
            zf.writestr(name, b"\0" * size)
    return path


def test_a_wheel_counts_its_declared_uncompressed_size_plus_bytecode(tmp_path: Path) -> None:
    whl = _stored_wheel(tmp_path, {"big/a.so": 3 * MIB, "big/b.py": 1 * MIB})
    assert whl.stat().st_size < MIB  # what is on disk says little of what pip writes
    # each member in whole pages, and a .py once more for the bytecode pip compiles
    assert sizing.installed_bytes(whl) == 3 * MIB + 2 * MIB
    tiny = _stored_wheel(tmp_path / "x", {"t/a.txt": 1, "t/b.py": 10})
    assert sizing.installed_bytes(tiny) == 3 * sizing.PAGE


def test_an_sdist_is_scaled_from_its_compressed_size(tmp_path: Path) -> None:
    name = Randomised().name("sd")
    sd = build_sdist(tmp_path, name, "1.0", {f"{name}/__init__.py": "X = 1\n" * 2000})
    assert sizing.installed_bytes(sd) == pytest.approx(sd.stat().st_size * sizing.SDIST_FACTOR, abs=1)


def test_a_closure_that_fits_the_default_home_keeps_the_profiles_limits() -> None:
    base = Limits()
    room = sizing.room_for(base, 1500, sizing.memory_ceiling_mb(base, 24 * GIB))
    assert room.fits and not room.grown and room.limits == base


def test_a_bigger_closure_grows_home_and_the_memory_that_holds_it() -> None:
    """About what sglang's closure needs (torch and the CUDA wheels: ~4.3 GiB unpacked)."""
    base = Limits()
    needed = sizing.HOME_SPARE_MB + int(4.3 * 1024)
    room = sizing.room_for(base, needed, sizing.memory_ceiling_mb(base, 24 * GIB))
    assert room.fits and room.grown
    lim = room.limits
    assert lim.home_mb == needed
    # HOME's tmpfs counts toward memory: memory holds it, the trace's growth, and at
    # least the room base leaves for processes, grown with HOME (imports of big closures)
    beside = lim.memory_mb - lim.home_mb - (lim.trace_mb - base.trace_mb)
    assert lim.trace_mb > base.trace_mb
    assert beside >= base.memory_mb - base.home_mb and beside >= lim.home_mb * sizing.PROCESS_SHARE
    assert (lim.pids, lim.cpus, lim.tmp_mb) == (base.pids, base.cpus, base.tmp_mb)
    assert "GiB needed in HOME" in room.note()
    run = RunOptions()
    grown = room.options(run)
    assert grown.limits == lim and grown.timeouts[Phase.INSTALL] > run.timeouts[Phase.INSTALL]
    assert {p: t for p, t in grown.timeouts.items() if p is not Phase.INSTALL} == {
        p: t for p, t in run.timeouts.items() if p is not Phase.INSTALL
    }
    assert sizing.room_for(base, 1000, 9000).options(run) is run  # fits: unchanged


def test_a_big_sdist_grows_tmp_where_pip_builds_it(tmp_path: Path) -> None:
    """A 430 MB sdist of jars ran the default 512 MiB /tmp out of space while pip built
    it (ENOSPC, a benign project called suspicious): /tmp grows with the sdists staged,
    and memory with it (tmpfs pages are memory); wheels need none."""
    base = Limits()
    whl = build_wheel(tmp_path, Randomised().name("w"), "1.0", {"w/__init__.py": "X = 1\n"})
    assert sizing.tmp_needed_mb([whl]) == sizing.TMP_SPARE_MB <= base.tmp_mb
    tmp = int(430 * sizing.BUILD_FACTOR)  # MiB: a 430 MiB sdist
    room = sizing.room_for(base, 1500, sizing.memory_ceiling_mb(base, 24 * GIB), tmp)
    assert room.fits and room.grown and room.limits.tmp_mb == tmp
    assert room.limits.home_mb == base.home_mb
    assert room.limits.memory_mb >= base.memory_mb + room.limits.tmp_mb - base.tmp_mb
    assert "/tmp 1.5 GiB" in room.note()


@pytest.mark.parametrize("engine_gib", [8, 16, 24, 64, 256])
def test_the_ceiling_leaves_room_for_a_second_vet_and_the_host(engine_gib: int) -> None:
    base = Limits()
    ceiling = sizing.memory_ceiling_mb(base, engine_gib * GIB)
    assert base.memory_mb <= ceiling <= base.max_memory_mb == sizing.MAX_MEMORY_MB  # never cut
    if ceiling > base.memory_mb:  # grown at all: beside one vet with the profile's limits
        assert (ceiling + base.memory_mb) * MIB <= sizing.HOST_SHARE * engine_gib * GIB


def test_an_engine_of_unknown_size_never_grows() -> None:
    base = Limits()
    assert sizing.memory_ceiling_mb(base, None) == base.memory_mb
    assert not sizing.room_for(base, 4096, sizing.memory_ceiling_mb(base, None)).fits


def test_a_closure_beyond_the_ceiling_does_not_fit_and_says_how_much_it_needs() -> None:
    base = Limits()
    room = sizing.room_for(base, 20 * 1024, sizing.memory_ceiling_mb(base, 24 * GIB))
    assert not room.fits and room.limits == base
    cause = room.cause()
    # 24 GiB: 18 GiB for the sandboxes, 3 GiB of it for a second vet
    assert "out of space in the sandbox" in cause and "20.0 GiB" in cause and "15.0 GiB" in cause


def test_enospc_in_a_failed_phase_is_named_out_of_space() -> None:
    pip = "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device"
    install = PhaseResult(
        phase=Phase.INSTALL,
        status=PhaseStatus.ERROR,
        duration=1.0,
        exit_code=1,
        steps=(
            StepResult(name="pip", status=PhaseStatus.ERROR, duration=1.0, detail=f"Collecting x\n{pip}\n"),
        ),
    )
    (reason,) = incomplete_reasons(Observation(phases=(install,), events=(), processes=()))
    assert reason.startswith("install phase error: out of space in the sandbox (ERROR: Could not install")
    other = install.model_copy(
        update={"steps": (install.steps[0].model_copy(update={"detail": "ERROR: boom"}),)}
    )
    assert "out of space" not in incomplete_reasons(Observation(phases=(other,), events=(), processes=()))[0]


def _small_wheel(tmp_path: Path) -> Path:
    name = Randomised().name("plain")
    return build_wheel(tmp_path, name, "1.0.0", {f"{name}/__init__.py": "X = 1\n"})


def test_vet_reopens_the_sandbox_with_room_for_a_bigger_closure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the ledger's home
    sandbox = FakeSandbox("benign-wheel")
    sandbox.engine_memory = 24 * GIB
    tight = Limits(home_mb=256)  # less than the venv's spare alone: any closure needs more
    report = vet(str(_small_wheel(tmp_path)), VetOptions(run=RunOptions(limits=tight)), Observer(), sandbox)
    assert report.verdict is Verdict.CLEAN, report.verdict_reason
    first, second = sandbox.opened
    assert first.limits == tight
    assert second.limits.home_mb > tight.home_mb and second.limits.memory_mb > tight.memory_mb
    assert second.timeouts[Phase.INSTALL] > first.timeouts[Phase.INSTALL]
    assert all(s.closed for s in sandbox.sessions) and not sandbox.sessions[0].plans
    assert any(n.startswith("sandbox sized for the staged closure") for n in report.notes)
    assert not list((tmp_path / "cache").glob("pkgsandbox/memory/*.json"))  # released


def test_vet_of_a_closure_that_cannot_fit_is_incomplete_with_the_space_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    sandbox = FakeSandbox("benign-wheel")
    sandbox.engine_memory = 24 * GIB
    tight = Limits(home_mb=256, memory_mb=512, max_memory_mb=512)  # no room to grow
    report = vet(str(_small_wheel(tmp_path)), VetOptions(run=RunOptions(limits=tight)), Observer(), sandbox)
    assert report.verdict is Verdict.INCOMPLETE
    assert "out of space in the sandbox" in report.verdict_reason and "GiB in HOME" in report.verdict_reason
    (session,) = sandbox.sessions
    assert session.closed and not session.plans  # nothing ran
