"""What the behaviour rules share: the :class:`Context` indexes over an observation,
evidence and finding helpers, and the event-kind sets several rule families use."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from sandbox.judge.profiles import Allowlist
from sandbox.judge.rules.catalogue import CATALOGUE
from sandbox.models import (
    Event,
    EventKind,
    Evidence,
    Finding,
    Observation,
    Origin,
    Phase,
    ProcessInfo,
    Severity,
)

MAX_EVIDENCE = 20


HOME_DIR = r"(?:/root|/home/[^/]+)"


WRITE_KINDS = {
    EventKind.FILE_WRITE,
    EventKind.FILE_RENAME,
    EventKind.FILE_LINK,
    EventKind.FILE_CHMOD,
    EventKind.FILE_DELETE,
    EventKind.DIR_CREATE,
}


NET_KINDS = {EventKind.CONNECT, EventKind.SEND}


VSOCK = "AF_VSOCK"


TRACE_DIR = "/var/lib/devtools"


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
        # id() of an event (the same objects as self.events) → allowed; filled lazily: only
        # the few rules an allowlist may silence ask, and a flood has 10⁵ events
        self._allowed: dict[int, bool] = {}
        self.traced_pids: dict[Phase, set[int]] = {}
        self.candidate_pids: dict[Phase, set[int]] = {}  # the traced harness (pip, setpriv) left out
        for p in obs.processes:
            self.traced_pids.setdefault(p.phase, set()).add(p.pid)
            if p.origin is Origin.CANDIDATE:
                self.candidate_pids.setdefault(p.phase, set()).add(p.pid)

    def is_allowed(self, ev: Event) -> bool:
        """Whether the profile lists *ev* as an explicit exception (see class docstring)."""
        if self.allow is None:
            return False
        key = id(ev)
        if key not in self._allowed:
            self._allowed[key] = self._allowed_by_profile(ev)
        return self._allowed[key]

    def _allowed_by_profile(self, ev: Event) -> bool:
        assert self.allow is not None
        if ev.kind is EventKind.EXEC:
            proc = self.procs.get((ev.phase, ev.pid))
            parent = self.procs.get((ev.phase, proc.ppid)) if proc and proc.ppid is not None else None
            return self.allow.exec_allowed(ev, parent.exe if parent else None)
        if ev.kind in NET_KINDS:
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
        return [
            e
            for e in self.events
            if (e.kind in NET_KINDS and is_outbound(e) and not self.is_allowed(e)) or is_vsock(e)
        ]


def is_outbound(ev: Event) -> bool:
    """A connect/send towards a non-loopback internet address, or any use of AF_VSOCK."""
    a = ev.address
    if a is not None and a.family in ("inet", "inet6"):
        return not a.is_loopback
    return is_vsock(ev)


def is_vsock(ev: Event) -> bool:
    """A vsock socket made (or trapped by the sandbox), connected or sent on: a channel to
    the VM's host that no network namespace confines and the sinkhole never sees."""
    if ev.kind is EventKind.SOCKET:
        return (ev.flags or "").startswith(VSOCK)
    a = ev.address
    return ev.kind in NET_KINDS and a is not None and a.family == "other" and a.host == VSOCK


def make_finding(
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


class _Phased(Protocol):
    @property
    def phase(self) -> Phase: ...


_P = TypeVar("_P", bound=_Phased)


def per_phase(items: Iterable[_P]) -> dict[Phase, list[_P]]:
    """*items* (events, the sinkhole's records) grouped by phase, in phase order."""
    out: dict[Phase, list[_P]] = {}
    for e in items:
        out.setdefault(e.phase, []).append(e)
    return dict(sorted(out.items(), key=lambda kv: kv[0].order))


def dedupe(events: Iterable[Event], key: Callable[[Event], object]) -> list[Event]:
    seen: set[object] = set()
    out = []
    for e in events:
        k = key(e)
        if k not in seen:
            seen.add(k)
            out.append(e)
    return out


def written_text(e: Event) -> str | None:
    """The bytes of a write as text (the recorder prints them with C escapes: ``\\n``,
    ``\\x2f``, ``\\057``); None when the capture is not all of them."""
    if e.data is None:
        return None
    try:
        text = e.data.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError:
        text = e.data
    if e.size is not None and len(text.encode("utf-8", "replace")) < e.size:
        return None
    return text


def exec_name(ev: Event, interpreters: dict[str, str] | None = None) -> str:
    """The program an exec really runs: the file behind an fd path (``path2``), the
    interpreter of a ``#!`` script, else the path or argv[0]."""
    image = ev.path2 or ev.path
    if interpreters and image in interpreters:
        image = interpreters[image]
    if image:
        return posixpath.basename(image)
    return posixpath.basename(ev.argv[0]) if ev.argv else ""
