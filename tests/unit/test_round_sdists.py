"""Adaptive rounds fetch an sdist when no wheel fits a requirement (host side, real
host pip and a local index; nothing of an sdist runs here: ``no_execution``).

A legacy ``setup_requires=["fernet"]`` whose project publishes sdists only was left to
setuptools, which fetched it from the internet itself: a beacon to the judge, and the
payload behind it never ran."""

# ruff: noqa: F811 - pytest fixtures are imported from test_fetch_fixtures and used as arguments

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from sandbox.agent.rounds import to_install
from sandbox.errors import FetchError
from sandbox.fetch.pip import Deadline, PipRunner, kill_running
from sandbox.fetch.rounds import RoundFetcher
from sandbox.models import ArtifactKind
from tests.unit.test_fetch_fixtures import (  # noqa: F401 - fixtures
    PIP,
    TARGET,
    Index,
    evil_pyproject,
    index,
    no_execution,
    pip_setup,
    sha256,
)

KIT = ("certifi", "charset-normalizer", "idna", "packaging", "requests", "six", "urllib3", "wheel")


def _answer(stage: Path, number: int = 1) -> dict[str, object]:
    answer: dict[str, object] = json.loads((stage / "rounds" / f"{number}.json").read_text())
    return answer


def _fetcher(tmp_path: Path, venv: tuple[str, ...] = ("pip", "setuptools")) -> tuple[RoundFetcher, Path]:
    stage = tmp_path / "stage"
    (stage / "artifacts").mkdir(parents=True)
    target = TARGET.model_copy(update={"kit": KIT, "venv": venv})
    return RoundFetcher(target, stage, "candidate", pip=PIP), stage


def test_a_requirement_with_sdists_only_gets_its_sdist_and_builds_in_the_venv(
    index: Index, tmp_path: Path, no_execution: Path
) -> None:
    sdist = index.sdist("sdonly", "1.0", metadata_version="1.1", requires=["dep"])
    index.sdist("sdonly-dep", "1.0")  # another project: never staged
    index.sdist("dep", "2.0", metadata_version="1.1")
    index.wheel("setuptools", "69.0")
    index.wheel("wheel", "0.42")
    rounds, stage = _fetcher(tmp_path)
    rounds.answer({"round": 1, "phase": "install", "requirements": ["sdonly"], "reason": "setup_requires"})
    answer = _answer(stage)
    assert answer["install"] == ["sdonly"] and answer["missing"] == []
    assert sorted(map(str, answer["added"])) == ["dep-2.0.tar.gz", "sdonly-1.0.tar.gz"]  # type: ignore[call-overload]
    # legacy setup.py sdists with the image's kit: built in the venv, nothing to isolate
    assert answer["flags"] == ["--no-build-isolation"]
    staged = (stage / "artifacts" / "sdonly-1.0.tar.gz").read_bytes()
    assert staged == sdist.read_bytes()
    kinds = {a.filename: a.kind for a in rounds.artifacts}
    assert kinds == {"sdonly-1.0.tar.gz": ArtifactKind.SDIST, "dep-2.0.tar.gz": ArtifactKind.SDIST}
    assert next(a for a in rounds.artifacts if a.filename == "sdonly-1.0.tar.gz").sha256 == sha256(sdist)
    assert rounds.rounds[0].installed == ("sdonly",)
    assert to_install(answer) == ["--no-build-isolation", "sdonly"]
    assert not no_execution.exists()


def test_an_sdist_with_its_own_backend_builds_isolated_with_its_build_requirements(
    index: Index, tmp_path: Path, no_execution: Path
) -> None:
    index.sdist("modern", "1.0", pyproject=evil_pyproject(["mybackend>=1"], backend="evil_backend"))
    index.wheel("mybackend", "1.0")
    rounds, stage = _fetcher(tmp_path)
    rounds.answer({"round": 1, "phase": "install", "requirements": ["modern"]})
    answer = _answer(stage)
    assert sorted(map(str, answer["added"])) == ["modern-1.0.tar.gz", "mybackend-1.0-py3-none-any.whl"]  # type: ignore[call-overload]
    assert answer["flags"] == []
    assert not no_execution.exists()


def test_a_wheel_is_still_preferred_and_a_module_request_stays_wheel_only(
    index: Index, tmp_path: Path
) -> None:
    index.wheel("both", "1.0")
    index.sdist("both", "1.1")
    index.sdist("onlysd", "1.0")
    rounds, stage = _fetcher(tmp_path)
    rounds.answer({"round": 1, "phase": "install", "requirements": ["both<1.1"]})
    assert _answer(stage)["added"] == ["both-1.0-py3-none-any.whl"] and _answer(stage)["flags"] == []
    # a module request names a distribution by mapping: its wheel must show the module
    rounds.answer({"round": 2, "phase": "import", "modules": ["onlysd"]})
    answer = _answer(stage, 2)
    assert answer["install"] == [] and answer["missing"], answer


def test_a_round_answer_becomes_pip_options_only_from_its_list() -> None:
    assert to_install(
        {"install": ["a", "--index-url=http://x.invalid"], "flags": ["--pre", "--no-build-isolation"]}
    ) == [
        "--no-build-isolation",
        "a",
    ]
    assert to_install({"install": [], "flags": ["--no-build-isolation"]}) == []
    assert to_install(None) == []


def test_a_prefetched_setup_requires_is_staged_only_when_the_agent_asks(
    index: Index, tmp_path: Path, no_execution: Path
) -> None:
    # the host fetches a local sdist's literal setup_requires while the sandbox starts;
    # the round that asks for it waits for nothing (the index can be gone by then)
    import shutil

    index.sdist("sdonly", "1.0", metadata_version="1.1")
    index.wheel("setuptools", "69.0")
    index.wheel("wheel", "0.42")
    rounds, stage = _fetcher(tmp_path)
    # the kit's and the venv's own names are there already: never fetched
    rounds.prefetch(["sdonly", "requests>=2", "setuptools", "x @ https://a.invalid/x.tar.gz"])
    assert list(rounds._early) == ["sdonly"]
    rounds._early["sdonly"].result(timeout=60)
    assert list((stage / "artifacts").iterdir()) == []  # nothing staged before it is asked
    shutil.rmtree(index.root)
    rounds.answer({"round": 1, "phase": "install", "requirements": ["sdonly"], "reason": "setup_requires"})
    answer = _answer(stage)
    assert answer["install"] == ["sdonly"] and answer["added"] == ["sdonly-1.0.tar.gz"], answer
    rounds.close()
    assert not no_execution.exists()


def test_a_prefetch_nobody_asked_for_leaves_nothing_behind(
    index: Index, tmp_path: Path, no_execution: Path
) -> None:
    import tempfile

    index.sdist("sdonly", "1.0", metadata_version="1.1")
    index.wheel("setuptools", "69.0")
    index.wheel("wheel", "0.42")
    rounds, stage = _fetcher(tmp_path)
    before = set(Path(tempfile.gettempdir()).glob("pkgsandbox-round-*"))
    rounds.prefetch(["sdonly"])
    fetched = rounds._early["sdonly"].result(timeout=60)
    assert fetched.work.is_dir()
    rounds.close()
    assert not fetched.work.exists()
    assert set(Path(tempfile.gettempdir()).glob("pkgsandbox-round-*")) <= before
    assert list((stage / "artifacts").iterdir()) == []
    assert not no_execution.exists()


def _hanging(n: int) -> tuple[list[PipRunner], list[threading.Thread], list[BaseException]]:
    """*n* pip runs that hang, each in its thread, started (their errors collected)."""
    runners = [PipRunner(PIP, Deadline(120)) for _ in range(n)]
    threads, failed = [], []

    def run(runner: PipRunner) -> None:
        try:
            runner.run(["download", "x"], "fetching x")
        except BaseException as exc:
            failed.append(exc)

    for runner in runners:
        runner.command = [sys.executable, "-c", "import time; time.sleep(60)"]  # a pip that hangs
        threads.append(threading.Thread(target=run, args=(runner,)))
        threads[-1].start()
    while any(r._proc is None for r in runners):
        time.sleep(0.01)
    return runners, threads, failed


def test_closing_kills_a_prefetch_still_in_flight(tmp_path: Path) -> None:
    # a vet that ends (or is interrupted) while the prefetch's pip still runs: its pip is
    # killed at once, never waited for
    (runner,), (t,), failed = _hanging(1)
    started = time.monotonic()
    runner.cancel()
    t.join(10)
    assert not t.is_alive() and time.monotonic() - started < 5
    assert len(failed) == 1 and isinstance(failed[0], FetchError)
    assert runner._proc is not None and runner._proc.poll() is not None
    with pytest.raises(FetchError):
        runner.run(["download", "x"], "fetching x")  # a cancelled runner starts nothing more


def test_an_interrupt_kills_every_pip_in_flight(tmp_path: Path) -> None:
    # Ctrl-C reaches the main thread only; a fetch thread's pip (its own session) ran on
    # and the interpreter's exit waited for it to end
    _, threads, _ = _hanging(2)
    started = time.monotonic()
    kill_running()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads) and time.monotonic() - started < 5
