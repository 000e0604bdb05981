"""Static metadata of sdists, and metadata-only "stub" wheels that stand in for them.

An sdist's real metadata is only known after its build backend ran, which must
never happen on the host. What can be known statically is read here, in this
order: ``PKG-INFO`` (Metadata-Version ≥ 2.2 and Requires-Dist not Dynamic),
``pyproject.toml`` ``[project]``, a Poetry project's ``[tool.poetry.dependencies]``,
``setup.cfg`` ``[options]``, then (not promised static) old ``PKG-INFO`` and
``egg-info/requires.txt``; anything else is reported as unknown.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import importlib
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from sandbox.errors import FetchError
from sandbox.fetch.archive import SdistContents, parse_metadata
from sandbox.fetch.poetry import poetry_requires

# tomllib is 3.11+, its backport tomli is a dependency on 3.10; importing by
# name keeps one code path for both (and for mypy's 3.10 target).
_toml = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")

# What pip assumes for a source tree without [build-system] (PEP 518).
LEGACY_BUILD_REQUIRES = ("setuptools>=40.8.0", "wheel")
_SETUPTOOLS_BACKENDS = ("setuptools.build_meta", "setuptools.build_meta:__legacy__")
_POETRY = "poetry.core.masonry.api"


def _backend(pyproject: dict[str, Any]) -> str | None:
    build_system = pyproject.get("build-system")
    backend = build_system.get("build-backend") if isinstance(build_system, dict) else None
    return str(backend) if backend else None


@dataclass(frozen=True)
class StaticMetadata:
    """What an sdist declares without running anything."""

    name: NormalizedName
    display_name: str
    version: str
    requires_dist: tuple[str, ...] | None  # None: unknown (dynamic)
    requires_python: str | None
    provides_extra: tuple[str, ...]
    build_requires: tuple[str, ...]
    build_backend: str | None
    source: str  # where the dependencies came from
    notes: tuple[str, ...]
    legacy: bool = False  # no [build-system]: pip runs setup.py (a developer's venv, no isolation)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _load_pyproject(contents: SdistContents) -> dict[str, Any] | None:
    if contents.pyproject is None:
        return None
    try:
        data = _toml.loads(_text(contents.pyproject))
    except _toml.TOMLDecodeError as exc:
        raise FetchError(f"{contents.path.name}: pyproject.toml is invalid: {exc}") from None
    return data if isinstance(data, dict) else None


def _metadata_version(msg: Message) -> Version | None:
    try:
        return Version(str(msg.get("Metadata-Version", "")).strip())
    except InvalidVersion:
        return None


def _extra_marker(req: str, extra: str) -> str:
    """*req* restricted to *extra*, keeping its own marker."""
    parsed = Requirement(req)
    base = str(parsed).split(";", 1)[0].strip()
    clause = f'extra == "{canonicalize_name(extra)}"'
    if parsed.marker is not None:
        return f"{base}; ({parsed.marker}) and {clause}"
    return f"{base}; {clause}"


def _setup_cfg_list(value: str) -> list[str] | None:
    """A setup.cfg list value; None when it is a ``file:``/``attr:`` directive (dynamic)."""
    stripped = value.strip()
    if stripped.startswith(("file:", "attr:")):
        return None
    out: list[str] = []
    for line in stripped.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def _from_setup_cfg(contents: SdistContents) -> tuple[list[str], list[str], str | None] | None:
    if contents.setup_cfg is None:
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(_text(contents.setup_cfg))
    except configparser.Error:
        return None
    if not parser.has_option("options", "install_requires"):
        return None
    requires = _setup_cfg_list(parser.get("options", "install_requires"))
    if requires is None:
        return None
    extras: list[str] = []
    if parser.has_section("options.extras_require"):
        for extra, value in parser.items("options.extras_require"):
            reqs = _setup_cfg_list(value)
            if reqs is None:
                return None
            extras.append(extra)
            requires += [_extra_marker(r, extra) for r in reqs]
    python = parser.get("options", "python_requires", fallback=None)
    return requires, extras, python


def _egg_requires(data: bytes) -> list[str]:
    """Requirements of a setuptools ``requires.txt``: the unnamed section, plus
    ``[:marker]`` sections with their marker (extras' sections are left out)."""
    out: list[str] = []
    marker: str | None = ""
    for raw in _text(data).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            extra, _, cond = line[1:-1].partition(":")
            marker = cond.strip() if not extra.strip() else None
            continue
        if marker is None:
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        out.append(f"{req}; {marker}" if marker and req.marker is None else str(req))
    return out[:200]


def read_static_metadata(contents: SdistContents) -> StaticMetadata:
    """The static name, version, dependencies and build requirements of an sdist."""
    notes: list[str] = list(contents.notes)
    fname = contents.path.name
    pkg = parse_metadata(contents.pkg_info) if contents.pkg_info is not None else None
    pyproject = _load_pyproject(contents) or {}
    project = pyproject.get("project") if isinstance(pyproject.get("project"), dict) else None
    dynamic = {str(d).lower() for d in (project or {}).get("dynamic", []) or []}

    # Name and version: PKG-INFO, else [project], else the filename.
    display = str(pkg.get("Name", "")) if pkg is not None else ""
    version = str(pkg.get("Version", "")) if pkg is not None else ""
    if not display and project is not None:
        display = str(project.get("name", ""))
    if not version and project is not None and "version" not in dynamic:
        version = str(project.get("version", ""))
    display = display or (contents.filename_name or "")
    version = version or (contents.filename_version or "")
    if not display or not version:
        raise FetchError(f"{fname}: cannot tell the project name and version")
    name = canonicalize_name(display)
    if contents.filename_name is not None and contents.filename_name != name:
        raise FetchError(f"{fname}: the archive's metadata names project {display!r}")

    requires: tuple[str, ...] | None = None
    requires_python: str | None = None
    extras: list[str] = []
    source = ""
    pkg_dynamic = {str(d).lower() for d in (pkg.get_all("Dynamic") or [])} if pkg is not None else set()
    mv = _metadata_version(pkg) if pkg is not None else None
    if pkg is not None and mv is not None and mv >= Version("2.2") and "requires-dist" not in pkg_dynamic:
        requires = tuple(str(r) for r in pkg.get_all("Requires-Dist") or ())
        extras = [str(e) for e in pkg.get_all("Provides-Extra") or ()]
        source = "PKG-INFO"
    elif project is not None and "dependencies" not in dynamic:
        deps = [str(d) for d in project.get("dependencies", []) or []]
        optional = project.get("optional-dependencies", {}) or {}
        if "optional-dependencies" in dynamic:
            notes.append(f"optional dependencies (extras) of {fname} are dynamic")
        for extra, reqs in optional.items():
            extras.append(str(extra))
            deps += [_extra_marker(str(r), str(extra)) for r in reqs]
        requires = tuple(deps)
        source = "pyproject.toml"
    elif (
        project is None
        and _backend(pyproject) == _POETRY
        and (poetry := poetry_requires(pyproject)) is not None
    ):
        # what poetry-core writes as Requires-Dist when it builds, and pip resolves;
        # an egg-info beside it (another tool built the sdist) says what the code was
        # run with: staged too, for the checkout a failed build falls back to
        named = {canonicalize_name(Requirement(r).name) for r in poetry}
        egg = _egg_requires(contents.egg_requires) if contents.egg_requires is not None else []
        more = [r for r in egg if canonicalize_name(Requirement(r).name) not in named]
        requires = (*poetry, *more)
        source = "pyproject.toml [tool.poetry.dependencies]" + (" and egg-info/requires.txt" if more else "")
    else:
        cfg = _from_setup_cfg(contents)
        if cfg is not None:
            requires, extras, requires_python = tuple(cfg[0]), cfg[1], cfg[2]
            source = "setup.cfg"
            if contents.has_setup_py:
                notes.append(f"dependencies of {fname} read from setup.cfg; its setup.py may add more")
        elif pkg is not None and pkg.get_all("Requires-Dist"):
            # Old metadata is not promised to be static, but staging what it
            # lists is better than staging nothing.
            requires = tuple(str(r) for r in pkg.get_all("Requires-Dist") or ())
            extras = [str(e) for e in pkg.get_all("Provides-Extra") or ()]
            source = f"PKG-INFO {pkg.get('Metadata-Version', '?')}"
            notes.append(
                f"dependency list of {fname} comes from PKG-INFO {pkg.get('Metadata-Version', '?')}, "
                "which does not promise it is static; dependencies may be missing"
            )
        elif contents.egg_requires is not None and _egg_requires(contents.egg_requires):
            # What setup.py declared when the author built the sdist: not promised
            # static either, but better than staging nothing.
            requires = tuple(_egg_requires(contents.egg_requires))
            source = "egg-info/requires.txt"
            notes.append(
                f"dependency list of {fname} comes from its egg-info/requires.txt (written by its "
                "setup.py when the sdist was built); dependencies may be missing"
            )
        else:
            notes.append(f"dependency list of {fname} is dynamic; dependencies may be missing")

    if pkg is not None and pkg.get("Requires-Python"):
        requires_python = str(pkg.get("Requires-Python")).strip()
    elif project is not None and project.get("requires-python"):
        requires_python = str(project["requires-python"]).strip()

    build_system = pyproject.get("build-system") if isinstance(pyproject.get("build-system"), dict) else None
    if build_system is not None and "requires" in build_system:
        build_requires = tuple(str(r) for r in build_system.get("requires") or ())
        backend = build_system.get("build-backend")
        backend = str(backend) if backend else None
    else:
        build_requires = LEGACY_BUILD_REQUIRES
        backend = None
    legacy = build_system is None and contents.has_setup_py
    if backend in (None, *_SETUPTOOLS_BACKENDS) and not any(_req_name(r) == "wheel" for r in build_requires):
        # setuptools' get_requires_for_build_wheel hook asks for "wheel" in
        # versions before 70.1; stage it so the offline build cannot miss it.
        build_requires = (*build_requires, "wheel")
    if backend not in (
        None,
        *_SETUPTOOLS_BACKENDS,
        "hatchling.build",
        "flit_core.buildapi",
        "poetry.core.masonry.api",
        "pdm.backend",
    ):
        notes.append(f"build backend {backend} of {fname} may ask for more build requirements at build time")
    for req in (*(requires or ()), *build_requires):
        check_requirement(req, f"{fname}")
    return StaticMetadata(
        name=name,
        display_name=display,
        version=version,
        requires_dist=requires,
        requires_python=requires_python,
        provides_extra=tuple(extras),
        build_requires=build_requires,
        build_backend=backend,
        source=source,
        notes=tuple(notes),
        legacy=legacy,
    )


def _req_name(req: str) -> str:
    try:
        return canonicalize_name(Requirement(req).name)
    except InvalidRequirement:
        return ""


def check_requirement(req: str, owner: str) -> Requirement:
    """Parse a dependency; refuse invalid ones and direct URL references.

    A direct reference (``foo @ https://…/foo.tar.gz``) would make pip fetch
    and build a source tree outside any index, so it is never followed.
    """
    try:
        parsed = Requirement(req)
    except InvalidRequirement as exc:
        raise FetchError(f"{owner} declares an invalid requirement {req!r}: {exc}") from None
    if parsed.url:
        raise FetchError(
            f"{owner} depends on a direct URL reference {req!r}; only index packages can be staged"
        )
    return parsed


# --------------------------------------------------------------------------- markers


def marker_applies(marker: Marker | None, env: dict[str, str], extras: Iterable[str]) -> bool:
    """Does *marker* hold for the target *env* with any of the requested *extras*?"""
    if marker is None:
        return True
    return any(marker.evaluate({**env, "extra": extra}) for extra in ("", *extras))


# --------------------------------------------------------------------------- stubs


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def write_stub_wheel(meta: StaticMetadata, directory: Path) -> Path:
    """A metadata-only wheel standing in for an sdist, so pip's resolver sees its dependencies.

    The stub is never staged: it only lets ``pip download --only-binary`` keep
    resolving the rest of the tree; the real sdist replaces it afterwards.
    """
    escaped = meta.name.replace("-", "_")
    version = str(Version(meta.version))
    dist_info = f"{escaped}-{version}.dist-info"
    lines = ["Metadata-Version: 2.1", f"Name: {meta.display_name}", f"Version: {version}"]
    if meta.requires_python:
        lines.append(f"Requires-Python: {meta.requires_python}")
    lines += [f"Provides-Extra: {canonicalize_name(e)}" for e in meta.provides_extra]
    lines += [f"Requires-Dist: {r}" for r in meta.requires_dist or ()]
    files = {
        f"{dist_info}/METADATA": ("\n".join(lines) + "\n").encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: pkgsandbox-stub\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = [_record_line(p, d) for p, d in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / f"{escaped}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            # A fixed timestamp makes the stub a pure function of the metadata.
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return path
