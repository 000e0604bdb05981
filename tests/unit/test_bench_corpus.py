"""The corpus benchmark's own logic: the committed list and the version pip would pick."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from packaging.tags import Tag
from packaging.utils import canonicalize_name
from packaging.version import Version

from sandbox.fetch import TargetEnv
from sandbox.fetch.index import IndexFile, Listing

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_corpus", ROOT / "benchmarks" / "bench_corpus.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_corpus"] = mod
    spec.loader.exec_module(mod)
    return mod


bench = _bench()
TARGET = TargetEnv(python_version="3.11", platforms=("manylinux_2_36_x86_64",))


class FakeIndex:
    def __init__(self, files: list[IndexFile], exists: bool = True) -> None:
        self.files = files
        self.exists = exists

    def listing(self, project: str) -> Listing:
        return Listing(canonicalize_name(project), list(self.files), ["index"] if self.exists else [])


def wheel(version: str, tag: str = "py3-none-any", **kw: object) -> IndexFile:
    interp, abi, plat = tag.split("-")
    return IndexFile(
        filename=f"x-{version}-{tag}.whl",
        url=f"https://files.example/x-{version}-{tag}.whl",
        source="index",
        version=Version(version),
        kind="wheel",
        tags=frozenset({Tag(interp, abi, plat)}),
        **kw,  # type: ignore[arg-type]
    )


def sdist(version: str, **kw: object) -> IndexFile:
    return IndexFile(
        filename=f"x-{version}.tar.gz",
        url=f"https://files.example/x-{version}.tar.gz",
        source="index",
        version=Version(version),
        kind="sdist",
        **kw,  # type: ignore[arg-type]
    )


def test_the_committed_list_is_ranked_and_sliced() -> None:
    top = bench.load_corpus(bench.DEFAULT_LIST, 300)
    assert len(top) == 300 and [r for r, _ in top] == list(range(1, 301))
    assert len({n for _, n in top}) == 300
    assert bench.load_corpus(bench.DEFAULT_LIST, 5, offset=295) == top[295:]


def test_newest_installable_release_wins() -> None:
    index = FakeIndex(
        [
            wheel("1.0"),
            wheel("2.0", "cp311-cp311-win_amd64"),  # not for Linux
            sdist("1.5"),  # pip would build it
            wheel("3.0rc1"),  # pre-release: only when nothing else
            wheel("1.8", yanked=True),
            wheel("1.9", requires_python=">=3.13"),
        ]
    )
    version, files = bench.resolve(index, TARGET, "x")
    assert version == "1.5" and [f.kind for f in files] == ["sdist"]


def test_linux_wheel_of_the_newest_release() -> None:
    index = FakeIndex([wheel("2.0", "cp311-cp311-manylinux_2_17_x86_64"), wheel("2.0", "cp311-cp311-win32")])
    version, files = bench.resolve(index, TARGET, "x")
    assert version == "2.0" and [f.filename for f in files] == ["x-2.0-cp311-cp311-manylinux_2_17_x86_64.whl"]


def test_windows_only_projects_are_skipped_with_the_reason() -> None:
    index = FakeIndex([wheel("306", "cp311-cp311-win_amd64"), wheel("306", "cp311-cp311-win32")])
    why = bench.resolve(index, TARGET, "x")
    assert isinstance(why, str) and "no file installs on Linux" in why and "win_amd64" in why
    assert bench.resolve(FakeIndex([], exists=False), TARGET, "x").startswith("not on the index")


def test_summary_has_a_row_per_rule_and_severity_and_a_final_line() -> None:
    from sandbox.models import Evidence, Finding, Phase, Severity

    f = Finding(
        rule_id="PS020",
        title="t",
        severity=Severity.LOW,
        phase=Phase.IMPORT,
        message="m",
        evidence=(Evidence(phase=Phase.IMPORT, pid=1, time=0.0, syscall="openat", path="/home/dev/x"),),
    )
    outcomes = [
        bench.Outcome(1, "a", "1.0", "clean", findings=[f, f]),
        bench.Outcome(2, "b", "1.0", "incomplete", reason="install: timeout"),
        bench.Outcome(3, "c", "", "skipped", reason="no file installs on Linux"),
    ]
    text = bench.summarise(outcomes, 12.0)
    row = next(line for line in text.splitlines() if line.startswith("PS020"))
    assert row.split()[:4] == ["PS020", "low", "2", "1"]
    assert "b 1.0: install: timeout" in text
    assert text.splitlines()[-1].startswith("corpus: 3 projects, 2 vetted")
    assert "1 clean, 0 suspicious, 0 malicious, 1 incomplete, 0 error, 1 skipped in 12 s wall" in text


def test_pip_constraints_cap_the_version_as_they_cap_the_fetch() -> None:
    from packaging.specifiers import SpecifierSet

    index = FakeIndex([wheel("2.0", "cp311-cp311-manylinux_2_17_x86_64"), sdist("1.5")])
    version, files = bench.resolve(index, TARGET, "x", SpecifierSet("<=1.9"))
    assert version == "1.5" and [f.kind for f in files] == ["sdist"]
    assert isinstance(bench.resolve(index, TARGET, "x", SpecifierSet("<1")), str)
