"""The environment artifacts are fetched *for*: the sandbox's interpreter, not the host's.

Everything that depends on the target (pip's platform flags, wheel tag
compatibility, PEP 508 marker values) is derived here, in one place.
"""

from __future__ import annotations

import re

from packaging.tags import Tag, compatible_tags, cpython_tags
from pydantic import field_validator

from sandbox.models import Frozen, ImageInfo

_PY_VERSION = re.compile(r"^3\.(\d+)(?:\.(\d+))?$")
_PLATFORM = re.compile(r"^[a-z0-9_]+$")
_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_(.+)$")
_MUSLLINUX = re.compile(r"^musllinux_(\d+)_(\d+)_(.+)$")
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_LEGACY_ALIAS = {(2, 5): "manylinux1", (2, 12): "manylinux2010", (2, 17): "manylinux2014"}
# Oldest glibc with a manylinux tag per architecture (PEP 600 / packaging._manylinux).
_OLDEST_GLIBC_MINOR = {"x86_64": 5, "i686": 5}
_DEFAULT_OLDEST_GLIBC_MINOR = 17


def _arch_of(platform: str) -> str:
    for pattern in (_MANYLINUX, _MUSLLINUX):
        m = pattern.match(platform)
        if m:
            return m.group(3)
    prefix, _, arch = platform.partition("_")
    if prefix in _LEGACY_MANYLINUX or prefix == "linux":
        return arch
    return arch or platform


def expand_platform(platform: str) -> list[str]:
    """Every platform tag a system with *platform* accepts, best first.

    pip (at least up to 23.x) passes PEP 600 ``manylinux_2_X`` tags given with
    ``--platform`` through verbatim instead of expanding them to older glibc
    versions, so a wheel tagged ``manylinux_2_17`` would be refused for a
    ``manylinux_2_36`` target. We therefore expand explicitly, the way
    :mod:`packaging.tags` does for the running interpreter.
    """
    legacy = platform.partition("_")
    if legacy[0] in _LEGACY_MANYLINUX:
        major, minor = _LEGACY_MANYLINUX[legacy[0]]
        platform = f"manylinux_{major}_{minor}_{legacy[2]}"
    m = _MANYLINUX.match(platform)
    if m:
        major, minor, arch = int(m.group(1)), int(m.group(2)), m.group(3)
        out: list[str] = []
        oldest = _OLDEST_GLIBC_MINOR.get(arch, _DEFAULT_OLDEST_GLIBC_MINOR) if major == 2 else 0
        for glibc_minor in range(minor, oldest - 1, -1):
            out.append(f"manylinux_{major}_{glibc_minor}_{arch}")
            alias = _LEGACY_ALIAS.get((major, glibc_minor))
            if alias and (alias == "manylinux2014" or arch in ("x86_64", "i686")):
                out.append(f"{alias}_{arch}")
        return out
    m = _MUSLLINUX.match(platform)
    if m:
        major, minor, arch = int(m.group(1)), int(m.group(2)), m.group(3)
        return [f"musllinux_{major}_{v}_{arch}" for v in range(minor, -1, -1)]
    return [platform]


class TargetEnv(Frozen):
    """The sandbox interpreter artifacts must suit (CPython on Linux).

    ``platforms`` are wheel platform tags, best first; ``manylinux_2_X`` and
    ``musllinux_1_X`` tags are expanded downwards automatically.
    """

    python_version: str
    implementation: str = "cp"
    platforms: tuple[str, ...]
    # What the sandbox's venv provides without staging (canonical names): the developer
    # kit the image bakes in for legacy setup.py sdists, and the venv template's own.
    kit: tuple[str, ...] = ()
    venv: tuple[str, ...] = ()

    @field_validator("python_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        if not _PY_VERSION.match(value):
            raise ValueError(f"python_version must look like '3.11' or '3.11.7', got {value!r}")
        return value

    @field_validator("implementation")
    @classmethod
    def _check_implementation(cls, value: str) -> str:
        # The sandbox image is CPython; PyPy ABI tags are not modelled.
        if value != "cp":
            raise ValueError(f"only the CPython implementation ('cp') is supported, got {value!r}")
        return value

    @field_validator("platforms")
    @classmethod
    def _check_platforms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one platform tag is required")
        for tag in value:
            if not _PLATFORM.match(tag):
                raise ValueError(f"invalid platform tag {tag!r}")
            if not (tag.startswith(("linux_", "musllinux_")) or tag.startswith("manylinux")):
                raise ValueError(f"the sandbox is Linux; platform tag {tag!r} is not a Linux tag")
        return value

    @classmethod
    def for_image(cls, image: ImageInfo) -> TargetEnv:
        """The target of a sandbox image."""
        return cls(python_version=image.python, platforms=image.platforms, kit=image.kit, venv=image.venv)

    @property
    def major_minor(self) -> str:
        """``"3.11"``."""
        return ".".join(self.python_version.split(".")[:2])

    @property
    def full_version(self) -> str:
        """``"3.11.0"`` when only major.minor is known (what pip assumes too)."""
        parts = self.python_version.split(".")
        return self.python_version if len(parts) == 3 else f"{self.python_version}.0"

    @property
    def abi(self) -> str:
        """The interpreter ABI tag, ``cp311``."""
        return "cp" + self.major_minor.replace(".", "")

    @property
    def machine(self) -> str:
        """``platform_machine`` of the target, from its best platform tag."""
        return _arch_of(self.platforms[0])

    def expanded_platforms(self) -> tuple[str, ...]:
        """All accepted platform tags, best first, without duplicates."""
        seen: dict[str, None] = {}
        for platform in self.platforms:
            for tag in expand_platform(platform):
                seen.setdefault(tag, None)
        return tuple(seen)

    def tags(self) -> frozenset[Tag]:
        """Every wheel tag the target interpreter installs."""
        version = tuple(int(p) for p in self.major_minor.split("."))
        platforms = list(self.expanded_platforms())
        out = set(cpython_tags(version, [self.abi], platforms))
        out.update(compatible_tags(version, self.abi, platforms))
        return frozenset(out)

    def pip_args(self) -> list[str]:
        """The ``pip download`` options that select wheels for this target only.

        ``--abi cpXY`` is enough: pip adds ``abi3`` and ``none`` itself.
        ``--only-binary=:all:`` is what keeps pip from ever building a package.
        """
        args = [
            "--only-binary=:all:",
            "--python-version",
            self.python_version,
            "--implementation",
            self.implementation,
            "--abi",
            self.abi,
        ]
        for platform in self.expanded_platforms():
            args += ["--platform", platform]
        return args

    def markers(self) -> dict[str, str]:
        """PEP 508 marker environment of the target (Linux, CPython, this version)."""
        return {
            "implementation_name": "cpython",
            "implementation_version": self.full_version,
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": self.full_version,
            "python_version": self.major_minor,
            "sys_platform": "linux",
        }

    def describe(self) -> str:
        """Short human form used in messages: ``Python 3.11 manylinux_2_36_x86_64``."""
        return f"Python {self.python_version} {self.platforms[0]}"
