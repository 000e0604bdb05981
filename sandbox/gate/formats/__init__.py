"""The one registry of machine output formats, for ``vet`` and ``gate`` alike.

:class:`OutputFormat` names every format; :meth:`OutputFormat.to_format` is the
only dispatch, exhaustive (it ends in :func:`assert_never`, so mypy flags a member
without a renderer). A renderer takes a gate result, one report or a list of
reports: plain reports are wrapped as a gate result by
:func:`~sandbox.gate.formats.summary.as_result` where the format needs one.

These live under the gate because they render what the gate decides; a report
never imports the gate (the terminal and HTML views of one report are in
:mod:`sandbox.report` and :mod:`sandbox.ui`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import NoReturn

from sandbox.gate.formats.junit import to_junit
from sandbox.gate.formats.markdown import to_markdown
from sandbox.gate.formats.sarif import to_sarif
from sandbox.gate.formats.summary import as_result
from sandbox.gate.models import GateResult
from sandbox.models import Report
from sandbox.report.json_format import to_json

Renderable = GateResult | Report | Sequence[Report]
Renderer = Callable[[Renderable, "Path | None"], str]


def assert_never(value: NoReturn) -> NoReturn:
    """Unreachable when every member is handled (mypy checks it statically)."""
    raise AssertionError(f"unhandled format: {value!r}")


class OutputFormat(str, Enum):
    """Machine formats a report or a gate result can be written in (the terminal view is the CLI's)."""

    JSON = "json"
    SARIF = "sarif"
    JUNIT = "junit"
    MARKDOWN = "markdown"

    def to_format(self) -> Renderer:
        """The renderer of this format."""
        if self is OutputFormat.JSON:
            return _json
        if self is OutputFormat.SARIF:
            return _sarif
        if self is OutputFormat.JUNIT:
            return _junit
        if self is OutputFormat.MARKDOWN:
            return _markdown
        assert_never(self)  # pragma: no cover


# What each command offers (`vet` also has its terminal summary, the default).
VET_FORMATS = (OutputFormat.JSON,)
GATE_FORMATS = (OutputFormat.SARIF, OutputFormat.JUNIT, OutputFormat.MARKDOWN, OutputFormat.JSON)


def render(value: Renderable, fmt: OutputFormat, *, root: Path | None = None) -> str:
    """*value* as text in *fmt*; *root* makes SARIF file locations repository-relative."""
    return fmt.to_format()(value, root)


def _json(value: Renderable, root: Path | None) -> str:
    if isinstance(value, Report):
        return to_json(value)
    return as_result(value).model_dump_json(indent=1) + "\n"


def _sarif(value: Renderable, root: Path | None) -> str:
    return to_sarif([value] if isinstance(value, Report) else value, root=root)


def _junit(value: Renderable, root: Path | None) -> str:
    return to_junit([value] if isinstance(value, Report) else value)


def _markdown(value: Renderable, root: Path | None) -> str:
    return to_markdown([value] if isinstance(value, Report) else value)
