"""Packing a local source tree for the gate (``-e ./dir``): like an sdist, nothing
executed, links stored and never followed, deterministic, bounded."""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import pytest

from sandbox.errors import InputError
from sandbox.fetch.archive import inspect_sdist
from sandbox.gate import pack
from sandbox.gate.pack import pack_tree, tree_identity


def _tree(root: Path) -> Path:
    tree = root / "src-tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "setup.py").write_text("raise SystemExit('never run on the host')\n")
    (tree / "setup.cfg").write_text("[metadata]\nname = my-pkg\nversion = 2.0.1\n")
    (tree / "pkg" / "__init__.py").write_text("X = 1\n")
    (tree / ".git").mkdir()
    (tree / ".git" / "config").write_text("[core]\n")
    (tree / "pkg" / "__pycache__").mkdir()
    (tree / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    os.symlink("/etc/passwd", tree / "outside")
    return tree


def test_pack_is_an_sdist_of_the_tree_and_deterministic(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    first, second = pack_tree(tree, a, "fallback"), pack_tree(tree, b, "fallback")
    assert first.name == "my_pkg-2.0.1.tar.gz"
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    with tarfile.open(first) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {
        "my_pkg-2.0.1",
        "my_pkg-2.0.1/setup.py",
        "my_pkg-2.0.1/setup.cfg",
        "my_pkg-2.0.1/pkg",
        "my_pkg-2.0.1/pkg/__init__.py",
        "my_pkg-2.0.1/outside",
    }
    link = members["my_pkg-2.0.1/outside"]
    assert link.issym() and link.linkname == "/etc/passwd"  # stored, never followed
    # the sandbox's own sdist checks then refuse a link out of the tree
    with pytest.raises(InputError):
        inspect_sdist(first)
    os.unlink(tree / "outside")
    c = tmp_path / "c"
    c.mkdir()
    contents = inspect_sdist(pack_tree(tree, c, "fallback"))
    assert contents.has_setup_py and contents.setup_cfg is not None


def test_identity_from_static_metadata_else_fallback(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "pyproject.toml").write_text('[project]\nname = "alpha"\ndynamic = ["version"]\n')
    assert tree_identity(tree, "fb") == ("alpha", "0")
    (tree / "pyproject.toml").write_text("[project\n")
    assert tree_identity(tree, "fb") == ("fb", "0")


def test_pack_refuses_what_is_not_a_buildable_or_bounded_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"neither pyproject\.toml nor setup\.py"):
        pack_tree(empty, tmp_path, "x")
    with pytest.raises(InputError, match="not a directory"):
        pack_tree(tmp_path / "missing", tmp_path, "x")
    tree = _tree(tmp_path)
    monkeypatch.setattr(pack, "MAX_FILES", 3)
    with pytest.raises(InputError, match="more than 3 files"):
        pack_tree(tree, tmp_path, "x")
    monkeypatch.setattr(pack, "MAX_FILES", 100)
    monkeypatch.setattr(pack, "MAX_BYTES", 10)
    with pytest.raises(InputError, match="larger than"):
        pack_tree(tree, tmp_path, "x")
