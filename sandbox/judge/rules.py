"""Behaviour rules: stable ids, severities, evidence. No package name appears here.

Each rule is a function ``Observation → list[Finding]`` registered in :data:`RULES`
with its metadata in :data:`CATALOGUE`. Rules only look at candidate-attributed
events (see :mod:`sandbox.judge.classify`); the harness and runtime noise are
classified, not judged.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sandbox.judge.incomplete import incomplete_reasons as incomplete_reasons  # re-exported
from sandbox.judge.profiles import Allowlist, Profile, glob_regex
from sandbox.models import (
    Event,
    EventKind,
    Evidence,
    Exfiltration,
    Finding,
    NetworkCapture,
    Observation,
    Origin,
    Phase,
    ProcessInfo,
    PthFile,
    Severity,
)

MAX_EVIDENCE = 20


@dataclass(frozen=True)
class RuleInfo:
    id: str
    title: str
    severity: Severity
    description: str


CATALOGUE: dict[str, RuleInfo] = {
    r.id: r
    for r in (
        RuleInfo(
            "PS001",
            "credential access",
            Severity.MEDIUM,
            "Opens, stats or lists a credential location (~/.ssh, ~/.aws, ~/.kube, ~/.docker/config.json, "
            ".env, .netrc, .git-credentials, wallets …) or the cloud metadata address; HIGH when the run "
            "also attempts any network connection.",
        ),
        RuleInfo(
            "PS002",
            "outbound connection attempt",
            Severity.HIGH,
            "Connects or sends to an address other than loopback during install, startup or import "
            "(failed attempts count: the sandbox has no route).",
        ),
        RuleInfo(
            "PS003",
            "shell or downloader spawned",
            Severity.HIGH,
            "Executes a shell (sh, bash …) or a network tool (curl, wget, nc, socat …).",
        ),
        RuleInfo(
            "PS004",
            "executes a file it wrote",
            Severity.HIGH,
            "Executes a file that candidate code wrote (or renamed into place) earlier in the run.",
        ),
        RuleInfo(
            "PS005",
            "persistence write",
            Severity.HIGH,
            "Writes a shell start-up file, crontab, systemd user unit, XDG autostart entry, "
            "authorized_keys, sitecustomize, or a .pth file after install; links one of those (or a "
            "credential) elsewhere; or ships sitecustomize.py/usercustomize.py/bin/activate in the "
            "installed files.",
        ),
        RuleInfo(
            "PS006",
            "lingering process",
            Severity.MEDIUM,
            "A process or thread of the candidate was still running when the observation window closed.",
        ),
        RuleInfo(
            "PS007",
            "recorder tampering",
            Severity.HIGH,
            "Signals or ptraces a process outside its own tree (the recorder, init), or touches the "
            "trace directory.",
        ),
        RuleInfo(
            "PS008",
            "container escape attempt",
            Severity.HIGH,
            "Touches the container engine's socket or state, mounts, loads kernel modules, enters "
            "namespaces, writes kernel or cgroup settings (/proc/sys, /sys: core_pattern, release_agent, "
            "sysrq-trigger …), opens raw memory or disks, reads another process's memory or environment. "
            "Reading harmless kernel values (boot_id, osrelease, overcommit_memory …) is not an attempt; "
            "reading an escape knob (core_pattern, release_agent …) alone is LOW.",
        ),
        RuleInfo(
            "PS029",
            "exec through a file descriptor",
            Severity.HIGH,
            "Executes a program through /proc/self/fd/N or /dev/fd/N, or an anonymous memory file "
            "(memfd_create then fexecve/execveat with AT_EMPTY_PATH): fileless execution that hides "
            "what runs from path-based checks.",
        ),
        RuleInfo(
            "PS030",
            "evasion probe",
            Severity.MEDIUM,
            "Looks for a debugger or a sandbox: reads its own /proc status (TracerPid), calls "
            "ptrace(PTRACE_TRACEME), or probes for a container (/.dockerenv, /run/.containerenv, "
            "/proc/1/cgroup, /proc/self/cgroup, /proc/1/sched, /proc/1/cmdline …). MEDIUM alone; when the "
            "run has any other finding at MEDIUM or above, each of those is raised one severity step "
            "(MEDIUM→HIGH, HIGH→CRITICAL).",
        ),
        RuleInfo(
            "PS020",
            "write outside allowed paths",
            Severity.LOW,
            "Creates, writes, renames or deletes files outside the venv, temp dirs, caches and the profile's "
            "allowed paths (e.g. in HOME or the project).",
        ),
        RuleInfo(
            "PS021",
            "obfuscated or decoded exec",
            Severity.HIGH,
            "Runs code decoded at run time (exec/eval of base64/hex/zlib/marshal data) in a command "
            "line or in a start-up hook.",
        ),
        RuleInfo(
            "PS022",
            "process explosion",
            Severity.MEDIUM,
            "Spawns more than 256 processes in a phase, or hits the pids limit (fork bomb); HIGH when the "
            "limit was hit.",
        ),
        RuleInfo(
            "PS023",
            "CPU burn",
            Severity.MEDIUM,
            "A survivor kept a CPU busy for at least a third of the observation window (miner-like).",
        ),
        RuleInfo(
            "PS025",
            "memory exhaustion",
            Severity.MEDIUM,
            "The kernel's OOM killer killed processes: the candidate exhausted the sandbox's memory limit.",
        ),
        RuleInfo(
            "PS026",
            "storage exhaustion",
            Severity.MEDIUM,
            "Writes failed because the capped storage was full (ENOSPC/EDQUOT): a disk-fill attempt.",
        ),
        RuleInfo(
            "PS027",
            "output flood",
            Severity.LOW,
            "More than 16 MiB written to stdout/stderr in a phase (only a bounded head and tail are kept).",
        ),
        RuleInfo(
            "PS028",
            "stops itself",
            Severity.MEDIUM,
            "Sends SIGSTOP to its own process: hangs the run (anti-analysis) until a timeout.",
        ),
        RuleInfo(
            "PS024",
            "deviation from baseline",
            Severity.MEDIUM,
            "With --baseline or diff: behaviour absent from the trusted version's baseline — new endpoints, "
            "processes or start-up hooks (MEDIUM), new file accesses (LOW).",
        ),
        RuleInfo(
            "PS010",
            "credential exfiltration proven",
            Severity.CRITICAL,
            "A honeytoken planted for this run (fake cloud keys, tokens, SSH key, .env secrets, wallet …) "
            "was found in outbound bytes the sinkhole captured — plain, base64, base32, hex, URL-encoded, "
            "compressed or split into DNS labels. Evidence: the channel, the destination and the bytes.",
        ),
        RuleInfo(
            "PS011",
            "DNS lookup",
            Severity.HIGH,
            "Resolves a name through DNS during install, startup or import (the sinkhole answered; nothing "
            "left the sandbox). Catches lookups a loopback resolver would hide from PS002; the machine's own "
            "name, localhost and names the profile allows are not counted.",
        ),
        RuleInfo(
            "PS012",
            "honeytoken read",
            Severity.MEDIUM,
            "Opens a credential file planted for this run (~/.aws/credentials, ~/.ssh/id_rsa, the project's "
            ".env …) for reading; PS010 says whether its content then left.",
        ),
        RuleInfo(
            "PS040",
            "static second opinion",
            Severity.MEDIUM,
            "Only for a run that could not look (incomplete): the candidate's Python sources match "
            "GuardDog's YARA threat rules (exec of decoded data, webhooks, credential paths, network in "
            "setup.py …). Raises incomplete to suspicious, never to malicious; evidence is marked static.",
        ),
        RuleInfo(
            "PS009",
            "startup hook executes code",
            Severity.INFO,
            "Installs a .pth file with an import line: it runs at every interpreter start "
            "(what it does is judged by the other rules).",
        ),
    )
}

_HOME = r"(?:/root|/home/[^/]+)"
CREDENTIAL_PATHS = re.compile(
    "|".join(
        [
            _HOME + r"/\.ssh(?:/|$)",
            _HOME + r"/\.aws(?:/|$)",
            _HOME + r"/\.kube(?:/|$)",
            _HOME + r"/\.docker/config\.json$",
            # gcloud's secrets (and listing the directory); its other files (properties,
            # certificate_config.json, which client libraries probe for mTLS) hold none.
            _HOME + r"/\.config/gcloud(?:$|/legacy_credentials(?:/|$)|/(?:credentials\.db|access_tokens\.db"
            r"|application_default_credentials\.json)$)",
            _HOME + r"/\.azure(?:/|$)",
            _HOME + r"/\.git-credentials$",
            _HOME + r"/\.netrc$",
            _HOME + r"/\.pypirc$",
            _HOME + r"/\.npmrc$",
            _HOME + r"/\.gnupg(?:/|$)",
            _HOME + r"/\.config/gh/hosts\.yml$",
            _HOME + r"/\.password-store(?:/|$)",
            _HOME + r"/\.vault-token$",
            _HOME + r"/\.terraform\.d/credentials",
            _HOME + r"/\.(?:bitcoin|ethereum|electrum|monero|litecoin|dogecoin)(?:/|$)",
            _HOME + r"/\.config/(?:Exodus|solana|Electrum|atomic)(?:/|$)",
            _HOME + r"/\.local/share/keyrings(?:/|$)",
            r"/\.env(?:\.[A-Za-z0-9_-]+)?$",
            r"^/var/run/secrets(?:/|$)",
            r"^/run/secrets(?:/|$)",
        ]
    )
)
SYSTEM_SECRETS = re.compile(r"^/etc/(?:g?shadow-?|sudoers)$")
METADATA_HOSTS = frozenset({"169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200"})

PERSISTENCE_PATHS = re.compile(
    "|".join(
        [
            _HOME + r"/\.(?:bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zprofile|zshenv|zlogin|"
            r"cshrc|tcshrc|kshrc|xinitrc|xprofile|xsessionrc)$",
            _HOME + r"/\.config/(?:autostart|systemd/user|fish|environment\.d)(?:/|$)",
            _HOME + r"/\.local/share/systemd(?:/|$)",
            _HOME + r"/\.ssh/authorized_keys2?$",
            r"^/etc/(?:systemd|cron[^/]*|init\.d|rc\.local|profile\.d|profile$|bash\.bashrc$|ld\.so\.preload$"
            r"|environment$|sudoers)",
            r"^/var/spool/cron(?:/|$)",
            r"/(?:sitecustomize|usercustomize)\.py$",
            r"/\.git/hooks/[^/]+$",
        ]
    )
)
PERSISTENCE_TOOLS = frozenset({"crontab", "systemctl", "at", "launchctl", "update-rc.d", "schtasks"})
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox", "ash"})
DOWNLOADERS = frozenset(
    {
        "curl",
        "wget",
        "nc",
        "ncat",
        "netcat",
        "socat",
        "telnet",
        "ssh",
        "scp",
        "sftp",
        "ftp",
        "tftp",
        "rsync",
        "aria2c",
        "powershell",
        "pwsh",
        "openssl",
        "nslookup",
        "dig",
        "host",
    }
)
_WRITES = {
    EventKind.FILE_WRITE,
    EventKind.FILE_RENAME,
    EventKind.FILE_LINK,
    EventKind.FILE_CHMOD,
    EventKind.FILE_DELETE,
    EventKind.DIR_CREATE,
}
_TOUCH = {
    EventKind.FILE_READ,
    EventKind.FILE_STAT,
    EventKind.FILE_LIST,
    EventKind.FILE_WRITE,
    EventKind.FILE_CHMOD,
    EventKind.FILE_RENAME,
    EventKind.FILE_LINK,
    EventKind.FILE_DELETE,
}
_NET = {EventKind.CONNECT, EventKind.SEND}
_ESCAPE_SYSCALLS = frozenset(
    {
        "mount",
        "umount2",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "setns",
        "unshare",
        "bpf",
        "pidfd_getfd",
        "process_vm_readv",
        "process_vm_writev",
        "keyctl",
        "add_key",
        "request_key",
        "perf_event_open",
        "pivot_root",
        "swapon",
        "swapoff",
        "kexec_load",
        "kexec_file_load",
        "iopl",
        "ioperm",
        "userfaultfd",
        "open_by_handle_at",
        "fsopen",
        "fsmount",
        "move_mount",
        "open_tree",
        "mount_setattr",
        "syslog",
        "sethostname",
        "setdomainname",
        "settimeofday",
        "clock_settime",
        "acct",
        "fanotify_init",
        "kcmp",
    }
)
# PS008 tells escape primitives from reading harmless kernel values. Any touch of these
# is an escape attempt: the container engine's sockets and state, raw memory and disks,
# another process's memory, root or environment, the kernel's image.
_ESCAPE_PATHS = re.compile(
    r"^(?:/var)?/run/(?:docker|containerd/containerd|crio/crio|podman/podman)\.sock$|^/run/containerd(?:/|$)"
    r"|^/proc/sysrq-trigger$|^/proc/kcore$|^/dev/(?:mem|kmem|port|sd[a-z]|nvme|vd[a-z]|xvd[a-z]|dm-)"
    r"|^/proc/\d+/(?:mem|root)(?:/|$)|^/proc/1/environ$|^/var/lib/(?:docker|containerd)(?:/|$)"
)
# Writing kernel or cgroup settings (sysctl, core_pattern, release_agent, uevent_helper,
# modprobe …) is an escape primitive; *reading* them (boot_id, osrelease,
# overcommit_memory, transparent_hugepage, cgroup limits) is what benign code does.
_KERNEL_SETTINGS = re.compile(r"^/proc/sys(?:/|$)|^/sys(?:/|$)")
# Reading these is the reconnaissance step of a known escape: noted, not condemned.
_ESCAPE_KNOBS = re.compile(
    r"^/proc/sys/kernel/(?:core_pattern|modprobe|hotplug)$|/release_agent$|/notify_on_release$"
    r"|^/sys/kernel/(?:uevent_helper|debug|security)(?:/|$)"
)
_KERNEL_WRITES = frozenset(
    {
        EventKind.FILE_WRITE,
        EventKind.FILE_RENAME,
        EventKind.FILE_LINK,
        EventKind.FILE_CHMOD,
        EventKind.FILE_DELETE,
        EventKind.DIR_CREATE,
    }
)
_TRACE_DIR = "/var/lib/pkgsandbox"


class Context:
    """Indexes over an observation that several rules share.

    Every rule sees every candidate event.  The profile's allowlist only marks
    events as allowed (:meth:`is_allowed`): file exceptions silence PS020, process
    exceptions PS003 for that exec, network exceptions PS002 for that destination;
    nothing else consults it (a payload dropped under an allowed ``/tmp/**`` and
    executed is still PS004; a disk fill there is still PS026)."""

    def __init__(self, obs: Observation, allow: Allowlist | None = None) -> None:
        self.obs = obs
        self.allow = allow
        self.procs: dict[tuple[Phase, int], ProcessInfo] = {(p.phase, p.pid): p for p in obs.processes}
        self.events = [e for e in obs.events if e.origin is Origin.CANDIDATE]
        self.harness = [e for e in obs.events if e.origin is Origin.HARNESS]
        self._allowed: set[int] = set()  # id() of the allowed events (the same objects as self.events)
        if allow is not None:
            self._allowed = {id(e) for e in self.events if self._allowed_by_profile(e)}
        self.allowed = len(self._allowed)
        self.traced_pids: dict[Phase, set[int]] = {}
        for p in obs.processes:
            self.traced_pids.setdefault(p.phase, set()).add(p.pid)

    def is_allowed(self, ev: Event) -> bool:
        """Whether the profile lists *ev* as an explicit exception (see class docstring)."""
        return id(ev) in self._allowed

    def _allowed_by_profile(self, ev: Event) -> bool:
        assert self.allow is not None
        if ev.kind is EventKind.EXEC:
            proc = self.procs.get((ev.phase, ev.pid))
            parent = self.procs.get((ev.phase, proc.ppid)) if proc and proc.ppid is not None else None
            return self.allow.exec_allowed(ev, parent.exe if parent else None)
        if ev.kind in _NET:
            return self.allow.network_allowed(ev)
        return self.allow.file_allowed(ev)

    def argv(self, ev: Event) -> tuple[str, ...]:
        p = self.procs.get((ev.phase, ev.pid))
        return p.argv if p else ()

    def evidence(self, ev: Event, detail: str = "") -> Evidence:
        dest = None
        if ev.address is not None:
            dest = ev.address.render()
        return Evidence(
            phase=ev.phase,
            pid=ev.pid,
            time=ev.time,
            syscall=ev.syscall,
            process=self.argv(ev)[:32],
            path=ev.path if ev.path is None or ev.path2 is None else f"{ev.path} -> {ev.path2}",
            destination=dest,
            bytes=ev.size,
            data=ev.data[:512] if ev.data else None,
            errno=ev.errno,
            detail=(f"during {ev.context}; " if ev.context else "")
            + (detail or (" ".join(ev.argv)[:500] if ev.argv else "")),
            context=ev.context,
        )

    def outbound(self) -> list[Event]:
        """Outbound attempts, the profile's reviewed network exceptions excepted."""
        return [e for e in self.events if e.kind in _NET and is_outbound(e) and not self.is_allowed(e)]


def is_outbound(ev: Event) -> bool:
    """A connect/send towards a non-loopback internet address."""
    a = ev.address
    return a is not None and a.family in ("inet", "inet6") and not a.is_loopback


def _finding(
    rule: str, phase: Phase, message: str, evidence: list[Evidence], severity: Severity | None = None
) -> Finding:
    info = CATALOGUE[rule]
    return Finding(
        rule_id=rule,
        title=info.title,
        severity=severity or info.severity,
        phase=phase,
        message=message,
        evidence=tuple(evidence[:MAX_EVIDENCE]),
    )


def _per_phase(events: Iterable[Event]) -> dict[Phase, list[Event]]:
    out: dict[Phase, list[Event]] = {}
    for e in events:
        out.setdefault(e.phase, []).append(e)
    return dict(sorted(out.items(), key=lambda kv: kv[0].order))


def _dedupe(events: Iterable[Event], key: Callable[[Event], object]) -> list[Event]:
    seen: set[object] = set()
    out = []
    for e in events:
        k = key(e)
        if k not in seen:
            seen.add(k)
            out.append(e)
    return out


# ---------------------------------------------------------------------- rules


def rule_credentials(ctx: Context) -> list[Finding]:
    hits = [e for e in ctx.events if e.kind in _TOUCH and e.path and CREDENTIAL_PATHS.search(e.path)]
    # a link to a credential: reading through it later shows only the link's name
    hits += [
        e
        for e in ctx.events
        if e.kind is EventKind.FILE_LINK and e.path2 and CREDENTIAL_PATHS.search(e.path2) and e not in hits
    ]
    # System password hashes: opening counts; a stat while walking /etc does not.
    hits += [
        e
        for e in ctx.events
        if e.kind in (EventKind.FILE_READ, EventKind.FILE_WRITE) and e.path and SYSTEM_SECRETS.match(e.path)
    ]
    hits += [
        e for e in ctx.events if e.kind in _NET and e.address is not None and e.address.host in METADATA_HOSTS
    ]
    if not hits:
        return []
    networked = bool(ctx.outbound())
    out = []
    for phase, evs in _per_phase(hits).items():
        uniq = _dedupe(evs, lambda e: (e.pid, e.path, e.path2, e.address))
        # An existence check that found nothing (client libraries probe for workload
        # identity or mTLS files) took nothing: LOW unless the run also reaches out.
        absent = [e for e in uniq if e.kind is EventKind.FILE_STAT and e.errno == "ENOENT"]
        groups = [(uniq, "touched")] if networked else [([e for e in uniq if e not in absent], "touched")]
        if not networked:
            groups.append((absent, "probed for absent"))
        for group, verb in groups:
            if not group:
                continue
            places = sorted({_cred_place(e) for e in group})
            msg = f"{verb} credential location(s): {', '.join(places[:6])}"
            sev = Severity.HIGH if networked else Severity.LOW if verb != "touched" else Severity.MEDIUM
            if networked:
                msg += " — and the run attempts network connections"
            out.append(_finding("PS001", phase, msg, [ctx.evidence(e) for e in group], sev))
    return out


def _cred_place(e: Event) -> str:
    if e.kind is EventKind.FILE_LINK and e.path2 and CREDENTIAL_PATHS.search(e.path2):
        return e.path2
    return e.path or (e.address.render() if e.address else "")


def rule_outbound(ctx: Context) -> list[Finding]:
    out = []
    for phase, evs in _per_phase(ctx.outbound()).items():
        uniq = _dedupe(evs, lambda e: (e.pid, e.syscall, e.address))
        dests = sorted({e.address.render() for e in uniq if e.address})
        out.append(
            _finding(
                "PS002",
                phase,
                f"attempted connection(s) to {', '.join(dests[:6])}",
                [ctx.evidence(e) for e in uniq],
            )
        )
    return out


def _exec_name(ev: Event, interpreters: dict[str, str] | None = None) -> str:
    """The program an exec really runs: the file behind an fd path (``path2``), the
    interpreter of a ``#!`` script, else the path or argv[0]."""
    image = ev.path2 or ev.path
    if interpreters and image in interpreters:
        image = interpreters[image]
    if image:
        return posixpath.basename(image)
    return posixpath.basename(ev.argv[0]) if ev.argv else ""


def _shebang(data: str) -> str | None:
    """The interpreter named by a ``#!`` line in strace's escaped data (``/usr/bin/env X`` → X)."""
    line = data[2:].split("\\n", 1)[0].strip()
    words = line.split()
    if not words:
        return None
    if posixpath.basename(words[0]) == "env":
        rest = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        return rest[0] if rest else None
    return words[0]


def interpreters(events: Iterable[Event]) -> dict[str, str]:
    """Script path → its ``#!`` interpreter, from the heads written to it by anyone
    (the candidate, or pip installing a wheel's scripts): a script run directly
    shows only its own execve, the kernel starts the interpreter unseen."""
    out: dict[str, str] = {}
    for e in events:
        if e.kind is EventKind.FILE_WRITE and e.path and e.data and e.data.startswith("#!"):
            interp = _shebang(e.data)
            if interp:
                out[e.path] = interp
    return out


# Read-only system probes that old build helpers run through a shell (CPU and
# platform detection). A shell running only these is noted, not condemned; its
# children are traced like everything else.
PROBE_COMMANDS = frozenset(
    {
        "uname",
        "arch",
        "nproc",
        "getconf",
        "lscpu",
        "ldconfig",
        "ldconfig.real",
        "lsb_release",
        "sw_vers",
        "sysctl",
        "hostname",
        "id",
        "whoami",
        "true",
        "false",
        "echo",
        "gcc",
        "cc",
        "clang",
        "ld",
        "which",
        "command",
        "test",
        "[",
    }
)


def shell_probe_only(argv: tuple[str, ...] | None) -> bool:
    """``sh -c 'uname -m'``: a shell whose command line only runs read-only probes."""
    import shlex

    if not argv or len(argv) < 3 or argv[1] != "-c":
        return False
    script = argv[2]
    if any(ch in script for ch in (">", "<", "`", "$(", "\n")):
        return False
    try:
        tokens = shlex.split(
            script.replace(";", " ; ").replace("&&", " ; ").replace("||", " ; ").replace("|", " ; ")
        )
    except ValueError:
        return False
    starts = [True] + [t == ";" for t in tokens[:-1]]
    programs = [posixpath.basename(t) for t, first in zip(tokens, starts, strict=False) if first and t != ";"]
    return bool(programs) and all(p in PROBE_COMMANDS for p in programs)


def rule_spawn(ctx: Context) -> list[Finding]:
    interps = interpreters(sorted(ctx.obs.events, key=lambda e: (e.phase.order, e.seq)))
    hits = []
    for e in ctx.events:
        if e.kind is not EventKind.EXEC or ctx.is_allowed(e):
            continue
        name = _exec_name(e, interps)
        if name in SHELLS or name in DOWNLOADERS:
            # PATH search makes one failed execve per directory: keep the successful
            # one, or the last attempt when none succeeded.
            hits.append(e)
    if not hits:
        return []
    hits = [e for e in hits if e.errno is None] or hits
    out = []
    for phase, evs in _per_phase(hits).items():
        uniq = _dedupe(evs, lambda e: (e.pid, e.argv))
        probes = [e for e in uniq if _exec_name(e, interps) in SHELLS and shell_probe_only(e.argv)]
        real = [e for e in uniq if e not in probes]
        if real:
            names = sorted({_exec_name(e, interps) for e in real})
            out.append(
                _finding("PS003", phase, f"spawned {', '.join(names)}", [ctx.evidence(e) for e in real])
            )
        if probes:
            out.append(
                _finding(
                    "PS003",
                    phase,
                    "spawned a shell for read-only system probes only",
                    [ctx.evidence(e) for e in probes],
                    Severity.LOW,
                )
            )
    return out


def rule_exec_written(ctx: Context) -> list[Finding]:
    written: dict[str, Event] = {}
    hits: list[tuple[Event, Event]] = []
    for e in sorted(ctx.events, key=lambda e: (e.phase.order, e.seq)):
        if e.kind is EventKind.FILE_WRITE and e.path and e.errno is None:
            written[e.path] = e
        elif e.kind in (EventKind.FILE_RENAME, EventKind.FILE_LINK) and e.path2 and e.errno is None:
            # rename(src, dst): path = src, path2 = dst; link: path = new link
            target = e.path2 if e.kind is EventKind.FILE_RENAME else e.path
            if target:
                written[target] = e
        elif e.kind is EventKind.EXEC and e.path and e.path in written and e.errno is None:
            hits.append((e, written[e.path]))
    out = []
    for phase, evs in _per_phase(x[0] for x in hits).items():
        evid = []
        for e in evs:
            w = written.get(e.path or "")
            evid.append(ctx.evidence(e, detail=f"written by pid {w.pid} in {w.phase.value}" if w else ""))
        out.append(
            _finding(
                "PS004",
                phase,
                f"executed file(s) it wrote: {', '.join(sorted({e.path or '' for e in evs}))}",
                evid,
            )
        )
    return out


_FD_EXEC = re.compile(r"^(?:/proc/(?:self|thread-self|\d+)/fd/\d+|/dev/fd/\d+|/memfd:.*)$")


def rule_fd_exec(ctx: Context) -> list[Finding]:
    hits = [
        e
        for e in ctx.events
        if e.kind is EventKind.EXEC
        and (
            (e.path is not None and _FD_EXEC.match(e.path))
            or (e.syscall == "execveat" and "AT_EMPTY_PATH" in (e.flags or ""))
        )
    ]
    hits = [e for e in hits if e.errno is None] or hits
    out = []
    for phase, evs in _per_phase(hits).items():
        uniq = _dedupe(evs, lambda e: (e.pid, e.path, e.argv))
        what = sorted({f"{e.path} ({e.path2})" if e.path2 else (e.path or "?") for e in uniq})
        out.append(
            _finding(
                "PS029",
                phase,
                f"executed through a file descriptor: {', '.join(what[:6])}",
                [ctx.evidence(e) for e in uniq],
            )
        )
    return out


# Debugger and sandbox probes. Not /proc/self/mountinfo: benign code reads it (filelock
# does at import, to learn the file system), and the runtime's own status reads are
# the harness's (setpriv), not the interpreter's.
PROBE_PATHS = re.compile(
    r"^/proc/(?:self|thread-self|\d+)(?:/task/\d+)?/status$"
    r"|^/\.dockerenv$|^/run/\.containerenv$"
    r"|^/proc/1/(?:cgroup|sched|mountinfo|mounts|cmdline|comm)$"
    r"|^/proc/(?:self|thread-self|\d+)/cgroup$"
)


def rule_evasion_probe(ctx: Context) -> list[Finding]:
    # Runtime-labelled reads count too: /proc/self/status and cgroup are classified as
    # runtime noise, but no interpreter start reads them (measured: six, requests).
    hits = [
        e
        for e in ctx.obs.events
        if e.origin is not Origin.HARNESS
        and (
            (e.kind in (EventKind.FILE_READ, EventKind.FILE_STAT) and e.path and PROBE_PATHS.match(e.path))
            or (e.kind is EventKind.PTRACE and e.syscall == "ptrace" and e.flags == "PTRACE_TRACEME")
        )
    ]
    out = []
    for phase, evs in _per_phase(hits).items():
        uniq = _dedupe(evs, lambda e: (e.pid, e.path, e.syscall))
        what = sorted({e.path or f"{e.syscall}({e.flags})" for e in uniq})
        out.append(
            _finding(
                "PS030",
                phase,
                f"probed for a debugger or sandbox: {', '.join(what[:6])}",
                [ctx.evidence(e) for e in uniq],
            )
        )
    return out


def escalate(findings: list[Finding]) -> list[Finding]:
    """PS030 raises every other finding at MEDIUM or above one step (MEDIUM→HIGH,
    HIGH→CRITICAL): code that checks for analysis first and then acts is worse than
    either alone.  Alone, PS030 stays MEDIUM.  Applied once, after the profile."""
    if not any(f.rule_id == "PS030" for f in findings):
        return sorted(findings, key=lambda f: (-f.severity.rank, f.phase.order, f.rule_id))
    ranks = list(Severity)
    out = []
    for f in findings:
        if f.rule_id != "PS030" and Severity.MEDIUM.rank <= f.severity.rank < Severity.CRITICAL.rank:
            f = f.model_copy(
                update={
                    "severity": ranks[f.severity.rank + 1],
                    "message": f.message + " (raised one step: the run also probed for analysis, PS030)",
                }
            )
        out.append(f)
    return sorted(out, key=lambda f: (-f.severity.rank, f.phase.order, f.rule_id))


def rule_persistence(ctx: Context) -> list[Finding]:
    hits = []
    for e in ctx.events:
        if e.kind in _WRITES and e.kind is not EventKind.FILE_DELETE:
            target = e.path2 if e.kind is EventKind.FILE_RENAME and e.path2 else e.path
            if (target and PERSISTENCE_PATHS.search(target)) or (
                target and target.endswith(".pth") and e.phase is not Phase.INSTALL
            ):
                hits.append(e)
            elif e.kind is EventKind.FILE_LINK and e.path2 and PERSISTENCE_PATHS.search(e.path2):
                hits.append(e)  # a link to a start-up file: writes through it hide the path
        elif e.kind is EventKind.EXEC and _exec_name(e) in PERSISTENCE_TOOLS:
            hits.append(e)
    # Start-up hooks shipped in the wheel: pip (harness) writes them during install.
    hooks = _installed_hooks(ctx.obs.venv)
    hits += [
        e
        for e in ctx.harness
        if e.phase is Phase.INSTALL and e.kind is EventKind.FILE_WRITE and e.path and hooks.match(e.path)
    ]
    out = []
    for phase, evs in _per_phase(hits).items():
        uniq = _dedupe(evs, lambda e: (e.pid, e.path, e.path2, e.argv))
        places = sorted({(e.path2 or e.path or _exec_name(e)) for e in uniq})
        out.append(
            _finding("PS005", phase, f"persistence: {', '.join(places[:6])}", [ctx.evidence(e) for e in uniq])
        )
    return out


def _installed_hooks(venv: str) -> re.Pattern[str]:
    """Files that run at every interpreter start or venv activation when installed."""
    v = re.escape(venv)
    return re.compile(
        rf"^{v}/lib/python3\.\d+/site-packages/(?:sitecustomize|usercustomize)\.py$"
        rf"|^{v}/bin/activate(?:\.[a-z]+|_this\.py)?$"
    )


def rule_lingering(ctx: Context) -> list[Finding]:
    out = []
    for pr in ctx.obs.phases:
        active = [lg for lg in pr.lingering if lg.active]
        if not active:
            continue  # idle worker threads of the step's own process are noted, not judged
        evid = [
            Evidence(
                phase=pr.phase,
                pid=lg.pid,
                time=0.0,
                syscall="(alive)",
                process=lg.argv[:32],
                detail=f"{lg.threads} thread(s), state {lg.status}, {lg.cpu:.2f}s CPU in the last "
                f"{pr.window:.1f}s window",
            )
            for lg in active
        ]
        out.append(
            _finding(
                "PS006", pr.phase, f"{len(active)} process(es) still running when the window closed", evid
            )
        )
    return out


def rule_tamper(ctx: Context) -> list[Finding]:
    hits = []
    for e in ctx.events:
        if e.kind is EventKind.SIGNAL and e.target is not None:
            own = ctx.traced_pids.get(e.phase, set())
            if e.target <= 0 and e.target != 0:
                if e.target == -1:
                    hits.append(e)  # kill(-1): every process it may signal
            elif e.target not in own and e.target != 0:
                hits.append(e)
        elif e.kind is EventKind.PTRACE and e.syscall == "ptrace" and (e.flags or "") != "PTRACE_TRACEME":
            if e.target not in ctx.traced_pids.get(e.phase, set()) or e.target is None:
                hits.append(e)
        elif e.path and e.path.startswith(_TRACE_DIR):
            hits.append(e)
    out = []
    for phase, evs in _per_phase(hits).items():
        out.append(
            _finding(
                "PS007",
                phase,
                "tried to interfere with processes or files outside its own tree",
                [
                    ctx.evidence(e, detail=f"target pid {e.target}" if e.target is not None else "")
                    for e in _dedupe(evs, lambda e: (e.pid, e.syscall, e.target, e.path))
                ],
            )
        )
    return out


def escape_kind(e: Event, own_pids: set[int]) -> str | None:
    """``"attempt"`` for an escape primitive, ``"recon"`` for reading an escape knob, else None."""
    paths = [p for p in (e.path, e.path2) if p]
    if e.address is not None and e.address.family == "unix" and e.address.path:
        paths.append(e.address.path)
    if e.syscall in _ESCAPE_SYSCALLS or any(_ESCAPE_PATHS.search(p) for p in paths):
        return "attempt"
    if e.kind in _KERNEL_WRITES and any(_KERNEL_SETTINGS.search(p) for p in paths):
        return "attempt"
    if e.path and e.kind is EventKind.FILE_READ:
        m = re.match(r"^/proc/(\d+)/environ$", e.path)
        if m and int(m.group(1)) not in own_pids:
            return "attempt"
        if _ESCAPE_KNOBS.search(e.path):
            return "recon"
    return None


def rule_escape(ctx: Context) -> list[Finding]:
    hits: dict[str, list[Event]] = {"attempt": [], "recon": []}
    for e in ctx.events:
        kind = escape_kind(e, ctx.traced_pids.get(e.phase, set()))
        if kind is not None:
            hits[kind].append(e)
    out = []
    for kind, severity, label in (
        ("attempt", None, "escape attempt"),
        ("recon", Severity.LOW, "read escape knob"),
    ):
        for phase, evs in _per_phase(hits[kind]).items():
            uniq = _dedupe(evs, lambda e: (e.pid, e.syscall, e.path, e.address))
            what = sorted({e.path or (e.address.render() if e.address else e.syscall) for e in uniq})
            out.append(
                _finding(
                    "PS008",
                    phase,
                    f"{label}: {', '.join(what[:6])}",
                    [ctx.evidence(e) for e in uniq],
                    severity,
                )
            )
    return out


def _pth_evidence(p: PthFile) -> Evidence:
    """A start-up hook found in site-packages after install, as evidence."""
    return Evidence(
        phase=Phase.INSTALL,
        pid=0,
        time=0.0,
        syscall="(inventory)",
        path=p.path,
        bytes=p.size,
        data=p.head[:512],
        detail=f"sha256 {p.sha256}",
    )


def rule_pth(ctx: Context) -> list[Finding]:
    execs = [
        p
        for p in ctx.obs.inventory.pth_files
        if p.executes and not (ctx.allow is not None and ctx.allow.pth_allowed(p.sha256))
    ]
    if not execs:
        return []
    evid = [_pth_evidence(p) for p in execs]
    return [
        _finding("PS009", Phase.INSTALL, f"{len(execs)} .pth file(s) run code at interpreter start", evid)
    ]


_WRITABLE = ("/tmp/", "/var/tmp/", "/dev/", "/proc/self/", "/proc/thread-self/", "/run/user/", "/memfd:")
# Decoded exec: an exec/eval/compile call and a decoder anywhere in the same command
# line or .pth, in either order (``p=b64decode(..); exec(p)`` as well as ``exec(b64decode(..))``).
_EXEC_CALL = re.compile(r"\b(?:exec|eval|compile)\s*\(")
_DECODER = re.compile(
    r"b64decode|b32decode|b16decode|b85decode|a85decode|fromhex|unhexlify|decompress|marshal\.loads|"
    r"codecs\.decode|rot13|\[::-1\]"
)


def _decoded_exec(text: str) -> bool:
    return bool(_EXEC_CALL.search(text) and _DECODER.search(text))


def rule_write_outside(ctx: Context) -> list[Finding]:
    venv, home = ctx.obs.venv, ctx.obs.home
    allowed_roots = (venv + "/", home + "/.cache/", *_WRITABLE)
    hits = []
    for e in ctx.events:
        if e.kind not in _WRITES or e.kind is EventKind.FILE_CHMOD or ctx.is_allowed(e):
            continue
        target = e.path2 if e.kind is EventKind.FILE_RENAME and e.path2 else e.path
        if (
            not target
            or target.startswith(allowed_roots)
            or re.match(r"^/proc/\d+/(?:oom_score_adj|fd/)", target)
        ):
            continue
        if PERSISTENCE_PATHS.search(target) or target.startswith(_TRACE_DIR):
            continue  # judged by PS005 / PS007
        hits.append(e)
    out = []
    for phase, evs in _per_phase(hits).items():
        uniq = _dedupe(evs, lambda e: (e.path, e.path2, e.kind))
        places = sorted({e.path2 or e.path or "" for e in uniq})
        out.append(
            _finding(
                "PS020",
                phase,
                f"wrote outside allowed paths: {', '.join(places[:6])}",
                [ctx.evidence(e) for e in uniq],
            )
        )
    return out


def rule_decoded_exec(ctx: Context) -> list[Finding]:
    out = []
    hits = [e for e in ctx.events if e.kind is EventKind.EXEC and e.argv and _decoded_exec(" ".join(e.argv))]
    for phase, evs in _per_phase(hits).items():
        uniq = _dedupe(evs, lambda e: (e.pid, e.argv))
        out.append(
            _finding(
                "PS021",
                phase,
                "ran code decoded at run time (exec of encoded data)",
                [ctx.evidence(e) for e in uniq],
            )
        )
    pths = [p for p in ctx.obs.inventory.pth_files if p.executes and _decoded_exec(p.head)]
    if pths:
        evid = [_pth_evidence(p) for p in pths]
        out.append(
            _finding("PS021", Phase.INSTALL, "a start-up hook (.pth) executes decoded, hidden code", evid)
        )
    return out


def rule_explosion(ctx: Context) -> list[Finding]:
    out = []
    for phase, evs in _per_phase(ctx.obs.events).items():
        spawns = [
            e
            for e in evs
            if e.kind is EventKind.SPAWN and (e.flags or "") != "thread" and e.origin is Origin.CANDIDATE
        ]
        limited = [
            e for e in evs if e.syscall in ("clone", "fork", "vfork", "clone3") and e.errno == "EAGAIN"
        ]
        # native builds legitimately run hundreds of compiler processes during install
        threshold = 2000 if phase is Phase.INSTALL else 256
        if len(spawns) > threshold or len(limited) >= 5:
            sample = (limited or spawns)[:MAX_EVIDENCE]
            sev = Severity.HIGH if limited else Severity.MEDIUM
            out.append(
                _finding(
                    "PS022",
                    phase,
                    f"{len(spawns)} processes spawned, {len(limited)} refused by the pids limit",
                    [ctx.evidence(e) for e in sample],
                    sev,
                )
            )
    return out


BURN_SHARE = 0.3


def rule_cpu_burn(ctx: Context) -> list[Finding]:
    out = []
    for pr in ctx.obs.phases:
        # a third of the window: a miner takes all the CPU it can get, but on a loaded
        # host (or with a CPU quota) that may be well under one full core
        burners = [lg for lg in pr.lingering if pr.window > 0 and lg.cpu >= BURN_SHARE * pr.window]
        if burners:
            evid = [
                Evidence(
                    phase=pr.phase,
                    pid=lg.pid,
                    time=0.0,
                    syscall="(cpu)",
                    process=lg.argv[:32],
                    detail=f"{lg.cpu:.1f}s CPU during a {pr.window:.1f}s window",
                )
                for lg in burners
            ]
            out.append(_finding("PS023", pr.phase, f"{len(burners)} survivor(s) burning CPU", evid))
    return out


def rule_oom(ctx: Context) -> list[Finding]:
    out = []
    for pr in ctx.obs.phases:
        if pr.oom_kills:
            killed = [p for p in ctx.obs.processes if p.phase is pr.phase and p.killed_by == "SIGKILL"]
            evid = [
                Evidence(
                    phase=pr.phase,
                    pid=p.pid,
                    time=p.end or 0.0,
                    syscall="(killed)",
                    process=p.argv[:32],
                    detail="killed by SIGKILL",
                )
                for p in killed[:MAX_EVIDENCE]
            ]
            if not evid:
                evid = [
                    Evidence(
                        phase=pr.phase, pid=0, time=0.0, syscall="(oom)", detail="memory cgroup oom_kill"
                    )
                ]
            out.append(_finding("PS025", pr.phase, f"the OOM killer killed {pr.oom_kills} process(es)", evid))
    return out


FLOOD_BYTES = 16 << 20


def rule_storage(ctx: Context) -> list[Finding]:
    hits = [e for e in ctx.events if e.errno in ("ENOSPC", "EDQUOT") and e.kind in _WRITES]
    out = []
    for phase, evs in _per_phase(hits).items():
        uniq = _dedupe(evs, lambda e: (e.pid, e.path))
        out.append(
            _finding(
                "PS026", phase, f"{len(evs)} write(s) refused: storage full", [ctx.evidence(e) for e in uniq]
            )
        )
    return out


def rule_flood(ctx: Context) -> list[Finding]:
    out = []
    for pr in ctx.obs.phases:
        if pr.output_bytes > FLOOD_BYTES:
            evid = [
                Evidence(
                    phase=pr.phase,
                    pid=0,
                    time=0.0,
                    syscall="(output)",
                    bytes=pr.output_bytes,
                    detail=f"{pr.output_bytes} bytes to stdout/stderr; head and tail kept",
                )
            ]
            out.append(
                _finding("PS027", pr.phase, f"wrote {pr.output_bytes >> 20} MiB to stdout/stderr", evid)
            )
    return out


def rule_self_stop(ctx: Context) -> list[Finding]:
    hits = [
        e
        for e in ctx.events
        if e.kind is EventKind.SIGNAL
        and (e.flags or "").startswith("SIGSTOP")
        and e.target is not None
        and e.target in (e.pid, 0)
    ]
    out = []
    for phase, evs in _per_phase(hits).items():
        out.append(
            _finding(
                "PS028",
                phase,
                "a process stopped itself with SIGSTOP",
                [ctx.evidence(e) for e in _dedupe(evs, lambda e: e.pid)],
            )
        )
    return out


RULES: tuple[Callable[[Context], list[Finding]], ...] = (
    rule_credentials,
    rule_outbound,
    rule_spawn,
    rule_exec_written,
    rule_fd_exec,
    rule_persistence,
    rule_lingering,
    rule_tamper,
    rule_escape,
    rule_pth,
    rule_write_outside,
    rule_decoded_exec,
    rule_explosion,
    rule_cpu_burn,
    rule_oom,
    rule_storage,
    rule_flood,
    rule_self_stop,
    rule_evasion_probe,
)


def evaluate(
    obs: Observation,
    profile: Profile | None = None,
    network: NetworkCapture | None = None,
    hostname: str = "",
) -> list[Finding]:
    """Run every rule under *profile* (disabled rules, severity overrides, exceptions
    as :class:`Context` says), plus the sinkhole rules over *network* when given; then
    :func:`escalate`.  Findings ordered by severity (worst first), then phase."""
    allow = Allowlist(profile, obs.home, obs.inventory.site_packages or obs.venv) if profile else None
    ctx = Context(obs, allow)
    findings = [f for rule in RULES for f in rule(ctx)]
    findings = apply_profile(findings, profile)
    if network is not None:
        traced = {(e.phase, e.address.render()) for e in ctx.outbound() if e.address is not None}
        findings += evaluate_network(network, profile, hostname, traced)
    return escalate(findings)


# ---------------------------------------------------------------------- network rules (sinkhole)
# They read the report's network section, not events: evaluated by evaluate_network.


def rule_exfiltration(net: NetworkCapture) -> list[Finding]:
    out = []
    by_phase: dict[Phase, list[Exfiltration]] = {}
    for x in net.exfiltration:
        by_phase.setdefault(x.phase, []).append(x)
    for phase in sorted(by_phase, key=lambda p: p.order):
        hits = by_phase[phase]
        what = sorted({f"{x.canary} ({x.location}) via {x.channel}" for x in hits})
        evid = [
            Evidence(
                phase=x.phase,
                pid=x.pid or 0,
                time=x.time,
                syscall=f"(sinkhole {x.channel})",
                process=x.process,
                path=x.location,
                destination=x.destination,
                bytes=x.bytes,
                data=x.excerpt[:512],
                detail=f"{x.canary} found {x.encoding}"
                + (f" in traffic for {x.host}" if x.host else "")
                + (f" ({x.channel}: {x.request})" if x.request else ""),
            )
            for x in hits
        ]
        out.append(_finding("PS010", phase, f"credential exfiltration proven: {', '.join(what[:6])}", evid))
    return out


def _name_allowed(profile: Profile | None, name: str, phase: Phase) -> bool:
    if profile is None:
        return False
    for rule in profile.allow.network:
        if rule.phases and phase not in rule.phases:
            continue
        if glob_regex(rule.host.replace("/", "\0"), "", "").match(name.rstrip(".")):
            return True
    return False


def _loopback_reverse(name: str) -> bool:
    """A well-formed reverse name of a loopback address (``1.0.0.127.in-addr.arpa``): what
    resolvers ask for the machine itself.  Any other ``.in-addr.arpa``/``.ip6.arpa`` name
    is a DNS query like any other (labels there carry data as well as anywhere); no
    benign run here asked the sinkhole any reverse name at all."""
    n = name.lower().rstrip(".")
    if n.endswith(".in-addr.arpa"):
        octets = n[: -len(".in-addr.arpa")].split(".")
        return len(octets) == 4 and all(o.isdigit() and int(o) < 256 for o in octets) and octets[3] == "127"
    return n == ".".join(["1"] + ["0"] * 31) + ".ip6.arpa"


def rule_dns(net: NetworkCapture, profile: Profile | None, hostname: str) -> list[Finding]:
    own = {"localhost", "localhost.localdomain", hostname.lower()} - {""}
    hits = [
        q
        for q in net.dns
        if q.malformed
        or (
            q.name.lower().rstrip(".") not in own
            and not _loopback_reverse(q.name)
            and not _name_allowed(profile, q.name, q.phase)
        )
    ]
    out = []
    for phase in sorted({q.phase for q in hits}, key=lambda p: p.order):
        qs = [q for q in hits if q.phase is phase]
        uniq = list({(q.pid, q.name, q.malformed): q for q in qs}.values())
        names = sorted({q.name or "(malformed query)" for q in uniq})
        evid = [
            Evidence(
                phase=q.phase,
                pid=q.pid or 0,
                time=q.time,
                syscall=f"(dns {q.qtype or '?'})",
                process=q.process,
                destination=q.resolver,
                detail=q.detail or f"{q.name} → {q.answer}",
            )
            for q in uniq
        ]
        out.append(
            _finding(
                "PS011",
                phase,
                f"resolved {', '.join(names[:6])}" + (f" (+{len(names) - 6} more)" if len(names) > 6 else ""),
                evid,
            )
        )
    return out


def rule_honeytoken_read(net: NetworkCapture) -> list[Finding]:
    out = []
    for phase in sorted({r.phase for r in net.honeytoken_reads}, key=lambda p: p.order):
        rs = [r for r in net.honeytoken_reads if r.phase is phase]
        evid = [
            Evidence(
                phase=r.phase,
                pid=r.pid,
                time=r.time,
                syscall="(open for read)",
                process=r.process,
                path=r.path,
                detail=f"honeytoken {r.location}",
            )
            for r in rs
        ]
        places = sorted({r.location for r in rs})
        out.append(_finding("PS012", phase, f"read planted credential(s): {', '.join(places[:6])}", evid))
    return out


def rule_sinkhole_outbound(
    net: NetworkCapture, profile: Profile | None, traced: set[tuple[Phase, str]]
) -> list[Finding]:
    """PS002 from the sinkhole itself: a connection or datagram it received is an outbound
    attempt even when the trace shows no matching connect (a syscall the tracer missed,
    io_uring, a lost line).  Destinations the trace already shows are left to rule_outbound."""
    hits: list[tuple[Phase, str, Evidence]] = []
    for c in net.connections:
        if (c.phase, c.destination) in traced or _name_allowed(profile, c.host or c.destination, c.phase):
            continue
        hits.append(
            (
                c.phase,
                c.destination,
                Evidence(
                    phase=c.phase,
                    pid=c.pid or 0,
                    time=c.time,
                    syscall=f"(sinkhole tcp {c.protocol})",
                    process=c.process,
                    destination=c.destination,
                    bytes=c.bytes,
                    data=c.data[:512] or None,
                    detail="received by the sinkhole; no matching connect in the trace",
                ),
            )
        )
    for g in net.datagrams:
        dest = g.destination or "(unknown destination)"
        if (g.phase, dest) in traced:
            continue
        hits.append(
            (
                g.phase,
                dest,
                Evidence(
                    phase=g.phase,
                    pid=g.pid or 0,
                    time=g.time,
                    syscall="(sinkhole udp)",
                    process=g.process,
                    destination=g.destination,
                    bytes=g.bytes,
                    data=g.data[:512] or None,
                    detail="received by the sinkhole; no matching send in the trace",
                ),
            )
        )
    out = []
    for phase in sorted({h[0] for h in hits}, key=lambda p: p.order):
        mine = [h for h in hits if h[0] is phase]
        dests = sorted({h[1] for h in mine})
        out.append(
            _finding(
                "PS002",
                phase,
                f"sinkhole received connection(s) to {', '.join(dests[:6])}",
                [h[2] for h in mine],
            )
        )
    return out


def evaluate_network(
    net: NetworkCapture | None,
    profile: Profile | None = None,
    hostname: str = "",
    traced: set[tuple[Phase, str]] | None = None,
) -> list[Finding]:
    """The sinkhole rules (PS010 to PS012, and PS002 for what the trace missed) over the
    report's network section, under the profile's disabled rules and severity
    overrides; worst first.  *traced*: (phase, destination) of the outbound attempts the
    trace shows (judged by rule_outbound); None: judge every sinkhole connection."""
    if net is None:
        return []
    findings = rule_exfiltration(net) + rule_dns(net, profile, hostname) + rule_honeytoken_read(net)
    findings += rule_sinkhole_outbound(net, profile, traced or set())
    return apply_profile(findings, profile)


def apply_profile(findings: list[Finding], profile: Profile | None) -> list[Finding]:
    """Drop the profile's disabled rules, apply its severity overrides, order worst first."""
    if profile is not None:
        findings = [
            f.model_copy(update={"severity": profile.rules.severity[f.rule_id]})
            if f.rule_id in profile.rules.severity
            else f
            for f in findings
            if f.rule_id not in profile.rules.disabled
        ]
    return sorted(findings, key=lambda f: (-f.severity.rank, f.phase.order, f.rule_id))
