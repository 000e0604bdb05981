"""The eBPF recorder reads an exec's path from the caller's memory as the call begins;
the kernel copies it a moment later. A second thread that rewrites the buffer in
between shows the recorder one program while the kernel runs another (the open race
of test_toctou, for exec). The kernel's own copy of the path, at
``sched:sched_process_exec``, names what ran; the name the memory showed stays in the
evidence. The fixture spawns ``/bin/true`` through glibc's ``posix_spawn`` (a vfork: the
child execs from the parent's memory) while a thread flips the path to a name that does
not exist. Defanged: only /bin/true runs; nothing leaves the sandbox."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

from sandbox.models import EventKind
from tests.conftest import run_cli
from tests.fixtures.builders import (
    Randomised,
    build_wheel,
    flipped_path_source,
    leased_race_source,
    torn_name,
)

pytestmark = [pytest.mark.usefixtures("sandbox_image", "no_leaks"), pytest.mark.slow]

REAL = "/bin/true"
SPAWNS = 3000  # at most, within 10 s
ROUNDS = 3


def test_a_path_rewritten_during_the_exec_still_names_the_program_that_ran(tmp_path: Path) -> None:
    r = Randomised()
    name = r.name("spawner")
    # the same length as the real path: the NUL stays where it is whichever is copied
    decoy = "/tmp/" + "".join(r.rng.choice(string.ascii_lowercase) for _ in range(len(REAL) - 5))
    loop = f"""\
        argv = (ctypes.c_char_p * 2)(b"true", None)
        envp = (ctypes.c_char_p * 1)(None)
        pid = ctypes.c_int()
        end = time.monotonic() + 10
        for _ in range({SPAWNS}):
            if time.monotonic() > end:
                break
            if libc.posix_spawn(ctypes.byref(pid), buf, None, None, argv, envp) == 0:
                os.waitpid(pid.value, 0)
        """
    src = flipped_path_source(REAL, decoy, loop)
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl), "--recorder", "ebpf", "--phases", "import")
    assert report is not None and report.events, (code, report and report.notes)

    def lie(path: str) -> bool:
        return torn_name(path, REAL, decoy)

    execs = [e for e in report.events if e.kind is EventKind.EXEC and e.syscall == "execve" and not e.failed]
    ran = [e for e in execs if e.path and e.path.endswith("/true")]
    lies = [e for e in execs if e.path and lie(e.path)]
    assert ran, "the spawns never ran the program"
    assert not lies, f"{len(lies)} exec(s) recorded under a name that never ran, e.g. {lies[0]}"
    # the name the caller's memory showed stays in the evidence, said to have changed
    raced = [e for e in ran if e.path2 and lie(e.path2)]
    assert raced, f"no exec raced in {len(execs)}: the test proves nothing"
    assert all("changed in the caller's memory" in (e.flags or "") for e in raced)


def test_an_argv_rewritten_during_the_exec_still_names_what_the_program_got(tmp_path: Path) -> None:
    # The argv is read from the caller's memory as the call begins too; the kernel copies
    # it after it opened the program. The fixture spawns its own copy of sh with
    # `sh -c 'exit 3'` while holding a write lease on that copy: the exec sleeps in the
    # lease break with the script not yet copied, the fixture rewrites it to `exit 5`,
    # then lets go. Each shell's exit code says which script the kernel gave it; the
    # rewrite always lands (a flipping thread raced only where the scheduler allowed).
    r = Randomised()
    real, decoy = r.rng.sample(["exit 3", "exit 5", "exit 6", "exit 7"], 2)
    name = r.name("spawner")
    sh = f"/tmp/{name}-sh"
    src = leased_race_source(
        sh,
        real,
        decoy,
        setup=f"import shutil\nshutil.copy('/bin/sh', {sh!r})\nos.chmod({sh!r}, 0o755)\n",
        call="""\
            argv = (ctypes.c_char_p * 4)(b"sh", b"-c", ctypes.cast(buf, ctypes.c_char_p), None)
            envp = (ctypes.c_char_p * 1)(None)
            pid = ctypes.c_int()
            if libc.posix_spawn(ctypes.byref(pid), leased.encode(), None, None, argv, envp) == 0:
                got.append(pid.value)
            """,
        after="os.waitpid(got[-1], 0)\n",
        rounds=ROUNDS,
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl), "--recorder", "ebpf", "--phases", "import")
    assert report is not None and report.events, (code, report and report.notes)
    shells = {
        e.pid: e
        for e in report.events
        if e.kind is EventKind.EXEC and not e.failed and e.path == sh and (e.argv or ())[:2] == ("sh", "-c")
    }
    exits = {e.pid: e.result for e in report.events if e.kind is EventKind.EXIT}
    assert len(shells) == ROUNDS, (len(shells), report.notes)
    # every shell ran the rewritten script: the kernel copied the argv after the flip
    assert {exits.get(pid) for pid in shells} == {int(decoy.split()[1])}, exits
    lies = [e for pid, e in shells.items() if e.argv and f"exit {exits.get(pid)}" != e.argv[2]]
    assert not lies, f"{len(lies)} of {len(shells)} shells recorded with a script they did not run: {lies[0]}"
    # what the caller's memory showed as the call began stays in the evidence
    assert all("argv changed in the caller's memory" in (e.flags or "") for e in shells.values()), [
        e.flags for e in shells.values()
    ]
