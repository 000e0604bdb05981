"""View models (sandbox.report.views) and the terminal layout (sandbox.ui.show)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from sandbox.errors import InputError
from sandbox.judge.rules import CREDENTIAL_PATHS, SYSTEM_SECRETS
from sandbox.models import (
    Address,
    Event,
    EventKind,
    Evidence,
    Finding,
    Lingering,
    Phase,
    PhaseResult,
    PhaseStatus,
    ProcessInfo,
    Report,
    Severity,
    Verdict,
)
from sandbox.report.json_format import load_report
from sandbox.report.views import (
    build_files,
    build_network,
    build_process_tree,
    build_view,
    describe,
    find_reports,
    load_reports,
    location_of,
    printable,
    venv_root,
)
from sandbox.ui.show import render_show

REPORTS = Path(__file__).resolve().parent.parent / "data" / "reports"
VENV = "/home/dev/project/.venv"
T0 = 1_795_000_000.0


def saved(name: str) -> Report:
    return load_report(REPORTS / name)


def ev(
    kind: EventKind,
    syscall: str,
    *,
    pid: int = 10,
    seq: int = 0,
    t: float = 0.0,
    phase: Phase = Phase.IMPORT,
    **kw: Any,
) -> Event:
    return Event(phase=phase, seq=seq, pid=pid, time=T0 + t, syscall=syscall, kind=kind, **kw)


def proc(
    pid: int,
    ppid: int | None,
    argv: Sequence[str] = ("python",),
    *,
    phase: Phase = Phase.IMPORT,
    start: float = 0.0,
    **kw: Any,
) -> ProcessInfo:
    return ProcessInfo(pid=pid, ppid=ppid, phase=phase, argv=tuple(argv), exe=argv[0], start=T0 + start, **kw)


def report(
    events: Sequence[Event] = (),
    processes: Sequence[ProcessInfo] = (),
    findings: Sequence[Finding] = (),
    phases: Sequence[PhaseResult] | None = None,
    **kw: Any,
) -> Report:
    if phases is None:
        phases = [PhaseResult(phase=p, status=PhaseStatus.OK, duration=1.0) for p in Phase]
    return Report(
        tool_version="test",
        target="x.whl",
        started=T0,
        finished=T0 + 3,
        profile="default",
        image=None,
        artifacts=(),
        phases=tuple(phases),
        summary=(),
        processes=tuple(processes),
        events=tuple(events),
        findings=tuple(findings),
        verdict=kw.pop("verdict", Verdict.CLEAN),
        verdict_reason=kw.pop("verdict_reason", "no findings"),
        **kw,
    )


def render(r: Report, **kw: Any) -> str:
    buf = io.StringIO()
    render_show(r, Console(file=buf, width=140, force_terminal=False, highlight=False), **kw)
    return buf.getvalue()


# ---------------------------------------------------------------- sanitising


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain/path.py", "plain/path.py"),
        ("caf\u00e9 \u6f22\u5b57", "caf\u00e9 \u6f22\u5b57"),
        ("a\x1b[31mred", "a\\x1b[31mred"),
        ("line\nforged row\r", "line\\nforged row\\r"),
        ("gnp\u202eexe.txt", "gnp\\u202eexe.txt"),
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("nul\x00del\x7fc1\x85", "nul\\x00del\\x7fc1\\x85"),
        ("lone\ud800surrogate", "lone\\ud800surrogate"),
    ],
)
def test_printable_shows_controls_and_bidi_as_escapes(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    printable(raw).encode("utf-8")  # always writable


def test_printable_cuts_visibly() -> None:
    assert printable("x" * 50, 10) == "x" * 9 + "…"
    assert printable("short", 10) == "short"


# ---------------------------------------------------------------- locations


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("/home/dev/.ssh/id_rsa", "credentials"),
        ("/root/.aws/credentials", "credentials"),
        ("/home/dev/project/.env", "credentials"),
        ("/run/secrets/token", "credentials"),
        ("/etc/shadow", "credentials"),
        (f"{VENV}/lib/python3.11/site-packages/six.py", "site-packages"),
        (f"{VENV}/bin/python", "site-packages"),
        ("/usr/local/lib/python3.11/site-packages/x/__init__.py", "site-packages"),
        ("/tmp/pip-build-env-x/overlay/lib/python3.11/site-packages/setuptools/x.py", "temp"),
        ("/var/tmp/x", "temp"),
        ("/dev/shm/x", "temp"),
        ("/home/dev/.cache/pip/x", "home"),
        ("/home/dev/project", "home"),
        ("/usr/lib/python3.11/json/__init__.py", "system"),
        ("/etc/os-release", "system"),
        ("/proc/self/status", "system"),
        ("/stage/artifacts/x.whl", "other"),
        ("relative/path", "other"),
    ],
)
def test_location_classes(path: str, where: str) -> None:
    assert location_of(path, VENV) == where


def test_venv_root() -> None:
    assert venv_root(f"{VENV}/lib/python3.11/site-packages") == VENV
    assert venv_root("/weird") == ""


def _top_level_alternatives(pattern: str) -> list[str]:
    out, depth, cur, i = [], 0, "", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            cur += pattern[i : i + 2]
            i += 2
            continue
        depth += c == "("
        depth -= c == ")"
        if c == "|" and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    return [*out, cur]


def test_credential_prefilter_covers_every_credential_pattern() -> None:
    """location_of skips the credential regex for paths without "/.", "secrets" or "/etc/": if the
    judge gains a pattern outside that, this fails and the pre-filter in views.py must grow."""
    alternatives = _top_level_alternatives(CREDENTIAL_PATHS.pattern)
    assert len(alternatives) > 10
    for alt in alternatives:
        assert "/\\." in alt or "secrets" in alt, alt
    assert SYSTEM_SECRETS.pattern.startswith("^/etc/")


# ---------------------------------------------------------------- descriptions


def test_describe_events() -> None:
    assert describe(
        ev(EventKind.EXEC, "execve", path="/usr/bin/python", argv=("/usr/bin/python", "-c", "x y"))
    ) == ("/usr/bin/python", "-c 'x y'")
    # argv[0] differs from what ran: both shown
    assert describe(ev(EventKind.EXEC, "execve", path="/usr/bin/uname", argv=("uname", "-rs"))) == (
        "/usr/bin/uname",
        "uname -rs",
    )
    assert describe(
        ev(EventKind.CONNECT, "connect", address=Address(family="inet", host="192.0.2.1", port=443))
    ) == ("192.0.2.1:443", "")
    sub, det = describe(
        ev(
            EventKind.SEND,
            "sendto",
            address=Address(family="inet6", host="2001:db8::1", port=53),
            size=12,
            data="hello\\n",
        )
    )
    assert (sub, det) == ("[2001:db8::1]:53", '12 B "hello\\n"')  # strace's escapes kept as printed
    assert describe(ev(EventKind.FILE_RENAME, "rename", path="/tmp/a", path2="/tmp/b")) == (
        "/tmp/a",
        "→ /tmp/b",
    )
    assert describe(ev(EventKind.FILE_WRITE, "write", path="/tmp/a", size=3, data="abc")) == (
        "/tmp/a",
        '3 B "abc"',
    )
    assert describe(ev(EventKind.FILE_STAT, "newfstatat", flags="pipe:[1]")) == ("pipe:[1]", "")
    assert describe(ev(EventKind.EXIT, "killed", flags="SIGKILL")) == ("SIGKILL", "")
    assert describe(ev(EventKind.EXIT, "exited", result=3)) == ("status 3", "")
    assert describe(ev(EventKind.SPAWN, "clone3", target=11, flags="process")) == ("pid 11", "process")
    assert describe(ev(EventKind.SIGNAL, "kill", target=1, flags="SIGKILL")) == ("pid 1", "SIGKILL")


# ---------------------------------------------------------------- process tree


def test_tree_nests_by_ppid_and_marks_cited_pids() -> None:
    procs = [
        proc(
            10, None, ("python", "-c", "pass"), start=0, execs=(("setpriv", "--"), ("python", "-c", "pass"))
        ),
        proc(11, 10, ("sh", "-c", "curl x"), start=1, exit_code=0),
        proc(12, 11, ("curl", "x"), start=2, killed_by="SIGKILL"),
        proc(13, 10, ("python",), start=3, exit_code=2),
    ]
    roots = build_process_tree(
        Phase.IMPORT,
        procs,
        t0=T0,
        event_counts={12: 5},
        rules_by_pid={("import", 12): ("PS003",)},
        lingering=[13],
        extra_pids=[99],
    )
    assert [r.pid for r in roots] == [10, 99]
    walk = [(d, n.pid) for d, n in roots[0].walk()]
    assert walk == [(0, 10), (1, 11), (2, 12), (1, 13)]
    nodes = {n.pid: n for _, n in roots[0].walk()}
    assert nodes[10].via == ("setpriv",) and nodes[10].argv == "python -c pass"
    assert nodes[12].status == "killed by SIGKILL" and nodes[12].failed and nodes[12].rules == ("PS003",)
    assert nodes[12].events == 5 and nodes[12].start == pytest.approx(2.0)
    assert nodes[13].status == "exit 2" and nodes[13].failed and nodes[13].lingering
    assert nodes[11].argv == "sh -c 'curl x'"
    assert roots[1].known is False and roots[1].status == "no process record"


def test_tree_survives_ppid_cycles_and_deep_chains() -> None:
    cycle = [proc(1, 2), proc(2, 1), proc(3, 3), proc(4, 1)]
    roots = build_process_tree(Phase.IMPORT, cycle)
    seen = sorted(n.pid for r in roots for _, n in r.walk())
    assert seen == [1, 2, 3, 4]  # every process once, no endless loop
    deep = [proc(i, i - 1 if i > 1 else None, start=i) for i in range(1, 5001)]
    (root,) = build_process_tree(Phase.IMPORT, deep)
    depths = [d for d, _ in root.walk()]
    assert max(depths) == 4999 and len(depths) == 5000  # no recursion limit hit


def test_tree_of_saved_report() -> None:
    view = build_view(saved("pth-exfil.json"))
    startup = view.phase(Phase.STARTUP)
    assert startup is not None
    nodes = {n.pid: n for r in startup.processes for _, n in r.walk()}
    flagged = {pid: n.rules for pid, n in nodes.items() if n.rules}
    assert flagged and all(set(rules) == {"PS001", "PS002"} for rules in flagged.values())
    assert any("python -c pass" in n.argv for n in nodes.values())
    install = view.phase(Phase.INSTALL)
    assert install is not None and all(n.origin == "harness" for r in install.processes for _, n in r.walk())


# ---------------------------------------------------------------- timeline


def test_timeline_orders_by_time_and_marks_cited_events() -> None:
    events = [
        ev(EventKind.FILE_READ, "openat", seq=3, t=0.5, path="/home/dev/.ssh/id_rsa", errno="ENOENT"),
        ev(EventKind.EXEC, "execve", seq=1, t=0.1, path="/usr/bin/python", argv=("/usr/bin/python",)),
        ev(EventKind.FILE_STAT, "newfstatat", seq=2, t=0.1, path="/etc/x"),
    ]
    finding = Finding(
        rule_id="PS001",
        title="credential access",
        severity=Severity.MEDIUM,
        phase=Phase.IMPORT,
        message="m",
        evidence=(
            Evidence(
                phase=Phase.IMPORT, pid=10, time=T0 + 0.5, syscall="openat", path="/home/dev/.ssh/id_rsa"
            ),
        ),
    )
    view = build_view(report(events, [proc(10, None, start=0)], [finding]))
    tl = view.phases[2].timeline
    assert [r.seq for r in tl] == [1, 2, 3]
    assert tl[0].t == pytest.approx(0.1) and tl[-1].t == pytest.approx(0.5)
    assert tl.cited == (2,) and tl[2].rules == ("PS001",) and tl[0].rules == ()
    assert tl[2].description == "openat /home/dev/.ssh/id_rsa (ENOENT)"
    assert [r.seq for r in tl[1:]] == [2, 3]
    assert len(tl) == 3


def test_phases_in_run_order_with_extra_phases() -> None:
    events = [ev(EventKind.FILE_STAT, "stat", phase=Phase.STARTUP, path="/x")]
    only_install = [
        PhaseResult(phase=Phase.INSTALL, status=PhaseStatus.ERROR, duration=1.0, problems=("boom",))
    ]
    view = build_view(report(events, phases=only_install))
    assert [(p.phase, p.ran) for p in view.phases] == [(Phase.INSTALL, True), (Phase.STARTUP, False)]
    assert view.phases[0].failed and "boom" in view.phases[0].notes
    assert [
        p.phase for p in build_view(report(events, phases=only_install), phases=[Phase.STARTUP]).phases
    ] == [Phase.STARTUP]


# ---------------------------------------------------------------- network and files


def test_network_groups_repeats_and_names_protocol() -> None:
    dst = Address(family="inet", host="192.0.2.9", port=53)
    events = [
        ev(EventKind.SOCKET, "socket", seq=1, t=0.1, flags="AF_INET, SOCK_DGRAM|SOCK_CLOEXEC, IPPROTO_IP"),
        ev(EventKind.SEND, "sendto", seq=2, t=0.2, address=dst, data="q1", errno="ENETUNREACH"),
        ev(EventKind.SEND, "sendto", seq=3, t=0.3, address=dst, data="q2", errno="ENETUNREACH"),
        ev(EventKind.SOCKET, "socket", seq=4, t=0.4, flags="AF_INET6, SOCK_STREAM, IPPROTO_IP"),
        ev(EventKind.BIND, "bind", seq=5, t=0.5, address=Address(family="inet6", host="::1", port=0)),
        ev(
            EventKind.CONNECT,
            "connect",
            seq=6,
            t=0.6,
            pid=11,
            address=Address(family="unix", path="/run/x.sock"),
        ),
    ]
    rows = build_network(events, T0, {10: "python -c x"})
    by_dest = {r.destination: r for r in rows}
    send = by_dest["192.0.2.9:53"]
    assert (send.count, send.protocol, send.outbound, send.errno, send.data, send.process) == (
        2,
        "udp",
        True,
        "ENETUNREACH",
        "q1",
        "python -c x",
    )
    assert by_dest["[::1]:0"].protocol == "tcp" and not by_dest["[::1]:0"].outbound
    assert by_dest["unix:/run/x.sock"].protocol == "unix" and not by_dest["unix:/run/x.sock"].outbound


def test_files_grouped_with_access_kinds() -> None:
    events = [
        ev(EventKind.FILE_READ, "openat", seq=1, t=0.1, path="/home/dev/.ssh/id_rsa", errno="ENOENT"),
        ev(EventKind.FILE_STAT, "stat", seq=2, t=0.2, path="/home/dev/.ssh/id_rsa"),
        ev(EventKind.FILE_WRITE, "openat", seq=3, t=0.3, path="/tmp/a", pid=11),
        ev(EventKind.FILE_RENAME, "rename", seq=4, t=0.4, path="/tmp/a", path2="/home/dev/.bashrc"),
        ev(EventKind.EXEC, "execve", seq=5, t=0.5, path="/tmp/a"),
        ev(EventKind.FILE_STAT, "stat", seq=6, t=0.6, path="/usr/lib/x"),
        ev(EventKind.FILE_STAT, "fstat", seq=7, t=0.7, flags="pipe:[3]"),
    ]
    groups = {g.location: g for g in build_files(events, T0, VENV)}
    assert list(groups) == ["credentials", "home", "temp", "system"]
    (cred,) = groups["credentials"].rows
    assert (cred.access, cred.count, cred.errnos, cred.ok) == (("read", "stat"), 2, ("ENOENT",), 1)
    (tmp,) = groups["temp"].rows
    assert tmp.access == ("exec", "write", "rename") and tmp.pids == (10, 11)
    assert groups["home"].rows[0].access == ("rename-to",)


# ---------------------------------------------------------------- findings


def test_findings_worst_first_with_descriptions() -> None:
    view = build_view(saved("pth-exfil.json"))
    sev = [f.severity for f in view.findings]
    assert sev == sorted(sev, key=lambda s: -s.rank)
    pth = next(f for f in view.findings if f.rule_id == "PS009")
    assert pth.evidence[0].t is None and "pth" in pth.evidence[0].path and pth.description
    ps2 = next(f for f in view.findings if f.rule_id == "PS002")
    assert ps2.evidence[0].destination.startswith("192.0.2.") and ps2.evidence[0].t is not None


# ---------------------------------------------------------------- documents holding reports


def test_load_reports_of_vet_and_gate_documents(tmp_path: Path) -> None:
    (one,) = load_reports(REPORTS / "six-clean.json")
    assert one[0] == "six 1.17.0" and one[1].verdict is Verdict.CLEAN
    a = json.loads((REPORTS / "six-clean.json").read_text())
    b = json.loads((REPORTS / "pth-exfil.json").read_text())
    gate = {
        "schema_version": "1.0",
        "tool_version": "x",
        "outcomes": [
            {"entry": {"name": "six"}, "status": "vetted", "report": a},
            {"entry": {"name": "junk"}, "status": "not_vetted", "report": None},
            {"entry": {"name": "pthdemo"}, "status": "vetted", "report": b},
        ],
    }
    path = tmp_path / "gate.json"
    path.write_text(json.dumps(gate))
    found = load_reports(path)
    assert [label for label, _ in found] == [
        "six 1.17.0 ($.outcomes[0].report)",
        "pthdemo 1.0 ($.outcomes[2].report)",
    ]
    assert [p for p, _ in find_reports({"old": a, "new": b})] == ["$.old", "$.new"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not JSON"),
        ('{"schema_version": "1.0", "outcomes": []}', "holds no pkgsandbox report"),
        ('{"schema_version": "9.0", "events": [], "findings": []}', "report schema 9.0"),
        ('{"x": {"schema_version": "1.0", "events": [], "findings": []}}', "not a valid report: $.x."),
    ],
)
def test_load_reports_bad_input(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(InputError, match=re.escape(message)):
        load_reports(path)


# ---------------------------------------------------------------- terminal layout


def test_show_lays_out_every_view() -> None:
    out = render(saved("pth-exfil.json"))
    assert "verdict: MALICIOUS" in out
    for text in (
        "findings (5)",
        "PS001",
        "PS002",
        "PS009",
        "processes (3)",
        "python -c pass",
        "timeline (42",
        "network (4",
        "192.0.2.44:8443",
        "files (8 paths",
        "credentials",
        "/home/dev/.ssh/id_rsa",
        "phase install",
        "phase startup",
        "phase import",
        "via setpriv → choom",
        "[harness]",
    ):
        assert text in out, text


def test_show_clean_report() -> None:
    out = render(saved("six-clean.json"))
    assert "verdict: CLEAN" in out and "no findings" in out


def test_show_one_phase_and_unknown_phase() -> None:
    out = render(saved("pth-exfil.json"), phase="import")
    assert "phase import" in out and "phase startup" not in out and "(startup)" not in out
    with pytest.raises(ValueError, match="unknown phase 'nope'"):
        render(saved("pth-exfil.json"), phase="nope")
    empty = report([], phases=[PhaseResult(phase=Phase.INSTALL, status=PhaseStatus.OK, duration=1.0)])
    assert "phase import is not in this report (phases: install)" in render(empty, phase=Phase.IMPORT)


def test_show_limit_keeps_cited_events_and_says_what_it_cut() -> None:
    out = render(saved("pth-exfil.json"), phase="startup", limit=5)
    assert "showing 10 of 42 events (the first 5, and every event a finding cites)" in out
    assert "events not shown" in out
    assert out.count("⚑ PS002") >= 3  # the cited connects beyond the limit are still shown


def test_show_is_inert_on_hostile_strings() -> None:
    out = render(saved("hostile-names.json"))
    assert (
        "\x1b" not in out and "\u202e" not in out
    )  # no terminal escape, no bidi override reaches the terminal
    assert "\\x1b[31m" in out and "\\u202egnp.exe" in out  # shown, as escapes
    assert "</script>" in out  # and the rest literally


def test_show_does_not_interpret_markup_in_data() -> None:
    events = [ev(EventKind.FILE_READ, "openat", path="/tmp/[bold red]x[/]", t=0.1)]
    r = report(
        events,
        [proc(10, None, ("python", "[link=http://x]y[/link]"), start=0)],
        notes=("[blink]n[/]",),
        verdict_reason="[red]r[/]",
        phases=[
            PhaseResult(
                phase=Phase.IMPORT,
                status=PhaseStatus.OK,
                duration=1.0,
                lingering=(Lingering(pid=10, ppid=None, argv=("x",), threads=1, status="S"),),
            )
        ],
    )
    out = render(r)
    for literal in ("/tmp/[bold red]x[/]", "[link=http://x]y[/link]", "[blink]n[/]", "[red]r[/]"):
        assert literal in out, literal
    assert "still running at window close" in out


def test_show_terminal_colours_do_not_break() -> None:
    buf = io.StringIO()
    render_show(
        saved("hostile-names.json"),
        Console(file=buf, width=100, force_terminal=True, color_system="truecolor"),
    )
    text = buf.getvalue()
    assert "\x1b[31m]]" not in text  # the payload's own ESC[31m never reaches the terminal raw
    assert "\u202e" not in text
