"""End-to-end tests of :func:`sandbox.fetch.fetch` with the real host pip and local indexes.

Each test builds its own wheels, sdists and a ``file://`` (or 127.0.0.1 HTTP)
index; pip is configured through environment variables only (see
``pip_setup``), so the machine's pip.conf does not leak in. No test may
execute an sdist's build code: ``no_execution`` asserts the marker is absent.
"""

# ruff: noqa: F811 - pytest fixtures are imported from test_fetch_fixtures and used as arguments

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from sandbox.errors import FetchError, IndexUnavailable, InputError
from sandbox.fetch import StagedSet, TargetEnv, fetch
from sandbox.models import ArtifactKind, ArtifactRole
from tests.unit.test_fetch_fixtures import (  # noqa: F401 - fixtures
    PIP,
    TARGET,
    Index,
    JsonIndexServer,
    PipSetup,
    evil_pyproject,
    evil_setup_py,
    index,
    make_sdist,
    make_wheel,
    no_execution,
    pip_setup,
    sha256,
    write_tar,
)


def run(spec: str, dest: Path, target: TargetEnv = TARGET, **kwargs: object) -> StagedSet:
    return fetch(spec, target, dest, pip=PIP, **kwargs)  # type: ignore[arg-type]


def staged_names(staged: StagedSet) -> list[tuple[str, str, str, str]]:
    return [(a.role.value, a.kind.value, a.name, a.version) for a in staged.artifacts]


def assert_exact_dir(staged: StagedSet) -> None:
    """The staging dir holds exactly the artifacts, world-readable, with matching hashes."""
    directory = Path(staged.directory)
    assert sorted(p.name for p in directory.iterdir()) == sorted(a.filename for a in staged.artifacts)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o755
    for artifact in staged.artifacts:
        path = directory / artifact.filename
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        assert sha256(path) == artifact.sha256
        assert path.stat().st_size == artifact.size
    assert not any(a.filename.endswith(".whl") and "stub" in a.source for a in staged.artifacts)


# --------------------------------------------------------------------------- wheel path


def test_wheel_path_with_dependencies(index: Index, tmp_path: Path) -> None:
    index.wheel("app", "1.0", ["dep>=1", "other"])
    index.wheel("app", "0.9")
    index.wheel("dep", "1.0")
    index.wheel("dep", "2.0", ["leaf<2"])
    index.wheel("leaf", "1.5")
    index.wheel("leaf", "2.0")
    index.wheel("other", "3.0")
    staged = run("app", tmp_path / "stage")
    assert staged_names(staged) == [
        ("candidate", "wheel", "app", "1.0"),
        ("dependency", "wheel", "dep", "2.0"),
        ("dependency", "wheel", "leaf", "1.5"),
        ("dependency", "wheel", "other", "3.0"),
    ]
    assert staged.candidate == staged.artifacts[0]
    assert staged.install_target == "app-1.0-py3-none-any.whl"
    assert staged.requested == "app"
    assert staged.directory == str(tmp_path / "stage")
    assert_exact_dir(staged)


def test_pinned_version_and_extras(index: Index, tmp_path: Path) -> None:
    index.wheel("app", "1.0", ['clidep; extra == "cli"'], extras=["cli"])
    index.wheel("app", "2.0")
    index.wheel("clidep", "1.0")
    staged = run("App[CLI] == 1.0", tmp_path / "stage")
    assert staged_names(staged) == [
        ("candidate", "wheel", "app", "1.0"),
        ("dependency", "wheel", "clidep", "1.0"),
    ]
    assert staged.install_target == "app-1.0-py3-none-any.whl[cli]"


def test_platform_wheels_are_chosen_for_the_target_not_the_host(index: Index, tmp_path: Path) -> None:
    # manylinux_2_17 only matches a manylinux_2_36 target if the tag list is
    # expanded downwards (pip does not do that for PEP 600 tags).
    good = index.wheel("native", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64")
    index.wheel("native", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64")
    index.wheel("native", "1.0", tag="cp311-cp311-musllinux_1_2_x86_64")
    index.wheel("native", "1.1", tag="cp311-cp311-manylinux_2_38_x86_64")
    staged = run("native", tmp_path / "stage")
    assert staged.candidate.filename == good.name
    abi3 = index.wheel("limited", "1.0", tag="cp38-abi3-manylinux2014_x86_64")
    assert run("limited", tmp_path / "stage2").candidate.filename == abi3.name


def test_markers_are_evaluated_for_the_target(index: Index, tmp_path: Path) -> None:
    # pip evaluates markers for the interpreter it runs on (3.11 here); a 3.10
    # target needs the backport, a 3.11 one does not.
    index.wheel("app", "1.0", ['backport>=1; python_version < "3.11"', 'newonly; python_version >= "3.11"'])
    index.wheel("backport", "1.0")
    index.wheel("newonly", "1.0")
    old = TargetEnv(python_version="3.10", platforms=("manylinux_2_36_x86_64",))
    names_old = {a.name for a in run("app", tmp_path / "old", target=old).artifacts}
    names_new = {a.name for a in run("app", tmp_path / "new").artifacts}
    assert "backport" in names_old
    assert "backport" not in names_new and "newonly" in names_new


def test_spec_marker_excluding_the_target(index: Index, tmp_path: Path) -> None:
    index.wheel("app", "1.0")
    with pytest.raises(InputError, match="excludes the sandbox"):
        run('app; python_version < "3"', tmp_path / "stage")


# --------------------------------------------------------------------------- sdist fallback


def test_sdist_dependency_through_stub_wheel(index: Index, tmp_path: Path, no_execution: Path) -> None:
    index.wheel("app", "1.0", ["sdonly>=1"])
    sdist = index.sdist(
        "sdonly",
        "1.2",
        requires=["leaf>=2", 'extraonly; extra == "x"'],
        pyproject=evil_pyproject(["mybackend>=1"], backend="evil_backend"),
    )
    index.sdist("sdonly", "0.5")
    index.wheel("leaf", "2.0")
    index.wheel("extraonly", "1.0")
    index.wheel("mybackend", "1.0", ["backend-helper"])
    index.wheel("backend-helper", "1.0")
    staged = run("app", tmp_path / "stage")
    assert staged_names(staged) == [
        ("candidate", "wheel", "app", "1.0"),
        ("dependency", "wheel", "leaf", "2.0"),
        ("dependency", "sdist", "sdonly", "1.2"),
        ("build", "wheel", "backend-helper", "1.0"),
        ("build", "wheel", "mybackend", "1.0"),
    ]
    staged_sdist = next(a for a in staged.artifacts if a.kind is ArtifactKind.SDIST)
    # The original file, byte for byte, from the index.
    assert staged_sdist.sha256 == sha256(sdist)
    assert staged_sdist.source.endswith("/files/sdonly-1.2.tar.gz")
    assert any("evil_backend" in n and "build requirements" in n for n in staged.notes)
    assert_exact_dir(staged)
    assert not no_execution.exists()


def test_sdist_only_candidate_with_legacy_setup_py(index: Index, tmp_path: Path) -> None:
    index.sdist("legacy", "2.0", metadata_version="1.1", requires=["hinted"])
    index.sdist("legacy", "1.0", metadata_version="1.1")
    index.wheel("hinted", "1.0")
    index.wheel("setuptools", "69.0")
    index.wheel("wheel", "0.42")
    staged = run("legacy", tmp_path / "stage")
    assert staged_names(staged) == [
        ("candidate", "sdist", "legacy", "2.0"),
        ("dependency", "wheel", "hinted", "1.0"),
        ("build", "wheel", "setuptools", "69.0"),
        ("build", "wheel", "wheel", "0.42"),
    ]
    assert staged.install_target == "legacy-2.0.tar.gz"
    # PKG-INFO 1.1 is not promised static: used as a hint, and said so.
    assert any("PKG-INFO 1.1" in n for n in staged.notes)


def test_legacy_setup_py_with_the_kit_in_the_image_stages_neither_kit_nor_default_build(
    index: Index, tmp_path: Path
) -> None:
    # The image bakes the developer kit (images/kit/) and its venv has setuptools: the
    # candidate builds without isolation in that venv, so nothing of it is staged.
    index.sdist("legacy", "2.0", metadata_version="1.1", requires=["hinted"])
    index.wheel("hinted", "1.0")
    index.wheel("setuptools", "69.0")
    index.wheel("wheel", "0.42")
    kit = ("certifi", "charset-normalizer", "idna", "packaging", "requests", "six", "urllib3", "wheel")
    target = TARGET.model_copy(update={"kit": kit, "venv": ("pip", "setuptools")})
    staged = run("legacy", tmp_path / "stage", target)
    assert staged_names(staged) == [
        ("candidate", "sdist", "legacy", "2.0"),
        ("dependency", "wheel", "hinted", "1.0"),
    ]
    assert staged.kit == ("wheel", "requests", "six")
    assert staged.kit_in_image
    assert any("wheel, requests, six (from the image)" in n for n in staged.notes), staged.notes
    # A venv without setuptools (a python:3.12 base): the build requirements are staged.
    target = TARGET.model_copy(update={"kit": kit, "venv": ("pip",)})
    staged = run("legacy", tmp_path / "stage2", target)
    assert [n[2] for n in staged_names(staged) if n[0] == "build"] == ["setuptools", "wheel"]
    assert staged.kit_in_image


def test_sdist_with_dynamic_dependencies_is_noted(index: Index, tmp_path: Path) -> None:
    index.sdist("dyn", "1.0", metadata_version="1.1")
    index.wheel("setuptools", "69.0")
    index.wheel("wheel", "0.42")
    staged = run("dyn", tmp_path / "stage")
    assert staged.candidate.kind is ArtifactKind.SDIST
    assert "dependency list of dyn-1.0.tar.gz is dynamic; dependencies may be missing" in staged.notes


def test_sdist_chain_and_build_requirement_sdist(index: Index, tmp_path: Path) -> None:
    # a (wheel) -> b (sdist) -> c (sdist) -> d (wheel); b builds with an
    # sdist-only backend whose own build needs setuptools.
    index.wheel("a", "1.0", ["b"])
    index.sdist("b", "1.0", requires=["c"], pyproject=evil_pyproject(["sdbackend"]))
    index.sdist("c", "1.0", requires=["d"], pyproject=evil_pyproject(["setuptools"]))
    index.wheel("d", "1.0")
    index.sdist("sdbackend", "1.0", pyproject=evil_pyproject(["setuptools"]))
    index.wheel("setuptools", "69.0")
    index.wheel("wheel", "0.42")
    staged = run("a", tmp_path / "stage")
    assert staged_names(staged) == [
        ("candidate", "wheel", "a", "1.0"),
        ("dependency", "sdist", "b", "1.0"),
        ("dependency", "sdist", "c", "1.0"),
        ("dependency", "wheel", "d", "1.0"),
        ("build", "sdist", "sdbackend", "1.0"),
        ("build", "wheel", "setuptools", "69.0"),
    ]
    assert_exact_dir(staged)


def test_newer_release_that_is_only_an_sdist_is_preferred(index: Index, tmp_path: Path) -> None:
    index.wheel("pkg", "1.0")
    index.sdist("pkg", "2.0", pyproject=evil_pyproject(["setuptools"]))
    index.wheel("setuptools", "69.0")
    staged = run("pkg", tmp_path / "latest")
    assert (staged.candidate.version, staged.candidate.kind) == ("2.0", ArtifactKind.SDIST)
    assert any("only published as an sdist" in n for n in staged.notes)
    pinned = run("pkg==1.0", tmp_path / "pinned")
    assert (pinned.candidate.version, pinned.candidate.kind) == ("1.0", ArtifactKind.WHEEL)


def test_sdist_requires_python_is_respected(index: Index, tmp_path: Path) -> None:
    index.add(
        make_sdist(index.files, "modern", "2.0", index.marker, requires=["x"]), requires_python=">=3.12"
    )
    index.sdist("modern", "1.0")
    index.wheel("setuptools", "69.0")
    index.wheel("wheel", "0.42")
    staged = run("modern", tmp_path / "stage")
    assert staged.candidate.version == "1.0"


def test_sha256_mismatch_is_an_error(index: Index, tmp_path: Path) -> None:
    index.wheel("app", "1.0", ["sdonly"])
    index.add(make_sdist(index.files, "sdonly", "1.0", index.marker), bad_hash=True)
    dest = tmp_path / "stage"
    with pytest.raises(FetchError, match=r"sha256 mismatch for sdonly-1\.0\.tar\.gz"):
        run("app", dest)
    assert not dest.exists()  # created by fetch, removed again


def test_invalid_sdist_on_the_index_is_rejected(index: Index, tmp_path: Path) -> None:
    bogus = index.files / "bogus-1.0.tar.gz"
    write_tar(bogus, {"bogus-1.0/../../escape.txt": b"x", "bogus-1.0/setup.py": b""})
    index.add(bogus)
    with pytest.raises(InputError, match=r"bogus-1\.0\.tar\.gz is not a valid sdist: .*escapes"):
        run("bogus", tmp_path / "stage")


# --------------------------------------------------------------------------- errors


def test_unknown_package(index: Index, tmp_path: Path) -> None:
    index.wheel("app", "1.0")
    with pytest.raises(InputError, match=r"^no such package 'nosuch' on the index \(file://") as info:
        run("nosuch", tmp_path / "stage")
    assert type(info.value) is InputError


def test_unknown_version_lists_available_ones(index: Index, tmp_path: Path) -> None:
    for version in ("1.0", "1.1", "2.0"):
        index.wheel("app", version)
    with pytest.raises(
        InputError, match=r"'app' has no version matching '==9\.9'.*available: 1\.0, 1\.1, 2\.0"
    ):
        run("app==9.9", tmp_path / "stage")


def test_missing_dependency_names_the_requirement(index: Index, tmp_path: Path) -> None:
    index.wheel("app", "1.0", ["ghost>=2"])
    with pytest.raises(FetchError, match=r"cannot stage dependency 'ghost>=2' of app 1\.0: no such package"):
        run("app", tmp_path / "stage")


def test_dependency_without_wheel_for_target_or_sdist(index: Index, tmp_path: Path) -> None:
    index.wheel("app", "1.0", ["winonly>=1"])
    index.wheel("winonly", "1.0", tag="cp311-cp311-win_amd64")
    expected = (
        r"cannot stage dependency 'winonly>=1' of app 1\.0: "
        r"no wheel for Python 3\.11 manylinux_2_36_x86_64 and no sdist on the index"
    )
    with pytest.raises(FetchError, match=expected):
        run("app", tmp_path / "stage")


def test_direct_url_dependency_is_never_built(index: Index, tmp_path: Path, no_execution: Path) -> None:
    # pip builds direct references even in --only-binary mode; the guard stops it.
    evil = make_sdist(tmp_path / "elsewhere", "evil", "1.0", no_execution)
    index.wheel("app", "1.0", [f"evil @ {evil.as_uri()}"])
    with pytest.raises(FetchError, match=r"refusing to fetch .*evil-1\.0\.tar\.gz"):
        run("app", tmp_path / "stage")
    assert not no_execution.exists()


def test_local_wheel_with_direct_url_dependency_is_refused(tmp_path: Path, index: Index) -> None:
    wheel = make_wheel(tmp_path / "mine", "mine", "1.0", ["evil @ https://example.invalid/evil-1.0.tar.gz"])
    with pytest.raises(FetchError, match="direct URL reference"):
        run(str(wheel), tmp_path / "stage")


def test_staging_dir_must_be_empty(index: Index, tmp_path: Path) -> None:
    index.wheel("app", "1.0")
    dest = tmp_path / "stage"
    dest.mkdir()
    (dest / "leftover").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        run("app", dest)


def test_existing_empty_staging_dir_is_used(index: Index, tmp_path: Path) -> None:
    index.wheel("app", "1.0")
    dest = tmp_path / "stage"
    dest.mkdir(mode=0o700)
    staged = run("app", dest)
    assert_exact_dir(staged)


def test_pip_must_be_run_as_a_module(index: Index, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="must run pip as a module"):
        fetch("app", TARGET, tmp_path / "stage", pip=["pip3"])


def test_timeout(index: Index, tmp_path: Path) -> None:
    index.wheel("app", "1.0")
    with pytest.raises(IndexUnavailable, match="timed out"):
        run("app", tmp_path / "stage", timeout=0.05)


def test_unreachable_index_names_the_url(pip_setup: PipSetup, tmp_path: Path, no_execution: Path) -> None:
    url = "http://127.0.0.1:9/simple"  # discard port: nothing listens
    pip_setup.configure(index_url=url)
    with pytest.raises(IndexUnavailable, match=r"127\.0\.0\.1:9/simple"):  # exit 3: an outage
        run("app", tmp_path / "stage")


# --------------------------------------------------------------------------- local files


def test_local_wheel(index: Index, tmp_path: Path) -> None:
    index.wheel("dep", "1.0")
    index.wheel("mine", "1.0")  # the index's own mine must not replace the local file
    index.wheel("extra-dep", "1.0")
    wheel = make_wheel(
        tmp_path / "mine",
        "mine",
        "1.0",
        ["dep", 'extra-dep; extra == "full"', 'never; sys_platform == "win32"'],
        extras=["full"],
    )
    staged = run(f"{wheel}[full]", tmp_path / "stage")
    assert staged_names(staged) == [
        ("candidate", "wheel", "mine", "1.0"),
        ("dependency", "wheel", "dep", "1.0"),
        ("dependency", "wheel", "extra-dep", "1.0"),
    ]
    assert staged.candidate.sha256 == sha256(wheel)
    assert staged.candidate.source == str(wheel)
    assert staged.install_target == f"{wheel.name}[full]"


def test_local_wheel_for_another_platform(index: Index, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "mine", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
    with pytest.raises(InputError, match="does not install on the sandbox"):
        run(str(wheel), tmp_path / "stage")


def test_local_corrupt_wheel(index: Index, tmp_path: Path) -> None:
    wheel = tmp_path / "mine-1.0-py3-none-any.whl"
    wheel.write_bytes(b"this is not a zip file at all")
    with pytest.raises(InputError, match=r"^mine-1\.0-py3-none-any\.whl is not a valid wheel"):
        run(str(wheel), tmp_path / "stage")


def test_local_sdist(index: Index, tmp_path: Path, no_execution: Path) -> None:
    index.wheel("dep", "1.0")
    index.wheel("setuptools", "69.0")
    index.wheel("wheel", "0.42")
    index.wheel("mine", "1.0")  # a wheel of the same name and version must not win
    sdist = make_sdist(
        tmp_path / "mine",
        "mine",
        "1.0",
        no_execution,
        fmt="zip",
        pkg_info="Metadata-Version: 2.1\nName: mine\nVersion: 1.0\n",
        pyproject='[project]\nname = "mine"\nversion = "1.0"\ndependencies = ["dep"]\n',
    )
    staged = run(str(sdist), tmp_path / "stage")
    assert staged_names(staged) == [
        ("candidate", "sdist", "mine", "1.0"),
        ("dependency", "wheel", "dep", "1.0"),
        ("build", "wheel", "setuptools", "69.0"),
        ("build", "wheel", "wheel", "0.42"),
    ]
    assert staged.candidate.sha256 == sha256(sdist)
    assert staged.install_target == "mine-1.0.zip"
    assert_exact_dir(staged)


def test_local_file_that_is_not_a_distribution(index: Index, tmp_path: Path) -> None:
    path = tmp_path / "photos-1.0.tar.gz"
    write_tar(path, {"photos-1.0/cat.jpg": b"\xff\xd8"})
    with pytest.raises(InputError, match=r"has no PKG-INFO, pyproject\.toml or setup\.py"):
        run(str(path), tmp_path / "stage")


# --------------------------------------------------------------------------- pip configuration


def test_sdist_from_find_links_directory(pip_setup: PipSetup, tmp_path: Path, no_execution: Path) -> None:
    links = tmp_path / "links"
    make_wheel(links, "app", "1.0", ["sdonly"])
    make_sdist(links, "sdonly", "1.0", no_execution, pyproject=evil_pyproject(["setuptools"]))
    make_wheel(links, "setuptools", "69.0")
    pip_setup.configure(no_index="true", find_links=str(links))
    staged = run("app", tmp_path / "stage")
    assert [(a.name, a.kind.value) for a in staged.artifacts] == [
        ("app", "wheel"),
        ("sdonly", "sdist"),
        ("setuptools", "wheel"),
    ]
    assert staged.artifacts[1].source == (links / "sdonly-1.0.tar.gz").as_uri()


def test_pip_constraints_apply_to_sdists(index: Index, pip_setup: PipSetup, tmp_path: Path) -> None:
    index.sdist("capped", "1.0", pyproject=evil_pyproject(["setuptools"]))
    index.sdist("capped", "2.0", pyproject=evil_pyproject(["setuptools"]))
    index.wheel("setuptools", "69.0")
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("capped<2  # cap\n")
    pip_setup.monkeypatch.setenv("PIP_CONSTRAINT", str(constraints))
    assert run("capped", tmp_path / "stage").candidate.version == "1.0"


def test_json_index_over_http(index: Index, pip_setup: PipSetup, tmp_path: Path) -> None:
    index.wheel("app", "1.0", ["sdonly"])
    sdist = index.sdist("sdonly", "1.0", pyproject=evil_pyproject(["setuptools"]))
    index.wheel("setuptools", "69.0")
    with JsonIndexServer(index) as server:
        pip_setup.configure(index_url=f"{server.url}/simple")
        staged = run("app", tmp_path / "stage")
        json_requests = [p for p, accept in server.requests if "vnd.pypi.simple.v1+json" in accept]
    assert [a.name for a in staged.artifacts] == ["app", "sdonly", "setuptools"]
    assert staged.artifacts[1].source == f"{server.url}/files/{sdist.name}"
    assert "/simple/sdonly/" in json_requests


def test_http_index_bad_hash_over_json(index: Index, pip_setup: PipSetup, tmp_path: Path) -> None:
    index.wheel("app", "1.0", ["sdonly"])
    index.add(make_sdist(index.files, "sdonly", "1.0", index.marker), bad_hash=True)
    with JsonIndexServer(index) as server:
        pip_setup.configure(index_url=f"{server.url}/simple")
        with pytest.raises(FetchError, match="sha256 mismatch"):
            run("app", tmp_path / "stage")


def test_http_index_server_error(index: Index, pip_setup: PipSetup, tmp_path: Path) -> None:
    with JsonIndexServer(index) as server:
        pip_setup.configure(index_url=f"{server.url}/simple")
        server.fail_with = 503
        with pytest.raises(IndexUnavailable, match=rf"{server.url}/simple.*503"):
            run("app", tmp_path / "stage")


@pytest.mark.skipif(sys.platform != "linux", reason="file modes")
def test_staged_files_readable_despite_umask(index: Index, tmp_path: Path) -> None:
    index.wheel("app", "1.0")
    old = os.umask(0o077)
    try:
        staged = run("app", tmp_path / "stage")
    finally:
        os.umask(old)
    assert_exact_dir(staged)


def test_roles_and_order_are_stable(index: Index, tmp_path: Path) -> None:
    # setuptools is both a runtime dependency and a build requirement: staged once, as a dependency.
    index.wheel("app", "1.0", ["sdonly", "setuptools"])
    index.sdist("sdonly", "1.0", pyproject=evil_pyproject(["setuptools", "zbuild"]))
    index.wheel("setuptools", "69.0")
    index.wheel("zbuild", "1.0")
    first = run("app", tmp_path / "one")
    second = run("app", tmp_path / "two")
    assert (
        staged_names(first)
        == staged_names(second)
        == [
            ("candidate", "wheel", "app", "1.0"),
            ("dependency", "sdist", "sdonly", "1.0"),
            ("dependency", "wheel", "setuptools", "69.0"),
            ("build", "wheel", "zbuild", "1.0"),
        ]
    )
    assert all(a.role is not ArtifactRole.CANDIDATE for a in first.artifacts[1:])


def test_evil_setup_py_fixture_really_writes_marker(tmp_path: Path) -> None:
    # Guards the guard: the fixture's setup.py would leave the marker if run.
    marker = tmp_path / "m"
    script = tmp_path / "setup.py"
    script.write_text(evil_setup_py(marker))
    with pytest.raises(SystemExit):
        exec(compile(script.read_text(), str(script), "exec"), {})
    assert marker.exists()


def test_dependency_conflict_is_reported_as_such(index: Index, tmp_path: Path) -> None:
    index.wheel("app", "1.0", ["x<2", "y"])
    index.wheel("y", "1.0", ["x>=2"])
    index.wheel("x", "1.0")
    index.wheel("x", "2.0")
    with pytest.raises(
        FetchError, match=r"conflicting dependencies .*app 1\.0 depends on x<2; y 1\.0 depends on x>=2"
    ):
        run("app", tmp_path / "stage")


def test_pip_configuration_is_cached_by_what_it_is_made_of(
    pip_setup: PipSetup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox.fetch.pip import Deadline, PipRunner

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    pip_setup.configure(index_url="http://192.0.2.1/simple")
    assert PipRunner(PIP, Deadline(60)).config()["index-url"] == "http://192.0.2.1/simple"
    ran: list[list[str]] = []
    real_run = PipRunner.run

    def spy(self: PipRunner, args: list[str], what: str) -> object:
        ran.append(list(args))
        return real_run(self, args, what)

    monkeypatch.setattr(PipRunner, "run", spy)
    # the same configuration: answered from the cache, no pip start-up
    assert PipRunner(PIP, Deadline(60)).config()["index-url"] == "http://192.0.2.1/simple"
    assert ran == []
    # a changed file, then a changed PIP_* variable: pip is asked again
    pip_setup.configure(index_url="http://198.51.100.1/simple")
    assert PipRunner(PIP, Deadline(60)).config()["index-url"] == "http://198.51.100.1/simple"
    monkeypatch.setenv("PIP_INDEX_URL", "http://203.0.113.1/simple")
    assert PipRunner(PIP, Deadline(60)).config()["index-url"] == "http://203.0.113.1/simple"
    assert [a[:2] for a in ran] == [["config", "list"], ["config", "list"]]
