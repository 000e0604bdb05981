"""poetry.lock: the packages Poetry resolved, with their groups, sources and hashes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from sandbox.gate.lockfiles._common import _is_archive, _under, _Where
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


def parse_poetry_lock(text: str, path: Path, *, display: str | None = None) -> list[LockedRequirement]:
    """Every ``[[package]]`` of a poetry.lock (lock-version 1.x and 2.x) with its files' hashes."""
    shown = display if display is not None else str(path)
    data = _load_toml(text, shown)
    meta = _table(data.get("metadata"), "[metadata]", _Where(shown, _line_of(text, "[metadata]")))
    lock_version = str(meta.get("lock-version", ""))
    if lock_version and lock_version.split(".")[0] not in ("1", "2"):
        raise _Where(shown, _line_of(text, "lock-version")).error(
            f"unsupported poetry.lock lock-version {lock_version!r} (this tool reads 1.x and 2.x)"
        )
    legacy_files = _table(meta.get("files"), "[metadata.files]", _Where(shown, 0))  # lock-version 1.1
    base_dir = path.parent
    out: list[LockedRequirement] = []
    for where, pkg in _Packages(data, "package", text, shown):
        raw_name = _string(pkg.get("name"), "package name", where, required=True) or ""
        name = canonicalize_name(raw_name)
        ver = _version(pkg.get("version"), where, name)
        files = pkg.get("files")
        if files is None:
            files = legacy_files.get(raw_name, legacy_files.get(name, []))
        hashes = _hash_list(
            [_table(f, f"file of {name}", where).get("hash") for f in _array(files, "files", where)]
        )
        raw_groups = pkg.get("groups")
        if raw_groups is None and isinstance(pkg.get("category"), str):
            raw_groups = [pkg["category"]]
        groups = tuple(str(g) for g in _array(raw_groups, f"groups of {name}", where))
        markers_value = pkg.get("markers", "")
        if isinstance(markers_value, dict):  # Poetry 2: a marker per group
            markers = " or ".join(sorted({f"({m})" for m in markers_value.values() if m}))
        else:
            markers = str(markers_value or "")
        source = _table(pkg.get("source"), f"source of {name}", where)
        stype = str(source.get("type", ""))
        common: dict[str, Any] = {
            "name": name,
            "version": ver,
            "hashes": hashes,
            "markers": markers,
            "groups": groups,
            "source_file": shown,
            "line": where.line,
        }
        if stype in ("", "legacy"):
            out.append(
                LockedRequirement(
                    kind=SourceKind.INDEX,
                    url=source.get("url") or None,
                    specifier=f"=={ver}" if ver else "",
                    **common,
                )
            )
        elif stype == "git":
            out.append(LockedRequirement(kind=SourceKind.VCS, url=f"git+{source.get('url', '')}", **common))
        elif stype == "url":
            out.append(LockedRequirement(kind=SourceKind.URL, url=str(source.get("url", "")), **common))
        elif stype in ("file", "directory"):
            local = _under(base_dir, str(source.get("url", "")))
            kind = SourceKind.LOCAL if stype == "file" and _is_archive(local.name) else SourceKind.DIRECTORY
            out.append(
                LockedRequirement(kind=kind, path=str(local), editable=bool(pkg.get("develop")), **common)
            )
        else:
            raise where.error(f"package {name} has an unknown source type {stype!r}")
    return out
