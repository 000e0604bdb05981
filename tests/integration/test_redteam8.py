"""Session 8's hostile read of the judge's relaxations, end to end: defanged wheels
that use a carve-out made for a benign project (a path-only ``.pth``, a package's own
test suite, top-level names a wheel does not ship) to do what the tool exists to catch,
each vetted CLEAN on main.  Destinations are TEST-NET addresses the sandbox never
routes; the start-up hook only writes a marker under /tmp; nothing is deleted."""

from __future__ import annotations

import py_compile
import textwrap
from pathlib import Path

import pytest

from sandbox.models import Finding, Phase, Severity, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel

pytestmark = [pytest.mark.usefixtures("sandbox_image", "no_leaks"), pytest.mark.slow]


def _connect_source(host: str, port: int) -> str:
    return textwrap.dedent(
        f"""\
        import socket

        try:
            _s = socket.create_connection(("{host}", {port}), timeout=2)
            _s.close()
        except OSError:
            pass
        """
    )


def _import_persistence(tmp_path: Path, name: str, src: str) -> Finding:
    """Vet a wheel whose ``__init__`` is *src*: malicious (exit 1) on a HIGH PS005 at
    import, which is returned."""
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None and code == 1, report and report.verdict_reason
    ps005 = [f for f in report.findings if f.rule_id == "PS005" and f.phase is Phase.IMPORT]
    assert ps005 and ps005[0].severity is Severity.HIGH, [
        (f.rule_id, f.severity, f.message) for f in report.findings
    ]
    assert report.verdict is Verdict.MALICIOUS, report.verdict_reason
    return ps005[0]


def _pyc(tmp_path: Path, name: str, source: str) -> bytes:
    """*source* compiled (never run) for the sandbox's interpreter (3.11, as the host's)."""
    src = tmp_path / f"{name}.py"
    src.write_text(source)
    out = tmp_path / f"{name}.pyc"
    py_compile.compile(
        str(src),
        cfile=str(out),
        doraise=True,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    return out.read_bytes()


def test_a_sourceless_package_is_imported(tmp_path: Path) -> None:
    """The wheel ships its package as ``__init__.pyc`` only (no source: Python imports
    it all the same). On main RECORD gave no .py/.so, so top_level.txt's name counted as
    not shipped and nothing was imported: the connect at import never ran, clean."""
    r = Randomised()
    name, host, port = r.name("fastpath"), r.address(), r.port()
    whl = build_wheel(
        tmp_path, name, "1.0", {f"{name}/__init__.pyc": _pyc(tmp_path, "init", _connect_source(host, port))}
    )
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None and code == 1, report and report.verdict_reason
    assert report.verdict is Verdict.MALICIOUS, report.verdict_reason
    ps002 = [f for f in report.findings if f.rule_id == "PS002" and f.phase is Phase.IMPORT]
    assert ps002 and any(e.destination == f"{host}:{port}" for e in ps002[0].evidence), report.findings


def test_a_plugin_module_named_like_a_test_suite_is_imported(tmp_path: Path) -> None:
    """The payload lives in ``pkg/testing.py``, which the wheel registers as a pytest
    plugin (pytest imports every ``pytest11`` entry point whenever the user runs it).
    On main the import phase left it out as the package's own test suite: clean."""
    r = Randomised()
    name, host, port = r.name("fixtures"), r.address(), r.port()
    part = r.rng.choice(["testing", "tests", "conftest", "test_support", "plugin_tests"])
    whl = build_wheel(
        tmp_path,
        name,
        "1.0",
        {f"{name}/__init__.py": '"""Fixtures."""\n', f"{name}/{part}.py": _connect_source(host, port)},
        entry_points=f"[pytest11]\n{name} = {name}.{part}\n",
    )
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None and code == 1, report and report.verdict_reason
    assert report.verdict is Verdict.MALICIOUS, report.verdict_reason
    ps002 = [f for f in report.findings if f.rule_id == "PS002" and f.phase is Phase.IMPORT]
    assert ps002 and any(e.destination == f"{host}:{port}" for e in ps002[0].evidence), report.findings


def test_a_path_only_pth_naming_a_folder_with_a_compiled_start_up_hook_is_persistence(
    tmp_path: Path,
) -> None:
    """At import the package compiles a start-up hook as ``sitecustomize.pyc`` into a
    folder under /tmp and writes a ``.pth`` naming that folder: every later interpreter
    of the venv runs the hook. On main the ``.pth`` counted as path-only (LOW): only a
    ``sitecustomize.py`` there kept it HIGH, so the run was clean."""
    r = Randomised()
    name, folder, marker = r.name("plugins"), f"/tmp/{r.name('p')}", r.marker()
    src = textwrap.dedent(
        f"""\
        import os, py_compile, sysconfig

        _dir = "{folder}"
        os.makedirs(_dir, exist_ok=True)
        _src = os.path.join(_dir, "{r.name("h")}.py")
        with open(_src, "w") as fh:
            fh.write("open({marker!r}, 'a').close()\\n")
        py_compile.compile(
            _src,
            cfile=os.path.join(_dir, "sitecustomize.pyc"),
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        with open(os.path.join(sysconfig.get_paths()["purelib"], "{name}.pth"), "w") as fh:
            fh.write(_dir + "\\n")
        """
    )
    _import_persistence(tmp_path, name, src)


def test_a_credential_process_planted_in_the_aws_config_at_import_is_judged(tmp_path: Path) -> None:
    """At import the package appends a profile whose ``credential_process`` names a
    program of its own to ``~/.aws/config``: every AWS SDK and the CLI run it to get
    credentials. On main the credential finding's path alone decided it was the SDK
    reading its config (LOW, nothing sent): clean."""
    r = Randomised()
    name, profile, helper = r.name("awsutil"), r.name("ci"), f"/tmp/{r.name('h')}/helper"
    src = textwrap.dedent(
        f"""\
        import os

        _cfg = os.path.join(os.path.expanduser("~"), ".aws", "config")
        try:
            with open(_cfg, "a") as fh:
                fh.write("\\n[profile {profile}]\\ncredential_process = {helper} --profile {profile}\\n")
        except OSError:
            pass
        """
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None and code == 1, report and report.verdict_reason
    assert report.verdict is Verdict.SUSPICIOUS, report.verdict_reason
    ps001 = [f for f in report.findings if f.rule_id == "PS001" and f.phase is Phase.IMPORT]
    assert any(f.severity is Severity.MEDIUM and f.message.startswith("modified") for f in ps001), [
        (f.severity, f.message) for f in ps001
    ]


def test_a_payload_the_package_imports_lazily_from_a_test_named_module_is_imported(tmp_path: Path) -> None:
    """The package's ``__getattr__`` imports ``pkg/testing.py`` (where the payload runs
    at module level) the first time a user asks for its client class. On main the import
    phase imported ``pkg`` (which asks for nothing) and left ``pkg.testing`` out as the
    package's own test suite: clean."""
    r = Randomised()
    name, host, port = r.name("client"), r.address(), r.port()
    part = r.rng.choice(["testing", "tests", "test_utils", "io_test"])
    init = textwrap.dedent(
        f"""\
        def __getattr__(name):
            if name == "Client":
                from .{part} import Client

                return Client
            raise AttributeError(name)
        """
    )
    whl = build_wheel(
        tmp_path,
        name,
        "1.0",
        {f"{name}/__init__.py": init, f"{name}/{part}.py": _connect_source(host, port) + "Client = object\n"},
    )
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None and code == 1, report and report.verdict_reason
    assert report.verdict is Verdict.MALICIOUS, report.verdict_reason
    ps002 = [f for f in report.findings if f.rule_id == "PS002" and f.phase is Phase.IMPORT]
    assert ps002 and any(e.destination == f"{host}:{port}" for e in ps002[0].evidence), report.findings


def test_a_wheel_shipping_a_compiled_start_up_hook_is_persistence(tmp_path: Path) -> None:
    """The wheel installs ``sitecustomize.pyc`` (no source) at the top of site-packages:
    every interpreter of the venv runs it at start. This one only leaves a marker (a
    dormant hook does no more in the sandbox). On main only a ``sitecustomize.py`` was
    a start-up hook, to the trace and to the snapshot diff: clean."""
    r = Randomised()
    name, marker = r.name("speedups"), r.marker()
    hook = _pyc(tmp_path, "hook", f"open({marker!r}, 'a').close()\n")
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": "", "sitecustomize.pyc": hook})
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None and code == 1, report and report.verdict_reason
    ps005 = [f for f in report.findings if f.rule_id == "PS005" and f.phase is Phase.INSTALL]
    assert ps005 and ps005[0].severity is Severity.HIGH, [
        (f.rule_id, f.phase, f.message) for f in report.findings
    ]
    assert any((e.path or "").endswith("/site-packages/sitecustomize.pyc") for e in ps005[0].evidence)
    assert report.verdict is Verdict.MALICIOUS, report.verdict_reason


def test_a_path_only_pth_naming_a_folder_the_package_put_a_module_in_is_persistence(tmp_path: Path) -> None:
    """At import the package writes a module into a folder under HOME, named like an
    optional dependency other packages try (``try: import x``), and a path-only
    ``.pth`` adding that folder: every later interpreter of the venv finds the module.
    On main the ``.pth`` was LOW (no ``sitecustomize`` there): clean."""
    r = Randomised()
    name, folder, module, marker = (
        r.name("ext"),
        f"~/.local/share/{r.name('d')}",
        r.name("speedup"),
        r.marker(),
    )
    src = textwrap.dedent(
        f"""\
        import os, sysconfig

        _dir = os.path.expanduser("{folder}")
        os.makedirs(_dir, exist_ok=True)
        with open(os.path.join(_dir, "{module}.py"), "w") as fh:
            fh.write("open({marker!r}, 'a').close()\\n")
        with open(os.path.join(sysconfig.get_paths()["purelib"], "{name}.pth"), "w") as fh:
            fh.write(_dir + "\\n")
        """
    )
    _import_persistence(tmp_path, name, src)


def test_a_command_planted_in_a_git_config_is_persistence(tmp_path: Path) -> None:
    """At import the package adds a key git runs as a command (``core.fsmonitor`` runs on
    every ``git status``, an ``!`` alias, ``core.sshCommand`` …) to the project's
    ``.git/config`` or the user's ``~/.gitconfig``: the next git command the developer
    types runs it. On main only PS020 (a write outside the allowed paths, LOW): clean."""
    r = Randomised()
    name, marker = r.name("gitkit"), f"/tmp/{r.name('mark')}"
    target = r.rng.choice(["~/project/.git/config", "~/.gitconfig"])
    planted = r.rng.choice(
        [
            f"[core]\n\tfsmonitor = touch {marker}\n",
            f"[core]\n\tsshCommand = sh -c 'touch {marker}' ssh\n",
            f"[alias]\n\tst = !touch {marker} && git status\n",
        ]
    )
    src = textwrap.dedent(
        f"""\
        import os
        with open(os.path.expanduser({target!r}), "a") as _f:
            _f.write({planted!r})
        """
    )
    ps005 = _import_persistence(tmp_path, name, src)
    assert any("config" in (e.path or "") for e in ps005.evidence), ps005.evidence
