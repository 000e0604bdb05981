"""Red-team evasions (issue 11), judged on real traces.

``redteam-install.strace.gz`` / ``redteam-import.strace`` were recorded by ``pkgsandbox
vet`` (the project's own agent and strace command line) of a defanged wheel whose import
runs ``redteam_probe.py``: see ``tests/data/strace/capture-redteam.sh``.  Each test feeds
them through parser → classifier → rules, as ``vet`` does.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from sandbox.judge.classify import classify
from sandbox.judge.profiles import load_profile
from sandbox.judge.rules import evaluate
from sandbox.models import (
    Address,
    DnsQuery,
    Event,
    EventKind,
    Finding,
    Inventory,
    NetConnection,
    NetworkCapture,
    Observation,
    Origin,
    Phase,
    PhaseResult,
    PhaseStatus,
    Severity,
)
from sandbox.trace.strace import parse_strace, parse_strace_file

DATA = Path(__file__).resolve().parents[1] / "data" / "strace"
HOME = "/home/dev"
VENV = f"{HOME}/project/.venv"
WHEEL = "/stage/artifacts/rtprobe-0.1-py3-none-any.whl"
# the install step's argv, from the run's install.result.json
HARNESS = (
    f"{VENV}/bin/python",
    "-m",
    "pip",
    "install",
    "--no-index",
    "--find-links",
    "/stage/artifacts",
    "--no-cache-dir",
    "--disable-pip-version-check",
    "--no-input",
    "--progress-bar",
    "off",
    WHEEL,
)
# pids in the recorded import step (see redteam-import.strace)
SETPRIV_LOOKALIKE = (
    54  # Popen(["setpriv", "-c", PAYLOAD, "--no-new-privs", "--bounding-set=-all"], executable=python)
)
PIP_LOOKALIKE = 55  # the exact harness pip argv, run from a folder holding a look-alike `pip`


def observation(*traces: tuple[str, Phase], extra: tuple[Event, ...] = ()) -> Observation:
    events: list[Event] = []
    procs = []
    seq = 0
    for name, phase in traces:
        parsed = parse_strace_file(DATA / name, phase, seq_start=seq)
        seq += parsed.lines + 1
        events += parsed.events
        procs += parsed.processes
    events += extra
    out, procs_out = classify(events, procs, [HARNESS], VENV, f"{HOME}/project")
    phases = tuple(
        PhaseResult(phase=p, status=PhaseStatus.OK, duration=1.0) for (p,) in {(t[1],) for t in traces}
    )
    return Observation(
        events=tuple(out),
        processes=tuple(procs_out),
        phases=phases,
        inventory=Inventory(),
        home=HOME,
        venv=VENV,
    )


@lru_cache(maxsize=1)
def run() -> tuple[Observation, tuple[Finding, ...]]:
    obs = observation(("redteam-install.strace.gz", Phase.INSTALL), ("redteam-import.strace", Phase.IMPORT))
    return obs, tuple(evaluate(obs, load_profile("default")))


def finding(rule: str, phase: Phase = Phase.IMPORT) -> Finding:
    found = [f for f in run()[1] if f.rule_id == rule and f.phase is phase and f.severity.rank >= 2]
    assert found, f"no {rule} in {phase.value}: {[(f.rule_id, f.message) for f in run()[1]]}"
    return found[0]


# ---------------------------------------------------------------- H1: harness by lineage


def test_h1_setpriv_lookalike_argv_is_candidate_and_judged() -> None:
    obs, _ = run()
    mine = [e for e in obs.events if e.phase is Phase.IMPORT and e.pid == SETPRIV_LOOKALIKE]
    assert mine and Origin.HARNESS not in {e.origin for e in mine}
    assert mine[0].argv is not None and mine[0].argv[:2] == ("setpriv", "-c")
    assert any(
        ev.pid == SETPRIV_LOOKALIKE and ev.path == f"{HOME}/.ssh/id_rsa" for ev in finding("PS001").evidence
    )
    assert any(
        ev.pid == SETPRIV_LOOKALIKE and ev.destination == "192.0.2.61:8443"
        for ev in finding("PS002").evidence
    )


def test_h1_lookalike_pip_with_the_exact_harness_argv_is_candidate() -> None:
    obs, _ = run()
    mine = [e for e in obs.events if e.phase is Phase.IMPORT and e.pid == PIP_LOOKALIKE]
    assert any(e.argv == HARNESS for e in mine)  # the exact argv …
    assert Origin.HARNESS not in {e.origin for e in mine}  # … is not enough
    assert any(
        ev.pid == PIP_LOOKALIKE and ev.path == f"{HOME}/.aws/credentials" for ev in finding("PS001").evidence
    )
    assert any(ev.pid == PIP_LOOKALIKE for ev in finding("PS002").evidence)
    proc = next(p for p in obs.processes if p.phase is Phase.IMPORT and p.pid == PIP_LOOKALIKE)
    assert proc.origin is Origin.CANDIDATE


def test_h1_the_real_harness_stays_harness_and_labelled() -> None:
    obs, findings = run()
    install = [e for e in obs.events if e.phase is Phase.INSTALL]
    assert install and {e.origin for e in install} <= {Origin.HARNESS, Origin.RUNTIME}
    assert not [f for f in findings if f.phase is Phase.INSTALL]
    # the import step's privilege drop (setpriv, then choom) is harness too
    root = [e for e in obs.events if e.phase is Phase.IMPORT and e.pid == 53 and e.kind is EventKind.EXEC]
    assert [e.origin for e in root if e.errno is None][:2] == [Origin.HARNESS, Origin.HARNESS]


# ---------------------------------------------------------------- H2: allowlists do not hide


def test_h2_write_then_exec_under_allowed_tmp_with_write() -> None:
    f = finding("PS004")
    assert "/tmp/dropx" in f.message
    obs, _ = run()
    assert any(e.syscall == "write" and e.path == "/tmp/dropx" for e in obs.events)


def test_h2_disk_fill_under_allowed_tmp() -> None:
    f = finding("PS026")
    assert any(ev.path == "/tmp/fill.bin" and ev.errno == "ENOSPC" for ev in f.evidence)


# ---------------------------------------------------------------- H3: the kernel's paths


def test_h3_key_read_through_proc_self_cwd() -> None:
    obs, _ = run()
    paths = {e.path for e in obs.events if e.phase is Phase.IMPORT and e.pid == 53}
    assert not any(p and p.startswith("/proc/self/.") for p in paths)
    ev = finding("PS001").evidence
    assert any(e.syscall == "openat" and e.path == f"{HOME}/.ssh/id_rsa" for e in ev)
    assert any(e.syscall == "newfstatat" and e.path == f"{HOME}/.aws/credentials" and e.pid == 53 for e in ev)
    assert any(e.path == f"{HOME}/.kube/config" for e in ev)  # /proc/<own pid>/cwd/..


def test_h3_bashrc_append_through_a_tmp_symlink_and_systemd_unit() -> None:
    obs, _ = run()
    opens = [e for e in obs.events if e.syscall == "openat" and e.kind is EventKind.FILE_WRITE]
    assert any(e.path == f"{HOME}/.bashrc" for e in opens)  # opened as /tmp/hl/.bashrc
    assert any(e.path == f"{HOME}/.config/systemd/user/rt2.service" for e in opens)  # via /tmp/su
    ev = finding("PS005").evidence
    assert any(e.syscall == "openat" and e.path == f"{HOME}/.bashrc" for e in ev)
    assert any(e.syscall == "mkdir" and e.path == f"{HOME}/.config/systemd/user" for e in ev)
    assert any(e.syscall == "openat" and e.path == f"{HOME}/.config/systemd/user/rt.service" for e in ev)


def test_h3_link_to_a_credential_is_credential_access() -> None:
    ev = finding("PS001").evidence
    assert any(e.syscall == "symlink" and e.path == f"/tmp/k -> {HOME}/.ssh/id_rsa" for e in ev)


def test_h3_stat_and_mkdir_follow_symlinks_the_run_made() -> None:
    lines = (
        '7 1.0 symlink("/home/dev", "/tmp/hl") = 0\n'
        '7 1.1 newfstatat(AT_FDCWD</home/dev/project>, "/tmp/hl/.ssh/id_rsa", 0x7ffc, 0) = -1 ENOENT (x)\n'
        '7 1.2 mkdir("/tmp/hl/.config/autostart", 0777) = 0\n'
        '7 1.3 unlink("/tmp/hl") = 0\n'
        '7 1.4 mkdir("/tmp/hl/x", 0777) = 0\n'
    )
    evs = parse_strace(lines, Phase.IMPORT).events
    assert [e.path for e in evs] == [
        "/tmp/hl",
        f"{HOME}/.ssh/id_rsa",
        f"{HOME}/.config/autostart",
        "/tmp/hl",
        "/tmp/hl/x",
    ]


# Captured with the project's strace argv in the sandbox image (capture-redteam.sh).
FALLOCATE = (
    "10    1796123263.979619 fallocate(3</tmp/fa>, 0, 0, 4096) = 0\n"
    "10    1796123263.979793 copy_file_range(4</tmp/src>, NULL, 3</tmp/fa>, NULL, 100, 0) = 100\n"
    "10    1796123263.979898 fallocate(5</dev/shm/big>, 0, 0, 1099511627776)"
    " = -1 ENOSPC (No space left on device)\n"
)


def test_h3_fallocate_and_copy_file_range_are_writes() -> None:
    evs = parse_strace(FALLOCATE, Phase.IMPORT).events
    assert [(e.kind, e.path, e.path2, e.errno) for e in evs] == [
        (EventKind.FILE_WRITE, "/tmp/fa", None, None),
        (EventKind.FILE_WRITE, "/tmp/fa", "/tmp/src", None),
        (EventKind.FILE_WRITE, "/dev/shm/big", None, "ENOSPC"),
    ]
    assert evs[1].size == 100
    obs = Observation(events=evs, processes=(), phases=(), inventory=Inventory(), home=HOME, venv=VENV)
    assert "PS026" in {f.rule_id for f in evaluate(obs, load_profile("default"))}


# ---------------------------------------------------------------- H4: exec through an fd


def test_h4_exec_through_proc_self_fd_dev_fd_and_memfd() -> None:
    f = finding("PS029")
    assert f.severity.rank >= Severity.HIGH.rank
    paths = {e.path for e in f.evidence}
    assert {"/proc/self/fd/6 -> /usr/bin/dash", "/dev/fd/6 -> /usr/bin/dash", "/memfd:rt"} <= paths
    assert any(e.syscall == "execveat" for e in f.evidence)


def test_h4_shebang_script_resolves_to_its_interpreter() -> None:
    f = next(f for f in run()[1] if f.rule_id == "PS003" and f.severity.rank >= Severity.HIGH.rank)
    assert any(e.path == "/tmp/s.sh" for e in f.evidence)
    assert "sh" in f.message


# ---------------------------------------------------------------- item 7: evasion probes


def test_evasion_probe_found_and_raises_the_others() -> None:
    f = finding("PS030")
    assert f.severity is Severity.MEDIUM
    what = {e.path or e.syscall for e in f.evidence}
    assert {"/proc/53/status", "/.dockerenv", "/proc/1/cgroup", "/proc/53/cgroup", "/proc/1/sched"} <= what
    assert "ptrace" in what
    assert finding("PS002").severity is Severity.CRITICAL  # HIGH raised one step
    assert finding("PS026").severity is Severity.HIGH  # MEDIUM raised one step


def test_one_kind_of_probe_alone_is_low_and_the_runtime_does_not_probe() -> None:
    probe = Event(
        phase=Phase.IMPORT,
        seq=1,
        pid=9,
        time=1,
        syscall="openat",
        kind=EventKind.FILE_READ,
        path="/proc/9/status",
    )
    obs = Observation(events=(probe,), processes=(), phases=(), inventory=Inventory(), home=HOME, venv=VENV)
    # numpy reads its own status at import: one kind of look is LOW and raises nothing
    assert [(f.rule_id, f.severity) for f in evaluate(obs)] == [("PS030", Severity.LOW)]
    marker = probe.model_copy(update={"seq": 2, "path": "/.dockerenv", "kind": EventKind.FILE_STAT})
    two = obs.model_copy(update={"events": (probe, marker)})
    assert [(f.rule_id, f.severity) for f in evaluate(two)] == [("PS030", Severity.LOW)]  # one pointed look
    cgroup = probe.model_copy(update={"seq": 3, "path": "/proc/1/cgroup"})
    idiom = obs.model_copy(update={"events": (probe, marker, cgroup)})  # "am I in a container"
    assert [(f.rule_id, f.severity) for f in evaluate(idiom)] == [("PS030", Severity.LOW)]
    init = probe.model_copy(update={"seq": 4, "path": "/proc/1/sched"})
    three = obs.model_copy(update={"events": (probe, marker, cgroup, init)})
    assert [(f.rule_id, f.severity) for f in evaluate(three)] == [("PS030", Severity.MEDIUM)]
    # a real `vet requests` (the agent's import and `-m pip --version` steps) probes nothing
    benign = observation(
        ("agent-startup-pip-version.strace.gz", Phase.STARTUP),
        ("agent-import-requests.strace.gz", Phase.IMPORT),
    )
    assert evaluate(benign, load_profile("default")) == []


# ---------------------------------------------------------------- M1, M5, M7, PS011


def test_m1_sinkhole_connection_without_a_traced_connect_is_judged() -> None:
    conn = NetConnection(phase=Phase.IMPORT, time=1.0, destination="203.0.113.9:443", bytes=12, data="x")
    net = NetworkCapture(enabled=True, connections=(conn,))
    obs = Observation(events=(), processes=(), phases=(), inventory=Inventory(), home=HOME, venv=VENV)
    fs = evaluate(obs, load_profile("default"), net)
    assert [(f.rule_id, f.evidence[0].destination) for f in fs] == [("PS002", "203.0.113.9:443")]
    # when the trace shows the connect, rule_outbound judges it (once)
    connect = Event(
        phase=Phase.IMPORT,
        seq=1,
        pid=9,
        time=1,
        syscall="connect",
        kind=EventKind.CONNECT,
        address=Address(family="inet", host="203.0.113.9", port=443),
    )
    obs2 = obs.model_copy(update={"events": (connect,)})
    assert [f.rule_id for f in evaluate(obs2, load_profile("default"), net)] == ["PS002"]
    # one list, worst first, event and sinkhole rules together
    dns = DnsQuery(phase=Phase.INSTALL, time=1.0, name="x.invalid", qtype="A")
    net2 = net.model_copy(update={"dns": (dns,)})
    low = Event(
        phase=Phase.IMPORT, seq=2, pid=9, time=1, syscall="openat", kind=EventKind.FILE_WRITE, path="/opt/x"
    )
    fs = evaluate(obs2.model_copy(update={"events": (connect, low)}), load_profile("default"), net2)
    assert [f.rule_id for f in fs] == ["PS011", "PS002", "PS020"]


def test_m5_wheel_shipping_sitecustomize_or_activate_is_persistence() -> None:
    site = f"{VENV}/lib/python3.11/site-packages"
    writes = tuple(
        Event(
            phase=Phase.INSTALL,
            seq=10**7 + i,
            pid=31,
            time=1,
            syscall="openat",
            kind=EventKind.FILE_WRITE,
            path=path,
            flags="O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC",
        )
        for i, path in enumerate((f"{site}/sitecustomize.py", f"{VENV}/bin/activate"))
    )
    obs = observation(("redteam-install.strace.gz", Phase.INSTALL), extra=writes)
    assert {e.origin for e in obs.events if e.seq >= 10**7} == {Origin.HARNESS}  # pip wrote them
    fs = [f for f in evaluate(obs, load_profile("default")) if f.rule_id == "PS005"]
    assert fs and {e.path for e in fs[0].evidence} == {w.path for w in writes}


def test_m7_decode_then_exec_in_either_order() -> None:
    for code in (
        "import base64;p=base64.b64decode('aW1wb3J0IG9z');exec(p)",
        "exec(__import__('zlib').decompress(b))",
    ):
        e = Event(
            phase=Phase.IMPORT,
            seq=1,
            pid=9,
            time=1,
            syscall="execve",
            kind=EventKind.EXEC,
            path="/usr/bin/python3",
            argv=("python3", "-c", code),
        )
        obs = Observation(events=(e,), processes=(), phases=(), inventory=Inventory(), home=HOME, venv=VENV)
        assert "PS021" in {f.rule_id for f in evaluate(obs)}, code


def test_reverse_dns_names_count_unless_loopback() -> None:
    def q(name: str) -> DnsQuery:
        return DnsQuery(phase=Phase.IMPORT, time=1.0, name=name, qtype="PTR")

    net = NetworkCapture(
        enabled=True, dns=(q("c2VjcmV0.9.113.0.203.in-addr.arpa"), q("1.0.0.127.in-addr.arpa"))
    )
    obs = Observation(events=(), processes=(), phases=(), inventory=Inventory(), home=HOME, venv=VENV)
    fs = [f for f in evaluate(obs, None, net) if f.rule_id == "PS011"]
    assert len(fs) == 1 and "c2VjcmV0" in fs[0].message and "127.in-addr" not in fs[0].message
