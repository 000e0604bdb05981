"""The in-container sinkhole (sandbox/agent/sinkhole/), run on the host on loopback.

The daemon runs in a thread on 127.0.0.1 / ::1 with small limits; the tests are
its clients. No NAT rule is involved (that part is covered by the integration
tests in the real sandbox), and nothing leaves loopback.
"""

from __future__ import annotations

import base64
import json
import random
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.agent import sinkhole as sk

# ---------------------------------------------------------------------- pure parts


def query(name: str, qtype: int = 1, ident: int = 0x1234) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + struct.pack("!HH", qtype, 1)


def test_dns_answers_every_name_with_its_own_stable_address() -> None:
    fake = sk.FakeDns(sk.NetConfig(hostname="alex-xps"), random.Random(1))
    q = sk.parse_query(query("evil.c2.invalid"))
    assert sk.name_text(q.questions[0][0]) == "evil.c2.invalid"
    answers, text = fake.answer(q.questions[0][0], 1)
    assert text and text.startswith("198.1") and answers[0][1] == socket.inet_aton(text)
    assert fake.answer(q.questions[0][0], 1)[1] == text  # stable
    assert fake.answer([b"other", b"invalid"], 1)[1] != text
    assert fake.answer(q.questions[0][0], 28)[1] == f"64:ff9b::{text}"
    assert fake.name_for(text) == "evil.c2.invalid" and fake.name_for(f"64:ff9b::{text}") == "evil.c2.invalid"
    assert fake.answer([b"alex-xps"], 1)[1] == "192.168.1.57"
    assert fake.answer([b"localhost"], 1)[1] == "127.0.0.1"
    # no NXDOMAIN: other types are NOERROR with no answer
    resp = sk.build_response(q, fake.answer(q.questions[0][0], 16)[0])
    assert resp[3] & 0xF == 0 and struct.unpack("!H", resp[6:8])[0] == 0
    # PTR of a handed-out address names it
    rev = ".".join(reversed(text.split("."))) + ".in-addr.arpa"
    assert fake.answer([p.encode() for p in rev.split(".")], 12)[1] == "evil.c2.invalid"


def test_dns_response_is_well_formed() -> None:
    q = sk.parse_query(query("a.example", ident=0xBEEF))
    resp = sk.build_response(q, [(1, socket.inet_aton("198.18.0.9"))])
    ident, flags, qd, an, _ns, _ar = struct.unpack("!HHHHHH", resp[:12])
    assert ident == 0xBEEF and flags & 0x8000 and flags & 0x0100 and qd == 1 and an == 1
    assert resp.endswith(socket.inet_aton("198.18.0.9"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_malformed_dns_never_raises_anything_but_dns_error(msg: bytes) -> None:
    try:
        q = sk.parse_query(msg)
    except sk.DnsError:
        reply = sk.formerr(msg)
        assert reply is None or (len(reply) == 12 and reply[3] & 0xF == 1)
        return
    sk.build_response(q, [])


def test_compression_loops_are_rejected() -> None:
    msg = struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + b"\0\1\0\1"
    with pytest.raises(sk.DnsError, match="loop"):
        sk.parse_query(msg)


def client_hello(sni: str, alpn: list[str]) -> bytes:
    ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(alpn)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def test_client_hello_sni_and_alpn() -> None:
    hello = client_hello("evil.c2.invalid", ["h2", "http/1.1"])
    assert sk.parse_client_hello(hello[:10]) == ("need", {})
    status, info = sk.parse_client_hello(hello)
    assert status == "ok" and info["sni"] == "evil.c2.invalid" and info["alpn"] == ["h2", "http/1.1"]
    assert info["version"] == "TLS 1.3"
    # split over two records, as some clients do
    body = hello[5:]
    two = (
        b"\x16\x03\x01"
        + struct.pack("!H", 40)
        + body[:40]
        + b"\x16\x03\x01"
        + struct.pack("!H", len(body) - 40)
        + body[40:]
    )
    assert sk.parse_client_hello(two)[1]["sni"] == "evil.c2.invalid"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_is_never_a_crash(data: bytes) -> None:
    status, _info = sk.parse_client_hello(b"\x16\x03\x01" + data)
    assert status in ("need", "ok", "bad")
    stream = sk.HttpStream(sk.Limits())
    stream.feed(data)
    stream.finish()


def test_http_stream_pipelining_chunked_expect_and_connect() -> None:
    s = sk.HttpStream(sk.Limits())
    replies = s.feed(
        b"GET /a HTTP/1.1\r\nHost: h.invalid\r\n\r\nPOST /b HTTP/1.1\r\nHost: h.invalid\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"
    )
    assert len(replies) == 2 and all(r.startswith(b"HTTP/1.1 200 OK") for r in replies)
    assert [r["method"] for r in s.requests] == ["GET", "POST"]
    assert base64.b64decode(s.requests[1]["body_b64"]) == b"hello world" and s.requests[1]["body_bytes"] == 11
    s = sk.HttpStream(sk.Limits())
    replies = s.feed(b"PUT /u HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    assert replies == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    assert s.feed(b"abc")[0].startswith(b"HTTP/1.1 200")
    s = sk.HttpStream(sk.Limits())
    replies = s.feed(b"CONNECT x.invalid:443 HTTP/1.1\r\nHost: x.invalid:443\r\n\r\n\x16\x03\x01")
    assert replies == [b"HTTP/1.1 200 Connection established\r\n\r\n"] and s.state == "tunnel"
    assert s.leftover == b"\x16\x03\x01"


def test_http_body_is_kept_up_to_the_limit_and_counted_beyond() -> None:
    s = sk.HttpStream(sk.Limits(body_keep=100))
    s.feed(b"POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(100):
        s.feed(b"x" * 1000)
    req = s.requests[0]
    assert req["complete"] and req["body_bytes"] == 100000 and req["body_truncated"]
    assert len(base64.b64decode(req["body_b64"])) == 100


def test_nat_rules_redirect_dns_to_any_address_first() -> None:
    rules = sk.nat_rules(sk.Ports(tcp=30001, udp=30002, dns=30003), "192.168.1.57", v6=False).splitlines()
    dns = [i for i, r in enumerate(rules) if "--dport 53" in r]
    loop = rules.index("-A OUTPUT -d 127.0.0.0/8 -j RETURN")
    assert len(dns) == 2 and max(dns) < loop  # a resolver on 127.x is still caught
    assert "-A OUTPUT -d 192.168.1.57/32 -j RETURN" in rules
    assert rules[-3:] == [
        "-A OUTPUT -p tcp -j REDIRECT --to-ports 30001",
        "-A OUTPUT -p udp -j REDIRECT --to-ports 30002",
        "COMMIT",
    ]
    v6 = sk.nat_rules(sk.Ports(1, 2, 3), "fd00::5", v6=True)
    assert "-d ::1/128 -j RETURN" in v6 and "-d fd00::5/128 -j RETURN" in v6
    cmds = sk.link_commands(sk.NetConfig(), v6=True)
    assert "type veth" in cmds and "route add default via 192.168.1.1 dev eth0 onlink" in cmds
    assert "nodad" in cmds


def test_limits_from_plan_are_clamped() -> None:
    lim = sk.Limits.from_plan({"capture_bytes": "1024", "max_flows": -5, "idle_seconds": "x", "junk": 1})
    assert lim.capture_bytes == 1024 and lim.max_flows == 1 and lim.idle_seconds == sk.Limits().idle_seconds


# ---------------------------------------------------------------------- the daemon


class Running:
    def __init__(self, tmp: Path, limits: sk.Limits) -> None:
        self.out = tmp
        self.phase_file = tmp / "phase"
        self.phase_file.write_text("import")
        self.ports, socks = sk.bind_listeners(socket.has_ipv6 and _v6_loopback())
        self.daemon = sk.Daemon(
            socks, limits, sk.NetConfig(hostname="alex-xps"), tmp, phase_file=self.phase_file
        )
        self.thread = threading.Thread(target=self.daemon.run, kwargs={"signals": False}, daemon=True)
        self.thread.start()

    def stop(self) -> list[dict[str, Any]]:
        self.daemon.request_stop()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the daemon did not stop"
        return [json.loads(line) for line in (self.out / "net.jsonl").read_text().splitlines()]

    def tcp(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.ports.tcp), timeout=5)


def _until(done: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait for the daemon thread to have handled what was sent (a fixed sleep lost the
    race on a loaded machine: a datagram tagged with the next phase)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the sinkhole daemon did not handle it in time"
        time.sleep(0.01)


def _v6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture()
def running(tmp_path: Path) -> Iterator[Running]:
    r = Running(
        tmp_path,
        sk.Limits(
            capture_bytes=4096,
            max_flows=32,
            max_records=500,
            idle_seconds=1.5,
            flow_seconds=3.0,
            body_keep=1024,
        ),
    )
    yield r
    if r.thread.is_alive():
        r.daemon.request_stop()
        r.thread.join(10)


def test_daemon_captures_http_tls_dns_udp(running: Running) -> None:
    with running.tcp() as s:
        s.sendall(b"POST /c HTTP/1.1\r\nHost: up.invalid\r\nContent-Length: 5\r\n\r\nhello")
        assert s.recv(100).startswith(b"HTTP/1.1 200 OK")
    with running.tcp() as raw:
        ctx = ssl.create_default_context()
        ctx.set_alpn_protocols(["h2"])
        with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):
            ctx.wrap_socket(raw, server_hostname="tls.c2.invalid")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(5)
        u.sendto(query("x.c2.invalid"), ("127.0.0.1", running.ports.dns))
        reply = u.recv(512)
        assert reply[:2] == b"\x12\x34" and reply[7] == 1
        u.sendto(b"raw datagram", ("127.0.0.1", running.ports.udp))
    with socket.create_connection(("127.0.0.1", running.ports.dns), timeout=5) as t:  # DNS over TCP
        msg = query("tcp.c2.invalid", 28)
        t.sendall(len(msg).to_bytes(2, "big") + msg)
        n = int.from_bytes(t.recv(2), "big")
        assert t.recv(n)[7] == 1
    time.sleep(0.3)
    recs = running.stop()
    tcp = [r for r in recs if r["kind"] == "tcp"]
    http = next(r for r in tcp if r["proto"] == "http")
    assert http["http"][0]["target"] == "/c" and base64.b64decode(http["http"][0]["body_b64"]) == b"hello"
    assert (running.out / http["payload"]).read_bytes().endswith(b"hello")
    tls = next(r for r in tcp if r["proto"] == "tls")
    assert tls["tls"]["sni"] == "tls.c2.invalid" and tls["tls"]["alpn"] == ["h2"]
    dns = {(r["name"], r["qtype"], r["transport"]) for r in recs if r["kind"] == "dns"}
    assert ("x.c2.invalid", "A", "udp") in dns and ("tcp.c2.invalid", "AAAA", "tcp") in dns
    udp = next(r for r in recs if r["kind"] == "udp")
    assert base64.b64decode(udp["data_b64"]) == b"raw datagram"
    assert all(r["phase"] == "import" for r in recs if r["kind"] in ("tcp", "udp", "dns"))
    assert recs[-1]["kind"] == "stats" and recs[-1]["errors"] == 0


def test_hostile_clients_are_bounded_and_recorded(running: Running) -> None:
    # huge body: captured up to the limit, counted in full, answered
    with running.tcp() as s:
        s.sendall(b"POST /big HTTP/1.1\r\nContent-Length: 5000000\r\n\r\n")
        chunk = b"A" * 65536
        sent = 0
        while sent < 5_000_000:
            s.sendall(chunk[: 5_000_000 - sent])
            sent += len(chunk[: 5_000_000 - sent])
        assert s.recv(100).startswith(b"HTTP/1.1 200")
    # garbage on a TLS port and binary junk
    with running.tcp() as g:
        g.sendall(b"\x16\x03\x01\xff\xff" + bytes(range(256)) * 4)
    with running.tcp() as g:
        g.sendall(bytes(range(256)) * 40)
    # malformed DNS
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        junks = (
            b"",
            b"\x00",
            b"\xff" * 11,
            b"\x12\x34\x01\x00\x00\x01" + b"\xff" * 30,
            query("ok.invalid")[:-3],
        )
        for junk in junks:
            u.sendto(junk, ("127.0.0.1", running.ports.dns))
    # many connections at once: more than max_flows
    many = []
    for _ in range(120):
        try:
            many.append(running.tcp())
        except OSError:
            break
    time.sleep(0.5)
    for m in many:
        m.close()
    # slowloris: a header that never ends, one byte at a time, for longer than a flow may live
    slow = running.tcp()
    head = b"GET / HTTP/1.1\r\nX-a: "
    stop = threading.Event()

    def drip() -> None:
        for i in range(10**6):
            if stop.is_set():
                return
            try:
                slow.send(head[i : i + 1] if i < len(head) else b"a")
            except OSError:
                return
            time.sleep(0.05)

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    # the daemon still answers while all that is going on
    with running.tcp() as s:
        s.sendall(b"GET /still HTTP/1.1\r\nHost: ok.invalid\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 200")
    time.sleep(4)  # past the flow lifetime (3 s): the daemon closes the slowloris connection
    stop.set()
    dripper.join(5)
    slow.close()
    recs = running.stop()
    tcp = [r for r in recs if r["kind"] == "tcp"]
    big = next(r for r in tcp if r["proto"] == "http" and r["http"][0]["target"] == "/big")
    assert big["bytes"] > 5_000_000 and big["captured"] == 4096 and big["truncated"]
    assert big["http"][0]["body_bytes"] == 5_000_000 and big["http"][0]["body_truncated"]
    assert (running.out / big["payload"]).stat().st_size == 4096
    sl = next(
        r
        for r in tcp
        if r.get("http")
        and r["http"][0].get("errors") is None
        and r["http"][0]["target"] == "/"
        and not r["http"][0]["complete"]
    )
    assert sl["close_reason"] == "lifetime" and sl["truncated"] and sl["bytes"] > len(head)
    assert any(r.get("tls", {}).get("error") for r in tcp)
    assert any(r["proto"] == "unknown" and r["bytes"] == 256 * 40 for r in tcp)
    malformed = [r for r in recs if r["kind"] == "dns" and r.get("malformed")]
    assert len(malformed) >= 4
    stats = recs[-1]
    assert stats["kind"] == "stats" and stats["tcp_evicted"] > 0 and stats["errors"] == 0
    assert any(r["close_reason"] == "evicted" and r["truncated"] for r in tcp)
    assert any(r["http"][0]["target"] == "/still" for r in tcp if r.get("http"))


def test_record_and_byte_budgets(tmp_path: Path) -> None:
    r = Running(tmp_path, sk.Limits(max_records=5, total_bytes=20000, capture_bytes=8192))
    for i in range(12):
        with r.tcp() as s:
            s.sendall(b"x" * 8000 + str(i).encode())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        for _ in range(3):
            u.sendto(b"d", ("127.0.0.1", r.ports.udp))
    _until(lambda: r.daemon.stats["udp_datagrams"] == 3)  # a loaded machine: not a fixed sleep
    recs = r.stop()
    flows = [x for x in recs if x["kind"] in ("tcp", "udp")]
    assert len(flows) == 5
    stats = recs[-1]
    assert stats["suppressed"]["tcp"] + stats["suppressed"]["udp"] == 12 + 3 - 5 and stats["budget_hit"]
    assert sum(p.stat().st_size for p in tmp_path.glob("net-*.bin")) <= 20000


def test_phase_tag_follows_the_phase_file(running: Running) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.sendto(b"1", ("127.0.0.1", running.ports.udp))
        _until(lambda: running.daemon.stats["udp_datagrams"] == 1)
        running.phase_file.write_text("startup")
        u.sendto(b"2", ("127.0.0.1", running.ports.udp))
        _until(lambda: running.daemon.stats["udp_datagrams"] == 2)
    recs = running.stop()
    assert [(base64.b64decode(r["data_b64"]), r["phase"]) for r in recs if r["kind"] == "udp"] == [
        (b"1", "import"),
        (b"2", "startup"),
    ]


def test_what_a_connection_record_leaves_out_makes_it_truncated(running: Running) -> None:
    """Hostile read (s27): a 17th request on a keep-alive connection was parsed and
    answered but not recorded, a 65th header dropped, with nothing saying so: the judge
    called such connections plain GETs (accounted, LOW) whatever the cut part carried."""
    plain = b"GET /assets/models.json HTTP/1.1\r\nHost: cdn.example\r\n\r\n"
    secret = b"POST /c HTTP/1.1\r\nHost: cdn.example\r\nContent-Length: 9\r\n\r\nk3y-data!"
    with running.tcp() as s:
        s.sendall(plain * 16 + secret)
        _drain(s, 17)
    many = b"GET / HTTP/1.1\r\nHost: cdn.example\r\n" + b"Accept-Language: en\r\n" * 64 + b"X-S: k3y\r\n\r\n"
    with running.tcp() as s:
        s.sendall(many)
        _drain(s, 1)
    with running.tcp() as s:
        s.sendall(plain)
        _drain(s, 1)
    tcp = [r for r in running.stop() if r["kind"] == "tcp"]
    assert len(tcp) == 3
    over, flood, fine = sorted(tcp, key=lambda r: -len(r["http"]) * 1000 - r["bytes"])
    assert len(over["http"]) == 16 and over["requests_dropped"] == 1 and over["truncated"]
    assert flood["http"][0]["headers_dropped"] == 2 and flood["truncated"]  # Host, 64 more, X-S
    assert not fine.get("truncated") and "requests_dropped" not in fine


def _drain(s: socket.socket, answers: int) -> None:
    """Read until *answers* responses came back (the daemon handled every request)."""
    got = b""
    while got.count(b"HTTP/1.1 200") < answers:
        chunk = s.recv(65536)
        assert chunk, "the sinkhole closed the connection early"
        got += chunk
