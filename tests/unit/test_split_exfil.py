"""A canary split across the parts of ordinary-looking GETs (path segments, UUID-shaped
request-id headers, a User-Agent of spaced chunks, one piece per fetch) is still a
canary that left: PS010.  Each such GET passes the accounted-fetch tests and gets the
bait stage, so without the joined search a stealer that reads ``.env`` and sends its
secret this way was judged ``clean`` (every finding LOW)."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path
from typing import Any

import pytest

from sandbox.judge.honeytokens import make_honeytokens
from sandbox.judge.rules import evaluate
from sandbox.judge.verdict import verdict_for
from sandbox.models import Event, EventKind, Origin, Phase, Severity, Verdict
from sandbox.trace.netcapture import network_capture
from tests.unit.test_rules import inet, obs

T0 = 1_800_000_000.0
HOME = "/home/dev"
WINDOWS = {Phase.INSTALL: (T0 - 10, T0 - 5), Phase.STARTUP: (T0 - 5, T0 - 1), Phase.IMPORT: (T0 - 1, T0 + 30)}


def _chunks(s: str, n: int) -> list[str]:
    return [s[i : i + n] for i in range(0, len(s), n)]


def _uuid(h: str) -> str:
    h = h.ljust(32, "0")
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _request(host: str, target: str, extra: list[tuple[str, str]]) -> dict[str, Any]:
    headers = [("Host", host), ("Accept", "*/*"), *extra]
    if not any(k == "User-Agent" for k, _ in extra):
        headers.append(("User-Agent", "python-urllib3/2.2.1"))
    return {
        "method": "GET",
        "target": target,
        "version": "HTTP/1.1",
        "headers": [list(h) for h in headers],
        "body_bytes": 0,
        "body_b64": "",
        "complete": True,
        "staged": True,
    }


def _shapes(hx: str) -> dict[str, list[tuple[str, list[tuple[str, str]]]]]:
    """Fetches (target, extra headers) carrying the hex *hx*, one list per shape."""
    raw = bytes.fromhex(hx)
    dec = "/".join(".".join(str(b) for b in raw[i : i + 12]) for i in range(0, len(raw), 12))
    return {
        "version-looking decimal bytes": [(f"/releases/{dec}/notes.html", [])],
        "path segments": [("/static/" + "/".join(_chunks(hx, 15)) + "/prices.csv", [])],
        "uuid request ids": [
            (
                "/v1/status",
                [
                    (f"X-{w}-Id", _uuid(c))
                    for w, c in zip(("Trace", "Span", "Req", "Run"), _chunks(hx, 32), strict=False)
                ],
            )
        ],
        "spaced user-agent": [
            ("/v1/status", [("User-Agent", "Mozilla/5.0 (" + " ".join(_chunks(hx, 14)) + ")")])
        ],
        "one piece per fetch": [(f"/assets/{i}/{c}/logo.svg", []) for i, c in enumerate(_chunks(hx, 14))],
        "one user-agent piece per fetch": [
            ("/v1/status", [("User-Agent", f"Mozilla/5.0 (X11; {c}) Gecko/20100101")])
            for c in _chunks(hx, 14)
        ],
        "one api-key header piece per fetch": [("/v1/status", [("X-Api-Key", c)]) for c in _chunks(hx, 14)],
    }


def _capture(tmp_path: Path, host: str, fetches: list[tuple[str, list[tuple[str, str]]]], stage: str) -> None:
    recs: list[dict[str, Any]] = [
        {
            "kind": "dns",
            "t": T0 + 1,
            "phase": "import",
            "transport": "udp",
            "src": "192.168.1.9:40000",
            "resolver": "192.0.2.53:53",
            "pid": 42,
            "name": host,
            "qtype": "A",
            "answer": "198.51.100.7",
        }
    ]
    for i, (target, extra) in enumerate(fetches):
        raw = f"GET {target} HTTP/1.1\r\n".encode()
        recs.append(
            {
                "kind": "tcp",
                "id": i + 1,
                "t": T0 + 2 + i,
                "phase": "import",
                "dst": "198.51.100.7:80",
                "name": host,
                "bytes": len(raw),
                "captured": len(raw),
                "truncated": False,
                "close_reason": "eof",
                "proto": "http",
                "pid": 42,
                "http": [_request(host, target, extra)],
            }
        )
    (tmp_path / "sinkhole.json").write_text(json.dumps({"enabled": True, "net": {"stage": stage}}))
    (tmp_path / "net.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))


def _judge(tmp_path: Path, shape: str) -> tuple[list[Any], Any]:
    host = "".join(random.choices(string.ascii_lowercase, k=9)) + ".example"
    stage = "/var/tmp/." + "".join(random.choices(string.ascii_lowercase + string.digits, k=14))
    tokens = make_honeytokens(random.Random(random.getrandbits(64)))
    secret = next(c for c in tokens.canaries if c.name == "SECRET_KEY")
    fetches = _shapes(secret.value.encode().hex())[shape]
    _capture(tmp_path, host, fetches, stage)
    events = [
        Event(
            phase=Phase.IMPORT,
            seq=1,
            pid=42,
            time=T0,
            syscall="openat",
            kind=EventKind.FILE_READ,
            origin=Origin.CANDIDATE,
            path=f"{HOME}/project/.env",
        ),
        Event(
            phase=Phase.IMPORT,
            seq=2,
            pid=42,
            time=T0 + 1,
            syscall="sendto",
            kind=EventKind.SEND,
            origin=Origin.CANDIDATE,
            address=inet("192.0.2.53", 53),
        ),
    ]
    for i in range(len(fetches)):
        for n, kind in ((0, EventKind.CONNECT), (1, EventKind.SEND)):
            events.append(
                Event(
                    phase=Phase.IMPORT,
                    seq=10 + 2 * i + n,
                    pid=42,
                    time=T0 + 2 + i,
                    syscall="x",
                    kind=kind,
                    origin=Origin.CANDIDATE,
                    address=inet("198.51.100.7", 80),
                )
            )
    net = network_capture(tmp_path, events, [], WINDOWS, tokens, HOME)
    assert all(h.staged for c in net.connections for h in c.http) and len(net.connections) == len(fetches)
    return evaluate(obs(events), network=net, hostname="dev-laptop"), net


@pytest.mark.parametrize(
    "shape",
    [
        "version-looking decimal bytes",
        "path segments",
        "uuid request ids",
        "spaced user-agent",
        "one piece per fetch",
        "one user-agent piece per fetch",
        "one api-key header piece per fetch",
    ],
)
def test_a_canary_split_across_ordinary_get_fields_is_ps010(tmp_path: Path, shape: str) -> None:
    findings, net = _judge(tmp_path, shape)
    sev = {f.rule_id: f.severity for f in findings}
    assert sev.get("PS010") is Severity.CRITICAL, (shape, sev)
    assert any(x.canary == "SECRET_KEY" and "joined" in x.encoding for x in net.exfiltration)
    assert verdict_for(findings, [])[0] is Verdict.MALICIOUS


def test_a_login_header_is_not_joined_across_connections_under_another_host(tmp_path: Path) -> None:
    # litellm's calls: a fetch of raw.githubusercontent.com, then its API login to
    # api.openai.com (Authorization: Bearer $OPENAI_API_KEY). Joined across the phase's
    # connections, the login was found again "in traffic for" the first fetch's host,
    # where no login header's context applies
    tokens = make_honeytokens(random.Random(random.getrandbits(64)))
    key = next(c for c in tokens.canaries if c.name == "OPENAI_API_KEY")
    fetches = [
        ("raw.githubusercontent.com", "/org/repo/main/prices.json", []),
        ("api.openai.com", "/v1/files", [("Authorization", f"Bearer {key.value}")]),
    ]
    recs = [
        {
            "kind": "tcp", "id": i + 1, "t": T0 + 2 + i, "phase": "import", "dst": f"198.51.100.{7 + i}:80",
            "name": host, "bytes": 40, "captured": 40, "truncated": False, "close_reason": "eof",
            "proto": "http", "pid": 42, "http": [_request(host, target, extra)],
        }
        for i, (host, target, extra) in enumerate(fetches)
    ]  # fmt: skip
    (tmp_path / "sinkhole.json").write_text(json.dumps({"enabled": True, "net": {"stage": "/var/tmp/.s"}}))
    (tmp_path / "net.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    net = network_capture(tmp_path, [], [], WINDOWS, tokens, HOME)
    assert len(net.connections) == 2
    hosts = {x.host for x in net.exfiltration if x.canary == "OPENAI_API_KEY"}
    assert hosts == {"api.openai.com"}, [(x.host, x.encoding) for x in net.exfiltration]
