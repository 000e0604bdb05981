"""Hostile reads of the bait stage's LOW (a phase fed the stage that never ran): what a
beacon may put in an ordinary-looking GET that no canary proves, and what must not
make a benign run PS013."""

from __future__ import annotations

import base64
import random

import pytest

from sandbox.judge.rules import evaluate
from sandbox.models import EventKind, Severity
from tests.unit.test_accounted import _get, _https, _name
from tests.unit.test_rules import ev, obs
from tests.unit.test_stage import _capture, _events, _stage

HOSTS = ["alex-xps", "orbit-042", "maries-mbp", "dana-thinkpad"]


def _beacons(hostname: str) -> dict[str, tuple[str, tuple[tuple[str, str], ...]]]:
    """GETs (target, extra headers) that name the machine, each shape alone passing
    the accounted tests on main."""
    hx = hostname.encode().hex()
    b32 = base64.b32encode(hostname.encode()).decode().lower().rstrip("=")
    return {
        "user-agent": ("/v2/ping", (("User-Agent", f"python-requests/2.32.3 ({hostname})"),)),
        "hex segment": (f"/v2/ping/{hx[: len(hx) // 2]}/{hx[len(hx) // 2 :]}", ()),
        "base32 header": (
            "/v2/ping",
            (("X-Client", " ".join(b32[i : i + 8] for i in range(0, len(b32), 8))),),
        ),
    }


@pytest.mark.parametrize("shape", ["user-agent", "hex segment", "base32 header"])
def test_a_get_naming_the_machine_is_not_an_accounted_fetch(shape: str) -> None:
    host, stage, hostname = _name(), _stage(), random.choice(HOSTS)
    target, extra = _beacons(hostname)[shape]
    headers = (("Host", host), ("Accept", "*/*"), *extra)
    if not any(k == "User-Agent" for k, _ in extra):
        headers += (("User-Agent", "python-urllib3/2.2.1"),)
    get = _get(host, target=target, headers=headers).model_copy(update={"staged": True})
    fs = evaluate(obs(_events()), network=_capture(host, stage, _https(host, get)), hostname=hostname)
    sev = {f.rule_id: f.severity for f in fs}
    assert sev["PS002"] is Severity.HIGH, (shape, sev)
    # the same fetch from a machine of another name is accounted and, fed, LOW
    other = next(h for h in HOSTS if h != hostname)
    fs = evaluate(obs(_events()), network=_capture(host, stage, _https(host, get)), hostname=other)
    assert {f.rule_id: f.severity for f in fs}["PS002"] is Severity.LOW


def test_writing_the_answer_to_a_file_is_not_running_it() -> None:
    """A logger or cache that stores the response body writes the stage's text (the
    path included) as *data*: only an event whose path or argv names the stage's path
    is PS013."""
    host, stage = _name(), _stage()
    body = f"''':'\\ntest -e {stage}\\nexit 0\\n'''"
    saved = ev(EventKind.FILE_WRITE, "write", seq=7, path="/home/dev/.cache/app/response.txt", data=body)
    fs = evaluate(
        obs(_events(saved)),
        network=_capture(host, stage, _https(host, _get(host).model_copy(update={"staged": True}))),
        hostname="laptop-381",
    )
    sev = {f.rule_id: f.severity for f in fs}
    assert "PS013" not in sev and sev["PS002"] is Severity.LOW, sev
