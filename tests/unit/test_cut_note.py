"""vet.py's reading of an eBPF run's cut paths: a candidate path the recorder read only
part of is no whole look; a long argument is (the exec it leads to has its own path)."""

from __future__ import annotations

from sandbox import vet as vet_module
from sandbox.models import Event, EventKind, Origin, Phase, Report, Verdict
from sandbox.runner.interface import Observer, RunOptions
from sandbox.trace.ebpf import CUT
from sandbox.vet import FALLBACK_NOTE, VetOptions, _with_cut_note
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


def _two_runs(monkeypatch, first_behaviour: str, second_behaviour: str) -> tuple[Report, list[str]]:  # type: ignore[no-untyped-def]
    """_vet_recorded with _vet replaced at its seam: the eBPF run (its path cut) behaves
    as *first_behaviour*, the strace run as *second_behaviour*."""
    recorders: list[str] = []
    cut = "eBPF recorder read only part of 1 path(s)"

    def fake_vet(spec, options, observer, sandbox):  # type: ignore[no-untyped-def]
        recorders.append(options.run.recorder)
        if options.run.recorder == "ebpf":
            report = make_report(spec, first_behaviour)
            return report.model_copy(update={"notes": (*report.notes, cut)})
        return make_report(spec, second_behaviour)

    monkeypatch.setattr(vet_module, "_vet", fake_vet)
    options = VetOptions(run=RunOptions(recorder="ebpf", recorder_auto=True))
    return vet_module._vet_recorded("pkg", options, Observer(), None), recorders  # type: ignore[arg-type]


def test_a_quiet_strace_look_does_not_erase_what_the_ebpf_run_saw(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # a package that cuts a path under eBPF forces a second look under strace, where
    # it can see the tracer and sleep: before this, that second, clean look was the answer
    report, recorders = _two_runs(monkeypatch, "suspicious", "clean")
    assert recorders == ["ebpf", "strace"]
    assert report.verdict is Verdict.SUSPICIOUS, report.verdict_reason
    assert any(n.startswith(FALLBACK_NOTE) for n in report.notes)
    assert any("the strace run was clean" in n for n in report.notes), report.notes


def test_a_worse_strace_look_is_the_answer(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    report, recorders = _two_runs(monkeypatch, "suspicious", "malicious")
    assert recorders == ["ebpf", "strace"] and report.verdict is Verdict.MALICIOUS
    assert any(n.startswith(FALLBACK_NOTE) for n in report.notes)
