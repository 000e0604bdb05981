"""The gate: vet exactly what a dependency change introduces, for CI.

Flow: :func:`plan_gate` parses the head lockfile (and a base file or git ref) and
decides which packages are new or changed; :func:`run_gate` vets them in
parallel through an injected vet function, serves unchanged artifacts from the
:class:`~sandbox.cache.ResultCache`, and computes the exit code; the format registry
:mod:`sandbox.gate.formats` (JSON, SARIF, JUnit, Markdown) writes the result.
"""

from sandbox.gate.diff import diff_requirements, plan_gate, read_lockfile_at_ref, vet_spec
from sandbox.gate.lockfiles import (
    detect_format,
    parse_poetry_lock,
    parse_pylock,
    parse_pyproject,
    parse_requirements,
    parse_uv_lock,
    read_lockfile,
)
from sandbox.gate.models import (
    ChangeKind,
    EntryStatus,
    GateEntry,
    GateOutcome,
    GatePlan,
    GateResult,
    LockedRequirement,
    Lockfile,
    LockFormat,
    SourceKind,
)
from sandbox.gate.run import (
    GateObserver,
    PlainGateObserver,
    VetFn,
    cache_context,
    gate_exit_code,
    make_vet_fn,
    run_gate,
)

__all__ = [
    "ChangeKind",
    "EntryStatus",
    "GateEntry",
    "GateObserver",
    "GateOutcome",
    "GatePlan",
    "GateResult",
    "LockFormat",
    "LockedRequirement",
    "Lockfile",
    "PlainGateObserver",
    "SourceKind",
    "VetFn",
    "cache_context",
    "detect_format",
    "diff_requirements",
    "gate_exit_code",
    "make_vet_fn",
    "parse_poetry_lock",
    "parse_pylock",
    "parse_pyproject",
    "parse_requirements",
    "parse_uv_lock",
    "plan_gate",
    "read_lockfile",
    "read_lockfile_at_ref",
    "run_gate",
    "vet_spec",
]
