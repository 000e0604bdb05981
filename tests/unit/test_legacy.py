"""The gate for ``python setup.py install`` (sandbox/agent/legacy.py): setup.py read in
memory from the staged sdist, never extracted or run here."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from sandbox.agent import legacy
from sandbox.agent.common import STAGE_ARTIFACTS
from sandbox.agent.protocol import literal_setup_requires
from sandbox.fetch.archive import setup_files
from tests.fixtures.builders import Randomised, build_sdist

GATED = (
    "import sys\nfrom setuptools import setup\nif 'install' in sys.argv:\n    print('x')\nsetup(name='x')\n",
    'import sys\nif sys.argv[-1] == "install":\n    pass\n',
    "import sys\nif len(sys.argv) > 1 and sys.argv[1] == 'install': pass\n",
    "from sys import argv\nif argv[1:2] == ['install']:\n    pass\n",
)
NOT_GATED = (
    "from setuptools import setup\nsetup(name='x')\n",
    "import sys\nif sys.argv[-1] == 'publish':\n    pass\n",  # argv, but not install
    "from setuptools.command.install import install\nclass I(install):\n    pass\n",  # no argv
)


@pytest.mark.parametrize("text", GATED)
def test_argv_gate_matches_setup_py_reading_install_from_argv(text: str) -> None:
    assert legacy.argv_gate(text.encode())


@pytest.mark.parametrize("text", NOT_GATED)
def test_argv_gate_leaves_other_setup_py_alone(text: str) -> None:
    assert not legacy.argv_gate(text.encode())


def test_setup_py_is_read_from_the_top_folder_or_the_root(tmp_path: Path) -> None:
    r = Randomised()
    sdist = build_sdist(tmp_path, r.name("g"), "1.0", {"pkg/setup.py": "nested\n"}, setup_py=GATED[0])
    assert legacy.setup_py_text(sdist) == GATED[0].encode()
    root = tmp_path / "root-1.0.tar.gz"
    with tarfile.open(root, "w:gz") as tar:
        data = GATED[1].encode()
        ti = tarfile.TarInfo("setup.py")
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
    assert legacy.setup_py_text(root) == GATED[1].encode()
    z = tmp_path / "z-1.0.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("z-1.0/setup.py", GATED[2])
    assert legacy.setup_py_text(z) == GATED[2].encode()
    assert legacy.setup_py_text(tmp_path / "missing.tar.gz") is None


def test_only_the_candidates_sdist_in_the_install_argv_is_wanted() -> None:
    sdist = f"{STAGE_ARTIFACTS}/x-1.0.tar.gz"
    assert legacy.candidate_sdist({"install_args": ["-m", "pip", "install", sdist]}) == Path(sdist)
    wheel = f"{STAGE_ARTIFACTS}/x-1.0-py3-none-any.whl"
    assert legacy.candidate_sdist({"install_args": ["-m", "pip", "install", wheel]}) is None


def test_setup_requires_are_read_from_the_setup_call_and_setup_cfg_never_run(tmp_path: Path) -> None:
    r = Randomised()
    marker = tmp_path / r.name("ran")
    setup_py = (
        "from setuptools import setup\n"
        f"open({str(marker)!r}, 'w')  # would only happen if this ran\n"
        "setup(name='x', setup_requires=['pytest-runner', 'setuptools_scm>=3.4', ALSO, 'x @ https://a.invalid/x'])\n"
    )
    sdist = build_sdist(
        tmp_path,
        r.name("sr"),
        "1.0",
        {"setup.cfg": "[options]\nsetup_requires =\n    cffi>=1.0\n"},
        setup_py=setup_py,
    )
    # literals only (a name is not evaluated), no direct URL, setup.cfg's list too
    assert legacy.setup_requires(sdist) == ["pytest-runner", "setuptools_scm>=3.4", "cffi>=1.0"]
    # the host reads the same two files in memory and prefetches the same list
    assert literal_setup_requires(*setup_files(sdist)) == legacy.setup_requires(sdist)
    assert not marker.exists()
    plain = tmp_path / "plain"
    plain.mkdir()
    none = build_sdist(
        plain, r.name("p"), "1.0", {}, setup_py="from setuptools import setup\nsetup(name='p')\n"
    )
    assert legacy.setup_requires(none) == [] == literal_setup_requires(*setup_files(none))
    broken = tmp_path / "broken"
    broken.mkdir()
    bad = build_sdist(broken, r.name("b"), "1.0", {}, setup_py="setup(setup_requires=['a'\n")
    assert legacy.setup_requires(bad) == []
