"""vet.py's reading of an eBPF run's cut paths: a candidate path the recorder read only
part of is no whole look; a long argument is (the exec it leads to has its own path)."""

from __future__ import annotations

from sandbox.models import Event, EventKind, Origin, Phase, Verdict
from sandbox.trace.ebpf import CUT
from sandbox.vet import _with_cut_note
from tests.unit.test_gate_fakes import make_report


def _with(*events: Event):  # type: ignore[no-untyped-def]
    report = make_report("pkg", "clean")
    assert report.verdict is Verdict.CLEAN
    return report.model_copy(update={"events": (*report.events, *events)})


def _exec(path: str, argv: tuple[str, ...], origin: Origin = Origin.CANDIDATE) -> Event:
    return Event(
        phase=Phase.INSTALL,
        seq=10_000,
        pid=7,
        time=1.0,
        syscall="execve",
        kind=EventKind.EXEC,
        path=path,
        argv=argv,
        origin=origin,
    )


def test_a_cut_candidate_path_makes_a_clean_run_incomplete_with_a_note() -> None:
    cut = _exec("/home/dev/" + CUT, ("sh", "-c", "id"))
    report = _with_cut_note(_with(cut))
    assert report.verdict is Verdict.INCOMPLETE
    assert report.notes[-1].startswith("eBPF recorder read only part of 1 path(s)"), report.notes
    assert "execve" in report.verdict_reason


def test_a_long_argument_or_a_harness_path_changes_nothing() -> None:
    shim = _exec("/home/dev/project/.venv/bin/python", ("python", "-c", "exec(compile(" + "x" * 170 + CUT))
    harness = _exec("/home/dev/" + CUT, ("pip",), origin=Origin.HARNESS)
    before = _with(shim, harness)
    after = _with_cut_note(before)
    assert after.verdict is Verdict.CLEAN and after.notes == before.notes
