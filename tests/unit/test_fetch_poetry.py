"""Poetry projects' static dependencies (sandbox/fetch/poetry.py): the translation of
Poetry's constraints, and their use when PKG-INFO lists nothing. Nothing is run."""

# ruff: noqa: F811 - pytest fixtures are imported from test_fetch_fixtures and used as arguments

from __future__ import annotations

from pathlib import Path

from sandbox.fetch.archive import inspect_sdist
from sandbox.fetch.metadata import read_static_metadata
from sandbox.fetch.poetry import poetry_requires, specifier
from tests.unit.test_fetch_fixtures import make_sdist, no_execution  # noqa: F401


def test_poetry_constraints_become_pep440() -> None:
    assert specifier("^1.22.2") == ">=1.22.2,<2.0.0"
    assert specifier("^0.16.2") == ">=0.16.2,<0.17.0"
    assert specifier("^0.0.3") == ">=0.0.3,<0.0.4"
    assert specifier("^2") == ">=2,<3.0"
    assert specifier("~1.2.3") == ">=1.2.3,<1.3.0"
    assert specifier("~1") == ">=1,<2.0"
    assert specifier("1.4.0") == "==1.4.0"
    assert specifier("*") == "" and specifier("^1.0 || ^2.0") == ""
    assert specifier(">=1.2, <2.0") == ">=1.2,<2.0"
    assert specifier("~=1.4") == "~=1.4"


def test_the_dependency_table_keeps_runtime_requirements_only() -> None:
    table = {
        "python": ">=3.8.0,<3.9",
        "numpy": "^1.22.2",
        "Flask": {"version": "^2.2.0", "extras": ["async"]},
        "requests": {"version": "*", "markers": "sys_platform == 'linux'"},
        "tool": {"version": "^1.0", "optional": True},
        "local": {"path": "../local"},
        "vcs": {"git": "https://example.invalid/x.git"},
        "multi": [{"version": "^1.0", "python": "<3.9"}, {"version": "^2.0", "python": ">=3.9"}],
        "weird": "!!nonsense",
    }
    reqs = poetry_requires({"tool": {"poetry": {"dependencies": table}}})
    assert reqs == [
        "numpy<2.0.0,>=1.22.2",
        "Flask[async]<3.0.0,>=2.2.0",
        'requests; sys_platform == "linux"',
        "multi",
        "weird",
    ]
    assert poetry_requires({"project": {"name": "x"}}) is None


def test_a_poetry_template_sdist_stages_what_poetry_will_ask_for(tmp_path: Path, no_execution: Path) -> None:
    pyproject = (
        '[tool.poetry]\nname = "python-template"\nversion = "0.1.0"\n'
        '[tool.poetry.dependencies]\npython = ">=3.8.0,<3.9"\nFlask = "^2.2.0"\nbrowser-cookie3 = "^0.16.2"\n'
        '[build-system]\nrequires = ["poetry-core>=1.0.0"]\nbuild-backend = "poetry.core.masonry.api"\n'
    )
    sdist = make_sdist(
        tmp_path,
        "foo",
        "1.0",
        no_execution,
        pkg_info="Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n",
        pyproject=pyproject,
    )
    meta = read_static_metadata(inspect_sdist(sdist))
    assert meta.source == "pyproject.toml [tool.poetry.dependencies]"
    assert meta.requires_dist == ("Flask<3.0.0,>=2.2.0", "browser-cookie3<0.17.0,>=0.16.2")
    assert not no_execution.exists()


def test_an_egg_info_beside_the_poetry_table_adds_what_it_names(tmp_path: Path, no_execution: Path) -> None:
    from tests.unit.test_fetch_fixtures import sdist_members, write_tar

    pyproject = (
        '[tool.poetry]\nname = "t"\n[tool.poetry.dependencies]\nbrowser-cookie3 = "^0.16.2"\n'
        '[build-system]\nrequires = ["poetry-core"]\nbuild-backend = "poetry.core.masonry.api"\n'
    )
    members = sdist_members(
        "foo",
        "1.0",
        no_execution,
        pkg_info="Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n",
        pyproject=pyproject,
    )
    members["foo-1.0/foo.egg-info/requires.txt"] = b"browser_cookie3\nrobloxpy\n"
    meta = read_static_metadata(inspect_sdist(write_tar(tmp_path / "foo-1.0.tar.gz", members)))
    assert meta.requires_dist == ("browser-cookie3<0.17.0,>=0.16.2", "robloxpy")
    assert meta.source.endswith("and egg-info/requires.txt")
    assert not no_execution.exists()
