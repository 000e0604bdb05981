"""Frozen pydantic models for everything that crosses a boundary.

One event model flows one way: fetch → artifacts; runner → raw traces; parser →
:class:`Event`; judge → :class:`Finding` and :class:`Verdict`; report → JSON.
The JSON report (:class:`Report`) is versioned by :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.0"
DEFAULT_PASS = "default"  # the first run of the phases; extra passes re-run startup and import


class Frozen(BaseModel):
    """Base of every boundary model: immutable and strict about unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Phase(str, Enum):
    """Ordered phases of a vet run."""

    INSTALL = "install"
    STARTUP = "startup"
    IMPORT = "import"
    EXERCISE = "exercise"  # what a user runs after install: entry points, python -m (--help)
    EXECUTE = "execute"  # console scripts and public functions (the deep profile)

    @property
    def order(self) -> int:
        """Position of the phase in a run."""
        return list(Phase).index(self)


class ArtifactKind(str, Enum):
    WHEEL = "wheel"
    SDIST = "sdist"


class ArtifactRole(str, Enum):
    CANDIDATE = "candidate"
    DEPENDENCY = "dependency"
    BUILD = "build"  # build requirement of an sdist
    KIT = "kit"  # what a developer's venv already has (setuptools, wheel, requests …) for legacy setup.py


class Artifact(Frozen):
    """A distribution file staged for the sandbox, identified by its hash."""

    name: str
    version: str
    filename: str
    sha256: str
    kind: ArtifactKind
    role: ArtifactRole
    size: int
    source: str = ""  # index URL, local path or "pip" (wheel-only resolve)


class EventKind(str, Enum):
    """What a syscall did, independent of which syscall did it."""

    FILE_READ = "file_read"
    FILE_WRITE = "file_write"
    FILE_STAT = "file_stat"
    FILE_LIST = "file_list"
    FILE_DELETE = "file_delete"
    FILE_RENAME = "file_rename"
    FILE_CHMOD = "file_chmod"
    FILE_LINK = "file_link"
    DIR_CREATE = "dir_create"
    EXEC = "exec"
    SPAWN = "spawn"
    EXIT = "exit"
    SIGNAL = "signal"
    SOCKET = "socket"
    CONNECT = "connect"
    SEND = "send"
    RECV = "recv"
    BIND = "bind"
    LISTEN = "listen"
    DNS = "dns"
    PTRACE = "ptrace"
    PRIVILEGED = "privileged"  # mount, module load, reboot, setuid …
    OTHER = "other"


class Origin(str, Enum):
    """Who an event is attributed to.

    ``harness`` is the tool's own command (exempted only by exact executable and
    argv); ``runtime`` is the interpreter's or loader's start-up noise (reads of
    the standard library, shared libraries); everything else is ``candidate``.
    """

    CANDIDATE = "candidate"
    RUNTIME = "runtime"
    HARNESS = "harness"


class Address(Frozen):
    """A socket address as decoded by strace."""

    family: Literal["inet", "inet6", "unix", "netlink", "other"]
    host: str = ""
    port: int | None = None
    path: str = ""  # AF_UNIX path ("@name" for the abstract namespace)

    def render(self) -> str:
        """Human form: ``host:port``, ``[v6]:port`` or the unix path."""
        if self.family == "unix":
            return f"unix:{self.path}"
        if self.family == "inet6":
            return f"[{self.host}]:{self.port}"
        if self.family == "inet":
            return f"{self.host}:{self.port}"
        return f"{self.family}:{self.host or self.path}"

    @property
    def is_loopback(self) -> bool:
        if self.family == "unix":
            return True
        if self.family == "inet":
            return self.host.startswith("127.") or self.host == "0.0.0.0"
        if self.family == "inet6":
            return self.host in ("::1", "::") or self.host.startswith("::ffff:127.")
        return True


class Event(Frozen):
    """One observed syscall, normalised."""

    phase: Phase
    seq: int  # order within the phase's trace
    pid: int
    time: float
    syscall: str
    kind: EventKind
    origin: Origin = Origin.CANDIDATE
    path: str | None = None
    path2: str | None = None  # rename/link target
    argv: tuple[str, ...] | None = None
    address: Address | None = None
    target: int | None = None  # pid acted on (kill, ptrace) or child pid (spawn)
    flags: str | None = None
    size: int | None = None  # bytes moved (write/send) when known
    data: str | None = None  # escaped prefix of the bytes, as strace printed it
    result: int | None = None
    errno: str | None = None
    context: str | None = None  # execute phase: the entry point or function call that caused it
    pass_name: str = DEFAULT_PASS  # which pass of the phases saw it ("windows", "time" …)

    @property
    def failed(self) -> bool:
        return self.errno is not None


def in_order(events: Iterable[Event]) -> list[Event]:
    """*events* in (phase, seq) order, as a new list. When the seqs already rise within
    each phase (what :func:`sandbox.trace.observe.observe` hands over), a stable sort
    on the phase alone gives that order without a key tuple per event (millions in a
    big run); otherwise the full sort."""
    out = list(events)
    rank = {p: i for i, p in enumerate(Phase)}
    last: dict[Phase, int] = {}
    rising = True
    for e in out:
        if e.seq < last.get(e.phase, e.seq):
            rising = False
            break
        last[e.phase] = e.seq
    if rising:
        out.sort(key=lambda e: rank[e.phase])
    else:
        out.sort(key=lambda e: (rank[e.phase], e.seq))
    return out


class ProcessInfo(Frozen):
    """A process seen in the trace, with its exec history."""

    pid: int
    ppid: int | None
    phase: Phase
    argv: tuple[str, ...]
    exe: str
    start: float
    end: float | None = None
    exit_code: int | None = None
    killed_by: str | None = None
    origin: Origin = Origin.CANDIDATE
    execs: tuple[tuple[str, ...], ...] = ()
    pass_name: str = DEFAULT_PASS


class PhaseStatus(str, Enum):
    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"


class StepResult(Frozen):
    """One unit of work inside a phase (a startup command, an imported module)."""

    name: str
    status: PhaseStatus
    duration: float
    detail: str = ""


class Lingering(Frozen):
    """A candidate process or thread still alive when the observation window closed."""

    pid: int
    ppid: int | None
    argv: tuple[str, ...]
    threads: int
    status: str
    cpu: float = 0.0  # CPU seconds used during the window
    active: bool = True  # False: the step's own process with only idle threads left


class PhaseResult(Frozen):
    """How a phase ran: apart from what it did (the events)."""

    phase: Phase
    status: PhaseStatus
    duration: float
    exit_code: int | None = None
    trace_complete: bool = True
    trace_lines: int = 0
    trace_bytes: int = 0
    steps: tuple[StepResult, ...] = ()
    lingering: tuple[Lingering, ...] = ()
    window: float = 0.0  # seconds actually spent watching survivors
    oom_kills: int = 0  # processes the kernel's OOM killer killed (memory limit)
    output_bytes: int = 0  # total bytes the candidate wrote to stdout/stderr (only a head/tail is kept)
    output_tail: str = ""
    problems: tuple[str, ...] = ()
    modules_capped: int = 0  # import: the candidate's modules its cap left out (the deepest)
    named_capped: int = 0  # import: of those, top-level or entry-point modules (not a full look)
    pass_name: str = DEFAULT_PASS  # an extra pass re-runs startup and import under a changed environment
    pass_note: str = ""  # why the pass ran and what it changed
    seeded: bool = False  # drew seeded randomness and a counted clock (the secrets and control passes)


class Severity(str, Enum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class Evidence(Frozen):
    """The concrete observation a finding rests on."""

    phase: Phase
    pid: int
    time: float
    syscall: str
    process: tuple[str, ...] = ()  # argv of the acting process
    path: str | None = None
    destination: str | None = None
    bytes: int | None = None
    data: str | None = None
    errno: str | None = None
    detail: str = ""
    context: str | None = None  # the entry point or function call that caused it (execute phase)
    pass_name: str = DEFAULT_PASS


class Finding(Frozen):
    rule_id: str
    title: str
    severity: Severity
    phase: Phase
    message: str
    evidence: tuple[Evidence, ...] = Field(min_length=1)
    pass_name: str = DEFAULT_PASS  # the pass whose events (and only those) the finding rests on


class Verdict(str, Enum):
    CLEAN = "clean"
    SUSPICIOUS = "suspicious"
    MALICIOUS = "malicious"
    INCOMPLETE = "incomplete"

    @property
    def rank(self) -> int:
        return {"clean": 0, "incomplete": 1, "suspicious": 2, "malicious": 3}[self.value]


class ImageInfo(Frozen):
    tag: str
    id: str
    base: str
    python: str  # "3.11"
    platforms: tuple[str, ...]  # wheel platform tags the sandbox accepts, best first
    # Distributions the image provides without staging (not part of the report): the
    # developer kit baked in for legacy setup.py sdists, and the venv template's own.
    kit: tuple[str, ...] = Field(default=(), exclude=True)
    venv: tuple[str, ...] = Field(default=(), exclude=True)


class PhaseSummary(Frozen):
    phase: Phase
    events: int
    by_kind: dict[str, int]
    by_origin: dict[str, int]
    processes: int
    pass_name: str = DEFAULT_PASS


class PthFile(Frozen):
    """A ``.pth`` file present in site-packages after install."""

    path: str
    sha256: str
    size: int
    head: str
    executes: bool  # has an ``import`` line, i.e. runs code at every interpreter start


class Inventory(Frozen):
    """What install put in place."""

    site_packages: str = ""
    distributions: tuple[dict[str, str], ...] = ()
    pth_files: tuple[PthFile, ...] = ()
    candidate_dist_info: str | None = None
    modules: tuple[str, ...] = ()
    modules_capped: int = 0  # modules the import phase's cap left out (the deepest)
    modules_first: int = 0  # top-level and entry-point modules, at the head of the full list
    entry_points: str = ""


class FsChange(Frozen):
    """A watched start-up or scheduler file that appeared or changed during a phase,
    from the agent's snapshot diff (independent of the trace)."""

    phase: Phase
    path: str
    change: str  # "created" | "modified"
    size: int = 0
    mode: str = ""
    sha256: str | None = None
    head: str = ""  # the first bytes of a small file, as text
    installed: bool = False  # listed in an installed distribution's RECORD (the wheel's own)
    pass_name: str = DEFAULT_PASS


class Observation(Frozen):
    """Everything the judge looks at for one run."""

    events: tuple[Event, ...]
    processes: tuple[ProcessInfo, ...]
    phases: tuple[PhaseResult, ...]
    inventory: Inventory = Inventory()
    home: str = "/home/dev"
    venv: str = "/home/dev/project/.venv"
    fs_changes: tuple[FsChange, ...] = ()  # persistence files that appeared or changed (the diff)
    round_hooks: tuple[StagedHook, ...] = ()  # .pth files of wheels the rounds staged


class StagedHook(Frozen):
    """A ``.pth`` at the root of a wheel a round staged: pip writes it into site-packages
    with exactly this content (its RECORD's hash); the wheel's, not the candidate's."""

    name: str
    sha256: str  # hex
    text: str = ""  # its content (the hook rules judge it: PS009, PS021)
    phase: Phase | None = None  # of the round that staged it (set when judging)
    pass_name: str = DEFAULT_PASS  # likewise


class Round(Frozen):
    """One adaptive round: a step failed for lack of a module or distribution, the host
    staged wheels (executing nothing) and the step ran again in the same container."""

    number: int
    phase: Phase
    reason: str  # the failing step's line ("ModuleNotFoundError: No module named 'x'")
    requested: tuple[str, ...] = ()  # "module websocket", "requirement requests==2.31.0"
    added: tuple[str, ...] = ()  # files staged
    installed: tuple[str, ...] = ()  # requirements the agent installed
    missing: tuple[str, ...] = ()  # what nobody could supply, and why
    seconds: float = 0.0
    hooks: tuple[StagedHook, ...] = ()  # .pth files the staged wheels install
    pass_name: str = DEFAULT_PASS  # the pass whose step asked


class Report(Frozen):
    """The versioned JSON report of one vet run."""

    schema_version: str = SCHEMA_VERSION
    tool_version: str
    target: str
    started: float
    finished: float
    profile: str
    image: ImageInfo | None
    artifacts: tuple[Artifact, ...]
    phases: tuple[PhaseResult, ...]
    summary: tuple[PhaseSummary, ...]
    processes: tuple[ProcessInfo, ...]
    events: tuple[Event, ...]  # candidate-attributed events (noise counted in summary)
    findings: tuple[Finding, ...]
    verdict: Verdict
    verdict_reason: str
    inventory: Inventory = Inventory()
    hostname: str = ""
    notes: tuple[str, ...] = ()
    network: NetworkCapture | None = None  # None in reports written before the sinkhole existed
    rounds: tuple[Round, ...] = ()  # adaptive rounds: what was added mid-run, and why


# --------------------------------------------------------------------------- network (sinkhole)
# What the sinkhole inside the sandbox received (see sandbox/agent/sinkhole/): no
# byte ever left the sandbox; these are the attempts, answered locally.


class HttpExchange(Frozen):
    """One HTTP request as the sinkhole parsed it (it answered 200, with the run's bait
    second stage as the body when ``staged``)."""

    method: str
    target: str
    version: str
    host: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body_bytes: int = 0
    body: str = ""  # escaped prefix of the (de-chunked) body
    complete: bool = True  # False: the client stopped mid-request (slowloris, cut body)
    body_truncated: bool = False  # more body than the capture keeps
    staged: bool = False  # answered with the bait stage (NetworkCapture.stage)


class TlsHello(Frozen):
    """What a TLS ClientHello gave away, and how the sinkhole's termination went: it
    answers as the named server with a certificate of the run's CA, which the
    sandbox trusts; a client that refuses it (pinning, its own store) leaves only
    this hello and the reason of the failed handshake."""

    sni: str | None = None
    alpn: tuple[str, ...] = ()
    version: str = ""
    error: str = ""  # not a readable ClientHello (garbage on a TLS port …)
    intercepted: bool = False  # handshake completed: the connection's bytes were decrypted
    handshake_error: str = ""  # why it did not (e.g. TLSV1_ALERT_UNKNOWN_CA: the client refused the CA)
    negotiated_version: str = ""
    negotiated_alpn: str = ""


class DnsQuery(Frozen):
    """One question a process asked the resolver (every A/AAAA got a sinkhole address)."""

    phase: Phase
    time: float
    name: str
    qtype: str
    transport: Literal["udp", "tcp"] = "udp"
    answer: str | None = None
    resolver: str | None = None  # the address the query was sent to, when known
    pid: int | None = None
    process: tuple[str, ...] = ()
    malformed: bool = False
    detail: str = ""  # parse error of a malformed query, with its first bytes
    pass_name: str = DEFAULT_PASS


class NetConnection(Frozen):
    """One TCP connection the sinkhole accepted in place of its destination."""

    phase: Phase
    time: float
    duration: float = 0.0
    destination: str  # original destination, host:port or [v6]:port
    host: str | None = None  # the name it was resolved from, the SNI or the Host header
    protocol: str = "unknown"  # http, https (HTTP in terminated TLS), tls, dns, smtp, unknown, empty
    bytes: int = 0  # client bytes received
    captured: int = 0  # of which kept
    truncated: bool = False
    close_reason: str = ""  # eof, reset, idle, lifetime, limit, shutdown …
    http: tuple[HttpExchange, ...] = ()
    tls: TlsHello | None = None
    smtp: tuple[str, ...] = ()
    data: str = ""  # escaped prefix of the client bytes
    decrypted: int = 0  # client bytes inside the terminated TLS session
    plain: str = ""  # escaped prefix of those decrypted bytes
    labels: tuple[str, ...] = ()  # e.g. "cloud-metadata"
    pid: int | None = None
    process: tuple[str, ...] = ()
    pass_name: str = DEFAULT_PASS


class NetDatagram(Frozen):
    """One UDP datagram (DNS excluded: see :class:`DnsQuery`)."""

    phase: Phase
    time: float
    destination: str | None = None  # from the syscall trace: REDIRECT hides it from the listener
    bytes: int = 0
    captured: int = 0
    truncated: bool = False
    data: str = ""
    labels: tuple[str, ...] = ()
    pid: int | None = None
    process: tuple[str, ...] = ()
    pass_name: str = DEFAULT_PASS


class Exfiltration(Frozen):
    """A planted canary found in outbound bytes: proof that a credential was sent."""

    canary: str  # which secret (e.g. "AWS_SECRET_ACCESS_KEY")
    location: str  # where it was planted ("~/.aws/credentials", "env GITHUB_TOKEN")
    channel: Literal["dns", "http", "https", "tls", "tcp", "udp", "smtp"]  # https/tls: decrypted
    encoding: str  # how it was wrapped: "plain", "base64", "base64>gzip", "hex (dns labels)" …
    phase: Phase
    time: float
    destination: str | None = None
    host: str | None = None
    pid: int | None = None
    process: tuple[str, ...] = ()
    bytes: int = 0  # size of the message it was found in
    excerpt: str = ""  # the bytes around the match, escaped
    request: str = ""  # the HTTP request line it travelled with (http, https)
    pass_name: str = DEFAULT_PASS


class HoneytokenInfo(Frozen):
    """A planted credential (the value itself stays out of the report)."""

    name: str
    location: str
    fingerprint: str


class HoneytokenRead(Frozen):
    """A planted credential file opened for reading by candidate code."""

    phase: Phase
    time: float
    pid: int
    path: str
    location: str
    process: tuple[str, ...] = ()
    pass_name: str = DEFAULT_PASS


class NetworkCapture(Frozen):
    """The report's ``network`` section: every outbound attempt, per phase, as the
    sinkhole saw it, and the proof of exfiltration when there is one."""

    enabled: bool = False  # False: the sinkhole could not be set up (see problems)
    dns: tuple[DnsQuery, ...] = ()
    connections: tuple[NetConnection, ...] = ()
    datagrams: tuple[NetDatagram, ...] = ()
    exfiltration: tuple[Exfiltration, ...] = ()
    honeytokens: tuple[HoneytokenInfo, ...] = ()
    honeytoken_reads: tuple[HoneytokenRead, ...] = ()
    dropped: int = 0  # connections, datagrams or queries not recorded (limits)
    truncated: bool = False  # some capture was cut at a limit
    problems: tuple[str, ...] = ()
    # the path the bait second stage looks for: an event naming it ran an answer (PS013)
    stage: str = ""
    # the sandbox's own name server (resolv.conf's): a question sent elsewhere went to an
    # address the code chose (empty: unknown, an older capture)
    resolvers: tuple[str, ...] = ()

    @property
    def quiet(self) -> bool:
        """Nothing was resolved, connected or sent."""
        return not (self.dns or self.connections or self.datagrams)


# Report.network refers to NetworkCapture, defined after Report (appended).
Report.model_rebuild()
