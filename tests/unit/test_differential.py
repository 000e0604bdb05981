"""PS031 (sandbox/judge/rules/differential.py): token alignment over what the default,
secrets and control passes sent, on captured-looking NetworkCapture data; the agent's
trigger for the two passes; the plan and the exec budget that carry them."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

import pytest

from sandbox.agent import passes
from sandbox.judge.honeytokens import make_honeytokens
from sandbox.judge.profiles import load_profile
from sandbox.judge.report import pass_findings
from sandbox.judge.rules.accounted import SOFTENED
from sandbox.judge.rules.differential import (
    MIN_CHANGED,
    compare,
    field_dependence,
    rule_secret_dependence,
    seeded_phases,
    sent,
)
from sandbox.models import (
    DnsQuery,
    Event,
    EventKind,
    HttpExchange,
    NetConnection,
    NetworkCapture,
    Observation,
    Phase,
    PhaseResult,
    PhaseStatus,
    Severity,
)
from sandbox.runner.docker_backend import pass_budget
from sandbox.runner.interface import RunOptions
from sandbox.runner.plan import passes_plan

HOST = "cdn.assets.example"
ORDER = ("default", "secrets", "control")  # the order the agent runs them in
_A = "kxqzmwbrtyplhdjc"


def spell(data: bytes) -> str:
    return "".join(_A[b >> 4] + _A[b & 15] for b in data)


def conn(
    pass_name: str,
    target: str,
    t: float,
    headers: tuple[tuple[str, str], ...] = (),
    phase: Phase = Phase.IMPORT,
    host: str = HOST,
) -> NetConnection:
    hdrs = (("Host", host), ("User-Agent", "Python-urllib/3.11"), *headers)
    return NetConnection(
        phase=phase,
        time=t,
        destination="198.18.3.7:80",
        host=host,
        protocol="http",
        http=(HttpExchange(method="GET", target=target, version="HTTP/1.1", host=host, headers=hdrs),),
        pass_name=pass_name,
    )


def dns(pass_name: str, name: str, t: float, phase: Phase = Phase.IMPORT) -> DnsQuery:
    return DnsQuery(phase=phase, time=t, name=name, qtype="A", answer="198.18.3.7", pass_name=pass_name)


def capture(
    targets: dict[str, list[str]], headers: dict[str, tuple[tuple[str, str], ...]] | None = None
) -> NetworkCapture:
    """Each pass's GETs (in order) to HOST in the import phase, its DNS question first."""
    conns, qs = [], []
    for i, name in enumerate(ORDER):
        qs.append(dns(name, HOST, 10.0 * i))
        for j, target in enumerate(targets[name]):
            conns.append(conn(name, target, 10.0 * i + 1 + j, (headers or {}).get(name, ())))
    return NetworkCapture(enabled=True, dns=tuple(qs), connections=tuple(conns))


def secret() -> bytes:
    return random.randbytes(40)


def stolen(s: bytes) -> str:
    e = spell(s)
    return "/assets/" + "/".join(e[i : i + 16] for i in range(0, len(e), 16)) + "/model.json"


# --------------------------------------------------------------------------- fields


def test_field_dependence_takes_positions_default_and_control_agree_on() -> None:
    assert field_dependence(["a", "b"], ["a", "b"], ["a", "b"]) == []
    assert field_dependence(["a", "b"], ["a", "b"], ["a", "x"]) == ["x"]
    # a nonce where default and control differ says nothing; the secret beside it does
    assert field_dependence(["n1", "s"], ["n2", "s"], ["n3", "t"]) == ["t"]
    # the field varies in length between like sessions: nothing to compare
    assert field_dependence(["a"], ["a", "b"], ["x", "y"]) == []


def test_field_dependence_when_the_secrets_pass_sent_another_number_of_tokens() -> None:
    # no variation at all: every token the default pass did not send
    assert field_dependence(["a", "b", "c"], ["a", "b", "c"], ["a", "x", "y", "c"]) == ["x", "y"]
    # a nonce in the middle: the agreeing prefix and suffix, the latter from the end
    d, c = ["assets", "n1", "s1", "model"], ["assets", "n2", "s1", "model"]
    assert field_dependence(d, c, ["assets", "n3", "t1", "t2", "model"]) == ["t2"]
    assert field_dependence(d, c, ["other", "n3", "x", "s1", "model"]) == ["other"]
    # shorter: the nonce could sit anywhere, nothing is taken from it
    assert field_dependence(d, c, ["other", "n3", "model"]) == []


def mixed(key: bytes, s: bytes) -> str:
    """A secret XORed with *key*, the key first (both spelled in letters)."""
    return "/assets/" + spell(key) + "/" + spell(bytes(b ^ key[i % 8] for i, b in enumerate(s))) + "/m.json"


def seeded(targets: dict[str, list[str]]) -> NetworkCapture:
    """capture() with the replay pass's DNS question and GETs too (it runs before secrets)."""
    net = capture({k: v for k, v in targets.items() if k != "replay"})
    qs = (dns("replay", HOST, 5.0),)
    conns = tuple(conn("replay", t, 6.0 + j) for j, t in enumerate(targets["replay"]))
    return net.model_copy(update={"dns": (*net.dns, *qs), "connections": (*net.connections, *conns)})


def test_a_secret_mixed_with_a_fresh_key_is_ps031_only_where_the_passes_were_seeded() -> None:
    s1, s2 = secret(), secret()
    k0, k1 = random.randbytes(8), random.randbytes(8)
    # default draws its own key; replay, secrets and control (seeded alike) the same one
    mix = {
        "default": [mixed(k0, s1)],
        "replay": [mixed(k1, s1)],
        "control": [mixed(k1, s1)],
        "secrets": [mixed(k1, s2)],
    }
    net = seeded(mix)
    assert rule_secret_dependence(net) == []
    (f,) = rule_secret_dependence(net, frozenset({Phase.IMPORT}))
    assert f.rule_id == "PS031" and f.phase is Phase.IMPORT and "request target" in f.message
    assert f.evidence[0].data and f.evidence[0].data.startswith("replay: GET"), f.evidence[0].data
    # a key the seeded passes share is no finding
    same = seeded({**mix, "secrets": [mixed(k1, s1)]})
    assert rule_secret_dependence(same, frozenset({Phase.IMPORT})) == []


def test_what_the_seeded_passes_vary_by_themselves_is_no_finding() -> None:
    """A time or key that a thread's share of the counted clock, or an unseeded source,
    makes differ between replay and control: noise there too, whatever secrets sent."""
    s1 = secret()
    keys = [random.randbytes(8) for _ in range(4)]
    noisy = {
        name: [mixed(k, s1)]
        for name, k in zip(("default", "replay", "control", "secrets"), keys, strict=True)
    }
    assert rule_secret_dependence(seeded(noisy), frozenset({Phase.IMPORT})) == []


def test_a_phase_is_seeded_only_when_the_replay_secrets_and_control_passes_all_ran_seeded() -> None:
    def ph(name: str, phase: Phase, seeded: bool) -> PhaseResult:
        return PhaseResult(phase=phase, status=PhaseStatus.OK, duration=1.0, pass_name=name, seeded=seeded)

    rows = [
        ph("default", Phase.IMPORT, False),
        ph("replay", Phase.IMPORT, True),
        ph("secrets", Phase.IMPORT, True),
        ph("control", Phase.IMPORT, True),
        ph("replay", Phase.STARTUP, True),
        ph("secrets", Phase.STARTUP, True),
        ph("control", Phase.STARTUP, False),
        ph("secrets", Phase.EXERCISE, True),
        ph("control", Phase.EXERCISE, True),
    ]
    assert seeded_phases(rows) == frozenset({Phase.IMPORT})


# --------------------------------------------------------------------------- the rule


def test_a_secret_spelled_in_letters_in_the_path_is_ps031() -> None:
    s1, s2 = secret(), secret()
    net = capture({"default": [stolen(s1)], "control": [stolen(s1)], "secrets": [stolen(s2)]})
    (f,) = rule_secret_dependence(net)
    assert f.rule_id == "PS031" and f.severity is Severity.HIGH and f.phase is Phase.IMPORT
    assert f.pass_name == "secrets" and "request target" in f.message and "not compared" not in f.message
    ev = f.evidence[0]
    assert ev.pass_name == "secrets" and ev.data and "default: GET" in ev.data and "| secrets: GET" in ev.data
    # no secret-dependent token is shown whole
    assert not any(tok in (ev.data + ev.detail) for tok in stolen(s2).split("/") if len(tok) == 16)
    assert "PS031" not in SOFTENED  # the accounted-fetch softening never lowers it


def test_a_uuid_beside_the_secret_is_ignored_and_the_secret_still_caught() -> None:
    s1, s2 = secret(), secret()

    def target(s: bytes) -> str:
        return f"/{uuid.uuid4()}" + stolen(s)

    hdr = {name: (("X-Request-Id", str(uuid.uuid4())),) for name in ORDER}
    net = capture({"default": [target(s1)], "control": [target(s1)], "secrets": [target(s2)]}, hdr)
    (f,) = rule_secret_dependence(net)
    assert "header" not in f.message, f.message  # the request id differs everywhere: ignored


def test_a_fetch_that_ignores_the_secrets_is_no_finding() -> None:
    fixed = capture({name: ["/assets/v1/model.json"] for name in ORDER})
    assert rule_secret_dependence(fixed) == []
    # a fresh nonce and the time each run, in letters and in a request id
    fresh = {
        name: [f"/assets/{spell(uuid.uuid4().bytes)}/{spell(str(t).encode())}/m.json"]
        for t, name in enumerate(ORDER)
    }
    hdr = {name: (("X-Request-Id", str(uuid.uuid4())),) for name in ORDER}
    assert rule_secret_dependence(capture(fresh, hdr)) == []


def test_a_value_that_changes_once_with_time_or_state_is_no_finding() -> None:
    """secrets runs between default and control: a date or a cache state that changes
    once makes default and control differ, so the field says nothing."""
    day = {
        "default": ["/v/2026-12-02/index.json"],
        "secrets": ["/v/2026-12-03/index.json"],
        "control": ["/v/2026-12-03/index.json"],
    }
    assert rule_secret_dependence(capture(day)) == []
    first = {
        "default": ["/first/run/welcome/" + "a" * 20],
        "secrets": ["/later/" + "b" * 20],
        "control": ["/later/" + "b" * 20],
    }
    assert rule_secret_dependence(capture(first)) == []


def test_reordered_tokens_and_a_random_pick_among_a_few_are_no_finding() -> None:
    # a set's iteration order (hash randomisation) in the path: tokens the others sent
    order = {
        "default": ["/f/alpha/bravo/charlie/delta"],
        "control": ["/f/alpha/bravo/charlie/delta"],
        "secrets": ["/f/charlie/alpha/delta/bravo"],
    }
    assert rule_secret_dependence(capture(order)) == []
    # a random mirror that happened to agree in default and control: below MIN_CHANGED
    mirror = {
        "default": ["/mirror/eu/x.json"],
        "control": ["/mirror/eu/x.json"],
        "secrets": ["/mirror/useast/x.json"],
    }
    assert len("useast") < MIN_CHANGED and rule_secret_dependence(capture(mirror)) == []


def test_requests_sent_unequally_often_are_not_compared_and_that_is_said() -> None:
    s1, s2 = secret(), secret()
    # the secrets pass made an extra request: nothing to align it with, no finding
    net = capture({"default": ["/a.json"], "control": ["/a.json"], "secrets": ["/a.json", stolen(s2)]})
    assert rule_secret_dependence(net) == []
    # a DNS exfiltration that aligns, beside connections that do not: judged, and said
    base = capture({"default": ["/a.json"], "control": ["/a.json"], "secrets": ["/a.json", "/b.json"]})
    labels = {"default": spell(s1[:12]), "control": spell(s1[:12]), "secrets": spell(s2[:12])}
    qs = tuple(dns(name, f"{labels[name]}.t.example", 10.0 * i + 0.5) for i, name in enumerate(ORDER))
    (f,) = rule_secret_dependence(base.model_copy(update={"dns": base.dns + qs}))
    assert "name" in f.message and "not compared" in f.message and "tcp 80 http (1/1/2)" in f.message, (
        f.message
    )


def test_each_phase_is_compared_on_its_own_and_quiet_passes_say_nothing() -> None:
    s1, s2 = secret(), secret()
    net = capture({"default": ["/a.json"], "control": ["/a.json"], "secrets": ["/a.json"]})
    ex = tuple(
        conn(name, stolen(s), 50.0 + i, phase=Phase.EXERCISE)
        for i, (name, s) in enumerate(zip(ORDER, (s1, s2, s1), strict=True))
    )
    (f,) = rule_secret_dependence(net.model_copy(update={"connections": net.connections + ex}))
    assert f.phase is Phase.EXERCISE
    # no secrets or control pass ran: nothing to compare
    only = NetworkCapture(enabled=True, connections=(conn("default", stolen(s1), 1.0),))
    assert rule_secret_dependence(only) == [] and rule_secret_dependence(None) == []


def test_sent_items_hold_the_fields_a_secret_could_ride_in() -> None:
    c = conn("default", "/p", 1.0, (("Accept", "*/*"), ("accept", "again")))
    (item,) = sent(NetworkCapture(enabled=True, connections=(c,)), "default", Phase.IMPORT)
    labels = [label for label, _ in item.fields]
    # the sinkhole's answer address follows the name: not a field; a header once by name
    assert labels == [
        "host",
        "request method",
        "request target",
        "request header host",
        "request header user-agent",
        "request header accept",
        "request body",
    ]
    raw = NetConnection(
        phase=Phase.IMPORT, time=1.0, destination="203.0.113.9:4444", protocol="unknown", data="k=v"
    )
    (item,) = sent(NetworkCapture(enabled=True, connections=(raw,)), "default", Phase.IMPORT)
    assert dict(item.fields) == {"host": "", "address": "203.0.113.9:4444", "bytes": "k=v"}
    assert compare([item], [item], [item]).aligned == 1


# --------------------------------------------------------------------------- agent and plan


def _log(out: Path, *recs: dict[str, object]) -> None:
    (out / passes.NET_LOG).write_text("".join(json.dumps(r) + "\n" for r in recs))


def test_the_secrets_pass_runs_when_the_default_pass_reached_out(tmp_path: Path) -> None:
    tokens = make_honeytokens()
    plan = {"home": "/home/dev", "passes": passes_plan(RunOptions(passes={"secrets": "auto"}), tokens)}
    assert passes.should_run(plan, "secrets", tmp_path) == ""  # no capture at all
    _log(
        tmp_path,
        {"kind": "dns", "phase": "setup"},
        {"kind": "tcp", "phase": "windows:import"},
        {"kind": "stats"},
    )
    assert passes.should_run(plan, "secrets", tmp_path) == ""  # setup's and another pass's
    assert passes.should_run(plan, "control", tmp_path) == ""
    _log(
        tmp_path,
        {"kind": "dns", "phase": "import"},
        {"kind": "dns", "phase": "import"},
        {"kind": "tcp", "phase": "import"},
    )
    why = passes.should_run(plan, "secrets", tmp_path)
    assert why.startswith(
        "the default pass reached out (2 DNS question(s) in import, 1 connection(s) in import)"
    )
    # a cut capture: the phase is never accounted (HIGH anyway), the passes are not run
    _log(tmp_path, {"kind": "dns", "phase": "import"}, {"kind": "tcp", "phase": "import", "truncated": True})
    assert passes.should_run(plan, "secrets", tmp_path) == ""
    _log(tmp_path, {"kind": "dns", "phase": "import"}, {"kind": "tcp", "phase": "import"})
    assert passes.should_run(plan, "secrets", tmp_path)
    assert passes.should_run(plan, "replay", tmp_path)  # before secrets, on the same trigger
    # control follows the secrets pass, which the agent runs first
    assert passes.should_run(plan, "control", tmp_path) == ""
    (tmp_path / "secrets.import.result.json").write_text("{}")
    assert "secrets pass ran" in passes.should_run(plan, "control", tmp_path)
    # both re-run only the phases the default pass reached out in; other passes all
    assert passes.compared_phases(plan, "secrets", tmp_path) == {"import"}
    assert passes.compared_phases(plan, "control", tmp_path) == {"import"}
    assert passes.compared_phases(plan, "replay", tmp_path) == {"import"}
    assert passes.compared_phases(plan, "time", tmp_path) is None
    always = {"home": "/home/dev", "passes": passes_plan(RunOptions(passes={"secrets": "always"}), tokens)}
    assert passes.compared_phases(always, "secrets", tmp_path) is None  # deep: every phase


def test_the_passes_plan_redraws_the_env_secrets_and_the_budget_counts_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tokens = make_honeytokens()
    conf = passes_plan(RunOptions(passes={"secrets": "always"}), tokens)
    assert list(conf) == ["replay", "secrets", "control"]  # the order they run in
    assert conf["secrets"]["env"] == tokens.redrawn_env and conf["control"]["env"] == {}
    # the three draw the same randomness and clock (libfaketime), another seed each run,
    # below 2**63 (libfaketime's strtoll saturates every larger one to the same seed)
    assert conf["replay"]["seed"] == conf["secrets"]["seed"] == conf["control"]["seed"]
    assert conf["replay"]["env"] == {}
    seeds = {
        passes_plan(RunOptions(passes={"secrets": "always"}), tokens)["secrets"]["seed"] for _ in range(50)
    }
    assert len(seeds) == 50 and all(1 << 62 <= int(x, 16) < 1 << 63 for x in seeds)
    monkeypatch.setattr(passes, "faketime_library", lambda: "/usr/lib/x/faketime/libfaketime.so.1")
    monkeypatch.setattr(passes, "shared_clock_state", lambda files: "/sem /shm")
    envs = [passes.tracee_env({"passes": conf}, n) for n in ("replay", "secrets", "control")]
    assert envs[0] == envs[1] == envs[2]  # one start for all: the agent's clock when the first began
    assert envs[1]["FAKERANDOM_SEED"] == conf["control"]["seed"]
    assert envs[1]["FAKETIME"].startswith("@") and envs[1]["FAKETIME"].endswith(" i0.001")
    assert "FAKERANDOM_SEED" not in passes.tracee_env({"passes": {"time": {"clock_shift": 9}}}, "time")
    assert all(conf[n]["when"] == "always" for n in conf)
    env = passes.pass_env({"home": "/h", "passes": conf}, "secrets", dict(tokens.env))
    assert env["AWS_SECRET_ACCESS_KEY"] != tokens.env["AWS_SECRET_ACCESS_KEY"]
    control = passes.pass_env({"home": "/h", "passes": conf}, "control", dict(tokens.env))
    # the run's own values again, and the stub directory whose time.sleep works seeded
    assert control.pop("PYTHONPATH") == str(passes.STUB_ROOT / "seeded") and control == tokens.env
    redrawn = {c.location for c in tokens.canaries if c.location.endswith("(redrawn)")}
    assert "env AWS_SECRET_ACCESS_KEY (redrawn)" in redrawn
    assert (
        passes_plan(RunOptions(passes={"secrets": "auto"}), None) == {}
    )  # no honeytokens, nothing to redraw
    one = pass_budget(RunOptions(passes={"time": "auto"}))
    assert pass_budget(RunOptions(passes={"secrets": "auto"})) == 3 * one


def test_the_secrets_and_control_passes_do_not_repeat_the_default_passes_findings() -> None:
    """They re-run the default pass's environment: a finding by the same rule in the same
    phase at or below the default's severity is not said again (a nonce in a fetch's path
    would make a finding per pass); anything worse or new is, as for every pass."""

    def read(pass_name: str, path: str, seq: int) -> Event:
        return Event(
            phase=Phase.IMPORT,
            seq=seq,
            pid=10,
            time=1.0,
            syscall="openat",
            kind=EventKind.FILE_READ,
            path=path,
            result=3,
            argv=("/home/dev/project/.venv/bin/python", "x.py"),
            pass_name=pass_name,
        )

    names = ("default", "secrets", "control", "time")
    obs = Observation(
        events=(
            read("default", "/home/dev/.ssh/id_rsa", 1),
            read("secrets", "/home/dev/.ssh/id_ed25519", 2),  # the same rule: not again
            read("control", "/home/dev/.ssh/id_ed25519", 3),
            read("time", "/home/dev/.ssh/id_ed25519", 4),  # another pass: said
        ),
        processes=(),
        phases=tuple(
            PhaseResult(phase=Phase.IMPORT, status=PhaseStatus.OK, duration=1, pass_name=n) for n in names
        ),
    )
    found = pass_findings(obs, None, load_profile("default"), "host")
    assert {f.pass_name for f in found} == {"default", "time"}, [(f.rule_id, f.pass_name) for f in found]


# --------------------------------------------------------------------------- split secrets


def test_a_secret_split_across_phases_under_the_threshold_each_is_ps031() -> None:
    # 12 spelled characters per phase (6 bytes), each under MIN_CHANGED; 24 across two
    s1, s2 = secret()[:12], secret()[:12]
    per = MIN_CHANGED // 2 + 4  # characters each phase sends

    def part(s: bytes, k: int) -> str:
        return f"/v/{spell(s)[k * per : (k + 1) * per]}/m.json"

    conns = tuple(
        conn(name, part(s, k), 10.0 * i + k, phase=phase)
        for k, phase in enumerate((Phase.STARTUP, Phase.IMPORT))
        for i, (name, s) in enumerate(zip(ORDER, (s1, s2, s1), strict=True))
    )
    (f,) = rule_secret_dependence(NetworkCapture(enabled=True, connections=conns))
    assert f.rule_id == "PS031" and f.severity is Severity.HIGH
    assert "across phases" in f.message and {e.phase for e in f.evidence} == {Phase.STARTUP, Phase.IMPORT}
    # the same requests with no secret in them: nothing, however many phases
    same = tuple(c.model_copy(update={"pass_name": "default"}) for c in conns if c.pass_name == "default")
    quiet = same + tuple(c.model_copy(update={"pass_name": n}) for c in same for n in ("secrets", "control"))
    assert rule_secret_dependence(NetworkCapture(enabled=True, connections=quiet)) == []


def test_a_secret_sent_one_character_per_token_is_ps031() -> None:
    # every character its own token: each is one the default pass also sent elsewhere
    s1, s2 = secret(), secret()

    def dotted(s: bytes) -> str:
        return "/t/" + ".".join(s.hex()) + "/p.gif"

    net = capture({"default": [dotted(s1)], "control": [dotted(s1)], "secrets": [dotted(s2)]})
    (f,) = rule_secret_dependence(net)
    assert f.rule_id == "PS031" and "one character" in f.message, f.message
    # a counter or a short random pick moving in a few one-character places is not
    few = capture({"default": ["/t/1.2.3/p"], "control": ["/t/1.2.3/p"], "secrets": ["/t/1.2.4/p"]})
    assert rule_secret_dependence(few) == []
