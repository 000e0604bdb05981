"""Benign truth (issue 12): native builds and harmless kernel reads are clean by default.

The C-extension fixture is built here and only ever built, installed and imported
inside the sandbox (``pkgsandbox vet PATH``).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sandbox.models import EventKind, Phase, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_sdist, build_wheel

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")

C_SOURCE = textwrap.dedent(
    """\
    #define PY_SSIZE_T_CLEAN
    #include <Python.h>

    static PyObject *add(PyObject *self, PyObject *args) {
        long a, b;
        if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL;
        return PyLong_FromLong(a + b);
    }

    static PyMethodDef methods[] = {{"add", add, METH_VARARGS, "a + b"}, {NULL, NULL, 0, NULL}};
    static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speed", NULL, -1, methods};
    PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&module); }
    """
)


def c_extension_sdist(out: Path, name: str, version: str) -> Path:
    """A setuptools sdist with one tiny C extension module, ``NAME._speed``."""
    setup_py = textwrap.dedent(
        f"""\
        from setuptools import Extension, setup
        setup(
            name={name!r},
            version={version!r},
            packages=[{name!r}],
            ext_modules=[Extension({name + "._speed"!r}, sources=[{name + "/_speed.c"!r}])],
        )
        """
    )
    pyproject = (
        '[build-system]\nrequires = ["setuptools>=40.8.0", "wheel"]\n'
        'build-backend = "setuptools.build_meta"\n'
    )
    files = {
        f"{name}/__init__.py": "from ._speed import add\n\nassert add(2, 3) == 5\n",
        f"{name}/_speed.c": C_SOURCE,
    }
    return build_sdist(out, name, version, files, setup_py=setup_py, pyproject=pyproject)


def test_sdist_with_a_c_extension_is_clean_under_the_default_profile(tmp_path: Path) -> None:
    name = Randomised().name("cext")
    sdist = c_extension_sdist(tmp_path, name, "1.2.0")
    code, report = run_cli(tmp_path, str(sdist))
    assert report is not None
    assert report.verdict is Verdict.CLEAN, (report.verdict_reason, report.findings)
    assert code == 0
    # the compiler really ran, inside the sandbox, from the image's own toolchain
    exes = {p.exe for p in report.processes if p.phase is Phase.INSTALL}
    assert any(e.startswith("/usr/lib/gcc/") and e.endswith("/cc1") for e in exes), sorted(exes)
    assert any(e.startswith("/usr/bin/") and "gcc" in e for e in exes), sorted(exes)
    # and the compiled module was imported (its __init__ asserts add(2, 3) == 5)
    imported = {s.name for s in report.phases[2].steps}
    assert name in imported, imported
    assert all(s.status.value == "ok" for s in report.phases[2].steps)


def test_a_dropped_binary_named_gcc_is_not_trusted_by_its_name(tmp_path: Path) -> None:
    """Compilers are trusted by where they come from (the image), never by name."""
    name = Randomised().name("fakecc")
    src = textwrap.dedent(
        """\
        import os, subprocess
        d = os.path.expanduser("~/.local/bin")
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, "gcc")
        with open(p, "w") as fh:
            fh.write("#!/usr/bin/env python3\\nprint('not a compiler')\\n")
        os.chmod(p, 0o755)
        subprocess.run([p, "--version"], check=False)
        """
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1
    ps004 = [f for f in report.findings if f.rule_id == "PS004"]
    assert ps004 and any(e.path and e.path.endswith("/gcc") for f in ps004 for e in f.evidence), (
        report.findings
    )


@pytest.mark.online
@pytest.mark.parametrize("spec", ["filelock==4.0.8", "filelock"])
def test_filelock_reading_boot_id_is_clean(tmp_path: Path, spec: str) -> None:
    """filelock reads /proc/sys/kernel/random/boot_id to detect stale locks: a harmless
    kernel value, not an escape attempt (it was MALICIOUS, PS008)."""
    code, report = run_cli(tmp_path, spec)
    assert report is not None
    assert report.verdict is Verdict.CLEAN, (report.verdict_reason, report.findings)
    assert code == 0
    assert not [f for f in report.findings if f.rule_id == "PS008"]
    if spec.endswith("4.0.8"):
        reads = [e for e in report.events if e.path == "/proc/sys/kernel/random/boot_id"]
        assert reads and all(e.kind in (EventKind.FILE_READ, EventKind.FILE_STAT) for e in reads)
