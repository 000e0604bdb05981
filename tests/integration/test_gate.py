"""The gate end to end with the real engine: a bumped package that turns malicious fails the
gate, and a re-run is served from the cache without creating a single sandbox container.

The fixture repository's wheels are built by the test and are defanged (TEST-NET
addresses only); they are only ever run inside the sandbox.
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from sandbox.cache import ResultCache
from sandbox.errors import ExitCode
from sandbox.gate import EntryStatus, GateResult, cache_context, make_vet_fn, plan_gate, run_gate
from sandbox.gate.formats.junit import to_junit
from sandbox.gate.formats.markdown import to_markdown
from sandbox.gate.formats.sarif import to_sarif
from sandbox.models import Phase, Report, Verdict
from sandbox.runner.engine import LABEL, LABEL_OWNER
from sandbox.runner.interface import RunOptions
from sandbox.runner.plan import resolve_recorder
from sandbox.tempdirs import owner_label
from sandbox.vet import VetOptions
from tests.fixtures.builders import Randomised, build_wheel, exfil_source, pth_line
from tests.unit.test_formats import validate_sarif

pytestmark = pytest.mark.usefixtures("sandbox_image")


class CountingVet:
    """The real vet, counting its calls."""

    def __init__(self, options: VetOptions) -> None:
        self.inner = make_vet_fn(options)
        self.calls: list[str] = []

    def __call__(self, spec: str) -> Report:
        self.calls.append(spec)
        return self.inner(spec)


def sandbox_containers_created(client: Any, since: float, until: float) -> list[str]:
    """Sandbox containers this process created between *since* and *until* (engine events)."""
    filters = {
        "type": "container",
        "event": "create",
        "label": [f"{LABEL}=run", f"{LABEL_OWNER}={owner_label()}"],
    }
    events = client.events(since=int(since), until=int(until) + 1, filters=filters, decode=True)
    return [e.get("id", "") for e in events]


def gate(
    repo: Path, cache: ResultCache, image: Any, base: str = "requirements-base.txt"
) -> tuple[GateResult, CountingVet]:
    options = VetOptions(run=RunOptions(recorder=resolve_recorder()))
    vet = CountingVet(options)
    plan = plan_gate(repo / "requirements.txt", base=repo / base)
    result = run_gate(plan, vet_fn=vet, workers=2, cache=cache, cache_context=cache_context(options, image))
    return result, vet


def test_bump_to_malicious_fails_then_reruns_come_from_the_cache(
    tmp_path: Path, docker_client: Any, sandbox_image: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = Randomised()
    alpha, beta = r.name("alpha"), r.name("beta")
    cred, host, port = r.credential(), r.address(), r.port()
    repo = tmp_path / "repo"
    pkgs = repo / "pkgs"
    pkgs.mkdir(parents=True)
    a10 = build_wheel(pkgs, alpha, "1.0", {f"{alpha}/__init__.py": "X = 1\n"})
    a11 = build_wheel(pkgs, alpha, "1.1", {f"{alpha}/__init__.py": "import json\nX = 2\n"})
    b10 = build_wheel(pkgs, beta, "1.0", {f"{beta}/__init__.py": "Y = 1\n"})
    b11 = build_wheel(
        pkgs,
        beta,
        "1.1",
        {
            f"{beta}/__init__.py": "Y = 2\n",
            f"{beta}_init.pth": pth_line(exfil_source(cred, host, port)),
        },
    )
    (repo / "requirements-base.txt").write_text(f"# base\n./pkgs/{a10.name}\n./pkgs/{b10.name}\n")
    (repo / "requirements.txt").write_text(f"# head\n./pkgs/{a11.name}\n./pkgs/{b11.name}\n")
    monkeypatch.chdir(repo)
    cache = ResultCache(tmp_path / "cache" / "results.sqlite")

    # 1. cold: both bumped packages are vetted in the sandbox; beta 1.1 exfiltrates at startup
    t0 = time.time()
    cold, vet = gate(repo, cache, sandbox_image)
    created = sandbox_containers_created(docker_client, t0, time.time())
    assert sorted(vet.calls) == sorted([str(pkgs / a11.name), str(pkgs / b11.name)])
    # the counter sees real sandbox runs (so its zeros below mean something)
    assert len(created) == 2, (created, [(o.entry.name, o.status, o.detail) for o in cold.outcomes])
    assert cold.exit_code is ExitCode.FINDINGS
    outcomes = {o.entry.name: o for o in cold.outcomes}
    assert outcomes[alpha].verdict is Verdict.CLEAN, (
        outcomes[alpha].report and outcomes[alpha].report.findings
    )
    assert outcomes[beta].verdict is Verdict.MALICIOUS and outcomes[beta].entry.previous == "1.0"

    sarif_path = tmp_path / "gate.sarif"
    sarif_path.write_text(to_sarif(cold, root=repo))
    log = json.loads(sarif_path.read_text())  # schema-validated at the end (needs jsonschema)
    results = log["runs"][0]["results"]
    outbound = [x for x in results if x["ruleId"] == "PS002"]
    assert outbound, [x["ruleId"] for x in results]
    assert any(
        ev.get("destination") == f"{host}:{port}" for x in outbound for ev in x["properties"]["evidence"]
    )
    loc = outbound[0]["locations"][0]
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == "requirements.txt"
    assert loc["physicalLocation"]["region"]["startLine"] == 3
    assert loc["logicalLocations"][0]["name"] == f"{beta}==1.1"
    creds = [x for x in results if x["ruleId"] == "PS001"]
    assert any(
        (ev.get("path") or "").endswith("/" + cred) for x in creds for ev in x["properties"]["evidence"]
    )

    junit = ET.fromstring(to_junit(cold))
    cases = {c.get("name"): c for c in junit.iter("testcase")}
    failure = cases[f"{beta}==1.1 (1.0 -> 1.1)"].find("failure")
    assert failure is not None and failure.get("type") == "malicious"
    assert f"{host}:{port}" in (failure.text or "")
    assert cases[f"{alpha}==1.1 (1.0 -> 1.1)"].find("failure") is None
    assert "🔴 malicious" in to_markdown(cold)

    # 2. the same gate again: every verdict from the cache, no sandbox, still exit 1
    time.sleep(1.1)  # engine events have one-second resolution
    t1 = time.time()
    warm, vet = gate(repo, cache, sandbox_image)
    assert vet.calls == []
    assert sandbox_containers_created(docker_client, t1, time.time()) == []
    assert {o.status for o in warm.outcomes} == {EntryStatus.CACHED}
    assert warm.exit_code is ExitCode.FINDINGS

    # 3. the malicious bump is dropped; the remaining change (alpha 1.1) was vetted before:
    #    exit 0, and still no container
    (repo / "requirements.txt").write_text(f"# head\n./pkgs/{a11.name}\n./pkgs/{b10.name}\n")
    time.sleep(1.1)
    t2 = time.time()
    clean, vet = gate(repo, cache, sandbox_image)
    elapsed = time.time() - t2
    assert vet.calls == []
    assert sandbox_containers_created(docker_client, t2, time.time()) == []
    assert clean.exit_code is ExitCode.CLEAN
    assert [(o.entry.name, o.status, o.verdict) for o in clean.outcomes] == [
        (alpha, EntryStatus.CACHED, Verdict.CLEAN)
    ]
    assert json.loads(clean.model_dump_json())["exit_code"] == 0
    print(f"warm gate: {elapsed:.2f}s")  # informative; the assertion is the container count
    validate_sarif(sarif_path.read_text())  # last: it skips when jsonschema is missing


def test_what_could_not_be_vetted_fails_unless_allowed(tmp_path: Path, sandbox_image: Any) -> None:
    """An import that outlives its phase timeout (incomplete), then a package the time budget
    never reached (not vetted): exit 3; with allow_incomplete: exit 0; neither is cached."""
    r = Randomised()
    sleepy, later = r.name("sleepy"), r.name("later")
    pkgs = tmp_path / "pkgs"
    pkgs.mkdir()
    hang = build_wheel(pkgs, sleepy, "1.0", {f"{sleepy}/__init__.py": "import time\ntime.sleep(60)\n"})
    fine = build_wheel(pkgs, later, "1.0", {f"{later}/__init__.py": "X = 1\n"})
    (tmp_path / "requirements.txt").write_text(f"./pkgs/{hang.name}\n./pkgs/{fine.name}\n")
    timeouts = {Phase.INSTALL: 300.0, Phase.STARTUP: 60.0, Phase.IMPORT: 4.0}
    options = VetOptions(
        run=RunOptions(timeouts=timeouts, module_timeout=3.0, window=1.0, recorder=resolve_recorder())
    )
    cache = ResultCache(tmp_path / "results.sqlite")
    ctx = cache_context(options, sandbox_image)
    plan = plan_gate(tmp_path / "requirements.txt")
    results = []
    for allow in (False, True):
        vet = CountingVet(options)
        # one worker and a 1 s budget: the first vet starts, the second never does
        result = run_gate(
            plan, vet_fn=vet, workers=1, max_time=1.0, cache=cache, cache_context=ctx, allow_incomplete=allow
        )
        assert vet.calls == [str(pkgs / hang.name)]  # incomplete results are not cached: vetted again
        results.append(result)
    strict, allowed = results
    first, second = strict.outcomes
    assert first.status is EntryStatus.VETTED and first.verdict is Verdict.INCOMPLETE
    assert second.status is EntryStatus.NOT_VETTED and "--max-time budget of 1s" in second.detail
    assert strict.exit_code is ExitCode.SANDBOX
    assert allowed.exit_code is ExitCode.CLEAN
    junit = ET.fromstring(to_junit(strict))
    assert len(junit.findall("testsuite/testcase/error")) == 2
    sarif_text = to_sarif(strict)
    assert {x["ruleId"] for x in json.loads(sarif_text)["runs"][0]["results"]} == {"PSG001"}
    validate_sarif(sarif_text)
