"""The vet pipeline, orchestration only: fetch → sandbox run → observe → judge → report.

The pieces live behind seams: the :class:`~sandbox.runner.interface.Sandbox` runs the
phases (Docker and strace today; tests replay recorded runs), :mod:`sandbox.runner.plan`
says what to run, :mod:`sandbox.trace.observe` turns traces into an observation and
:mod:`sandbox.judge.report` judges it. Progress flows through an
:class:`~sandbox.runner.interface.Observer`: the core knows nothing of terminals.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import docker.errors
import requests.exceptions

from sandbox.agent.protocol import PROBES_NAME, SANDBOX_USER, Plan, literal_setup_requires
from sandbox.errors import EngineError, InputError, Interrupted, PkgSandboxError, RecorderUnavailable
from sandbox.fetch import StagedSet, TargetEnv, fetch, parse_spec
from sandbox.fetch.archive import setup_files
from sandbox.fetch.pip import kill_running
from sandbox.fetch.rounds import RoundFetcher
from sandbox.fetch.spec import SpecKind
from sandbox.judge.honeytokens import make_honeytokens
from sandbox.judge.profiles import Profile, load_profile
from sandbox.judge.report import judge, partial_report, with_static_opinion
from sandbox.judge.static import write_pass_hint
from sandbox.models import DEFAULT_PASS, ArtifactKind, Frozen, Origin, Phase, Report, Verdict
from sandbox.report.evidence import write_evidence
from sandbox.report.json_format import write_json_file
from sandbox.runner.ebpf_program import STRLEN
from sandbox.runner.interface import AgentPhase, Observer, RunOptions, Sandbox, Session
from sandbox.runner.ledger import Reservation, admit
from sandbox.runner.plan import AGENT_ONLY, base_plan, build_plan, passes_plan, sinkhole_plan
from sandbox.runner.sizing import staged_room
from sandbox.tempdirs import owned_tempdir, sweep_temp
from sandbox.trace.ebpf import CUT, probe_hint
from sandbox.trace.observe import observe, observe_network, phase_result


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


def vet(spec: str, options: VetOptions, observer: Observer, sandbox: Sandbox | None = None) -> Report:
    """Vet one package spec or local artifact end to end in *sandbox* (by default the
    Docker sandbox, connected here); always cleans up.

    The fetch (host, executes nothing) runs while the sandbox starts.
    """
    try:
        parse_spec(spec)  # bad input is reported before touching the engine
        if sandbox is None:
            from sandbox.runner.docker_backend import DockerSandbox

            sandbox = DockerSandbox.connect(
                base_image=options.base_image, offline=options.offline, observer=observer
            )
        return _vet_recorded(spec, options, observer, sandbox)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        # The one place engine failures that escaped a narrower handler become EngineError
        # (exit 3): callers (CLI, gate workers) never see a raw docker exception.
        raise EngineError(f"container engine error: {str(exc).splitlines()[0][:200]}") from exc


# notes of an eBPF run that did not record everything: lost events, no proof of the
# attach, records not understood (a forged separator), the recorder's own failure
# (trace/observe.py _ebpf_steps, docker_backend.py) and cut paths (_with_cut_note)
_SHORT_TRACE = "eBPF recorder"
FALLBACK_NOTE = "recorder: strace, chosen by auto"  # starts the note of a vet auto sent to strace


def _vet_recorded(spec: str, options: VetOptions, observer: Observer, sandbox: Sandbox) -> Report:
    """:func:`_vet`; when ``auto`` chose eBPF and the recorder fell short (it could not
    attach: a host has room for about three at once; it lost events; a record did not
    parse; it read only part of a candidate's path) and the run proved nothing
    malicious, the release is vetted again under strace: a whole look, not an
    incomplete. The strace report says why in its notes."""
    run = options.run
    if not (run.recorder == "ebpf" and run.recorder_auto):
        return _vet(spec, options, observer, sandbox)
    first: Report | None = None
    before = _listing(options.evidence)
    try:
        first = _vet(spec, options, observer, sandbox)
        why = next((n for n in first.notes if n.startswith(_SHORT_TRACE)), None)
        if why is None or first.verdict is Verdict.MALICIOUS:
            return first
    except RecorderUnavailable as exc:
        why = exc.message
    observer.status(f"{why}: vetting again under strace")
    if options.evidence is not None:
        _set_aside(options.evidence, before)
    strace = options.model_copy(
        update={"run": run.model_copy(update={"recorder": "strace", "recorder_auto": False})}
    )
    report = _vet(spec, strace, observer, sandbox)
    note = f"{FALLBACK_NOTE} after the eBPF run could not record everything ({why})"[:400]
    if first is not None and first.verdict is Verdict.SUSPICIOUS and report.verdict.rank < first.verdict.rank:
        # strace shows a tracer: a package can behave under eBPF, cut a path to force
        # the second look, and sleep through it; what the eBPF run saw still stands
        seen = f"the strace run was {report.verdict.value}: the eBPF run's findings stand"
        report = first.model_copy(update={"notes": (*first.notes, note, seen)})
    else:
        report = report.model_copy(update={"notes": (*report.notes, note)})
    if options.evidence is not None:
        write_json_file(report, options.evidence / "report.json")  # the answer given, with its notes
    return report


EBPF_RUN_DIR = "ebpf-run"  # in an evidence bundle: the bundle of the eBPF run auto set aside


def _listing(evidence: Path | None) -> set[str]:
    try:
        return {p.name for p in evidence.iterdir()} if evidence is not None else set()
    except OSError:
        return set()


def _set_aside(evidence: Path, before: set[str]) -> None:
    """Move what the eBPF run wrote into *evidence* (not what was there *before*) to its
    own folder: the strace run's bundle takes the top, the first look stays beside it."""
    aside = evidence / EBPF_RUN_DIR
    try:
        aside.mkdir(exist_ok=True)
        for name in _listing(evidence) - before - {EBPF_RUN_DIR}:
            (evidence / name).rename(aside / name)
    except OSError as exc:
        raise PkgSandboxError(f"cannot set the eBPF run's evidence aside in {aside}: {exc}") from exc


def _vet(spec: str, options: VetOptions, observer: Observer, sandbox: Sandbox) -> Report:
    started = time.time()
    profile = options.profile or load_profile("default")
    image = sandbox.image
    sweep_temp()  # staging dirs of runs that were killed with SIGKILL
    workdir = owned_tempdir("run", neutral=True)  # its stage/ is a bind mount the candidate sees
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pkgsandbox-fetch")
    session: Session | None = None
    rounds: RoundFetcher | None = None
    staged: StagedSet | None = None
    closing: Future[None] | None = None
    reservation: Reservation | None = None
    try:
        os.chmod(workdir, 0o755)
        stage = workdir / "stage"
        stage.mkdir()
        os.chmod(stage, 0o755)
        observer.status(f"fetching {spec} (no code is executed on this host)")
        target = TargetEnv.for_image(image)
        fetched = pool.submit(fetch, spec, target, stage / "artifacts")
        # a local sdist's literal setup_requires: fetched while the sandbox starts (the
        # first round, before its legacy build, then waits for little or nothing)
        rounds = _early_rounds(spec, target, stage)
        # Honeytokens are unique per run (host-generated): the agent plants them in
        # setup; the candidate's environment gets the variables in every phase.
        tokens = make_honeytokens(user=SANDBOX_USER) if profile.honeytokens.enabled else None
        setup = base_plan(tokens, sinkhole_plan(options.sinkhole, options.capture_kib))
        setup["evidence"] = options.evidence is not None
        setup["passes"] = passes_plan(options.run, tokens)
        session = sandbox.open(stage, setup, options.run, observer)
        staged = fetched.result()
        observer.status(f"staged {len(staged.artifacts)} artifact(s); candidate {staged.candidate.filename}")
        room = staged_room(staged, stage / "artifacts", options.run.limits, sandbox.engine_memory)
        if room.grown or not room.fits:
            # The sandbox started with the profile's limits while the fetch ran (the common
            # case: the closure fits them); a bigger closure gets a fresh one with room.
            session.close()
        reservation, cannot = admit(
            room, sandbox.engine_memory, wait=options.run.timeouts[Phase.INSTALL], status=observer.status
        )
        if cannot:  # say how much it needs rather than run into ENOSPC
            report = partial_report(spec, started, image, staged, profile, (), reason=cannot, notes=())
            return with_static_opinion(report, stage / "artifacts" / staged.candidate.filename, profile)
        if room.grown:
            options = options.model_copy(update={"run": room.options(options.run)})
            session = sandbox.open(stage, setup, options.run, observer)
        plan: Plan = {**setup, **build_plan(staged, options.run)}
        plan["honeytokens"] = profile.honeytokens.enabled
        if rounds is None:
            rounds = RoundFetcher(target, stage, staged.candidate.name)
            if staged.candidate.kind is ArtifactKind.SDIST:
                sdist = stage / "artifacts" / staged.candidate.filename
                rounds.prefetch(literal_setup_requires(*setup_files(sdist)))
        plan["rounds"] = rounds.plan()
        # scanned while install runs; the agent waits for it before it decides on the
        # Windows pass (obfuscated or exfiltrating code is often gated on os.name) and
        # the ci pass (the sources name a CI job's variable)
        hinted = {
            name: name in plan.get("passes", {}) and options.run.passes.get(name) == "auto"
            for name in ("windows", "ci", "time")
        }
        for name in (n for n, on in hinted.items() if on):
            plan["passes"][name]["static_hint"] = True
        if hinted["windows"] and not profile.allow.network:
            # a hint's Windows pass is skipped when the default pass already sent what the
            # judge keeps HIGH (agent/passes.py sent_out); with allowed destinations the
            # agent cannot tell a finding from an allowed request, so it always runs
            plan["passes"]["windows"]["skip_if_sent"] = True
        if any(hinted.values()):
            artifact = stage / "artifacts" / staged.candidate.filename
            pool.submit(
                write_pass_hint,
                artifact,
                stage,
                windows=hinted["windows"],
                ci=hinted["ci"],
                time=hinted["time"],
            )
        # eBPF: the trace is on the host, so the host tells the agent whether the default
        # pass probed for a sandbox (the time pass's trigger), between the passes
        probes = (
            _probe_handler(stage)
            if options.run.recorder == "ebpf" and "time" in plan.get("passes", {})
            else None
        )
        raw = session.run_phases(plan, observer, on_need=_need_handler(rounds, observer), on_result=probes)
        kept = session.keep() if options.keep else None
        # The container goes away (~0.3 s of engine work) while the host judges; the
        # finally block waits for it, so nothing outlives the run.
        closing = pool.submit(session.close)
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
                *([room.note()] if room.grown else []),
                *notes,
                *(f"network: {p}" for p in (network.problems if network else ())),
                *([kept] if kept else []),
            ],
            network=network,
            rounds=rounds.rounds,
            extra_artifacts=rounds.artifacts,
        )
        if options.run.recorder == "ebpf":
            report = _with_cut_note(report)
        report = with_static_opinion(report, stage / "artifacts" / staged.candidate.filename, profile)
        if options.evidence is not None:
            write_evidence(options.evidence, raw, report)
        return report
    except KeyboardInterrupt:
        kill_running()  # a fetch thread's pip: the interpreter's exit would wait for it
        finished = list(session.finished) if session is not None else []
        if session is not None:
            session.close()  # first: cleanup must happen within seconds
        phases = [phase_result(ap, False, 0, 0) for ap in finished]
        raise Interrupted(
            "interrupted; sandbox resources removed",
            partial=partial_report(spec, started, image, staged, profile, phases),
        ) from None
    finally:
        if rounds is not None:
            rounds.close()  # a prefetch still running: its pip killed, its files removed
        if closing is not None:
            wait([closing])  # the removal started while judging; its errors surface below
        if session is not None:
            session.close()
        if reservation is not None:
            reservation.release()
        pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(workdir, ignore_errors=True)


def _early_rounds(spec: str, target: TargetEnv, stage: Path) -> RoundFetcher | None:
    """For a local sdist: its rounds' fetcher, already fetching the literal
    ``setup_requires`` (read in memory from the archive; nothing is run here)."""
    try:
        parsed = parse_spec(spec)
    except InputError:
        return None  # the fetch reports it
    if parsed.kind is not SpecKind.SDIST or not Path(parsed.path).is_file():
        return None
    rounds = RoundFetcher(target, stage, parsed.name)
    rounds.prefetch(literal_setup_requires(*setup_files(Path(parsed.path))))
    return rounds


def _with_cut_note(report: Report) -> Report:
    """*report* with a note when the eBPF recorder read only part of a path of the
    candidate's: its start (a directory fd passed over ``SCM_RIGHTS``)
    or its end (padding like ``/./././`` can push ``.ssh/id_rsa`` or
    ``bin/sh`` past it); such a run is never clean: not a whole look."""
    cut = [
        e
        for e in report.events
        # paths only: a long argument (pip's own `python -c <shim>` for a legacy
        # setup.py) hides nothing, since every exec it leads to is recorded with its path
        if e.origin is Origin.CANDIDATE and (CUT in (e.path or "") or CUT in (e.path2 or ""))
    ]
    if not cut:
        return report
    first = cut[0]
    note = (
        f"eBPF recorder read only part of {len(cut)} path(s) (cut at {STRLEN} bytes, "
        "or under a directory fd it never saw opened) "
        f"of the candidate, first in {first.phase.value}: {first.syscall} "
        f"{(first.path or first.path2 or '')[:120]!r}"
    )
    update: dict[str, Any] = {"notes": (*report.notes, note)}
    if report.verdict is Verdict.CLEAN:
        update |= {"verdict": Verdict.INCOMPLETE, "verdict_reason": note}
    return report.model_copy(update=update)


def _probe_handler(stage: Path) -> Callable[[AgentPhase, Path | None], None]:
    """After the default pass's import, ``stage/probes.json`` for the agent: whether its
    start-up or import looked for a sandbox, from the live eBPF trace (always written:
    the agent waits for it before it decides on the time pass)."""
    since: list[int] = []

    def on_result(ap: AgentPhase, trace: Path | None) -> None:
        if ap.pass_name != DEFAULT_PASS or trace is None:
            return
        starts = [s.start_ns for s in ap.steps if s.start_ns]
        if ap.phase is Phase.STARTUP and starts:
            since.append(min(starts))
        if ap.phase is not Phase.IMPORT:
            return
        hint = ""
        try:
            hint = probe_hint(trace.read_bytes().decode("utf-8", "backslashreplace"), min(since + starts))
        except (OSError, ValueError):
            hint = ""
        finally:
            tmp = stage / f".{PROBES_NAME}.tmp"
            tmp.write_text(json.dumps({"hint": hint}))
            tmp.chmod(AGENT_ONLY)
            tmp.replace(stage / PROBES_NAME)  # atomic: the agent never reads half of it

    return on_result


def _need_handler(rounds: RoundFetcher, observer: Observer) -> Callable[[dict[str, Any]], None]:
    """Answers the agent's ``need`` messages (always: the agent must never wait in vain)."""

    def on_need(msg: dict[str, Any]) -> None:
        wanted = ", ".join([*msg.get("modules", []), *msg.get("requirements", [])])
        observer.status(f"round {msg.get('round')}: fetching {wanted} (wheels only, nothing runs here)")
        try:
            rounds.answer(msg)
        except (PkgSandboxError, OSError, ValueError) as exc:
            rounds.fail(msg, f"{type(exc).__name__}: {exc}")

    return on_need
