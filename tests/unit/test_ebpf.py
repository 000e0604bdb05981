"""The eBPF recorder's program generator and decoder, on records bpftrace really printed.

tests/data/ebpf/python-probe.trace: the recorder's program (sandbox.runner.ebpf_program)
run by bpftrace 0.17 on this machine kind against a container of the base image, while
``python3 /tmp/t.py`` ran as uid 1000 in it, t.py being:

    os.chdir('/tmp'); open('/tmp/x','w'); os.mkdir('d'); os.chdir('d'); open('rel.txt','w')
    os.rename('rel.txt','r2.txt'); os.symlink('r2.txt','ln'); os.unlink('ln'); os.chmod('r2.txt',0o755)
    fd = os.open('/tmp', O_RDONLY|O_DIRECTORY); os.mkdir('viafd', dir_fd=fd); os.fchdir(fd)
    open('after-fchdir','w')
    a.send(b'x'); a.sendmsg([b'msgdata'])          # a socketpair
    u.sendto(b'to-testnet\\n"q"\\\\', ('192.0.2.5', 53))  # ENETUNREACH (no route)
    s.connect('\\0abstract')                       # AF_UNIX, ECONNREFUSED
    libc.unshare(CLONE_NEWUSER); libc.mount(...)   # EPERM
    a thread; sh -c 'echo hi > /tmp/o; exit 3'; sh -c 'kill -9 $$'
    os.kill(os.getpid(), 0); os.execv('/nonexistent', ['nope'])
"""

from __future__ import annotations

import re
from pathlib import Path

from sandbox.models import EventKind, Phase
from sandbox.runner.ebpf_program import MAP_KEYS_MIN, MMSG_CAP, STRLEN, build_program, map_keys
from sandbox.trace.ebpf import CUT, StepWindow, parse_ebpf

DATA = Path(__file__).parent.parent / "data" / "ebpf" / "python-probe.trace"
FORGED = DATA.with_name("forged-record.trace")
REUSED = DATA.with_name("fd-reuse.trace")
RACED = DATA.with_name("toctou.trace")
EXEC_RACED = DATA.with_name("exec-race.trace")
ROOT = ("setpriv", "--reuid=1000", "--no-new-privs", "--bounding-set=-all", "--", "python3", "/tmp/t.py")


def _text() -> str:
    return DATA.read_bytes().decode("utf-8", "backslashreplace")


def _window(start: int = 0, key: str = "import.0") -> StepWindow:
    return StepWindow(
        key=key,
        phase=Phase.IMPORT,
        start_ns=start,
        cwd="/home/dev/project",
        main_pid=7,
        root_argv=ROOT,
        root_exe="/usr/bin/setpriv",
    )


# Offsets of kernel 6.18 on this machine kind (sandbox.runner.btf.kernel_offsets).
OFFSETS = {
    "task.tgid": 1268,
    "task.real_parent": 1280,
    "task.group_leader": 1328,
    "task.thread_pid": 1368,
    "task.nsproxy": 1840,
    "task.files": 1824,
    "task.exit_code": 1164,
    "task.signal": 1848,
    "task.mm": 1136,
    "mm.arg_start": 488,
    "mm.arg_end": 496,
    "signal.group_exit_code": 96,
    "nsproxy.pid_ns": 32,
    "pidns.inum": 136,
    "pid.numbers": 144,
    "upid.nr": 0,
    "upid.size": 16,
    "files.fdt": 32,
    "fdt.fd": 8,
    "file.inode": 32,
    "file.private": 24,
    "inode.mode": 0,
    "inode.ino": 64,
    "inode.sb": 40,
    "sb.dev": 16,
    "socket.sk": 24,
    "sk.family": 16,
    "sk.dport": 12,
    "sk.daddr": 0,
    "sk.v6_daddr": 56,
}


def test_program_filters_on_namespace_and_uid_in_every_probe() -> None:
    prog = build_program(4026532182, 1000, 1, OFFSETS)
    probes = [line for line in prog.splitlines() if line.startswith("tracepoint:")]
    assert len(probes) >= 10
    # curtask->nsproxy->pid_ns_for_children->ns.inum, at literal offsets
    inum = "*(uint32*)(*(uint64*)(*(uint64*)((uint64)curtask + 1840) + 32) + 136)"
    flt = f"/ (uid == 1000 && {inum} == 4026532182) /"
    assert all(flt in p for p in probes)
    # the prelude: the one type the exec tracepoint's format names that the empty BTF lacks
    assert prog.startswith("#define pid_t int\nBEGIN {") and "READY" in prog.splitlines()[1]
    assert any(p.startswith("tracepoint:sched:sched_process_exec /") for p in probes)
    assert "+ 1368) + 160)" in prog  # thread_pid->numbers[1].nr: the container's level-1 pid
    assert "curtask->" not in prog and "struct " not in prog  # no clang parse of kernel headers


def test_every_string_record_ends_with_the_nonce_and_the_marker_is_the_hosts_own() -> None:
    prog = build_program(4026532182, 1000, 1, OFFSETS, nonce="5eed", sync=4321)
    formats = re.findall(r'printf\("([^"]*)"', prog)
    with_string = [f for f in formats if "%s" in f or "%r" in f]
    assert len(with_string) >= 10
    assert all(f.endswith("\\x1f5eed\\n") for f in with_string), with_string
    assert 'printf("\\x1eREADY 5eed\\n")' in prog
    (marker,) = [p for p in prog.splitlines() if "SYNC" in p]
    # its own tracepoint (not raw_syscalls'), this host process only
    assert marker.startswith("tracepoint:syscalls:sys_enter_sched_get_priority_max / pid == 4321 /")
    # without a nonce (the recorded test traces), the formats are as before
    assert "5eed" not in build_program(4026532182, 1000, 1, OFFSETS)


def test_program_needs_every_offset() -> None:
    for name in OFFSETS:
        partial = {k: v for k, v in OFFSETS.items() if k != name}
        try:
            build_program(4026532182, 1000, 1, partial)
        except KeyError:
            continue
        raise AssertionError(f"{name} unused")


def test_decodes_the_captured_run() -> None:
    trace = parse_ebpf(_text(), [_window()])
    assert trace.ready and trace.complete and trace.lost == 0 and trace.unparsed == 0
    parsed = trace.steps["import.0"]
    evs = parsed.events
    assert [e.seq for e in evs] == list(range(len(evs)))

    def one(syscall: str, **want: object) -> None:
        hits = [e for e in evs if e.syscall == syscall and all(getattr(e, k) == v for k, v in want.items())]
        assert hits, (syscall, want, [e for e in evs if e.syscall == syscall])

    one("openat", kind=EventKind.FILE_WRITE, path="/tmp/x", flags="O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC")
    one("mkdir", kind=EventKind.DIR_CREATE, path="/tmp/d")
    one("openat", kind=EventKind.FILE_WRITE, path="/tmp/d/rel.txt")  # relative: chdir learnt
    one("rename", kind=EventKind.FILE_RENAME, path="/tmp/d/rel.txt", path2="/tmp/d/r2.txt")
    one("symlink", kind=EventKind.FILE_LINK, path="/tmp/d/ln", path2="/tmp/d/r2.txt")
    one("unlink", kind=EventKind.FILE_DELETE, path="/tmp/d/ln")
    one("chmod", kind=EventKind.FILE_CHMOD, path="/tmp/d/r2.txt", flags="0o755")
    one("mkdirat", path="/tmp/viafd")  # dirfd from the fd table
    one("openat", path="/tmp/after-fchdir")  # cwd from fchdir
    one("sendto", kind=EventKind.SEND, errno="ENETUNREACH", data='to-testnet\\n\\"q\\"\\\\')
    send = next(e for e in evs if e.syscall == "sendto" and e.errno == "ENETUNREACH")
    assert send.address is not None and send.address.render() == "192.0.2.5:53"
    one("sendmsg", kind=EventKind.SEND, data="msgdata", size=7)
    conn = next(e for e in evs if e.syscall == "connect")
    assert conn.address is not None and conn.address.path == "@abstract" and conn.errno == "ECONNREFUSED"
    assert conn.flags == "SOCK_STREAM"  # the type its socket() record gave, as strace's -yy says
    one("unshare", kind=EventKind.PRIVILEGED, errno="EPERM")
    one("mount", kind=EventKind.PRIVILEGED, errno="EPERM")
    one("clone", kind=EventKind.SPAWN, flags="thread")
    one("kill", kind=EventKind.SIGNAL, target=15, flags="SIGKILL", pid=15)
    one("execve", kind=EventKind.EXEC, path="/nonexistent", argv=("nope",), errno="ENOENT")
    one("execve", path="/bin/sh", argv=("/bin/sh", "-c", "echo hi > /tmp/o; exit 3"), pid=14)
    one("openat", path="/tmp/o", pid=14)
    # the spawn precedes the child's events (vfork returns in the parent last)
    spawn = next(e for e in evs if e.syscall == "vfork" and e.target == 14)
    first_child = min(e.seq for e in evs if e.pid == 14)
    assert spawn.seq < first_child and spawn.pid == 7
    assert not [e for e in evs if e.kind is EventKind.SPAWN and e.result == 0]  # children's returns
    procs = {p.pid: p for p in parsed.processes}
    assert procs[14].ppid == 7 and procs[14].exit_code == 3 and procs[14].exe == "/bin/sh"
    assert procs[15].killed_by == "SIGKILL" and procs[15].exit_code is None
    assert procs[7].exit_code == 0 and procs[7].execs[0] == ROOT  # the harness's exec, stated
    assert evs[0].syscall == "execve" and evs[0].argv == ROOT


def test_lost_events_make_the_trace_incomplete() -> None:
    text = _text()
    cut = text.index("\x1eS ")
    flooded = text[:cut] + "Lost 17 events\n" + text[cut:] + "Lost 3 events\n"
    trace = parse_ebpf(flooded, [_window()])
    assert trace.lost == 20 and not trace.complete
    assert trace.unparsed == 0  # the notices are not records


def test_a_full_map_makes_the_trace_incomplete() -> None:
    # the program prints FULL when a thread's stashed arguments did not fit its maps
    text = _text()
    cut = text.index("\x1eS ")
    trace = parse_ebpf(text[:cut] + "\x1eFULL\n" + text[cut:], [_window()])
    assert trace.lost == 1 and not trace.complete and trace.unparsed == 0
    assert parse_ebpf(text, [_window()]).complete


def test_maps_are_sized_by_the_pids_limit_and_checked_after_every_stash() -> None:
    assert map_keys(512) == MAP_KEYS_MIN and map_keys(4000) == 16000
    program = build_program(4026532000, 1000, 1, OFFSETS)
    enter = next(line for line in program.splitlines() if "raw_syscalls:sys_enter" in line)
    assert enter.index("@a5[tid] = $id;") < enter.index('if (@a5[tid] != $id) { printf("\\x1eFULL\\n"); }')
    # the syscall table fits the smallest maps with room to spare
    assert program.count("@want[") < MAP_KEYS_MIN // 8


def test_a_record_separator_inside_a_string_fails_closed() -> None:
    text = _text().replace("after-fchdir", "after\x1eP 2 1 2 3 7 7 1 0 0\x1f/forged", 1)
    trace = parse_ebpf(text, [_window()])
    assert not trace.complete and trace.unparsed >= 1


def test_a_well_formed_forged_record_leaves_its_host_record_without_the_nonce() -> None:
    # Captured (tests/integration/test_redteam18.py's fixture): a symlink whose target
    # holds "\\n\\x1ea ...\\x1f" reaches ~/.ssh through a directory of that name; the
    # mkdir's and the symlink's records each split in two well-formed records.
    text = FORGED.read_bytes().decode("utf-8", "backslashreplace")
    nonce = text.split("\x1e")[1].split()[1]
    trace = parse_ebpf(text, [_window()])
    assert trace.unparsed == 2 and not trace.complete
    assert all("/tmp/yq" in s and nonce not in s for s in trace.samples)
    # without the nonce (the program before it) both halves parsed, and the key read
    # came out as a read of /tmp/yq/id_rsa: nothing for a credential rule
    old = parse_ebpf(text.replace(f"\x1f{nonce}\n", "\n").replace(f"READY {nonce}", "READY"), [_window()])
    assert old.complete
    opened = [e.path for e in old.steps["import.0"].events if e.syscall == "openat"]
    assert "/tmp/yq/id_rsa" in opened and not any(".ssh" in (p or "") for p in opened)


def test_a_closed_fd_reused_by_fcntl_dupfd_and_dotdot_after_a_link() -> None:
    # Captured (tests/integration/test_redteam18.py's fixtures, one import): fd 5 was
    # /tmp, closed (U close), then fcntl(F_DUPFD, 5) made it a copy of HOME's fd 4; a
    # symlink /tmp/lq -> ~/.cache, then a stat of /tmp/lq/../.ssh/id_rsa.
    text = REUSED.read_bytes().decode()
    window = _window(key="import.0").model_copy(update={"main_pid": 57, "root_argv": ()})
    events = parse_ebpf(text, [window]).steps["import.0"].events
    opened = [e.path for e in events if e.syscall == "openat"]
    assert opened[-1] == "/home/dev/.ssh/id_rsa", opened
    (link,) = [e for e in events if e.syscall == "symlink"]
    assert (link.path, link.path2) == ("/tmp/lq", "/home/dev/.cache")
    (stat,) = [e for e in events if e.syscall == "newfstatat"]
    # lstat-like calls keep the literal last component, but ``..`` after the link
    # climbs from its target, as the kernel walks it
    assert stat.path == "/home/dev/.ssh/id_rsa"
    # before close and fcntl were recorded the fd table kept /tmp for 5
    old = "\x1e".join(text.split("\x1e")[:1]) + "".join(
        "\x1e" + c for c in text.split("\x1e")[1:] if not c.startswith("U ")
    )
    events = parse_ebpf(old, [window]).steps["import.0"].events
    assert [e.path for e in events if e.syscall == "openat"][-1] == "/tmp/.ssh/id_rsa"


def test_no_ready_record_is_incomplete() -> None:
    trace = parse_ebpf(_text().replace("\x1eREADY\n", ""), [_window()])
    assert not trace.ready and not trace.complete


def test_records_split_by_step_start() -> None:
    text = _text()
    kill_ns = int(next(c for c in text.split("\x1e") if c.startswith("K 62 ")).split()[2])
    first, second = _window(0, "startup.a"), _window(kill_ns, "startup.b")
    trace = parse_ebpf(text, [second, first])
    a, b = trace.steps["startup.a"], trace.steps["startup.b"]
    assert a.events and b.events
    assert max(e.time for e in a.events) < min(e.time for e in b.events)
    assert any(e.syscall == "kill" for e in b.events) and not any(e.syscall == "kill" for e in a.events)
    assert trace.stray == 0
    late = parse_ebpf(text, [_window(kill_ns)])
    assert late.stray > 0  # records before the first step belong to no step


def test_wall_offset_and_garbage_never_raise() -> None:
    trace = parse_ebpf(_text(), [_window()], wall_offset=1_700_000_000.0)
    assert all(e.time > 1_700_000_000 for e in trace.steps["import.0"].events)
    junk = parse_ebpf("\x1eQ nonsense\n\x1eP 1 2\n\x1e\n", [_window()])
    assert junk.unparsed == 3 and not junk.complete


def test_the_abbreviated_module_list_of_a_step_comes_back_from_setprivs_exec() -> None:
    """The agent's import step record says ``<2 modules>``; setpriv's exec of choom
    (before any candidate code) carries the real names: the stated root exec gets
    them, so the harness lineage (setpriv → choom → CMD) matches as under strace."""
    drop = ("setpriv", "--reuid=1000", "--", "choom", "-n", "1000", "--")
    cmd = ("/v/bin/python", "/opt/run/import.py")
    window = StepWindow(
        key="import.0",
        phase=Phase.IMPORT,
        start_ns=0,
        main_pid=7,
        root_argv=(*drop, *cmd, "<2 modules>"),
        root_exe="/usr/bin/setpriv",
    )
    hdr = "59 {t} 900 900 7 7 800"
    argv = ("choom", "-n", "1000", "--", *cmd, "alpha", "beta")

    def exec_records(t: int, path: str, ret: int, argv: tuple[str, ...] = argv) -> list[str]:
        recs = [f"\x1eE {hdr.format(t=t)} 0 0\x1f{path}\n"]
        recs += [f"\x1ea {t + 1} 900 {i}\x1f{a}\n" for i, a in enumerate(argv)]
        return [*recs, f"\x1ee {hdr.format(t=t + 2)} {ret}\n"]

    text = "\x1eREADY\n" + "".join(
        exec_records(10, "/v/bin/choom", -2) + exec_records(20, "/usr/bin/choom", 0)
    )
    evs = parse_ebpf(text, [window]).steps["import.0"].events
    execs = [e for e in evs if e.kind is EventKind.EXEC]
    assert execs[0].argv == (*drop[:3], *argv)  # completed
    assert [e.errno for e in execs[1:]] == ["ENOENT", None]
    # a list that does not agree is left as stated
    other = "".join(exec_records(20, "/usr/bin/choom", 0, (*argv, "gamma")))
    evs = parse_ebpf("\x1eREADY\n" + other, [window]).steps["import.0"].events
    assert next(e for e in evs if e.kind is EventKind.EXEC).argv == window.root_argv


def test_a_path_cut_at_the_read_limit_is_marked_and_matches_no_file() -> None:
    # bpftrace prints STRLEN - 1 bytes of a longer string: padding such as /./././ can
    # push ".ssh/id_rsa" past them, so the decoder marks the path as cut (vet.py then
    # looks again under strace) rather than judge its start as the whole
    padded = ("/home/dev/" + "./" * 100 + ".ssh/id_rsa")[: STRLEN - 1]
    text = _text().replace("\x1f/tmp/x\n", f"\x1f{padded}\n", 1)
    trace = parse_ebpf(text, [_window()])
    events = trace.steps["import.0"].events
    cut = [e for e in events if e.path and e.path.endswith(CUT)]
    assert cut and cut[0].syscall == "openat", cut  # the open, and what names its fd after
    assert all(e.path and e.path.startswith("/home/dev") and ".ssh" not in e.path for e in cut)
    assert trace.steps["import.0"].truncated_strings == 1
    # the untouched capture has no cut path
    plain = parse_ebpf(_text(), [_window()]).steps["import.0"].events
    assert not any(CUT in (e.path or "") for e in plain)


def test_an_open_is_named_by_the_inode_the_kernel_opened() -> None:
    # captured (tests/integration/test_toctou.py): a second thread flips the buffer of
    # ctypes opens between ~/.ssh/id_rsa and a name that does not exist; the third
    # open got the key (fd 4, inode 28 on device 52) while its memory showed the decoy
    text = RACED.read_bytes().decode()
    key = "/home/dev/.ssh/id_rsa"
    window = _window(key="import.0").model_copy(update={"main_pid": 59, "root_argv": ()})
    planted = window.model_copy(update={"inodes": ((52, 28, key), (52, 29, key + ".pub"))})
    events = [e for e in parse_ebpf(text, [planted]).steps["import.0"].events if e.syscall == "openat"]
    assert [(e.path, e.path2, e.result) for e in events] == [
        (key, None, 4),
        ("/tmp/ykgftpksowpokxlc", None, -2),  # the kernel copied the decoy: ENOENT, as recorded
        (key, "/tmp/ykgftpksowpokxlc", 4),  # the name the caller's memory showed, kept
    ]
    # without the agent's statement the decoder could only believe the memory
    blind = [e for e in parse_ebpf(text, [window]).steps["import.0"].events if e.syscall == "openat"]
    assert blind[2].path == "/tmp/ykgftpksowpokxlc" and blind[2].path2 is None


def test_the_string_less_kinds_share_one_exit_program() -> None:
    from sandbox.runner.ebpf_program import KINDS, MERGED

    prog = build_program(4026532182, 1000, 1, OFFSETS)
    exits = [p for p in prog.splitlines() if p.startswith("tracepoint:raw_syscalls:sys_exit")]
    (shared,) = [p for p in exits if all(f'"\\x1e{k} ' in p for k in MERGED[0])]
    codes = {kind: n for n, kind in enumerate(KINDS, 1)}
    # each kind's printf runs only under its own code: one syscall, one branch
    for kind in MERGED[0]:
        assert f"if ($k == {codes[kind]}) {{" in shared
    # every other kind keeps a program of its own
    assert len(exits) == 20 - len(MERGED[0]) + 1
    assert not any(f'"\\x1e{k} ' in p for p in exits if p is not shared for k in MERGED[0])


def test_an_exec_is_named_by_the_path_the_kernel_copied() -> None:
    # captured (tests/integration/test_exec_race.py): posix_spawn of /bin/true while a
    # thread flips the path to /tmp/qzxw. First spawn: the memory showed /bin/true, the
    # kernel copied the decoy (ENOENT, no sched_process_exec). Second: the memory showed
    # the decoy, the kernel ran /bin/true (its x record says so). Third: no race.
    text = EXEC_RACED.read_bytes().decode()
    window = _window(key="import.0").model_copy(update={"main_pid": 59, "root_argv": ()})
    execs = [e for e in parse_ebpf(text, [window]).steps["import.0"].events if e.kind is EventKind.EXEC]
    got = [(e.pid, e.path, e.path2, e.result) for e in execs]
    assert got == [
        (61, "/bin/true", None, -2),
        (62, "/bin/true", "/tmp/qzxw", 0),  # the program that ran; the decoy kept
        (64, "/bin/true", None, 0),
    ], got
    assert "changed in the caller's memory" in (execs[1].flags or "")
    assert execs[2].flags is None
    # without the kernel's copy (a trace from before the x record) the memory was believed
    old = "".join("\x1e" + c for c in text.split("\x1e")[1:] if not c.startswith("x "))
    before = [e for e in parse_ebpf(old, [window]).steps["import.0"].events if e.kind is EventKind.EXEC]
    assert before[1].path == "/tmp/qzxw" and before[1].result == 0


def test_execveat_forms_are_not_taken_for_a_race() -> None:
    from sandbox.trace.ebpf import _kernel_filename, _same_string

    assert _kernel_filename("true", 3, 0, "execveat") == "/dev/fd/3/true"
    assert _kernel_filename("", 3, 0x1000, "execveat") == "/dev/fd/3"
    assert _kernel_filename("/bin/true", 3, 0, "execveat") == "/bin/true"
    assert _kernel_filename("./s.sh", 306376960, 0, "execve") == "./s.sh"  # execve: args[0] is no dirfd
    long = "/x/" + "a" * 300
    assert _same_string(long[: STRLEN - 1], long)  # both cut where the recorder stops reading
    assert not _same_string("/tmp/qzxw", "/bin/true")


def test_sendmmsg_is_recorded_with_the_first_message() -> None:
    # captured: sendmmsg of two UDP datagrams ("mmsg-probe") to 192.0.2.77:5353 through
    # libc; the kernel returned 1 (messages, not bytes)
    text = DATA.with_name("sendmmsg.trace").read_bytes().decode()
    window = _window(key="import.0").model_copy(update={"main_pid": 64, "root_argv": ()})
    sends = [e for e in parse_ebpf(text, [window]).steps["import.0"].events if e.kind is EventKind.SEND]
    assert [(e.syscall, e.address and e.address.render(), e.data, e.size) for e in sends] == [
        ("sendmmsg", "192.0.2.77:5353", "mmsg-probe", None)
    ]


def test_each_message_of_a_sendmmsg_is_recorded_with_its_own_destination() -> None:
    # captured: one sendmmsg of three UDP datagrams, each to its own peer (loopback
    # first); the kernel returned 3 and the program printed a record per message
    text = DATA.with_name("sendmmsg-many.trace").read_bytes().decode()
    window = _window(key="import.0").model_copy(update={"main_pid": 64, "root_argv": ()})
    sends = [e for e in parse_ebpf(text, [window]).steps["import.0"].events if e.kind is EventKind.SEND]
    assert [(e.syscall, e.address and e.address.render(), e.data, e.result) for e in sends] == [
        ("sendmmsg", "127.0.0.1:5353", "ping", 3),
        ("sendmmsg", "192.0.2.77:5353", "mmsg-two", 3),
        ("sendmmsg", "198.51.100.9:5353", "mmsg-three", 3),
    ]


def test_the_sendmmsg_program_reads_each_message_of_the_vector() -> None:
    # the vector is stashed at entry and walked at exit, one printf in a bounded loop
    text = build_program(4026532182, 1000, 1, OFFSETS)
    assert "@a3[tid] = args->args[1];" in text
    assert f"if ($n > {MMSG_CAP}) {{ $n = {MMSG_CAP}; }}" in text and "while ($i < $n)" in text
    assert "$m = $a3 + 64 * $i;" in text


def test_a_connect_is_named_by_the_peer_its_socket_has() -> None:
    # captured: connects of one process to its own loopback listener (full accept
    # queue: EINPROGRESS after a 30 ms send timeout) while a thread flipped the sockaddr
    # between 127.0.0.1:24242 and 192.0.2.77:8443; the second connect's memory showed
    # the decoy at exit, the socket's kernel address (second sockaddr) the real peer
    text = DATA.with_name("connect-race.trace").read_bytes().decode()
    window = _window(key="import.0").model_copy(update={"main_pid": 75, "root_argv": ()})
    got = [e for e in parse_ebpf(text, [window]).steps["import.0"].events if e.syscall == "connect"]
    assert [(e.address and e.address.render(), e.errno) for e in got] == [
        ("127.0.0.1:24242", None),
        ("127.0.0.1:24242", "EINPROGRESS"),
        ("127.0.0.1:24242", "EINPROGRESS"),
    ]
    assert [bool(e.flags) for e in got] == [False, True, False]
    assert "it showed 192.0.2.77:8443" in (got[1].flags or "")
    # a trace without the kernel's address (older program: zeros) believes the memory
    old = "\n".join(
        " ".join(line.split(" ")[:17] + ["0"] * 7) if line.startswith("\x1eC ") else line
        for line in text.split("\n")
    )
    before = [e for e in parse_ebpf(old, [window]).steps["import.0"].events if e.syscall == "connect"]
    assert before[1].address is not None and before[1].address.render() == "192.0.2.77:8443"


def test_an_exec_is_recorded_with_the_argv_the_kernel_copied() -> None:
    # captured: posix_spawn of `sh -c 'exit 3'` while a thread flipped the script to
    # `exit 5`; the second spawn's a records read the decoy, its y record (the new
    # stack's strings) the script the shell got
    text = DATA.with_name("argv-race.trace").read_bytes().decode()
    window = _window(key="import.0").model_copy(update={"main_pid": 59, "root_argv": ()})
    execs = [e for e in parse_ebpf(text, [window]).steps["import.0"].events if e.kind is EventKind.EXEC]
    assert [(e.pid, e.argv) for e in execs] == [(68, ("sh", "-c", "exit 3")), (75, ("sh", "-c", "exit 3"))]
    assert execs[0].flags is None
    assert "argv changed in the caller's memory" in (execs[1].flags or "")
    assert "it showed sh -c 'exit 5'" in (execs[1].flags or "")
    # without the kernel's copy (a trace from before the y record) the memory was believed
    old = "".join("\x1e" + c for c in text.split("\x1e")[1:] if not c.startswith("y "))
    before = [e for e in parse_ebpf(old, [window]).steps["import.0"].events if e.kind is EventKind.EXEC]
    assert before[1].argv == ("sh", "-c", "exit 5") and before[1].flags is None
    # a read that failed (zeros: the stack ended within the bytes asked for, before the
    # program read no further than the strings) is no copy, not a race
    failed = text.replace("13\x1fsh\\x00-c\\x00exit 3\\x00", "13\x1f" + "\\x00" * 13)
    blind = [e for e in parse_ebpf(failed, [window]).steps["import.0"].events if e.kind is EventKind.EXEC]
    assert [(e.argv, e.flags) for e in blind] == [
        (("sh", "-c", "exit 3"), None),
        (("sh", "-c", "exit 5"), None),
    ]


def test_the_argv_comparison_allows_what_the_kernel_itself_changes() -> None:
    from sandbox.trace.ebpf import CUT, _argv_differs

    # a script: the kernel puts the interpreter line and the script's name in argv[0]'s place
    assert not _argv_differs(["x.sh", "-v"], ["/bin/sh", "-e", "./x.sh", "-v"], False, "./x.sh")
    # ... but only for the file that was executed, and no argument may change
    assert _argv_differs(["sh", "-c", "true"], ["sh", "x", "-c", "true"], False, "/bin/sh")
    assert _argv_differs(["x.sh", "-v"], ["/bin/sh", "./x.sh", "-q"], False, "./x.sh")
    # what was not read is not compared: a string the a record cut, the kernel's cut copy
    assert not _argv_differs(["python", "-c", "abc" + CUT], ["python", "-c", "abcdef"], False, None)
    assert _argv_differs(["python", "-c", "abd" + CUT], ["python", "-c", "abcdef"], False, None)
    assert not _argv_differs(["python", "-c", "abcdef", "x"], ["python", "-c", "abc" + CUT], True, None)
    assert _argv_differs(["python", "-c", "abXdef"], ["python", "-c", "abc" + CUT], True, None)
    # the same argv, and one argument more or less
    assert not _argv_differs(["ls", "-l"], ["ls", "-l"], False, "/bin/ls")
    assert _argv_differs(["ls", "-l"], ["ls", "-l", "/"], False, "/bin/ls")


def test_the_connect_peer_is_read_only_for_an_fd_the_lookup_does_not_wrap() -> None:
    # the fd table is indexed with fd & 0xffff: fd 65536 + 3 would give fd 3's socket,
    # and its peer would name a connect made elsewhere
    prog = build_program(4026532182, 1000, 1, OFFSETS)
    (merged,) = [p for p in prog.splitlines() if '"\\x1eC ' in p]
    assert "($a0 & 0xffffffff) < 65536 && ($r == 0 || $r == -115)" in merged


def test_rename_exchange_is_recorded_both_ways() -> None:
    # Captured (tests/integration/test_redteam24.py's fixture): a script written at
    # /tmp/.swapcap/a, an empty directory b, renameat2(b, a, RENAME_EXCHANGE), b run.
    text = DATA.with_name("rename-exchange.trace").read_bytes().decode()
    window = _window(key="import.0").model_copy(update={"main_pid": 63, "root_argv": ()})
    events = parse_ebpf(text, [window]).steps["import.0"].events
    swaps = [(e.path, e.path2, e.flags) for e in events if e.syscall == "renameat2"]
    assert swaps == [
        ("/tmp/.swapcap/b", "/tmp/.swapcap/a", "RENAME_EXCHANGE"),
        ("/tmp/.swapcap/a", "/tmp/.swapcap/b", "RENAME_EXCHANGE"),
    ], swaps
    # a record from before the flags were recorded: a one-way move, as it was
    old = text.replace(" -100 -100 2\x1f", " -100 -100\x1f")
    events = parse_ebpf(old, [window]).steps["import.0"].events
    assert [(e.path, e.path2) for e in events if e.syscall == "renameat2"] == [
        ("/tmp/.swapcap/b", "/tmp/.swapcap/a")
    ]


def test_a_script_exec_whose_argv_records_were_lost_does_not_raise() -> None:
    # the same run without its "a" records (argv elements): the decoder compared the
    # kernel's argv with an empty one and indexed past its end
    text = DATA.with_name("rename-exchange.trace").read_bytes().decode()
    text = "".join("\x1e" + c for c in text.split("\x1e")[1:] if not c.startswith("a "))
    window = _window(key="import.0").model_copy(update={"main_pid": 63, "root_argv": ()})
    events = parse_ebpf(text, [window]).steps["import.0"].events
    assert any(e.syscall == "execve" and e.path == "/tmp/.swapcap/b" for e in events)


def test_signals_by_sigqueue_and_pidfd_name_their_target() -> None:
    # Captured (tests/integration/test_redteam24.py's fixture, refused: PID 1 is root's):
    # rt_sigqueueinfo(1, SIGUSR1), rt_tgsigqueueinfo(1, 1, SIGUSR2), pidfd_open(1) = 4,
    # pidfd_send_signal(4, SIGTERM), pidfd_getfd(4, 0)
    text = DATA.with_name("signals.trace").read_bytes().decode()
    window = _window(key="import.0").model_copy(update={"main_pid": 62, "root_argv": ()})
    events = parse_ebpf(text, [window]).steps["import.0"].events
    got = [(e.syscall, e.kind, e.target, e.flags, e.errno) for e in events]
    assert got == [
        ("rt_sigqueueinfo", EventKind.SIGNAL, 1, "SIGUSR1", "EPERM"),
        ("rt_tgsigqueueinfo", EventKind.SIGNAL, 1, "SIGUSR2", "EPERM"),
        ("pidfd_send_signal", EventKind.SIGNAL, 1, "SIGTERM", "EPERM"),
        ("pidfd_getfd", EventKind.PTRACE, 1, None, "EPERM"),
    ], got


def test_a_socket_refused_before_sys_enter_is_named_a_vsock_attempt() -> None:
    # seccomp refuses socket(AF_VSOCK) before sys_enter runs: the exit record carries
    # the arguments stashed for the thread's last recorded call (here a close(5)), not
    # the family. The record prints the stashed call number; EPERM on a socket whose
    # arguments are not its own is the profile's one refused family.
    head = "\x1eREADY\n"
    refused = "\x1eO 41 2000 30 30 7 7 1 -1 5 0 0 3\n"  # stashed: close (3)
    own = "\x1eO 41 3000 30 30 7 7 1 4 2 1 0 41\n"  # socket(AF_INET, SOCK_STREAM) = 4
    events = parse_ebpf(head + refused + own, [_window()]).steps["import.0"].events
    flags = [(e.flags, e.errno) for e in events if e.syscall == "socket"]
    assert flags[0][0] is not None and flags[0][0].startswith("AF_VSOCK") and flags[0][1] == "EPERM", flags
    assert flags[1][0] is not None and flags[1][0].startswith("AF_INET, SOCK_STREAM"), flags
    # a record from before the stashed number was printed: as it was
    old = parse_ebpf(head + own.replace(" 41\n", "\n"), [_window()]).steps["import.0"].events
    (before,) = [e.flags or "" for e in old if e.syscall == "socket"]
    assert before.startswith("AF_INET"), before


def test_bpftrace_s_fstat_records_are_stats_of_the_fd_s_file() -> None:
    # captured: Python's fstat after each open is newfstatat(fd, "", AT_EMPTY_PATH).
    # The compiled recorder leaves them out (recorder.bpf.c fd_stat, decided at entry);
    # bpftrace prints them and they decode as a stat of the file the fd names. (A filter
    # here on an empty string at exit would drop a stat whose path the kernel overwrote
    # with the stat itself: s27's hostile read.)
    text = _text()
    raw = [c for c in text.split("\x1e") if c.startswith("A 262 ")]
    fstats = [c for c in raw if c.endswith("\x1f\n") and c.split(" ")[8] == "0"]
    assert 0 < len(fstats) < len(raw)
    stats = [e for e in parse_ebpf(text, [_window()]).steps["import.0"].events if e.syscall == "newfstatat"]
    assert len(stats) == len(raw)
    opened = {e.path for e in parse_ebpf(text, [_window()]).steps["import.0"].events if e.syscall == "openat"}
    assert sum(e.path in opened for e in stats) >= len(fstats) // 2  # the fd's file (others: fds from before)


def _rec(kind: str, nr: int, t: int, who: str, nums: str, s: str | None = None) -> str:
    return f"\x1e{kind} {nr} {t} {who} {nums}" + ("" if s is None else f"\x1f{s}") + "\n"


def test_two_threads_exec_at_once_and_the_payload_s_exec_is_kept() -> None:
    """Hostile read (s27): pending execs were one per process, so a second thread's
    execve("/nonexistent") replaced the payload's and its ENOENT removed it: the
    payload's exec (of a file the process wrote) was not an event, or one that failed."""
    lead, thread = "1007 1007 7 7 1000", "1007 1009 7 9 1000"
    opened = _rec("A", 257, 1000, lead, "3 -100 577 0 0", "/tmp/w/payload")  # written
    mine = [_rec("E", 59, 2000, lead, "0 0", "/tmp/w/payload"), "\x1ea 2001 1007 0\x1fpayload\n"]
    other = [_rec("E", 59, 2100, thread, "0 0", "/nonexistent"), "\x1ea 2101 1007 0\x1fx\n"]
    end = [
        _rec("e", 59, 2200, thread, "-2"),  # the other thread: ENOENT
        _rec("x", -1, 3000, lead, "", "/tmp/w/payload"),  # the payload ran
        "\x1ey -1 3001 1007 1007 7 7 1000 8\x1fpayload\\x00\n",
        _rec("e", 59, 3100, lead, "0"),
    ]
    window = StepWindow(key="import.0", phase=Phase.IMPORT, start_ns=0, cwd="/home/dev/project", main_pid=7)
    first_other = [*other, *mine]
    first_other[0] = first_other[0].replace(" 2100 ", " 1900 ")
    first_other[1] = first_other[1].replace("a 2101", "a 1901")
    for order in ([*mine, *other], first_other):
        text = "\x1eREADY\n" + opened + _rec("U", 3, 1100, lead, "0 3 0 0") + "".join(order) + "".join(end)
        step = parse_ebpf(text, [window]).steps["import.0"]
        execs = {(e.path, e.result, e.errno) for e in step.events if e.kind is EventKind.EXEC}
        assert execs == {("/tmp/w/payload", 0, None), ("/nonexistent", -2, "ENOENT")}, execs
        assert step.degraded == 0


def test_a_child_inherits_the_fds_and_cwd_its_parent_had_when_the_fork_returned() -> None:
    """Hostile read (s27): the child's fd table and cwd were copied from its parent at
    the child's first record, so a parent that closed its TCP socket and made a UDP one
    on the same fd (or changed directory) before the child first ran gave the child's
    TCP connect the datagram type (and a relative exec the later cwd)."""
    parent, child = "1007 1007 7 7 1000", "1008 1008 8 8 1007"
    ip, port = 167903424, 47873  # 192.0.2.10:443 as the recorder prints them
    text = "\x1eREADY\n" + "".join(
        [
            _rec("O", 41, 1000, parent, "3 2 1 0 41"),  # socket(AF_INET, SOCK_STREAM) = 3
            _rec("F", 57, 2000, parent, "8 0 57"),  # fork() = 8
            _rec("U", 3, 3000, parent, "0 3 0 0"),  # close(3)
            _rec("O", 41, 4000, parent, "3 2 2 0 41"),  # socket(AF_INET, SOCK_DGRAM) = 3
            _rec("P", 80, 4200, parent, "0 0 0 0", "/tmp"),  # chdir("/tmp")
            _rec("F", 57, 4500, child, "0 0 0"),  # the child first runs
            _rec("C", 42, 5000, child, f"-115 3 2 {port} {ip} 0 0 0 0 2 {port} {ip} 0 0 0 0"),
            _rec("E", 59, 6000, child, "0 0", "./payload"),
            _rec("e", 59, 6100, child, "-2"),
        ]
    )
    window = StepWindow(key="import.0", phase=Phase.IMPORT, start_ns=0, cwd="/home/dev/project", main_pid=7)
    events = parse_ebpf(text, [window]).steps["import.0"].events
    (conn,) = [e for e in events if e.kind is EventKind.CONNECT]
    assert conn.pid == 8 and conn.flags == "SOCK_STREAM", conn
    (run,) = [e for e in events if e.kind is EventKind.EXEC and e.pid == 8]
    assert run.path == "/home/dev/project/payload", run.path


def test_fds_closed_at_exec_lose_their_names() -> None:
    """Hostile read (s27): a successful exec left O_CLOEXEC fds in the decoder's table;
    the new image's fd of that number (one the recorder does not see made) was taken
    for the old directory, so a path relative to it named the wrong file."""
    me = "1007 1007 7 7 1000"
    text = "\x1eREADY\n" + "".join(
        [
            _rec("A", 257, 1000, me, "5 -100 589824 0 0", "/tmp/benign"),  # O_DIRECTORY|O_CLOEXEC = 5
            _rec("A", 257, 1100, me, "6 -100 65536 0 0", "/home/dev"),  # O_DIRECTORY = 6, inherited
            _rec("O", 41, 1200, me, "7 2 524289 0 41"),  # socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC) = 7
            _rec("U", 292, 1300, me, "8 6 8 524288"),  # dup3(6, 8, O_CLOEXEC) = 8
            _rec("E", 59, 2000, me, "0 0", "/usr/bin/python3"),
            "\x1ea 2001 1007 0\x1fpython3\n",
            _rec("e", 59, 2600, me, "0"),
            _rec("A", 257, 3000, me, "9 5 0 0 0", "x"),  # openat(5, "x")
            _rec("A", 257, 3100, me, "10 6 0 0 0", "y"),  # openat(6, "y")
            _rec("A", 257, 3200, me, "11 8 0 0 0", "z"),  # openat(8, "z")
        ]
    )
    window = StepWindow(key="import.0", phase=Phase.IMPORT, start_ns=0, cwd="/home/dev/project", main_pid=7)
    step = parse_ebpf(text, [window]).steps["import.0"]
    after = {e.path for e in step.events if e.syscall == "openat" and e.result in (9, 10, 11)}
    assert "/home/dev/y" in after and not {"/tmp/benign/x", "/home/dev/z"} & after, after


def test_close_on_exec_cleared_by_fcntl_or_ioctl_keeps_the_fd_named() -> None:
    """Hostile read (s27 review): the decoder forgets O_CLOEXEC fds at exec, but
    fcntl(F_SETFD, 0) and ioctl(FIONCLEX) clear the flag, so the fd survives; unrecorded,
    a later execveat(fd, "payload") named an unknown directory. F_SETFD with FD_CLOEXEC
    and ioctl(FIOCLEX) set it (the fd is closed at exec)."""
    me = "1007 1007 7 7 1000"
    text = "\x1eREADY\n" + "".join(
        [
            _rec("A", 257, 1000, me, "5 -100 589824 0 0", "/tmp/drop"),  # O_DIRECTORY|O_CLOEXEC = 5
            _rec("A", 257, 1010, me, "6 -100 589824 0 0", "/home/dev/d6"),  # = 6, O_CLOEXEC
            _rec("A", 257, 1020, me, "7 -100 65536 0 0", "/home/dev/d7"),  # = 7, inherited
            _rec("A", 257, 1030, me, "8 -100 65536 0 0", "/home/dev/d8"),  # = 8, inherited
            _rec("U", 72, 1100, me, "0 5 2 0"),  # fcntl(5, F_SETFD, 0): survives exec
            _rec("U", 16, 1110, me, "0 6 21584 0"),  # ioctl(6, FIONCLEX): survives exec
            _rec("U", 72, 1120, me, "0 7 2 1"),  # fcntl(7, F_SETFD, FD_CLOEXEC): closed at exec
            _rec("U", 16, 1130, me, "0 8 21585 0"),  # ioctl(8, FIOCLEX): closed at exec
            _rec("E", 59, 2000, me, "0 0", "/usr/bin/python3"),
            "\x1ea 2001 1007 0\x1fpython3\n",
            _rec("e", 59, 2600, me, "0"),
            _rec("A", 257, 3000, me, "9 5 0 0 0", "x"),
            _rec("A", 257, 3100, me, "10 6 0 0 0", "y"),
            _rec("A", 257, 3200, me, "11 7 0 0 0", "z"),
            _rec("A", 257, 3300, me, "12 8 0 0 0", "w"),
        ]
    )
    window = StepWindow(key="import.0", phase=Phase.IMPORT, start_ns=0, cwd="/home/dev/project", main_pid=7)
    step = parse_ebpf(text, [window]).steps["import.0"]
    after = {e.path for e in step.events if e.syscall == "openat" and e.result in (9, 10, 11, 12)}
    assert {"/tmp/drop/x", "/home/dev/d6/y"} <= after, after
    assert not {"/home/dev/d7/z", "/home/dev/d8/w"} & after, after
