"""A local source tree (``-e ./vendored``) packed like an sdist, so the gate vets it
inside the sandbox instead of passing it unseen.

Packing executes nothing: the tree is walked (links are stored as links, never
followed), regular files are copied into a deterministic ``.tar.gz`` (sorted, times
and owners zeroed: the same tree gives the same sha256, so the result cache serves a
re-run), and name and version are read from ``pyproject.toml``/``setup.cfg`` as text.
Bounded in files and bytes: a tree over the bounds is reported as not vetted.
"""

from __future__ import annotations

import configparser
import gzip
import io
import os
import re
import stat
import tarfile
from pathlib import Path

from sandbox.errors import InputError
from sandbox.gate.lockfiles._common import tomllib

MAX_FILES = 20000
MAX_BYTES = 256 << 20
# Version control, caches and virtual environments: never part of an sdist.
SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "__pycache__", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
)
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_VERSION = re.compile(r"^[0-9][0-9A-Za-z.+!_-]*$")


def tree_identity(tree: Path, fallback_name: str) -> tuple[str, str]:
    """(name, version) of a source tree from its static metadata; the version is "0"
    when only code (setup.py, a dynamic version) could tell it."""
    name, version = "", ""
    try:
        project = tomllib.loads((tree / "pyproject.toml").read_text("utf-8")).get("project") or {}
        name = str(project.get("name") or "")
        version = str(project.get("version") or "")
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    if not name or not version:
        cfg = configparser.ConfigParser(interpolation=None)
        try:
            cfg.read_string((tree / "setup.cfg").read_text("utf-8"))
            name = name or cfg.get("metadata", "name", fallback="")
            version = version or cfg.get("metadata", "version", fallback="")
        except (OSError, configparser.Error, UnicodeDecodeError):
            pass
    name = name if _NAME.match(name or "") else fallback_name
    version = version if _VERSION.match(version or "") else "0"
    return name, version


def pack_tree(tree: Path, dest: Path, fallback_name: str) -> Path:
    """Write ``NAME-VERSION.tar.gz`` of *tree* (one top directory, like an sdist) into
    *dest*; raises :class:`InputError` when it is not a buildable tree or too big."""
    if not tree.is_dir():
        raise InputError(f"local source tree {tree} is not a directory")
    if not any((tree / f).is_file() for f in ("pyproject.toml", "setup.py")):
        raise InputError(f"local source tree {tree} has neither pyproject.toml nor setup.py")
    name, version = tree_identity(tree, fallback_name)
    stem = f"{re.sub(r'[-_.]+', '_', name)}-{version}"
    buf = io.BytesIO()
    files = size = 0
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info(f"{stem}", tarfile.DIRTYPE, 0o755))
        for dirpath, dirnames, filenames in os.walk(tree):  # never follows links
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            rel_dir = os.path.relpath(dirpath, tree)
            for entry in [*dirnames, *sorted(filenames)]:
                full = os.path.join(dirpath, entry)
                arc = os.path.normpath(os.path.join(stem, rel_dir, entry))
                st = os.lstat(full)
                files += 1
                if files > MAX_FILES:
                    raise InputError(f"local source tree {tree} has more than {MAX_FILES} files")
                if stat.S_ISLNK(st.st_mode):
                    info = _info(arc, tarfile.SYMTYPE, 0o777)
                    info.linkname = os.readlink(full)
                    tar.addfile(info)
                elif stat.S_ISDIR(st.st_mode):
                    tar.addfile(_info(arc, tarfile.DIRTYPE, 0o755))
                elif stat.S_ISREG(st.st_mode):
                    size += st.st_size
                    if size > MAX_BYTES:
                        raise InputError(f"local source tree {tree} is larger than {MAX_BYTES >> 20} MiB")
                    info = _info(arc, tarfile.REGTYPE, 0o755 if st.st_mode & 0o111 else 0o644)
                    with open(full, "rb") as fh:
                        data = fh.read(MAX_BYTES + 1)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                # sockets, fifos, devices: not source, left out
    out = dest / f"{stem}.tar.gz"
    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(buf.getvalue())
    return out


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


__all__ = ["MAX_BYTES", "MAX_FILES", "pack_tree", "tree_identity"]
