"""The vet pipeline: fetch → sandbox run → parse → classify → judge → report.

The core knows nothing of terminals: progress flows through an
:class:`~sandbox.runner.interface.Observer`.
"""

from __future__ import annotations

import bisect
import json
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker.errors
import requests.exceptions

from sandbox import __version__
from sandbox.errors import EngineError, Interrupted, PkgSandboxError
from sandbox.fetch import StagedSet, TargetEnv, fetch, parse_spec
from sandbox.judge.canary import HoneytokenSet, make_honeytokens
from sandbox.judge.classify import classify
from sandbox.judge.profiles import Profile, load_profile
from sandbox.judge.rules import evaluate, evaluate_network, incomplete_reasons
from sandbox.judge.verdict import verdict_for
from sandbox.models import (
    Event,
    Frozen,
    ImageInfo,
    Inventory,
    Lingering,
    NetworkCapture,
    Observation,
    Origin,
    Phase,
    PhaseResult,
    PhaseStatus,
    PhaseSummary,
    ProcessInfo,
    Report,
    StepResult,
    Verdict,
)
from sandbox.runner.docker_backend import DockerBackend
from sandbox.runner.engine import connect, mark_owner, sweep_temp
from sandbox.runner.image import ensure_image
from sandbox.runner.interface import AgentModule, AgentPhase, Limits, Observer, RawRun, RunOptions
from sandbox.runner.seccomp import TRACED_DENIED
from sandbox.trace.netcapture import network_capture
from sandbox.trace.strace import parse_strace_file, strace_argv

SANDBOX_USER = "dev"
SANDBOX_UID = 1000
HOME = f"/home/{SANDBOX_USER}"
PROJECT = f"{HOME}/project"
VENV = f"{PROJECT}/.venv"
STAGE_ARTIFACTS = "/stage/artifacts"
OUTPUT_TAIL = 4000


class VetOptions(Frozen):
    """Everything a vet run needs besides the spec."""

    run: RunOptions = RunOptions()
    base_image: str | None = None
    offline: bool | None = None
    profile: Profile | None = None  # None: the shipped default profile
    evidence: Path | None = None  # write an evidence bundle here
    keep: bool = False  # leave the container (running until its deadline) for inspection
    sinkhole: bool = True  # capture outbound attempts (False: a bare network-less namespace)
    capture_kib: int = 64  # client bytes kept per TCP connection


def run_options(profile: Profile, **overrides: Any) -> RunOptions:
    """RunOptions from a profile's phases and limits; non-None *overrides* win."""
    lim = profile.limits
    values: dict[str, Any] = {
        "phases": profile.phases.run,
        "timeouts": {
            Phase.INSTALL: lim.install_timeout,
            Phase.STARTUP: lim.startup_timeout,
            Phase.IMPORT: lim.import_timeout,
            Phase.EXECUTE: lim.execute_timeout,
        },
        "module_timeout": lim.module_timeout,
        "call_timeout": lim.call_timeout,
        "window": lim.window,
        "limits": Limits(memory_mb=lim.memory_mb, pids=lim.pids, cpus=lim.cpus),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return RunOptions(**values)


def install_args(staged: StagedSet) -> list[str]:
    """pip's argv (after the interpreter) for the offline install of the staged set."""
    return [
        "-m",
        "pip",
        "install",
        "--no-index",
        "--find-links",
        STAGE_ARTIFACTS,
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        f"{STAGE_ARTIFACTS}/{staged.install_target}",
    ]


def build_plan(staged: StagedSet, options: RunOptions) -> dict[str, Any]:
    """The JSON plan the in-container agent follows."""
    return {
        "user": SANDBOX_USER,
        "uid": SANDBOX_UID,
        "gid": SANDBOX_UID,
        "home": HOME,
        "project": PROJECT,
        "venv": VENV,
        "candidate": {"name": staged.candidate.name, "version": staged.candidate.version},
        "install_args": install_args(staged),
        "phases": {p.value: {"timeout": options.timeouts[p]} for p in options.phases},
        "window": options.window,
        "module_timeout": options.module_timeout,
        "call_timeout": options.call_timeout,
        "max_modules": options.max_modules,
        "output_cap": options.output_cap,
        "strace": strace_argv("{output}", denied=TRACED_DENIED),
    }


def observe(raw: RawRun) -> tuple[Observation, list[str]]:
    """Parse every trace of a raw run into one observation (pure apart from file reads)."""
    events: list[Event] = []
    processes: list[ProcessInfo] = []
    results: list[PhaseResult] = []
    notes: list[str] = []
    seq = 0
    trace_dir = Path(raw.trace_dir)
    for ap in raw.phases:
        complete = True
        lines = 0
        nbytes = 0
        phase_events: list[Event] = []
        for step in ap.steps:
            path = trace_dir / step.trace
            if not path.exists():
                complete = False
                notes.append(f"{ap.phase.value}/{step.tag}: trace missing")
                continue
            parsed = parse_strace_file(path, ap.phase, seq_start=seq)
            seq += parsed.lines + 1
            lines += parsed.lines
            nbytes += step.trace_bytes
            step_events = list(parsed.events)
            if ap.phase is Phase.EXECUTE:
                step_events = attribute_calls(step_events, step.context, ap.modules)
            phase_events.extend(step_events)
            processes.extend(parsed.processes)
            if not (parsed.complete and step.trace_complete):
                complete = False
                notes.append(f"{ap.phase.value}/{step.tag}: trace incomplete")
            if parsed.unparsed:
                notes.append(f"{ap.phase.value}/{step.tag}: {parsed.unparsed} trace line(s) not understood")
        events.extend(phase_events)
        results.append(_phase_result(ap, complete, lines, nbytes))
    harness = [tuple(raw.harness_argv[k]) for k in raw.harness_argv if k.startswith("install.")]
    events, processes = classify(events, processes, harness, VENV, PROJECT)
    inventory = Inventory.model_validate(raw.inventory) if raw.inventory else Inventory()
    obs = Observation(
        events=tuple(events),
        processes=tuple(processes),
        phases=tuple(results),
        inventory=inventory,
        home=HOME,
        venv=VENV,
    )
    return obs, notes


def attribute_calls(events: list[Event], step_context: str, calls: Sequence[AgentModule]) -> list[Event]:
    """Execute phase: tag each event with the entry point or function call that caused it
    (calls run one at a time, so the call whose [start, end] holds the event's time)."""
    if step_context:
        return [e.model_copy(update={"context": step_context}) for e in events]
    spans = sorted(
        (c.t0, c.t1 or c.t0 + c.duration, c.name)
        for c in calls
        if c.t0 and not c.name.startswith("entry point")
    )
    if not spans:
        return events
    starts = [s[0] for s in spans]
    out = []
    for e in events:
        i = bisect.bisect_right(starts, e.time) - 1
        if i >= 0 and e.time <= spans[i][1] + 0.05:
            e = e.model_copy(update={"context": f"call {spans[i][2]}"})
        out.append(e)
    return out


def _phase_result(ap: AgentPhase, complete: bool, lines: int, nbytes: int) -> PhaseResult:
    if ap.phase in (Phase.IMPORT, Phase.EXECUTE):
        steps = tuple(
            StepResult(name=m.name, status=_status(m.status), duration=m.duration, detail=m.detail)
            for m in ap.modules
        )
    else:
        steps = tuple(
            StepResult(
                name=s.tag if ap.phase is not Phase.INSTALL else "pip install",
                status=_status(s.status) if s.exit_code in (0, None) else PhaseStatus.ERROR,
                duration=0.0,
                detail=f"exit {s.exit_code}" if s.exit_code not in (0, None) else "",
            )
            for s in ap.steps
        )
    lingering = tuple(
        Lingering(
            pid=lg.pid,
            ppid=lg.ppid,
            argv=tuple(lg.argv),
            threads=lg.threads,
            status=lg.status,
            cpu=lg.cpu,
            active=lg.active,
        )
        for s in ap.steps
        for lg in s.lingering
    )
    output = "\n".join(s.output for s in ap.steps if s.output)
    problems = tuple(ap.problems) + tuple(p for s in ap.steps for p in s.problems)
    oom = sum(s.oom_kills for s in ap.steps)
    if oom:
        problems += (f"the OOM killer killed {oom} process(es) (memory limit)",)
    exit_code = ap.steps[-1].exit_code if ap.steps else None
    return PhaseResult(
        phase=ap.phase,
        status=ap.status,
        duration=ap.duration,
        exit_code=exit_code,
        trace_complete=complete,
        trace_lines=lines,
        trace_bytes=nbytes,
        steps=steps,
        lingering=lingering,
        window=max((s.window for s in ap.steps), default=0.0),
        oom_kills=oom,
        output_bytes=sum(s.output_bytes for s in ap.steps),
        output_tail=output[-OUTPUT_TAIL:],
        problems=problems,
    )


def _status(value: str) -> PhaseStatus:
    try:
        return PhaseStatus(value)
    except ValueError:
        return PhaseStatus.ERROR


def summarise(obs: Observation) -> tuple[PhaseSummary, ...]:
    """Per-phase event counts by kind and origin."""
    out = []
    for pr in obs.phases:
        evs = [e for e in obs.events if e.phase is pr.phase]
        out.append(
            PhaseSummary(
                phase=pr.phase,
                events=len(evs),
                by_kind=dict(Counter(e.kind.value for e in evs)),
                by_origin=dict(Counter(e.origin.value for e in evs)),
                processes=sum(1 for p in obs.processes if p.phase is pr.phase),
            )
        )
    return tuple(out)


def judge(
    obs: Observation,
    *,
    target: str,
    started: float,
    image: ImageInfo | None,
    staged: StagedSet | None,
    profile: Profile,
    hostname: str = "",
    notes: Iterable[str] = (),
    network: NetworkCapture | None = None,
) -> Report:
    """Findings and verdict for an observation under *profile*, as a report (with the
    sinkhole's *network* section and its rules when there is one)."""
    findings = evaluate(obs, profile) + evaluate_network(network, profile, hostname)
    findings.sort(key=lambda f: (-f.severity.rank, f.phase.order, f.rule_id))
    verdict, reason = verdict_for(findings, incomplete_reasons(obs))
    return Report(
        tool_version=__version__,
        target=target,
        started=started,
        finished=time.time(),
        profile=f"{profile.name} ({profile.digest()})",
        image=image,
        artifacts=staged.artifacts if staged else (),
        phases=obs.phases,
        summary=summarise(obs),
        processes=obs.processes,
        events=tuple(e for e in obs.events if e.origin is Origin.CANDIDATE),
        findings=tuple(findings),
        verdict=verdict,
        verdict_reason=reason,
        inventory=obs.inventory,
        hostname=hostname,
        notes=tuple(notes) + (staged.notes if staged else ()),
        network=network,
    )


def base_plan(tokens: HoneytokenSet | None = None, sinkhole: dict[str, Any] | None = None) -> dict[str, Any]:
    """The part of the plan the agent needs before the candidate is known (setup):
    with the run's honeytokens (``env``, ``home_files``) and sinkhole settings."""
    plan: dict[str, Any] = {
        "user": SANDBOX_USER,
        "uid": SANDBOX_UID,
        "gid": SANDBOX_UID,
        "home": HOME,
        "project": PROJECT,
        "venv": VENV,
    }
    if tokens is not None:
        plan.update(tokens.plan())
    if sinkhole is not None:
        plan["sinkhole"] = sinkhole
    return plan


def sinkhole_plan(options: VetOptions, rng: random.Random | None = None) -> dict[str, Any]:
    """Sinkhole settings for one run: capture bounds, and the home LAN the sandbox
    pretends to be on (random per run: a fixed address would be a fingerprint)."""
    r = rng or random.SystemRandom()
    third = r.choice([0, 1, 1, 2, 8, 10, 31, 178])
    ula = f"fd{r.randrange(256):02x}:{r.randrange(65536):x}:{r.randrange(65536):x}:{r.randrange(1, 16):x}"
    return {
        "enabled": options.sinkhole,
        "capture_bytes": max(1, options.capture_kib) * 1024,
        "net": {
            "address": f"192.168.{third}.{r.randrange(20, 230)}",
            "prefix": 24,
            "gateway": f"192.168.{third}.1",
            "address6": f"{ula}::{r.randrange(2, 65535):x}",
            "gateway6": "fe80::1",
        },
    }


def observe_network(raw: RawRun, obs: Observation, tokens: HoneytokenSet | None) -> NetworkCapture:
    """The report's network section: the sinkhole's capture, completed from the trace."""
    windows = {ap.phase: (ap.started, ap.started + ap.duration) for ap in raw.phases}
    return network_capture(Path(raw.trace_dir), obs.events, obs.processes, windows, tokens, HOME)


def vet(spec: str, options: VetOptions, observer: Observer) -> Report:
    """Vet one package spec or local artifact end to end; always cleans up.

    The fetch (host, executes nothing) runs while the sandbox container starts.
    """
    try:
        return _vet(spec, options, observer)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        # The one place engine failures that escaped a narrower handler become EngineError
        # (exit 3): callers (CLI, gate workers) never see a raw docker exception.
        raise EngineError(f"container engine error: {str(exc).splitlines()[0][:200]}") from exc


def _vet(spec: str, options: VetOptions, observer: Observer) -> Report:
    started = time.time()
    parse_spec(spec)  # bad input is reported before touching the engine
    profile = options.profile or load_profile("default")
    client = connect()
    observer.status("checking the sandbox image")
    image = ensure_image(client, base=options.base_image, offline=options.offline, log=observer.status)
    sweep_temp()  # staging dirs of runs that were killed with SIGKILL
    workdir = Path(tempfile.mkdtemp(prefix="pkgsandbox-"))
    mark_owner(workdir)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pkgsandbox-fetch")
    session = None
    staged: StagedSet | None = None
    try:
        os.chmod(workdir, 0o755)
        stage = workdir / "stage"
        stage.mkdir()
        os.chmod(stage, 0o755)
        artifacts = stage / "artifacts"
        observer.status(f"fetching {spec} (no code is executed on this host)")
        target = TargetEnv(python_version=image.python, platforms=image.platforms)
        fetched = pool.submit(fetch, spec, target, artifacts)
        # Honeytokens are unique per run (host-generated): the agent plants them in
        # setup; the candidate's environment gets the variables in every phase.
        tokens = make_honeytokens(user=SANDBOX_USER) if profile.honeytokens.enabled else None
        sinkhole = sinkhole_plan(options)
        setup_plan = {**base_plan(tokens, sinkhole), "evidence": options.evidence is not None}
        session = DockerBackend(client, image).open(stage, setup_plan, options.run, observer)
        staged = fetched.result()
        observer.status(f"staged {len(staged.artifacts)} artifact(s); candidate {staged.candidate.filename}")
        plan = {**setup_plan, **build_plan(staged, options.run), "honeytokens": profile.honeytokens.enabled}
        raw = session.run_phases(plan, observer)
        kept = session.keep() if options.keep else None
        session.close()
        observer.status("parsing traces and judging")
        obs, notes = observe(raw)
        network = observe_network(raw, obs, tokens) if options.sinkhole else None
        report = judge(
            obs,
            target=spec,
            started=started,
            image=image,
            staged=staged,
            profile=profile,
            hostname=raw.hostname,
            notes=[
                *notes,
                *(f"network: {p}" for p in (network.problems if network else ())),
                *([kept] if kept else []),
            ],
            network=network,
        )
        if options.evidence is not None:
            write_evidence(options.evidence, raw, report)
        return report
    except KeyboardInterrupt:
        finished = list(session.finished) if session is not None else []
        if session is not None:
            session.close()  # first: cleanup must happen within seconds
        raise Interrupted(
            "interrupted; sandbox resources removed",
            partial=_partial(spec, started, image, staged, profile, finished),
        ) from None
    finally:
        if session is not None:
            session.close()
        pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(workdir, ignore_errors=True)


def write_evidence(dest: Path, raw: RawRun, report: Report) -> None:
    """The evidence bundle: raw strace logs and captures per phase (``raw/``), copies of the
    files the candidate wrote or dropped (``files/<sha256>``, size-capped), the
    filesystem diff (``fsdiff.json``) and the JSON report."""
    from sandbox.report.json_format import to_json

    try:
        dest.mkdir(parents=True, exist_ok=True)
        src = Path(raw.trace_dir)
        (dest / "raw").mkdir(exist_ok=True)
        diff: dict[str, Any] = {}
        for item in sorted(src.iterdir()):
            if item.is_dir():
                shutil.copytree(item, dest / item.name, dirs_exist_ok=True)
            elif item.name.startswith("fsdiff.") and item.suffix == ".json":
                diff[item.name.split(".")[1]] = json.loads(item.read_text())
            else:
                shutil.copy2(item, dest / "raw" / item.name)
        (dest / "fsdiff.json").write_text(json.dumps(diff, indent=1))
        (dest / "report.json").write_text(to_json(report))
    except OSError as exc:
        raise PkgSandboxError(f"cannot write the evidence bundle to {dest}: {exc.strerror or exc}") from exc


def _partial(
    spec: str,
    started: float,
    image: ImageInfo,
    staged: StagedSet | None,
    profile: Profile,
    finished: list[AgentPhase],
) -> Report:
    """What an interrupted run knew: finished phases' status, no verdict but incomplete."""
    phases = tuple(_phase_result(ap, False, 0, 0) for ap in finished)
    return Report(
        tool_version=__version__,
        target=spec,
        started=started,
        finished=time.time(),
        profile=f"{profile.name} ({profile.digest()})",
        image=image,
        artifacts=staged.artifacts if staged else (),
        phases=phases,
        summary=(),
        processes=(),
        events=(),
        findings=(),
        verdict=Verdict.INCOMPLETE,
        verdict_reason="interrupted before the run finished",
        notes=("partial report: traces of an interrupted run are not collected",),
    )
