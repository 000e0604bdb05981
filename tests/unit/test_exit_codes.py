"""Exit codes stated once and never leaking: 2 for bad input, 3 for outages, bugs and engines.

An unexpected exception in a command is a bug, not "findings": the CLI prints one
line (type and message) and exits 3; the traceback only with PKGSANDBOX_DEBUG=1.
An index that cannot be read (connection refused, unresolvable host, HTTP 5xx,
timeout) exits 3: the package was not looked at, which is not the same as unknown.
"""

# ruff: noqa: F811 - pytest fixtures are imported from test_fetch_fixtures and used as arguments

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from sandbox import cli, errors
from sandbox.errors import ExitCode, IndexUnavailable, PkgSandboxError, exit_code_for
from sandbox.fetch import fetch
from sandbox.judge.verdict import exit_code_for_verdict, fails
from sandbox.models import Verdict
from tests.unit.test_fetch_fixtures import (  # noqa: F401 - fixtures
    PIP,
    TARGET,
    Index,
    PipSetup,
    index,
    no_execution,
    pip_setup,
)


def every_error_class() -> list[type[PkgSandboxError]]:
    out: list[type[PkgSandboxError]] = []
    todo: list[type[PkgSandboxError]] = [PkgSandboxError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return out


def test_each_class_states_its_code_once() -> None:
    """The class attribute is the only mapping: no table repeats it."""
    assert not hasattr(errors, "EXIT_CODES")
    codes = {cls.__name__: cls.exit_code for cls in every_error_class() if cls.__module__ == "sandbox.errors"}
    assert codes == {
        "PkgSandboxError": ExitCode.SANDBOX,
        "InputError": ExitCode.USAGE,
        "FetchError": ExitCode.USAGE,
        "ProfileError": ExitCode.USAGE,
        "IndexUnavailable": ExitCode.SANDBOX,
        "EngineError": ExitCode.SANDBOX,
        "ImageError": ExitCode.SANDBOX,
        "SandboxError": ExitCode.SANDBOX,
        "RecorderUnavailable": ExitCode.SANDBOX,
        "Interrupted": ExitCode.SANDBOX,
    }
    for cls in every_error_class():
        assert exit_code_for(cls("x")) is cls.exit_code
    assert exit_code_for(ValueError("bug")) is ExitCode.SANDBOX


def test_fail_on_is_one_function() -> None:
    """Verdict at or above fail-on: the gate's ``fails`` and the vet's exit code agree everywhere."""
    from sandbox.gate import models as gate_models

    assert gate_models.fails is fails
    for verdict in Verdict:
        for fail_on in (Verdict.SUSPICIOUS, Verdict.MALICIOUS):
            code = exit_code_for_verdict(verdict, fail_on)
            assert (code is ExitCode.FINDINGS) == fails(verdict, fail_on)
    assert not fails(Verdict.INCOMPLETE, Verdict.SUSPICIOUS) and not fails(Verdict.CLEAN, Verdict.SUSPICIOUS)
    assert fails(Verdict.MALICIOUS, Verdict.MALICIOUS) and not fails(Verdict.SUSPICIOUS, Verdict.MALICIOUS)


def _boom(*args: object) -> object:
    raise RuntimeError("boom\x1b[31m\nsecond line")


def test_an_unexpected_exception_exits_3_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("PKGSANDBOX_DEBUG", raising=False)
    monkeypatch.setattr(cli, "cmd_show", _boom)
    code = cli.main(["show", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "internal error: RuntimeError: boom" in lines[0] and "\\x1b[31m\\nsecond line" in lines[0]
    assert "Traceback" not in err and "\x1b[31m" not in err


def test_the_traceback_only_with_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("PKGSANDBOX_DEBUG", "1")
    monkeypatch.setattr(cli, "cmd_show", _boom)
    assert cli.main(["show", str(tmp_path / "r.json")]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "_boom" in err
    assert err.strip().splitlines()[-1].startswith("pkgsandbox: internal error: RuntimeError")


def test_usage_errors_still_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["vet", "x", "--fail-on", "nope"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:{closed}/simple", "http://pypi.pkgsandbox-test.invalid/simple"]
)
def test_an_index_outage_exits_3_not_2(url: str, index: Index, pip_setup: PipSetup, tmp_path: Path) -> None:
    """Connection refused / unresolvable host: IndexUnavailable (3), not an unknown package (2)."""
    # the port is picked here, not at collection: parallel workers must collect the same ids
    url = url.format(closed=closed_port())
    empty = tmp_path / "no-links"
    empty.mkdir(exist_ok=True)
    pip_setup.configure(index_url=url, find_links=str(empty), trusted_host="127.0.0.1")
    with pytest.raises(IndexUnavailable, match=r"cannot read the index") as info:
        fetch("app==1.0", TARGET, tmp_path / "stage", pip=PIP, timeout=120)
    assert exit_code_for(info.value) is ExitCode.SANDBOX


def test_an_unknown_package_stays_2(index: Index, tmp_path: Path) -> None:
    """The same question on an index that answers: no such package is bad input."""
    with pytest.raises(PkgSandboxError, match="no such package") as info:
        fetch("nosuch==1.0", TARGET, tmp_path / "stage", pip=PIP)
    assert exit_code_for(info.value) is ExitCode.USAGE
