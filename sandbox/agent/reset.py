"""Extra passes start from the state install left (runs inside the sandbox only).

A payload that marks its first session (``~/.config/x/installed``, a lock in
``/tmp``) and stays quiet after would find the mark in every extra pass: the passes
run in the default pass's container. The ``windows``, ``ci``, ``secrets`` and
``control`` passes stand for another machine or another first session, so before
each the candidate's writable state (HOME, its own entries of the temp directories,
and what appeared in the venv since: a mark beside the package's own module; what
pip installed there since, an adaptive round's dependencies, stays) goes back to what
it was when the default install ended. The
``time`` pass does not: it is the same machine later, and a payload that dates its
first run and wakes weeks after it must find that date.

Root keeps the snapshot (a tar in the root-only trace tmpfs); the candidate's uid
restores it, fed the tar on stdin: root holds no CAP_DAC_OVERRIDE here, so only
that uid can delete and create in the candidate's directories. The restoring
process is the agent's own (its pid goes to the next phase's ``agent_pids``).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from . import fsdiff
from .common import OUT, site_packages
from .steps import privilege_drop

SNAPSHOT = OUT.parent / "after-install.tar"  # root-only tmpfs (TRACE_MOUNT), not collected
NOTE = OUT.parent / "after-install.note"  # what the snapshot left out, or why there is none
LISTING = OUT.parent / "after-install.venv"  # every venv path at install, NUL-separated
LISTED = ".pkgsandbox-venv-keep"  # the restore stream's first member: never extracted
TEMP_ROOTS = ("/tmp", "/var/tmp", "/dev/shm")
# Bounds of the snapshot (the trace tmpfs holds it). A file past them is left out and
# so absent in the passes: a big file is data, not a mark, and a sparse or filled one
# must not make the reset fail open.
PER_FILE = 4 << 20
MAX_BYTES = 64 << 20
MAX_FILES = 20000

# Run as the candidate's uid by ``python3 -I -S`` (nothing of the user's site, no
# PYTHON* variables: no code of the candidate's can run in it). Deletes what the
# candidate may have made since (in the venv only what appeared after install; never
# anything not its own), then extracts the snapshot from stdin.
RESTORE = r"""
import os, stat, sys, tarfile
home, venv, uid = sys.argv[1], sys.argv[2], os.getuid()
roots = sys.argv[3:]
failed = 0
def rm(p):
    global failed
    try:
        st = os.lstat(p)
        if st.st_uid != uid:
            return
        if stat.S_ISDIR(st.st_mode):
            os.chmod(p, 0o700)
            for e in os.scandir(p):
                rm(e.path)
            os.rmdir(p)
        else:
            os.unlink(p)
    except OSError:
        failed += 1
def clear(d):
    if os.lstat(d).st_uid == uid:
        os.chmod(d, 0o700)  # its mode comes back with the snapshot
    for e in os.scandir(d):
        if e.path == venv:
            continue
        if venv.startswith(e.path + "/") and e.is_dir(follow_symlinks=False):
            clear(e.path)
        else:
            rm(e.path)
def prune(d, known):
    # what appeared in the venv since install (bytecode caches aside: regenerated, costly)
    for e in os.scandir(d):
        if e.name == "__pycache__":
            continue
        if e.path not in known:
            rm(e.path)
        elif e.is_dir(follow_symlinks=False):
            prune(e.path, known)
kw = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
dirs = []
with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as tar:
    first = tar.next()  # the venv's listing at install
    known = set(tar.extractfile(first).read().decode("utf-8", "surrogateescape").split("\0"))
    for d in [home, *roots]:
        try:
            clear(d)
        except OSError:
            failed += 1
    if known != {""}:  # no listing of install's venv: keep all of it
        try:
            prune(venv, known)
        except OSError:
            failed += 1
    for m in tar:
        if m.name == first.name:
            continue  # a stream's iteration starts again at the member next() read
        try:
            # a directory's mode and time last (a 0500 one would refuse its files)
            tar.extract(m, "/", set_attrs=not m.isdir(), **kw)
            if m.isdir():
                dirs.append(m)
        except OSError:
            failed += 1
for m in reversed(dirs):
    try:
        os.chmod("/" + m.name, m.mode)
        os.utime("/" + m.name, (m.mtime, m.mtime))
    except OSError:
        failed += 1
print(failed)
"""


def _members(home: str, venv: str, uid: int) -> list[str]:
    """What the snapshot holds: HOME but the venv, and the candidate's own entries of
    the temp directories (root's, like the agent's, are not the candidate's state)."""
    paths = [home]
    for root in TEMP_ROOTS:
        try:
            for e in os.scandir(root):
                if e.stat(follow_symlinks=False).st_uid == uid:
                    paths.append(e.path)
        except OSError:
            continue
    return paths


def _venv_listing(venv: str) -> list[str]:
    """Every path in the venv after install (bytecode caches aside): what appears there
    later (a mark beside the package's own module) is removed, the rest kept."""
    paths = [venv]
    for dirpath, dirnames, filenames in os.walk(venv):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        paths.extend(os.path.join(dirpath, n) for n in dirnames + filenames)
    return paths


def _venv_keep(venv: str) -> set[str]:
    """The venv paths the restore keeps: those of install, and what pip installed since
    (an adaptive round's dependencies, listed in their RECORDs, with their folders)."""
    try:
        keep = set(LISTING.read_text(errors="surrogateescape").split("\0"))
    except OSError:
        return set()  # no listing: the restore then keeps the whole venv
    try:
        recorded = fsdiff.recorded_files(site_packages(Path(venv)))
    except RuntimeError:
        recorded = set()
    for path in recorded:
        while path.startswith(venv + "/") and path not in keep:
            keep.add(path)
            path = os.path.dirname(path)
    return keep


def save(plan: dict[str, Any]) -> None:
    """Root, when the default install ended: the snapshot, when a fresh pass may run;
    what it left out (or why there is none) goes to :data:`NOTE` for :func:`restore`."""
    if not any(conf.get("fresh") for conf in (plan.get("passes") or {}).values()):
        return  # nothing would restore it: no tar on the hot path
    home, venv, uid = str(plan["home"]), str(plan["venv"]), int(plan["uid"])
    total = {"bytes": 0, "files": 0, "left": 0}

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if "/" + info.name == venv:
            return None
        if info.isfile() and (
            info.size > PER_FILE or total["bytes"] + info.size > MAX_BYTES or total["files"] >= MAX_FILES
        ):
            total["left"] += 1
            return None
        total["bytes"] += info.size if info.isfile() else 0
        total["files"] += 1
        return info

    note = ""
    try:
        LISTING.write_text("\0".join(_venv_listing(venv)), errors="surrogateescape")
        os.chmod(LISTING, 0o600)
        with tarfile.open(SNAPSHOT, "w") as tar:
            for path in _members(home, venv, uid):
                tar.add(path, arcname=path.lstrip("/"), filter=keep)
        os.chmod(SNAPSHOT, 0o600)
        if total["left"]:
            note = (
                f"{total['left']} file(s) of install's left out (over {PER_FILE >> 20} MiB, "
                f"or past {MAX_BYTES >> 20} MiB or {MAX_FILES} files in all)"
            )
    except OSError as exc:
        SNAPSHOT.unlink(missing_ok=True)
        note = f"no snapshot of the state after install ({type(exc).__name__}: {exc})"
    with contextlib.suppress(OSError):
        NOTE.write_text(note)


def restore(plan: dict[str, Any]) -> tuple[int | None, str]:
    """Put the snapshot back as the candidate's uid: (the restoring process's pid,
    "" or what went wrong). No snapshot: (None, why)."""
    if not SNAPSHOT.exists():
        return None, _note() or "no snapshot of the state after install"
    argv = [
        *privilege_drop(plan),
        "/usr/bin/python3",
        "-I",
        "-S",
        "-c",
        RESTORE,
        str(plan["home"]),
        str(plan["venv"]),
        *TEMP_ROOTS,
    ]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    keep = "\0".join(sorted(_venv_keep(str(plan["venv"])))).encode("utf-8", "surrogateescape")
    # what to keep in the venv first, then the snapshot, as one stream (at most the
    # snapshot's bounds: 64 MiB)
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w|") as out, tarfile.open(SNAPSHOT) as snap:
        info = tarfile.TarInfo(LISTED)
        info.size = len(keep)
        out.addfile(info, io.BytesIO(keep))
        for m in snap:
            out.addfile(m, snap.extractfile(m) if m.isfile() else None)
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd="/"
    )
    try:
        out_b, err = proc.communicate(stream.getvalue(), timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return proc.pid, "the restore did not end within 60 s"
    if proc.returncode != 0:
        return proc.pid, f"the restore failed ({proc.returncode}): {err.decode(errors='replace')[-200:]}"
    failed = out_b.decode().strip()
    said = [] if failed == "0" else [f"{failed} path(s) could not be restored"]
    return proc.pid, "; ".join([*said, *filter(None, [_note()])])


def _note() -> str:
    try:
        return NOTE.read_text()
    except OSError:
        return ""
