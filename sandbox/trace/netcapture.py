"""The sinkhole's capture files → the report's ``network`` section.

Pure apart from reading the files the agent's ``collect`` brought back
(``sinkhole.json``, ``net.jsonl``, ``net-tcp-N.bin``; see
``sandbox/agent/sinkhole/``). What the listeners cannot know is taken from
the syscall trace: the destination of a UDP datagram (REDIRECT keeps the
original destination for TCP only) and, when the listener could not name it,
the process behind a query or a connection — by pid, address, size and time.

Canary search (:mod:`sandbox.judge.canary`) runs over every captured byte:
TCP streams, de-chunked HTTP bodies, datagrams, and the sequence of queried
names; a match is an :class:`~sandbox.models.Exfiltration`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from sandbox.judge.calls import HANDED_HOSTS
from sandbox.judge.canary import AUTH_ONLY, CanaryMatch, CanaryMatcher, joined_fields
from sandbox.judge.honeytokens import HANDED, Canary, HoneytokenSet, logs_in_to
from sandbox.models import (
    DEFAULT_PASS,
    DnsQuery,
    Event,
    EventKind,
    Exfiltration,
    HoneytokenInfo,
    HoneytokenRead,
    HttpExchange,
    NetConnection,
    NetDatagram,
    NetworkCapture,
    Origin,
    Phase,
    ProcessInfo,
    TlsHello,
)
from sandbox.trace.strace._syntax import unescape

METADATA = frozenset(
    {
        "169.254.169.254",
        "fd00:ec2::254",
        "169.254.170.2",
        "100.100.100.200",
        "metadata.google.internal",
        "metadata",
        "metadata.azure.internal",
    }
)
MAX_LINES = 50000
MAX_DNS, MAX_CONNECTIONS, MAX_DATAGRAMS, MAX_EXFIL = 2000, 1000, 1000, 100
DATA_PREVIEW = 512
BODY_PREVIEW = 1024
CORRELATE_SECONDS = 3.0

Channel = Literal["dns", "http", "https", "tls", "tcp", "udp", "smtp"]


def escape(data: bytes, limit: int = DATA_PREVIEW) -> str:
    """Printable form of captured bytes (``\\xNN``, ``\\n`` …), cut at *limit* bytes."""
    text = data[:limit].decode("latin-1").encode("unicode_escape").decode("ascii")
    return text + ("…" if len(data) > limit else "")


def _b64(text: object) -> bytes:
    if not isinstance(text, str) or not text:
        return b""
    try:
        return base64.b64decode(text)
    except (binascii.Error, ValueError):
        return b""


def _host_of(dest: str) -> str:
    return dest[1:].split("]", 1)[0] if dest.startswith("[") else dest.rsplit(":", 1)[0]


def _strs(value: object, limit: int = 64) -> tuple[str, ...]:
    return tuple(str(v) for v in value[:limit]) if isinstance(value, list) else ()


@dataclass
class _Index:
    """Lookups over the parsed trace used to fill what the listener did not know."""

    argv: dict[tuple[Phase, int], tuple[str, ...]] = field(default_factory=dict)
    net: list[Event] = field(default_factory=list)  # connect/send to inet addresses, by time

    @classmethod
    def build(cls, events: Iterable[Event], processes: Iterable[ProcessInfo]) -> _Index:
        idx = cls()
        idx.argv = {(p.phase, p.pid): p.argv for p in processes}
        idx.net = sorted(
            (
                e
                for e in events
                if e.kind in (EventKind.CONNECT, EventKind.SEND)
                and e.address is not None
                and e.address.family in ("inet", "inet6")
            ),
            key=lambda e: e.time,
        )
        return idx

    def process(self, phase: Phase, pid: int | None, fallback: object = None) -> tuple[str, ...]:
        if pid is not None and (phase, pid) in self.argv:
            return self.argv[(phase, pid)][:32]
        return _strs(fallback, 32)

    def nearest(self, t: float, want: Any) -> Event | None:
        """The trace event closest in time to *t* (within a few seconds) that *want* accepts."""
        best: Event | None = None
        for e in self.net:
            if (
                abs(e.time - t) <= CORRELATE_SECONDS
                and want(e)
                and (best is None or abs(e.time - t) < abs(best.time - t))
            ):
                best = e
        return best


def _phase(value: object, t: float, windows: dict[Phase, tuple[float, float]]) -> Phase:
    """The record's phase tag; by time when the tag is not a phase (``setup``)."""
    try:
        return Phase(str(value))
    except ValueError:
        pass
    for ph, (lo, hi) in windows.items():
        if lo - 1 <= t <= hi + 1:
            return ph
    return min(windows, key=lambda p: p.order) if windows else Phase.INSTALL


@dataclass
class _Haystack:
    """Captured outbound bytes with what an exfiltration finding needs to cite."""

    data: bytes
    channel: Channel
    phase: Phase
    time: float
    destination: str | None
    host: str | None
    pid: int | None
    process: tuple[str, ...]
    request: str = ""
    pass_name: str = DEFAULT_PASS
    joined: bool = False  # request fields joined (canary.joined_fields), not raw bytes


def _records(path: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    with path.open("rb") as fh:
        for n, line in enumerate(fh):
            if n >= MAX_LINES:
                break
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
    return out


def network_capture(
    trace_dir: Path,
    events: Sequence[Event],
    processes: Sequence[ProcessInfo],
    windows: dict[Phase, tuple[float, float]],
    tokens: HoneytokenSet | None = None,
    home: str = "/home/dev",
) -> NetworkCapture:
    """Build the network section from the capture files in *trace_dir*.

    *windows* maps each phase to its (start, end) wall-clock time, for records
    made between phases; *tokens* are the run's honeytokens (None: none planted).
    """
    info: dict[str, Any] = {}
    setup = trace_dir / "sinkhole.json"
    if setup.exists():
        try:
            info = json.loads(setup.read_text())
        except ValueError:
            info = {"problems": ["sinkhole.json unreadable"]}
    problems = [str(p) for p in info.get("problems", [])]
    idx = _Index.build(events, processes)
    recs = _records(trace_dir / "net.jsonl")
    for rec in recs:  # "windows:import": what an extra pass of import sent
        tag = str(rec.get("phase") or "")
        rec["pass"], _, rec["phase"] = tag.rpartition(":") if ":" in tag else (DEFAULT_PASS, "", tag)
    answers: dict[str, str] = {}
    dns: list[DnsQuery] = []
    conns: list[NetConnection] = []
    grams: list[NetDatagram] = []
    hay: list[_Haystack] = []
    dropped = 0
    truncated = False
    for rec in sorted((r for r in recs if r.get("kind") == "dns"), key=lambda r: float(r.get("t", 0))):
        q = _dns(rec, idx, windows).model_copy(update={"pass_name": rec["pass"]})
        if q.answer and q.name:
            answers.setdefault(q.answer, q.name.rstrip("."))
        if len(dns) < MAX_DNS:
            dns.append(q)
        else:
            dropped += 1
    flows = [r for r in recs if r.get("kind") in ("tcp", "udp")]
    for rec in sorted(flows, key=lambda r: float(r.get("t", 0))):
        if rec.get("kind") == "tcp":
            conn, stacks = _tcp(rec, idx, windows, answers, trace_dir)
            conn = conn.model_copy(update={"pass_name": rec["pass"]})
            for h in stacks:
                h.pass_name = rec["pass"]
            hay.extend(stacks)
            truncated = truncated or conn.truncated
            if len(conns) < MAX_CONNECTIONS:
                conns.append(conn)
            else:
                dropped += 1
        else:
            gram, data = _udp(rec, idx, windows)
            gram = gram.model_copy(update={"pass_name": rec["pass"]})
            truncated = truncated or gram.truncated
            hay.append(
                _Haystack(
                    data,
                    "udp",
                    gram.phase,
                    gram.time,
                    gram.destination,
                    None,
                    gram.pid,
                    gram.process,
                    pass_name=rec["pass"],
                )
            )
            if len(grams) < MAX_DATAGRAMS:
                grams.append(gram)
            else:
                dropped += 1
    for rec in recs:
        if rec.get("kind") == "stats":
            dropped += sum(int(v or 0) for v in (rec.get("suppressed") or {}).values())
            if rec.get("budget_hit"):
                truncated = True
                problems.append("capture byte budget reached: later flows kept without their bytes")
        elif rec.get("kind") == "problem":
            problems.append(f"sinkhole: {str(rec.get('msg', ''))[:200]}")
    exfil: list[Exfiltration] = []
    reads: list[HoneytokenRead] = []
    planted: tuple[HoneytokenInfo, ...] = ()
    if tokens is not None:
        planted = tuple(
            HoneytokenInfo(name=c.name, location=c.location, fingerprint=c.fingerprint)
            for c in tokens.canaries
        )
        planted_only = [c for c in tokens.canaries if c.location != HANDED]
        handed = [c for c in tokens.canaries if c.location == HANDED]
        matcher = CanaryMatcher(planted_only)
        found = _exfiltration(matcher, hay, dns)
        # joined across a phase's connections, a canary one connection already sent
        # whole is credited again to the phase's first connection, whose host is not
        # where it went (litellm: its OPENAI_API_KEY login to api.openai.com "sent" to
        # raw.githubusercontent.com): the joined view speaks only for canaries no
        # single connection carried (split over several fetches' headers or paths)
        whole = {(x.canary, x.phase, x.pass_name) for x in found}
        across = _exfiltration(matcher, _across(conns), [])
        found += [x for x in across if (x.canary, x.phase, x.pass_name) not in whole]
        exfil = _tag_auth_only(found, planted_only, hay)
        if handed:
            # a handed secret in a request's head is a client logging in to the service it
            # talks to (tqdm's helpers: Discord's Authorization header, Telegram's
            # /bot<token>/ path): not PS032. Bodies only (and raw bytes: the joined
            # request fields would bring the heads back)
            unauth = [replace(h, data=_without_request_heads(h.data)) for h in hay if not h.joined]
            exfil += _exfiltration(CanaryMatcher(handed), unauth, dns)
        reads = _reads(events, idx, tokens.paths(home))
    return NetworkCapture(
        enabled=bool(info.get("enabled")),
        dns=tuple(dns),
        connections=tuple(conns),
        datagrams=tuple(grams),
        exfiltration=tuple(exfil),
        honeytokens=planted,
        honeytoken_reads=tuple(reads),
        dropped=dropped,
        truncated=truncated,
        problems=tuple(dict.fromkeys(problems))[:20],
        stage=str((info.get("net") or {}).get("stage", ""))[:128],
        resolvers=tuple(
            str(v)[:64] for v in [(info.get("net") or {}).get("gateway")] if isinstance(v, str) and v
        ),
    )


def _dns(rec: dict[str, Any], idx: _Index, windows: dict[Phase, tuple[float, float]]) -> DnsQuery:
    t = float(rec.get("t", 0.0))
    phase = _phase(rec.get("phase"), t, windows)
    pid = rec.get("pid") if isinstance(rec.get("pid"), int) else None
    resolver = rec.get("resolver") if isinstance(rec.get("resolver"), str) else None
    if pid is None or resolver is None:
        ev = idx.nearest(
            t,
            lambda e: (
                e.address is not None
                and e.address.port == 53
                and e.phase is phase
                and (pid is None or e.pid == pid)
            ),
        )
        if ev is not None and ev.address is not None:
            pid = ev.pid if pid is None else pid
            resolver = resolver or ev.address.render()
    malformed = bool(rec.get("malformed"))
    detail = ""
    if malformed:
        detail = f"{rec.get('error', 'malformed')}: {escape(_b64(rec.get('raw_b64')), 64)}"
    transport: Literal["udp", "tcp"] = "tcp" if rec.get("transport") == "tcp" else "udp"
    answer = rec.get("answer") if isinstance(rec.get("answer"), str) else None
    return DnsQuery(
        phase=phase,
        time=t,
        name=str(rec.get("name", ""))[:300],
        qtype=str(rec.get("qtype", "")),
        transport=transport,
        answer=answer,
        resolver=resolver,
        pid=pid,
        process=idx.process(phase, pid, rec.get("argv")),
        malformed=malformed,
        detail=detail,
    )


def _labels(host: str | None, dest: str | None) -> tuple[str, ...]:
    cands = {h.lower().rstrip(".") for h in (host, _host_of(dest) if dest else None) if h}
    return ("cloud-metadata",) if cands & METADATA else ()


_KEPT_REQUESTS, _KEPT_HEADERS, _KEPT_TARGET = 16, 64, 2048


def _cut_http(reqs: object) -> bool:
    """Whether the report keeps less of the connection's requests than was sent: more
    requests, headers or target than :func:`_http` keeps, or the sinkhole's own cuts
    (a record from before it flagged them). What is cut is never judged plain."""
    if not isinstance(reqs, list):
        return False
    return len(reqs) > _KEPT_REQUESTS or any(
        isinstance(r, dict)
        and (
            r.get("headers_dropped")
            or len(r.get("headers") or []) > _KEPT_HEADERS
            or len(str(r.get("target", ""))) > _KEPT_TARGET
            or int(r.get("target_bytes", 0) or 0) > len(str(r.get("target", "")))
        )
        for r in reqs
    )


def _http(req: dict[str, Any]) -> HttpExchange:
    headers = tuple(
        (str(k)[:200], str(v)[:1024])
        for k, v in (req.get("headers") or [])[:_KEPT_HEADERS]
        if isinstance(k, str)
    )
    host = next((v for k, v in headers if k.lower() == "host"), None)
    body = _b64(req.get("body_b64"))
    return HttpExchange(
        method=str(req.get("method", ""))[:32],
        target=str(req.get("target", ""))[:_KEPT_TARGET],
        version=str(req.get("version", ""))[:16],
        host=host,
        headers=headers,
        body_bytes=int(req.get("body_bytes", 0) or 0),
        body=escape(body, BODY_PREVIEW),
        complete=bool(req.get("complete", True)),
        body_truncated=bool(req.get("body_truncated")),
        staged=bool(req.get("staged")),
    )


def _tcp(
    rec: dict[str, Any],
    idx: _Index,
    windows: dict[Phase, tuple[float, float]],
    answers: dict[str, str],
    trace_dir: Path,
) -> tuple[NetConnection, list[_Haystack]]:
    t = float(rec.get("t", 0.0))
    phase = _phase(rec.get("phase"), t, windows)
    dest = str(rec.get("dst", ""))
    pid = rec.get("pid") if isinstance(rec.get("pid"), int) else None
    if pid is None:
        ev = idx.nearest(
            t, lambda e: e.kind is EventKind.CONNECT and e.address is not None and e.address.render() == dest
        )
        pid = ev.pid if ev is not None else None
    payload = _payload(trace_dir, rec.get("payload"), r"net-tcp-\d+\.bin")
    plain = _payload(trace_dir, rec.get("plain_payload"), r"net-tcp-\d+\.plain\.bin")
    http = tuple(_http(r) for r in (rec.get("http") or [])[:_KEPT_REQUESTS] if isinstance(r, dict))
    tls_rec = rec.get("tls")
    tls = None
    if isinstance(tls_rec, dict):
        tls = TlsHello(
            sni=tls_rec.get("sni") if isinstance(tls_rec.get("sni"), str) else None,
            alpn=_strs(tls_rec.get("alpn"), 16),
            version=str(tls_rec.get("version", "")),
            error=str(tls_rec.get("error", ""))[:300],
            intercepted=bool(tls_rec.get("intercepted")),
            handshake_error=str(tls_rec.get("handshake_error", ""))[:300],
            negotiated_version=str((tls_rec.get("negotiated") or {}).get("version", ""))[:32],
            negotiated_alpn=str((tls_rec.get("negotiated") or {}).get("alpn", ""))[:64],
        )
    host = rec.get("name") if isinstance(rec.get("name"), str) else None
    host = (
        host
        or answers.get(_host_of(dest))
        or (tls.sni if tls else None)
        or next((h.host for h in http if h.host), None)
    )
    proto = "dns" if rec.get("transport") == "dns" else str(rec.get("proto", "unknown"))
    process = idx.process(phase, pid, rec.get("argv"))
    conn = NetConnection(
        phase=phase,
        time=t,
        duration=float(rec.get("duration", 0.0) or 0.0),
        destination=dest,
        host=host,
        protocol=proto,
        bytes=int(rec.get("bytes", 0) or 0),
        captured=int(rec.get("captured", 0) or 0),
        truncated=bool(rec.get("truncated")) or _cut_http(rec.get("http")),
        close_reason=str(rec.get("close_reason", "")),
        http=http,
        tls=tls,
        smtp=_strs(rec.get("smtp")),
        # a hello the client let fail is all it sent: kept whole (up to the 2048 bytes an
        # accounted one may have), so PS031 compares all of it, not its first 256 bytes
        data=escape(payload, 2048 if proto == "tls" and not plain else 256),
        decrypted=int(rec.get("decrypted", 0) or 0),
        plain=escape(plain, 256) if plain else "",
        labels=_labels(host, dest),
        pid=pid,
        process=process,
    )
    channels: dict[str, Channel] = {
        "http": "http",
        "https": "https",
        "tls": "tls",
        "smtp": "smtp",
        "dns": "dns",
    }
    channel = channels.get(proto, "tcp")
    first = _request_line(http[0]) if http else ""
    # the raw bytes of a terminated session are ciphertext: its decrypted bytes stand in
    stacks = [_Haystack(plain if plain else payload, channel, phase, t, dest, host, pid, process, first)]
    body_channel: Channel = "https" if proto == "https" else "http"
    requests = [r for r in (rec.get("http") or [])[:_KEPT_REQUESTS] if isinstance(r, dict)]
    for r, ex in zip(requests, http, strict=True):
        body = _b64(r.get("body_b64"))
        if body:
            line = _request_line(ex)
            stacks.append(_Haystack(body, body_channel, phase, t, dest, host, pid, process, line))
    if http:
        fields = joined_fields([(ex.target, ex.headers) for ex in http])
        stacks.append(_Haystack(fields, body_channel, phase, t, dest, host, pid, process, first, joined=True))
    return conn, stacks


def _payload(trace_dir: Path, name: object, pattern: str) -> bytes:
    if isinstance(name, str) and re.fullmatch(pattern, name) and (trace_dir / name).is_file():
        return (trace_dir / name).read_bytes()
    return b""


def _request_line(ex: HttpExchange) -> str:
    return f"{ex.method} {ex.target} {ex.version}".strip()[:300] if ex.method else ""


def _carries(e: Event, data: bytes) -> bool:
    """Whether send *e*'s recorded bytes (escaped, maybe cut) begin the datagram *data*."""
    if not e.data or not data:
        return False
    sent = unescape(e.data)
    got = data.decode("utf-8", "backslashreplace")
    n = min(len(sent), len(got))
    return sent[:n] == got[:n]


def _udp(
    rec: dict[str, Any], idx: _Index, windows: dict[Phase, tuple[float, float]]
) -> tuple[NetDatagram, bytes]:
    t = float(rec.get("t", 0.0))
    phase = _phase(rec.get("phase"), t, windows)
    pid = rec.get("pid") if isinstance(rec.get("pid"), int) else None
    size = int(rec.get("bytes", 0) or 0)
    data = _b64(rec.get("data_b64"))

    # The listener saw the datagram's source: a v4 one came over IPv4 (a v4-mapped
    # v6 send included), a v6 one over IPv6. Without it the send nearest in time wins,
    # and a fast candidate sending the same bytes over v4 UDP and then v6 TCP has the
    # TCP send nearer the datagram's arrival than its own sendto.
    src = str(rec.get("src") or "")
    over_v6 = src.startswith("[") and not src.lower().startswith("[::ffff:") if src else None

    def send_of_this(e: Event) -> bool:
        a = e.address
        return (
            e.kind is EventKind.SEND
            and a is not None
            and a.port != 53
            and not a.is_loopback
            and (pid is None or e.pid == pid)
            and (e.size is None or e.size == size)
            and (over_v6 is None or over_v6 == _is_v6(a.family, a.host or ""))
        )

    # the send that carried these bytes first: one sendmmsg sends several datagrams
    # to several peers at one instant, with no size per message
    ev = idx.nearest(t, lambda e: send_of_this(e) and _carries(e, data)) or idx.nearest(t, send_of_this)
    dest = ev.address.render() if ev is not None and ev.address is not None else None
    pid = pid if pid is not None else (ev.pid if ev is not None else None)
    gram = NetDatagram(
        phase=phase,
        time=t,
        destination=dest,
        bytes=size,
        captured=int(rec.get("captured", 0) or 0),
        truncated=bool(rec.get("truncated")),
        data=escape(data, 256),
        labels=_labels(None, dest),
        pid=pid,
        process=idx.process(phase, pid, rec.get("argv")),
    )
    return gram, data


def _is_v6(family: str, host: str) -> bool:
    """Whether a send went out over IPv6 (a v4-mapped ``::ffff:a.b.c.d`` goes over IPv4)."""
    return family == "inet6" and not (host.lower().startswith("::ffff:") and "." in host)


def _exfil(m: CanaryMatch, h: _Haystack) -> Exfiltration:
    return Exfiltration(
        canary=m.canary.name,
        location=m.canary.location,
        channel=h.channel,
        encoding=m.encoding + (" (request fields joined)" if h.joined else ""),
        phase=h.phase,
        time=h.time,
        destination=h.destination,
        host=h.host,
        pid=h.pid,
        process=h.process,
        bytes=len(h.data),
        excerpt=m.excerpt,
        request=h.request,
        pass_name=h.pass_name,
    )


def _across(conns: Sequence[NetConnection]) -> list[_Haystack]:
    """Per pass and phase, the request fields of all its HTTP connections joined in
    order: a secret split over several fetches (one connection each) forms again."""
    out: list[_Haystack] = []
    keys = dict.fromkeys((c.pass_name, c.phase) for c in conns if c.http)
    for pass_name, phase in keys:
        group = [c for c in conns if c.http and c.phase is phase and c.pass_name == pass_name]
        if len(group) < 2:
            continue  # one connection's requests are joined with it
        first = group[0]
        fields = joined_fields([(ex.target, ex.headers) for c in group for ex in c.http])
        channel: Channel = "https" if first.protocol == "https" else "http"
        out.append(
            _Haystack(
                fields,
                channel,
                phase,
                first.time,
                first.destination,
                first.host,
                first.pid,
                first.process,
                _request_line(first.http[0]),
                pass_name=pass_name,
                joined=True,
            )
        )
    return out


# Header lines that carry credentials to the service itself (RFC 7235's, cookies and the
# API-key headers clients invent): a value there is a client authenticating.
_AUTH_HEADER = re.compile(
    rb"^(?:proxy-)?authorization[ \t]*:.*$|^cookie[ \t]*:.*$"
    rb"|^[\w-]*(?:api-?key|token|auth|secret)[\w-]*[ \t]*:.*$",
    re.IGNORECASE | re.MULTILINE,
)


def _tag_auth_only(
    exfil: list[Exfiltration], canaries: list[Canary], hay: list[_Haystack]
) -> list[Exfiltration]:
    """Mark the execute phase's HTTP(S) finds whose canary appears nowhere but in an
    authentication header of that destination's requests, sent to the key's own service
    (or to the URL the call was handed): a client the calls asked to use its API sending
    the environment's key to it (litellm: ``Authorization: Bearer $OPENAI_API_KEY`` to
    api.openai.com), which the calls judge as context. The same header to any other
    host is the key sent away, and stays PS010."""
    calls = [h for h in hay if h.phase is Phase.EXECUTE and not h.joined and h.channel in ("http", "https")]
    if not calls or not any(x.phase is Phase.EXECUTE for x in exfil):
        return exfil
    stripped = [replace(h, data=_AUTH_HEADER.sub(b"", h.data)) for h in calls]
    elsewhere = {
        (x.canary, x.destination, x.pass_name) for x in _exfiltration(CanaryMatcher(canaries), stripped, [])
    }
    return [
        x.model_copy(update={"encoding": x.encoding + AUTH_ONLY})
        if x.phase is Phase.EXECUTE
        and x.channel in ("http", "https")
        and (x.canary, x.destination, x.pass_name) not in elsewhere
        and logs_in_to(x.canary, x.host, HANDED_HOSTS)
        else x
        for x in exfil
    ]


# An HTTP request's head (request line and headers): where a client authenticates to the
# service it talks to (an Authorization header, a cookie, Telegram's /bot<token>/ path).
_REQUEST_HEAD = re.compile(rb"[A-Z]{3,10} \S+ HTTP/1\.[01]\r?\n(?:[^\r\n]+\r?\n)*\r?\n")


def _without_request_heads(data: bytes) -> bytes:
    """*data* with every HTTP request's head removed (bodies and non-HTTP bytes kept):
    where a secret handed to a call counts as sent (PS032)."""
    return _REQUEST_HEAD.sub(b"", data)


def _exfiltration(matcher: CanaryMatcher, hay: list[_Haystack], dns: list[DnsQuery]) -> list[Exfiltration]:
    out: list[Exfiltration] = []
    seen: set[tuple[str, str, str | None, str]] = set()
    for h in hay:
        if not h.data:
            continue
        for m in matcher.search(h.data):
            key = (m.canary.value, h.channel, h.destination, h.pass_name)
            if key not in seen and len(out) < MAX_EXFIL:
                seen.add(key)
                out.append(_exfil(m, h))
    queries = [q for q in dns if q.name and not q.malformed]
    for pass_name, phase in dict.fromkeys((q.pass_name, q.phase) for q in queries):
        in_phase = [q for q in queries if q.phase is phase and q.pass_name == pass_name]
        for m, spans in matcher.search_dns([q.name for q in in_phase]):
            first = in_phase[spans[0]]
            key = (m.canary.value, "dns", first.name, pass_name)
            if key in seen or len(out) >= MAX_EXFIL:
                continue
            seen.add(key)
            names = " ".join(dict.fromkeys(in_phase[i].name for i in spans))
            out.append(
                Exfiltration(
                    canary=m.canary.name,
                    location=m.canary.location,
                    channel="dns",
                    encoding=m.encoding,
                    phase=phase,
                    time=first.time,
                    destination=first.resolver,
                    host=first.name,
                    pid=first.pid,
                    process=first.process,
                    bytes=sum(len(in_phase[i].name) for i in spans),
                    excerpt=names[:240],
                    pass_name=pass_name,
                )
            )
    return out


def _reads(events: Sequence[Event], idx: _Index, planted: dict[str, str]) -> list[HoneytokenRead]:
    out: list[HoneytokenRead] = []
    seen: set[tuple[str, Phase, int, str]] = set()
    # hard links the candidate made to planted files: an open names the link it used
    alias: dict[tuple[str, str], str] = {}
    for e in events:
        if (
            e.kind is EventKind.FILE_LINK
            and e.syscall in ("link", "linkat")
            and e.errno is None
            and e.path
            and e.path2
            and (e.path2 in planted or (e.pass_name, e.path2) in alias)
        ):
            alias[(e.pass_name, e.path)] = alias.get((e.pass_name, e.path2), e.path2)
            continue
        path = alias.get((e.pass_name, e.path or ""), e.path)
        if (
            e.origin is Origin.CANDIDATE
            and (e.kind is EventKind.FILE_READ or _readable_open(e))
            and e.errno is None
            and path
            and path in planted
            and (e.pass_name, e.phase, e.pid, path) not in seen
        ):
            seen.add((e.pass_name, e.phase, e.pid, path))
            out.append(
                HoneytokenRead(
                    phase=e.phase,
                    time=e.time,
                    pid=e.pid,
                    path=path,
                    location=planted[path],
                    process=idx.process(e.phase, e.pid),
                    pass_name=e.pass_name,
                )
            )
    return out


_OPENS = frozenset({"open", "openat", "openat2"})


def _readable_open(e: Event) -> bool:
    """An open typed as a write (``O_RDWR``, ``O_CREAT``, ``O_APPEND``) that can read:
    ``sqlite3.connect`` opens a database ``O_RDWR|O_CREAT``, so a browser store queried
    in place is read through a "write" open."""
    return (
        e.kind is EventKind.FILE_WRITE and e.syscall in _OPENS and "O_WRONLY" not in (e.flags or "O_WRONLY")
    )
