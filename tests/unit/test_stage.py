"""The bait second stage: the sinkhole answers every request with a Python/sh polyglot
that only looks for a random path; running it is PS013, and a phase that was fed it
and never ran it has its accounted fetches LOW (a library that reads ``.env`` and
downloads a price list at import was ``suspicious`` before)."""

from __future__ import annotations

import random
import string
import subprocess

from sandbox.agent.sinkhole.config import Limits, NetConfig
from sandbox.agent.sinkhole.http import HttpStream, stage_body
from sandbox.judge.rules import evaluate
from sandbox.models import EventKind, HttpExchange, NetConnection, NetworkCapture, Phase, Severity, TlsHello
from sandbox.runner.plan import sinkhole_plan
from tests.unit.test_accounted import RESOLVER, _get, _https, _name
from tests.unit.test_rules import ev, inet, obs


def _stage() -> str:
    return "/var/tmp/." + "".join(random.choices(string.ascii_lowercase + string.digits, k=14))


def test_the_stage_runs_under_exec_eval_and_sh_and_only_looks_for_its_path(tmp_path: object) -> None:
    path = _stage()
    body = stage_body(path).decode()
    assert eval(body) == "False"  # eval(resp.text): one expression
    exec(body, {})  # exec(resp.read())
    # `curl … | sh`: our own constant text, run by the host's sh to show it parses
    out = subprocess.run(["sh", "-xc", body], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    assert f"test -e {path}" in out.stderr
    assert stage_body("") == b""


def test_every_answer_but_heads_carries_the_stage_and_the_record_says_so() -> None:
    path = _stage()
    s = HttpStream(Limits(), stage_body(path))
    replies = s.feed(
        b"GET /prices.json HTTP/1.1\r\nHost: a.example\r\n\r\nHEAD / HTTP/1.1\r\nHost: a.example\r\n\r\n"
    )
    assert len(replies) == 2
    assert replies[0].endswith(stage_body(path)) and b"Content-Type: text/plain" in replies[0]
    assert (
        path.encode() not in replies[1] and f"Content-Length: {len(stage_body(path))}".encode() in replies[1]
    )
    assert [r.get("staged", False) for r in s.requests] == [True, False]
    assert (
        HttpStream(Limits())
        .feed(b"GET / HTTP/1.1\r\n\r\n")[0]
        .endswith(b"Content-Length: 0\r\nConnection: keep-alive\r\n\r\n")
    )


def test_the_plan_picks_a_random_stage_path_the_daemon_accepts() -> None:
    a, b = sinkhole_plan(True, 64), sinkhole_plan(True, 64)
    assert a["stage"] != b["stage"]
    assert NetConfig.from_plan({"sinkhole": a}).stage == a["stage"]
    # never a path that could break out of the stage's quoting
    assert NetConfig.from_plan({"sinkhole": {"stage": "/x'); import os; os.system('id"}}).stage == ""


def _capture(host: str, stage: str, conn: NetConnection) -> NetworkCapture:
    from sandbox.models import DnsQuery

    return NetworkCapture(
        enabled=True,
        stage=stage,
        dns=(
            DnsQuery(
                phase=Phase.IMPORT, time=2.0, name=host, qtype="A", answer="198.51.100.7", resolver=RESOLVER
            ),
        ),
        connections=(conn,),
    )


def _events(*extra: object) -> list:
    return [
        ev(EventKind.FILE_READ, "openat", seq=1, path="/home/dev/project/.env"),
        ev(EventKind.CONNECT, "connect", seq=2, address=inet("192.0.2.53", 53)),
        ev(EventKind.CONNECT, "connect", seq=4, address=inet("198.51.100.7", 443)),
        ev(EventKind.SEND, "write", seq=5, address=inet("198.51.100.7", 443)),
        *extra,
    ]


def _judge(conn: NetConnection, host: str, stage: str, *extra: object) -> dict[str, Severity]:
    fs = evaluate(obs(_events(*extra)), network=_capture(host, stage, conn), hostname="laptop-381")
    return {f.rule_id: f.severity for f in fs}


def _fed(host: str) -> HttpExchange:
    return _get(host).model_copy(update={"staged": True})


def test_a_fed_stage_that_never_ran_makes_a_config_read_and_fetch_low() -> None:
    host, stage = _name(), _stage()
    sev = _judge(_https(host, _fed(host)), host, stage)
    assert sev == {"PS001": Severity.LOW, "PS002": Severity.LOW, "PS011": Severity.LOW}
    # the same run answered with an empty body (no stage configured) stays MEDIUM
    sev = _judge(_https(host, _get(host)), host, "")
    assert sev["PS002"] is Severity.MEDIUM and sev["PS001"] is Severity.MEDIUM


def test_running_the_stage_is_high_and_keeps_the_fetch_from_softening() -> None:
    host, stage = _name(), _stage()
    ran = ev(EventKind.FILE_STAT, "newfstatat", seq=7, path=stage, errno="ENOENT")
    fs = evaluate(
        obs(_events(ran)), network=_capture(host, stage, _https(host, _fed(host))), hostname="laptop-1"
    )
    sev = {f.rule_id: f.severity for f in fs}
    assert sev["PS013"] is Severity.HIGH
    assert sev["PS002"] is Severity.MEDIUM  # accounted, but what came back ran
    ps013 = next(f for f in fs if f.rule_id == "PS013")
    assert ps013.evidence[0].path == stage and stage in ps013.evidence[0].detail
    # a shell running it (argv names the path when piped through `sh -c`)
    sh = ev(EventKind.EXEC, "execve", seq=8, path="/bin/sh", argv=("sh", "-c", f"test -e {stage}"))
    assert "PS013" in _judge(_https(host, _fed(host)), host, stage, sh)


def test_a_refused_tls_hello_or_a_stealer_target_keeps_the_phase_medium_or_high() -> None:
    host, stage = _name(), _stage()
    refused = NetConnection(
        phase=Phase.IMPORT,
        time=3.5,
        destination="198.51.100.7:443",
        host=host,
        protocol="tls",
        bytes=517,
        tls=TlsHello(sni=host, intercepted=False, handshake_error="TLSV1_ALERT_UNKNOWN_CA"),
    )
    capture = _capture(host, stage, _https(host, _fed(host))).model_copy(
        update={"connections": (_https(host, _fed(host)), refused)}
    )
    fs = evaluate(obs(_events()), network=capture, hostname="laptop-1")
    assert {f.rule_id: f.severity for f in fs}["PS002"] is Severity.MEDIUM
    key = ev(EventKind.FILE_READ, "openat", seq=6, path="/home/dev/.ssh/id_ed25519")
    assert _judge(_https(host, _fed(host)), host, stage, key)["PS002"] is Severity.HIGH


def test_a_quiet_phase_reading_config_is_judged_by_the_runs_fed_fetches() -> None:
    """litellm: the import phase fetched a price list (accounted, fed the stage, never
    ran); the exercise phase only loaded `.env` (no network of its own) and its PS001
    was HIGH "and the run attempts network connections" — malicious on main. It now
    follows the run's network: LOW when every networked phase was fed, MEDIUM when
    only accounted; a stealer target keeps it HIGH."""
    host, stage = _name(), _stage()
    env = ev(EventKind.FILE_READ, "openat", phase=Phase.EXERCISE, seq=9, path="/home/dev/project/.env")
    key = ev(EventKind.FILE_READ, "openat", phase=Phase.EXERCISE, seq=9, path="/home/dev/.ssh/id_rsa")

    def exercise(conn: NetConnection, extra: object) -> Severity:
        fs = evaluate(obs(_events(extra)), network=_capture(host, stage, conn), hostname="laptop-1")
        return next(f.severity for f in fs if f.rule_id == "PS001" and f.phase is Phase.EXERCISE)

    assert exercise(_https(host, _fed(host)), env) is Severity.LOW
    assert exercise(_https(host, _get(host)), env) is Severity.MEDIUM
    assert exercise(_https(host, _fed(host)), key) is Severity.HIGH
