"""eBPF decoder parity with the strace parser, on records bpftrace printed here
(``pkgsandbox vet --recorder ebpf --evidence``, ``raw/ebpf.trace``)."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.models import EventKind, Phase
from sandbox.trace.ebpf import StepWindow, parse_ebpf, probe_hint

# A double-forking import (35 forks 36, which forks the daemon 37 and exits) and the
# agent's kill(-1) child at the window's end: root forks it (unseen), it drops to the
# candidate's uid (setresuid, syscall 117, seen at exit) and kills three times (kill is
# syscall 62) before it exits. Its parent (host pid 30930) is the agent.
DAEMON = (
    "\x1eREADY\n"
    "\x1eF 56 22186804894430 30967 30967 35 35 30930 36 18874385 56\n"
    "\x1eF 56 22186808037630 30968 30968 36 36 30967 0 0 0\n"
    "\x1eF 56 22186809603740 30968 30968 36 36 30967 37 18874385 56\n"
    "\x1eF 56 22186809670954 30969 30969 37 37 30968 0 0 0\n"
    "\x1eX -1 22186820125790 30968 30968 36 36 30967 0 0\n"
    "\x1eX -1 22186834841748 30967 30967 35 35 30930 0 0\n"
    "\x1eV 117 22188849459403 31049 31049 38 38 30930 0 0 0\n"
    "\x1eK 62 22188849618648 31049 31049 38 38 30930 0 -1 9 7773212\n"
    "\x1eK 62 22188849650010 31049 31049 38 38 30930 0 -1 9 7773212\n"
    "\x1eK 62 22188849658441 31049 31049 38 38 30930 0 -1 9 7773212\n"
    "\x1eX -1 22188849682644 31049 31049 38 38 30930 0 0\n"
    "\x1eX -1 22188849664450 30969 30969 37 37 30930 9 9\n"
)


def _window(agent_pids: tuple[int, ...] = ()) -> StepWindow:
    return StepWindow(
        key="import.0",
        phase=Phase.IMPORT,
        start_ns=22186685953428,
        cwd="/home/dev/project",
        main_pid=35,
        agent_pids=agent_pids,
    )


def test_the_agents_kill_sweep_is_not_the_candidates() -> None:
    bare = parse_ebpf(DAEMON, [_window()]).steps["import.0"]
    # what the decoder made of it before the agent named its sweepers: kill(-1) by
    # "the candidate" (PS007, malicious)
    assert any(e.kind is EventKind.SIGNAL and e.target == -1 for e in bare.events)
    trace = parse_ebpf(DAEMON, [_window((38,))])
    step = trace.steps["import.0"]
    assert trace.complete
    assert not any(e.kind is EventKind.SIGNAL for e in step.events)
    assert {p.pid for p in step.processes} == {35, 36, 37}  # the candidate's, all kept
    killed = next(p for p in step.processes if p.pid == 37)
    assert killed.killed_by == "SIGKILL"


def test_a_sweepers_pid_used_again_after_its_exit_is_recorded() -> None:
    # pid 38 again, later (after the sweeper's exit): anyone's, recorded
    again = DAEMON + "\x1eK 62 22188900000000 31100 31100 38 38 30969 0 -1 9 7773212\n"
    step = parse_ebpf(again, [_window((38,))]).steps["import.0"]
    hits = [e for e in step.events if e.kind is EventKind.SIGNAL]
    assert [(e.pid, e.target) for e in hits] == [(38, -1)]


def test_tkill_names_the_threads_process() -> None:
    """tkill(tid, sig) targets a thread; like the strace parser the event names its process."""
    text = (
        "\x1eREADY\n"
        # thread 41 of process 35 makes a call (any record maps tid -> tgid), then 35's
        # main thread tkills 41 (syscall 200) with SIGUSR1
        "\x1eA 257 22186804894430 30967 30970 35 41 30930 3 -100 524288\x1f/etc/hosts\n"
        "\x1eK 200 22186804900000 30967 30967 35 35 30930 0 41 10 0\n"
    )
    step = parse_ebpf(text, [_window()]).steps["import.0"]
    sig = next(e for e in step.events if e.kind is EventKind.SIGNAL)
    assert sig.syscall == "tkill" and sig.target == 35 and sig.flags == "SIGUSR1"


def test_waits_name_the_child_they_reaped_as_strace_does() -> None:
    """PS022 counts a child until its parent reaps it: wait4 (61) and waitid (247)
    records (result, first argument, second, options, status or si_code, si_pid)."""
    hdr = "{sid} 2218680{n}000000 30967 30967 35 35 30930"
    records = [
        (61, "36 36 0 0 0 0"),  # wait4(36, …, 0) = 36, exited 0
        (61, "0 -1 0 1 0 0"),  # wait4(-1, …, WNOHANG) = 0: none yet
        (61, "-10 37 0 0 0 0"),  # wait4(37) = -ECHILD: already gone
        (61, "38 -1 0 2 4991 0"),  # wait4(-1, …, WUNTRACED) = 38, stopped (0x137f)
        (247, "0 0 0 4 1 39"),  # waitid(P_ALL, 0, {CLD_EXITED, si_pid=39}, WEXITED)
        (247, "0 1 40 16777220 1 40"),  # … WEXITED|WNOWAIT: still a zombie
        (247, "-10 1 41 4 0 0"),  # waitid(P_PID, 41) = -ECHILD
        (247, "0 0 0 5 0 0"),  # waitid(P_ALL, …, WNOHANG|WEXITED) = 0, none
    ]
    text = "\x1eREADY\n" + "".join(
        f"\x1eZ {hdr.format(sid=sid, n=i)} {rest}\n" for i, (sid, rest) in enumerate(records)
    )
    trace = parse_ebpf(text, [_window()])
    assert trace.complete
    waits = [e for e in trace.steps["import.0"].events if e.syscall in ("wait4", "waitid")]
    assert [e.target for e in waits] == [36, None, 37, None, 39, None, 41, None]


# HOME (a capped tmpfs) filled by write() in 1 MiB chunks, then posix_fallocate (285)
# and pwrite64 (18) on another file: each refused with ENOSPC (-28) on fd 4.
FULL = (
    "\x1eREADY\n"
    "\x1eA 257 22248910024679 891 891 33 33 809 4 -100 524865\x1f/home/dev/fill.bin\n"
    "\x1ew 1 22251318390109 891 891 33 33 809 -28 4\n"
    "\x1eA 257 22251318591780 891 891 33 33 809 4 -100 524353\x1f/home/dev/more.bin\n"
    "\x1ew 285 22251318636269 891 891 33 33 809 -28 4\n"
    "\x1ew 18 22251318692124 891 891 33 33 809 -28 4\n"
)


def test_writes_refused_for_a_full_disk_are_file_writes_with_their_path() -> None:
    window = StepWindow(key="import.0", phase=Phase.IMPORT, start_ns=22248900000000, main_pid=33)
    trace = parse_ebpf(FULL, [window])
    step = trace.steps["import.0"]
    refused = [
        (e.syscall, e.path, e.errno) for e in step.events if e.kind is EventKind.FILE_WRITE and e.errno
    ]
    assert refused == [
        ("write", "/home/dev/fill.bin", "ENOSPC"),
        ("fallocate", "/home/dev/more.bin", "ENOSPC"),
        ("pwrite64", "/home/dev/more.bin", "ENOSPC"),
    ]
    assert trace.complete and step.degraded == 0


def test_the_program_prints_only_full_disk_refusals_of_writes() -> None:
    from sandbox.runner.ebpf_program import build_program
    from tests.unit.test_ebpf import OFFSETS

    prog = build_program(4026532182, 1000, 1, OFFSETS)
    line = next(ln for ln in prog.splitlines() if "\\x1ew " in ln)
    # the errno test comes before any map lookup of the stashed arguments
    assert line.index("args->ret != -28 && args->ret != -122") < line.index("@a0[tid]")


# An import that reads its own status, stats /.dockerenv, reads /proc/1/cgroup and calls
# ptrace(PTRACE_TRACEME) (101; 0 under eBPF: nothing traces it); the default pass's
# start-up began at 22777251872317.
PROBES = (
    "\x1eREADY\n"
    "\x1eA 257 22778669033225 25484 25484 34 34 25153 4 -100 524288\x1f/proc/self/status\n"
    "\x1eA 262 22778669745781 25484 25484 34 34 25153 -2 -100 140735896384736\x1f/.dockerenv\n"
    "\x1eA 257 22778669907306 25484 25484 34 34 25153 4 -100 524288\x1f/proc/1/cgroup\n"
    "\x1eT 101 22778670477357 25484 25484 34 34 25153 0 0 0\n"
)


def test_the_host_sees_the_default_pass_probe_for_a_sandbox() -> None:
    hint = probe_hint(PROBES, 22777251872317)
    assert hint == "the default pass probed for a sandbox (/.dockerenv, /proc/self/status)"
    # its own status alone is what numpy does: no trigger; with PTRACE_TRACEME it is one
    status, _docker, _cgroup, traceme = PROBES.split("\x1e")[2:]
    assert probe_hint("\x1e" + status, 0) == ""
    assert "PTRACE_TRACEME" in probe_hint("\x1e" + status + "\x1e" + traceme, 0)
    # records before the default start-up (install) do not count
    assert probe_hint(PROBES, 22778670477358) == ""


def test_the_host_answers_after_the_default_import_only(tmp_path: Path) -> None:
    from sandbox.runner.interface import AgentPhase
    from sandbox.vet import _probe_handler

    trace = tmp_path / "ebpf.trace"
    trace.write_text(PROBES)
    stage = tmp_path / "stage"
    stage.mkdir()
    on_result = _probe_handler(stage)

    def phase(name: str, start: int, pass_name: str = "default") -> AgentPhase:
        step = {"tag": "0", "argv": [], "status": "ok", "trace": "", "start_ns": start}
        return AgentPhase.model_validate({"phase": name, "status": "ok", "pass": pass_name, "steps": [step]})

    on_result(phase("install", 1), trace)
    on_result(phase("startup", 22777251872317), trace)
    assert not (stage / "probes.json").exists()  # the agent asks after the import only
    on_result(phase("import", 22778493269994), trace)
    hint = json.loads((stage / "probes.json").read_text())["hint"]
    assert hint.startswith("the default pass probed for a sandbox")
    # an extra pass's import, or no live trace (strace, a replay), writes nothing
    (stage / "probes.json").unlink()
    on_result(phase("import", 1, "time"), trace)
    on_result(phase("import", 1), None)
    assert not (stage / "probes.json").exists()


def test_denied_calls_answer_eperm_when_nothing_traces_the_candidate() -> None:
    from sandbox.runner.seccomp import TRACED_DENIED, profile

    def rule(traced: bool) -> dict[str, object]:
        rules = profile("x86_64", traced=traced)["syscalls"]
        return next(r for r in rules if "mount" in r["names"])

    # strace takes the TRACE and injects EPERM; under eBPF nobody would, and an untaken
    # TRACE answers ENOSYS (what test_escape saw): the call is refused with EPERM itself
    assert rule(True)["action"] == "SCMP_ACT_TRACE"
    assert rule(False) == {"names": list(TRACED_DENIED), "action": "SCMP_ACT_ERRNO", "errnoRet": 1}


def test_the_agents_processes_children_are_the_agents_too() -> None:
    # the agent's process 38 (say the kit's copy) forks 39, which writes into the venv;
    # the fork record's shape is the captured one above (clone, SIGCHLD flags)
    exit38 = "\x1eX -1 22188849682644 31049 31049 38 38 30930 0 0\n"
    text = DAEMON.replace(
        exit38,
        "\x1eF 56 22188849660000 31049 31049 38 38 30930 39 18874385 56\n"
        "\x1eA 257 22188849670000 31101 31101 39 39 31049 3 -100 524865\x1f/home/dev/x.py\n" + exit38,
    )
    assert text != DAEMON
    step = parse_ebpf(text, [_window((38,))]).steps["import.0"]
    assert not any(e.path == "/home/dev/x.py" for e in step.events)
    assert {p.pid for p in step.processes} == {35, 36, 37}


# chdir(~/project); open("/proc/self/cwd/../.ssh/id_rsa"); symlink(HOME, "/tmp/qq1h");
# open("/tmp/qq1h/.bashrc", O_WRONLY|O_CREAT|O_APPEND)
PATHS = (
    "\x1eREADY\n"
    "\x1eP 80 23157915199384 6603 6603 34 34 6196 0 0\x1f/home/dev/project\n"
    "\x1eA 257 23157915262103 6603 6603 34 34 6196 4 -100 524288\x1f/proc/self/cwd/../.ssh/id_rsa\n"
    "\x1eR 88 23157915416036 6603 6603 34 34 6196 0 -100 -100\x1f/home/dev\n"
    "\x1er 88 23157915420324 6603 6603 34 34 6196\x1f/tmp/qq1h\n"
    "\x1eA 257 23157915470886 6603 6603 34 34 6196 4 -100 525377\x1f/tmp/qq1h/.bashrc\n"
)


def test_paths_are_the_kernels_through_proc_links_and_new_symlinks() -> None:
    """H3 under eBPF: the recorder reads the argument as written; the decoder resolves
    /proc/self/cwd and the trace's own symlinks before judging (strace's -yy does it)."""
    window = StepWindow(key="import.0", phase=Phase.IMPORT, start_ns=23157915000000, main_pid=34)
    step = parse_ebpf(PATHS, [window]).steps["import.0"]
    opened = [e.path for e in step.events if e.syscall == "openat"]
    assert opened == ["/home/dev/.ssh/id_rsa", "/home/dev/.bashrc"]
    link = next(e for e in step.events if e.syscall == "symlink")
    assert (link.path, link.path2) == ("/tmp/qq1h", "/home/dev")


def test_an_exec_through_an_fd_keeps_the_fd_path_and_names_the_file() -> None:
    """H4 (PS029) under eBPF: the exec's path as given, the file behind it in path2, as the
    strace parser gives them (records in the captured E/a/e shapes)."""
    text = (
        "\x1eREADY\n"
        "\x1eA 257 2966981700000 29145 29145 7 7 29135 3 -100 0\x1f/bin/sh\n"
        "\x1eE 59 2966981744414 29145 29145 7 7 29135 177168 0\x1f/proc/self/fd/3\n"
        "\x1ea 2966981749301 29145 0\x1fsh\n"
        "\x1ee 59 2966990655223 29145 29145 7 7 27821 0\n"
    )
    window = StepWindow(key="import.0", phase=Phase.IMPORT, start_ns=2966981000000, main_pid=7)
    step = parse_ebpf(text, [window]).steps["import.0"]
    ex = next(e for e in step.events if e.kind is EventKind.EXEC)
    assert (ex.path, ex.path2, ex.argv) == ("/proc/self/fd/3", "/bin/sh", ("sh",))


# open("/tmp/qq2s.sh", "w").write("#!/bin/sh\nexit 0\n"); chmod 755; run it directly
# (the "h" record's buffer holds 64 bytes: past the write's 17 is garbage)
SCRIPT = (
    "\x1eREADY\n"
    "\x1eA 257 23665149032423 31284 31284 33 33 30982 4 -100 524865\x1f/tmp/qq2s.sh\n"
    "\x1eh 1 23665150034339 31284 31284 33 33 30982 17 4\x1f#!/bin/sh\\x0aexit 0\\x0a\\xcf/\\x0c\\x00"
    "\\x00\\x00\\x00\\xb0\\xcf/\\x0c\\x00\\x00\\x00\\x00eSelector.__exit__\\xca\\x00\\x00\\x00s\\x13\n"
    "\x1eP 90 23665150164006 31284 31284 33 33 30982 0 493\x1f/tmp/qq2s.sh\n"
    "\x1eE 59 23665150515222 31285 31285 34 34 31284 -766442512 1238760480\x1f/tmp/qq2s.sh\n"
    "\x1ea 23665150517167 31285 0\x1f/tmp/qq2s.sh\n"
    "\x1ee 59 23665150600000 31285 31285 34 34 31284 0\n"
)


def test_a_scripts_interpreter_line_is_recorded() -> None:
    """A #! script run directly: only its own exec shows; PS003 needs the #! line, which
    the strace parser has from the write's data. The eBPF program prints writes that
    start with "#!" (cut to the call's length here)."""
    from sandbox.judge.rules.process import interpreters

    window = StepWindow(key="import.0", phase=Phase.IMPORT, start_ns=23665149000000, main_pid=33)
    step = parse_ebpf(SCRIPT, [window]).steps["import.0"]
    head = next(e for e in step.events if e.kind is EventKind.FILE_WRITE and e.data)
    assert (head.path, head.size, head.data) == ("/tmp/qq2s.sh", 17, "#!/bin/sh\\nexit 0\\n")
    assert interpreters(step.events) == {"/tmp/qq2s.sh": "/bin/sh"}
