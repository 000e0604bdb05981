"""The versioned JSON report (schema: :class:`sandbox.models.Report`)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from sandbox.errors import InputError
from sandbox.models import SCHEMA_VERSION, Report


def to_json(report: Report) -> str:
    """Serialise a report; stable key order, one document."""
    return report.model_dump_json(indent=1) + "\n"


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
