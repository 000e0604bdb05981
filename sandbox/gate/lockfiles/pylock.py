"""pylock.toml (PEP 751): the packages of a standard lock, with their sources and hashes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from sandbox.gate.lockfiles._common import _under, _Where
from sandbox.gate.lockfiles._toml import (
    _array,
    _hash_list,
    _line_of,
    _load_toml,
    _Packages,
    _string,
    _table,
    _version,
)
from sandbox.gate.models import LockedRequirement, SourceKind


def parse_pylock(text: str, path: Path, *, display: str | None = None) -> list[LockedRequirement]:
    """Every ``[[packages]]`` of a PEP 751 ``pylock.toml`` (lock-version 1.x)."""
    shown = display if display is not None else str(path)
    data = _load_toml(text, shown)
    version_where = _Where(shown, _line_of(text, "lock-version"))
    lock_version = _string(data.get("lock-version"), "lock-version", version_where, required=True) or ""
    if lock_version.split(".")[0] != "1":
        raise version_where.error(f"unsupported pylock lock-version {lock_version!r} (this tool reads 1.x)")
    base_dir = path.parent
    out: list[LockedRequirement] = []
    for where, pkg in _Packages(data, "packages", text, shown):
        name = canonicalize_name(_string(pkg.get("name"), "package name", where, required=True) or "")
        ver = _version(pkg.get("version"), where, name)
        marker = _string(pkg.get("marker"), f"marker of {name}", where) or ""
        sdist = _table(pkg.get("sdist"), f"sdist of {name}", where)
        wheels = [
            _table(w, f"wheel of {name}", where)
            for w in _array(pkg.get("wheels"), f"wheels of {name}", where)
        ]
        archive = _table(pkg.get("archive"), f"archive of {name}", where)
        hashes: list[str | None] = []
        for item in (sdist, archive, *wheels):
            for algo, digest in _table(item.get("hashes"), f"hashes of {name}", where).items():
                hashes.append(f"{algo}:{digest}")
        common: dict[str, Any] = {
            "name": name,
            "version": ver,
            "hashes": _hash_list(hashes),
            "markers": marker,
            "source_file": shown,
            "line": where.line,
        }
        if "vcs" in pkg:
            vcs = _table(pkg["vcs"], f"vcs of {name}", where)
            out.append(
                LockedRequirement(
                    kind=SourceKind.VCS,
                    url=f"{vcs.get('type', 'git')}+{vcs.get('url') or vcs.get('path')}",
                    **common,
                )
            )
        elif "directory" in pkg:
            d = _table(pkg["directory"], f"directory of {name}", where)
            local = _under(base_dir, str(d.get("path", ".")))
            out.append(
                LockedRequirement(
                    kind=SourceKind.DIRECTORY, path=str(local), editable=bool(d.get("editable")), **common
                )
            )
        elif archive:
            if archive.get("path"):
                local = _under(base_dir, str(archive["path"]))
                out.append(LockedRequirement(kind=SourceKind.LOCAL, path=str(local), **common))
            else:
                out.append(LockedRequirement(kind=SourceKind.URL, url=str(archive.get("url", "")), **common))
        elif sdist or wheels:
            index = _string(pkg.get("index"), f"index of {name}", where)
            out.append(
                LockedRequirement(
                    kind=SourceKind.INDEX, url=index, specifier=f"=={ver}" if ver else "", **common
                )
            )
        else:
            raise where.error(f"package {name} names no source (sdist, wheels, archive, vcs or directory)")
    return out
