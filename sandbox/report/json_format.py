"""The versioned JSON report (schema: :class:`sandbox.models.Report`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from pydantic import TypeAdapter, ValidationError

from sandbox.errors import InputError
from sandbox.models import SCHEMA_VERSION, Event, Report


def to_json(report: Report) -> str:
    """Serialise a report; stable key order, one document."""
    return report.model_dump_json(indent=1) + "\n"


_EVENTS_AT = '\n "events": [],\n'  # where an empty event list sits in a report's JSON
_EVENT_CHUNK = 5000
_events_json = TypeAdapter(list[Event])


def write_json(report: Report, out: TextIO) -> None:
    """Write :func:`to_json`'s text to *out* with the event list serialised a few
    thousand events at a time: a big run's report is hundreds of megabytes, which
    ``to_json`` holds two or three times over while it builds the one string."""
    if not report.events:
        out.write(to_json(report))
        return
    head, found, tail = to_json(report.model_copy(update={"events": ()})).partition(_EVENTS_AT)
    if not found:  # not the layout this writer knows: the plain way
        out.write(to_json(report))
        return
    out.write(head + '\n "events": [\n')
    events = report.events
    for start in range(0, len(events), _EVENT_CHUNK):
        text = _events_json.dump_json(list(events[start : start + _EVENT_CHUNK]), indent=1).decode()
        # a list dumped alone: "[", items at one space, "]"; inside the report: one deeper
        body = "\n".join(" " + line for line in text.split("\n")[1:-1])
        out.write(body + (",\n" if start + _EVENT_CHUNK < len(events) else "\n"))
    out.write(" ],\n" + tail)


def write_json_file(report: Report, path: Path) -> None:
    """:func:`write_json` into *path* (UTF-8), opened only when written."""
    with path.open("w", encoding="utf-8") as fh:
        write_json(report, fh)


def load_report(path: Path) -> Report:
    """Read a report back; a file that is not a report gives one clear :class:`InputError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read report {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, dict) or "schema_version" not in data:
        raise InputError(f"{path} is not a pkgsandbox report (no schema_version)")
    major = str(data["schema_version"]).split(".")[0]
    if major != SCHEMA_VERSION.split(".")[0]:
        raise InputError(
            f"{path} has report schema {data['schema_version']}, this tool reads {SCHEMA_VERSION}"
        )
    try:
        return Report.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise InputError(f"{path} is not a valid report: {loc}: {first['msg']}") from exc
