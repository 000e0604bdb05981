"""Fetch real packages from the configured index (PyPI and this machine's pip configuration).

These use the host's pip exactly as a user would (no test configuration), so
they also show that the user's pip.conf (extra indexes, find-links, CA bundle,
constraints) is honoured by both pip and the sdist fetcher.

``docopt`` 0.6.2 has only ever been published as an sdist (legacy setup.py,
PKG-INFO 1.1): it exercises the sdist path against the real index.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import pytest

from sandbox.fetch import TargetEnv, fetch
from sandbox.models import ArtifactKind, ArtifactRole

pytestmark = pytest.mark.online

TARGET = TargetEnv(python_version="3.11", platforms=("manylinux_2_36_x86_64", "linux_x86_64"))
PIP = [sys.executable, "-m", "pip"]


@pytest.fixture(scope="module", autouse=True)
def _index_reachable() -> None:
    try:
        urllib.request.urlopen("https://pypi.org/simple/six/", timeout=15).close()
    except OSError as exc:  # pragma: no cover - depends on the network
        pytest.skip(f"package index unreachable: {exc}")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_staged(directory: Path, names: list[str]) -> None:
    assert sorted(p.name for p in directory.iterdir()) == sorted(names)


def test_six(tmp_path: Path) -> None:
    staged = fetch("six", TARGET, tmp_path / "stage", pip=PIP)
    assert staged.candidate.name == "six"
    assert staged.candidate.kind is ArtifactKind.WHEEL
    assert [a.role for a in staged.artifacts] == [ArtifactRole.CANDIDATE]
    _check_staged(tmp_path / "stage", [staged.candidate.filename])
    assert _sha256(tmp_path / "stage" / staged.candidate.filename) == staged.candidate.sha256


def test_requests_with_dependencies(tmp_path: Path) -> None:
    staged = fetch("requests[socks]", TARGET, tmp_path / "stage", pip=PIP)
    names = {a.name for a in staged.artifacts}
    assert {"requests", "urllib3", "idna", "certifi", "charset-normalizer", "pysocks"} <= names
    assert all(a.kind is ArtifactKind.WHEEL for a in staged.artifacts)
    assert staged.install_target.endswith(".whl[socks]")
    _check_staged(tmp_path / "stage", [a.filename for a in staged.artifacts])


def test_sdist_only_package_is_fetched_not_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a private temp dir: other runs on this host (parallel vets) must not be counted
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    tmp_before = set(os.listdir(tempfile.gettempdir()))
    cwd_before = set(os.listdir(Path.cwd()))
    staged = fetch("docopt==0.6.2", TARGET, tmp_path / "stage", pip=PIP)
    candidate = staged.candidate
    assert (candidate.filename, candidate.kind) == ("docopt-0.6.2.tar.gz", ArtifactKind.SDIST)
    assert candidate.source.startswith("https://")
    # The staged file is the index's original: PyPI's published sha256 for docopt-0.6.2.tar.gz.
    assert candidate.sha256 == "49b3a825280bd66b3aa83585ef59c4a8c82f2c8a522dbe754a8bc8d08c85c491"
    path = Path(staged.directory) / candidate.filename
    assert _sha256(path) == candidate.sha256
    with tarfile.open(path) as tf:  # still a pristine archive with its setup.py, nothing built
        names = tf.getnames()
    assert "docopt-0.6.2/setup.py" in names
    # Legacy setup.py: setuptools and wheel are staged to build it inside the sandbox.
    build = {a.name for a in staged.artifacts if a.role is ArtifactRole.BUILD}
    assert {"setuptools", "wheel"} <= build
    assert any("docopt-0.6.2.tar.gz" in note for note in staged.notes)
    _check_staged(tmp_path / "stage", [a.filename for a in staged.artifacts])
    # Nothing was built: no build/egg-info directories appeared where a build would leave them.
    new_tmp = set(os.listdir(tempfile.gettempdir())) - tmp_before
    assert not [n for n in new_tmp if n.startswith(("pip-", "pkgsandbox-fetch-"))]
    new_cwd = set(os.listdir(Path.cwd())) - cwd_before
    assert not [n for n in new_cwd if n in ("build", "dist") or n.endswith(".egg-info")]
