"""run_gate: parallel vets, cache hits without a vet, the time budget, and the exit code."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from sandbox.cache import CacheContext, ResultCache
from sandbox.errors import ExitCode
from sandbox.gate import (
    EntryStatus,
    GateEntry,
    GateObserver,
    GateOutcome,
    LockedRequirement,
    PlainGateObserver,
    SourceKind,
    diff_requirements,
    plan_gate,
    run_gate,
)
from sandbox.models import Verdict
from tests.fixtures.builders import build_wheel
from tests.unit.test_gate_fakes import FakeVet, fake_sha

CTX = CacheContext(profile_hash="p1", tool_version="0.1.0+test", image_id="sha256:img")


def entries(*reqs: LockedRequirement) -> list[GateEntry]:
    todo, _, _ = diff_requirements(list(reqs), None)
    return todo


def req(name: str, version: str | None = None, **kw: object) -> LockedRequirement:
    spec = kw.pop("specifier", f"=={version}" if version else "")
    return LockedRequirement(
        name=name, version=version, specifier=spec, source_file="requirements.txt", line=3, **kw
    )  # type: ignore[arg-type]


def statuses(result: object) -> dict[str, tuple[EntryStatus, Verdict | None]]:
    return {o.entry.name: (o.status, o.verdict) for o in result.outcomes}  # type: ignore[attr-defined]


def test_clean_gate_passes_and_vets_pinned_versions() -> None:
    vet = FakeVet()
    result = run_gate(entries(req("a", "1.0"), req("b", "2.0", extras=("x",))), vet_fn=vet, workers=2)
    assert result.exit_code is ExitCode.CLEAN
    assert sorted(vet.calls) == ["a==1.0", "b[x]==2.0"]
    assert statuses(result) == {
        "a": (EntryStatus.VETTED, Verdict.CLEAN),
        "b": (EntryStatus.VETTED, Verdict.CLEAN),
    }
    assert [o.entry.name for o in result.outcomes] == ["a", "b"]  # plan order, whatever finished first


def test_malicious_fails_with_exit_1_and_wins_over_incomplete() -> None:
    vet = FakeVet({"bad": "malicious", "slow": "incomplete"})
    result = run_gate(entries(req("ok", "1"), req("bad", "2"), req("slow", "3")), vet_fn=vet, workers=1)
    assert result.exit_code is ExitCode.FINDINGS
    assert [o.entry.name for o in result.failing()] == ["bad"]
    assert [o.entry.name for o in result.incomplete()] == ["slow"]


@pytest.mark.parametrize(
    ("fail_on", "expected"), [(Verdict.SUSPICIOUS, ExitCode.FINDINGS), (Verdict.MALICIOUS, ExitCode.CLEAN)]
)
def test_fail_on_threshold(fail_on: Verdict, expected: ExitCode) -> None:
    result = run_gate(entries(req("odd", "1")), vet_fn=FakeVet({"odd": "suspicious"}), fail_on=fail_on)
    assert result.exit_code is expected


@pytest.mark.parametrize("behaviour", ["incomplete", "missing", "crash"])
def test_what_could_not_be_vetted_fails_unless_allowed(behaviour: str) -> None:
    es = entries(req("x", "1"))
    result = run_gate(es, vet_fn=FakeVet({"x": behaviour}))
    assert result.exit_code is ExitCode.SANDBOX
    out = result.outcomes[0]
    assert out.incomplete
    if behaviour == "missing":
        assert out.status is EntryStatus.ERROR and "no release of x" in out.detail
    if behaviour == "crash":
        assert out.status is EntryStatus.ERROR and "internal error: RuntimeError: boom" in out.detail
    allowed = run_gate(es, vet_fn=FakeVet({"x": behaviour}), allow_incomplete=True)
    assert allowed.exit_code is ExitCode.CLEAN


def test_urls_and_vcs_are_not_vetted_and_source_trees_are_skipped() -> None:
    vet = FakeVet()
    es = entries(
        req("u", "1.0", specifier="", kind=SourceKind.URL, url="https://example.org/u-1.0.tar.gz"),
        req("g", specifier="", kind=SourceKind.VCS, url="git+https://example.org/g.git"),
        req(
            "proj", specifier="", kind=SourceKind.DIRECTORY, path="/src/proj", editable=True, own_project=True
        ),
    )
    result = run_gate(es, vet_fn=vet)
    assert vet.calls == []
    assert statuses(result) == {
        "u": (EntryStatus.NOT_VETTED, None),
        "g": (EntryStatus.NOT_VETTED, None),
        "proj": (EntryStatus.SKIPPED, None),
    }
    assert result.exit_code is ExitCode.SANDBOX
    skipped_only = run_gate(es[2:], vet_fn=vet)
    assert skipped_only.exit_code is ExitCode.CLEAN


def test_a_source_tree_other_than_the_project_is_never_passed_silently(tmp_path: Path) -> None:
    """``-e ./vendored`` runs its build backend at install like any sdist: on main it was
    reported not vetted (exit 3). Now it is packed on the host (nothing run) and vetted
    like a local sdist; a tree that cannot be packed is still not vetted (exit 3)."""
    tree = tmp_path / "vendored"
    (tree / "vend").mkdir(parents=True)
    (tree / "pyproject.toml").write_text('[project]\nname = "vend"\nversion = "1.2"\n')
    (tree / "vend" / "__init__.py").write_text("X = 1\n")
    vet = FakeVet({"vend": "malicious"})
    es = entries(req("vend", specifier="", kind=SourceKind.DIRECTORY, path=str(tree), editable=True))
    result = run_gate(es, vet_fn=vet)
    assert len(vet.calls) == 1 and vet.calls[0].endswith("/vend-1.2.tar.gz")
    assert statuses(result) == {"vend": (EntryStatus.VETTED, Verdict.MALICIOUS)}
    assert result.exit_code is ExitCode.FINDINGS
    assert not Path(vet.calls[0]).exists()  # the packed tree is not left behind

    gone = entries(
        req("gone", specifier="", kind=SourceKind.DIRECTORY, path=str(tmp_path / "nope"), editable=True)
    )
    result = run_gate(gone, vet_fn=vet)
    assert statuses(result) == {"gone": (EntryStatus.NOT_VETTED, None)}
    assert "could not be packed" in result.outcomes[0].detail
    assert result.exit_code is ExitCode.SANDBOX
    assert run_gate(gone, vet_fn=vet, allow_incomplete=True).exit_code is ExitCode.CLEAN


def test_max_time_zero_starts_nothing_and_never_passes() -> None:
    vet = FakeVet()
    result = run_gate(entries(req("a", "1"), req("b", "2")), vet_fn=vet, max_time=0)
    assert vet.calls == []
    assert {o.status for o in result.outcomes} == {EntryStatus.NOT_VETTED}
    assert "the --max-time budget of 0s was spent" in result.outcomes[0].detail
    assert result.exit_code is ExitCode.SANDBOX


def test_budget_spent_mid_run_reports_the_rest_as_not_vetted() -> None:
    now = [0.0]
    vet = FakeVet(on_call=lambda spec: now.__setitem__(0, now[0] + 10.0))  # each vet "takes" 10 s
    result = run_gate(
        entries(req("a", "1"), req("b", "2"), req("c", "3")),
        vet_fn=vet,
        workers=1,
        max_time=15,
        clock=lambda: now[0],
    )
    assert vet.calls == ["a==1", "b==2"]  # b started at t=10 < 15; c would start at t=20
    assert statuses(result)["c"] == (EntryStatus.NOT_VETTED, None)
    assert result.exit_code is ExitCode.SANDBOX


def test_workers_run_in_parallel_and_are_bounded() -> None:
    barrier = threading.Barrier(2, timeout=10)
    vet = FakeVet(on_call=lambda spec: barrier.wait())  # deadlocks (then errors) unless two run at once
    result = run_gate(entries(req("a", "1"), req("b", "2")), vet_fn=vet, workers=2)
    assert result.exit_code is ExitCode.CLEAN and vet.max_active == 2
    serial = FakeVet(delay=0.02)
    run_gate(entries(*(req(f"p{i}", "1") for i in range(6))), vet_fn=serial, workers=1)
    assert serial.max_active == 1
    three = FakeVet(delay=0.05)
    run_gate(entries(*(req(f"p{i}", "1") for i in range(9))), vet_fn=three, workers=3)
    assert three.max_active <= 3


def test_default_workers_is_the_core_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 5)
    assert run_gate(entries(req("a", "1")), vet_fn=FakeVet()).workers == 5


def test_cache_hits_skip_the_vet(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "c.sqlite")
    es = entries(req("a", "1.0"), req("b", "2.0"))
    first = FakeVet({"b": "malicious"})
    r1 = run_gate(es, vet_fn=first, cache=cache, cache_context=CTX)
    assert r1.exit_code is ExitCode.FINDINGS and len(first.calls) == 2
    second = FakeVet()
    r2 = run_gate(es, vet_fn=second, cache=cache, cache_context=CTX)
    assert second.calls == []
    assert statuses(r2) == {
        "a": (EntryStatus.CACHED, Verdict.CLEAN),
        "b": (EntryStatus.CACHED, Verdict.MALICIOUS),
    }
    assert r2.exit_code is ExitCode.FINDINGS  # a cached malicious verdict still fails
    other = CTX.model_copy(update={"image_id": "sha256:other"})
    third = FakeVet()
    run_gate(es, vet_fn=third, cache=cache, cache_context=other)
    assert len(third.calls) == 2  # another image: not the same result


def test_locked_hashes_decide_cache_hits(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "c.sqlite")
    good = "sha256:" + fake_sha("a", "1.0")
    run_gate(entries(req("a", "1.0")), vet_fn=FakeVet(), cache=cache, cache_context=CTX)
    hit = FakeVet()
    run_gate(entries(req("a", "1.0", hashes=(good,))), vet_fn=hit, cache=cache, cache_context=CTX)
    assert hit.calls == []
    # the lock pins other files of a==1.0: the cached result is not about them
    miss = FakeVet()
    result = run_gate(
        entries(req("a", "1.0", hashes=("sha256:" + "f" * 64,))), vet_fn=miss, cache=cache, cache_context=CTX
    )
    assert miss.calls == ["a==1.0"]
    out = result.outcomes[0]
    assert out.hash_mismatch and "is not one the lock pins" in out.detail and out.incomplete
    assert result.exit_code is ExitCode.SANDBOX


def test_local_wheels_are_cached_by_content(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "c.sqlite")
    whl = build_wheel(tmp_path, "loc", "1.0", {"loc/__init__.py": "X = 1\n"})
    (tmp_path / "requirements.txt").write_text(f"./{whl.name}\n")
    plan = plan_gate(tmp_path / "requirements.txt")
    first = FakeVet()
    run_gate(plan, vet_fn=first, cache=cache, cache_context=CTX)
    assert first.calls == [str(whl)]
    again = FakeVet()
    r = run_gate(plan, vet_fn=again, cache=cache, cache_context=CTX)
    assert again.calls == [] and r.outcomes[0].status is EntryStatus.CACHED
    # same name and version, different bytes: vetted again
    build_wheel(tmp_path, "loc", "1.0", {"loc/__init__.py": "X = 2\n"})
    rebuilt = FakeVet()
    run_gate(plan, vet_fn=rebuilt, cache=cache, cache_context=CTX)
    assert rebuilt.calls == [str(whl)]
    whl.unlink()
    gone = run_gate(plan, vet_fn=FakeVet(), cache=cache, cache_context=CTX)
    assert gone.outcomes[0].status is EntryStatus.ERROR and "cannot read" in gone.outcomes[0].detail


def test_unpinned_requirements_are_resolved_and_reported_as_such(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "c.sqlite")
    vet = FakeVet(resolve="2.32.3")
    result = run_gate(entries(req("requests", specifier=">=2")), vet_fn=vet, cache=cache, cache_context=CTX)
    assert vet.calls == ["requests>=2"]
    out = result.outcomes[0]
    assert out.entry.unpinned and out.resolved_version == "2.32.3"
    assert "unpinned requirement resolved to 2.32.3" in out.detail
    again = FakeVet(resolve="2.32.3")
    run_gate(entries(req("requests", specifier=">=2")), vet_fn=again, cache=cache, cache_context=CTX)
    assert again.calls == ["requests>=2"]  # what it resolves to is only known by fetching
    pinned = FakeVet()
    run_gate(entries(req("requests", "2.32.3")), vet_fn=pinned, cache=cache, cache_context=CTX)
    assert pinned.calls == []  # but the resolved version's result is cached


def test_cache_needs_a_context(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cache_context"):
        run_gate([], vet_fn=FakeVet(), cache=ResultCache(tmp_path / "c.sqlite"))


def test_observer_sees_every_entry(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    class Recorder(GateObserver):
        def planned(self, es: object, cached: int) -> None:  # type: ignore[override]
            seen.append(("planned", str(cached)))

        def started(self, entry: GateEntry) -> None:
            seen.append(("started", entry.name))

        def finished(self, outcome: GateOutcome) -> None:
            seen.append(("finished", outcome.entry.name))

    run_gate(
        entries(req("a", "1"), req("u", "1", specifier="", kind=SourceKind.URL, url="https://x/u-1.tar.gz")),
        vet_fn=FakeVet(),
        observer=Recorder(),
    )
    assert seen[0] == ("planned", "0")
    assert ("started", "a") in seen and ("finished", "a") in seen and ("finished", "u") in seen
    assert ("started", "u") not in seen


def test_plain_observer_writes_lines() -> None:
    buf = io.StringIO()
    run_gate(entries(req("bad", "1")), vet_fn=FakeVet({"bad": "malicious"}), observer=PlainGateObserver(buf))
    text = buf.getvalue()
    assert "1 package(s) to vet, 0 served from the cache" in text
    assert "bad==1: vetting" in text and "bad==1: malicious" in text


def test_result_serialises_and_reads_back() -> None:
    from sandbox.gate import GateResult

    result = run_gate(entries(req("bad", "1")), vet_fn=FakeVet({"bad": "malicious"}))
    back = GateResult.model_validate_json(result.model_dump_json())
    assert back == result and back.exit_code is ExitCode.FINDINGS


def test_upgrade_is_judged_against_the_previous_versions_behaviour() -> None:
    from sandbox.fetch import parse_spec
    from sandbox.gate import diff_requirements
    from tests.unit.test_gate_fakes import make_report

    behaviour = {"1.0": "clean", "2.0": "malicious", "3.0": "malicious"}
    calls: list[str] = []

    def vet(spec: str) -> object:
        calls.append(spec)
        version = parse_spec(spec).pinned_version or "?"
        return make_report(spec, behaviour[version], name="lib", version=version)

    # 1.0 (clean) -> 2.0 (connects out): the new behaviour is a deviation, and still malicious
    todo, _, _ = diff_requirements([req("lib", "2.0")], [req("lib", "1.0")])
    result = run_gate(todo, vet_fn=vet, workers=1)  # type: ignore[arg-type]
    out = result.outcomes[0]
    assert out.verdict is Verdict.MALICIOUS and "judged against lib 1.0" in out.detail
    assert any(f.rule_id == "PS024" for f in out.report.findings)  # type: ignore[union-attr]
    assert sorted(calls) == ["lib==1.0", "lib==2.0"]
    # 2.0 -> 3.0 with the same behaviour: nothing new (no deviation), but a baseline never
    # explains away high findings: a compromised "trusted" version cannot whitelist the next
    calls.clear()
    todo, _, _ = diff_requirements([req("lib", "3.0")], [req("lib", "2.0")])
    result = run_gate(todo, vet_fn=vet, workers=1)  # type: ignore[arg-type]
    out = result.outcomes[0]
    assert out.verdict is Verdict.MALICIOUS
    assert not any(f.rule_id == "PS024" for f in out.report.findings)  # type: ignore[union-attr]
