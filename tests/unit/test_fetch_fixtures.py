"""Builders for the fetch tests: wheels, sdists and package indexes made in tmp dirs.

Every sdist built here carries a ``setup.py`` (and, when it has a
``pyproject.toml``, an in-tree build backend) that writes a marker file and
exits: if anything ever executed one on the host, the marker would exist, and
the ``no_execution`` fixture fails the test. The module also checks that the
builders produce what they claim.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from sandbox.fetch import TargetEnv, inspect_sdist, inspect_wheel
from sandbox.fetch.archive import split_sdist_filename

TARGET = TargetEnv(python_version="3.11", platforms=("manylinux_2_36_x86_64", "linux_x86_64"))
PIP = [sys.executable, "-m", "pip"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def evil_setup_py(marker: Path) -> str:
    """A setup.py that proves it ran (marker file) and then refuses to go on."""
    return f"open({str(marker)!r}, 'w').write('executed')\nraise SystemExit('executed on host!')\n"


def evil_backend(marker: Path) -> str:
    """An in-tree PEP 517 backend module that proves it was imported."""
    return f"open({str(marker)!r}, 'w').write('imported')\nraise SystemExit('executed on host!')\n"


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    requires: Sequence[str] = (),
    *,
    tag: str = "py3-none-any",
    extras: Sequence[str] = (),
    requires_python: str | None = None,
    files: dict[str, bytes] | None = None,
    omit: Sequence[str] = (),
    metadata_name: str | None = None,
) -> Path:
    """A minimal but valid wheel (a zip with a .dist-info directory)."""
    directory.mkdir(parents=True, exist_ok=True)
    escaped = canonicalize_name(name).replace("-", "_")
    dist_info = f"{escaped}-{version}.dist-info"
    lines = ["Metadata-Version: 2.1", f"Name: {metadata_name or name}", f"Version: {version}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Provides-Extra: {e}" for e in extras]
    lines += [f"Requires-Dist: {r}" for r in requires]
    members = {
        f"{escaped}/__init__.py": b"raise SystemExit('imported on host!')\n",
        f"{dist_info}/METADATA": ("\n".join(lines) + "\n").encode(),
        f"{dist_info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ).encode(),
        f"{dist_info}/RECORD": b"",
        **(files or {}),
    }
    path = directory / f"{escaped}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in members.items():
            if member.rsplit("/", 1)[-1] not in omit:
                zf.writestr(member, data)
    return path


def sdist_members(
    name: str,
    version: str,
    marker: Path,
    *,
    pkg_info: str | None = None,
    pyproject: str | None = None,
    setup_cfg: str | None = None,
    setup_py: bool = True,
    requires: Sequence[str] = (),
    metadata_version: str = "2.2",
) -> dict[str, bytes]:
    """Members of an sdist, keyed by path below the archive root."""
    top = f"{canonicalize_name(name).replace('-', '_')}-{version}"
    if pkg_info is None:
        lines = [f"Metadata-Version: {metadata_version}", f"Name: {name}", f"Version: {version}"]
        lines += [f"Requires-Dist: {r}" for r in requires]
        pkg_info = "\n".join(lines) + "\n"
    members: dict[str, bytes] = {f"{top}/PKG-INFO": pkg_info.encode()}
    if setup_py:
        members[f"{top}/setup.py"] = evil_setup_py(marker).encode()
    if pyproject is not None:
        members[f"{top}/pyproject.toml"] = pyproject.encode()
        members[f"{top}/evil_backend.py"] = evil_backend(marker).encode()
    if setup_cfg is not None:
        members[f"{top}/setup.cfg"] = setup_cfg.encode()
    members[f"{top}/{canonicalize_name(name).replace('-', '_')}/__init__.py"] = (
        b"raise SystemExit('imported!')\n"
    )
    return members


def write_tar(path: Path, members: dict[str, bytes], mode: Any = "w:gz") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tf:
        dirs = sorted({m.split("/", 1)[0] for m in members})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tf.addfile(info)
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return path


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    return path


def make_sdist(
    directory: Path, name: str, version: str, marker: Path, *, fmt: str = "tar.gz", **kwargs: Any
) -> Path:
    """An sdist whose setup.py (and in-tree backend) would write *marker* if executed."""
    members = sdist_members(name, version, marker, **kwargs)
    filename = f"{canonicalize_name(name).replace('-', '_')}-{version}.{fmt}"
    if fmt == "zip":
        return write_zip(directory / filename, members)
    return write_tar(directory / filename, members, "w:gz" if fmt == "tar.gz" else "w:bz2")


def evil_pyproject(requires: Sequence[str] = ("setuptools>=40.8.0",), backend: str = "evil_backend") -> str:
    reqs = ", ".join(json.dumps(r) for r in requires)
    return f'[build-system]\nrequires = [{reqs}]\nbuild-backend = "{backend}"\nbackend-path = ["."]\n'


@dataclass
class Index:
    """A PEP 503 index under ``root/simple`` (``file://``), files under ``root/files``."""

    root: Path
    marker: Path
    projects: dict[str, list[Path]] = field(default_factory=dict)
    requires_python: dict[str, str] = field(default_factory=dict)
    bad_hash: set[str] = field(default_factory=set)

    @property
    def files(self) -> Path:
        return self.root / "files"

    @property
    def url(self) -> str:
        return (self.root / "simple").as_uri()

    def add(self, path: Path, *, requires_python: str | None = None, bad_hash: bool = False) -> Path:
        name = canonicalize_name(_project_of(path.name))
        self.projects.setdefault(name, []).append(path)
        if requires_python:
            self.requires_python[path.name] = requires_python
        if bad_hash:
            self.bad_hash.add(path.name)
        self.write()
        return path

    def wheel(self, name: str, version: str, requires: Sequence[str] = (), **kwargs: Any) -> Path:
        return self.add(make_wheel(self.files, name, version, requires, **kwargs))

    def sdist(self, name: str, version: str, **kwargs: Any) -> Path:
        return self.add(make_sdist(self.files, name, version, self.marker, **kwargs))

    def digest(self, path: Path) -> str:
        return "0" * 64 if path.name in self.bad_hash else sha256(path)

    def write(self) -> None:
        simple = self.root / "simple"
        simple.mkdir(parents=True, exist_ok=True)
        links = []
        for name, paths in sorted(self.projects.items()):
            links.append(f'<a href="{name}/">{name}</a>')
            page = simple / name
            page.mkdir(exist_ok=True)
            anchors = []
            for p in paths:
                rp = self.requires_python.get(p.name)
                attr = f' data-requires-python="{rp.replace(">", "&gt;").replace("<", "&lt;")}"' if rp else ""
                anchors.append(f'<a href="../../files/{p.name}#sha256={self.digest(p)}"{attr}>{p.name}</a>')
            (page / "index.html").write_text(
                "<!DOCTYPE html><html><body>\n" + "\n".join(anchors) + "\n</body></html>\n"
            )
        (simple / "index.html").write_text("<html><body>" + "".join(links) + "</body></html>")

    def json_page(self, name: str, base: str) -> dict[str, object]:
        files = []
        for p in self.projects.get(canonicalize_name(name), []):
            files.append(
                {
                    "filename": p.name,
                    "url": f"{base}/files/{p.name}",
                    "hashes": {"sha256": self.digest(p)},
                    "requires-python": self.requires_python.get(p.name),
                    "yanked": False,
                }
            )
        return {"meta": {"api-version": "1.1"}, "name": name, "files": files}


def _project_of(filename: str) -> str:
    if filename.endswith(".whl"):
        return filename.split("-", 1)[0]
    split = split_sdist_filename(filename)
    assert split is not None, filename
    return split[0]


@dataclass
class PipSetup:
    """The pip configuration a test runs with, isolated from the machine's."""

    conf: Path
    monkeypatch: pytest.MonkeyPatch

    def configure(self, **options: str) -> None:
        lines = ["[global]", *(f"{k} = {v}" for k, v in options.items())]
        self.conf.write_text("\n".join(lines) + "\n")


@pytest.fixture
def no_execution(tmp_path: Path) -> Iterator[Path]:
    """The marker path fixtures' setup.py would write; asserted absent after the test."""
    marker = tmp_path / "EXECUTED-ON-HOST"
    yield marker
    assert not marker.exists(), "a candidate's build code was executed on the host"


@pytest.fixture
def pip_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PipSetup:
    """Point pip at test-only configuration, whatever this machine's pip.conf says.

    ``--isolated`` is no help here: pip would still read the global config
    files and ignore PIP_* variables. Instead PIP_CONFIG_FILE names a file
    written by the test (which also disables the user config), XDG_CONFIG_DIRS
    hides /etc/xdg/pip, and every key the machine might set is given a value.
    """
    for key in list(os.environ):
        if key.startswith("PIP_") or key.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(key)
    empty = tmp_path / "xdg-empty"
    empty.mkdir()
    conf = tmp_path / "pip.conf"
    constraints = tmp_path / "no-constraints.txt"
    constraints.write_text("")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(empty))
    monkeypatch.setenv("PIP_CONSTRAINT", str(constraints))
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "5")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    setup = PipSetup(conf, monkeypatch)
    setup.configure(index_url="file:///nonexistent-index/simple")
    return setup


@pytest.fixture
def index(tmp_path: Path, no_execution: Path, pip_setup: PipSetup) -> Index:
    """An empty file:// index that pip (and fetch) is configured to use, and nothing else."""
    idx = Index(tmp_path / "index", no_execution)
    idx.write()
    empty_links = tmp_path / "no-links"
    empty_links.mkdir()
    pip_setup.configure(index_url=idx.url, extra_index_url=idx.url, find_links=str(empty_links))
    return idx


class JsonIndexServer:
    """Serves an :class:`Index` over HTTP on 127.0.0.1: PEP 691 JSON or PEP 503 HTML by Accept."""

    def __init__(self, idx: Index) -> None:
        self.idx = idx
        self.requests: list[tuple[str, str]] = []
        self.fail_with: int | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests.append((self.path, self.headers.get("Accept", "")))
                if outer.fail_with is not None:
                    self.send_error(outer.fail_with)
                    return
                parts = [p for p in self.path.split("?")[0].split("/") if p]
                if len(parts) == 2 and parts[0] == "simple":
                    name = canonicalize_name(parts[1])
                    if name not in idx.projects:
                        self.send_error(404)
                        return
                    if "application/vnd.pypi.simple.v1+json" in self.headers.get("Accept", ""):
                        body = json.dumps(idx.json_page(name, outer.url)).encode()
                        ctype = "application/vnd.pypi.simple.v1+json"
                    else:
                        body = (idx.root / "simple" / name / "index.html").read_bytes()
                        body = body.replace(b"../../files/", f"{outer.url}/files/".encode())
                        ctype = "text/html"
                elif len(parts) == 2 and parts[0] == "files" and (idx.files / parts[1]).is_file():
                    body = (idx.files / parts[1]).read_bytes()
                    ctype = "application/octet-stream"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> JsonIndexServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# --------------------------------------------------------------------------- self-checks


def test_built_wheel_is_valid(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "Foo.Bar", "1.0", ["dep>=1"])
    wheel = inspect_wheel(path)
    assert wheel.name == "foo-bar"
    assert wheel.requires_dist == ("dep>=1",)


def test_built_sdists_are_valid(tmp_path: Path, no_execution: Path) -> None:
    for fmt in ("tar.gz", "zip", "tar.bz2"):
        path = make_sdist(tmp_path / fmt, "foo", "1.0", no_execution, fmt=fmt, pyproject=evil_pyproject())
        contents = inspect_sdist(path)
        assert contents.top == "foo-1.0"
        assert contents.has_setup_py and contents.pkg_info and contents.pyproject


def test_index_pages_link_files_with_hashes(tmp_path: Path, no_execution: Path) -> None:
    idx = Index(tmp_path, no_execution)
    wheel = idx.wheel("foo", "1.0")
    page = (tmp_path / "simple" / "foo" / "index.html").read_text()
    assert f"../../files/{wheel.name}#sha256={sha256(wheel)}" in page
