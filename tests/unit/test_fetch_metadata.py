"""Static metadata of sdists, stub wheels, and index page parsing (no pip involved)."""

# ruff: noqa: F811 - pytest fixtures are imported from test_fetch_fixtures and used as arguments

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName
from packaging.version import Version

from sandbox.errors import FetchError
from sandbox.fetch.archive import inspect_sdist, inspect_wheel
from sandbox.fetch.index import (
    IndexClient,
    IndexConfig,
    IndexFile,
    _cli_options,
    allowed_versions,
    best_first,
    redact,
)
from sandbox.fetch.metadata import (
    LEGACY_BUILD_REQUIRES,
    StaticMetadata,
    read_static_metadata,
    write_stub_wheel,
)
from sandbox.fetch.pip import Deadline
from tests.unit.test_fetch_fixtures import make_sdist, no_execution  # noqa: F401


def meta_of(tmp_path: Path, marker: Path, **kwargs: Any) -> StaticMetadata:
    return read_static_metadata(inspect_sdist(make_sdist(tmp_path, "foo", "1.0", marker, **kwargs)))


def test_pkg_info_2_2_is_static(tmp_path: Path, no_execution: Path) -> None:
    meta = meta_of(tmp_path, no_execution, requires=["a>=1", 'b; extra == "x"'])
    assert meta.requires_dist == ("a>=1", 'b; extra == "x"')
    assert meta.source == "PKG-INFO"
    assert meta.build_requires == LEGACY_BUILD_REQUIRES


def test_pkg_info_with_dynamic_requires_falls_back_to_pyproject(tmp_path: Path, no_execution: Path) -> None:
    pkg_info = "Metadata-Version: 2.2\nName: foo\nVersion: 1.0\nDynamic: Requires-Dist\n"
    pyproject = (
        '[project]\nname = "foo"\nversion = "1.0"\nrequires-python = ">=3.9"\n'
        'dependencies = ["a>=1"]\n[project.optional-dependencies]\nfull = ["b; python_version > \'3\'"]\n'
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
    )
    meta = meta_of(tmp_path, no_execution, pkg_info=pkg_info, pyproject=pyproject)
    assert meta.source == "pyproject.toml"
    assert meta.requires_dist == ("a>=1", 'b; (python_version > "3") and extra == "full"')
    assert meta.provides_extra == ("full",)
    assert meta.requires_python == ">=3.9"
    assert meta.build_requires == ("hatchling",)
    assert not meta.notes


def test_pyproject_dynamic_dependencies_fall_back_to_setup_cfg(tmp_path: Path, no_execution: Path) -> None:
    pkg_info = "Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n"
    pyproject = '[project]\nname = "foo"\ndynamic = ["version", "dependencies"]\n'
    setup_cfg = (
        "[options]\npython_requires = >=3.8\ninstall_requires =\n    a>=1\n    # comment\n"
        "    b; python_version < '3.12'\n[options.extras_require]\ntest = pytest\n"
    )
    meta = meta_of(tmp_path, no_execution, pkg_info=pkg_info, pyproject=pyproject, setup_cfg=setup_cfg)
    assert meta.source == "setup.cfg"
    assert meta.requires_dist == ("a>=1", "b; python_version < '3.12'", 'pytest; extra == "test"')
    assert meta.requires_python == ">=3.8"
    # pyproject without [build-system]: setuptools, plus wheel
    assert meta.build_requires == LEGACY_BUILD_REQUIRES
    assert any("setup.py may add more" in n for n in meta.notes)


def test_setup_cfg_file_directive_is_dynamic(tmp_path: Path, no_execution: Path) -> None:
    pkg_info = "Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n"
    setup_cfg = "[options]\ninstall_requires = file: requirements.txt\n"
    meta = meta_of(tmp_path, no_execution, pkg_info=pkg_info, setup_cfg=setup_cfg)
    assert meta.requires_dist is None
    assert "dependency list of foo-1.0.tar.gz is dynamic; dependencies may be missing" in meta.notes


def test_egg_info_requires_txt_when_nothing_static_says(tmp_path: Path, no_execution: Path) -> None:
    # Old sdists (PKG-INFO 2.1, no setup.cfg lists): setuptools' requires.txt from the
    # author's build lists what setup.py declared; extras' sections are left out.
    from tests.unit.test_fetch_fixtures import sdist_members, write_tar

    pkg_info = "Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n"
    members = sdist_members("foo", "1.0", no_execution, pkg_info=pkg_info)
    members["foo-1.0/foo.egg-info/requires.txt"] = (
        b"boto3\ninvoke<2.0,>=1.3\n\n[:python_version < '3.8']\nimportlib-metadata\n\n[test]\npytest\n"
    )
    meta = read_static_metadata(inspect_sdist(write_tar(tmp_path / "foo-1.0.tar.gz", members)))
    assert meta.source == "egg-info/requires.txt"
    assert meta.requires_dist == ("boto3", "invoke<2.0,>=1.3", "importlib-metadata; python_version < '3.8'")
    assert any("egg-info/requires.txt" in n for n in meta.notes)
    assert not no_execution.exists()


def test_setuptools_backend_gets_wheel_added(tmp_path: Path, no_execution: Path) -> None:
    pyproject = '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
    meta = meta_of(tmp_path, no_execution, pyproject=pyproject)
    assert meta.build_requires == ("setuptools>=61", "wheel")


def test_direct_url_dependency_is_refused(tmp_path: Path, no_execution: Path) -> None:
    with pytest.raises(FetchError, match="direct URL reference"):
        meta_of(tmp_path, no_execution, requires=["evil @ https://example.invalid/evil.tar.gz"])


def test_name_mismatch_is_refused(tmp_path: Path, no_execution: Path) -> None:
    pkg_info = "Metadata-Version: 2.2\nName: other\nVersion: 1.0\n"
    with pytest.raises(FetchError, match="names project 'other'"):
        meta_of(tmp_path, no_execution, pkg_info=pkg_info)


def test_stub_wheel_is_a_valid_wheel(tmp_path: Path, no_execution: Path) -> None:
    meta = meta_of(tmp_path, no_execution, requires=["a>=1", 'b; extra == "x"'])
    stub = write_stub_wheel(meta, tmp_path)
    assert stub.name == "foo-1.0-py3-none-any.whl"
    wheel = inspect_wheel(stub)
    assert wheel.requires_dist == ("a>=1", 'b; extra == "x"')
    again = tmp_path / "again"
    again.mkdir()
    assert write_stub_wheel(meta, again).read_bytes() == stub.read_bytes()  # deterministic


# --------------------------------------------------------------------------- index parsing


def test_html_page_parsing(tmp_path: Path) -> None:
    page = tmp_path / "simple" / "foo"
    page.mkdir(parents=True)
    (page / "index.html").write_text(
        "<html><head><base href='https://files.example/x/'></head><body>"
        '<a href="foo-1.0.tar.gz#sha256=AB12" data-requires-python="&gt;=3.8">foo-1.0.tar.gz</a>'
        '<a href="foo-2.0.tar.gz#md5=ff" data-yanked="">foo-2.0.tar.gz</a>'
        '<a href="foo-1.0-py3-none-any.whl">wheel</a>'
        '<a href="foobar-1.0.tar.gz">other project</a>'
        "</body></html>"
    )
    client = IndexClient(IndexConfig(index_url=(tmp_path / "simple").as_uri()), Deadline(30))
    listing = client.listing("Foo")
    assert listing.exists
    files = {f.filename: f for f in listing.files}
    assert set(files) == {"foo-1.0.tar.gz", "foo-2.0.tar.gz", "foo-1.0-py3-none-any.whl"}
    assert files["foo-1.0.tar.gz"].url == "https://files.example/x/foo-1.0.tar.gz"
    assert files["foo-1.0.tar.gz"].hash("sha256") == "ab12"
    assert files["foo-1.0.tar.gz"].requires_python == ">=3.8"
    assert files["foo-2.0.tar.gz"].yanked
    assert client.listing("nothere").exists is False


def test_json_page_parsing(tmp_path: Path) -> None:
    page = tmp_path / "simple" / "foo"
    page.mkdir(parents=True)
    (page / "index.html").write_text(
        '{"meta": {"api-version": "1.0"}, "name": "foo", "files": ['
        '{"filename": "foo-1.0.zip", "url": "../../files/foo-1.0.zip", "hashes": {"sha256": "aa"},'
        ' "requires-python": ">=3.7", "yanked": "broken"}]}'
    )
    client = IndexClient(IndexConfig(index_url=(tmp_path / "simple").as_uri()), Deadline(30))
    (file,) = client.listing("foo").files
    assert file.url == (tmp_path / "files" / "foo-1.0.zip").as_uri()
    assert file.yanked and file.kind == "sdist" and file.requires_python == ">=3.7"


def test_version_selection_like_pip() -> None:
    versions = [Version(v) for v in ("1.0", "1.1", "2.0b1")]
    assert allowed_versions(Requirement("foo"), versions, pre=False, constraint=None) == {
        Version("1.0"),
        Version("1.1"),
    }
    assert Version("2.0b1") in allowed_versions(Requirement("foo"), versions, pre=True, constraint=None)
    assert allowed_versions(Requirement("foo>=2.0b1"), versions, pre=False, constraint=None) == {
        Version("2.0b1")
    }
    only_pre = [Version("3.0rc1")]
    assert allowed_versions(Requirement("foo"), only_pre, pre=False, constraint=None) == {Version("3.0rc1")}


def test_best_first_prefers_tar_gz() -> None:
    files = [
        IndexFile("foo-1.0.zip", "u1", "s", Version("1.0"), "sdist"),
        IndexFile("foo-1.0.tar.gz", "u2", "s", Version("1.0"), "sdist"),
        IndexFile("foo-0.9.tar.gz", "u3", "s", Version("0.9"), "sdist"),
    ]
    assert [f.filename for f in best_first(files)] == ["foo-1.0.tar.gz", "foo-1.0.zip", "foo-0.9.tar.gz"]


def test_cli_options_and_redaction() -> None:
    opts = _cli_options(
        ["python", "-m", "pip", "--cert", "/ca.pem", "--proxy=http://p:3128", "--trusted-host", "h"]
    )
    assert opts == {"--cert": ["/ca.pem"], "--proxy": ["http://p:3128"], "--trusted-host": ["h"]}
    assert redact("https://user:secret@host:8443/simple") == "https://***@host:8443/simple"
    assert redact("https://host/simple") == "https://host/simple"


def test_hostile_index_entries_are_ignored(tmp_path: Path) -> None:
    data = {
        "files": [
            # A remote page must not make us read local files into the staging dir.
            {"filename": "foo-1.0.tar.gz", "url": "file:///etc/shadow", "hashes": {}},
            {"filename": "../foo-1.0.tar.gz", "url": "https://x/foo-1.0.tar.gz", "hashes": {}},
            {"filename": ".foo-1.0.tar.gz", "url": "https://x/.foo-1.0.tar.gz", "hashes": {}},
            {"filename": "foo-2.0.tar.gz", "url": "https://x/foo-2.0.tar.gz", "hashes": {}},
        ]
    }
    files = IndexClient._parse_json("https://idx/simple/foo/", data, NormalizedName("foo"), "s")
    assert [f.filename for f in files] == ["foo-2.0.tar.gz"]
    html = '<a href="..%2F..%2Ffoo-1.0.tar.gz">x</a><a href="javascript:foo-1.0.tar.gz">y</a>'
    assert IndexClient._parse_html("https://idx/simple/foo/", html, NormalizedName("foo"), "s") == []
