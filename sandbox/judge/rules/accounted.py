"""Accounted fetches: a phase whose every outbound byte the sinkhole saw, and saw to be
nothing but ordinary requests for a named resource.

A library that loads a config file (``.env``) and then downloads a data file at import
looks, to the trace alone, like a stealer: credential read + connection.  The sinkhole
tells them apart.  When every attempt of the phase is an ordinary DNS question, a
connection that carried nothing, a refused TLS hello with an ordinary name, or a
complete GET/HEAD with no body, no query, standard headers and no encoded-looking
segment, then nothing the run read can have left with it (canaries are checked
separately, in every encoding :mod:`sandbox.judge.canary` knows).  The network and
credential findings of that phase drop from HIGH to MEDIUM — still a finding, still a
failing gate — with the fetches named.  Anything else (a body, a query string, a raw
IP, a cookie, a datagram, a lost capture) keeps them HIGH.
"""

from __future__ import annotations

import ipaddress
import re

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion

from sandbox.agent.protocol import METADATA_ADDRESSES
from sandbox.judge.canary import names_value
from sandbox.judge.rules.context import is_vsock
from sandbox.judge.rules.credentials import CLIENT_CONFIG, DOTENV, is_client_config, is_modified
from sandbox.models import Event, EventKind, Finding, NetConnection, NetworkCapture, Phase, Severity

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]{0,64}$")
_RUN = re.compile(r"[A-Za-z0-9+=_-]{16,}")  # "/" splits: path segments are judged one by one
_IP = re.compile(r"^[\d.]+$|:")
# Findings the accounting can soften: only those whose HIGH rests on "it connected".
SOFTENED = ("PS001", "PS002", "PS011")


def encoded_looking(s: str) -> bool:
    """A run of 16+ token characters mixing digits and letters, or both cases: how
    keys, hashes and base64/hex data look, and how words and file names do not."""
    for run in _RUN.findall(s):
        digits = sum(c.isdigit() for c in run)
        upper = sum(c.isupper() for c in run)
        lower = sum(c.islower() for c in run)
        bare = run.strip("=").isalnum()  # no "_"/"-": not words joined up
        if digits >= 3 or (upper >= 3 and lower >= 3):
            return True
        if bare and (digits or not lower or len(run) >= 32):
            return True
    return False


def _data_label(label: str) -> bool:
    """Base32/hex data in a DNS label: 12+ characters with 2+ digits, unless each digit
    sits alone in a short hyphen-joined word (a cloud region: ``s3-us-west-2``,
    ``eu-central-1``); a word of 12+ characters or with 2+ digits keeps it data."""
    if len(label) < 12 or sum(c.isdigit() for c in label) < 2:
        return False
    return any(len(w) >= 12 or sum(c.isdigit() for c in w) >= 2 for w in label.split("-"))


def ordinary_name(name: str, hostname: str = "") -> bool:
    """A DNS name that could not be carrying data: short plain labels, no encoded run,
    not a raw address, not the sandbox's own host name inside it."""
    n = name.lower().rstrip(".")
    labels = n.split(".")
    if not n or _IP.search(n) or len(n) > 100 or len(labels) < 2:
        return False
    if hostname and (hostname.lower() in n or names_value(hostname, [("/" + "/".join(labels), ())])):
        return False  # the machine's name, plain or encoded (hex split over labels …)
    if any(_data_label(lab) for lab in labels):
        return False  # base32/hex data in a label
    return all(_LABEL.match(lab) for lab in labels) and not encoded_looking(name)


# A program or script fetched is a second stage, not data.
_PAYLOAD = re.compile(
    r"\.(?:exe|dll|scr|msi|bat|cmd|ps1|vbs|js|jar|sh|bin|elf|so|dylib|py|pyc|pyw|zip|7z|rar|apk|dmg)$", re.I
)


# A wheel name's parts other than its name come from closed vocabularies or small
# numbers: an open-ended part (``linux_<anything>``, a long local version, a build tag
# of letters) would carry a key as well as any encoded segment.
_ARCH = (
    r"(?:x86_64|i686|aarch64|armv[67]l|ppc64le|ppc64|s390x|riscv64|loongarch64|arm64|amd64|x86"
    r"|universal2?|intel|fat(?:32|64)?)"
)
_INTERPRETER = re.compile(r"^(?:py|cp|pp|ip|jy)\d{0,3}$")
_ABI = re.compile(r"^(?:none|abi3|(?:cp|pp)\d{2,3}[dmut]{0,2}|pypy\d{0,3}_pp\d{2,3})$")
_PLATFORM = re.compile(
    rf"^(?:any|win32|win_(?:amd64|arm64|ia64)|(?:many|musl)linux_\d{{1,2}}_\d{{1,3}}_{_ARCH}"
    rf"|manylinux(?:1|2010|2014)_{_ARCH}|linux_{_ARCH}|macosx_\d{{1,2}}_\d{{1,2}}_{_ARCH})$"
)
_VERSION = re.compile(
    r"^(?:\d{1,4}!)?\d{1,8}(?:\.\d{1,8}){0,4}(?:(?:a|b|rc)\d{1,4})?(?:\.post\d{1,4})?(?:\.dev\d{1,8})?"
    r"(?:\+[a-z]{1,10}\d{0,4}(?:\.\d{1,4})?)?$"
)
_BUILD = re.compile(r"^\d{1,8}$")
_MAX_TAGS = 4  # in one compressed tag set (``manylinux_2_17_x86_64.manylinux2014_x86_64``)


def _wheel_file(segment: str) -> bool:
    """A well-formed wheel file name (PEP 427) with real tags: a published artifact's
    standard name, whose platform tags (``manylinux_2_28_x86_64``) only look like
    encoded data. Its name part is held to the ordinary segment tests; its version,
    build tag and tags must be of the forms real releases use (no room for data)."""
    try:
        parse_wheel_filename(segment)
    except (InvalidWheelFilename, InvalidVersion):
        return False
    parts = segment[: -len(".whl")].split("-")
    name, version, tags = parts[0], parts[1], parts[-3:]
    build = parts[2] if len(parts) == 6 else None
    sets = [t.split(".") for t in tags]
    return (
        bool(_SEGMENT.match(name))
        and not encoded_looking(name)
        and len(version) <= 40
        and bool(_VERSION.match(version))
        and (build is None or bool(_BUILD.match(build)))
        and all(0 < len(s) <= _MAX_TAGS for s in sets)
        and all(_INTERPRETER.match(t) for t in sets[0])
        and all(_ABI.match(t) for t in sets[1])
        and all(_PLATFORM.match(t) for t in sets[2])
    )


def _plain_target(target: str, hostname: str) -> bool:
    if "?" in target or "#" in target or not target.startswith("/") or _PAYLOAD.search(target):
        return False
    segs = [s for s in target.split("/") if s]
    if segs and _wheel_file(segs[-1]):
        segs = segs[:-1]
    if len(segs) > 12 or any(not _SEGMENT.match(s) for s in segs):
        return False
    low = target.lower()
    if (hostname and hostname.lower() in low) or "/home/" in low:
        return False
    return not encoded_looking("/".join(segs))


# IANA's TLS ALPN protocol ids (2025): what a real client offers
ALPN_IDS = frozenset(
    [
        "http/0.9",
        "http/1.0",
        "http/1.1",
        "spdy/1",
        "spdy/2",
        "spdy/3",
        "spdy/3.1",
        "h2",
        "h2c",
        "h3",
        "stun.turn",
        "stun.nat-discovery",
        "webrtc",
        "c-webrtc",
        "ftp",
        "imap",
        "pop3",
        "managesieve",
        "coap",
        "coap+tls",
        "coap+dtls",
        "xmpp-client",
        "xmpp-server",
        "acme-tls/1",
        "mqtt",
        "dot",
        "ntske/1",
        "sunrpc",
        "smb",
        "irc",
        "nntp",
        "nnsp",
        "doq",
        "sip/2",
        "tds/8.0",
        "dicom",
        "postgresql",
        "radius/1.0",
        "radius/1.1",
    ]
)


def plain_connection(c: NetConnection, hostname: str = "") -> bool:
    """Every byte of *c* is an ordinary request (or nothing at all)."""
    if c.truncated or c.protocol not in ("http", "https", "tls", "empty"):
        return False
    if c.protocol == "empty":
        return c.bytes == 0
    if c.protocol == "tls":
        # the client refused the run's CA: only its hello went out
        hello = c.tls
        if hello is None or not hello.sni or hello.intercepted or c.bytes > 2048:
            return False
        if not set(hello.alpn) <= ALPN_IDS:  # a made-up protocol id carries what it likes
            return False
        return ordinary_name(hello.sni, hostname)
    if not c.http or not c.host or not ordinary_name(c.host, hostname):
        return False
    for h in c.http:
        if h.method not in ("GET", "HEAD") or h.body_bytes or not h.complete:
            return False
        if h.host and h.host.split(":")[0].lower() != c.host.lower():
            return False
        if not _plain_target(h.target, hostname):
            return False
        for k, v in h.headers:
            if not plain_header(k, v):
                return False
    # the sandbox's own host name in any field, plainly or encoded (a beacon naming
    # the machine it reached: no canary proves it)
    return not (hostname and names_value(hostname, [(h.target, h.headers) for h in c.http]))


# Credentials and tokens travel in these; a request carrying one is never plain.
_SECRET_HEADERS = re.compile(
    r"^(?:cookie|authorization|proxy-authorization)$|api[-_]?key|token|secret|auth", re.I
)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def plain_header(name: str, value: str) -> bool:
    """A header that identifies the client or the request, not one that carries data:
    no credential header, at most 200 characters, no encoded-looking run (the
    User-Agent aside; a request id may be a UUID, as SDKs' trace ids are)."""
    key = name.lower()
    if len(value) > 200 or _SECRET_HEADERS.search(key):
        return False
    if key == "user-agent" or (key.endswith("-id") and _UUID.match(value)):
        return True
    return not encoded_looking(value)


def _ip(text: str) -> str:
    """The address in ``host``, ``host:port`` or ``[v6]:port``, normalised ("" if none)."""
    t = text.strip()
    if t.startswith("["):
        t = t[1 : t.find("]")]
    elif t.count(":") == 1:
        t = t.split(":")[0]
    try:
        return str(ipaddress.ip_address(t))
    except ValueError:
        return ""


def hard_coded_stream(e: Event, known_ips: set[str]) -> bool:
    """A stream connect (or one of unknown type) to an address outside *known_ips* (no
    DNS answer gave it): the SYN went out whether or not the sinkhole logged the
    connection (a 1 s timeout on a loaded machine can end it first). A datagram
    connect sends nothing (a library finding its own address by "connecting" to 8.8.8.8)."""
    a = e.address
    if e.kind is not EventKind.CONNECT or a is None or a.family not in ("inet", "inet6") or a.is_loopback:
        return False
    if (e.flags or "").split(";", 1)[0] == "SOCK_DGRAM":  # the type leads; later text may quote memory
        return False
    ip = _ip(a.host)
    if not ip:
        return False
    addr = ipaddress.ip_address(ip)
    mapped = addr.ipv4_mapped if isinstance(addr, ipaddress.IPv6Address) else None
    return ip not in known_ips and (mapped is None or str(mapped) not in known_ips)


def metadata_ping(c: NetConnection) -> bool:
    """A cloud SDK asking the metadata address's root whether it runs in the cloud
    (google-auth's ``GET /`` with ``Metadata-Flavor``): no credential path, no body."""
    if c.truncated or c.protocol != "http" or _ip(c.destination) not in METADATA_ADDRESSES or not c.http:
        return False
    return all(
        h.method in ("GET", "HEAD")
        and h.target == "/"
        and not h.body_bytes
        and h.complete
        and all(plain_header(k, v) for k, v in h.headers)
        for h in c.http
    )


# What the exercise and execute phases pass to a command: a tool that looks up its
# arguments as host names (a DNS library's `python -m pkg --help`) asks about these.
_OUR_FLAGS = frozenset({"--help", "--version"})


def _our_flag(name: str, phase: Phase) -> bool:
    return phase in (Phase.EXERCISE, Phase.EXECUTE) and name.rstrip(".") in _OUR_FLAGS


def _our_resolver(resolver: str, ours: set[str]) -> bool:
    """Whether a DNS question went to the sandbox's name server (*ours*) or a loopback one."""
    ip = _ip(resolver)
    return ip in ours or (bool(ip) and ipaddress.ip_address(ip).is_loopback)


def sinkhole_phases(net: NetworkCapture | None) -> set[Phase]:
    """Phases the sinkhole saw traffic in (whether or not the trace shows its sender).
    Such a phase is networked: it never takes another phase's account, and without a
    traced attempt of its own it has none (:func:`accounted_phases`)."""
    if net is None:
        return set()
    return {q.phase for q in net.dns} | {c.phase for c in net.connections} | {d.phase for d in net.datagrams}


def accounted_phases(
    outbound: list[Event], net: NetworkCapture | None, hostname: str = ""
) -> dict[Phase, str]:
    """Phases whose every outbound attempt is accounted for, each with a short account
    of what was fetched.  *outbound*: the phase's candidate connect/send events."""
    if net is None or not net.enabled or net.dropped or net.truncated:
        return {}
    out: dict[Phase, str] = {}
    resolved = {_ip(q.answer) for q in net.dns if q.answer} - {""}
    ours = {_ip(r) for r in net.resolvers}
    for phase in {e.phase for e in outbound}:
        if any(x.phase is phase for x in net.exfiltration) or any(d.phase is phase for d in net.datagrams):
            continue
        if any(e.phase is phase and is_vsock(e) for e in outbound):
            continue  # a channel the sinkhole never sees cannot be accounted for by it
        dns = [q for q in net.dns if q.phase is phase]
        if any(q.malformed or not (ordinary_name(q.name, hostname) or _our_flag(q.name, phase)) for q in dns):
            continue
        if ours and any(q.resolver and not _our_resolver(q.resolver, ours) for q in dns):
            continue  # questions to a name server the code chose: its address is hard-coded
        resolvers = {q.resolver for q in dns if q.resolver}
        conns = [c for c in net.connections if c.phase is phase]
        if not all(
            (plain_connection(c, hostname) and _ip(c.destination) in resolved) or metadata_ping(c)
            for c in conns
        ):
            continue  # something else was sent, or to an address no DNS answer gave (hard-coded)
        known_ips = resolved | {_ip(r) for r in resolvers} | set(METADATA_ADDRESSES)
        if any(e.phase is phase and hard_coded_stream(e, known_ips) for e in outbound):
            continue
        # Every byte that reached the sinkhole is in conns (all plain); a connect with no
        # connection there delivered nothing (glibc's address-sorting UDP connect, an
        # unreachable v6 route).  A send must be a DNS question or a write on one of conns.
        known = resolvers | {c.destination for c in conns}
        if any(
            e.kind is EventKind.SEND and (e.address is None or e.address.render() not in known)
            for e in outbound
            if e.phase is phase
        ):
            continue
        fetched = sorted(
            {f"{c.host}{h.target}" for c in conns for h in c.http}
            | {f"{c.tls.sni} (TLS hello only)" for c in conns if c.protocol == "tls" and c.tls}
        )
        out[phase] = ", ".join(fetched[:3]) + (f" (+{len(fetched) - 3} more)" if len(fetched) > 3 else "")
    return out


def _stealer_touch(findings: list[Finding]) -> set[Phase]:
    """Phases where a credential finding rests on anything but client configuration
    read (a change to it counts: ``is_modified``).  Its evidence, which is capped, lists
    such places first: see :func:`sandbox.judge.rules.credentials.stealer_first`."""
    return {
        f.phase
        for f in findings
        if f.rule_id in ("PS001", "PS012")
        and any(not is_client_config(ev) or is_modified(ev) for ev in f.evidence)
    }


def _read_config(findings: list[Finding], phase: Phase) -> bool:
    """Whether the phase touched any credential location at all (client config included)."""
    return any(f.rule_id in ("PS001", "PS012") and f.phase is phase for f in findings)


# A run that read a credential may have hidden it in any free text of its requests:
# short path segments (a hex run cut every 15 characters passes encoded_looking), host
# labels, header values. Measured by :func:`free_text` over a phase: past FED_BUDGET its
# fetches are not LOW even when fed the bait (at most MEDIUM: a planted AWS secret, .env
# SECRET_KEY, token or SSH key does not fit in 32 characters, a short password may;
# /assets/models.json from cdn.<name> is 21); past ACCOUNTED_BUDGET they are not
# accounted at all (HIGH: room for any planted secret; SDK client headers and a trace
# id with a data path are ~65).
FED_BUDGET = 32
ACCOUNTED_BUDGET = 128
# A client names itself (User-Agent, google-auth's "gl-python/3.11.2 auth/2.63.0
# auth-request-type/mds"): distinct such values share this many data-shaped characters
# a phase.
_IDENT_ALLOWANCE = 16  # of data-shaped characters: "python-requests/2.32.3" has none
_PRODUCTS = re.compile(r"^[A-Za-z][\w.+-]*/[\w.+-]+(?: [A-Za-z][\w.+-]*/[\w.+-]+)*$")
# headers whose values are the protocol's, not the client's to fill
_FIXED_HEADERS = frozenset(
    {"host", "accept", "accept-encoding", "connection", "content-length", "metadata-flavor", "metadata"}
)


_TOKEN = re.compile(r"[A-Za-z0-9]+")


def data_chars(text: str) -> int:
    """Characters of *text* in tokens shaped like data rather than words: letters mixed
    with 2+ digits (hex, base32/64 of a key), 6+ digits in a row (decimal bytes), or
    both cases 3+ times (base64).  A path of words (``/BerriAI/litellm/main/
    model_prices_and_context_window.json``, a version ``2.32.3``) carries 0-7; a
    credential cut into short hex runs carries all of its length."""
    n = 0
    for tok in _TOKEN.findall(text):
        digits = sum(c.isdigit() for c in tok)
        letters = len(tok) - digits
        upper = sum(c.isupper() for c in tok)
        if (digits >= 2 and letters) or digits >= 6 or (upper >= 3 and letters - upper >= 3):
            n += len(tok)
    return n


def free_text(net: NetworkCapture, phase: Phase, *, trace_ids: bool = True) -> int:
    """Characters of the *phase*'s requests a client chooses freely and that are shaped
    like data (:func:`data_chars`), each distinct value once: paths (without slashes; of
    a wheel file, its name), header values (client identification beyond a shared
    allowance), ports other than 80 and 443 (connections
    that sent nothing count as fed), and the labels of every name it resolved or asked
    for below the last two.  Without *trace_ids*, a request id that is a UUID (SDKs
    send a fresh one with every request: ``X-Amzn-Trace-Id``) is left out."""
    names = {q.name.lower().rstrip(".") for q in net.dns if q.phase is phase}
    ports: set[str] = set()  # a connection that carried nothing still names its port
    targets: set[str] = set()
    ident: set[str] = set()
    other: set[tuple[str, str]] = set()
    for c in net.connections:
        if c.phase is not phase:
            continue
        names |= {x.lower().rstrip(".") for x in (c.host, c.tls.sni if c.tls else None) if x}
        ports.add(c.destination.rsplit(":", 1)[-1])
        for h in c.http:
            targets.add(h.target)
            for k, v in h.headers:
                key = k.lower()
                if key == "user-agent" or _PRODUCTS.match(v):
                    ident.add(v)
                elif not trace_ids and key.endswith("-id") and _UUID.match(v):
                    continue
                elif key not in _FIXED_HEADERS:
                    other.add((key, v))
    n = max(0, sum(data_chars(v) for v in ident) - _IDENT_ALLOWANCE) + sum(data_chars(v) for _, v in other)
    # a port is data through and through (16 bits in up to 5 digits): counted double
    n += sum(2 * len(p) for p in ports - {"80", "443"})
    for target in targets:
        segs = [x for x in target.split("/") if x]
        if segs and _wheel_file(segs[-1]):  # only its name is free (see _wheel_file)
            segs[-1] = segs[-1].split("-", 1)[0]
        n += sum(data_chars(x) for x in segs)
    return n + sum(data_chars(".".join(x.split(".")[:-2])) for x in names if not _IP.search(x))


def _read_secret(findings: list[Finding]) -> bool:
    """Whether the run opened a credential (a planted one, or a credential location that
    was there; probing for an absent one read nothing)."""
    return any(
        f.rule_id == "PS012" or (f.rule_id == "PS001" and any(ev.errno is None for ev in f.evidence))
        for f in findings
    )


# What a finding lowered because the phase was fed the bait stage says (report.py may
# take that back: the bait cannot show a stage that is decoded before it runs).
FED_NOTE = "the bait second stage it fetched never ran"


def soften(
    findings: list[Finding],
    accounted: dict[Phase, str],
    staged: set[Phase] | frozenset[Phase] = frozenset(),
    networked: set[Phase] | frozenset[Phase] = frozenset(),
    carried: dict[Phase, int] | None = None,
    commanded: dict[Phase, int] | None = None,
) -> list[Finding]:
    """Lower the connection-based HIGH findings of *accounted* phases to MEDIUM, unless
    the phase also touched a secret store no client library reads; to LOW where the
    phase's fetches were all answered with the bait stage (*staged*, see
    :mod:`sandbox.judge.rules.stage`) and no stage ran anywhere in the run — there,
    the planted client configuration it read (PS012) is LOW too.  A phase that reached
    out nowhere (not in *networked*) but whose PS001 is HIGH for the run's connections
    elsewhere is judged by those: softened when every networked phase is accounted,
    LOW when every one was also fed the stage.  What a phase's requests *carried*
    (:func:`free_text`) bounds this: past :data:`FED_BUDGET` never LOW, fed or in the
    exercise phase (the secrets in the environment are read with no syscall, so no read
    need show), and when the run
    read a credential file, past :data:`ACCOUNTED_BUDGET` not softened at all.  The
    exercise phase's LOW for a command that read nothing is bounded by the same
    :data:`FED_BUDGET` over *commanded* (its requests' text without UUID request ids:
    a CLI's update check sends a fresh one each time), else over *carried*."""
    carried = carried or {}
    commanded = commanded or {}
    secret = _read_secret(findings)
    accounted = {p: a for p, a in accounted.items() if not secret or carried.get(p, 0) <= ACCOUNTED_BUDGET}
    staged = {p for p in staged if carried.get(p, 0) <= FED_BUDGET}
    stolen = _stealer_touch(findings)
    ran = any(f.rule_id == "PS013" for f in findings)
    # a phase with no network of its own takes the run's: its networked phases' account
    if networked and networked <= accounted.keys():
        quiet = {f.phase for f in findings} - networked
        elsewhere = ", ".join(sorted(accounted[p] for p in networked))
        accounted = {**dict.fromkeys(quiet, elsewhere), **accounted}
        staged = set(staged) | (quiet if networked <= staged else set())
    out = []
    for f in findings:
        fed = f.phase in accounted and f.phase in staged and f.phase not in stolen and not ran
        if (
            f.rule_id in SOFTENED
            and f.phase in accounted
            and f.phase not in stolen
            and f.severity is Severity.HIGH
        ):
            what = accounted[f.phase] or "nothing but DNS questions"
            # A command the user runs (exercise) checking for updates or loading a demo's
            # data is LOW when nothing was read either; install and import, which run
            # unasked, stay MEDIUM unless the answer they got was the bait stage and it
            # never ran (otherwise a second stage the empty answer hid is never seen).
            # Either way within FED_BUDGET: the environment's secrets need no read.
            calm = fed or (
                f.phase is Phase.EXERCISE
                and f.rule_id in ("PS002", "PS011")
                and not _read_config(findings, f.phase)
                and commanded.get(f.phase, carried.get(f.phase, 0)) <= FED_BUDGET
            )
            f = f.model_copy(
                update={
                    "severity": Severity.LOW if calm else Severity.MEDIUM,
                    "message": f.message + f" (every outbound byte accounted for: ordinary fetch of {what}; "
                    "no body, query, cookie or credential in it" + (f"; {FED_NOTE})" if fed else ")"),
                }
            )
        elif f.rule_id == "PS012" and fed and f.severity is Severity.MEDIUM:
            f = f.model_copy(
                update={
                    "severity": Severity.LOW,
                    "message": f.message + " (client configuration; every outbound byte of the phase "
                    f"accounted for, and {FED_NOTE})",
                }
            )
        out.append(f)
    return out


NETWORK_RULES = ("PS002", "PS010", "PS011")


# where a library or a command loads its own client configuration: a command the
# user runs loads any client's (the AWS CLI's credentials even for --help); a library
# at start-up or import only the project's dotenv file (load_dotenv() at module level:
# three top-1000 projects) and the AWS SDK's config (region, profiles: botocore reads
# it when a session is made at import, two top-1000 AWS tools) — credentials, tokens
# and keys read at import stay MEDIUM
_LIBRARY_CONFIG = re.compile(DOTENV + r"|/\.aws/config$")
_CONFIG_PHASES = {
    Phase.STARTUP: ("at start-up", _LIBRARY_CONFIG),
    Phase.IMPORT: ("by a library at import", _LIBRARY_CONFIG),
    Phase.EXERCISE: ("by a command the user ran", CLIENT_CONFIG),
}


def calm_command_config(findings: list[Finding]) -> list[Finding]:
    """A library or command reads its own client configuration (``load_dotenv()`` at
    import; the AWS CLI loads ``~/.aws/credentials`` even for ``--help``): when every
    read is such configuration (at start-up and import a dotenv file or the AWS config; in the
    exercise phase any :data:`CLIENT_CONFIG`) and nothing in the pass reached out,
    PS001/PS012 there are LOW. A stealer's targets (keys, browsers, wallets …, listed
    first in the evidence), a change to any of those files, any network, or an install
    keep them."""
    if any(f.rule_id in NETWORK_RULES for f in findings):
        return findings
    out = []
    for f in findings:
        if (
            f.rule_id in ("PS001", "PS012")
            and f.phase in _CONFIG_PHASES
            and f.severity is Severity.MEDIUM
            and all(
                is_client_config(ev, _CONFIG_PHASES[f.phase][1]) and not is_modified(ev) for ev in f.evidence
            )
        ):
            f = f.model_copy(
                update={
                    "severity": Severity.LOW,
                    "message": f.message + f" (client configuration read {_CONFIG_PHASES[f.phase][0]}; "
                    "nothing reached out)",
                }
            )
        out.append(f)
    return out
