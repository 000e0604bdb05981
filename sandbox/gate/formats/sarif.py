"""SARIF 2.1.0 for code scanning (GitHub and others): one run, one result per finding.

Rules come from the behaviour rule catalogue (:data:`sandbox.judge.rules.CATALOGUE`)
plus one gate rule, ``PSG001``, for a package that could not be vetted (so an
unvetted bump is visible where findings are, not only in the exit code).
Each result points at the lockfile line that pins the package (a physical
location, which code scanning needs to show an alert) and names the package,
version and phase as a logical location; the evidence goes in ``properties``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sandbox.gate.formats.summary import as_result, candidate_of, outcome_word
from sandbox.gate.models import GateOutcome, GateResult
from sandbox.judge.rules import CATALOGUE, RuleInfo
from sandbox.models import Finding, Report, Severity
from sandbox.report.sanitize import printable

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
NOT_VETTED_RULE = RuleInfo(
    "PSG001",
    "package not vetted",
    Severity.HIGH,
    "The gate could not vet this package (over the time budget, a URL or VCS reference, an engine or "
    "fetch error, an incomplete run, or the vetted file is not one the lock pins). It was not passed: "
    "fix the cause or run the gate with --allow-incomplete.",
)

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub code scanning ranks security alerts by this property (0.1-3.9 low, 4-6.9
# medium, 7-8.9 high, 9+ critical); informational rules carry none.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
}


def _inert(value: Any) -> Any:
    """Every string in *value* made printable: results carry paths, argv and messages from packages."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {k: _inert(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_inert(v) for v in value]
    return value


def _rule_name(info: RuleInfo) -> str:
    return "".join(word.capitalize() for word in info.title.replace("-", " ").split())


def _rule(info: RuleInfo) -> dict[str, Any]:
    props: dict[str, Any] = {"tags": ["security", "supply-chain", "pkgsandbox"], "precision": "high"}
    if info.severity in _SECURITY_SEVERITY:
        props["security-severity"] = _SECURITY_SEVERITY[info.severity]
    return {
        "id": info.id,
        "name": _rule_name(info),
        "shortDescription": {"text": info.title},
        "fullDescription": {"text": info.description},
        "help": {"text": info.description},
        "defaultConfiguration": {"level": _LEVEL[info.severity]},
        "properties": props,
    }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _uri(path: str, root: Path | None) -> str:
    """Repository-relative URI when *path* is under *root* (code scanning resolves those)."""
    p = Path(path)
    base = root if root is not None else Path.cwd()
    if not p.is_absolute():
        p = Path.cwd() / p
    try:
        rel = Path(os.path.realpath(p)).relative_to(os.path.realpath(base))
        return rel.as_posix()
    except ValueError:
        return p.resolve().as_uri()


def _location(o: GateOutcome, phase: str | None, root: Path | None) -> dict[str, Any]:
    e = o.entry
    version = o.resolved_version or e.version or ""
    label = f"{e.name}=={version}" if version else e.name
    loc: dict[str, Any] = {
        "logicalLocations": [
            {
                "name": label,
                "fullyQualifiedName": f"{label}/{phase}" if phase else label,
                "kind": "module",
            }
        ],
    }
    req = e.requirement
    # A plain `vet` report has no lockfile line (line 0): its "source_file" is the spec.
    if req.line and req.source_file:
        loc["physicalLocation"] = {
            "artifactLocation": {"uri": _uri(req.source_file, root)},
            "region": {"startLine": req.line},
        }
    return loc


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _finding_result(o: GateOutcome, f: Finding, rule_index: int, root: Path | None) -> dict[str, Any]:
    e = o.entry
    version = o.resolved_version or e.version or ""
    cand = candidate_of(o.report) if o.report is not None else None
    where = f"{e.name} {version}".strip()
    return {
        "ruleId": f.rule_id,
        "ruleIndex": rule_index,
        "level": _LEVEL[f.severity],
        "message": {"text": f"{where} ({f.phase.value} phase): {f.message}"},
        "locations": [_location(o, f.phase.value, root)],
        "partialFingerprints": {
            "pkgsandboxFinding/v1": _fingerprint(f.rule_id, e.name, version, f.phase.value)
        },
        "properties": {
            "package": e.name,
            "version": version,
            "previousVersion": e.previous,
            "phase": f.phase.value,
            "severity": f.severity.value,
            "verdict": o.verdict.value if o.verdict is not None else None,
            "artifactSha256": cand[2] if cand else None,
            "cached": o.status.value == "cached",
            "evidence": [ev.model_dump(mode="json", exclude_none=True) for ev in f.evidence],
        },
    }


def _not_vetted_result(o: GateOutcome, rule_index: int, failing: bool, root: Path | None) -> dict[str, Any]:
    e = o.entry
    why = o.detail or (o.report.verdict_reason if o.report is not None else "")
    return {
        "ruleId": NOT_VETTED_RULE.id,
        "ruleIndex": rule_index,
        "level": "error" if failing else "warning",
        "message": {"text": f"{e.label} was not vetted ({outcome_word(o)}): {why}"},
        "locations": [_location(o, None, root)],
        "partialFingerprints": {
            "pkgsandboxFinding/v1": _fingerprint(NOT_VETTED_RULE.id, e.name, e.version or "")
        },
        "properties": {"package": e.name, "version": e.version, "status": o.status.value, "detail": why},
    }


def to_sarif(value: GateResult | Sequence[Report], *, root: Path | None = None) -> str:
    """The SARIF 2.1.0 log of a gate result (or of plain vet reports) as JSON text.

    File locations are made relative to *root* (default: the working directory),
    which should be the repository root for code scanning.
    """
    result = as_result(value)
    infos = [*CATALOGUE.values(), NOT_VETTED_RULE]
    index = {info.id: i for i, info in enumerate(infos)}
    rules = [_rule(info) for info in infos]
    results: list[dict[str, Any]] = []
    for o in result.outcomes:
        if o.report is not None:
            for f in o.report.findings:
                if f.rule_id not in index:  # a rule newer than this catalogue: describe it from the finding
                    title = printable(f.title, 200)
                    info = RuleInfo(printable(f.rule_id, 40), title, f.severity, title)
                    index[f.rule_id] = len(infos)
                    infos.append(info)
                    rules.append(_rule(info))
                results.append(_finding_result(o, f, index[f.rule_id], root))
        if o.incomplete:
            results.append(
                _not_vetted_result(o, index[NOT_VETTED_RULE.id], not result.allow_incomplete, root)
            )
    packages = [
        {
            "name": o.entry.name,
            "version": o.resolved_version,
            "previousVersion": o.entry.previous,
            "unpinned": o.entry.unpinned,
            "status": o.status.value,
            "verdict": o.verdict.value if o.verdict is not None else None,
            "findings": len(o.report.findings) if o.report is not None else 0,
            "detail": o.detail,
        }
        for o in result.outcomes
    ]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "pkgsandbox",
                "version": result.tool_version,
                "semanticVersion": result.tool_version,
                "rules": rules,
            }
        },
        "invocations": [
            {
                "executionSuccessful": int(result.exit_code) in (0, 1),
                "exitCode": int(result.exit_code),
                "startTimeUtc": _iso(result.started),
                "endTimeUtc": _iso(result.finished),
            }
        ],
        "results": results,
        "properties": {
            "lockfile": result.lockfile,
            "base": result.base,
            "failOn": result.fail_on.value,
            "allowIncomplete": result.allow_incomplete,
            "unchanged": result.unchanged,
            "removed": list(result.removed),
            "packages": packages,
        },
    }
    # Every string inert, ours included (the catalogue's are already): one pass, nothing missed.
    log = {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [_inert(run)]}
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"
