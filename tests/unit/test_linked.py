"""PS004 and PS003 on programs a package builds and runs (sympy's compiler probe:
``cc`` → ``collect2`` → ``ld`` writes ``test.exe``, then ``sh -c ./test.exe``): the
system linker's output is judged by what it does (LOW), not as a dropped payload;
a file anyone else wrote last, a linker look-alike, or a refused exec of a dropped
file stay HIGH. Paths and names are random per run."""

from __future__ import annotations

import secrets

from sandbox.judge.rules import evaluate
from sandbox.models import Event, EventKind, Finding, Origin, Phase, ProcessInfo, Severity
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


# ------------------------------------------------------------------ laundering through the toolchain

CC1 = "/usr/lib/gcc/x86_64-linux-gnu/12/cc1"


def _toolchain_run(variant: str = "") -> tuple[list[Event], list[ProcessInfo], str]:
    """The real chain (sympy's trace): the package writes C source, cc1 → .s, as → .o,
    ld reads the .o and writes the program, ``sh -c ./prog`` runs it. *variant* makes
    the package hand ld something it wrote itself, or misuse it."""
    d = f"/tmp/{secrets.token_hex(4)}"
    out, obj, asm = f"{d}/{secrets.token_hex(3)}.exe", f"{d}/main.o", f"/tmp/cc{secrets.token_hex(3)}.s"
    name = out.rsplit("/", 1)[1]
    ld_argv = ("/usr/bin/ld", "-o", out, obj)
    if variant == "raw":  # ld as a copier: raw input and output formats
        ld_argv = ("/usr/bin/ld", "-b", "binary", "--oformat=binary", "-o", out, "/usr/bin/true")
    events = [ev(EventKind.FILE_WRITE, "openat", pid=10, seq=1, path=f"{d}/main.c")]
    if variant == "object":  # the package writes the object (a decoded blob)
        events.append(ev(EventKind.FILE_WRITE, "openat", pid=10, seq=4, path=obj))
    else:
        events += [
            ev(EventKind.EXEC, "execve", pid=21, seq=2, path=CC1, argv=(CC1, "main.c")),
            ev(EventKind.FILE_READ, "openat", pid=21, seq=3, path=f"{d}/main.c"),
            ev(EventKind.FILE_WRITE, "openat", pid=21, seq=4, path=asm),
            ev(EventKind.EXEC, "execve", pid=22, seq=5, path="/usr/bin/as", argv=("as", "-o", obj, asm)),
            ev(EventKind.FILE_READ, "openat", pid=22, seq=6, path=asm),
            ev(EventKind.FILE_WRITE, "openat", pid=22, seq=7, path=obj),
        ]
    extra = {
        "script": f"{d}/{secrets.token_hex(3)}.ld",  # a linker script of BYTE() directives
        "plugin": f"/tmp/{secrets.token_hex(3)}.so",  # -plugin / LD_PRELOAD code inside ld
    }.get(variant)
    if extra:
        events.append(ev(EventKind.FILE_WRITE, "openat", pid=10, seq=8, path=extra))
    if variant == "venvlib":  # a preload library in the venv's lib: its read is runtime-labelled
        extra = f"/home/dev/project/.venv/lib/python3.11/site-packages/{secrets.token_hex(3)}.so"
        events.append(ev(EventKind.FILE_WRITE, "openat", pid=10, seq=8, path=extra))
    if variant == "echo":  # stdout of 'gcc -print-file-name=<script>' into a file ld reads
        extra = f"{d}/{secrets.token_hex(3)}.ld"
        gcc = ("/usr/bin/gcc", "-print-file-name=SECTIONS{}")
        events += [
            ev(EventKind.FILE_WRITE, "openat", pid=10, seq=8, path=extra),
            ev(EventKind.EXEC, "execve", pid=26, seq=9, path=gcc[0], argv=gcc),
            ev(EventKind.FILE_WRITE, "write", pid=26, seq=10, path=extra),
        ]
    events += [
        ev(EventKind.EXEC, "execve", pid=23, seq=11, path="/usr/bin/ld", argv=ld_argv),
        ev(EventKind.FILE_WRITE, "openat", pid=23, seq=12, path=out, flags="O_RDWR|O_CREAT|O_TRUNC"),
        ev(EventKind.FILE_READ, "openat", pid=23, seq=13, path=obj),
    ]
    if extra:
        origin = Origin.RUNTIME if variant == "venvlib" else Origin.CANDIDATE
        events.append(ev(EventKind.FILE_READ, "openat", pid=23, seq=14, path=extra, origin=origin))
    events += [
        ev(EventKind.FILE_WRITE, "write", pid=23, seq=15, path=out),
        ev(EventKind.EXEC, "execve", pid=24, seq=16, path="/bin/sh", argv=("/bin/sh", "-c", f"./{name}")),
        ev(EventKind.EXEC, "execve", pid=25, seq=17, path=out, argv=(f"./{name}",)),
    ]
    procs = [
        _proc(10, None, PY, "-c", "import pkg"),
        _proc(21, 10, CC1, "main.c"),
        _proc(22, 10, "/usr/bin/as", "-o", obj, asm),
        _proc(23, 10, *ld_argv),
        _proc(24, 10, "/bin/sh", "-c", f"./{name}"),
        _proc(25, 24, out),
    ]
    return events, procs, out


def test_the_compilers_chain_is_a_build() -> None:
    events, procs, out = _toolchain_run()
    assert [(f.severity, out in f.message) for f in _findings(events, procs, "PS004")] == [
        (Severity.LOW, True)
    ]
    assert {f.severity for f in _findings(events, procs, "PS003")} == {Severity.LOW}


def test_what_the_package_hands_the_linker_is_not_a_build() -> None:
    """ld linking an object the package wrote, reading its linker script or plugin (or
    one a compiler driver printed into a file), or copying bytes with raw formats
    produces the package's bytes. Failed on main with PS004 LOW ('built with the
    system linker') for each."""
    for variant in ("object", "script", "plugin", "raw", "echo", "venvlib"):
        events, procs, out = _toolchain_run(variant)
        ps004 = _findings(events, procs, "PS004")
        assert [(f.severity, out in f.message) for f in ps004] == [(Severity.HIGH, True)], variant
        assert Severity.HIGH in {f.severity for f in _findings(events, procs, "PS003")}, variant


def test_a_process_that_writes_then_becomes_the_linker_did_not_link() -> None:
    """A forked child writes the payload, then execs ``ld --version``: the process's
    final image is the linker, but the write was Python's. Failed on main with PS004 LOW."""
    drop = f"/tmp/.{secrets.token_hex(4)}"
    events = [
        ev(EventKind.FILE_WRITE, "openat", pid=30, seq=1, path=drop, flags="O_WRONLY|O_CREAT|O_TRUNC"),
        ev(EventKind.FILE_WRITE, "write", pid=30, seq=2, path=drop),
        ev(EventKind.FILE_CHMOD, "chmod", pid=30, seq=3, path=drop, flags="0755"),
        ev(EventKind.EXEC, "execve", pid=30, seq=4, path="/usr/bin/ld", argv=("ld", "--version")),
        ev(EventKind.EXEC, "execve", pid=31, seq=5, path=drop, argv=(drop,)),
    ]
    procs = [_proc(10, None, PY), _proc(30, 10, "/usr/bin/ld", "--version"), _proc(31, 10, drop)]
    assert [f.severity for f in _findings(events, procs, "PS004")] == [Severity.HIGH]


def test_a_shell_running_another_file_of_a_built_programs_name_is_a_shell() -> None:
    """The package links a harmless program named like a real one, then runs
    ``sh -c '<name> …'``: the shell's child execs the system's program, not the build.
    Failed on main with PS003 LOW (the command line's name matched the build)."""
    events, procs, out = _toolchain_run()
    d = out.rsplit("/", 1)[0]
    renamed = f"{d}/python3"
    events = [e.model_copy(update={"path": renamed}) if e.path == out else e for e in events[:-2]]
    cmd = ("/bin/sh", "-c", "python3 -c 'print(1)'")
    events += [
        ev(EventKind.EXEC, "execve", pid=24, seq=16, path="/bin/sh", argv=cmd),
        ev(
            EventKind.EXEC,
            "execve",
            pid=25,
            seq=17,
            path="/usr/bin/python3",
            argv=("python3", "-c", "print(1)"),
        ),
    ]
    procs = [*procs[:4], _proc(24, 10, *cmd), _proc(25, 24, "/usr/bin/python3", "-c", "print(1)")]
    assert Severity.HIGH in {f.severity for f in _findings(events, procs, "PS003")}


def test_a_probe_shell_is_judged_by_what_it_really_ran() -> None:
    """'command X' runs X, and a lone '&' was no separator, so 'command python3 …' and
    'echo ok & python3 …' looked like probe-only shells. Failed on main with PS003 LOW
    for both (the child's exec was never compared with the command line)."""
    word = secrets.token_hex(3)
    for script, listed in (
        (f"command python3 -c 'print({word!r})'", True),
        (f"echo {word} & python3 -V", False),
    ):
        cmd = ("/bin/sh", "-c", script)
        events = [
            ev(EventKind.EXEC, "execve", pid=24, seq=1, path="/bin/sh", argv=cmd),
            ev(EventKind.SPAWN, "clone", pid=24, seq=2, target=25),
            ev(EventKind.EXEC, "execve", pid=25, seq=3, path="/usr/bin/python3", argv=("python3", "-V")),
        ]
        procs = [_proc(10, None, PY), _proc(24, 10, *cmd)]
        if listed:
            procs.append(_proc(25, 24, "/usr/bin/python3", "-V"))
        assert [f.severity for f in _findings(events, procs, "PS003")] == [Severity.HIGH], script


def test_running_a_dropped_file_through_the_dynamic_loader_is_ps004() -> None:
    """'/lib64/ld-linux-x86-64.so.2 ./payload' maps and runs a file that needs no exec
    bit and no execve of its own. Failed on main with no PS004 (the exec was the
    loader's, a system file)."""
    drop = f"/tmp/.{secrets.token_hex(4)}"
    loader = "/lib64/ld-linux-x86-64.so.2"
    write = ev(EventKind.FILE_WRITE, "openat", seq=1, path=drop, flags="O_WRONLY|O_CREAT|O_TRUNC")
    for argv, expected in (
        ((loader, drop), [Severity.HIGH]),
        ((loader, "--library-path", "/tmp", f"./{drop.rsplit('/', 1)[1]}"), [Severity.HIGH]),
        ((loader, "--list", drop), []),  # lists its libraries, runs nothing
    ):
        events = [write, ev(EventKind.EXEC, "execve", pid=11, seq=2, path=loader, argv=argv)]
        ps004 = _findings(events, [_proc(10, None, PY), _proc(11, 10, loader)], "PS004")
        assert [f.severity for f in ps004] == expected, argv
        assert all(drop in f.message for f in ps004)
    # ldd's own call of the loader (LD_TRACE_LOADED_OBJECTS in its environment) lists only
    events = [write, ev(EventKind.EXEC, "execve", pid=12, seq=2, path=loader, argv=(loader, drop))]
    procs = [_proc(10, None, PY), _proc(11, 10, "/usr/bin/ldd", drop), _proc(12, 11, loader, drop)]
    assert _findings(events, procs, "PS004") == []


def test_a_linker_output_with_another_name_is_not_a_build() -> None:
    """After ld wrote the program, a hard link to it (or a symlink to its directory)
    gives the package a name to write the payload through: the last write 'to the
    path' stays ld's. Failed on main with PS004 LOW."""
    events, procs, out = _toolchain_run()
    alias = f"/tmp/{secrets.token_hex(3)}"
    d = out.rsplit("/", 1)[0]
    for link, write in (
        (ev(EventKind.FILE_LINK, "link", pid=10, seq=16, path=alias, path2=out), alias),
        (
            ev(EventKind.FILE_LINK, "symlink", pid=10, seq=16, path=alias, path2=d),
            f"{alias}/{out.rsplit('/', 1)[1]}",
        ),
    ):
        aliased = [
            *events[:-2],
            link,
            ev(EventKind.FILE_WRITE, "openat", pid=10, seq=17, path=write, flags="O_WRONLY|O_TRUNC"),
            *(e.model_copy(update={"seq": e.seq + 2}) for e in events[-2:]),
        ]
        ps004 = _findings(aliased, procs, "PS004")
        assert [(f.severity, out in f.message) for f in ps004] == [(Severity.HIGH, True)], link.syscall


def test_a_payload_in_a_renamed_folder_is_still_a_written_file() -> None:
    """Write the payload into a folder, rename the folder, run it from the new name:
    the exec's path was never written. And swap a folder holding ld's output for one
    holding the payload. Failed on main with no PS004, then PS004 LOW."""
    drop, moved = f"/tmp/{secrets.token_hex(3)}", f"/tmp/{secrets.token_hex(3)}"
    events = [
        ev(EventKind.FILE_WRITE, "openat", seq=1, path=f"{drop}/run", flags="O_WRONLY|O_CREAT|O_TRUNC"),
        ev(EventKind.FILE_RENAME, "rename", seq=2, path=drop, path2=moved),
        ev(EventKind.EXEC, "execve", pid=11, seq=3, path=f"{moved}/run", argv=("run",)),
    ]
    ps004 = _findings(events, [_proc(10, None, PY), _proc(11, 10, f"{moved}/run")], "PS004")
    assert [(f.severity, f"{moved}/run" in f.message) for f in ps004] == [(Severity.HIGH, True)]
    built, procs, out = _toolchain_run()
    d, name = out.rsplit("/", 1)
    spare, payload = f"/tmp/{secrets.token_hex(3)}", f"/tmp/{secrets.token_hex(3)}"
    swap = [
        ev(
            EventKind.FILE_WRITE, "openat", pid=10, seq=16, path=f"{payload}/{name}", flags="O_WRONLY|O_CREAT"
        ),
        ev(EventKind.FILE_RENAME, "rename", pid=10, seq=17, path=d, path2=spare),
        ev(EventKind.FILE_RENAME, "rename", pid=10, seq=18, path=payload, path2=d),
    ]
    events = [*built[:-2], *swap, *(e.model_copy(update={"seq": e.seq + 3}) for e in built[-2:])]
    assert [f.severity for f in _findings(events, procs, "PS004")] == [Severity.HIGH]
