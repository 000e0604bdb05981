"""PS031: requests that follow the secrets (differential execution over three passes).

An import-time stealer that reads ``os.environ`` (no syscall shows it) and sends the
value in an encoding of its own (letters for hex nibbles, words from a table) sends
what looks like an ordinary fetch: no canary matches, no data-shaped character.  The
``secrets`` pass re-runs the phases with the environment's honeytokens redrawn, the
``control`` pass with the run's own values again (see sandbox/agent/passes.py).  Per
phase, what the three passes sent is aligned (DNS names; per connection the host, each
HTTP request's method, target, header values and body, the bytes of anything else) and
split into tokens (runs of letters and digits).  A token is secret-dependent when the
default and control passes sent the same one and the secrets pass another, which
neither of them sent anywhere in the phase.  A token that differs between default and
control (a nonce, a time, a UUID, a signature) says nothing; one that changes once
with time or state changes between the default pass and control (secrets runs between
them), so it is not taken for taint either.  Groups of requests the passes did not
make equally often are not compared (said in the message): a finding never rests on
unaligned noise.  A random pick among a few short names could differ by chance, so a
phase needs :data:`MIN_CHANGED` characters of such tokens.  The finding is HIGH, and
not one the accounted-fetch softening lowers (it is not in ``SOFTENED``).

A key drawn fresh each run and mixed into the secret (sent beside it) makes default and
control agree on nothing.  So a ``replay`` pass (the run's own values) runs before
secrets, and the three draw the same seeded randomness and read the same counted clock
(libfaketime): where all three ran so, the same comparison is made again with replay
in the default pass's place.  What varies by itself between the seeded passes (the
pid, threads' share of the clock reads, unseeded sources) differs between replay and
control and says nothing there either.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from sandbox.judge.rules.context import make_finding
from sandbox.models import DnsQuery, Evidence, Finding, NetConnection, NetworkCapture, Phase, PhaseResult

SECRETS, CONTROL, REPLAY = "secrets", "control", "replay"
MIN_CHANGED = 16  # characters of secret-dependent tokens in a phase (8 bytes as hex)
SHORT_LEN = 2  # a token this short is likely sent elsewhere too (a letter, a hex digit)
MIN_SHORT = 2 * MIN_CHANGED  # such positions that changed: a secret sent one character a token
_TOKEN = re.compile(r"[A-Za-z0-9]+")
# the sinkhole's answers (sinkhole/config.py FAKE_NET, FAKE_NET6_PREFIX): the address of
# a name follows the name, it is not the client's choice
_FAKE = ipaddress.ip_network("198.18.0.0/15")
_FAKE6 = "64:ff9b::"


@dataclass
class Sent:
    """One thing a pass sent in a phase: a kind to align on, and its fields in order."""

    key: tuple[str, ...]
    fields: list[tuple[str, str]]
    shown: str  # how the evidence shows it (shortened)
    destination: str | None = None
    pid: int | None = None
    process: tuple[str, ...] = ()
    time: float = 0.0


@dataclass
class Dependence:
    """What the comparison of one phase found."""

    tokens: dict[str, str] = field(default_factory=dict)  # token → the field it was in
    # (the reference pass's item, control's, secrets', the tokens) and the reference's name
    items: list[tuple[Sent, Sent, Sent, list[str], str]] = field(default_factory=list)
    unaligned: list[str] = field(default_factory=list)  # kinds the passes sent unequally often
    aligned: int = 0
    # positions where a token of one or two characters changed that other items also sent
    # (so not in ``tokens``): a secret sent one character per token
    short: int = 0
    labels: dict[str, str] = field(default_factory=dict)  # the field of each short token shown


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _client_address(dest: str) -> bool:
    """Whether *dest* (``host:port``) is an address the client chose, not the sinkhole's answer."""
    host = dest[1:].split("]", 1)[0] if dest.startswith("[") else dest.rsplit(":", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not (ip in _FAKE or str(ip).startswith(_FAKE6))


def _dns_items(queries: Iterable[DnsQuery]) -> list[Sent]:
    seen: set[tuple[str, str]] = set()
    out = []
    for q in sorted(queries, key=lambda q: q.time):
        name = q.name.lower().rstrip(".")
        if (name, q.qtype) in seen:
            continue  # a resolver's retry, A and AAAA asked twice
        seen.add((name, q.qtype))
        out.append(
            Sent(("dns", q.qtype), [("name", name)], f"DNS {q.qtype} {name}", None, q.pid, q.process, q.time)
        )
    return out


def _conn_item(c: NetConnection) -> Sent:
    port = c.destination.rsplit(":", 1)[-1]
    fields = [("host", (c.host or (c.tls.sni if c.tls else "") or "").lower())]
    if _client_address(c.destination):
        fields.append(("address", c.destination))
    shown = c.host or c.destination
    if c.http:
        for i, h in enumerate(c.http):
            at = f"request {i + 1}" if len(c.http) > 1 else "request"
            fields += [(f"{at} method", h.method), (f"{at} target", h.target)]
            named: set[str] = set()
            for k, v in h.headers:
                if k.lower() not in named:
                    named.add(k.lower())
                    fields.append((f"{at} header {k.lower()}", v))
            fields.append((f"{at} body", h.body))
        shown = f"{c.http[0].method} {c.host or c.destination}{c.http[0].target}"
    else:
        fields.append(("bytes", c.plain or c.data))
        if c.plain or c.data:
            shown += " " + (c.plain or c.data)
    return Sent(("tcp", port, c.protocol), fields, shown, c.destination, c.pid, c.process, c.time)


def sent(net: NetworkCapture, pass_name: str, phase: Phase) -> list[Sent]:
    """What pass *pass_name* sent in *phase*, in the order it was sent."""
    items = _dns_items(q for q in net.dns if q.pass_name == pass_name and q.phase is phase)
    conns = sorted(
        (c for c in net.connections if c.pass_name == pass_name and c.phase is phase), key=lambda c: c.time
    )
    items += [_conn_item(c) for c in conns]
    for g in sorted(
        (g for g in net.datagrams if g.pass_name == pass_name and g.phase is phase), key=lambda g: g.time
    ):
        port = (g.destination or "").rsplit(":", 1)[-1]
        fields = [("datagram", g.data)] + (
            [("address", g.destination)] if g.destination and _client_address(g.destination) else []
        )
        items.append(
            Sent(
                ("udp", port),
                fields,
                f"UDP {g.destination or '?'} {g.data}",
                g.destination,
                g.pid,
                g.process,
                g.time,
            )
        )
    return items


def field_dependence(d: list[str], c: list[str], s: list[str]) -> list[str]:
    """Tokens of *s* (the secrets pass's field) at positions where *d* and *c* (default,
    control) agree and *s* does not.  A field whose token count differs between default
    and control varies by itself: nothing.  When *s* has another count, the agreeing
    prefix and suffix are compared (a secret of any length between them changes them
    or the count) when *s* leaves room between them for the varying part; with no
    variation at all, every token of *s* that *d* lacks."""
    if len(d) != len(c):
        return []
    noisy = [k for k in range(len(d)) if d[k] != c[k]]
    if len(s) == len(d):
        return [s[k] for k in range(len(s)) if s[k] != d[k] and d[k] == c[k]]
    if not noisy:
        have = set(d)
        return [t for t in s if t not in have]
    lo, hi = noisy[0], len(d) - 1 - noisy[-1]
    if len(s) - lo - hi < 1:
        return []  # no room left for the varying middle: where it went is not known
    out = [s[k] for k in range(lo) if s[k] != d[k]]
    return out + [s[-1 - k] for k in range(hi) if s[-1 - k] != d[-1 - k]]


def compare(
    default: list[Sent],
    control: list[Sent],
    secrets: list[Sent],
    known: Iterable[Sent] = (),
    reference: str = "default",
) -> Dependence:
    """Align the three passes' items by kind (in order within a kind; a kind sent unequally
    often is left out) and collect the secret-dependent tokens (never one that *known*
    items, another pass's, sent). *reference* names the pass in *default*'s place."""
    dep = Dependence()
    universe = {t for it in (*default, *control, *known) for _, text in it.fields for t in tokens(text)}
    keys = list(dict.fromkeys(it.key for it in (*default, *control, *secrets)))
    for key in keys:
        ds, cs, ss = ([it for it in items if it.key == key] for items in (default, control, secrets))
        if not (len(ds) == len(cs) == len(ss)):
            dep.unaligned.append(f"{' '.join(key)} ({len(ds)}/{len(cs)}/{len(ss)})")
            continue
        for d, c, s in zip(ds, cs, ss, strict=True):
            dep.aligned += 1
            df, cf = dict(d.fields), dict(c.fields)
            found: list[str] = []
            for label, text in s.fields:
                if label not in df or label not in cf:
                    continue  # a header only one pass sent: not aligned
                changed = field_dependence(tokens(df[label]), tokens(cf[label]), tokens(text))
                new = [t for t in changed if t not in universe]
                short = [t for t in changed if t in universe and len(t) <= SHORT_LEN]
                dep.short += len(short)
                for t in new:
                    dep.tokens.setdefault(t, label)
                found += new or short[:1]  # a short one only shows the item (it counts apart)
                if short and not new:
                    dep.labels.setdefault(short[0], label)
            if found:
                dep.items.append((d, c, s, found, reference))
    return dep


def _short(text: str, secret: set[str], limit: int = 120) -> str:
    """*text* with every secret-dependent token and every token over 12 characters cut to
    its ends (no whole secret in a report), then to *limit* characters."""

    def cut(m: re.Match[str]) -> str:
        t = m.group(0)
        if t in secret:
            return f"{t[:4]}…{t[-4:]}" if len(t) > 12 else f"{t[:2]}…"
        return f"{t[:4]}…{t[-4:]}" if len(t) > 12 else t

    out = _TOKEN.sub(cut, text)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def seeded_phases(phases: Iterable[PhaseResult]) -> frozenset[Phase]:
    """The phases that the replay, secrets and control passes all ran seeded (the same
    randomness and clock: sandbox/agent/passes.py ``tracee_env``)."""
    want = {REPLAY, SECRETS, CONTROL}
    ran: dict[Phase, set[str]] = {}
    for p in phases:
        if p.seeded and p.pass_name in want:
            ran.setdefault(p.phase, set()).add(p.pass_name)
    return frozenset(ph for ph, names in ran.items() if names == want)


def _merge(dep: Dependence, other: Dependence) -> None:
    for t, label in other.tokens.items():
        dep.tokens.setdefault(t, label)
    for t, label in other.labels.items():
        dep.labels.setdefault(t, label)
    dep.short = max(dep.short, other.short)  # the same positions, compared twice
    dep.items += [it for it in other.items if not any(it[2] is mine[2] for mine in dep.items)]


def rule_secret_dependence(
    net: NetworkCapture | None, seeded: frozenset[Phase] = frozenset()
) -> list[Finding]:
    """PS031 per phase the three passes share (see the module docstring). In *seeded*
    phases the replay pass stands in for the default one as well: replay, secrets and
    control drew the same randomness and read the same clock, so a key drawn fresh
    each run and mixed into the secret is the same in the three, and what replay and
    control agree on and secrets changed follows the secret."""
    if net is None:
        return []
    passes = {q.pass_name for q in net.dns} | {c.pass_name for c in net.connections}
    passes |= {g.pass_name for g in net.datagrams}
    if SECRETS not in passes and CONTROL not in passes:
        return []
    deps: dict[Phase, Dependence] = {}
    for phase in Phase:
        ds, cs, ss = (sent(net, name, phase) for name in ("default", CONTROL, SECRETS))
        if not ds and not cs and not ss:
            continue
        dep = compare(ds, cs, ss)
        if phase in seeded:
            _merge(dep, compare(sent(net, REPLAY, phase), cs, ss, known=ds, reference=REPLAY))
        deps[phase] = dep
    out = [_finding(phase, {phase: dep}) for phase, dep in deps.items() if _enough(dep.tokens, dep.short)]
    if out:
        return out
    # A secret split across phases, each part under the bar: judged together (distinct
    # tokens counted once), as one finding in the phase that carried most of it.
    moved = {ph: dep for ph, dep in deps.items() if dep.items}
    union: dict[str, str] = {}
    for dep in moved.values():
        for t, label in dep.tokens.items():
            union.setdefault(t, label)
    if len(moved) > 1 and _enough(union, sum(d.short for d in moved.values())):
        return [_finding(max(moved, key=lambda ph: _chars(moved[ph].tokens)), moved)]
    return []


def _chars(found: Iterable[str]) -> int:
    return sum(len(t) for t in found)


def _enough(found: dict[str, str], short: int) -> bool:
    return _chars(found) >= MIN_CHANGED or short >= MIN_SHORT


def _finding(phase: Phase, deps: dict[Phase, Dependence]) -> Finding:
    """PS031 in *phase* on what *deps* (one phase's, or each phase's of a split secret) found."""
    tokens: dict[str, str] = {}
    labels: dict[str, str] = {}
    for dep in deps.values():
        for t, label in dep.tokens.items():
            tokens.setdefault(t, label)
        labels |= dep.labels
    short = sum(d.short for d in deps.values())
    secret = set(tokens)
    where = sorted(set(tokens.values()) or set(labels.values()))
    evid = [
        Evidence(
            phase=ph,
            pid=s.pid or 0,
            time=s.time,
            syscall="(sinkhole)",
            process=s.process,
            destination=s.destination,
            data=f"{ref}: {_short(d.shown, secret)} | control: {_short(c.shown, secret)} | "
            f"secrets: {_short(s.shown, secret)}",
            detail=f"{len(found)} token(s) ({_chars(found)} characters) differ in the "
            f"secrets pass, e.g. {_short(found[0], secret)} in the "
            f"{tokens.get(found[0]) or labels.get(found[0], 'request')}, where {ref} "
            "and control agree",
            pass_name=SECRETS,
        )
        for ph, dep in deps.items()
        for d, c, s, found, ref in dep.items
    ]
    what = f"{_chars(tokens)} characters in {len(tokens)} token(s) ({', '.join(where[:4])})"
    if short >= MIN_SHORT and _chars(tokens) < MIN_CHANGED:
        what = (
            f"{short} tokens of one character (or two) that the passes also sent elsewhere "
            f"({', '.join(where[:4])})"
        )
    message = (
        f"what the phase sent follows the environment's secrets: {what} changed when only "
        "the secret values did"
    )
    if len(deps) > 1:
        parts = ", ".join(f"{ph.value} {_chars(d.tokens)}" for ph, d in deps.items())
        message += f", split across phases ({parts} characters), each under the {MIN_CHANGED} one phase needs"
    unaligned = [u for d in deps.values() for u in d.unaligned]
    if unaligned:
        counts = ", ".join(unaligned[:4])
        message += f"; not compared (sent unequally often, default/control/secrets): {counts}"
    f = make_finding("PS031", phase, message, evid)
    return f.model_copy(update={"pass_name": SECRETS})
