"""The unpacked-sdist import after a failed install (sandbox/agent/checkout.py): what is
unpacked, where the modules are found, and which names are imported. Archives built
here; nothing in them runs."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from sandbox.agent import checkout, unpack
from tests.fixtures.builders import empty_files


def _tar(path: Path, members: dict[str, str], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
        for name, target in (links or {}).items():
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname = tarfile.SYMTYPE, target
            tar.addfile(ti)
    return path


def test_unpack_keeps_files_and_refuses_paths_leaving_it_links_and_git(tmp_path: Path) -> None:
    sdist = _tar(
        tmp_path / "x-1.0.tar.gz",
        {
            "x-1.0/x/__init__.py": "A = 1\n",
            "../escape.txt": "no",
            "/abs.txt": "no",
            "x-1.0/.git/hooks/post-checkout": "no",
        },
        links={"x-1.0/link": "/etc"},
    )
    dest = tmp_path / "out"
    dest.mkdir()
    unpack.unpack(sdist, dest)
    assert (dest / "x-1.0/x/__init__.py").read_text() == "A = 1\n"
    assert not (tmp_path / "escape.txt").exists()
    assert not (dest / "abs.txt").exists() and not Path("/abs.txt").exists()
    assert not (dest / "x-1.0/link").exists() and not (dest / "x-1.0/link").is_symlink()
    assert not (dest / "x-1.0/.git").exists()


def test_unpack_stops_at_the_byte_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unpack, "MAX_BYTES", 10)
    sdist = _tar(tmp_path / "b-1.tar.gz", {"b/a.py": "x" * 8, "b/b.py": "y" * 8, "b/c.py": "z"})
    dest = tmp_path / "out"
    dest.mkdir()
    unpack.unpack(sdist, dest)
    total = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    assert total == 10
    assert not (dest / "b/c.py").exists()


def test_zip_sdists_unpack_too(tmp_path: Path) -> None:
    path = tmp_path / "z-1.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("z-1/z.py", "Z = 1\n")
        zf.writestr("../out.py", "no")
    dest = tmp_path / "out"
    dest.mkdir()
    unpack.unpack(path, dest)
    assert (dest / "z-1/z.py").is_file() and not (tmp_path / "out.py").exists()


def test_modules_of_a_flat_checkout_skip_setup_tests_and_docs(tmp_path: Path) -> None:
    empty_files(
        tmp_path / "pkg-1.0",
        [
            "setup.py",
            "conftest.py",
            "tool.py",
            "pkg/__init__.py",
            "pkg/core.py",
            "pkg/__main__.py",
            "pkg/sub/__init__.py",
            "pkg/sub/deep.py",
            "pkg/data/readme.py",  # no __init__: not a package, not walked
            "tests/__init__.py",
            "tests/test_a.py",
            "docs/conf.py",
            "not-a-name/__init__.py",
        ],
    )
    root = checkout.source_root(tmp_path)
    assert root == tmp_path / "pkg-1.0"
    names, capped, first = checkout.modules(root, 100)
    assert names == ["pkg", "tool", "pkg.core", "pkg.sub", "pkg.sub.deep"]
    assert capped == 0 and first == 2


def test_a_src_layout_is_found_and_the_cap_holds(tmp_path: Path) -> None:
    empty_files(tmp_path / "p-2", ["setup.py", "src/p/__init__.py", *(f"src/p/m{i}.py" for i in range(9))])
    root = checkout.source_root(tmp_path)
    assert root == tmp_path / "p-2/src"
    names, capped, _ = checkout.modules(root, 4)
    assert names == ["p", "p.m0", "p.m1", "p.m2"] and capped == 6


def test_a_root_level_archive_is_its_own_root(tmp_path: Path) -> None:
    empty_files(tmp_path, ["setup.py", "a.py", "b/__init__.py"])
    assert checkout.source_root(tmp_path) == tmp_path
    assert checkout.modules(tmp_path, 10)[0] == ["a", "b"]


def test_the_unpacker_refuses_a_planted_link_or_an_existing_folder(tmp_path: Path) -> None:
    """The failed install ran as the same uid: a link at ~/src (or at the checkout's own
    name) would send the unpacker's untraced writes where the candidate chose."""
    sdist = _tar(tmp_path / "x-1.0.tar.gz", {"x-1.0/x/__init__.py": "A = 1\n"})
    elsewhere = tmp_path / "autostart"
    elsewhere.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    (home / "src").symlink_to(elsewhere)
    assert unpack.main([str(sdist), str(home / "src" / "x-1.0")]) == 3
    assert not any(elsewhere.iterdir())
    (home / "src").unlink()
    (home / "src").mkdir()
    (home / "src" / "x-1.0").symlink_to(elsewhere)
    assert unpack.main([str(sdist), str(home / "src" / "x-1.0")]) == 3
    assert not any(elsewhere.iterdir())
    assert unpack.main([str(sdist), str(home / "src" / "x-1.0-1")]) == 0
    assert (home / "src" / "x-1.0-1" / "x-1.0" / "x" / "__init__.py").is_file()
