"""``python setup.py install`` of a legacy sdist (runs in the sandbox only).

pip builds a wheel (``setup.py bdist_wheel`` through PEP 517) and never types
``install`` on setup.py's command line, so a ``setup.py`` that acts only when it
sees ``install`` there (``if "install" in sys.argv``, ``sys.argv[-1] == "install"``)
keeps its payload to itself. A developer who runs ``python setup.py install`` sees
it. When the candidate's sdist has such a gate, the install phase also runs that
command, as the candidate, under the same recorder, with exactly that argv; its
options come from a config file (``DIST_EXTRA_CONFIG``): an externally managed
install into a throwaway root, so nothing is fetched (no easy_install of
dependencies) and the venv the later phases use stays as pip left it.
"""

from __future__ import annotations

import re
import tarfile
import zipfile
from pathlib import Path
from typing import Any

from .common import RUN_DIR, STAGE_ARTIFACTS
from .protocol import literal_setup_requires

SDIST_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")
SETUP_CAP = 1 << 20  # bytes of setup.py looked at
MEMBER_CAP = 5000  # archive members looked through for setup.py
STEP_CAP = 120.0  # seconds the legacy install may take
# setup.py reads its command line (sys.argv, or argv imported from sys) and names the
# install command
_ARGV = re.compile(rb"\bargv\b")
_INSTALL = re.compile(rb"""['"]install['"]""")


def candidate_sdist(plan: dict[str, Any]) -> Path | None:
    """The candidate's staged sdist in the install argv (None for a wheel)."""
    for arg in plan.get("install_args") or []:
        if str(arg).startswith(f"{STAGE_ARTIFACTS}/") and str(arg).lower().endswith(SDIST_SUFFIXES):
            return Path(str(arg))
    return None


def _shallowest(names: list[str], base: str = "setup.py") -> str | None:
    found = [n for n in names if n.rstrip("/").split("/")[-1] == base and n.count("/") <= 1]
    return min(found, key=lambda n: n.count("/")) if found else None


def top_file_text(sdist: Path, base: str) -> bytes | None:
    """The sdist's top-level *base* file (at its root or in its one top folder), capped;
    read in memory, nothing extracted."""
    try:
        if sdist.name.lower().endswith(".zip"):
            with zipfile.ZipFile(sdist) as zf:
                infos = zf.infolist()[:MEMBER_CAP]
                name = _shallowest([i.filename for i in infos], base)
                if name is None:
                    return None
                with zf.open(name) as fh:
                    return fh.read(SETUP_CAP)
        with tarfile.open(sdist) as tf:
            # the first match at the root or in a top folder: a gzip stream is read
            # only as far as it (sdists put setup.py near the start), not to the end
            for i, m in enumerate(tf):
                if i >= MEMBER_CAP:
                    return None
                if m.isfile() and _shallowest([m.name], base) is not None:
                    data = tf.extractfile(m)
                    return data.read(SETUP_CAP) if data is not None else None
            return None
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError, ValueError):
        return None


def setup_py_text(sdist: Path) -> bytes | None:
    """The sdist's top-level setup.py, capped; read in memory, nothing extracted."""
    return top_file_text(sdist, "setup.py")


def setup_requires(sdist: Path) -> list[str]:
    """What setuptools would fetch from the index while it runs setup.py (see
    :func:`protocol.literal_setup_requires`: the host prefetches the same list)."""
    return literal_setup_requires(setup_py_text(sdist), top_file_text(sdist, "setup.cfg"))


def argv_gate(text: bytes) -> bool:
    """Whether setup.py reads its command line and names ``install`` (a payload gated
    on the command a developer types)."""
    return bool(_ARGV.search(text) and _INSTALL.search(text))


def wanted(plan: dict[str, Any]) -> Path | None:
    """The sdist to run ``setup.py install`` for, or None when pip's build showed all."""
    sdist = candidate_sdist(plan)
    if sdist is None:
        return None
    text = setup_py_text(sdist)
    return sdist if text is not None and argv_gate(text) else None


def argv(plan: dict[str, Any], sdist: Path) -> list[str]:
    """The step's command: the driver unpacks the sdist and execs ``setup.py install``."""
    return [f"{plan['venv']}/bin/python", str(RUN_DIR / "setup_build.py"), str(sdist)]
