"""Shared test fixtures: the real engine and sandbox image, and a vet runner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.cli import main
from sandbox.models import Report


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """The real Docker engine; engine tests fail (never skip) when it is missing."""
    from sandbox.runner.engine import connect

    return connect()


@pytest.fixture(scope="session")
def sandbox_image(docker_client: Any) -> Any:
    from sandbox.runner.image import ensure_image

    return ensure_image(docker_client)


@pytest.fixture()
def no_leaks(docker_client: Any) -> Iterator[None]:
    """Assert that a test leaves no labelled container, network or volume behind."""
    from sandbox.runner.engine import LABEL

    def ours() -> set[str]:
        names = {c.name for c in docker_client.containers.list(all=True, filters={"label": f"{LABEL}=run"})}
        names |= {n.name for n in docker_client.networks.list(filters={"label": LABEL})}
        names |= {v.name for v in docker_client.volumes.list(filters={"label": LABEL})}
        return names

    before = ours()
    yield
    left = ours() - before
    assert not left, f"resources left behind: {left}"


def run_cli(tmp_path: Path, *args: str) -> tuple[int, Report | None]:
    """Run ``pkgsandbox vet ARGS`` in-process with a JSON report; returns (exit code, report)."""
    out = tmp_path / f"report-{len(list(tmp_path.glob('report-*.json')))}.json"
    code = main(["vet", *args, "--format", "json", "-o", str(out), "-q"])
    report = Report.model_validate(json.loads(out.read_text())) if out.exists() else None
    return code, report
