"""PS004 and PS003 on programs a package builds and runs (sympy's compiler probe:
``cc`` → ``collect2`` → ``ld`` writes ``test.exe``, then ``sh -c ./test.exe``): the
system linker's output is judged by what it does (LOW), not as a dropped payload;
a file anyone else wrote last, a linker look-alike, or a refused exec of a dropped
file stay HIGH. Paths and names are random per run."""

from __future__ import annotations

import secrets

from sandbox.judge.rules import evaluate
from sandbox.models import Event, EventKind, Finding, Phase, ProcessInfo, Severity
from tests.unit.test_rules import ev, obs

PY = "/home/dev/project/.venv/bin/python"


def _proc(pid: int, ppid: int | None, exe: str, *args: str) -> ProcessInfo:
    return ProcessInfo(pid=pid, ppid=ppid, phase=Phase.IMPORT, argv=(exe, *args), exe=exe, start=0.0)


def _build_and_run(
    linker: str = "/usr/bin/ld", overwrite: bool = False
) -> tuple[list[Event], list[ProcessInfo], str]:
    d = f"/tmp/is_feasible_{secrets.token_hex(4)}_test"
    out = f"{d}/{secrets.token_hex(3)}.exe"
    name = out.rsplit("/", 1)[1]
    procs = [
        _proc(10, None, PY, "-c", "import pkg"),
        _proc(11, 10, "/bin/sh", "-c", f"cc main.o -o {name}"),
        _proc(12, 11, "/usr/bin/cc", "main.o"),
        _proc(13, 12, "/usr/lib/gcc/x86_64-linux-gnu/12/collect2", "-o", out),
        _proc(14, 13, linker, "-o", out),
        _proc(15, 10, "/bin/sh", "-c", f"./{name}"),
    ]
    events = [
        ev(
            EventKind.EXEC,
            "execve",
            pid=11,
            seq=1,
            path="/bin/sh",
            argv=("/bin/sh", "-c", f"cc main.o -o {name}"),
        ),
        ev(EventKind.EXEC, "execve", pid=14, seq=2, path=linker, argv=(linker, "-o", out)),
        ev(EventKind.FILE_WRITE, "openat", pid=14, seq=3, path=out, flags="O_RDWR|O_CREAT|O_TRUNC"),
        ev(EventKind.FILE_WRITE, "write", pid=14, seq=4, path=out),
        ev(EventKind.FILE_CHMOD, "chmod", pid=14, seq=5, path=out, flags="0755"),
    ]
    if overwrite:
        events.append(ev(EventKind.FILE_WRITE, "openat", pid=10, seq=6, path=out, flags="O_WRONLY|O_TRUNC"))
    events += [
        ev(EventKind.EXEC, "execve", pid=15, seq=7, path="/bin/sh", argv=("/bin/sh", "-c", f"./{name}")),
        ev(EventKind.EXEC, "execve", pid=15, seq=8, path=out, argv=(f"./{name}",)),
    ]
    return events, procs, out


def _findings(events: list[Event], procs: list[ProcessInfo], rule: str) -> list[Finding]:
    return [f for f in evaluate(obs(events, procs)) if f.rule_id == rule]


def test_a_program_the_system_linker_built_is_judged_by_behaviour() -> None:
    events, procs, out = _build_and_run()
    ps004 = _findings(events, procs, "PS004")
    assert [(f.severity, out in f.message) for f in ps004] == [(Severity.LOW, True)]
    assert {f.severity for f in _findings(events, procs, "PS003")} == {Severity.LOW}


def test_a_linker_output_overwritten_by_the_package_is_a_dropped_file() -> None:
    events, procs, _ = _build_and_run(overwrite=True)
    assert [f.severity for f in _findings(events, procs, "PS004")] == [Severity.HIGH]
    assert Severity.HIGH in {f.severity for f in _findings(events, procs, "PS003")}


def test_a_linker_look_alike_is_not_the_system_linker() -> None:
    fake = f"/tmp/{secrets.token_hex(3)}/ld"
    events, procs, _ = _build_and_run(linker=fake)
    assert [f.severity for f in _findings(events, procs, "PS004")] == [Severity.HIGH]
    # a root-owned name written during the run is not trusted either
    events, procs, _ = _build_and_run(linker="/usr/bin/ld.gold")
    events.insert(0, ev(EventKind.FILE_WRITE, "openat", pid=10, seq=0, path="/usr/bin/ld.gold"))
    assert [f.severity for f in _findings(events, procs, "PS004")] == [Severity.HIGH]


def test_a_refused_exec_of_a_dropped_file_is_ps004() -> None:
    """The sinkhole serves an empty body: the dropped file fails with ENOEXEC. On main
    only a successful exec counted, so the dropper's attempt went unjudged."""
    drop = f"/tmp/.{secrets.token_hex(4)}"
    events = [
        ev(EventKind.FILE_WRITE, "openat", seq=1, path=drop, flags="O_WRONLY|O_CREAT|O_TRUNC"),
        ev(EventKind.FILE_CHMOD, "chmod", seq=2, path=drop, flags="0755"),
        ev(EventKind.EXEC, "execve", pid=11, seq=3, path=drop, argv=(drop,), errno="ENOEXEC"),
    ]
    ps004 = _findings(events, [_proc(10, None, PY), _proc(11, 10, drop)], "PS004")
    assert [f.severity for f in ps004] == [Severity.HIGH]
    assert "refused: ENOEXEC" in ps004[0].message
