"""View models of a report, shared by the terminal (``pkgsandbox show``) and the HTML page.

Everything here is a pure function of a :class:`~sandbox.models.Report`: no I/O, no
rich, no HTML.  The renderers only lay out what these builders decide, so the
terminal and the HTML page show the same process tree, timeline, network table,
file groups and findings, whichever command (``vet``, ``diff``, ``gate``) wrote
the report.

Every string that came out of the sandbox (paths, argv, payload bytes, even pip's
output) is attacker-controlled.  The one sanitiser, :func:`~sandbox.report.sanitize.printable`,
is applied once, here, so that neither renderer can be handed a raw control character
(a terminal escape sequence), a line break that forges a row, or a bidirectional
override that makes ``exe.txt`` read as ``txt.exe``.  Markup escaping (rich, HTML)
stays the renderers' job.

The builders are written for 100k-event reports: one pass over the events per
view, no per-event pydantic objects (frozen slotted dataclasses instead), and
sanitising only the strings that need it.

By concern: the models are in :mod:`~sandbox.report.view_models`, the words for
paths and events in :mod:`~sandbox.report.describe`, the per-view builders in
:mod:`~sandbox.report.builders`; this module assembles a whole view
(:func:`build_view`), finds reports inside JSON documents, and re-exports the
public names.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sandbox.errors import InputError
from sandbox.models import (
    DEFAULT_PASS,
    SCHEMA_VERSION,
    ArtifactRole,
    Event,
    Phase,
    ProcessInfo,
    Report,
)
from sandbox.report.builders import (
    _evidence_keys,
    _phase_notes,
    _phase_starts,
    _tail,
    build_files,
    build_findings,
    build_network,
    build_process_tree,
    build_timeline,
    phase_order,
    protocol_of,
)
from sandbox.report.describe import (
    ACCESS_ORDER,
    DATA_LIMIT,
    DETAIL_LIMIT,
    LOCATIONS,
    SUBJECT_LIMIT,
    describe,
    location_of,
    venv_root,
)
from sandbox.report.sanitize import (
    argv_text,
    printable,
    printable_lines,
)
from sandbox.report.view_models import (
    Cited,
    EvidenceView,
    FileGroup,
    FileRow,
    FindingView,
    NetworkRow,
    PhaseView,
    ProcessNode,
    ReportView,
    Timeline,
    TimelineRow,
)

# The public names of the views, wherever they are defined (show, html and tests import them from here).
__all__ = [
    "ACCESS_ORDER",
    "DATA_LIMIT",
    "DETAIL_LIMIT",
    "LOCATIONS",
    "SUBJECT_LIMIT",
    "Cited",
    "EvidenceView",
    "FileGroup",
    "FileRow",
    "FindingView",
    "NetworkRow",
    "PhaseView",
    "ProcessNode",
    "ReportView",
    "Timeline",
    "TimelineRow",
    "argv_text",
    "build_files",
    "build_findings",
    "build_network",
    "build_process_tree",
    "build_timeline",
    "build_view",
    "describe",
    "find_reports",
    "load_reports",
    "location_of",
    "no_cyclic_gc",
    "phase_order",
    "printable",
    "printable_lines",
    "protocol_of",
    "report_title",
    "venv_root",
]


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic GC while building many small acyclic objects.

    A view of a 100k-event report allocates a few objects per event and frees none
    of them, so the collector keeps rescanning a growing heap (a third of the build
    time) and finds nothing: the objects form no cycles.  The parser does the same.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def build_view(report: Report, *, phases: Iterable[Phase] | None = None) -> ReportView:
    """The view model of a whole report (or of the given *phases* only)."""
    with no_cyclic_gc():
        return _build_view(report, phases)


def _build_view(report: Report, phases: Iterable[Phase] | None) -> ReportView:
    wanted = set(phases) if phases is not None else None
    order = [p for p in phase_order(report) if wanted is None or p in wanted]
    t0 = _phase_starts(report)
    by_event, by_pid = _evidence_keys(report.findings)
    # Phase views show the default pass; an extra pass's findings carry their pass.
    results = {pr.phase: pr for pr in report.phases if pr.pass_name == DEFAULT_PASS}
    summaries = {s.phase: s for s in report.summary if s.pass_name == DEFAULT_PASS}
    venv = venv_root(report.inventory.site_packages) if report.inventory.site_packages else ""

    events_by_phase: dict[Phase, list[Event]] = {p: [] for p in order}
    for ev in report.events:
        bucket = events_by_phase.get(ev.phase)
        if bucket is not None and ev.pass_name == DEFAULT_PASS:
            bucket.append(ev)
    procs_by_phase: dict[Phase, list[ProcessInfo]] = {p: [] for p in order}
    for proc in report.processes:
        plist = procs_by_phase.get(proc.phase)
        if plist is not None and proc.pass_name == DEFAULT_PASS:
            plist.append(proc)

    views = []
    for phase in order:
        events = events_by_phase[phase]
        procs = procs_by_phase[phase]
        start = t0.get(phase, 0.0)
        pr = results.get(phase)
        counts: dict[int, int] = {}
        for ev in events:
            counts[ev.pid] = counts.get(ev.pid, 0) + 1
        known = {p.pid for p in procs}
        cited_pids = {pid for (ph, pid) in by_pid if ph == phase.value and pid > 0}
        extra = (set(counts) | cited_pids) - known
        lingering = [lg.pid for lg in pr.lingering] if pr else []
        argv_of = {p.pid: argv_text(p.argv, 200) for p in procs}
        summary = summaries.get(phase)
        views.append(
            PhaseView(
                phase=phase,
                status=pr.status.value if pr else "",
                ran=pr is not None,
                duration=pr.duration if pr else 0.0,
                exit_code=pr.exit_code if pr else None,
                trace_complete=pr.trace_complete if pr else True,
                total_events=summary.events if summary else len(events),
                t0=start,
                notes=_phase_notes(pr),
                output_tail=_tail(pr.output_tail) if pr else "",
                steps=tuple(
                    (printable(s.name, 200), s.status.value, s.duration, printable(s.detail, 300))
                    for s in pr.steps
                )
                if pr
                else (),
                processes=build_process_tree(
                    phase,
                    procs,
                    t0=start,
                    event_counts=counts,
                    rules_by_pid=by_pid,
                    lingering=lingering,
                    extra_pids=extra,
                ),
                process_count=len(known) + len(extra),
                timeline=build_timeline(events, start, by_event.get(phase)),
                network=build_network(events, start, argv_of, by_event.get(phase)),
                files=build_files(events, start, venv, by_event.get(phase)),
            )
        )

    cand = next((a for a in report.artifacts if a.role is ArtifactRole.CANDIDATE), None)
    return ReportView(
        title=report_title(report),
        target=printable(report.target, 500),
        verdict=report.verdict,
        verdict_reason=printable(report.verdict_reason, 1000),
        tool_version=printable(report.tool_version, 60),
        schema_version=printable(report.schema_version, 20),
        profile=printable(report.profile, 100),
        started=report.started,
        finished=report.finished,
        image=printable(f"{report.image.tag} (Python {report.image.python})", 200) if report.image else "",
        candidate=printable(f"{cand.filename} sha256 {cand.sha256}", 300) if cand else "",
        artifacts=tuple(
            (
                a.role.value,
                printable(f"{a.name}=={a.version}", 200),
                printable(a.filename, 300),
                printable(a.sha256, 64),
            )
            for a in report.artifacts
        ),
        findings=tuple(f for f in build_findings(report, t0) if wanted is None or f.phase in wanted),
        phases=tuple(views),
        notes=tuple(printable(n, 500) for n in report.notes),
        pth_files=tuple(
            (printable(p.path, 500), printable(p.head, 500), p.executes) for p in report.inventory.pth_files
        ),
    )


# ---------------------------------------------------------------- documents holding reports


def _is_report(node: dict[str, Any]) -> bool:
    return "schema_version" in node and "events" in node and "findings" in node


def find_reports(document: object) -> list[tuple[str, dict[str, Any]]]:
    """Every report object inside a JSON document, with its JSON path (``$`` for the top level).

    ``vet`` writes a report at the top level; a gate result holds one per package
    (``$.outcomes[3].report``), a diff two.  An object with ``schema_version``,
    ``events`` and ``findings`` is taken for a report and not searched further.
    """
    found: list[tuple[str, dict[str, Any]]] = []
    stack: list[tuple[str, object]] = [("$", document)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            if _is_report(node):
                found.append((path, node))
                continue
            stack.extend((f"{path}.{k}", v) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(node))))
    return found


def report_title(report: Report) -> str:
    """``name version`` of the candidate, else the target."""
    cand = next((a for a in report.artifacts if a.role is ArtifactRole.CANDIDATE), None)
    return printable(f"{cand.name} {cand.version}" if cand else report.target, 200)


def load_reports(path: Path) -> list[tuple[str, Report]]:
    """The reports in a JSON file written by ``vet``, ``gate`` or ``diff``, each with a label.

    A ``vet`` report gives one entry labelled with its candidate; a document holding
    several gives one per report, labelled with the candidate and where it sits in
    the document.  Anything else is one clear :class:`~sandbox.errors.InputError`
    (exit 2), as :func:`~sandbox.report.json_format.load_report` does for one report.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read report {path}: {exc}") from exc
    major = SCHEMA_VERSION.split(".")[0]
    # Fast path, the common case: the file is one report.  pydantic's own JSON parser validates a
    # 100k-event report in ~70% of the time of json.loads + model_validate.  Anything else (a gate
    # result, another schema, a broken file) takes the slow path, which explains what is wrong.
    try:
        report = Report.model_validate_json(text)
    except ValueError:  # ValidationError is a ValueError, and so is malformed JSON
        pass
    else:
        if report.schema_version.split(".")[0] == major:
            return [(report_title(report), report)]
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{path} is not JSON: {exc}") from exc
    del text  # a 100k-event report is ~40 MB of text: do not hold it while validating
    found = find_reports(data)
    if not found:
        raise InputError(
            f"{path} holds no pkgsandbox report (no object with schema_version, events and findings)"
        )
    out = []
    for where, node in found:
        version = str(node.get("schema_version"))
        if version.split(".")[0] != major:
            raise InputError(f"{path}: {where} has report schema {version}, this tool reads {SCHEMA_VERSION}")
        try:
            report = Report.model_validate(node)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(x) for x in first["loc"])
            raise InputError(f"{path} is not a valid report: {where}.{loc}: {first['msg']}") from exc
        title = report_title(report)
        out.append((title if where == "$" else f"{title} ({where})", report))
    return out
