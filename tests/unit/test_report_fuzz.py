"""The report and baseline loaders: garbage in, one clean InputError out, never a crash."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.errors import InputError
from sandbox.judge.baseline import load_baseline
from sandbox.report.json_format import load_report

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_loader_never_crashes_on_bytes(tmp_path: Path, data: bytes) -> None:
    f = tmp_path / "r.json"
    f.write_bytes(data)
    for load in (load_report, load_baseline):
        with contextlib.suppress(InputError):
            load(f)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values, version=st.sampled_from(["1.0", "1.3", "2.0", 1, None]))
def test_loader_never_crashes_on_json(tmp_path: Path, value: object, version: object) -> None:
    f = tmp_path / "r.json"
    doc = {"schema_version": version, "payload": value} if isinstance(value, dict) else value
    f.write_text(json.dumps(doc))
    for load in (load_report, load_baseline):
        with contextlib.suppress(InputError):
            load(f)
