"""The default profile's calls judged on proof alone (sandbox/judge/calls.py): what a
call with made-up arguments does is LOW context unless it proves harm, and the other
phases are judged without the calls' events; the deep profile judges every call."""

from __future__ import annotations

from sandbox.judge.baseline import apply_baseline, make_baseline
from sandbox.judge.calls import PROOF_RULES, as_context, fetched_only_what_we_handed, proof_only
from sandbox.judge.canary import AUTH_ONLY
from sandbox.judge.honeytokens import HANDED, make_honeytokens
from sandbox.judge.profiles import load_profile
from sandbox.judge.report import judge
from sandbox.judge.rules.network import rule_exfiltration, rule_handed_secret
from sandbox.models import (
    Address,
    Event,
    EventKind,
    Evidence,
    Exfiltration,
    Finding,
    NetConnection,
    NetworkCapture,
    Observation,
    Phase,
    PhaseResult,
    PhaseStatus,
    Severity,
    Verdict,
)
from sandbox.trace.netcapture import _without_request_heads

EV = Evidence(phase=Phase.EXECUTE, pid=1, time=0.0, syscall="connect")
PY = ("/home/dev/project/.venv/bin/python", "/usr/local/lib/devtools/run/call_all.py", "5.0", "lib")


def _ev(phase: Phase, seq: int, kind: EventKind, syscall: str, **kw: object) -> Event:
    return Event(phase=phase, seq=seq, pid=40, time=100.0 + seq, syscall=syscall, kind=kind, argv=PY, **kw)  # type: ignore[arg-type]


def _obs(execute_status: PhaseStatus = PhaseStatus.OK) -> Observation:
    """A key read at import; a call that reads ~/.netrc and connects to a TEST-NET host."""
    events = (
        _ev(
            Phase.IMPORT,
            1,
            EventKind.FILE_READ,
            "openat",
            path="/home/dev/.ssh/id_rsa",
            flags="O_RDONLY",
            result=3,
        ),
        _ev(
            Phase.EXECUTE,
            1,
            EventKind.FILE_READ,
            "openat",
            path="/home/dev/.netrc",
            flags="O_RDONLY",
            result=3,
        ),
        _ev(
            Phase.EXECUTE,
            2,
            EventKind.CONNECT,
            "connect",
            address=Address(family="inet", host="198.51.100.7", port=443),
            result=-1,
            errno="ENETUNREACH",
            context="call lib.delete",
        ),
    )
    phases = (
        PhaseResult(phase=Phase.IMPORT, status=PhaseStatus.OK, duration=1),
        PhaseResult(phase=Phase.EXECUTE, status=execute_status, duration=1),
    )
    return Observation(events=events, processes=(), phases=phases)


def _judge(profile: str, obs: Observation):  # type: ignore[no-untyped-def]
    return judge(obs, target="lib", started=0.0, image=None, staged=None, profile=load_profile(profile))


def test_default_runs_the_calls_on_proof_and_deep_on_everything() -> None:
    assert proof_only(load_profile("default")) and proof_only(load_profile("strict"))
    assert not proof_only(load_profile("deep"))


def test_a_call_that_reaches_out_is_context_and_does_not_raise_the_import_finding() -> None:
    report = _judge("default", _obs())
    calls = [f for f in report.findings if f.phase is Phase.EXECUTE]
    assert calls and all(f.severity is Severity.LOW for f in calls), [(f.rule_id, f.severity) for f in calls]
    assert any(f.rule_id == "PS002" and "made-up arguments" in f.message for f in calls)
    # the import phase's key read is judged as if no call had run: MEDIUM, not HIGH
    key = [f for f in report.findings if f.phase is Phase.IMPORT and f.rule_id == "PS001"]
    assert [f.severity for f in key] == [Severity.MEDIUM]
    assert report.verdict is Verdict.SUSPICIOUS


def test_deep_judges_the_same_call_like_any_phase() -> None:
    report = _judge("deep", _obs())
    assert any(
        f.rule_id == "PS002" and f.phase is Phase.EXECUTE and f.severity is Severity.HIGH
        for f in report.findings
    )
    assert report.verdict is Verdict.MALICIOUS


def test_calls_that_time_out_do_not_make_the_default_run_incomplete() -> None:
    assert _judge("default", _obs(PhaseStatus.TIMEOUT)).verdict is Verdict.SUSPICIOUS
    lost = _obs().model_copy(
        update={
            "events": (),
            "phases": (
                PhaseResult(phase=Phase.IMPORT, status=PhaseStatus.OK, duration=1),
                PhaseResult(
                    phase=Phase.EXECUTE, status=PhaseStatus.TIMEOUT, duration=1, trace_complete=False
                ),
            ),
        }
    )
    # a lost trace is still a run that could not look; a timeout alone is not, under default
    assert _judge("default", lost).verdict is Verdict.INCOMPLETE
    quiet = lost.model_copy(
        update={"phases": (lost.phases[0], lost.phases[1].model_copy(update={"trace_complete": True}))}
    )
    assert _judge("default", quiet).verdict is Verdict.CLEAN
    assert _judge("deep", quiet).verdict is Verdict.INCOMPLETE


def test_proof_keeps_its_severity() -> None:
    for rule in sorted(PROOF_RULES):
        f = Finding(
            rule_id=rule,
            title="t",
            severity=Severity.CRITICAL,
            phase=Phase.EXECUTE,
            message="m",
            evidence=(EV,),
        )
        assert as_context(f) is f
    f = Finding(
        rule_id="PS005", title="t", severity=Severity.HIGH, phase=Phase.EXECUTE, message="m", evidence=(EV,)
    )
    assert as_context(f).severity is Severity.LOW and "made-up arguments" in as_context(f).message


def test_a_baseline_holds_the_calls_apart() -> None:
    # v1 only imported; v2's call reaches out (a sinkhole address drawn per run, so every
    # version's differs) and its import connects too: only the import's is a MEDIUM deviation
    old = _obs().model_copy(update={"events": _obs().events[:1]})
    base = make_baseline(_judge("default", old))
    beacon = _ev(
        Phase.IMPORT,
        2,
        EventKind.CONNECT,
        "connect",
        address=Address(family="inet", host="203.0.113.9", port=8443),
        result=-1,
        errno="ENETUNREACH",
    )
    new = _obs().model_copy(update={"events": (*_obs().events, beacon)})
    report = apply_baseline(_judge("default", new), base)
    dev = {f.message.split(" not seen")[0]: f.severity for f in report.findings if f.rule_id == "PS024"}
    assert dev == {
        "1 new endpoints": Severity.MEDIUM,
        "1 new endpoints during the calls": Severity.LOW,
        "1 new files during the calls": Severity.LOW,  # files are LOW anyway
    }, dev
    quiet = apply_baseline(_judge("default", _obs()), base)
    assert not [f for f in quiet.findings if f.rule_id == "PS024" and f.severity.rank > Severity.LOW.rank]


def _stage_run(host: str) -> tuple[Observation, NetworkCapture]:
    """A call fetched from *host* and ran the answer: the bait stage's path was looked up."""
    stage = "/var/tmp/.b41tst4g3"
    ran = _ev(Phase.EXECUTE, 1, EventKind.FILE_STAT, "newfstatat", path=stage, result=-1, errno="ENOENT")
    obs = Observation(
        events=(ran,),
        processes=(),
        phases=(PhaseResult(phase=Phase.EXECUTE, status=PhaseStatus.OK, duration=1),),
    )
    conn = NetConnection(
        phase=Phase.EXECUTE, time=100.0, destination="198.18.3.4:80", host=host, protocol="http"
    )
    return obs, NetworkCapture(enabled=True, connections=(conn,), stage=stage)


def test_running_what_the_made_up_url_served_is_asked_for_and_what_the_code_chose_is_proof() -> None:
    profile = load_profile("default")
    for host, severity in (("example.invalid", Severity.LOW), ("dothebest.example", Severity.HIGH)):
        obs, net = _stage_run(host)
        report = judge(obs, target="lib", started=0.0, image=None, staged=None, profile=profile, network=net)
        ps013 = [f for f in report.findings if f.rule_id == "PS013"]
        assert [f.severity for f in ps013] == [severity], (
            host,
            [(f.rule_id, f.severity) for f in report.findings],
        )
    assert not fetched_only_what_we_handed(None)
    assert not fetched_only_what_we_handed(NetworkCapture(enabled=True))  # nothing fetched: nothing asked


def _handed(host: str, phase: Phase = Phase.EXECUTE) -> Exfiltration:
    return Exfiltration(
        canary="secret handed to a call (password or token)",
        location=HANDED,
        channel="http",
        encoding="plain",
        phase=phase,
        time=101.0,
        destination="198.51.100.7:80",
        host=host,
        excerpt="ak=…&secret=…",
    )


def test_a_handed_secret_sent_elsewhere_is_ps032_and_kept_under_proof() -> None:
    net = NetworkCapture(
        enabled=True, exfiltration=(_handed("api.collector.example"), _handed("example.invalid"))
    )
    found = rule_handed_secret(net)
    assert [(f.rule_id, f.severity, f.phase) for f in found] == [("PS032", Severity.MEDIUM, Phase.EXECUTE)]
    assert "api.collector.example" in found[0].message and "example.invalid" not in found[0].message
    assert not rule_exfiltration(net)  # handed, not planted: never PS010
    assert as_context(found[0]) == found[0]  # proof: the calls keep its severity
    # to the made-up URL's host (or a mock's text), a client at work: nothing
    assert not rule_handed_secret(NetworkCapture(enabled=True, exfiltration=(_handed("example.invalid."),)))
    assert not rule_handed_secret(NetworkCapture(enabled=True, exfiltration=(_handed("test:8080"),)))


def test_handed_secrets_are_canaries_in_the_plan_and_unique() -> None:
    tokens = make_honeytokens()
    assert set(tokens.handed) == {"hex", "text"}
    assert len(tokens.handed["hex"]) == 64 and int(tokens.handed["hex"], 16) >= 0
    assert tokens.plan()["call_secrets"] == tokens.handed
    values = {c.value for c in tokens.canaries if c.location == HANDED}
    assert values == set(tokens.handed.values())
    assert make_honeytokens().handed != tokens.handed


def test_request_heads_are_not_where_a_handed_secret_leaks() -> None:
    req = (
        b"POST /botTOKEN/sendMessage HTTP/1.1\r\nHost: chat.example\r\nAuthorization: Bot TOKEN\r\n"
        b'Cookie: s=TOKEN\r\nContent-Length: 19\r\n\r\n{"secret": "TOKEN"}'
    )
    kept = _without_request_heads(req + req)  # two requests on one connection
    assert kept == b'{"secret": "TOKEN"}{"secret": "TOKEN"}'
    assert _without_request_heads(b"\x16\x03\x01TOKEN") == b"\x16\x03\x01TOKEN"  # not HTTP: all kept


def test_a_planted_key_only_in_an_auth_header_of_a_call_is_context() -> None:
    def ps010(detail: str) -> Finding:
        ev = Evidence(phase=Phase.EXECUTE, pid=1, time=0.0, syscall="(sinkhole https)", detail=detail)
        return Finding(
            rule_id="PS010",
            title="credential exfiltration proven",
            severity=Severity.CRITICAL,
            phase=Phase.EXECUTE,
            message="credential exfiltration proven: OPENAI_API_KEY",
            evidence=(ev,),
        )

    login = as_context(ps010(f"OPENAI_API_KEY found plain{AUTH_ONLY} in traffic for api.provider.example"))
    assert login.severity is Severity.LOW and "authentication header" in login.message
    sent = ps010("OPENAI_API_KEY found base64 in traffic for collector.example")
    assert as_context(sent) == sent  # in a URL or a body: proof


def test_an_environment_key_in_an_auth_header_is_a_login_only_to_its_own_service() -> None:
    # litellm's calls send $OPENAI_API_KEY in Authorization to api.openai.com (a login);
    # a payload in a function sends the same header to its collector (the key sent away)
    from sandbox.judge.honeytokens import Canary, logs_in_to
    from sandbox.trace.netcapture import _Haystack, _tag_auth_only

    key = Canary("OPENAI_API_KEY", "sk-proj-" + "Q" * 48, "env OPENAI_API_KEY")

    def tagged(host: str) -> str:
        head = f"POST /v1/batches HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key.value}\r\n\r\n{{}}"
        hay = _Haystack(head.encode(), "https", Phase.EXECUTE, 1.0, "203.0.113.9:443", host, 9, ())
        x = Exfiltration(
            canary=key.name, location=key.location, channel="https", encoding="plain",
            phase=Phase.EXECUTE, time=1.0, destination="203.0.113.9:443", host=host,
        )  # fmt: skip
        return _tag_auth_only([x], [key], [hay])[0].encoding

    assert tagged("api.openai.com").endswith(AUTH_ONLY)
    assert tagged("example.invalid").endswith(AUTH_ONLY)  # a client pointed at the URL we handed
    assert not tagged("collector.example").endswith(AUTH_ONLY)
    assert not tagged("openai.com.collector.example").endswith(AUTH_ONLY)
    assert logs_in_to("AWS_ACCESS_KEY_ID", "sts.amazonaws.com") and not logs_in_to("GITHUB_TOKEN", None)
    # the AWS secret never travels in a login (SigV4 signs with it): an attacker's API
    # gateway under amazonaws.com receiving it is not a login
    assert not logs_in_to("AWS_SECRET_ACCESS_KEY", "x1y2.execute-api.eu-west-1.amazonaws.com")
    assert logs_in_to("SOME_UNKNOWN_TOKEN", "anywhere.example")  # no known service: the doubt stays
