"""Spec parsing, the target environment, and parsing of pip's output and configuration."""

# ruff: noqa: F811 - pytest fixtures are imported from test_fetch_fixtures and used as arguments

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.tags import Tag
from pydantic import ValidationError

from sandbox.errors import InputError
from sandbox.fetch import SpecKind, TargetEnv, parse_spec
from sandbox.fetch.pip import GUARD, PipResult, guarded_command, parse_config_list, unsatisfied
from sandbox.fetch.target import expand_platform
from sandbox.models import ImageInfo
from tests.unit.test_fetch_fixtures import TARGET, make_sdist, make_wheel, no_execution  # noqa: F401

# --------------------------------------------------------------------------- parse_spec


@pytest.mark.parametrize(
    ("spec", "name", "specifier", "extras", "marker"),
    [
        ("requests", "requests", "", (), ""),
        ("  Requests  ", "requests", "", (), ""),
        ("Foo_Bar==1.0", "foo-bar", "==1.0", (), ""),
        ("foo>=1,<2", "foo", "<2,>=1", (), ""),
        ("foo[Socks, security]~=2.3", "foo", "~=2.3", ("security", "socks"), ""),
        ('foo; python_version >= "3.8"', "foo", "", (), 'python_version >= "3.8"'),
        ("zope.interface", "zope-interface", "", (), ""),
    ],
)
def test_requirement_specs(
    spec: str, name: str, specifier: str, extras: tuple[str, ...], marker: str
) -> None:
    parsed = parse_spec(spec)
    assert parsed.kind is SpecKind.REQUIREMENT
    assert (parsed.name, parsed.specifier, parsed.extras, parsed.marker) == (name, specifier, extras, marker)
    assert parsed.raw == spec


def test_requirement_string_and_pin() -> None:
    assert parse_spec("Foo[b,a]>=1").requirement() == "foo[a,b]>=1"
    assert parse_spec("foo==1.0").pinned_version == "1.0"
    assert parse_spec("foo==1.*").pinned_version is None
    assert parse_spec("foo>=1").pinned_version is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty package spec"),
        ("   ", "empty package spec"),
        ("foo==", "invalid package spec 'foo=='"),
        ("foo bar", "invalid package spec 'foo bar'"),
        ("foo>=1,,", "invalid package spec"),
        ("https://example.com/foo-1.0.tar.gz", "URLs and direct references are not supported"),
        ("git+https://github.com/x/y", "URLs and direct references are not supported"),
        (
            "foo @ https://example.com/foo-1.0-py3-none-any.whl",
            "URLs and direct references are not supported",
        ),
        ("foo@file:///tmp/foo.whl", "URLs and direct references are not supported"),
    ],
)
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        parse_spec(spec)
    assert "\n" not in info.value.diagnostics()


def test_local_wheel_spec(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "Foo", "1.0")
    parsed = parse_spec(str(wheel))
    assert (parsed.kind, parsed.name, parsed.version, parsed.path) == (
        SpecKind.WHEEL,
        "foo",
        "1.0",
        str(wheel),
    )
    with_extras = parse_spec(f"{wheel}[cli, x]")
    assert with_extras.extras == ("cli", "x") and with_extras.path == str(wheel)


def test_relative_local_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_execution: Path) -> None:
    make_sdist(tmp_path, "foo", "2.0", no_execution, fmt="zip")
    monkeypatch.chdir(tmp_path)
    parsed = parse_spec("foo-2.0.zip")
    assert (parsed.kind, parsed.name, parsed.version) == (SpecKind.SDIST, "foo", "2.0")
    assert parsed.path == str(tmp_path / "foo-2.0.zip")
    assert parse_spec("./foo-2.0.zip").path == parsed.path


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing-1.0.tar.gz", "no such file: "),
        ("missing-1.0-py3-none-any.whl", "no such file: "),
        ("notes.txt", "is not a wheel or sdist"),
        ("bad.whl", "is not a valid wheel: bad wheel filename"),
        ("nodash.tar.gz", "is not a valid sdist"),
    ],
)
def test_bad_local_files(tmp_path: Path, name: str, message: str) -> None:
    if not name.startswith("missing"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(InputError, match=message):
        parse_spec(str(tmp_path / name))


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        parse_spec(str(tmp_path))


# --------------------------------------------------------------------------- TargetEnv


def test_pip_args_expand_manylinux_and_select_the_abi() -> None:
    args = TARGET.pip_args()
    assert args[:7] == [
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
    ]
    platforms = [args[i + 1] for i, a in enumerate(args) if a == "--platform"]
    assert platforms[0] == "manylinux_2_36_x86_64"
    for tag in ("manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64", "linux_x86_64"):
        assert tag in platforms
    assert len(platforms) == len(set(platforms))


def test_expand_platform() -> None:
    assert expand_platform("linux_x86_64") == ["linux_x86_64"]
    arm = expand_platform("manylinux_2_28_aarch64")
    assert arm[0] == "manylinux_2_28_aarch64" and arm[-1] == "manylinux2014_aarch64"
    assert "manylinux2010_aarch64" not in arm
    assert expand_platform("manylinux2014_x86_64")[0] == "manylinux_2_17_x86_64"
    assert expand_platform("musllinux_1_2_x86_64") == [
        "musllinux_1_2_x86_64",
        "musllinux_1_1_x86_64",
        "musllinux_1_0_x86_64",
    ]


def test_target_tags() -> None:
    tags = TARGET.tags()
    for tag in (
        "cp311-cp311-manylinux_2_17_x86_64",
        "cp38-abi3-manylinux1_x86_64",
        "py3-none-any",
        "cp311-none-any",
    ):
        assert Tag(*tag.split("-")) in tags
    assert Tag("cp312", "cp312", "manylinux_2_17_x86_64") not in tags
    assert Tag("cp311", "cp311", "manylinux_2_38_x86_64") not in tags


def test_target_markers() -> None:
    markers = TargetEnv(python_version="3.10.4", platforms=("manylinux_2_28_aarch64",)).markers()
    assert markers["python_version"] == "3.10"
    assert markers["python_full_version"] == "3.10.4"
    assert markers["platform_machine"] == "aarch64"
    assert (markers["sys_platform"], markers["implementation_name"]) == ("linux", "cpython")
    assert TARGET.markers()["python_full_version"] == "3.11.0"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"python_version": "3", "platforms": ("linux_x86_64",)},
        {"python_version": "2.7", "platforms": ("linux_x86_64",)},
        {"python_version": "3.11", "platforms": ()},
        {"python_version": "3.11", "platforms": ("win_amd64",)},
        {"python_version": "3.11", "platforms": ("Linux x86",)},
        {"python_version": "3.11", "implementation": "pp", "platforms": ("linux_x86_64",)},
    ],
)
def test_invalid_targets(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TargetEnv(**kwargs)


def test_target_for_image() -> None:
    image = ImageInfo(tag="t", id="i", base="b", python="3.12", platforms=("manylinux_2_36_x86_64",))
    assert TargetEnv.for_image(image).abi == "cp312"


# --------------------------------------------------------------------------- pip plumbing


def test_guarded_command() -> None:
    cmd = guarded_command([sys.executable, "-I", "-m", "pip", "--isolated"])
    assert cmd == [sys.executable, "-I", "-c", GUARD, "--isolated"]
    with pytest.raises(InputError):
        guarded_command(["pip"])
    with pytest.raises(InputError):
        guarded_command(["-m", "pip"])


def test_parse_config_list_precedence() -> None:
    text = "\n".join(
        [
            ":env:.find-links='/env/links'",
            ":env:.index-url=''",
            "download.index-url='https://download.example/simple'",
            "global.index-url='https://global.example/simple'",
            "global.extra-index-url='file:///a file:///b'",
            "global.find-links='/global/links'",
            "install.index-url='https://install-only.example/simple'",
            "garbage line",
        ]
    )
    config = parse_config_list(text)
    assert config["index-url"] == "https://download.example/simple"  # empty env value is ignored
    assert config["find-links"] == "/env/links"
    assert config["extra-index-url"] == "file:///a file:///b"


def _result(stderr: str, stdout: str = "") -> PipResult:
    return PipResult(1, stdout, stderr)


def test_unsatisfied_dependency_with_marker_and_requester() -> None:
    stderr = (
        'ERROR: Could not find a version that satisfies the requirement foo[x]>=2; python_version >= "3" '
        "(from bar) (from versions: 1.0, 1.5)\n"
        'ERROR: No matching distribution found for foo[x]>=2; python_version >= "3"\n'
    )
    (problem,) = unsatisfied(_result(stderr))
    assert str(problem.requirement) == 'foo[x]>=2; python_version >= "3"'
    assert problem.requester == "bar"


def test_unsatisfied_root() -> None:
    stderr = (
        "ERROR: Could not find a version that satisfies the requirement nosuch==1 (from versions: none)\n"
        "ERROR: No matching distribution found for nosuch==1\n"
    )
    (problem,) = unsatisfied(_result(stderr))
    assert (str(problem.requirement), problem.requester) == ("nosuch==1", None)


def test_unsatisfied_from_conflict_explanation() -> None:
    stdout = (
        "The conflict is caused by:\n    The user requested capped\n"
        "    The user requested (constraint) capped<2\n"
        "    app 1.0 depends on other>=3\n"
    )
    stderr = "ERROR: Cannot install capped because these package versions have conflicting dependencies.\n"
    problems = {str(p.requirement): p.requester for p in unsatisfied(_result(stderr, stdout))}
    assert problems == {"capped": None, "other>=3": "app 1.0"}


def test_unrelated_failure_has_no_unsatisfied() -> None:
    assert unsatisfied(_result("ERROR: Could not install packages due to an OSError: disk full\n")) == []
