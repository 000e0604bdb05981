"""The fetch seam: resolve a user's spec to a directory of staged distribution files.

No candidate code ever runs on the host: wheels come from pip in wheel-only
mode under a build guard, sdists are downloaded as plain files and only their
static metadata is read (in memory). See :func:`fetch`.
"""

from sandbox.fetch.archive import Limits, SdistContents, WheelContents, inspect_sdist, inspect_wheel
from sandbox.fetch.core import StagedSet, fetch
from sandbox.fetch.spec import Spec, SpecKind, parse_spec
from sandbox.fetch.target import TargetEnv

__all__ = [
    "Limits",
    "SdistContents",
    "Spec",
    "SpecKind",
    "StagedSet",
    "TargetEnv",
    "WheelContents",
    "fetch",
    "inspect_sdist",
    "inspect_wheel",
    "parse_spec",
]
