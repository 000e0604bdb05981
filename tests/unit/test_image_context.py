"""The image's build context carries the whole agent, subpackages included, and its tag covers them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sandbox.runner import image


def test_the_context_has_every_agent_module_at_its_path() -> None:
    files = image.context_files()
    root = image.agent_dir()
    expected = {f"agent/{p.relative_to(root).as_posix()}" for p in root.rglob("*.py")}
    assert expected <= set(files)
    # the sinkhole is a package: `COPY agent/` must bring agent/sinkhole/… along
    assert {"agent/sinkhole/__init__.py", "agent/sinkhole/daemon.py", "agent/main.py"} <= set(files)
    assert not any(name.endswith(".pyc") for name in files)


def test_a_change_in_a_subpackage_is_a_new_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "agent"
    shutil.copytree(image.agent_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(image, "agent_dir", lambda: copy)
    before = image.image_tag(image.context_files(), "base")
    dns = copy / "sinkhole" / "dns.py"
    dns.write_text(dns.read_text() + "\n# changed\n")
    assert image.image_tag(image.context_files(), "base") != before


def test_the_developer_kit_wheels_are_in_the_context_and_the_tag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = image.context_files()
    kit = {name for name in files if name.startswith("kit/")}
    # the image build installs `wheel requests six` from these files alone (--no-index)
    for dist in (
        "wheel-",
        "packaging-",
        "requests-",
        "six-",
        "urllib3-",
        "idna-",
        "certifi-",
        "charset_normalizer-",
    ):
        assert any(name.startswith(f"kit/{dist}") and name.endswith("-none-any.whl") for name in kit), dist
    assert "kit/README.md" in kit
    imgs = tmp_path / "images"
    shutil.copytree(image.images_dir(), imgs)
    monkeypatch.setattr(image, "images_dir", lambda: imgs)
    before = image.image_tag(image.context_files(), "base")
    six = next((imgs / "kit").glob("six-*.whl"))
    six.write_bytes(six.read_bytes() + b"\0")
    assert image.image_tag(image.context_files(), "base") != before
