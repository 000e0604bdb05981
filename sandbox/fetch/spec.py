"""What the user asked to vet: a requirement on the index, or a local wheel or sdist."""

from __future__ import annotations

import os
import re
from enum import Enum
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion

from sandbox.errors import InputError
from sandbox.fetch.archive import SDIST_SUFFIXES, split_sdist_filename
from sandbox.models import Frozen

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://|^(git|hg|svn|bzr)\+", re.IGNORECASE)
_PATH_EXTRAS = re.compile(r"^(?P<path>.+?)\[(?P<extras>[^\[\]]*)\]$")
_EXTRA = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


class SpecKind(str, Enum):
    REQUIREMENT = "requirement"
    WHEEL = "wheel"
    SDIST = "sdist"


class Spec(Frozen):
    """A parsed user spec.

    For a requirement, ``specifier`` and ``marker`` are its PEP 508 parts; for a
    file, ``path`` is absolute and ``name``/``version`` come from the filename.
    """

    raw: str
    kind: SpecKind
    name: str  # canonical project name
    extras: tuple[str, ...] = ()
    specifier: str = ""
    marker: str = ""
    path: str = ""
    version: str = ""

    @property
    def is_file(self) -> bool:
        """A local wheel or sdist rather than a requirement."""
        return self.kind is not SpecKind.REQUIREMENT

    def extras_suffix(self) -> str:
        """``"[a,b]"`` or ``""``."""
        return f"[{','.join(self.extras)}]" if self.extras else ""

    def requirement(self) -> str:
        """The requirement without its marker (the marker is evaluated for the target first)."""
        return f"{self.name}{self.extras_suffix()}{self.specifier}"

    @property
    def pinned_version(self) -> str | None:
        """The version of a ``==X`` pin (no wildcard), else None."""
        specs = list(SpecifierSet(self.specifier))
        if len(specs) == 1 and specs[0].operator in ("==", "===") and not specs[0].version.endswith(".*"):
            return specs[0].version
        return None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _looks_like_path(text: str) -> bool:
    lower = text.lower()
    return (
        lower.endswith((".whl", *SDIST_SUFFIXES))
        or "/" in text
        or os.sep in text
        or text.startswith(("~", "."))
    )


def _parse_extras(raw: str, text: str) -> tuple[str, ...]:
    extras = [e.strip() for e in text.split(",") if e.strip()]
    for extra in extras:
        if not _EXTRA.match(extra):
            raise InputError(f"invalid extra {extra!r} in {raw!r}")
    return tuple(sorted({canonicalize_name(e) for e in extras}))


def _parse_path(raw: str, text: str) -> Spec:
    extras: tuple[str, ...] = ()
    m = _PATH_EXTRAS.match(text)
    if m and not Path(text).expanduser().exists():
        text, extras = m.group("path"), _parse_extras(raw, m.group("extras"))
    path = Path(text).expanduser()
    if not path.exists():
        raise InputError(f"no such file: {text}")
    if path.is_dir():
        raise InputError(f"{text} is a directory; pass a wheel (.whl) or sdist (.tar.gz, .zip) file")
    path = path.resolve()
    lower = path.name.lower()
    if lower.endswith(".whl"):
        try:
            name, version, _, _ = parse_wheel_filename(path.name)
        except (InvalidWheelFilename, InvalidVersion) as exc:
            raise InputError(f"{path.name} is not a valid wheel: bad wheel filename ({exc})") from None
        return Spec(
            raw=raw, kind=SpecKind.WHEEL, name=name, version=str(version), path=str(path), extras=extras
        )
    if lower.endswith(SDIST_SUFFIXES):
        split = split_sdist_filename(path.name)
        if split is None:
            raise InputError(f"{path.name} is not a valid sdist: expected NAME-VERSION{path.suffix}")
        return Spec(
            raw=raw, kind=SpecKind.SDIST, name=split[0], version=split[1], path=str(path), extras=extras
        )
    raise InputError(f"{text} is not a wheel or sdist (expected .whl, .tar.gz or .zip)")


def parse_spec(spec: str) -> Spec:
    """Parse a user's spec: ``NAME``, ``NAME==VERSION``, a PEP 508 requirement, or a local file.

    Local files are wheels (``.whl``) and sdists (``.tar.gz``, ``.zip``, …),
    optionally followed by extras (``./foo-1.0-py3-none-any.whl[cli]``).
    URLs and direct references are refused: they would bypass the index and
    its hashes. Any problem raises :class:`~sandbox.errors.InputError`.
    """
    text = spec.strip()
    if not text:
        raise InputError("empty package spec")
    direct_ref = "@" in text.split(";", 1)[0] and not Path(text).expanduser().exists()
    if _URL.match(text) or direct_ref:
        raise InputError(
            f"URLs and direct references are not supported ({text!r}): "
            "download the file and pass its path, or give a package name"
        )
    if _looks_like_path(text):
        return _parse_path(spec, text)
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise InputError(f"invalid package spec {text!r}: {_first_line(exc)}") from None
    if req.url:
        raise InputError(f"direct references are not supported ({text!r}); give a package name")
    return Spec(
        raw=spec,
        kind=SpecKind.REQUIREMENT,
        name=canonicalize_name(req.name),
        extras=tuple(sorted({canonicalize_name(e) for e in req.extras})),
        specifier=str(req.specifier),
        marker=str(req.marker) if req.marker else "",
    )
