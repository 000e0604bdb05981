"""From the sinkhole's capture files to the report's network section, its rules and
its terminal rendering (sandbox.trace.netcapture, rules PS010 to PS012)."""

from __future__ import annotations

import base64
import gzip
import io
import json
import random
from pathlib import Path
from typing import Any

from rich.console import Console

from sandbox.judge.honeytokens import make_honeytokens
from sandbox.judge.profiles import AllowConf, NetworkRule, Profile, RulesConf
from sandbox.judge.rules import CATALOGUE, evaluate_network
from sandbox.models import (
    Address,
    Event,
    EventKind,
    NetworkCapture,
    Origin,
    Phase,
    ProcessInfo,
    Report,
    Severity,
    Verdict,
)
from sandbox.trace.netcapture import network_capture
from sandbox.ui.terminal import render_network

T0 = 1_800_000_000.0
HOME = "/home/dev"
TOKENS = make_honeytokens(random.Random(7))
ARGV = ("/home/dev/project/.venv/bin/python", "/usr/local/lib/devtools/run/import_all.py", "evil")
WINDOWS = {Phase.INSTALL: (T0 - 10, T0 - 5), Phase.STARTUP: (T0 - 5, T0 - 1), Phase.IMPORT: (T0 - 1, T0 + 30)}


def ev(kind: EventKind, t: float, pid: int = 42, **kw: Any) -> Event:
    return Event(
        phase=Phase.IMPORT,
        seq=int(t * 1000) % 100000,
        pid=pid,
        time=t,
        syscall=kw.pop("syscall", "x"),
        kind=kind,
        origin=Origin.CANDIDATE,
        **kw,
    )


def write_capture(
    d: Path, recs: list[dict[str, Any]], payloads: dict[str, bytes] | None = None, enabled: bool = True
) -> None:
    info = {"enabled": enabled, "problems": [] if enabled else ["ip: boom"]}
    (d / "sinkhole.json").write_text(json.dumps(info))
    (d / "net.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs) + "{not json\n")
    for name, data in (payloads or {}).items():
        (d / name).write_bytes(data)


def capture(tmp_path: Path) -> NetworkCapture:
    aws = TOKENS.files[".aws/credentials"].encode()
    token = TOKENS.env["GITHUB_TOKEN"].encode().hex()
    body = base64.b64encode(gzip.compress(aws))
    stream = b"POST /u HTTP/1.1\r\nHost: up.example\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    recs = [
        {
            "kind": "dns",
            "t": T0 + 1,
            "phase": "import",
            "transport": "udp",
            "src": "192.168.1.9:40000",
            "resolver": None,
            "pid": None,
            "argv": [],
            "name": f"{token[:40]}.{token[40:]}.c2.invalid",
            "qtype": "A",
            "answer": "198.18.0.8",
        },
        {
            "kind": "dns",
            "t": T0 + 1.5,
            "phase": "import",
            "transport": "udp",
            "src": "192.168.1.9:40002",
            "pid": 43,
            "name": "up.example",
            "qtype": "A",
            "answer": "198.18.0.7",
        },
        {
            "kind": "dns",
            "t": T0 + 1.1,
            "phase": "import",
            "transport": "udp",
            "src": "192.168.1.9:40001",
            "pid": 42,
            "argv": list(ARGV),
            "name": "alex-xps",
            "qtype": "A",
            "answer": "192.168.1.9",
        },
        {
            "kind": "dns",
            "t": T0 + 1.2,
            "phase": "setup",
            "malformed": True,
            "error": "short",
            "raw_b64": "AAE=",
            "src": "x",
            "pid": None,
        },
        {
            "kind": "tcp",
            "id": 1,
            "t": T0 + 2,
            "phase": "import",
            "dst": "198.18.0.7:80",
            "bytes": len(stream),
            "captured": len(stream),
            "truncated": False,
            "close_reason": "eof",
            "proto": "http",
            "pid": None,
            "argv": [],
            "payload": "net-tcp-1.bin",
            "http": [
                {
                    "method": "POST",
                    "target": "/u",
                    "version": "HTTP/1.1",
                    "headers": [["Host", "up.example"], ["Content-Length", str(len(body))]],
                    "body_bytes": len(body),
                    "body_b64": base64.b64encode(body).decode(),
                    "complete": True,
                }
            ],
        },
        {
            "kind": "tcp",
            "id": 2,
            "t": T0 + 3,
            "phase": "import",
            "dst": "169.254.169.254:80",
            "bytes": 60,
            "captured": 60,
            "truncated": False,
            "close_reason": "eof",
            "proto": "http",
            "pid": 42,
            "payload": "../../etc/passwd",
            "http": [
                {
                    "method": "GET",
                    "target": "/latest/meta-data/iam/security-credentials/",
                    "version": "HTTP/1.1",
                    "headers": [["Host", "169.254.169.254"]],
                    "body_bytes": 0,
                    "body_b64": "",
                }
            ],
        },
        {
            "kind": "tcp",
            "id": 3,
            "t": T0 + 4,
            "phase": "import",
            "dst": "[2001:db8::5]:443",
            "bytes": 300,
            "captured": 300,
            "truncated": False,
            "close_reason": "eof",
            "proto": "tls",
            "pid": 42,
            "tls": {"sni": "tls.c2.invalid", "alpn": ["h2"], "version": "TLS 1.3"},
        },
        {
            "kind": "tcp",
            "id": 4,
            "t": T0 + 5,
            "phase": "import",
            "dst": "203.0.113.9:8080",
            "bytes": 5_000_000,
            "captured": 65536,
            "truncated": True,
            "close_reason": "eof",
            "proto": "unknown",
            "pid": 42,
        },
        {
            "kind": "udp",
            "t": T0 + 6,
            "phase": "import",
            "src": "192.168.1.9:5555",
            "bytes": 11,
            "captured": 11,
            "truncated": False,
            "data_b64": base64.b64encode(b"hello there").decode(),
            "pid": None,
            "argv": [],
        },
        {
            "kind": "stats",
            "t": T0 + 9,
            "tcp_evicted": 3,
            "suppressed": {"tcp": 4, "udp": 0, "dns": 0},
            "budget_hit": False,
        },
    ]
    write_capture(tmp_path, recs, {"net-tcp-1.bin": stream})
    events = [
        ev(
            EventKind.CONNECT,
            T0 + 0.99,
            pid=43,
            syscall="connect",
            address=Address(family="inet", host="192.168.1.1", port=53),
        ),
        ev(
            EventKind.CONNECT,
            T0 + 1.99,
            pid=43,
            syscall="connect",
            address=Address(family="inet", host="198.18.0.7", port=80),
        ),
        ev(
            EventKind.SEND,
            T0 + 6.0,
            pid=44,
            syscall="sendto",
            size=11,
            address=Address(family="inet", host="198.51.100.3", port=4444),
        ),
        ev(
            EventKind.SEND,
            T0 + 6.1,
            pid=45,
            syscall="sendto",
            size=99,
            address=Address(family="inet", host="198.51.100.99", port=4444),
        ),
        ev(EventKind.FILE_READ, T0 + 0.5, path=f"{HOME}/.aws/credentials", syscall="openat"),
        ev(EventKind.FILE_READ, T0 + 0.6, path=f"{HOME}/.ssh/id_rsa", syscall="openat", errno="EACCES"),
    ]
    procs = [
        ProcessInfo(pid=p, ppid=1, phase=Phase.IMPORT, argv=ARGV, exe=ARGV[0], start=T0) for p in (42, 43, 44)
    ]
    return network_capture(tmp_path, events, procs, WINDOWS, TOKENS, HOME)


def test_capture_is_completed_from_the_trace(tmp_path: Path) -> None:
    net = capture(tmp_path)
    assert net.enabled and not net.quiet
    exfil_q = net.dns[0]
    assert exfil_q.pid == 43 and exfil_q.resolver == "192.168.1.1:53" and exfil_q.process == ARGV
    bad = next(q for q in net.dns if q.malformed)
    assert bad.phase is Phase.IMPORT  # its "setup" tag is not a phase: placed by time
    http = net.connections[0]
    assert http.pid == 43 and http.host == http.http[0].host == "up.example" and http.protocol == "http"
    meta = net.connections[1]
    assert meta.labels == ("cloud-metadata",) and meta.data == ""  # a payload name outside the dir is ignored
    tls = net.connections[2]
    assert tls.tls is not None and tls.tls.sni == "tls.c2.invalid" and tls.host == "tls.c2.invalid"
    assert net.connections[3].truncated and net.truncated
    gram = net.datagrams[0]
    assert gram.destination == "198.51.100.3:4444" and gram.pid == 44 and gram.data == "hello there"
    assert net.dropped == 4
    assert [r.location for r in net.honeytoken_reads] == ["~/.aws/credentials"]  # EACCES is not a read
    assert len(net.honeytokens) == len(TOKENS.canaries)
    assert all(h.fingerprint not in {c.value for c in TOKENS.canaries} for h in net.honeytokens)


def test_exfiltration_is_proven_per_channel(tmp_path: Path) -> None:
    net = capture(tmp_path)
    got = {(x.canary, x.channel) for x in net.exfiltration}
    assert ("GITHUB_TOKEN", "dns") in got
    assert ("aws_secret_access_key", "http") in got and ("aws_access_key_id", "http") in got
    http = next(x for x in net.exfiltration if x.channel == "http")
    assert http.destination == "198.18.0.7:80" and http.host == "up.example" and "gzip" in http.encoding
    dns = next(x for x in net.exfiltration if x.channel == "dns")
    assert dns.encoding.startswith("hex") and dns.destination == "192.168.1.1:53" and dns.pid == 43


def test_network_rules(tmp_path: Path) -> None:
    net = capture(tmp_path)
    findings = evaluate_network(net, None, hostname="alex-xps")
    by = {f.rule_id: f for f in findings}
    assert findings[0].rule_id == "PS010" and by["PS010"].severity is Severity.CRITICAL
    assert any(e.destination == "198.18.0.7:80" and "gzip" in e.detail for e in by["PS010"].evidence)
    assert "alex-xps" not in by["PS011"].message and "c2.invalid" in by["PS011"].message
    assert by["PS012"].severity is Severity.MEDIUM
    assert by["PS012"].evidence[0].path == f"{HOME}/.aws/credentials"
    assert {"PS010", "PS011", "PS012"} <= set(CATALOGUE)
    # the profile can allow names and override or disable the rules
    profile = Profile(
        name="t",
        allow=AllowConf(network=(NetworkRule(host="*.c2.invalid"),)),
        rules=RulesConf(disabled=("PS012",), severity={"PS010": Severity.HIGH}),
    )
    findings = evaluate_network(net, profile, hostname="alex-xps")
    ids = {f.rule_id: f for f in findings}
    assert "PS012" not in ids and ids["PS010"].severity is Severity.HIGH
    assert "c2.invalid" not in ids["PS011"].message  # only the malformed query is left
    assert evaluate_network(None) == []


def test_quiet_and_disabled_sections(tmp_path: Path) -> None:
    write_capture(tmp_path, [{"kind": "stats", "t": T0, "tcp_dropped": 0, "suppressed": {}}])
    net = network_capture(tmp_path, [], [], WINDOWS, TOKENS, HOME)
    assert net.enabled and net.quiet and not net.exfiltration and evaluate_network(net) == []
    off = tmp_path / "off"
    off.mkdir()
    write_capture(off, [], enabled=False)
    net = network_capture(off, [], [], WINDOWS, None, HOME)
    assert not net.enabled and net.problems == ("ip: boom",) and net.honeytokens == ()
    empty = tmp_path / "none"
    empty.mkdir()
    assert not network_capture(empty, [], [], WINDOWS).enabled


def test_report_round_trip_and_terminal(tmp_path: Path) -> None:
    net = capture(tmp_path)
    report = Report(
        tool_version="t",
        target="x",
        started=T0,
        finished=T0 + 1,
        profile="default",
        image=None,
        artifacts=(),
        phases=(),
        summary=(),
        processes=(),
        events=(),
        findings=(),
        verdict=Verdict.CLEAN,
        verdict_reason="",
        network=net,
    )
    again = Report.model_validate(json.loads(report.model_dump_json()))
    assert again.network == net
    out = io.StringIO()
    render_network(net, Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert "EXFILTRATION GITHUB_TOKEN" in text and "via dns" in text
    assert "SNI tls.c2.invalid" in text and "CLOUD-METADATA" in text and "198.51.100.3:4444" in text
    assert "honeytokens read" in text
    out = io.StringIO()
    render_network(NetworkCapture(enabled=True), Console(file=out, width=200, color_system=None))
    assert "no DNS query, connection or datagram" in out.getvalue()


def test_a_datagram_matches_the_send_of_its_own_address_family(tmp_path: Path) -> None:
    """Seen under the eBPF recorder (a fast candidate): the same 21 bytes sent over v4 UDP
    and then v6 TCP; the datagram arrived nearer the TCP send (1.5 ms after the sendto, 0.4 ms
    after the TCP send). The listener's source address (v4) picks the v4 sendto."""
    t = T0 + 3
    data = b"lk7fb261c989-49c8d7fa"
    write_capture(
        tmp_path,
        [
            {
                "kind": "udp",
                "t": t + 0.0019,
                "phase": "import",
                "src": "192.168.1.9:51000",
                "bytes": len(data),
                "captured": len(data),
                "truncated": False,
                "data_b64": base64.b64encode(data).decode(),
                "pid": 32,
                "argv": [],
            }
        ],
    )
    v4 = Address(family="inet", host="203.0.113.247", port=31587)
    v6 = Address(family="inet6", host="2001:db8::f88f", port=31587)
    events = [
        ev(EventKind.SEND, t, pid=32, syscall="sendto", size=len(data), address=v4),
        ev(EventKind.SEND, t + 0.0015, pid=32, syscall="sendto", size=len(data), address=v6),
    ]
    net = network_capture(tmp_path, events, [], WINDOWS, None, HOME)
    assert [g.destination for g in net.datagrams] == ["203.0.113.247:31587"]
    # over IPv6 the v6 send is the one; a v4-mapped v6 send counts as IPv4
    mapped = Address(family="inet6", host="::ffff:203.0.113.247", port=31587)
    events = [
        ev(EventKind.SEND, t, pid=32, syscall="sendto", size=len(data), address=mapped),
        ev(EventKind.SEND, t + 0.0015, pid=32, syscall="sendto", size=len(data), address=v6),
    ]
    assert network_capture(tmp_path, events, [], WINDOWS, None, HOME).datagrams[0].destination == (
        "[::ffff:203.0.113.247]:31587"
    )
    recs = json.loads((tmp_path / "net.jsonl").read_text().splitlines()[0])
    write_capture(tmp_path, [{**recs, "src": "[2001:db8::1]:51000"}])
    assert network_capture(tmp_path, events, [], WINDOWS, None, HOME).datagrams[0].destination == (
        "[2001:db8::f88f]:31587"
    )


def test_requests_the_report_cannot_keep_whole_make_the_connection_truncated(tmp_path: Path) -> None:
    """Hostile read (s27): a target past 2048 characters (data after 2048 slashes), more
    than 16 requests or 64 headers were cut by the report and the rest judged a plain
    GET. A connection the report keeps less of than was sent is truncated (never plain)."""
    get = {"method": "GET", "version": "HTTP/1.1", "headers": [["Host", "cdn.example"]], "complete": True}

    def tcp(**http: Any) -> dict[str, Any]:
        reqs = http.pop("reqs", [{**get, "target": "/a.json", **http}])
        return {
            "kind": "tcp",
            "t": T0 + 3,
            "phase": "import",
            "dst": "198.51.100.7:80",
            "bytes": 100,
            "captured": 100,
            "proto": "http",
            "http": reqs,
            "pid": 42,
            "argv": [],
        }

    long_target = "/assets/models.json" + "/" * 2048 + "/aGVsbG8gd29ybGQ"
    recs = [
        tcp(target=long_target),
        tcp(reqs=[{**get, "target": "/a.json"}] * 17),
        tcp(headers=[["Host", "cdn.example"]] * 65),
        tcp(target="/x" * 100, target_bytes=5000),  # the sinkhole kept 4096 of the target
        tcp(headers_dropped=3),
        tcp(),
    ]
    write_capture(tmp_path, recs)
    net = network_capture(tmp_path, [], [], WINDOWS, None, HOME)
    assert [c.truncated for c in net.connections] == [True] * 5 + [False]


def test_the_capture_names_the_sandbox_s_own_name_server(tmp_path: Path) -> None:
    write_capture(tmp_path, [])
    info = json.loads((tmp_path / "sinkhole.json").read_text())
    (tmp_path / "sinkhole.json").write_text(json.dumps({**info, "net": {"gateway": "192.168.4.1"}}))
    assert network_capture(tmp_path, [], [], WINDOWS, None, HOME).resolvers == ("192.168.4.1",)


def test_a_refused_tls_hello_is_kept_whole_for_the_secrets_comparison(tmp_path: Path) -> None:
    """Hostile read (s27): a refused hello kept its first 256 bytes, and PS031 compared
    those: data placed after them (an extension of its own) was never compared."""
    hello = b"\x16\x03\x01\x02\x50" + b"\x00" * 495 + b"MARKER-after-byte-500" + b"\x00" * 80
    rec = {
        "kind": "tcp",
        "t": T0 + 3,
        "phase": "import",
        "dst": "198.51.100.7:443",
        "bytes": len(hello),
        "captured": len(hello),
        "proto": "tls",
        "tls": {"sni": "cdn.example", "alpn": ["h2"], "handshake_error": "TLSV1_ALERT_UNKNOWN_CA"},
        "payload": "net-tcp-1.bin",
        "pid": 42,
        "argv": [],
    }
    write_capture(tmp_path, [rec, {**rec, "proto": "unknown", "tls": None}], {"net-tcp-1.bin": hello})
    tls, raw = network_capture(tmp_path, [], [], WINDOWS, None, HOME).connections
    assert "MARKER-after-byte-500" in tls.data and "MARKER" not in raw.data
