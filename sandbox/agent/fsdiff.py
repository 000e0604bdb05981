"""Filesystem diff of the writable areas, and copies of what the candidate dropped.

Run by the agent (root) only when the host asks for an evidence bundle: a snapshot
after setup, then after each phase the created/modified/deleted files since the
previous snapshot, with the contents of small files kept (capped per file and in
total) under ``OUT/files/<sha256>``. Files pip installed from a distribution's
RECORD are listed but not copied: they are the wheel's own content.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

ROOTS = ("/home", "/tmp", "/var/tmp")
PER_FILE_CAP = 1 << 20
TOTAL_CAP = 64 << 20


def snapshot(roots: tuple[str, ...] = ROOTS) -> dict[str, list[int]]:
    """path → [size, mtime_ns, mode] of every regular file and symlink under *roots*."""
    out: dict[str, list[int]] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                out[path] = [st.st_size, st.st_mtime_ns, st.st_mode]
    return out


def recorded_files(site: Path | None) -> set[str]:
    """Files listed in the RECORDs of installed distributions (pip's own writes)."""
    paths: set[str] = set()
    if site is None or not site.is_dir():
        return paths
    for record in site.glob("*.dist-info/RECORD"):
        try:
            for row in record.read_text(errors="replace").splitlines():
                rel = row.split(",", 1)[0]
                if rel:
                    paths.add(os.path.normpath(str(site / rel)))
        except OSError:
            continue
    return paths


def diff_and_keep(
    out: Path, phase: str, before: dict[str, list[int]], site: Path | None
) -> dict[str, list[int]]:
    """Write ``fsdiff.<phase>.json`` and keep copies; returns the new snapshot."""
    after = snapshot()
    files_dir = out / "files"
    files_dir.mkdir(exist_ok=True)
    kept_total = sum(p.stat().st_size for p in files_dir.iterdir() if p.is_file())
    recorded = recorded_files(site)
    changes: list[dict[str, Any]] = []
    for path, meta in sorted(after.items()):
        old = before.get(path)
        if old is not None and old[:2] == meta[:2]:
            continue
        entry: dict[str, Any] = {
            "path": path,
            "change": "created" if old is None else "modified",
            "size": meta[0],
            "mode": oct(meta[2] & 0o7777),
            "sha256": None,
            "kept": False,
            "installed": path in recorded,
        }
        if not entry["installed"] and os.path.isfile(path) and not os.path.islink(path):
            try:
                h = hashlib.sha256()
                with open(path, "rb") as fh:
                    head = fh.read(PER_FILE_CAP)
                    h.update(head)
                    for chunk in iter(lambda: fh.read(1 << 16), b""):
                        h.update(chunk)
                entry["sha256"] = h.hexdigest()
                if meta[0] <= PER_FILE_CAP and kept_total + meta[0] <= TOTAL_CAP:
                    dest = files_dir / entry["sha256"]
                    if not dest.exists():
                        dest.write_bytes(head)
                        kept_total += meta[0]
                    entry["kept"] = True
            except OSError:
                pass
        changes.append(entry)
    for path in sorted(set(before) - set(after)):
        changes.append(
            {
                "path": path,
                "change": "deleted",
                "size": before[path][0],
                "sha256": None,
                "kept": False,
                "installed": False,
            }
        )
    (out / f"fsdiff.{phase}.json").write_text(json.dumps(changes))
    return after


def save(out: Path, snap: dict[str, list[int]]) -> None:
    (out / ".snapshot.json").write_text(json.dumps(snap))


def load(out: Path) -> dict[str, list[int]]:
    try:
        data: dict[str, list[int]] = json.loads((out / ".snapshot.json").read_text())
        return data
    except (OSError, ValueError):
        return {}


__all__ = ["diff_and_keep", "load", "recorded_files", "save", "snapshot"]
