"""Shared test fixtures: the real engine and sandbox image, and a vet runner."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from sandbox.cli import main
from sandbox.models import Report
from sandbox.runner.plan import resolve_recorder

pytest_plugins = ["tests.ci_skips"]

# No per-example deadline: the suite runs two workers on two cores beside containers, and
# a deadline is a timing assertion (speed targets live in benchmarks/).
settings.register_profile("pkgsandbox", deadline=None)
settings.load_profile("pkgsandbox")


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
    """Assert that a test leaves no labelled container, network or volume behind.

    Left behind = still there after the test while owned by this process, or owned
    by a process that no longer exists (a CLI subprocess of the test). Resources of
    other live processes (a concurrent run) are not ours to judge.
    """
    from sandbox.runner.engine import LABEL, LABEL_OWNER
    from sandbox.tempdirs import owner_alive, owner_label

    me = owner_label()

    def leaked() -> set[str]:
        found = set()
        # one list call (no per-container inspect that races with other runs' removals)
        for c in docker_client.api.containers(all=True, filters={"label": LABEL}):
            owner = (c.get("Labels") or {}).get(LABEL_OWNER, "")
            if owner and (owner == me or not owner_alive(owner)):
                found.add(c["Names"][0].lstrip("/"))
        for n in docker_client.networks.list(filters={"label": LABEL}):
            owner = (n.attrs.get("Labels") or {}).get(LABEL_OWNER, "")
            if owner and (owner == me or not owner_alive(owner)):
                found.add(n.name)
        return found

    def temp_dirs() -> set[str]:
        """Staging dirs owned by this process or by a dead one (a CLI subprocess of the test)."""
        import tempfile

        from sandbox.tempdirs import OWNER_FILE, owned_dirs

        found = set()
        for p in owned_dirs(Path(tempfile.gettempdir())):
            try:
                owner = (p / OWNER_FILE).read_text().strip()
            except OSError:
                continue
            if owner == me or not owner_alive(owner):
                found.add(p.name)
        return found

    before = leaked()
    tmp_before = temp_dirs()
    yield
    left = leaked() - before
    assert not left, f"resources left behind: {left}"
    # staging/fetch temp dirs: removed on every path (a concurrent run's may come and go)
    import time

    for _ in range(20):
        extra = temp_dirs() - tmp_before
        if not extra:
            break
        time.sleep(0.25)
    assert not extra, f"temp directories left behind: {extra}"


@functools.cache
def recorder() -> str:
    """The recorder this session's vets run under: ``$PKGSANDBOX_RECORDER`` (CI runs the
    integration suite once per recorder), resolved as the CLI resolves it."""
    return resolve_recorder()


def run_cli(tmp_path: Path, *args: str) -> tuple[int, Report | None]:
    """Run ``pkgsandbox vet ARGS`` in-process with a JSON report; returns (exit code, report)."""
    out = tmp_path / f"report-{len(list(tmp_path.glob('report-*.json')))}.json"
    code = main(["vet", *args, "--format", "json", "-o", str(out), "-q"])
    report = Report.model_validate(json.loads(out.read_text())) if out.exists() else None
    return code, report


def import_caught(
    tmp_path: Path, src: str, rule: str, *, fallback: bool = False, prefix: str = "rt"
) -> Report:
    """Vet a wheel whose package runs *src* (dedented) at import, under ``--recorder
    auto``: it must be malicious with *rule*, and re-vetted under strace exactly when
    *fallback* says (an eBPF run that could not name something falls back)."""
    import textwrap

    from sandbox.vet import FALLBACK_NOTE
    from tests.fixtures.builders import Randomised, build_wheel

    name = Randomised().name(prefix)
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": textwrap.dedent(src)})
    code, report = run_cli(tmp_path, str(whl), "--recorder", "auto", "--phases", "import")
    assert report is not None
    rules = {f.rule_id for f in report.findings}
    assert code == 1 and rule in rules, (code, report.verdict, rules, report.notes)
    assert any(n.startswith(FALLBACK_NOTE) for n in report.notes) == fallback, report.notes
    return report
