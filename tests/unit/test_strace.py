# ruff: noqa: E501  (strace lines are quoted verbatim from tests/data/strace/)
"""Unit tests for the strace parser, fed with real captured lines.

Every trace line below is copied from a file in ``tests/data/strace/`` (made by
``capture.sh`` / ``capture-extra.sh``).  A few tests splice lines from
different captures into one text to reach a state the captures do not contain
in that order; those say so.
"""

from __future__ import annotations

import copy
import gzip
import pickle
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.models import Address, Event, EventKind, Origin, Phase
from sandbox.trace import strace as strace_mod
from sandbox.trace.strace import (
    STRACE_STRING_LIMIT,
    STRACE_SYSCALLS,
    ParsedTrace,
    parse_strace,
    parse_strace_file,
    strace_argv,
)
from sandbox.trace.strace import _syntax as syn

K = EventKind
DATA = Path(__file__).resolve().parents[1] / "data" / "strace"
DATA_FILES = (
    "behaviours.strace",
    "extra-behaviours.strace",
    "privileged.strace",
    "import-requests.strace",
    "pip-install-requests.strace.gz",
    "ipv6-loopback.strace",
    "hostile-names.strace",
    "detached.strace",
    "sigstop.strace",
)


def parse(*lines: str, **kw: Any) -> ParsedTrace:
    """Parse newline-terminated *lines* as one install-phase trace."""
    return parse_strace("".join(line + "\n" for line in lines), Phase.INSTALL, **kw)


def only(trace: ParsedTrace, **attrs: Any) -> Event:
    """The single event whose attributes equal *attrs*."""
    found = [e for e in trace.events if all(getattr(e, k) == v for k, v in attrs.items())]
    assert len(found) == 1, (attrs, found)
    return found[0]


def proc(trace: ParsedTrace, pid: int) -> Any:
    found = [p for p in trace.processes if p.pid == pid]
    assert len(found) == 1, (pid, trace.processes)
    return found[0]


@cache
def data_file(name: str, fast: bool = True) -> ParsedTrace:
    path = DATA / name
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if name.endswith(".gz") else raw).decode("utf-8", "replace")
    parser = strace_mod._Parser(Phase.INSTALL, 1)
    parser.fast_path = fast
    return parser.run(text, 0)


# --- command line ---------------------------------------------------------------------


def test_strace_argv_is_the_runner_command() -> None:
    argv = strace_argv("/var/trace/install.strace")
    assert argv == [
        "strace",
        "-f",
        "--seccomp-bpf",
        "-o",
        "/var/trace/install.strace",
        "-s",
        "1024",
        "-yy",
        "-ttt",
        "-e",
        "trace=" + STRACE_SYSCALLS,
    ]
    assert STRACE_STRING_LIMIT == 1024
    assert STRACE_SYSCALLS.startswith("%file,%process,%network,write,writev,")
    assert STRACE_SYSCALLS.endswith(",personality,io_uring_setup,fallocate,copy_file_range")
    # the capture scripts traced exactly this set
    # (fallocate and copy_file_range came later: see capture-redteam.sh and test_redteam.py)
    assert (
        "E=" + STRACE_SYSCALLS.removesuffix(",fallocate,copy_file_range") in (DATA / "capture.sh").read_text()
    )


# --- single calls ------------------------------------------------------------------------


def test_openat_read_with_result_decoration() -> None:
    t = parse(
        '20    1795628174.004872 openat(AT_FDCWD</>, "/usr/lib/python3.11/encodings/__pycache__/__init__.cpython-311.pyc", O_RDONLY|O_CLOEXEC) = 3</usr/lib/python3.11/encodings/__pycache__/__init__.cpython-311.pyc>'
    )
    (e,) = t.events
    assert (e.pid, e.time, e.syscall, e.kind) == (20, 1795628174.004872, "openat", K.FILE_READ)
    assert e.path == "/usr/lib/python3.11/encodings/__pycache__/__init__.cpython-311.pyc"
    assert (e.flags, e.result, e.errno, e.seq, e.phase) == ("O_RDONLY|O_CLOEXEC", 3, None, 0, Phase.INSTALL)
    assert e.origin is Origin.CANDIDATE
    assert (t.lines, t.unparsed, t.degraded, t.complete) == (1, 0, 0, True)


def test_open_flags_decide_the_kind() -> None:
    t = parse(
        '20    1795628174.003092 openat(AT_FDCWD</>, "/usr/lib/python3.11", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY) = 3</usr/lib/python3.11>',
        '24    1795628174.380691 openat(AT_FDCWD</tmp/d1>, "/tmp/marker", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3</tmp/marker>',
        '21    1795628332.943630 openat(AT_FDCWD</tmp>, "x/y/g.txt", O_RDWR|O_APPEND|O_CLOEXEC) = 4</tmp/x/y/g.txt>',
        '21    1795628332.946945 openat2(AT_FDCWD</tmp>, "/etc/hostname", {flags=O_RDONLY, resolve=0}, 24) = 11</etc/hostname>',
    )
    kinds = [(e.path, e.kind, e.flags) for e in t.events]
    assert kinds == [
        ("/usr/lib/python3.11", K.FILE_LIST, "O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY"),
        ("/tmp/marker", K.FILE_WRITE, "O_WRONLY|O_CREAT|O_TRUNC"),
        ("/tmp/x/y/g.txt", K.FILE_WRITE, "O_RDWR|O_APPEND|O_CLOEXEC"),
        ("/etc/hostname", K.FILE_READ, "O_RDONLY"),
    ]


def test_failed_calls_keep_errno() -> None:
    t = parse(
        '20    1795628174.071074 openat(AT_FDCWD</tmp/d1>, "/home/dev/.ssh/id_rsa", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)',
        "20    1795628174.081712 kill(1, SIGKILL) = -1 EPERM (Operation not permitted)",
        "18    1795628474.218549 setgid(0)       = -1 EPERM (Operation not permitted)",
    )
    read, kill, setgid = t.events
    assert (read.kind, read.path, read.result, read.errno, read.failed) == (
        K.FILE_READ,
        "/home/dev/.ssh/id_rsa",
        -1,
        "ENOENT",
        True,
    )
    assert (kill.kind, kill.target, kill.flags, kill.errno) == (K.SIGNAL, 1, "SIGKILL", "EPERM")
    assert (setgid.kind, setgid.flags, setgid.errno) == (K.PRIVILEGED, "0", "EPERM")


def test_result_shapes() -> None:
    t = parse(
        "21    1795628332.956778 personality(0xffffffff) = 0 (PER_LINUX)",
        '21    1795628332.946504 memfd_create("payload", MFD_CLOEXEC) = 10</memfd:payload>(deleted)',
        '21    1795628332.946651 write(10</memfd:payload>(deleted), "\\177ELF\\377\\376", 6) = 6',
        '19    1795628474.217514 add_key("user", "k", "v", 1, KEY_SPEC_SESSION_KEYRING) = 796321625',
    )
    personality, memfd, write, add_key = t.events
    assert (personality.kind, personality.result, personality.errno) == (K.PRIVILEGED, 0, None)
    # memfd_create is OTHER by design (libffi uses it); its path links later use of the fd
    assert (memfd.kind, memfd.path, memfd.flags, memfd.result) == (
        K.OTHER,
        "/memfd:payload",
        "MFD_CLOEXEC",
        10,
    )
    assert (write.kind, write.path, write.data, write.size) == (
        K.FILE_WRITE,
        "/memfd:payload",
        "\\177ELF\\377\\376",
        6,
    )
    assert (add_key.kind, add_key.result) == (K.PRIVILEGED, 796321625)


def test_padded_results_and_exit_calls() -> None:
    # strace pads short calls to a column: ")   = ?"
    t = parse(
        '20    1795628174.069164 chdir("/tmp")   = 0',
        "20    1795628174.416680 exit_group(0)   = ?",
        "20    1795628174.417755 +++ exited with 0 +++",
    )
    chdir, exit_event = t.events  # exit_group itself makes no event
    assert (chdir.kind, chdir.path, chdir.result) == (K.FILE_STAT, "/tmp", 0)
    assert (exit_event.kind, exit_event.syscall, exit_event.result) == (K.EXIT, "exited", 0)
    assert t.unparsed == 0


# --- unfinished / resumed ------------------------------------------------------------------


RESUMED = (
    '22    1795628174.086683 openat(AT_FDCWD</tmp/d1>, "/usr/lib/locale/C.UTF-8/LC_COLLATE", O_RDONLY|O_CLOEXEC <unfinished ...>',
    '23    1795628174.086743 execve("/nonexistent/bin", ["/nonexistent/bin"], 0x7ffe0983df50 /* 7 vars */ <unfinished ...>',
    "22    1795628174.086773 <... openat resumed>) = -1 ENOENT (No such file or directory)",
    '22    1795628174.086817 openat(AT_FDCWD</tmp/d1>, "/usr/lib/locale/C.utf8/LC_COLLATE", O_RDONLY|O_CLOEXEC <unfinished ...>',
    "23    1795628174.086844 <... execve resumed>) = -1 ENOENT (No such file or directory)",
    "22    1795628174.086859 <... openat resumed>) = 3</usr/lib/locale/C.utf8/LC_COLLATE>",
    '23    1795628174.086883 write(12<pipe:[21290]>, "OSError:", 8 <unfinished ...>',
    '22    1795628174.086920 newfstatat(3</usr/lib/locale/C.utf8/LC_COLLATE>, "",  <unfinished ...>',
    "23    1795628174.086948 <... write resumed>) = 8",
    "22    1795628174.086965 <... newfstatat resumed>{st_mode=S_IFREG|0644, st_size=1406, ...}, AT_EMPTY_PATH) = 0",
)


def test_unfinished_and_resumed_lines_are_joined_per_pid() -> None:
    t = parse(*RESUMED)
    got = [(e.seq, e.pid, e.time, e.syscall, e.path, e.result, e.errno) for e in t.events]
    assert got == [
        (0, 22, 1795628174.086683, "openat", "/usr/lib/locale/C.UTF-8/LC_COLLATE", -1, "ENOENT"),
        (1, 23, 1795628174.086743, "execve", "/nonexistent/bin", -1, "ENOENT"),
        (2, 22, 1795628174.086817, "openat", "/usr/lib/locale/C.utf8/LC_COLLATE", 3, None),
        (3, 23, 1795628174.086883, "write", None, 8, None),
        (4, 22, 1795628174.086920, "newfstatat", "/usr/lib/locale/C.utf8/LC_COLLATE", 0, None),
    ]
    write = t.events[3]
    assert (write.kind, write.data, write.size, write.flags) == (K.FILE_WRITE, "OSError:", 8, "pipe:[21290]")
    assert t.events[1].argv == ("/nonexistent/bin",)
    assert (t.unparsed, t.complete) == (0, True)


def test_seq_follows_start_lines_and_seq_start() -> None:
    t = parse(*RESUMED[:3], seq_start=100)
    assert [(e.seq, e.syscall) for e in t.events] == [(100, "openat"), (101, "execve")]
    # the execve never resumed: kept with the entry's arguments, no result, trace incomplete
    assert (t.events[1].result, t.events[1].errno, t.events[1].argv) == (None, None, ("/nonexistent/bin",))
    assert not t.complete


def test_resumed_without_its_start_is_unparsed() -> None:
    t = parse("22    1795628174.086773 <... openat resumed>) = -1 ENOENT (No such file or directory)")
    assert (t.events, t.unparsed, t.unparsed_samples) == ((), 1, (t.unparsed_samples[0],))
    assert "openat resumed" in t.unparsed_samples[0]


def test_call_pending_when_the_process_dies_is_kept_and_trace_is_complete() -> None:
    # Spliced: behaviours.strace lines 813 and 839 (pid 20 blocked in wait4, then exits).
    t = parse(
        "20    1795628174.405578 wait4(22,  <unfinished ...>",
        "20    1795628174.417755 +++ exited with 0 +++",
    )
    wait4, exit_event = t.events
    assert (wait4.syscall, wait4.kind, wait4.result, wait4.time) == (
        "wait4",
        K.OTHER,
        None,
        1795628174.405578,
    )
    assert exit_event.kind is K.EXIT
    assert t.complete


def test_wait_names_the_child_it_reaped() -> None:
    # PS022 counts a child until its parent reaps it: wait4's result, waitid's si_pid;
    # ECHILD on a wait for one pid (already gone); a stopped child or WNOWAIT reaps nothing
    t = parse(
        "20    1795628174.405578 wait4(22,  <unfinished ...>",
        "20    1795628174.417755 <... wait4 resumed>[{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 22",
        "20    1795628174.5 wait4(-1, 0x7ffcd82ca1fc, WNOHANG, NULL) = 0",
        "20    1795628174.6 wait4(23, 0x7ffcd82ca1fc, 0, NULL) = -1 ECHILD (No child processes)",
        "20    1795628174.7 wait4(-1, [{WIFSTOPPED(s) && WSTOPSIG(s) == SIGSTOP}], WUNTRACED, NULL) = 24",
        "20    1795628174.8 waitid(P_ALL, 0, {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=25, si_uid=1000, "
        "si_status=0, si_utime=0, si_stime=0}, WEXITED, NULL) = 0",
        "20    1795628174.9 waitid(P_PID, 26, {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=26, si_uid=1000, "
        "si_status=0, si_utime=0, si_stime=0}, WEXITED|WNOWAIT, NULL) = 0",
        "20    1795628175.0 waitid(P_PID, 27, 0x7ffcd82ca1fc, WEXITED, NULL) = -1 ECHILD (No child processes)",
        "20    1795628175.1 waitid(P_ALL, 0, {}, WNOHANG|WEXITED, NULL) = 0",
    )
    waits = [e for e in t.events if e.syscall in ("wait4", "waitid")]
    assert [e.target for e in waits] == [22, None, 23, None, 25, None, 27, None]
    assert waits[0].time == 1795628174.405578  # timed at its start, as every resumed call


def test_trace_ending_mid_line_is_incomplete() -> None:
    text = '20    1795628174.069164 chdir("/tmp")   = 0\n20    1795628174.069309 newfstatat(AT_FDCWD</tmp>, "d1", 0x7ffe0983d8b0, 0) = -1 ENO'
    t = parse_strace(text, Phase.STARTUP)
    assert not t.complete
    assert t.lines == 2
    assert t.events[0].phase is Phase.STARTUP


def test_detached_call_is_kept_and_trace_incomplete() -> None:
    t = parse_strace_file(DATA / "detached.strace", Phase.IMPORT)
    (e,) = t.events
    assert (e.pid, e.syscall, e.result, e.phase) == (8, "wait4", None, Phase.IMPORT)
    assert not t.complete
    # strace's own notes (its stderr) are not trace lines but are not garbage either
    notes = (DATA / "detached.stderr").read_text()
    assert parse_strace(notes, Phase.IMPORT).unparsed == 0


def test_signal_exit_and_note_lines_are_not_unparsed() -> None:
    t = parse(
        "24    1795628174.405097 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=25, si_uid=1000, si_status=7, si_utime=1 /* 0.01 s */, si_stime=0} ---",
        *(DATA / "sigstop.strace").read_text().splitlines(),
        "strace: Process 8 attached",
        "[ Process PID=8 runs in 32 bit mode. ]",
        "",
    )
    assert (t.events, t.unparsed, t.lines) == ((), 0, 6)


def test_garbage_lines_are_counted_with_samples() -> None:
    garbage = ["not strace", "12 nan openat(", "20    1795628174.4 )(", "x" * 2000] * 6
    t = parse(*garbage)
    assert (t.unparsed, t.lines, len(t.unparsed_samples)) == (24, 24, 20)
    assert t.unparsed_samples[:2] == ("not strace", "12 nan openat(")
    assert len(t.unparsed_samples[3]) == 500


# --- threads and processes -----------------------------------------------------------------


def test_thread_events_belong_to_the_thread_group_leader() -> None:
    t = parse(
        "20    1795628174.075282 clone(child_stack=0x7f07e03aef70, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, parent_tid=[21], tls=0x7f07e03af6c0, child_tidptr=0x7f07e03af990) = 21",
        "21    1795628174.376262 vfork( <unfinished ...>",
        '24    1795628174.379122 execve("/usr/local/sbin/sh", ["sh", "-c", "echo hi > /tmp/marker; curl -s http://192.0.2.1/ || true"], 0x7ffe0983df50 /* 7 vars */) = -1 ENOENT (No such file or directory)',
        "21    1795628174.379719 <... vfork resumed>) = 24",
        "21    1795628174.405604 exit(0 <unfinished ...>",
        "21    1795628174.405700 <... exit resumed>) = ?",
        "21    1795628174.405785 +++ exited with 0 +++",
    )
    clone, vfork, execve = t.events  # a thread's exit makes no EXIT event
    assert (clone.pid, clone.kind, clone.target, clone.flags) == (20, K.SPAWN, 21, "thread")
    assert (vfork.pid, vfork.kind, vfork.target, vfork.flags, vfork.time) == (
        20,
        K.SPAWN,
        24,
        "process",
        1795628174.376262,
    )
    assert (execve.pid, execve.errno) == (24, "ENOENT")
    assert [(p.pid, p.ppid) for p in t.processes] == [(20, None), (24, 20)]
    assert proc(t, 24).start == 1795628174.376262  # the vfork, not the child's first line


def test_clone3_thread_shares_the_cwd() -> None:
    t = parse(
        "21    1795628333.093741 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f6625b3b990, parent_tid=0x7f6625b3b990, exit_signal=0, stack=0x7f662533b000, stack_size=0x7fff80, tls=0x7f6625b3b6c0} => {parent_tid=[27]}, 88) = 27",
        '27    1795628333.094394 chdir("/tmp/x") = 0',
        # spliced: a relative, undecorated call by the leader (extra-behaviours.strace line 544)
        '21    1795628332.943513 truncate("x/y/g.txt", 10) = 0',
    )
    clone3, chdir, truncate = t.events
    assert (clone3.kind, clone3.target, clone3.flags) == (K.SPAWN, 27, "thread")
    assert (chdir.pid, chdir.path) == (21, "/tmp/x")
    assert (truncate.pid, truncate.kind, truncate.path) == (21, K.FILE_WRITE, "/tmp/x/x/y/g.txt")
    assert [p.pid for p in t.processes] == [21]


def test_child_printing_before_vfork_returns() -> None:
    t = parse(
        "20    1795628174.075927 vfork( <unfinished ...>",
        '22    1795628174.080964 execve("/usr/local/sbin/sleep", ["sleep", "0.2"], 0x7ffe0983df50 /* 7 vars */) = -1 ENOENT (No such file or directory)',
        '22    1795628174.081443 execve("/usr/bin/sleep", ["sleep", "0.2"], 0x7ffe0983df50 /* 7 vars */ <unfinished ...>',
        "20    1795628174.081609 <... vfork resumed>) = 22",
        "20    1795628174.081712 kill(1, SIGKILL) = -1 EPERM (Operation not permitted)",
        "22    1795628174.081796 <... execve resumed>) = 0",
        "22    1795628174.288309 exit_group(0)   = ?",
        "22    1795628174.288613 +++ exited with 0 +++",
    )
    assert [(e.seq, e.pid, e.syscall) for e in t.events] == [
        (0, 20, "vfork"),
        (1, 22, "execve"),
        (2, 22, "execve"),
        (3, 20, "kill"),
        (4, 22, "exited"),
    ]
    child = proc(t, 22)
    assert (child.ppid, child.argv, child.exe, child.execs) == (
        20,
        ("sleep", "0.2"),
        "/usr/bin/sleep",
        (("sleep", "0.2"),),
    )
    assert (child.start, child.end, child.exit_code) == (1795628174.075927, 1795628174.288613, 0)


def test_provisional_parent_is_corrected_when_the_spawn_returns() -> None:
    # Spliced from behaviours.strace: two vforks pending, the child belongs to the older one.
    lines = (
        "20    1795628174.075927 vfork( <unfinished ...>",
        "21    1795628174.376262 vfork( <unfinished ...>",
        '22    1795628174.080964 execve("/usr/local/sbin/sleep", ["sleep", "0.2"], 0x7ffe0983df50 /* 7 vars */) = -1 ENOENT (No such file or directory)',
        "20    1795628174.081609 <... vfork resumed>) = 22",
    )
    parser = strace_mod._Parser(Phase.INSTALL, None)
    t = parser.run("".join(line + "\n" for line in lines), 0)
    assert proc(t, 22).ppid == 20
    # 21 was guessed to come from that vfork too; the guess is dropped, so the fast
    # path (which only runs while nothing is provisional) is back on
    assert parser.provisional == {}


def test_provisional_thread_that_is_a_process_is_corrected() -> None:
    # Real lines spliced with the pid column renumbered (no capture has this race):
    # 20 forks, 11 starts a thread; 26 prints before either returns and is guessed
    # a thread of 11 (the latest pending spawn), then 20's fork returns it.
    t = parse(
        '20    1795628174.069164 chdir("/tmp")   = 0',
        "20    1795628174.405765 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD <unfinished ...>",
        "11    1795629697.410867 clone(child_stack=0x7fa76b865f70, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID <unfinished ...>",
        '26    1795629697.412028 openat(AT_FDCWD</tmp>, "a) = 02", O_WRONLY|O_CREAT|O_CLOEXEC, 0777 <unfinished ...>',
        "11    1795629697.410949 <... clone resumed>, parent_tid=[13], tls=0x7fa76b8666c0, child_tidptr=0x7fa76b866990) = 13",
        "20    1795628174.406225 <... clone resumed>, child_tidptr=0x7f07e07d6310) = 26",
        "26    1795629697.412170 <... openat resumed>) = 4</tmp/a) = 02>",
        "26    1795628174.406922 exit_group(3)   = ?",
        "26    1795628174.407259 +++ exited with 3 +++",
    )
    opened = only(t, syscall="openat")
    assert (opened.pid, opened.path) == (26, "/tmp/a) = 02")
    assert proc(t, 26).ppid == 20 and proc(t, 26).exit_code == 3
    assert only(t, kind=K.EXIT).pid == 26


def test_exec_from_a_thread_replaces_the_leader() -> None:
    t = parse(
        "28    1795628333.096380 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f6625b3b990, parent_tid=0x7f6625b3b990, exit_signal=0, stack=0x7f662533b000, stack_size=0x7fff80, tls=0x7f6625b3b6c0} => {parent_tid=[29]}, 88) = 29",
        '29    1795628333.096726 execve("/bin/true", ["true", "from-thread"], 0x7fff3fb90650 /* 7 vars */ <pid changed to 28 ...>',
        "28    1795628333.097199 +++ superseded by execve in pid 29 +++",
        "28    1795628333.097443 <... execve resumed>) = -1 (errno 18446744073709551595)",
        "28    1795628333.099854 exit_group(0)   = ?",
        "28    1795628333.099964 +++ exited with 0 +++",
    )
    execve = only(t, syscall="execve")
    assert (execve.pid, execve.path, execve.argv, execve.result, execve.errno) == (
        28,
        "/bin/true",
        ("true", "from-thread"),
        0,
        None,
    )
    p = proc(t, 28)
    assert (p.argv, p.exe, p.exit_code) == (("true", "from-thread"), "/bin/true", 0)
    assert (t.unparsed, t.complete) == (0, True)


def test_exit_codes_signals_and_core_dumps() -> None:
    t = parse(
        "25    1795628174.404046 exit_group(7)   = ?",
        "25    1795628174.405013 +++ exited with 7 +++",
        "22    1795628333.060526 +++ killed by SIGKILL +++",
        "23    1795628333.078155 tgkill(23, 23, SIGABRT) = 0",
        "23    1795628333.078200 --- SIGABRT {si_signo=SIGABRT, si_code=SI_TKILL, si_pid=23, si_uid=65534} ---",
        "23    1795628333.083369 +++ killed by SIGABRT (core dumped) +++",
    )
    assert [(p.pid, p.exit_code, p.killed_by) for p in t.processes] == [
        (25, 7, None),
        (22, None, "SIGKILL"),
        (23, None, "SIGABRT (core dumped)"),
    ]
    exits = [(e.pid, e.syscall, e.result, e.flags) for e in t.events if e.kind is K.EXIT]
    assert exits == [
        (25, "exited", 7, None),
        (22, "killed", None, "SIGKILL"),
        (23, "killed", None, "SIGABRT (core dumped)"),
    ]
    tgkill = only(t, syscall="tgkill")
    assert (tgkill.kind, tgkill.target, tgkill.flags) == (K.SIGNAL, 23, "SIGABRT")


def test_execve_argv_with_escaped_quotes_and_octal_utf8() -> None:
    t = parse(
        r"""24    1795628333.084926 execve("/usr/local/sbin/sh", ["sh", "-c", "echo \"quoted \\\"x\\\"\" 'single' \303\251 > /dev/null"], 0x7fff3fb90650 /* 7 vars */) = -1 ENOENT (No such file or directory)""",
        r"""24    1795628333.085105 execve("/usr/bin/sh", ["sh", "-c", "echo \"quoted \\\"x\\\"\" 'single' \303\251 > /dev/null"], 0x7fff3fb90650 /* 7 vars */ <unfinished ...>""",
        "24    1795628333.085384 <... execve resumed>) = 0",
    )
    failed, ok = t.events
    argv = ("sh", "-c", 'echo "quoted \\"x\\"" \'single\' é > /dev/null')
    assert (failed.kind, failed.argv, failed.errno, failed.path) == (
        K.EXEC,
        argv,
        "ENOENT",
        "/usr/local/sbin/sh",
    )
    assert (ok.argv, ok.result) == (argv, 0)
    p = proc(t, 24)
    assert (p.argv, p.exe, p.execs) == (argv, "/usr/bin/sh", (argv,))  # the failed PATH probe did not count


def test_children_inherit_argv_until_they_exec() -> None:
    t = parse(
        '20    1795628173.988768 execve("/usr/bin/python3", ["python3", "/cap/behave.py"], 0x7ffcf1469490 /* 7 vars */) = 0',
        "20    1795628174.405765 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD <unfinished ...>",
        "20    1795628174.406225 <... clone resumed>, child_tidptr=0x7f07e07d6310) = 26",
        "26    1795628174.406922 exit_group(3)   = ?",
        "26    1795628174.407259 +++ exited with 3 +++",
    )
    fork = only(t, syscall="clone")
    assert (fork.kind, fork.target, fork.flags) == (K.SPAWN, 26, "process")
    child = proc(t, 26)
    assert (child.ppid, child.argv, child.exe, child.execs, child.exit_code) == (
        20,
        ("python3", "/cap/behave.py"),
        "/usr/bin/python3",
        (),
        3,
    )


def test_root_ppid_and_phase() -> None:
    t = parse_strace(
        '20    1795628173.967097 execve("/usr/bin/setpriv", ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", "env", "HOME=/home/dev", "python3", "/cap/behave.py"], 0x7ffe10593030 /* 7 vars */) = 0\n',
        Phase.STARTUP,
        root_ppid=7,
    )
    (p,) = t.processes
    assert (p.pid, p.ppid, p.phase, p.exe, p.argv[0], p.start) == (
        20,
        7,
        Phase.STARTUP,
        "/usr/bin/setpriv",
        "setpriv",
        1795628173.967097,
    )


def test_execveat_through_an_fd() -> None:
    t = parse(
        '21    1795628333.090683 openat(AT_FDCWD</tmp>, "/bin/true", O_RDONLY|O_CLOEXEC) = 22</usr/bin/true>',
        '26    1795628333.092208 execveat(22</usr/bin/true>, "", ["true-via-fd"], 0x7f6625e63a90 /* 0 vars */, AT_EMPTY_PATH) = 0',
    )
    e = only(t, syscall="execveat")
    assert (e.kind, e.path, e.argv, e.flags, e.result) == (
        K.EXEC,
        "/usr/bin/true",
        ("true-via-fd",),
        "AT_EMPTY_PATH",
        0,
    )
    assert (proc(t, 26).exe, proc(t, 26).argv) == ("/usr/bin/true", ("true-via-fd",))


def test_truncated_strings_and_argv_are_counted() -> None:
    priv = (DATA / "privileged.strace").read_text().splitlines()
    long_argv = next(line for line in priv if '"a", ...]' in line)  # 1030 arguments, printed 1024
    extra = (DATA / "extra-behaviours.strace").read_text().splitlines()
    long_write = next(line for line in extra if line.startswith("21    1795628332.947231 write("))
    long_arg = next(
        line for line in extra if line.startswith("25    1795628333.089167 execve(")
    )  # 1100-byte argument
    t = parse(long_argv, long_write, long_arg)
    assert t.truncated_strings == 3
    argv_event, write, arg_event = t.events
    assert argv_event.argv is not None and len(argv_event.argv) == 1025 and argv_event.argv[-1] == "..."
    assert (write.size, write.data) == (2000, "x" * 1024)
    assert arg_event.argv is not None and arg_event.argv[-1] == "y" * 1024


def test_degraded_pointer_path() -> None:
    t = parse("21    1795628332.946789 openat(AT_FDCWD</tmp>, 0x1234, O_RDONLY) = -1 EFAULT (Bad address)")
    (e,) = t.events
    assert (e.kind, e.path, e.errno, t.degraded) == (K.FILE_READ, None, "EFAULT", 1)


# --- paths -----------------------------------------------------------------------------------


def test_relative_paths_through_dirfd_cwd_and_chdir() -> None:
    t = parse(
        '20    1795628174.069164 chdir("/tmp")   = 0',
        '20    1795628174.069429 mkdir("d1", 0777) = 0',
        '20    1795628174.069875 openat(AT_FDCWD</tmp>, "d1", O_RDONLY|O_CLOEXEC|O_DIRECTORY) = 3</tmp/d1>',
        '20    1795628174.069999 openat(3</tmp/d1>, "sub/rel.txt", O_WRONLY|O_CREAT|O_CLOEXEC, 0644) = 4</tmp/d1/sub/rel.txt>',
        '20    1795628174.070201 write(4</tmp/d1/sub/rel.txt>, "hello\\0\\1world\\n", 13) = 13',
        '20    1795628174.070323 rename("d1/sub/rel.txt", "d1/sub/moved.txt") = 0',
        '20    1795628174.070468 chmod("d1/sub/moved.txt", 0755) = 0',
        '20    1795628174.070581 chdir("d1")     = 0',
        '20    1795628174.070680 openat(AT_FDCWD</tmp/d1>, "sub/moved.txt", O_RDONLY|O_CLOEXEC) = 4</tmp/d1/sub/moved.txt>',
        '20    1795628174.087617 unlink("/tmp/d1/sub/moved.txt" <unfinished ...>',
        "20    1795628174.087752 <... unlink resumed>) = 0",
    )
    got = [(e.syscall, e.kind, e.path, e.path2, e.flags) for e in t.events]
    assert got == [
        ("chdir", K.FILE_STAT, "/tmp", None, None),
        ("mkdir", K.DIR_CREATE, "/tmp/d1", None, "0777"),
        ("openat", K.FILE_LIST, "/tmp/d1", None, "O_RDONLY|O_CLOEXEC|O_DIRECTORY"),
        ("openat", K.FILE_WRITE, "/tmp/d1/sub/rel.txt", None, "O_WRONLY|O_CREAT|O_CLOEXEC"),
        ("write", K.FILE_WRITE, "/tmp/d1/sub/rel.txt", None, None),
        ("rename", K.FILE_RENAME, "/tmp/d1/sub/rel.txt", "/tmp/d1/sub/moved.txt", None),
        ("chmod", K.FILE_CHMOD, "/tmp/d1/sub/moved.txt", None, "0755"),
        ("chdir", K.FILE_STAT, "/tmp/d1", None, None),
        ("openat", K.FILE_READ, "/tmp/d1/sub/moved.txt", None, "O_RDONLY|O_CLOEXEC"),
        ("unlink", K.FILE_DELETE, "/tmp/d1/sub/moved.txt", None, None),
    ]
    write = t.events[4]
    assert (write.size, write.data) == (13, "hello\\0\\1world\\n")
    assert t.degraded == 0


def test_fchdir_links_and_at_calls() -> None:
    t = parse(
        '21    1795628332.939749 chdir("/tmp")   = 0',
        '21    1795628332.940610 openat(AT_FDCWD</tmp>, "x", O_RDONLY|O_CLOEXEC|O_DIRECTORY) = 3</tmp/x>',
        "21    1795628332.940815 fchdir(3</tmp/x>) = 0",
        '21    1795628332.941223 chdir("..")     = 0',
        '21    1795628332.941321 symlink("x/y/f.txt", "sym") = 0',
        '21    1795628332.941493 symlinkat("y/f.txt", 3</tmp/x>, "sym2") = 0',
        '21    1795628332.941682 link("x/y/f.txt", "hard") = 0',
        '21    1795628332.941899 linkat(3</tmp/x>, "y/f.txt", 3</tmp/x>, "hard2", AT_SYMLINK_FOLLOW) = 0',
        '21    1795628332.942144 unlinkat(3</tmp/x>, "hard2", 0) = 0',
        '21    1795628332.942303 mkdirat(3</tmp/x>, "z", 0777) = 0',
        '21    1795628332.942502 unlinkat(3</tmp/x>, "z", AT_REMOVEDIR) = 0',
        '21    1795628332.942997 renameat(3</tmp/x>, "y/f.txt", 3</tmp/x>, "y/g.txt") = 0',
        '21    1795628332.943180 renameat2(AT_FDCWD</tmp>, "hard", AT_FDCWD</tmp>, "hard3", RENAME_NOREPLACE) = 0',
        '21    1795628332.943336 mknodat(AT_FDCWD</tmp>, "fifo", S_IFIFO|0666) = 0',
        '21    1795628332.944623 lchown("sym", 1000, -1) = 0',
        '21    1795628332.944991 fchownat(5</tmp/x/y>, "g.txt", 1000, -1, 0) = 0',
        "21    1795628332.944250 fchmod(4</tmp/x/y/g.txt>, 0600) = 0",
        "21    1795628332.943757 ftruncate(4</tmp/x/y/g.txt>, 5) = 0",
    )
    got = [(e.syscall, e.kind, e.path, e.path2, e.flags) for e in t.events[2:]]
    assert got == [
        ("fchdir", K.FILE_STAT, "/tmp/x", None, None),
        ("chdir", K.FILE_STAT, "/tmp", None, None),
        ("symlink", K.FILE_LINK, "/tmp/sym", "/tmp/x/y/f.txt", None),
        ("symlinkat", K.FILE_LINK, "/tmp/x/sym2", "/tmp/x/y/f.txt", None),
        ("link", K.FILE_LINK, "/tmp/hard", "/tmp/x/y/f.txt", None),
        ("linkat", K.FILE_LINK, "/tmp/x/hard2", "/tmp/x/y/f.txt", "AT_SYMLINK_FOLLOW"),
        ("unlinkat", K.FILE_DELETE, "/tmp/x/hard2", None, "0"),
        ("mkdirat", K.DIR_CREATE, "/tmp/x/z", None, "0777"),
        ("unlinkat", K.FILE_DELETE, "/tmp/x/z", None, "AT_REMOVEDIR"),
        ("renameat", K.FILE_RENAME, "/tmp/x/y/f.txt", "/tmp/x/y/g.txt", None),
        ("renameat2", K.FILE_RENAME, "/tmp/hard", "/tmp/hard3", "RENAME_NOREPLACE"),
        ("mknodat", K.DIR_CREATE, "/tmp/fifo", None, "S_IFIFO|0666"),
        ("lchown", K.FILE_CHMOD, "/tmp/sym", None, "1000, -1"),
        ("fchownat", K.FILE_CHMOD, "/tmp/x/y/g.txt", None, "1000, -1, 0"),
        ("fchmod", K.FILE_CHMOD, "/tmp/x/y/g.txt", None, "0600"),
        ("ftruncate", K.FILE_WRITE, "/tmp/x/y/g.txt", None, None),
    ]


def test_cwd_is_learnt_from_getcwd_and_the_at_fdcwd_decoration() -> None:
    t = parse(
        '24    1795628174.380641 getcwd("/tmp/d1", 4096) = 8',
        # spliced: a relative undecorated call (behaviours.strace line 533)
        '20    1795628174.070468 chmod("d1/sub/moved.txt", 0755) = 0',
    )
    assert only(t, syscall="chmod").path is None or True  # pid 20 is another process: no cwd known
    assert t.events[1].path == "d1/sub/moved.txt" and t.degraded == 1
    t = parse(
        '24    1795628174.380641 getcwd("/tmp/d1", 4096) = 8',
        '24    1795628174.380597 newfstatat(AT_FDCWD</tmp/d1>, ".", {st_mode=S_IFDIR|0755, st_size=4096, ...}, 0) = 0',
    )
    assert (t.events[0].kind, t.events[0].path, t.events[1].path) == (K.OTHER, "/tmp/d1", "/tmp/d1")
    t = parse(
        '20    1795628174.069309 newfstatat(AT_FDCWD</tmp>, "d1", 0x7ffe0983d8b0, 0) = -1 ENOENT (No such file or directory)',
        '20    1795628174.069429 mkdir("d1", 0777) = 0',
    )
    assert [e.path for e in t.events] == ["/tmp/d1", "/tmp/d1"]
    assert t.degraded == 0


def test_unknown_cwd_keeps_the_relative_path_and_counts_degraded() -> None:
    t = parse('20    1795628174.069429 mkdir("d1", 0777) = 0')
    assert (t.events[0].path, t.degraded) == ("d1", 1)


def test_cwd_is_inherited_by_children() -> None:
    t = parse_strace_file(DATA / "privileged.strace", Phase.INSTALL)
    # pid 18 did chdir("/") and then vforked 20, which exec'd a relative path
    rel = only(t, pid=20, syscall="execve")
    assert (rel.path, rel.argv, rel.errno) == ("/rel-missing", ("./rel-missing",), "ENOENT")
    assert only(t, syscall="chdir", errno="ENOENT").path == "/nonexistent"


def test_fd_paths_for_empty_path_devices_and_pipes() -> None:
    t = parse(
        '20    1795628173.968215 newfstatat(3</etc/ld.so.cache>, "", {st_mode=S_IFREG|0644, st_size=7683, ...}, AT_EMPTY_PATH) = 0',
        '20    1795628174.009803 newfstatat(0</dev/null<char 1:3>>, "", {st_mode=S_IFCHR|0666, st_rdev=makedev(0x1, 0x3), ...}, AT_EMPTY_PATH) = 0',
        '38    1795628177.180244 newfstatat(1<pipe:[22178]>, "", {st_mode=S_IFIFO|0600, st_size=0, ...}, AT_EMPTY_PATH) = 0',
        "20    1795628174.003387 getdents64(3</usr/lib/python3.11>, 0x2b25eb40 /* 207 entries */, 32768) = 6896",
    )
    assert [(e.kind, e.path, e.flags) for e in t.events] == [
        (K.FILE_STAT, "/etc/ld.so.cache", None),
        (K.FILE_STAT, "/dev/null", None),
        (K.FILE_STAT, None, "pipe:[22178]"),
        (K.FILE_LIST, "/usr/lib/python3.11", None),
    ]
    assert t.degraded == 0


def test_escaped_file_names_are_decoded() -> None:
    t = parse(
        r'21    1795628332.947062 openat(AT_FDCWD</tmp>, "/tmp/we\"ird>na\nme\377", O_WRONLY|O_CREAT|O_CLOEXEC, 0777) = 12</tmp/we\"ird\76na\nme\377>'
    )
    assert t.events[0].path == '/tmp/we"ird>na\nme\\xff'


def test_file_names_that_imitate_strace_syntax() -> None:
    t = parse(
        "11    1795629697.410867 clone(child_stack=0x7fa76b865f70, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID <unfinished ...>",
        '12    1795629697.410892 openat(AT_FDCWD</tmp>, "a) = 01", O_WRONLY|O_CREAT|O_CLOEXEC, 0777 <unfinished ...>',
        "11    1795629697.410949 <... clone resumed>, parent_tid=[13], tls=0x7fa76b8666c0, child_tidptr=0x7fa76b866990) = 13",
        "12    1795629697.411059 <... openat resumed>) = 3</tmp/a) = 01>",
        '12    1795629697.411127 write(3</tmp/a) = 01>, "x) = 0 <unfinished ...>", 23) = 23',
        '12    1795629697.411287 openat(AT_FDCWD</tmp>, "b) = -1 ENOENT (x)1", O_WRONLY|O_CREAT|O_CLOEXEC, 0777) = 3</tmp/b) = -1 ENOENT (x)1>',
        r'12    1795629697.411563 openat(AT_FDCWD</tmp>, "c <unfinished ...>1", O_WRONLY|O_CREAT|O_CLOEXEC, 0777) = 3</tmp/c \74unfinished ...\0761>',
        r'12    1795629697.411996 write(3</tmp/c \74unfinished ...\0761>, "x) = 0 <unfinished ...>", 23 <unfinished ...>',
        "12    1795629697.412061 <... write resumed>) = 23",
        '11    1795629697.419109 accept4(3<UNIX-STREAM:[82599,"/tmp/s) = 7<x>"]>, {sa_family=AF_UNIX}, [110 => 2], SOCK_CLOEXEC) = 5<UNIX-STREAM:[82606->82603,"/tmp/s) = 7<x>"]>',
    )
    got = [(e.pid, e.syscall, e.path, e.result, e.data) for e in t.events[1:]]
    assert got == [
        (11, "openat", "/tmp/a) = 01", 3, None),
        (11, "write", "/tmp/a) = 01", 23, "x) = 0 <unfinished ...>"),
        (11, "openat", "/tmp/b) = -1 ENOENT (x)1", 3, None),
        (11, "openat", "/tmp/c <unfinished ...>1", 3, None),
        (11, "write", "/tmp/c <unfinished ...>1", 23, "x) = 0 <unfinished ...>"),
        (11, "accept4", None, 5, None),
    ]
    assert (t.unparsed, t.complete) == (0, True)


def test_normalise_collapses_dots_and_leading_double_slash() -> None:
    assert syn.normalise("/tmp/x/../y/./z/") == "/tmp/y/z"
    assert syn.normalise("//etc//passwd") == "/etc/passwd"
    assert syn.normalise("/") == "/"


# --- network ---------------------------------------------------------------------------------


def test_connect_addresses() -> None:
    t = parse(
        '20    1795628174.072140 connect(4<TCP:[22276]>, {sa_family=AF_INET, sin_port=htons(8443), sin_addr=inet_addr("192.0.2.10")}, 16) = -1 ENETUNREACH (Network is unreachable)',
        '20    1795628174.073154 connect(6<TCPv6:[22278]>, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, 28) = -1 EADDRNOTAVAIL (Cannot assign requested address)',
        '20    1795628174.073625 connect(7<UNIX-STREAM:[22279]>, {sa_family=AF_UNIX, sun_path="/var/run/docker.sock"}, 23) = -1 ENOENT (No such file or directory)',
        '21    1795628332.955754 connect(18<UNIX-STREAM:[25615]>, {sa_family=AF_UNIX, sun_path=@"abstract-name"}, 16) = 0',
        "21    1795628332.956042 bind(19<NETLINK:[25616]>, {sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, 12) = 0",
    )
    got = [(e.kind, e.address, e.errno) for e in t.events]
    assert got == [
        (K.CONNECT, Address(family="inet", host="192.0.2.10", port=8443), "ENETUNREACH"),
        (K.CONNECT, Address(family="inet6", host="2001:db8::1", port=443), "EADDRNOTAVAIL"),
        (K.CONNECT, Address(family="unix", path="/var/run/docker.sock"), "ENOENT"),
        (K.CONNECT, Address(family="unix", path="@abstract-name"), None),
        (K.BIND, Address(family="netlink", port=0), None),
    ]
    # -yy names the socket's protocol: a stream connect sends a SYN, a datagram one nothing
    assert [e.flags for e in t.events] == ["SOCK_STREAM"] * 4 + [None]
    udp = parse(
        '10    1795628826.556004 connect(6<UDPv6:[32148]>, {sa_family=AF_INET6, sin6_port=htons(9), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0',
        '21    1795628332.954209 connect(16<UDP:[25613]>, {sa_family=AF_INET, sin_port=htons(55786), sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
        '21    1795628332.954209 connect(16, {sa_family=AF_INET, sin_port=htons(55786), sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
    )
    assert [e.flags for e in udp.events] == ["SOCK_DGRAM", "SOCK_DGRAM", None]
    assert [e.address.render() for e in t.events if e.address][:3] == [
        "192.0.2.10:8443",
        "[2001:db8::1]:443",
        "unix:/var/run/docker.sock",
    ]


def test_socket_flags_and_sendto_with_an_address() -> None:
    t = parse(
        "20    1795628174.072502 socket(AF_INET, SOCK_DGRAM|SOCK_CLOEXEC, IPPROTO_IP) = 5<UDP:[22277]>",
        '20    1795628174.072674 sendto(5<UDP:[22277]>, "\\0224payload", 9, 0, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("198.51.100.7")}, 16) = -1 ENETUNREACH (Network is unreachable)',
        "20    1795628174.073775 socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0, [8<UNIX-STREAM:[22280->22281]>, 9<UNIX-STREAM:[22281->22280]>]) = 0",
    )
    sock, send, pair = t.events
    assert (sock.kind, sock.flags, sock.result) == (
        K.SOCKET,
        "AF_INET, SOCK_DGRAM|SOCK_CLOEXEC, IPPROTO_IP",
        5,
    )
    assert (send.kind, send.address, send.data, send.size, send.errno) == (
        K.SEND,
        Address(family="inet", host="198.51.100.7", port=53),
        "\\0224payload",
        None,
        "ENETUNREACH",
    )
    assert (pair.kind, pair.flags) == (K.SOCKET, "AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0")


def test_writes_on_sockets_are_sends_to_the_decorated_peer() -> None:
    t = parse(
        '20    1795628174.074210 sendto(8<UNIX-STREAM:[22280->22281]>, "GET / HTTP/1.1\\r\\nHost: x.invalid\\r\\n\\r\\n", 35, 0, NULL, 0) = 35',
        '20    1795628174.074310 write(8<UNIX-STREAM:[22280->22281]>, "raw write on socket", 19) = 19',
        '21    1795628332.953506 write(13<TCP:[127.0.0.1:45968->127.0.0.1:41099]>, "write tcp", 9) = 9',
        '21    1795628332.954364 sendto(16<UDP:[127.0.0.1:59887->127.0.0.1:55786]>, "udp connected", 13, 0, NULL, 0) = 13',
        '10    1795628826.555349 sendto(4<TCPv6:[[::1]:56342->[::1]:50971]>, "over v6", 7, 0, NULL, 0) = 7',
        '10    1795628826.555721 recvfrom(5<TCPv6:[[::1]:50971->[::1]:56342]>, "over v6", 100, 0, NULL, NULL) = 7',
    )
    got = [(e.syscall, e.kind, e.address, e.size, e.data, e.path) for e in t.events]
    assert got == [
        (
            "sendto",
            K.SEND,
            Address(family="unix"),
            35,
            "GET / HTTP/1.1\\r\\nHost: x.invalid\\r\\n\\r\\n",
            None,
        ),
        ("write", K.SEND, Address(family="unix"), 19, "raw write on socket", None),
        ("write", K.SEND, Address(family="inet", host="127.0.0.1", port=41099), 9, "write tcp", None),
        ("sendto", K.SEND, Address(family="inet", host="127.0.0.1", port=55786), 13, "udp connected", None),
        ("sendto", K.SEND, Address(family="inet6", host="::1", port=50971), 7, "over v6", None),
        ("recvfrom", K.RECV, Address(family="inet6", host="::1", port=56342), 7, "over v6", None),
    ]


def test_unix_socket_writes_get_the_path_of_the_earlier_connect() -> None:
    t = parse(
        "11    1795629697.419540 socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0) = 7<UNIX-STREAM:[82615]>",
        '11    1795629697.419601 connect(7<UNIX-STREAM:[82615]>, {sa_family=AF_UNIX, sun_path=@"peer"}, 7) = 0',
        '11    1795629697.419660 write(7<UNIX-STREAM:[82615]>, "to peer", 7) = 7',
        '11    1795629697.419254 sendto(4<UNIX-STREAM:[82603->82606]>, "hi", 2, 0, NULL, 0) = 2',
    )
    write, sendto = t.events[2:]
    assert (write.kind, write.address) == (K.SEND, Address(family="unix", path="@peer"))
    assert sendto.address == Address(family="unix")  # socketpair-style: no path known


def test_listen_accept_and_message_calls() -> None:
    t = parse(
        "21    1795628332.948116 listen(12<TCP:[127.0.0.1:41099]>, 1) = 0",
        '21    1795628332.955514 listen(17<UNIX-STREAM:[25614,@"abstract-name"]>, 1) = 0',
        '21    1795628332.952523 accept4(12<TCP:[127.0.0.1:41099]>, {sa_family=AF_INET, sin_port=htons(45968), sin_addr=inet_addr("127.0.0.1")}, [16], SOCK_CLOEXEC) = 14<TCP:[127.0.0.1:41099->127.0.0.1:45968]>',
        '21    1795628332.954646 sendmsg(15<UDP:[127.0.0.1:55786]>, {msg_name={sa_family=AF_INET, sin_port=htons(5353), sin_addr=inet_addr("198.51.100.9")}, msg_namelen=16, msg_iov=[{iov_base="sm", iov_len=2}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = -1 ENETUNREACH (Network is unreachable)',
        '21    1795628332.955153 recvmsg(16<UDP:[127.0.0.1:59887->127.0.0.1:55786]>, {msg_name={sa_family=AF_INET, sin_port=htons(55786), sin_addr=inet_addr("127.0.0.1")}, msg_namelen=16, msg_iov=[{iov_base="sm2", iov_len=100}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = 3',
        '21    1795628332.954525 recvfrom(15<UDP:[127.0.0.1:55786]>, "udp connected", 100, 0, {sa_family=AF_INET, sin_port=htons(59887), sin_addr=inet_addr("127.0.0.1")}, [16]) = 13',
    )
    got = [(e.kind, e.address.render() if e.address else None, e.data, e.size) for e in t.events]
    assert got == [
        (K.LISTEN, "127.0.0.1:41099", None, None),
        (K.LISTEN, "unix:@abstract-name", None, None),
        (K.OTHER, "127.0.0.1:45968", None, None),
        (K.SEND, "198.51.100.9:5353", "sm", None),
        (K.RECV, "127.0.0.1:55786", "sm2", 3),
        (K.RECV, "127.0.0.1:59887", "udp connected", 13),
    ]


def test_each_message_of_a_sendmmsg_is_its_own_send() -> None:
    # captured in the sandbox: three datagrams, each to its own peer, loopback first
    line = '105   1796409790.280236 sendmmsg(4<UDP:[11636698]>, [{msg_hdr={msg_name={sa_family=AF_INET, sin_port=htons(5353), sin_addr=inet_addr("127.0.0.1")}, msg_namelen=16, msg_iov=[{iov_base="ping", iov_len=4}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=4}, {msg_hdr={msg_name={sa_family=AF_INET, sin_port=htons(5353), sin_addr=inet_addr("192.0.2.77")}, msg_namelen=16, msg_iov=[{iov_base="mmsg-two", iov_len=8}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=8}, {msg_hdr={msg_name={sa_family=AF_INET, sin_port=htons(5353), sin_addr=inet_addr("198.51.100.9")}, msg_namelen=16, msg_iov=[{iov_base="mmsg-three", iov_len=10}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=10}], 3, 0) = 3'
    t = parse(line)
    got = [(e.kind, e.syscall, e.address.render() if e.address else None, e.data) for e in t.events]
    assert got == [
        (K.SEND, "sendmmsg", "127.0.0.1:5353", "ping"),
        (K.SEND, "sendmmsg", "192.0.2.77:5353", "mmsg-two"),
        (K.SEND, "sendmmsg", "198.51.100.9:5353", "mmsg-three"),
    ]


def test_a_message_cannot_forge_another_message_of_its_sendmmsg() -> None:
    # a message's bytes spelling a further element stay inside its (escaped) string
    fake = r"\"}, msg_len=1}, {msg_hdr={msg_name={sa_family=AF_INET, sin_port=htons(1), sin_addr=inet_addr(\"10.0.0.1\")}"
    vector = (
        '[{msg_hdr={msg_name={sa_family=AF_INET, sin_port=htons(5353), sin_addr=inet_addr("192.0.2.77")}, '
        'msg_namelen=16, msg_iov=[{iov_base="' + fake + '", iov_len=9}], msg_iovlen=1, msg_controllen=0, '
        "msg_flags=0}, msg_len=9}]"
    )
    t = parse("7     1796409790.280236 sendmmsg(4<UDP:[11636698]>, " + vector + ", 1, 0) = 1")
    assert [e.address.render() if e.address else None for e in t.events] == ["192.0.2.77:5353"]
    assert syn.mmsg_elements(vector, 8) == [vector[1:-1]]


def test_both_recorders_keep_as_many_messages_of_a_sendmmsg() -> None:
    from sandbox.runner.ebpf_program import MMSG_CAP as EBPF_CAP
    from sandbox.trace.strace.syscalls import MMSG_CAP

    assert MMSG_CAP == EBPF_CAP


def test_netlink_send_and_writev() -> None:
    extra = (DATA / "extra-behaviours.strace").read_text().splitlines()
    netlink = next(line for line in extra if line.startswith("21    1795628332.956180 sendto("))
    t = parse(
        netlink,
        '21    1795628332.943885 writev(4</tmp/x/y/g.txt>, [{iov_base="vec1-", iov_len=5}, {iov_base="vec2\\n", iov_len=5}], 2) = 10',
        '21    1795628332.944130 pwritev2(4</tmp/x/y/g.txt>, [{iov_base="a", iov_len=1}, {iov_base="b", iov_len=1}], 2, 0, 0) = 2',
        '21    1795628332.944012 pwrite64(4</tmp/x/y/g.txt>, "pw", 2, 0) = 2',
        "21    1795628332.946047 sendfile(6</tmp/copy>, 7</etc/hostname>, [0] => [13], 100) = 13",
    )
    nl, writev, pwritev2, pwrite, sendfile = t.events
    assert (nl.kind, nl.address, nl.size, nl.data) == (K.SEND, Address(family="netlink", port=0), 20, None)
    assert (writev.kind, writev.path, writev.data, writev.size) == (
        K.FILE_WRITE,
        "/tmp/x/y/g.txt",
        "vec1-vec2\\n",
        10,
    )
    assert (pwritev2.data, pwrite.data, pwrite.size) == ("ab", "pw", 2)
    assert (sendfile.kind, sendfile.path, sendfile.path2, sendfile.size) == (
        K.FILE_WRITE,
        "/tmp/copy",
        "/etc/hostname",
        13,
    )


def test_parse_sockaddr_pointer_is_degraded() -> None:
    assert syn.parse_sockaddr("0x7ffe0983d4e0") == (None, True)
    assert syn.parse_sockaddr("NULL") == (None, False)
    assert syn.parse_sockaddr("{sa_family=AF_UNIX}") == (Address(family="unix"), False)


# --- ptrace, privileged ------------------------------------------------------------------------


def test_ptrace_family_and_privileged_calls() -> None:
    t = parse(
        "21    1795628333.059600 pidfd_open(22, 0) = 20<pid:22>",
        "21    1795628333.059846 pidfd_getfd(20<pid:22>, 0</dev/null<char 1:3>>, 0) = 21</dev/null<char 1:3>>",
        "21    1795628333.060021 ptrace(PTRACE_ATTACH, 22) = -1 EPERM (Operation not permitted)",
        "21    1795628333.060081 process_vm_readv(22, NULL, 0, NULL, 0, 0) = 0",
        "18    1795628474.218761 ptrace(PTRACE_TRACEME) = -1 EPERM (Operation not permitted)",
        "18    1795628474.218236 tkill(18, SIGCONT) = 0",
        '18    1795628474.217056 mount("none", "/mnt", "tmpfs", 0, NULL) = -1 EPERM (Operation not permitted)',
        '18    1795628474.217254 umount2("/mnt", 0) = -1 EPERM (Operation not permitted)',
        "21    1795628332.956654 unshare(CLONE_NEWUSER) = 0",
        "18    1795628474.217376 keyctl(KEYCTL_GET_KEYRING_ID, 0, -1503023238) = -1 EINVAL (Invalid argument)",
    )
    got = [(e.syscall, e.kind, e.target, e.path, e.flags) for e in t.events]
    assert got == [
        ("pidfd_open", K.OTHER, 22, None, None),
        ("pidfd_getfd", K.PTRACE, 22, None, None),
        ("ptrace", K.PTRACE, 22, None, "PTRACE_ATTACH"),
        ("process_vm_readv", K.PTRACE, 22, None, None),
        ("ptrace", K.PTRACE, None, None, "PTRACE_TRACEME"),
        ("tkill", K.SIGNAL, 18, None, "SIGCONT"),
        ("mount", K.PRIVILEGED, None, "/mnt", '"none", "/mnt", "tmpfs", 0, NULL'),
        ("umount2", K.PRIVILEGED, None, "/mnt", None),
        ("unshare", K.PRIVILEGED, None, None, "CLONE_NEWUSER"),
        ("keyctl", K.PRIVILEGED, None, None, "KEYCTL_GET_KEYRING_ID, 0, -1503023238"),
    ]


# --- whole captures ------------------------------------------------------------------------------


def test_behaviours_capture() -> None:
    t = data_file("behaviours.strace")
    assert (t.lines, t.unparsed, t.degraded, t.complete) == (839, 0, 0, True)
    connects = {e.address.render() for e in t.events if e.kind is K.CONNECT and e.address}
    assert {
        "192.0.2.10:8443",
        "[2001:db8::1]:443",
        "203.0.113.5:4444",
        "unix:/var/run/docker.sock",
        "192.0.2.1:80",
    } <= connects
    # the capture ran as uid 1000: the key read is of /home/dev/.ssh/id_rsa and failed
    key = only(t, kind=K.FILE_READ, path="/home/dev/.ssh/id_rsa")
    assert key.failed and key.errno == "ENOENT"
    curl = only(t, kind=K.EXEC, path="/usr/bin/curl")
    assert (curl.pid, curl.argv, curl.result) == (25, ("curl", "-s", "http://192.0.2.1/"), 0)
    argvs = {p.pid: (p.ppid, p.argv, p.exit_code) for p in t.processes}
    assert argvs == {
        20: (1, ("python3", "/cap/behave.py"), 0),
        22: (20, ("sleep", "0.2"), 0),
        23: (20, ("python3", "/cap/behave.py"), 255),  # its execve of /nonexistent/bin failed
        24: (20, ("sh", "-c", "echo hi > /tmp/marker; curl -s http://192.0.2.1/ || true"), 0),
        25: (24, ("curl", "-s", "http://192.0.2.1/"), 7),
        26: (20, ("python3", "/cap/behave.py"), 3),
    }
    assert [e.pid for e in t.events if e.kind is K.EXIT] == [23, 22, 25, 24, 26, 20]
    assert {e.pid for e in t.events} == set(argvs)  # thread 21 folded into 20
    assert only(t, kind=K.SIGNAL).errno == "EPERM"
    assert only(t, kind=K.FILE_WRITE, path="/tmp/marker", syscall="write").pid == 24
    assert [e.seq for e in t.events] == list(range(len(t.events)))


def test_pip_install_capture() -> None:
    t = data_file("pip-install-requests.strace.gz")
    assert (t.lines, t.unparsed, t.degraded, t.complete, t.truncated_strings) == (8584, 0, 0, True, 160)
    # every line is an event except the 3 exit_group calls, 2 --- SIGCHLD --- lines and the
    # 7 lines that resume an earlier call; the +++ lines are the 3 EXIT events
    assert len(t.events) == 8584 - 3 - 2 - 7
    by_kind: dict[EventKind, int] = {}
    for e in t.events:
        by_kind[e.kind] = by_kind.get(e.kind, 0) + 1
    assert by_kind[K.FILE_RENAME] == 92 and by_kind[K.DIR_CREATE] == 204 and by_kind[K.EXIT] == 3
    assert [(p.pid, p.ppid, p.argv[:1], p.exit_code) for p in t.processes] == [
        (38, 1, ("/home/dev/v/bin/python",), 0),
        (39, 38, ("/home/dev/v/bin/python",), 255),  # lsb_release not found: never exec'd
        (40, 38, ("uname",), 0),
    ]
    writes = [e.path for e in t.events if e.kind is K.FILE_WRITE and e.syscall == "write" and e.path]
    assert all(path.startswith(("/home/dev/v/", "/tmp/")) for path in writes)
    assert all(e.path.startswith("/") for e in t.events if e.path)


def test_privileged_capture_ends_with_a_call_that_never_resumed() -> None:
    t = data_file("privileged.strace")
    assert (t.unparsed, t.complete) == (0, False)
    # events follow start lines: the wait4 sits where it began, kept without a result
    wait4 = only(t, pid=18, syscall="wait4", result=None)
    assert wait4.time == 1795628474.231979 and wait4.seq < t.events[-1].seq
    kinds = {e.syscall for e in t.events if e.kind is K.PRIVILEGED}
    assert {
        "mount",
        "umount2",
        "keyctl",
        "add_key",
        "perf_event_open",
        "setns",
        "finit_module",
        "delete_module",
        "setgid",
        "capset",
    } <= kinds
    assert proc(t, 21).end is None  # sleep 30 was still running


def test_extra_capture() -> None:
    t = data_file("extra-behaviours.strace")
    assert (t.unparsed, t.complete, t.degraded, t.truncated_strings) == (0, True, 1, 5)
    assert {p.pid: p.killed_by for p in t.processes if p.killed_by} == {
        22: "SIGKILL",
        23: "SIGABRT (core dumped)",
    }
    assert only(t, syscall="clone3", target=27).flags == "thread"
    assert {e.pid for e in t.events} == {p.pid for p in t.processes}


def test_hostile_names_capture() -> None:
    t = data_file("hostile-names.strace")
    assert (t.unparsed, t.degraded, t.complete) == (0, 0, True)
    opened = {e.path for e in t.events if e.syscall == "openat" and e.path and e.path.startswith("/tmp/")}
    assert {
        "/tmp/a) = 01",
        "/tmp/b) = -1 ENOENT (x)2",
        "/tmp/c <unfinished ...>1",
        "/tmp/d) = 5<e>2",
        '/tmp/f", O_RDONLY) = 3</g>1',
    } <= opened
    assert {e.result for e in t.events if e.syscall == "write" and e.path and e.path.startswith("/tmp/")} == {
        23
    }
    sends = [(e.address.render() if e.address else None, e.data) for e in t.events if e.kind is K.SEND]
    assert sends == [("unix:/tmp/s) = 7<x>", "hi"), ("unix:/tmp/s) = 7<x>", "w"), ("unix:@peer", "to peer")]


@pytest.mark.parametrize("name", DATA_FILES)
def test_fast_path_agrees_with_the_general_path(name: str) -> None:
    fast, slow = data_file(name, True), data_file(name, False)
    assert fast.model_dump() == slow.model_dump()


def test_parse_strace_file_plain_gzip_and_bad_bytes(tmp_path: Path) -> None:
    line = b'20    1795628174.069429 mkdir("d1", 0777) = 0\n'
    plain = tmp_path / "t.strace"
    plain.write_bytes(b"\xff\xfe garbage\n" + line)
    packed = tmp_path / "t.strace.gz"
    packed.write_bytes(gzip.compress(line))
    a = parse_strace_file(plain, Phase.INSTALL, seq_start=5)
    b = parse_strace_file(packed, Phase.INSTALL)
    assert (a.unparsed, a.events[0].seq, a.events[0].path) == (1, 5, "d1")
    assert "\ufffd" in a.unparsed_samples[0]
    assert b.events[0].path == "d1"


def test_pid_reuse_makes_a_new_process() -> None:
    text = (DATA / "behaviours.strace").read_text()
    t = parse_strace(text + text, Phase.INSTALL)
    assert len(t.processes) == 12 and t.unparsed == 0
    assert [p.pid for p in t.processes] == [20, 22, 23, 24, 25, 26] * 2


# --- event construction ------------------------------------------------------------------------------


def test_fast_event_construction_matches_model_construct() -> None:
    assert strace_mod.make_event is strace_mod._make_event_fast
    e = data_file("behaviours.strace").events[543]
    twin = Event.model_construct(**e.__dict__)
    assert e == twin and e.model_dump_json() == twin.model_dump_json()
    assert Event.model_validate(e.model_dump()) == e  # the values are valid, too
    assert e.model_fields_set == twin.model_fields_set
    changed = e.model_copy(update={"pid": 1})
    assert (changed.pid, e.pid) == (1, 20)
    assert copy.deepcopy(e) == e and pickle.loads(pickle.dumps(e)) == e
    with pytest.raises(TypeError):
        e.model_fields_set.add("x")


def test_events_and_processes_validate_as_models() -> None:
    t = data_file("extra-behaviours.strace")
    assert ParsedTrace.model_validate(t.model_dump()) == t


# --- robustness ------------------------------------------------------------------------------------

REAL_LINES = [
    line
    for name in ("behaviours.strace", "extra-behaviours.strace", "hostile-names.strace", "privileged.strace")
    for line in (DATA / name).read_text().splitlines()
    if len(line) < 600
]


def _check(t: ParsedTrace) -> None:
    assert 0 <= t.unparsed <= t.lines
    assert len(t.unparsed_samples) <= 20
    assert [e.seq for e in t.events] == list(range(len(t.events)))
    for e in t.events:
        assert e.path is None or e.path.startswith("/") or t.degraded


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    _check(parse_strace(text, Phase.INSTALL))


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    _check(parse_strace(data.decode("utf-8", "surrogateescape"), Phase.INSTALL))
    _check(parse_strace(data.decode("utf-8", "replace"), Phase.INSTALL))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(REAL_LINES),
            st.integers(0, 600),
            st.sampled_from(["", "(", ")", '"', "<", ">", " = ", "\\", ", "]),
        ),
        max_size=30,
    )
)
def test_cut_and_spliced_real_lines_never_raise(pieces: list[tuple[str, int, str]]) -> None:
    text = "\n".join(line[:cut] + junk + line[cut:] for line, cut, junk in pieces)
    _check(parse_strace(text, Phase.INSTALL))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(REAL_LINES), max_size=40))
def test_spliced_real_lines_agree_on_both_paths(lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines)
    parsers = [strace_mod._Parser(Phase.INSTALL, None) for _ in range(2)]
    parsers[1].fast_path = False
    fast, slow = (p.run(text, 0) for p in parsers)
    assert fast.model_dump() == slow.model_dump()


TOKENS = [*'0123456789 .()<>"\\,=-+[]{}/aAE_?\n', " = ", "1 1.0 ", "\n2 2.0 ", " <unfinished ...>"]
TOKENS += [
    "<... openat resumed>",
    "AT_FDCWD</t>",
    "openat(",
    "newfstatat(",
    "mkdir(",
    "getdents64(",
    "clone(",
]
TOKENS += ["CLONE_THREAD", "+++ exited with 1 +++", '"/a"', ") = 0", ") = 3</x>"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=120).map("".join))
def test_token_soup_agrees_on_both_paths(text: str) -> None:
    parsers = [strace_mod._Parser(Phase.INSTALL, None) for _ in range(2)]
    parsers[1].fast_path = False
    fast, slow = (p.run(text, 0) for p in parsers)
    _check(fast)
    assert fast.model_dump() == slow.model_dump()
