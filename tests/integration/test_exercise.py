"""The exercise phase (default profile): what a user runs after install — the
candidate's commands and ``python -m`` of its modules, each with ``--help`` — so a
payload behind an entry point or an ``if __name__ == "__main__":`` guard fires, in
the sandbox, and is attributed to the command that ran it. A well-behaved command
stays clean."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sandbox.models import Phase, PhaseStatus, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel, exfil_source, payload_fn

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")


def _assert_exercise_finding(
    report_findings: list, context: str, dest: str, *, only_exercise: bool = True
) -> None:
    # the default profile's calls run the command again (--version): LOW context there
    net = [f for f in report_findings if f.rule_id == "PS002" and f.severity.value != "low"]
    assert net, [f.rule_id for f in report_findings]
    if only_exercise:
        assert all(f.phase is Phase.EXERCISE for f in net), [(f.rule_id, f.phase) for f in net]
    ev = [e for f in net if f.phase is Phase.EXERCISE for e in f.evidence]
    assert any(e.destination == dest for e in ev), [e.destination for e in ev]
    assert any(e.context == context for e in ev), {e.context for e in ev}


def test_entry_point_payload_fires_in_the_default_profile(tmp_path: Path) -> None:
    r = Randomised()
    name, script, host, port = r.name("tool"), r.name("run-"), r.address(), r.port()
    whl = build_wheel(
        tmp_path,
        name,
        "1.0",
        {
            f"{name}/__init__.py": "VERSION = '1.0'\n",
            f"{name}/cli.py": payload_fn("main", r.credential(), host, port),
        },
        entry_points=f"[console_scripts]\n{script} = {name}.cli:main\n",
    )
    code, report = run_cli(tmp_path, str(whl), "--window", "1")
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1
    assert [p.phase for p in report.phases if p.pass_name == "default"] == [
        Phase.INSTALL,
        Phase.STARTUP,
        Phase.IMPORT,
        Phase.EXERCISE,
        Phase.EXECUTE,
    ]
    _assert_exercise_finding(list(report.findings), f"entry point {script} --help", f"{host}:{port}")
    ex = next(p for p in report.phases if p.phase is Phase.EXERCISE)
    assert [s.name for s in ex.steps] == [f"entry point {script} --help"]


@pytest.mark.parametrize("where", ["submodule", "package", "dunder-main"])
def test_main_guarded_payload_fires_under_python_m(tmp_path: Path, where: str) -> None:
    r = Randomised()
    name, host, port = r.name("lib"), r.address(), r.port()
    payload = payload_fn("_run", r.credential(), host, port)
    guarded = f"{payload}\nif __name__ == '__main__':\n    _run()\n"
    files = {f"{name}/__init__.py": "from . import helpers\n", f"{name}/helpers.py": "X = 1\n"}
    if where == "submodule":
        sub = r.name("tool")
        files[f"{name}/{sub}.py"] = "from . import helpers\n" + guarded
        target = f"{name}.{sub}"
    elif where == "package":  # `python -m` refuses a package's __init__: the driver runs it
        files[f"{name}/__init__.py"] = "from . import helpers\n" + guarded
        target = name
    else:
        files[f"{name}/__main__.py"] = payload + "_run()\n"
        target = name
    whl = build_wheel(tmp_path, name, "1.0", files)
    code, report = run_cli(tmp_path, str(whl), "--window", "1")
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1
    # importing ran nothing: the guard kept it for a script run
    assert not any(f.phase is Phase.IMPORT for f in report.findings if f.rule_id == "PS002")
    _assert_exercise_finding(list(report.findings), f"python -m {target} --help", f"{host}:{port}")


def test_well_behaved_commands_stay_clean(tmp_path: Path) -> None:
    """argparse CLIs, a __main__ that prints, a guarded self-test and a command that
    keeps running past its deadline: all exercised, nothing judged, the look complete."""
    r = Randomised()
    name, script, server = r.name("util"), r.name("fmt-"), r.name("serve-")
    cli = textwrap.dedent(
        """\
        import argparse, time

        def main():
            ap = argparse.ArgumentParser(description="format things")
            ap.add_argument("paths", nargs="*")
            ap.parse_args()

        def serve():
            while True:  # a server ignores --help and serves until stopped
                time.sleep(0.2)
        """
    )
    whl = build_wheel(
        tmp_path,
        name,
        "1.0",
        {
            f"{name}/__init__.py": "def add(a, b):\n    return a + b\n",
            f"{name}/cli.py": cli,
            f"{name}/__main__.py": f"from {name}.cli import main\nmain()\n",
            f"{name}/calc.py": "def twice(x):\n    return 2 * x\n\n"
            "if __name__ == '__main__':\n    assert twice(2) == 4\n    print('ok')\n",
            f"{name}/tests/test_calc.py": "if __name__ == '__main__':\n    raise SystemExit('not run')\n",
        },
        entry_points=f"[console_scripts]\n{script} = {name}.cli:main\n{server} = {name}.cli:serve\n",
    )
    code, report = run_cli(tmp_path, str(whl), "--window", "1")
    assert report is not None, "no report"
    assert report.verdict is Verdict.CLEAN and code == 0, (report.verdict, report.reason, report.findings)
    ex = next(p for p in report.phases if p.phase is Phase.EXERCISE and p.pass_name == "default")
    assert ex.status is PhaseStatus.OK
    names = [s.name for s in ex.steps]
    assert names == [
        f"entry point {script} --help",
        f"entry point {server} --help",
        f"python -m {name} --help",
        f"python -m {name}.calc --help",
    ], names  # the shipped test suite is not a user's command
    stopped = next(s for s in ex.steps if s.name == f"entry point {server} --help")
    assert stopped.detail.startswith("stopped after"), stopped


def test_a_module_written_as_a_script_is_run_from_its_folder(tmp_path: Path) -> None:
    """`from helper import send` next to helper.py: importing it as a package module fails,
    so it is run the way its author ran it, `python pkg/grab.py`, and its payload fires
    there too (the import phase's bare-name sibling retry already reaches it)."""
    r = Randomised()
    name, helper, host, port = r.name("kit"), r.name("helper"), r.address(), r.port()
    whl = build_wheel(
        tmp_path,
        name,
        "1.0",
        {
            f"{name}/__init__.py": "",
            f"{name}/{helper}.py": payload_fn("send", r.credential(), host, port),
            f"{name}/grab.py": f"from {helper} import send\nsend()\n",
        },
    )
    code, report = run_cli(tmp_path, str(whl), "--window", "1")
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1
    imp = next(p for p in report.phases if p.phase is Phase.IMPORT and p.pass_name == "default")
    assert {s.name: s.status for s in imp.steps}[f"{name}.grab"] is PhaseStatus.ERROR
    assert f"{name}/grab.py" in {s.name for s in imp.steps}  # the bare-name retry
    _assert_exercise_finding(
        list(report.findings), f"python {name}/grab.py --help", f"{host}:{port}", only_exercise=False
    )


def test_a_command_missing_an_undeclared_module_gets_a_round_and_runs_again(tmp_path: Path) -> None:
    """The command imports what it never declared only when it runs: a round stages it
    (wheel-only, on the host) and the command runs once more, its payload attributed."""
    r = Randomised()
    name, script, host, port = r.name("cmd"), r.name("go-"), r.address(), r.port()
    body = textwrap.indent(exfil_source(r.credential(), host, port), "    ")
    cli = f"def main():\n    import websocket  # undeclared: a developer's venv has it\n{body}\n"
    whl = build_wheel(
        tmp_path,
        name,
        "1.0",
        {f"{name}/__init__.py": "", f"{name}/cli.py": cli},
        entry_points=f"[console_scripts]\n{script} = {name}.cli:main\n",
    )
    code, report = run_cli(tmp_path, str(whl), "--window", "1")
    assert report is not None and report.verdict is Verdict.MALICIOUS and code == 1
    rnd = next(x for x in report.rounds if x.phase is Phase.EXERCISE)
    assert "module websocket" in rnd.requested and rnd.installed, rnd
    _assert_exercise_finding(list(report.findings), f"entry point {script} --help", f"{host}:{port}")
