"""Escape rules: PS007 (tampering outside its own tree), PS008 (escape primitives and
knobs) and PS030 (debugger/sandbox probes, which :func:`escalate` turns into a
raise of the other findings)."""

from __future__ import annotations

import re

from sandbox.judge.rules.context import TRACE_DIR, Context, dedupe, make_finding, per_phase
from sandbox.models import (
    Event,
    EventKind,
    Finding,
    Origin,
    Severity,
)

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
    r"|^/proc/\d+/mem$|^/proc/\d+/root/|^/var/lib/(?:docker|containerd)(?:/|$)"
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
    for phase, evs in per_phase(hits).items():
        uniq = dedupe(evs, lambda e: (e.pid, e.path, e.syscall))
        what = sorted({e.path or f"{e.syscall}({e.flags})" for e in uniq})
        own = ctx.traced_pids.get(phase, set())
        swept = _swept([e for e in ctx.obs.events if e.phase is phase and e.kind is EventKind.FILE_READ], own)
        kinds = {_probe_kind(e, own, swept) for e in uniq}
        # One kind of look is what benign code does too (numpy reads its own status,
        # telemetry checks /.dockerenv or the cgroup): LOW, it does not raise others.
        # A debugger self-attach, or two pointed kinds of look (the container idiom,
        # init's own files, one other process), is environment-aware code. Runtimes
        # read their own status and cgroup (memory, CPU quota), process listers sweep
        # every /proc/N, and "am I in a container" (the markers of Docker and Podman
        # and a cgroup, its own or PID 1's: a top-400 ML runtime at import) is one
        # look: none of those is pointed twice, they stay LOW.
        strong = "ptrace" in kinds or len(kinds & {"container", "init", "other"}) >= 2
        out.append(
            make_finding(
                "PS030",
                phase,
                f"probed for a debugger or sandbox: {', '.join(what[:6])}",
                [ctx.evidence(e) for e in uniq],
                None if strong else Severity.LOW,
            )
        )
    return out


_PROC_FILE = re.compile(r"^/proc/(self|thread-self|\d+)(?:/task/\d+)?/(\w+)$")


def _swept(events: list[Event], own: set[int]) -> set[str]:
    """File names (status, cmdline, cgroup …) read for 3 or more other processes: a
    process listing (ps, psutil, sysinfo), not a look at one of them."""
    pids: dict[str, set[str]] = {}
    for e in events:
        m = _PROC_FILE.match(e.path or "")
        if m and m.group(1).isdigit() and int(m.group(1)) not in own and int(m.group(1)) != e.pid:
            pids.setdefault(m.group(2), set()).add(m.group(1))
    return {name for name, ps in pids.items() if len(ps) >= 3}


def _probe_kind(e: Event, own: set[int], swept: set[str]) -> str:
    """Which look a probe is: ptrace; ``container`` (a container marker file, or PID
    1's cgroup: the "am I in a container" idiom); ``self`` (its own status or cgroup);
    ``listing`` (part of a sweep of every process); ``init`` (PID 1's other files:
    its name, schedule, mounts); ``other`` (one other process's status or cgroup)."""
    if e.kind is EventKind.PTRACE:
        return "ptrace"
    path = e.path or ""
    m = _PROC_FILE.match(path)
    if not m:
        return "container"
    who, name = m.groups()
    if not who.isdigit() or int(who) == e.pid or int(who) in own:
        return "self"
    if name in swept:
        return "listing"
    if who == "1":
        return "container" if name == "cgroup" else "init"
    return "other"


def escalate(findings: list[Finding]) -> list[Finding]:
    """PS030 raises every other finding at MEDIUM or above one step (MEDIUM→HIGH,
    HIGH→CRITICAL): code that checks for analysis first and then acts is worse than
    either alone.  Alone, PS030 stays MEDIUM.  Applied once, after the profile."""
    if not any(f.rule_id == "PS030" and f.severity.rank >= Severity.MEDIUM.rank for f in findings):
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
            # (process_vm_readv/writev and pidfd_getfd are escape attempts: PS008)
            if e.target not in ctx.traced_pids.get(e.phase, set()) or e.target is None:
                hits.append(e)
        elif e.path and e.path.startswith(TRACE_DIR):
            hits.append(e)
    out = []
    for phase, evs in per_phase(hits).items():
        out.append(
            make_finding(
                "PS007",
                phase,
                "tried to interfere with processes or files outside its own tree",
                [
                    ctx.evidence(e, detail=f"target pid {e.target}" if e.target is not None else "")
                    # writes to the recorder's files first: a sweep of signals at every
                    # root process (a couple of dozen on a workstation-like PID 1) would
                    # otherwise fill the capped evidence list alone
                    for e in sorted(
                        dedupe(evs, lambda e: (e.pid, e.syscall, e.target, e.path)),
                        key=lambda e: e.path is None,
                    )
                ],
            )
        )
    return out


def escape_kind(e: Event, own_pids: set[int], candidate_pids: set[int] | None = None) -> str | None:
    """``"attempt"`` for an escape primitive, ``"recon"`` for reading an escape knob, else None.
    *own_pids*: every traced process of the phase; *candidate_pids*: those running the
    candidate's code (the traced harness, pip during install, excluded; default all)."""
    paths = [p for p in (e.path, e.path2) if p]
    if e.address is not None and e.address.family == "unix" and e.address.path:
        paths.append(e.address.path)
    mine = own_pids if candidate_pids is None else candidate_pids
    if e.syscall in _OWN_MEMORY and e.target is not None and (e.target == e.pid or e.target in mine):
        # a profiler or crash tracker reads its own memory safely this way (a top-700
        # APM library at import); another process's memory stays one, the harness's
        # too though the recorder traces it (pip runs as the candidate's uid: a build
        # backend writing into it acts as the harness, whose events are not judged)
        return None
    if e.syscall in _ESCAPE_SYSCALLS or any(_ESCAPE_PATHS.search(p) for p in paths):
        return "attempt"
    if _foreign_abi(e):
        return "attempt"
    if e.kind in _KERNEL_WRITES and any(_KERNEL_SETTINGS.search(p) for p in paths):
        return "attempt"
    if e.path and (m := _OTHER_PROC.match(e.path)) and int(m.group(1)) not in own_pids:
        # Another process's environment or root: reading it is an attempt; a refused
        # open, or the root link itself (readlink, stat), is what process listers do
        # (Rust's sysinfo sweeps every /proc/N for environ, root, cwd, exe)
        if m.group(2) == "environ" and e.kind is EventKind.FILE_READ and not e.errno:
            return "attempt"
        return "recon"
    if e.path and e.kind is EventKind.FILE_READ and _ESCAPE_KNOBS.search(e.path):
        return "recon"
    return None


_OTHER_PROC = re.compile(r"^/proc/(\d+)/(environ|root)$")
# cross-process memory calls that are no escape when aimed at the caller's own process
# (or another of the candidate's): only the harness's processes are beyond the wall
_OWN_MEMORY = frozenset({"process_vm_readv", "process_vm_writev", "pidfd_getfd"})


def _foreign_abi(e: Event) -> bool:
    """Killed by SIGSYS: the seccomp profile admits the native ABI only, so this is a
    32-bit (``int 0x80``) call, made to get around syscall filters and recorders."""
    return e.syscall == "killed" and (e.flags or "").startswith("SIGSYS")


def _what(e: Event) -> str:
    if _foreign_abi(e):
        return "a system call of a foreign (32-bit) ABI, refused (killed by SIGSYS)"
    return e.path or (e.address.render() if e.address else e.syscall)


def rule_escape(ctx: Context) -> list[Finding]:
    hits: dict[str, list[Event]] = {"attempt": [], "recon": []}
    for e in ctx.events:
        kind = escape_kind(e, ctx.traced_pids.get(e.phase, set()), ctx.candidate_pids.get(e.phase, set()))
        if kind is not None:
            hits[kind].append(e)
    out = []
    for kind, severity, label in (
        ("attempt", None, "escape attempt"),
        ("recon", Severity.LOW, "read escape knob"),
    ):
        for phase, evs in per_phase(hits[kind]).items():
            uniq = dedupe(evs, lambda e: (e.pid, e.syscall, e.path, e.address))
            what = sorted({_what(e) for e in uniq})
            out.append(
                make_finding(
                    "PS008",
                    phase,
                    f"{label}: {', '.join(what[:6])}",
                    [ctx.evidence(e) for e in uniq],
                    severity,
                )
            )
    return out
