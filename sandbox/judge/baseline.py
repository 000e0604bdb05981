"""Baselines and behavioural diffs between versions.

A baseline is the normalised behaviour of a trusted run: file accesses, processes,
endpoints, start-up hooks and findings, with what changes between versions
abstracted away (version strings, temp names, pids, random suffixes, the
site-packages path, HOME). ``vet NEW --baseline B`` reports behaviour absent from B
as deviations; ``diff OLD NEW`` shows what was added and removed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import ValidationError

from sandbox import __version__
from sandbox.agent.protocol import HOME
from sandbox.errors import InputError
from sandbox.models import (
    DEFAULT_PASS,
    Event,
    EventKind,
    Evidence,
    Finding,
    Frozen,
    Origin,
    Phase,
    Report,
    Severity,
    Verdict,
)

BASELINE_SCHEMA = "1.0"
CATEGORIES = ("files", "processes", "endpoints", "pth", "findings")

_FILE_ACCESS = {
    EventKind.FILE_READ: "read",
    EventKind.FILE_WRITE: "write",
    EventKind.FILE_STAT: "stat",
    EventKind.FILE_LIST: "list",
    EventKind.FILE_DELETE: "delete",
    EventKind.FILE_RENAME: "rename",
    EventKind.FILE_CHMOD: "chmod",
    EventKind.FILE_LINK: "link",
    EventKind.DIR_CREATE: "mkdir",
}
_VERSION = re.compile(r"(?<![A-Za-z0-9])v?\d+(?:\.\d+)+(?:[._-]?(?:a|b|rc|post|dev)\d*)*(?![A-Za-z0-9])")
_TMP = re.compile(r"^/(?:var/)?tmp/[^/]+")
# the calls' argument of per-run handed secrets (sandbox/agent/phases.py phase_execute)
_HANDED = re.compile(r"^[0-9a-f]{64}:[A-Za-z0-9]{40}$")
_PROC = re.compile(r"^/proc/\d+(?=/|$)")  # /proc/61 itself too: a pid differs per run
# random suffixes (tmpabc12x9, build-3f9a0c1d…) contain digits; words like
# ".git-credentials" do not and must survive normalisation
_RANDOM = re.compile(r"(?<=[-_.])(?=[A-Za-z]*\d)[A-Za-z0-9]{8,}(?=$|[-_./])|(?=[a-f]*\d)[0-9a-f]{12,}")


class Behaviour(Frozen):
    """Normalised behaviour of one run, per category, as sorted keys."""

    files: tuple[str, ...] = ()
    processes: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()
    pth: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()

    def get(self, category: str) -> tuple[str, ...]:
        value: tuple[str, ...] = getattr(self, category)
        return value


class Baseline(Frozen):
    """A trusted run's behaviour, written by ``pkgsandbox baseline``."""

    schema_version: str = BASELINE_SCHEMA
    tool_version: str = __version__
    target: str
    profile: str
    verdict: Verdict
    behaviour: Behaviour


class CategoryDiff(Frozen):
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


class DiffReport(Frozen):
    """``pkgsandbox diff OLD NEW`` as JSON: both reports' verdicts and the changes."""

    schema_version: str = BASELINE_SCHEMA
    old: str
    new: str
    old_verdict: Verdict
    new_verdict: Verdict
    changes: dict[str, CategoryDiff]
    deviations: tuple[Finding, ...] = ()
    old_report: Report | None = None  # both full reports, so `pkgsandbox show` renders a diff too
    new_report: Report | None = None


class Normaliser:
    """Abstracts what differs between two runs of versions of the same package."""

    def __init__(self, report: Report) -> None:
        self.site = report.inventory.site_packages
        self.home = HOME
        self.venv = self.site.split("/lib/")[0] if "/lib/" in self.site else ""

    def path(self, path: str) -> str:
        p = path
        if self.site and p.startswith(self.site):
            p = "{site}" + p[len(self.site) :]
        elif self.venv and p.startswith(self.venv):
            p = "{venv}" + p[len(self.venv) :]
        elif p == self.home or p.startswith(self.home + "/"):
            p = "~" + p[len(self.home) :]
        p = _TMP.sub("/tmp/*", p)
        p = _PROC.sub("/proc/*", p)
        p = _VERSION.sub("*", p)
        return _RANDOM.sub("*", p)

    def argv(self, argv: tuple[str, ...]) -> str:
        if not argv:
            return ""
        head = argv[0].rsplit("/", 1)[-1]
        rest = [
            self.path(a) if a.startswith("/") else "*" if _HANDED.match(a) else _VERSION.sub("*", a)
            for a in argv[1:8]
        ]
        return " ".join([head, *rest])[:300]


def _event_key(n: Normaliser, ev: Event) -> tuple[str, str] | None:
    access = _FILE_ACCESS.get(ev.kind)
    if access and ev.path:
        target = n.path(ev.path2) if ev.kind is EventKind.FILE_RENAME and ev.path2 else ""
        return "files", f"{ev.phase.value} {access} {n.path(ev.path)}" + (f" -> {target}" if target else "")
    if ev.kind in (EventKind.CONNECT, EventKind.SEND) and ev.address is not None:
        if ev.address.family in ("inet", "inet6") and not ev.address.is_loopback:
            return "endpoints", f"{ev.phase.value} {ev.address.render()}"
        if ev.address.family == "unix" and ev.address.path:
            return "endpoints", f"{ev.phase.value} unix:{n.path(ev.address.path)}"
    if ev.kind is EventKind.EXEC and ev.errno is None and ev.argv:
        return "processes", f"{ev.phase.value} {n.argv(ev.argv)}"
    return None


def _finding_key(n: Normaliser, f: Finding) -> str:
    where = sorted({n.path(e.path) if e.path else (e.destination or "") for e in f.evidence})
    extra = "" if f.pass_name == DEFAULT_PASS else f" [{f.pass_name}]"  # kept apart from the default pass
    return f"{f.rule_id} {f.phase.value}{extra} {' '.join(where)[:300]}"


def extract(report: Report) -> Behaviour:
    """The normalised behaviour of a report (candidate-attributed events of the default
    pass only: extra passes run when their trigger fires, so their behaviour would make
    every baseline drift)."""
    n = Normaliser(report)
    cats: dict[str, set[str]] = {c: set() for c in CATEGORIES}
    for ev in report.events:
        if ev.origin is not Origin.CANDIDATE or ev.pass_name != DEFAULT_PASS:
            continue
        key = _event_key(n, ev)
        if key:
            cats[key[0]].add(key[1])
    for pth in report.inventory.pth_files:
        name = _VERSION.sub("*", pth.path.rsplit("/", 1)[-1])
        cats["pth"].add(f"{name} {'executes' if pth.executes else 'paths'} {pth.sha256[:16]}")
    for f in report.findings:
        cats["findings"].add(_finding_key(n, f))
    return Behaviour(**{c: tuple(sorted(v)) for c, v in cats.items()})


def make_baseline(report: Report) -> Baseline:
    return Baseline(
        target=report.target, profile=report.profile, verdict=report.verdict, behaviour=extract(report)
    )


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file; anything else is one clear :class:`InputError`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read baseline {path}: {exc}") from exc
    try:
        return Baseline.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(
            f"{path} is not a pkgsandbox baseline: {'.'.join(map(str, first['loc']))}: {first['msg']}"
        ) from exc


def diff(old: Behaviour, new: Behaviour) -> dict[str, CategoryDiff]:
    return {
        c: CategoryDiff(
            added=tuple(sorted(set(new.get(c)) - set(old.get(c)))),
            removed=tuple(sorted(set(old.get(c)) - set(new.get(c)))),
        )
        for c in CATEGORIES
    }


_DEVIATION_SEVERITY = {
    "endpoints": Severity.MEDIUM,
    "processes": Severity.MEDIUM,
    "pth": Severity.MEDIUM,
    "files": Severity.LOW,
}


def apply_baseline(report: Report, baseline: Baseline) -> Report:
    """Report behaviour absent from *baseline* as deviations (rule PS024); medium and lower
    findings the baseline already showed are dropped — a baseline is the allowlist of a
    version the user trusts — while high and critical ones always stay."""
    from sandbox.judge.verdict import verdict_for

    n = Normaliser(report)
    base = baseline.behaviour
    known = set(base.findings)
    # A baseline explains away what the trusted version also did — but never a high or
    # critical finding: a compromised "trusted" version must not whitelist its successor.
    kept = [
        f for f in report.findings if f.severity.rank >= Severity.HIGH.rank or _finding_key(n, f) not in known
    ]
    dropped = len(report.findings) - len(kept)
    changes = diff(base, extract(report))
    deviations = []
    for cat, sev in _DEVIATION_SEVERITY.items():
        # what the calls (made-up arguments, a sinkhole address drawn per run) did is
        # compared apart and only LOW: a library handed a URL connects in every version
        calls = [k for k in changes[cat].added if _phase_of(k) is Phase.EXECUTE]
        rest = [k for k in changes[cat].added if _phase_of(k) is not Phase.EXECUTE]
        for added, severity, where in ((rest, sev, ""), (calls, Severity.LOW, " during the calls")):
            if not added:
                continue
            evid = [
                Evidence(phase=_phase_of(key), pid=0, time=0.0, syscall="(baseline)", detail=key)
                for key in added
            ]
            deviations.append(
                Finding(
                    rule_id="PS024",
                    title="deviation from baseline",
                    severity=severity,
                    phase=min((e.phase for e in evid), key=lambda p: p.order),
                    message=f"{len(added)} new {cat}{where} not seen in the baseline of {baseline.target}",
                    evidence=tuple(evid[:50]),
                )
            )
    findings = sorted([*kept, *deviations], key=lambda f: (-f.severity.rank, f.phase.order, f.rule_id))
    reasons = [r for r in report.verdict_reason.split("; ")] if report.verdict is Verdict.INCOMPLETE else []
    verdict, reason = verdict_for(findings, reasons)
    notes = (
        *report.notes,
        f"baseline {baseline.target}: {dropped} finding(s) matched it, "
        f"{sum(len(d.added) for d in changes.values())} new behaviour key(s)",
    )
    return report.model_copy(
        update={"findings": tuple(findings), "verdict": verdict, "verdict_reason": reason, "notes": notes}
    )


def _phase_of(key: str) -> Phase:
    head = key.split(" ", 1)[0]
    try:
        return Phase(head)
    except ValueError:
        return Phase.INSTALL
