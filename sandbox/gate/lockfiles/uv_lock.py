"""uv.lock: the packages uv resolved, with their sources and hashes."""

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


def parse_uv_lock(text: str, path: Path, *, display: str | None = None) -> list[LockedRequirement]:
    """Every ``[[package]]`` of a uv.lock (version 1) with its source and file hashes.

    Workspace members (``editable``/``virtual``/``directory`` sources) are the
    project's own code and come back as ``DIRECTORY`` entries.
    """
    shown = display if display is not None else str(path)
    data = _load_toml(text, shown)
    version = data.get("version")
    if version != 1:
        raise _Where(shown, _line_of(text, "version")).error(
            f"unsupported uv.lock version {version!r} (this tool reads version 1)"
        )
    base_dir = path.parent
    out: list[LockedRequirement] = []
    for where, pkg in _Packages(data, "package", text, shown):
        name = canonicalize_name(_string(pkg.get("name"), "package name", where, required=True) or "")
        ver = _version(pkg.get("version"), where, name)
        source = _table(pkg.get("source"), f"source of {name}", where)
        sdist = _table(pkg.get("sdist"), f"sdist of {name}", where)
        wheels = [
            _table(w, f"wheel of {name}", where)
            for w in _array(pkg.get("wheels"), f"wheels of {name}", where)
        ]
        hashes = _hash_list([sdist.get("hash"), *(w.get("hash") for w in wheels)])
        # resolution-markers only say which fork of the resolution a version belongs to; the
        # gate vets every locked version in the sandbox, so they are not carried as markers.
        common: dict[str, Any] = {
            "name": name,
            "version": ver,
            "hashes": hashes,
            "source_file": shown,
            "line": where.line,
        }
        if "registry" in source:
            out.append(
                LockedRequirement(
                    kind=SourceKind.INDEX,
                    url=str(source["registry"]),
                    specifier=f"=={ver}" if ver else "",
                    **common,
                )
            )
        elif "git" in source:
            out.append(LockedRequirement(kind=SourceKind.VCS, url=f"git+{source['git']}", **common))
        elif "url" in source:
            out.append(LockedRequirement(kind=SourceKind.URL, url=str(source["url"]), **common))
        elif "path" in source:
            local = _under(base_dir, str(source["path"]))
            kind = SourceKind.LOCAL if _is_archive(local.name) else SourceKind.DIRECTORY
            out.append(LockedRequirement(kind=kind, path=str(local), **common))
        elif any(k in source for k in ("editable", "virtual", "directory")):
            rel = source.get("editable") or source.get("virtual") or source.get("directory")
            out.append(
                LockedRequirement(
                    kind=SourceKind.DIRECTORY,
                    path=str(_under(base_dir, str(rel))),
                    editable="editable" in source,
                    **common,
                )
            )
        else:
            raise where.error(f"package {name} has no source uv knows ({sorted(source)})")
    return out
