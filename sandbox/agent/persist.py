"""The places a package would use to persist, snapshotted after setup and after every
phase of every run (not only with an evidence bundle); what appeared or changed is
written to ``persist.<phase>.json`` for the host to judge (PS005, marked as coming
from the diff), so a write the recorder somehow missed is still caught.

Watched: HOME's top-level files (shell rc files), ``~/.ssh``, the XDG autostart /
systemd / environment.d / fish trees, the top level of every ``site-packages`` or
``dist-packages`` under HOME and the system's (``.pth``, ``sitecustomize`` …), git
hooks and configs of checkouts under HOME, the venv's activate scripts, the ci pass's
workflow-command files, and the system's start-up files and schedulers.  Small files
are hashed (an ``os.utime`` cannot hide a same-size rewrite) and their head kept for
the evidence.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

STATE = ".persist.json"
HASH_CAP = 1 << 20
HEAD = 400
MAX_FILES = 20000  # a tree the candidate filled cannot make the snapshot unbounded
WALK_DEPTH = 7  # /home/dev/project/.venv/lib/python3.X/site-packages is 6 deep
SKIP_DIRS = frozenset({"__pycache__", "node_modules", ".cache", ".npm", ".cargo", ".rustup"})
HOME_TREES = (
    ".ssh",
    ".config/autostart",
    ".config/systemd",
    ".config/environment.d",
    ".config/fish",
    ".config/git",
    ".local/share/systemd",
    ".local/bin",
    ".config/nvim",
    ".config/pip",
    ".pip",
    ".ipython",
    ".jupyter",
    ".config/zsh",
    ".config/plasma-workspace/env",
    ".config/uv",
    ".config/pypoetry",
    ".local/share/applications",
    "bin",
    "work/_temp/_runner_file_commands",  # the ci pass's GITHUB_ENV and co (judge/cienv.py)
)
SYSTEM = (
    "/etc/cron.d",
    "/etc/cron.daily",
    "/etc/cron.hourly",
    "/etc/crontab",
    "/etc/profile",
    "/etc/profile.d",
    "/etc/bash.bashrc",
    "/etc/environment",
    "/etc/ld.so.preload",
    "/etc/rc.local",
    "/etc/init.d",
    "/etc/systemd/system",
    "/etc/systemd/user",
    "/etc/sudoers.d",
    "/var/spool/cron",
)
# start-up modules in any form the import system loads (.py, a sourceless .pyc, an
# extension module, a package): every name that starts so is kept
SITE_HOOKS = ("sitecustomize", "usercustomize")


def _files(root: str) -> Iterator[str]:
    """*root* itself when a file, else every file under it (bounded)."""
    if os.path.isfile(root) or os.path.islink(root):
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for name in filenames:
            yield os.path.join(dirpath, name)


def _site_dir(path: str) -> Iterator[str]:
    """Start-up hooks at the top of a site-packages directory."""
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        if name.endswith(".pth") or name.startswith(SITE_HOOKS):
            yield from _files(os.path.join(path, name))


def _under_home(home: str) -> Iterator[str]:
    """site-packages tops and git hooks/configs anywhere under HOME (bounded depth)."""
    base = home.rstrip("/").count("/")
    for dirpath, dirnames, _ in os.walk(home):
        depth = dirpath.rstrip("/").count("/") - base
        keep = []
        for d in dirnames:
            full = os.path.join(dirpath, d)
            if d in ("site-packages", "dist-packages"):
                yield from _site_dir(full)
            elif d == ".git":
                yield from _files(os.path.join(full, "hooks"))
                yield from _files(os.path.join(full, "config"))
                yield from _files(os.path.join(full, "config.worktree"))
                yield from glob.glob(os.path.join(full, "modules", "**", "config"), recursive=True)
            elif d not in SKIP_DIRS and depth < WALK_DEPTH and not os.path.islink(full):
                keep.append(d)
        dirnames[:] = keep


def watched(home: str, venv: str) -> Iterator[str]:
    """Every path the snapshot looks at (files only; may repeat)."""
    try:
        for entry in os.scandir(home):
            if not entry.is_dir(follow_symlinks=False):
                yield entry.path
    except OSError:
        pass
    for rel in HOME_TREES:
        yield from _files(os.path.join(home, rel))
    yield from _under_home(home)
    yield from glob.glob(os.path.join(venv, "bin", "activate*"))
    yield from glob.glob(os.path.join(venv, "pip.conf"))
    yield from glob.glob(os.path.join(venv, "etc", "jupyter", "jupyter_*config.py"))
    yield from glob.glob(os.path.join(venv, "etc", "ipython", "ipython_*config.py"))
    for top in ("*", ".*"):  # ~/.venv's, ~/env's (glob's * skips dot folders)
        yield from glob.glob(os.path.join(home, top, "bin", "activate*"))
    for pattern in ("/usr/lib/python3*/*-packages", "/usr/local/lib/python3*/*-packages"):
        for d in glob.glob(pattern):
            yield from _site_dir(d)
    for root in SYSTEM:
        yield from _files(root)


def _entry(path: str) -> list[Any] | None:
    """[size, mtime_ns, mode, sha256 or None, head] of a file or symlink."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if os.path.islink(path):
        try:
            target = os.readlink(path)
        except OSError:
            target = ""
        return [st.st_size, st.st_mtime_ns, st.st_mode, "link:" + target, "-> " + target]
    digest, head = None, ""
    if st.st_size <= HASH_CAP:
        try:
            with open(path, "rb") as fh:
                data = fh.read(HASH_CAP)
            digest = hashlib.sha256(data).hexdigest()
            head = data[:HEAD].decode("utf-8", "replace")
        except OSError:
            pass
    return [st.st_size, st.st_mtime_ns, st.st_mode, digest, head]


def snapshot(home: str, venv: str) -> dict[str, list[Any]]:
    """path → entry of every watched file (at most MAX_FILES)."""
    out: dict[str, list[Any]] = {}
    for path in watched(home, venv):
        if path in out:
            continue
        if len(out) >= MAX_FILES:
            break
        entry = _entry(path)
        if entry is not None:
            out[path] = entry
    return out


def _changed(old: list[Any], new: list[Any]) -> bool:
    if old[3] is not None and new[3] is not None:
        return bool(old[3] != new[3] or old[2] != new[2])
    return bool(old[:3] != new[:3])


def diff(
    before: dict[str, list[Any]], after: dict[str, list[Any]], recorded: set[str]
) -> list[dict[str, Any]]:
    """What appeared or changed (deletions are not persistence); *recorded*: files pip
    installed from a wheel's RECORD (the wheel's own content, judged from it)."""
    changes = []
    for path, new in sorted(after.items()):
        old = before.get(path)
        if old is not None and not _changed(old, new):
            continue
        changes.append(
            {
                "path": path,
                "change": "created" if old is None else "modified",
                "size": new[0],
                "mode": oct(new[2] & 0o7777),
                "sha256": new[3] if isinstance(new[3], str) and not new[3].startswith("link:") else None,
                "head": new[4],
                "installed": path in recorded,
            }
        )
    return changes


def save(out: Path, snap: dict[str, list[Any]]) -> None:
    """Keep *snap* as the baseline of the next phase's diff."""
    (out / STATE).write_text(json.dumps(snap))


def load(out: Path) -> dict[str, list[Any]]:
    """The last snapshot ({} when there is none)."""
    try:
        data: dict[str, list[Any]] = json.loads((out / STATE).read_text())
        return data
    except (OSError, ValueError):
        return {}


def after_phase(out: Path, tag: str, home: str, venv: str, recorded: set[str]) -> None:
    """Write ``persist.<tag>.json`` (changes since the last snapshot) and the new baseline."""
    after = snapshot(home, venv)
    (out / f"persist.{tag}.json").write_text(json.dumps(diff(load(out), after, recorded)))
    save(out, after)


__all__ = ["after_phase", "diff", "load", "save", "snapshot", "watched"]
