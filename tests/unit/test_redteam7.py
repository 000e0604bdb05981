"""Session 7's hostile read of the accounted-fetch softening (each shape demonstrated
clean by a real ``pkgsandbox vet`` on main; see tests/integration/test_redteam7.py).

- A stealer touching client configuration from 20 processes before it reads a key:
  findings keep at most 20 evidence rows, and the test "was anything but client
  configuration touched?" looked only at those rows, so the key read fell off the end
  and the phase's fetches were softened to LOW (clean).
- A console script run in the exercise phase that sends a secret from the environment
  (read with no syscall) sealed in short hex path segments: the exercise phase's LOW
  for accounted fetches did not apply the data-shaped text budget the bait's LOW does.
"""

from __future__ import annotations

import random
import string
import uuid

from sandbox.judge.rules import MAX_EVIDENCE, evaluate
from sandbox.models import Event, EventKind, HoneytokenRead, NetworkCapture, Phase, Severity
from tests.unit.test_accounted import _get, _https, _name
from tests.unit.test_bait_evasions import _sealed
from tests.unit.test_rules import ev, inet, obs
from tests.unit.test_stage import _capture, _stage

ENV = "/home/dev/project/.env"
KEY = "/home/dev/.ssh/id_rsa"


def _letters(n: int) -> str:
    return "".join(random.choices(string.ascii_lowercase, k=n))


def _stealer(readers: int, phase: Phase = Phase.IMPORT) -> tuple[list[Event], tuple[HoneytokenRead, ...]]:
    """*readers* child processes open the project's ``.env`` (client configuration),
    then the main process reads the SSH key and fetches."""
    events: list[Event] = []
    reads: list[HoneytokenRead] = []
    seq = 0
    for i in range(readers):
        seq += 1
        events.append(ev(EventKind.FILE_READ, "openat", phase, pid=100 + i, seq=seq, path=ENV))
        reads.append(HoneytokenRead(phase=phase, time=1.0, pid=100 + i, path=ENV, location="~/project/.env"))
    events.append(ev(EventKind.FILE_READ, "openat", phase, pid=10, seq=seq + 1, path=KEY))
    reads.append(HoneytokenRead(phase=phase, time=2.0, pid=10, path=KEY, location="~/.ssh/id_rsa"))
    events += [
        ev(EventKind.CONNECT, "connect", phase, seq=seq + 2, address=inet("192.0.2.53", 53)),
        ev(EventKind.CONNECT, "connect", phase, seq=seq + 3, address=inet("198.51.100.7", 443)),
        ev(EventKind.SEND, "write", phase, seq=seq + 4, address=inet("198.51.100.7", 443)),
    ]
    return events, tuple(reads)


def _fed(host: str, target: str, reads: tuple[HoneytokenRead, ...] = ()) -> NetworkCapture:
    get = _get(host, target=target).model_copy(update={"staged": True})
    return _capture(host, _stage(), _https(host, get)).model_copy(update={"honeytoken_reads": reads})


def test_a_key_read_behind_twenty_config_reads_keeps_the_fetch_high() -> None:
    """On main: PS001/PS002/PS011/PS012 all LOW (the SSH key read was the 21st evidence
    row of PS001 and PS012), verdict clean; the key went out spelt in lowercase
    letters, which no canary encoding and no data-shaped budget sees."""
    host = _name()
    target = "/" + "/".join(_letters(30) for _ in range(12))
    for readers in (0, MAX_EVIDENCE, MAX_EVIDENCE + random.randrange(1, 6)):
        events, reads = _stealer(readers)
        fs = evaluate(obs(events), network=_fed(host, target, reads), hostname="orbit-042")
        sev = {f.rule_id: f.severity for f in fs}
        assert sev["PS001"] is Severity.HIGH and sev["PS002"] is Severity.HIGH, (readers, sev)
        assert sev["PS011"] is Severity.HIGH and sev["PS012"] is Severity.MEDIUM, (readers, sev)
        # what was not client configuration leads the evidence (the reader sees it first)
        for rule in ("PS001", "PS012"):
            f = next(f for f in fs if f.rule_id == rule)
            assert f.evidence[0].path == KEY, (rule, [e.path for e in f.evidence])
    # the same run with only the configuration reads is the fed, LOW fetch it was
    events, reads = _stealer(MAX_EVIDENCE + 3)
    events = [e for e in events if e.path != KEY]
    reads = tuple(r for r in reads if r.path != KEY)
    fs = evaluate(obs(events), network=_fed(host, "/data/model_prices.json", reads), hostname="orbit-042")
    assert {f.rule_id: f.severity for f in fs}["PS002"] is Severity.LOW


def test_a_successful_read_behind_twenty_absent_probes_still_counts_as_read() -> None:
    """A secret read is what sets the accounted budget (ACCOUNTED_BUDGET): twenty
    probes for absent ``.env`` files first must not hide that the credentials file
    was opened (sealed text of 80 bytes, past the budget: HIGH, as when read alone)."""
    host = _name()
    blob = _sealed(80)
    target = "/assets/" + "/".join(blob[i : i + 15] for i in range(0, len(blob), 15))
    probes = [
        ev(EventKind.FILE_STAT, "newfstatat", pid=10, seq=i + 1, path=f"/home/dev/d{i}/.env", errno="ENOENT")
        for i in range(MAX_EVIDENCE + 2)
    ]
    read = ev(EventKind.FILE_READ, "openat", pid=10, seq=40, path="/home/dev/.aws/credentials")
    net = [
        ev(EventKind.CONNECT, "connect", seq=41, address=inet("192.0.2.53", 53)),
        ev(EventKind.CONNECT, "connect", seq=42, address=inet("198.51.100.7", 443)),
        ev(EventKind.SEND, "write", seq=43, address=inet("198.51.100.7", 443)),
    ]
    for before in ([], probes):
        fs = evaluate(obs([*before, read, *net]), network=_fed(host, target), hostname="orbit-042")
        sev = {f.rule_id: f.severity for f in fs}
        assert sev["PS002"] is Severity.HIGH and sev["PS001"] is Severity.HIGH, (len(before), sev)


def _in_exercise(net: NetworkCapture) -> NetworkCapture:
    return net.model_copy(
        update={
            "dns": tuple(q.model_copy(update={"phase": Phase.EXERCISE}) for q in net.dns),
            "connections": tuple(c.model_copy(update={"phase": Phase.EXERCISE}) for c in net.connections),
        }
    )


def test_a_sealed_environment_secret_sent_by_a_command_is_never_low() -> None:
    """On main the exercise phase's accounted PS002/PS011 were LOW whenever no
    credential file was read: an ``AWS_SECRET_ACCESS_KEY`` from the environment,
    XORed and sent as 15-character hex segments (no canary finds it), was clean."""
    host = _name()
    events = [
        ev(EventKind.CONNECT, "connect", Phase.EXERCISE, seq=1, address=inet("192.0.2.53", 53)),
        ev(EventKind.CONNECT, "connect", Phase.EXERCISE, seq=2, address=inet("198.51.100.7", 443)),
        ev(EventKind.SEND, "write", Phase.EXERCISE, seq=3, address=inet("198.51.100.7", 443)),
    ]
    blob = _sealed(40)
    target = "/v1/" + "/".join(blob[i : i + 15] for i in range(0, len(blob), 15))
    for staged in (True, False):
        get = _get(host, target=target).model_copy(update={"staged": staged})
        net = _in_exercise(_capture(host, _stage(), _https(host, get)))
        sev = {f.rule_id: f.severity for f in evaluate(obs(events), network=net, hostname="orbit-042")}
        assert sev["PS002"] is Severity.MEDIUM and sev["PS011"] is Severity.MEDIUM, (staged, sev)
    # a command's update check (a worded path) stays LOW, fed the bait or not, also with
    # the fresh UUID request id an SDK sends with each request (a top-300 CLI's shape:
    # three such GETs carried 84 data-shaped characters, all in X-Amzn-Trace-Id)
    for staged in (True, False):
        gets = [
            _get(
                host,
                target=target,
                headers=(
                    ("Host", host),
                    ("Accept", "*/*"),
                    ("User-Agent", "python-httpx/0.28.1"),
                    ("X-Amzn-Trace-Id", str(uuid.uuid4())),
                ),
            ).model_copy(update={"staged": staged})
            for target in ("/pypi/toolkit/json", "/api/harnesses", "/api/harnesses")
        ]
        net = _in_exercise(_capture(host, _stage(), _https(host, *gets)))
        sev = {f.rule_id: f.severity for f in evaluate(obs(events), network=net, hostname="orbit-042")}
        assert sev["PS002"] is Severity.LOW and sev["PS011"] is Severity.LOW, (staged, sev)
