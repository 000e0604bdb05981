"""Why a run could not look at everything, each reason naming its cause.

A phase that failed names the last traceback line (or pip's last ``ERROR:`` line)
of its failing step's output; an import phase in which every module failed to
import is not a completed look either (nothing of the candidate ran).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from sandbox.models import DEFAULT_PASS, Observation, Phase, PhaseResult, PhaseStatus

# The last line of a Python traceback: "ModuleNotFoundError: No module named 'x'",
# "EOFError: EOF when reading a line", "OSError: [Errno 2] …", "SystemExit: 1".
_TRACEBACK_LAST = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)\b(?::.*)?)$")
# pip's own verdict: "ERROR: No matching distribution found for requests"
_PIP_ERROR = re.compile(r"^\s*(ERROR: .+)$")
MAX_CAUSE = 200
# ENOSPC as pip, Python and the C library word it: "OSError: [Errno 28] No space left on device"
_ENOSPC = re.compile(r"\[Errno 28\]|No space left on device|ENOSPC")
OUT_OF_SPACE = "out of space in the sandbox"


def last_error_line(text: str) -> str:
    """The last traceback line of *text*, else pip's last ``ERROR:`` line, else ""."""
    traceback_line = pip_line = ""
    for line in text.splitlines():
        m = _TRACEBACK_LAST.match(line)
        if m:
            traceback_line = m.group(1).strip()
            continue
        m = _PIP_ERROR.match(line)
        if m:
            pip_line = m.group(1).strip()
    return (traceback_line or pip_line)[:MAX_CAUSE]


def phase_cause(pr: PhaseResult) -> str:
    """The cause of a failed phase: its failing step's last error line, else a problem;
    named "out of space in the sandbox" first when the phase ran into ENOSPC."""
    cause = _phase_cause(pr)
    texts = [
        cause,
        pr.output_tail,
        *pr.problems,
        *(s.detail for s in pr.steps if s.status is not PhaseStatus.OK),
    ]
    if any(_ENOSPC.search(t) for t in texts if t):
        return f"{OUT_OF_SPACE} ({cause or 'ENOSPC'})"[: MAX_CAUSE + len(OUT_OF_SPACE) + 3]
    return cause


def _phase_cause(pr: PhaseResult) -> str:
    failing = [s for s in pr.steps if s.status is not PhaseStatus.OK and s.detail]
    for step in reversed(failing):
        cause = last_error_line(step.detail)
        if cause:
            return cause
    cause = last_error_line(pr.output_tail)
    if cause:
        return cause
    if pr.problems:
        return pr.problems[-1][:MAX_CAUSE]
    if failing:
        return f"{failing[-1].name}: {failing[-1].detail}"[:MAX_CAUSE]
    if pr.exit_code not in (0, None):
        return f"exit {pr.exit_code}"
    return ""


def incomplete_reasons(obs: Observation, best_effort: Collection[Phase] = ()) -> list[str]:
    """Why the run could not look at everything (empty when it could). A phase in
    *best_effort* (the default profile's calls) that failed or timed out is not a
    missed look; its lost trace still is."""
    reasons = []
    for pr in obs.phases:
        if pr.status is not PhaseStatus.OK and pr.phase not in best_effort:
            cause = phase_cause(pr)
            reasons.append(f"{pr.phase.value} phase {pr.status.value}" + (f": {cause}" if cause else ""))
        elif pr.phase is Phase.IMPORT and pr.steps:
            tried = [s for s in pr.steps if s.status is not PhaseStatus.SKIPPED]
            if tried and all(s.status is PhaseStatus.ERROR for s in tried):
                cause = next((last_error_line(s.detail) or s.detail for s in tried if s.detail), "")
                reasons.append(
                    f"import phase: every module failed to import ({len(tried)})"
                    + (f": {cause[:MAX_CAUSE]}" if cause else "")
                )
        if pr.named_capped:
            # the list puts top-level and entry-point modules first: padding cannot push
            # them out, only more of them than the cap can
            reasons.append(
                f"import phase: the module cap left out {pr.named_capped} top-level or entry-point "
                f"module(s) ({pr.modules_capped} module(s) not imported)"
            )
        if not pr.trace_complete:
            reasons.append(f"{pr.phase.value} trace incomplete")
    return reasons


def capped_modules(phases: Iterable[PhaseResult]) -> int:
    """How many of the candidate's modules the default pass's import cap left out (the
    deepest: every top-level and entry-point module was imported, or the run is
    incomplete): a clean verdict says so, and the static second opinion reads them."""
    return sum(
        pr.modules_capped
        for pr in phases
        if pr.phase is Phase.IMPORT and pr.pass_name == DEFAULT_PASS and not pr.named_capped
    )
