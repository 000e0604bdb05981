"""Report formats behind one interface: :func:`render` dispatches on :class:`OutputFormat`."""

from __future__ import annotations

from enum import Enum
from typing import NoReturn

from sandbox.models import Report


class OutputFormat(str, Enum):
    """Machine formats a report can be written in (the terminal view lives in the CLI)."""

    JSON = "json"


def assert_never(value: NoReturn) -> NoReturn:
    raise AssertionError(f"unhandled format: {value!r}")


def render(report: Report, fmt: OutputFormat) -> str:
    """The report as text in *fmt*."""
    if fmt is OutputFormat.JSON:
        from sandbox.report.json_format import to_json

        return to_json(report)
    assert_never(fmt)  # pragma: no cover
