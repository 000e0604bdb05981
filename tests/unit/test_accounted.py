"""Accounted fetches: a credential read plus connections whose every byte the sinkhole
saw to be an ordinary GET stays a finding but not a HIGH one; any byte that could
carry data (body, query, cookie, encoded segment, datagram, raw IP) keeps it HIGH."""

from __future__ import annotations

import random
import string

import pytest

from sandbox.judge.rules import evaluate
from sandbox.judge.rules.accounted import encoded_looking, ordinary_name
from sandbox.models import (
    DnsQuery,
    EventKind,
    HttpExchange,
    NetConnection,
    NetDatagram,
    NetworkCapture,
    Phase,
    Severity,
    TlsHello,
)
from tests.unit.test_rules import ev, inet, obs

RESOLVER = "192.0.2.53:53"
DEST = "198.51.100.7:443"


def _name() -> str:
    return "".join(random.choices(string.ascii_lowercase, k=8)) + ".example"


def _run(conn: NetConnection, host: str, extra_events: tuple = (), **net: object) -> dict[str, Severity]:
    events = [
        ev(EventKind.FILE_READ, "openat", seq=1, path="/home/dev/project/.env"),
        ev(EventKind.CONNECT, "connect", seq=2, address=inet("192.0.2.53", 53)),
        ev(EventKind.SEND, "sendmmsg", seq=3, address=inet("192.0.2.53", 53)),
        ev(EventKind.CONNECT, "connect", seq=4, address=inet("198.51.100.7", 443)),
        ev(EventKind.SEND, "write", seq=5, address=inet("198.51.100.7", 443)),
        # glibc's address sorting: a datagram "connect" that sends nothing
        ev(EventKind.CONNECT, "connect", seq=6, address=inet("2001:db8::7", 443), flags="SOCK_DGRAM"),
        *extra_events,
    ]
    capture = NetworkCapture(
        enabled=True,
        dns=(
            DnsQuery(
                phase=Phase.IMPORT, time=2.0, name=host, qtype="A", answer="198.51.100.7", resolver=RESOLVER
            ),
        ),
        connections=(conn,),
        **net,  # type: ignore[arg-type]
    )
    fs = evaluate(obs(events), network=capture, hostname="laptop-381")
    return {f.rule_id: f.severity for f in fs}


def _https(host: str, *reqs: HttpExchange, **kw: object) -> NetConnection:
    return NetConnection(
        phase=Phase.IMPORT,
        time=3.0,
        destination=DEST,
        host=host,
        protocol="https",
        bytes=800,
        http=reqs,
        tls=TlsHello(sni=host, intercepted=True),
        **kw,  # type: ignore[arg-type]
    )


def _get(host: str, target: str = "/data/model_prices.json", **kw: object) -> HttpExchange:
    headers = kw.pop("headers", (("Host", host), ("Accept", "*/*"), ("User-Agent", "python-httpx/0.28.1")))
    return HttpExchange(method="GET", target=target, version="HTTP/1.1", host=host, headers=headers, **kw)  # type: ignore[arg-type]


def test_plain_fetch_after_a_config_read_is_medium_not_high() -> None:
    host = _name()
    sev = _run(_https(host, _get(host)), host)
    assert sev["PS001"] is Severity.MEDIUM
    assert sev["PS002"] is Severity.MEDIUM
    assert sev["PS011"] is Severity.MEDIUM


def test_the_softened_finding_names_what_was_fetched() -> None:
    host = _name()
    capture = NetworkCapture(
        enabled=True,
        dns=(
            DnsQuery(
                phase=Phase.IMPORT, time=2.0, name=host, qtype="A", answer="198.51.100.7", resolver=RESOLVER
            ),
        ),
        connections=(_https(host, _get(host, "/a/b.json")),),
    )
    o = obs(
        [
            ev(EventKind.FILE_READ, "openat", seq=1, path="/home/dev/project/.env"),
            ev(EventKind.CONNECT, "connect", seq=2, address=inet("198.51.100.7", 443)),
        ]
    )
    ps002 = next(f for f in evaluate(o, network=capture) if f.rule_id == "PS002")
    assert f"{host}/a/b.json" in ps002.message and "accounted" in ps002.message


@pytest.mark.parametrize(
    "req",
    [
        lambda h: HttpExchange(
            method="POST", target="/x", version="HTTP/1.1", host=h, body_bytes=40, body="k=v"
        ),
        lambda h: _get(h, "/collect?u=dev&h=laptop"),
        lambda h: _get(h, "/k/" + "".join(random.choices(string.ascii_letters + string.digits, k=40))),
        lambda h: _get(h, "/beacon/laptop-381"),
        lambda h: _get(h, headers=(("Host", h), ("Cookie", "s=1"))),
        lambda h: _get(h, headers=(("Host", h), ("X-Data", "aGVsbG8gd29ybGQgc2VjcmV0"))),
        lambda h: _get(h, complete=False),
    ],
    ids=["post-body", "query", "encoded-segment", "hostname-in-path", "cookie", "custom-header", "cut"],
)
def test_anything_that_can_carry_data_stays_high(req: object) -> None:
    host = _name()
    sev = _run(_https(host, req(host)), host)  # type: ignore[operator]
    assert sev["PS001"] is Severity.HIGH
    assert sev["PS002"] is Severity.HIGH


def test_raw_tcp_datagram_lost_capture_or_encoded_dns_stay_high() -> None:
    host = _name()
    raw = NetConnection(
        phase=Phase.IMPORT, time=3.0, destination=DEST, protocol="unknown", bytes=9, data="hi"
    )
    assert _run(raw, host)["PS002"] is Severity.HIGH
    dgram = NetDatagram(phase=Phase.IMPORT, time=3.0, destination="203.0.113.5:9999", bytes=4, data="ping")
    assert _run(_https(host, _get(host)), host, datagrams=(dgram,))["PS002"] is Severity.HIGH
    assert _run(_https(host, _get(host)), host, dropped=1)["PS002"] is Severity.HIGH
    assert _run(_https(host, _get(host)), host, truncated=True)["PS002"] is Severity.HIGH
    encoded = "4f2a9c0d1e7b3a55c6d8e9f0a1b2c3d4." + host
    assert _run(_https(encoded, _get(encoded)), encoded)["PS011"] is Severity.HIGH


def test_a_hard_coded_address_with_an_ordinary_host_header_stays_high() -> None:
    """The request names a host, but no DNS answer gave the address it went to."""
    host = _name()
    conn = _https(host, _get(host)).model_copy(update={"destination": "203.0.113.77:80", "protocol": "http"})
    assert _run(conn, host)["PS002"] is Severity.HIGH
    v6 = _https(host, _get(host)).model_copy(update={"destination": "[2001:db8::7]:443"})
    assert _run(v6, host)["PS002"] is Severity.HIGH


@pytest.mark.parametrize("flags", ["SOCK_STREAM", None])
def test_a_stream_connect_to_a_hard_coded_address_the_sinkhole_missed_stays_high(flags: str | None) -> None:
    """A TCP connect to an address no DNS answer gave, with a short timeout that ended
    before the sinkhole logged the connection (a loaded machine): the SYN went out. It
    was taken for "delivered nothing" and the phase accounted (MEDIUM). A connect of
    unknown socket type counts as a stream one."""
    host = _name()
    syn = ev(EventKind.CONNECT, "connect", seq=7, address=inet("203.0.113.9", 4444), flags=flags)
    assert _run(_https(host, _get(host)), host, extra_events=(syn,))["PS002"] is Severity.HIGH
    mapped = ev(EventKind.CONNECT, "connect", seq=7, address=inet("::ffff:198.51.100.7", 443), flags=flags)
    assert _run(_https(host, _get(host)), host, extra_events=(mapped,))["PS002"] is Severity.MEDIUM


def test_a_socket_type_quoted_from_the_caller_s_memory_is_not_the_socket_s() -> None:
    """The eBPF decoder's race note quotes the address the caller's memory showed (an
    AF_UNIX path of the caller's choosing): only the leading type counts (s27)."""
    host = _name()
    note = "the address changed in the caller's memory during the call (it showed unix:/tmp/SOCK_DGRAM; …)"
    syn = ev(EventKind.CONNECT, "connect", seq=7, address=inet("203.0.113.9", 4444), flags=note)
    assert _run(_https(host, _get(host)), host, extra_events=(syn,))["PS002"] is Severity.HIGH


def test_a_datagram_connect_to_a_hard_coded_address_sends_nothing() -> None:
    """``connect`` on a UDP socket to 8.8.8.8 (a library finding its own address) puts
    nothing on the wire: still accounted."""
    host = _name()
    probe = ev(EventKind.CONNECT, "connect", seq=7, address=inet("203.0.113.9", 80), flags="SOCK_DGRAM")
    assert _run(_https(host, _get(host)), host, extra_events=(probe,))["PS002"] is Severity.MEDIUM


def test_a_send_to_an_unaccounted_destination_stays_high() -> None:
    host = _name()
    other = ev(EventKind.SEND, "sendto", seq=7, address=inet("203.0.113.9", 4444))
    assert _run(_https(host, _get(host)), host, extra_events=(other,))["PS002"] is Severity.HIGH


def test_refused_tls_hello_with_an_ordinary_name_is_accounted() -> None:
    host = _name()
    hello = NetConnection(
        phase=Phase.IMPORT,
        time=3.0,
        destination=DEST,
        host=host,
        protocol="tls",
        bytes=517,
        tls=TlsHello(sni=host, alpn=("h2", "http/1.1"), handshake_error="TLSV1_ALERT_UNKNOWN_CA"),
    )
    assert _run(hello, host)["PS002"] is Severity.MEDIUM
    # protocol ids no client offers carry whatever the hello's author put there (s27)
    made_up = hello.model_copy(
        update={"tls": hello.tls.model_copy(update={"alpn": ("h2", "aGVsbG8td29ybGQ")})}
    )  # type: ignore[union-attr]
    assert _run(made_up, host)["PS002"] is Severity.HIGH


def test_name_and_token_shapes() -> None:
    assert ordinary_name("raw.githubusercontent.com")
    assert not ordinary_name("198.51.100.7")
    assert not ordinary_name("localhost")
    assert not ordinary_name("laptop-381.example", "laptop-381")
    assert not ordinary_name("mzxw6ytboi2dqojz.example")  # base32 data
    # a cloud region's digits, one to a short word, are no data (a top-800 app's demo data)
    assert ordinary_name("demo-data.s3-us-west-2.amazonaws.com")
    assert ordinary_name("bucket.s3.eu-central-1.amazonaws.com")
    assert not ordinary_name("ab12-cd34-ef56.example")  # hex in hyphen-joined chunks
    assert not ordinary_name("mzxw6ytboi2dqojz-1-2.example")
    assert encoded_looking("AKIAIOSFODNN7EXAMPLE")
    assert encoded_looking("d41d8cd98f00b204e9800998ecf8427e")
    assert not encoded_looking("model_prices_and_context_window")


def test_a_stealer_target_read_in_the_phase_keeps_the_fetch_high() -> None:
    """A chat token or SSH key read, then a GET (a stealer fetching its webhook from a
    paste): the bytes carried nothing yet, but no client library reads those stores."""
    host = _name()
    for secret in ("/home/dev/.ssh/id_ed25519", "/home/dev/.config/solana/id.json"):
        read = ev(EventKind.FILE_READ, "openat", seq=8, path=secret)
        sev = _run(_https(host, _get(host, "/33cm2/raw")), host, extra_events=(read,))
        assert sev["PS002"] is Severity.HIGH and sev["PS001"] is Severity.HIGH, secret


def test_fetching_a_program_is_a_second_stage_not_data() -> None:
    host = _name()
    for target in ("/c.exe", "/drop/stage2.sh", "/x/dgdeskband64.dll", "/p.py"):
        assert _run(_https(host, _get(host, target)), host)["PS002"] is Severity.HIGH, target


def test_a_metadata_root_ping_is_accounted_a_token_request_is_not() -> None:
    host = _name()

    def meta(target: str) -> NetConnection:
        req = _get(
            "169.254.169.254", target, headers=(("Host", "169.254.169.254"), ("metadata-flavor", "Google"))
        )
        return NetConnection(
            phase=Phase.IMPORT,
            time=3.0,
            destination="169.254.169.254:80",
            protocol="http",
            bytes=90,
            http=(req,),
        )

    extra = (ev(EventKind.CONNECT, "connect", seq=9, address=inet("169.254.169.254", 80)),)
    o_ping = _run_conns((_https(host, _get(host)), meta("/")), host, extra)
    assert o_ping["PS002"] is Severity.MEDIUM and o_ping["PS001"] is Severity.MEDIUM
    token = meta("/computeMetadata/v1/instance/service-accounts/default/token")
    assert _run_conns((_https(host, _get(host)), token), host, extra)["PS002"] is Severity.HIGH


def _run_conns(conns: tuple[NetConnection, ...], host: str, extra: tuple = ()) -> dict[str, Severity]:
    events = [
        ev(EventKind.FILE_READ, "openat", seq=1, path="/home/dev/project/.env"),
        ev(EventKind.CONNECT, "connect", seq=4, address=inet("198.51.100.7", 443)),
        *extra,
    ]
    capture = NetworkCapture(
        enabled=True,
        dns=(
            DnsQuery(
                phase=Phase.IMPORT, time=2.0, name=host, qtype="A", answer="198.51.100.7", resolver=RESOLVER
            ),
        ),
        connections=conns,
    )
    return {f.rule_id: f.severity for f in evaluate(obs(events), network=capture, hostname="laptop-381")}


def test_client_and_request_id_headers_are_plain_credential_headers_are_not() -> None:
    """SDKs name themselves and tag requests (a client header, a UUID trace id: two
    top-300 libraries at import); a header named for a key or token carries one."""
    host = _name()
    sdk = (
        ("Host", host),
        ("User-Agent", "python-httpx/0.28.1"),
        ("X-Client-Info", "gl-python/3.11.2 auth/2.63.0 auth-request-type/mds"),
        ("X-Amzn-Trace-Id", "b0386b68-b5ac-4cd3-a804-1dfd5cbf711d"),
    )
    assert _run(_https(host, _get(host, headers=sdk)), host)["PS002"] is Severity.MEDIUM
    for bad in (("X-Api-Key", "abc"), ("X-Auth", "1"), ("X-Trace", "b0386b68-b5ac-4cd3-a804-1dfd5cbf711d")):
        hdrs = (("Host", host), bad)
        assert _run(_https(host, _get(host, headers=hdrs)), host)["PS002"] is Severity.HIGH, bad


def test_a_wheel_file_name_is_an_artifact_name_not_data() -> None:
    """A build that fetches a prebuilt wheel by its PEP 427 name (platform tags look
    like encoded data to the segment test) is accounted; an encoded run elsewhere in
    the path, or a name that only ends in .whl, still keeps it HIGH."""
    host = _name()
    proj = "".join(random.choices(string.ascii_lowercase, k=7))
    wheel = f"{proj}_core_parser-2.0.8-py3-none-manylinux_2_28_x86_64.whl"
    assert (
        _run(_https(host, _get(host, f"/{proj}/{proj}/releases/download/v2.0.8/{wheel}")), host)["PS002"]
        is Severity.MEDIUM
    )
    secret = "".join(random.choices(string.ascii_letters + string.digits, k=40))
    for target in (
        f"/k/{secret}/{wheel}",
        f"/{secret}.whl",
        f"/x/{proj}-{secret}.whl",
        f"/x/{proj}-1.0-py3-none-{secret}.whl",  # data in a made-up platform tag
        f"/x/{secret}-1.0-py3-none-any.whl",
    ):
        assert _run(_https(host, _get(host, target)), host)["PS002"] is Severity.HIGH, target


def test_data_in_a_wheel_names_version_build_or_tags_is_not_plain() -> None:
    """The wheel name's parts other than the name were exempt from every test: a hex
    or decimal key in the version's local label, the build tag, the release numbers or
    an open-ended ``linux_*`` platform went out as an 'accounted' fetch. Failed on main
    with PS002 MEDIUM for each of these targets."""
    host = _name()
    proj = "".join(random.choices(string.ascii_lowercase, k=7))
    hexed = "".join(random.choices("0123456789abcdef", k=40))
    digits = "".join(random.choices(string.digits, k=60))
    chunks = [hexed[i : i + 10] for i in range(0, 40, 10)]
    for target in (
        f"/x/{proj}-1.0+{hexed}-py3-none-any.whl",
        f"/x/{proj}-1.0-1{hexed}-py3-none-any.whl",
        f"/x/{proj}-1.{'.'.join(digits[i : i + 15] for i in range(0, 60, 15))}-py3-none-any.whl",
        f"/x/{proj}-1.0-py3-none-linux_{hexed}.whl",
        f"/x/{proj}-1.0-py3-none-{'.'.join('linux_' + c for c in chunks)}.whl",
        f"/x/{proj}-1.0-py3-none-manylinux_2_28_{hexed}.whl",
        f"/x/{'_'.join(random.choices(['alpha', 'beta', 'gamma', 'delta'], k=30))}-1.0-py3-none-any.whl",
    ):
        assert _run(_https(host, _get(host, target)), host)["PS002"] is Severity.HIGH, target
    # real names stay plain: local versions, build tags, compressed platform sets
    for wheel in (
        f"{proj}-2.1.0+cu118-cp311-cp311-linux_x86_64.whl",
        f"{proj}-1.26.4-1-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        f"{proj}-0.4.0-cp39-abi3-macosx_10_12_x86_64.macosx_11_0_arm64.macosx_10_12_universal2.whl",
        f"{proj}-3.0.0rc1-pp310-pypy310_pp73-win_amd64.whl",
    ):
        sev = _run(_https(host, _get(host, f"/{proj}/releases/download/v1/{wheel}")), host)["PS002"]
        assert sev is Severity.MEDIUM, wheel


def _exercise(conn: NetConnection, host: str, read_env: bool) -> dict[str, Severity]:
    """The same fetch made by a command the exercise phase ran."""
    events = [
        ev(EventKind.CONNECT, "connect", phase=Phase.EXERCISE, seq=2, address=inet("192.0.2.53", 53)),
        ev(EventKind.SEND, "sendmmsg", phase=Phase.EXERCISE, seq=3, address=inet("192.0.2.53", 53)),
        ev(EventKind.CONNECT, "connect", phase=Phase.EXERCISE, seq=4, address=inet("198.51.100.7", 443)),
        ev(EventKind.SEND, "write", phase=Phase.EXERCISE, seq=5, address=inet("198.51.100.7", 443)),
    ]
    if read_env:
        events.insert(
            0, ev(EventKind.FILE_READ, "openat", phase=Phase.EXERCISE, seq=1, path="/home/dev/project/.env")
        )
    capture = NetworkCapture(
        enabled=True,
        dns=(
            DnsQuery(
                phase=Phase.EXERCISE, time=2.0, name=host, qtype="A", answer="198.51.100.7", resolver=RESOLVER
            ),
        ),
        connections=(conn.model_copy(update={"phase": Phase.EXERCISE}),),
    )
    return {f.rule_id: f.severity for f in evaluate(obs(events), network=capture, hostname="laptop-381")}


def test_a_commands_plain_fetch_with_nothing_read_is_low() -> None:
    """`python -m textual` runs its demo, which asks api.github.com for stargazers: a
    command the user runs checking something with nothing read and nothing sent is LOW
    (it was MEDIUM, a suspicious verdict, on main). A config read in the phase, or a
    request that can carry data, keeps it higher; install and import keep MEDIUM."""
    host = _name()
    sev = _exercise(_https(host, _get(host, "/repos/a/b")), host, read_env=False)
    assert sev["PS002"] is Severity.LOW and sev["PS011"] is Severity.LOW
    sev = _exercise(_https(host, _get(host, "/repos/a/b")), host, read_env=True)
    assert sev["PS002"] is Severity.MEDIUM and sev["PS001"] is Severity.MEDIUM
    sev = _exercise(_https(host, _get(host, "/collect?u=dev")), host, read_env=False)
    assert sev["PS002"] is Severity.HIGH


def test_a_command_resolving_its_own_help_flag_is_accounted() -> None:
    """`python -m <dns library> --help` looks "--help" up as a host name: the question
    carries the harness's own argument, nothing the run read."""
    events = [
        ev(EventKind.CONNECT, "connect", phase=Phase.EXERCISE, seq=2, address=inet("192.0.2.53", 53)),
        ev(EventKind.SEND, "sendto", phase=Phase.EXERCISE, seq=3, address=inet("192.0.2.53", 53)),
    ]
    for name, low in (("--help", True), ("--helpx", False)):
        q = DnsQuery(
            phase=Phase.EXERCISE, time=2.0, name=name, qtype="A", answer="198.51.100.9", resolver=RESOLVER
        )
        fs = evaluate(obs(events), network=NetworkCapture(enabled=True, dns=(q,)), hostname="laptop-381")
        sev = {f.rule_id: f.severity for f in fs}
        assert (sev["PS011"] is Severity.LOW) is low, (name, sev)


def test_a_phase_with_sinkhole_traffic_of_its_own_is_accounted_on_it_not_borrowed() -> None:
    """Hostile read (s27): a phase's network came from the trace alone, so a POST the
    sinkhole saw at install (its sender not in the trace as the candidate's: a lost
    line, a harness process) took the import phase's account of a plain GET: LOW."""
    host = _name()
    post = HttpExchange(
        method="POST", target="/u", version="HTTP/1.1", host="203.0.113.9", body_bytes=300, body="\\x8a"
    )
    install = NetConnection(
        phase=Phase.INSTALL, time=1.0, destination="203.0.113.9:80", protocol="http", bytes=600, http=(post,)
    )
    capture = NetworkCapture(
        enabled=True,
        dns=(
            DnsQuery(
                phase=Phase.IMPORT, time=2.0, name=host, qtype="A", answer="198.51.100.7", resolver=RESOLVER
            ),
        ),
        connections=(_https(host, _get(host)), install),
    )
    events = [
        ev(EventKind.FILE_READ, "openat", phase=Phase.INSTALL, seq=1, path="/home/dev/.aws/credentials"),
        ev(EventKind.CONNECT, "connect", seq=6, address=inet("198.51.100.7", 443)),
    ]
    fs = evaluate(obs(events), network=capture, hostname="laptop-381")
    assert any(f.severity is Severity.HIGH and f.phase is Phase.INSTALL for f in fs), [
        (f.rule_id, f.phase.value, f.severity.value) for f in fs
    ]


def test_questions_to_a_name_server_the_code_chose_are_not_accounted() -> None:
    """Hostile read (s27): the resolver a question went to was trusted as the sandbox's,
    so DNS sent straight to a hard-coded address (and any connect to it) was accounted."""
    host = _name()
    ours = _run(_https(host, _get(host)), host, resolvers=("192.0.2.53",))
    assert ours["PS002"] is Severity.MEDIUM  # resolv.conf's name server: as before
    chosen = _run(_https(host, _get(host)), host, resolvers=("192.168.7.1",))
    assert chosen["PS002"] is Severity.HIGH and chosen["PS011"] is Severity.HIGH
