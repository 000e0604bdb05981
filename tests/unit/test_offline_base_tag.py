"""The offline base is tagged by its recipe, so a changed recipe (a new toolchain) builds anew."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sandbox.runner import image


def test_offline_base_tag_is_the_digest_of_the_shipped_recipe() -> None:
    recipe = (image.images_dir() / "build-offline-base.sh").read_bytes()
    expected = f"pkgsandbox-base:bookworm-{hashlib.sha256(recipe).hexdigest()[:12]}"
    assert expected == image.OFFLINE_BASE
    # and the recipe bakes in what a native sdist build needs
    for pkg in ("gcc", "g++", "make", "pkg-config", "libc6-dev", "python3-dev"):
        assert f",{pkg}" in recipe.decode(), pkg


def test_a_changed_recipe_is_a_new_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "build-offline-base.sh").write_text("#!/bin/sh\n# another recipe\n")
    monkeypatch.setattr(image, "images_dir", lambda: tmp_path)
    assert image._offline_base_tag() not in (image.OFFLINE_BASE, "pkgsandbox-base:bookworm")


def test_the_dockerfile_checks_the_toolchain_and_the_headers() -> None:
    text = (image.images_dir() / "Dockerfile").read_text()
    assert "gcc g++ make pkg-config" in text and "Python.h" in text
