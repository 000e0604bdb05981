"""Raw run → observation: parse every step's trace, attribute, classify (pure apart
from reading the trace files)."""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from pathlib import Path

from sandbox.agent.protocol import HOME, PROJECT, SANDBOX_UID, SETPRIV, VENV, privilege_drop
from sandbox.eventrows import relabel_owned, replace_event
from sandbox.judge.classify import classify
from sandbox.judge.honeytokens import HoneytokenSet
from sandbox.judge.hooks import untrust_hooked_harness
from sandbox.models import (
    DEFAULT_PASS,
    Event,
    FsChange,
    Inventory,
    Lingering,
    NetworkCapture,
    Observation,
    Phase,
    PhaseResult,
    PhaseStatus,
    ProcessInfo,
    StepResult,
)
from sandbox.runner.interface import AgentModule, AgentPhase, RawRun
from sandbox.trace.ebpf import StepWindow, parse_ebpf
from sandbox.trace.netcapture import network_capture
from sandbox.trace.strace import ParsedTrace, parse_strace_file

OUTPUT_TAIL = 4000


def observe(raw: RawRun) -> tuple[Observation, list[str]]:
    """Parse every trace of a raw run into one observation, with notes on what was
    missing or not understood."""
    events: list[Event] = []
    processes: list[ProcessInfo] = []
    results: list[PhaseResult] = []
    notes: list[str] = []
    seq = 0
    trace_dir = Path(raw.trace_dir)
    recorded = _ebpf_steps(raw, notes) if raw.recorder == "ebpf" else None
    if raw.runtime == "runsc":
        notes.append(
            "runtime: runsc (gVisor's user-space kernel); recorder: strace inside it; no sinkhole "
            "(gVisor has no veth or NAT): connection attempts are recorded, their payloads not captured"
        )
    for ap in raw.phases:
        complete = True
        lines = 0
        nbytes = 0
        phase_events: list[Event] = []
        for step in ap.steps:
            if recorded is not None:
                found, ok = recorded
                prefix = "" if ap.pass_name == DEFAULT_PASS else f"{ap.pass_name}."
                parsed_or_none = found.get(f"{prefix}{ap.phase.value}.{step.tag}")
                if parsed_or_none is None or not ok:
                    complete = False
                if parsed_or_none is None:
                    notes.append(f"{_label(ap)}/{step.tag}: no eBPF records for this step")
                    continue
                parsed = parsed_or_none.model_copy(update={"events": _renumber(parsed_or_none.events, seq)})
            else:
                path = trace_dir / step.trace
                if not path.exists():
                    complete = False
                    notes.append(f"{_label(ap)}/{step.tag}: trace missing")
                    continue
                parsed = parse_strace_file(path, ap.phase, seq_start=seq)
            seq += parsed.lines + 1
            lines += parsed.lines
            nbytes += step.trace_bytes
            step_events = list(parsed.events)
            step_procs = list(parsed.processes)
            if ap.phase in (Phase.EXERCISE, Phase.EXECUTE):
                step_events = attribute_calls(step_events, step.context, ap.modules)
            if ap.pass_name != DEFAULT_PASS:  # an extra pass: its events are its own
                # just parsed, held by nobody else: tagged in place (not copied)
                step_events = [relabel_owned(e, pass_name=ap.pass_name) for e in step_events]
                step_procs = [p.model_copy(update={"pass_name": ap.pass_name}) for p in step_procs]
            phase_events.extend(step_events)
            processes.extend(step_procs)
            if not (parsed.complete and step.trace_complete):
                complete = False
                notes.append(f"{_label(ap)}/{step.tag}: trace incomplete")
            if parsed.unparsed:
                notes.append(f"{_label(ap)}/{step.tag}: {parsed.unparsed} trace line(s) not understood")
        events.extend(phase_events)
        results.append(phase_result(ap, complete, lines, nbytes))
    harness = [tuple(argv) for k, argv in raw.harness_argv.items() if is_harness_step(k)]
    events, processes = classify(events, processes, harness, VENV, PROJECT, owned=True)
    events, processes = untrust_hooked_harness(events, processes, VENV)
    inventory = Inventory.model_validate(raw.inventory) if raw.inventory else Inventory()
    changes = fs_changes(raw, notes)
    notes.extend(raw.problems)  # the recorder's and the agent's (an extra pass not run, and why)
    obs = Observation(
        events=tuple(events),
        processes=tuple(processes),
        phases=tuple(results),
        inventory=inventory,
        home=HOME,
        venv=VENV,
        fs_changes=tuple(changes),
    )
    return obs, notes


def fs_changes(raw: RawRun, notes: list[str]) -> list[FsChange]:
    """The agent's persistence diff of every phase (``persist.<phase>.json``; an
    extra pass's ``persist.<pass>-<phase>.json``)."""
    out: list[FsChange] = []
    for ap in raw.phases:
        tag = ap.phase.value if ap.pass_name == DEFAULT_PASS else f"{ap.pass_name}-{ap.phase.value}"
        path = Path(raw.trace_dir) / f"persist.{tag}.json"
        if not path.exists():
            continue
        try:
            rows = json.loads(path.read_text())
            out += [
                FsChange.model_validate({**row, "phase": ap.phase, "pass_name": ap.pass_name}) for row in rows
            ]
        except (OSError, ValueError) as exc:
            notes.append(f"{_label(ap)}: persistence diff unreadable ({type(exc).__name__})")
    return out


def _ebpf_steps(raw: RawRun, notes: list[str]) -> tuple[dict[str, ParsedTrace], bool]:
    """Decode the eBPF recorder's one trace into per-step traces; whether it is whole.

    A step's records are those after its start and before the next step's (the
    agent kills what a step leaves before the next one starts)."""
    drop = tuple(privilege_drop(SANDBOX_UID, SANDBOX_UID))
    # the agent's candidate-uid processes fall in whichever step started last before
    # them (the kit copy of an extra pass, in the default pass's last step): all windows
    agents = tuple(
        sorted(
            {
                *(p for ap in raw.phases for p in ap.agent_pids),
                *(p for ap in raw.phases for s in ap.steps for p in s.sweepers),
            }
        )
    )
    windows = [
        StepWindow(
            key=f"{'' if ap.pass_name == DEFAULT_PASS else ap.pass_name + '.'}{ap.phase.value}.{s.tag}",
            phase=ap.phase,
            start_ns=s.start_ns,
            cwd=PROJECT,
            main_pid=s.main_pid,
            root_argv=(*drop, *s.argv),
            root_exe=SETPRIV,
            agent_pids=agents,
            inodes=tuple(ap.inodes),
        )
        for ap in raw.phases
        for s in ap.steps
    ]
    path = Path(raw.recorder_trace)
    if not path.exists():
        notes.append("eBPF recorder: trace missing")
        return {}, False
    text = path.read_bytes().decode("utf-8", "backslashreplace")
    decoded = parse_ebpf(text, windows, wall_offset=raw.wall_offset)
    notes.append(
        f"recorder: eBPF (host-side {'compiled' if raw.recorder_loader == 'compiled' else 'bpftrace'}, "
        f"{decoded.records} records, peak RSS "
        f"{raw.recorder_rss_kb // 1024} MiB = {raw.recorder_rss_kb * 1024 / 1e6:.0f} MB)"
    )
    if decoded.lost:
        notes.append(f"eBPF recorder lost {decoded.lost} event(s): the trace is incomplete")
    if not decoded.ready:
        notes.append("eBPF recorder: no proof it attached before the first step")
    if decoded.unparsed:
        notes.append(f"eBPF recorder: {decoded.unparsed} record(s) not understood")
    return dict(decoded.steps), decoded.complete and not any(s.start_ns == 0 for s in windows)


def _renumber(events: Sequence[Event], start: int) -> tuple[Event, ...]:
    # decoded for this observation alone: renumbered in place
    return tuple(relabel_owned(e, seq=i) for i, e in enumerate(events, start))


def is_harness_step(key: str) -> bool:
    """Steps whose own process is the harness: pip installing the candidate (its build
    backend's processes stay candidate), and pip installing index wheels for the
    developer kit or a round ("phase.kit", "phase.roundN-pip", "phase.roundN-build"), in
    any pass (an extra pass's keys start with its name: "windows.install.0")."""
    phase, _, tag = key.partition(".")
    if phase not in {p.value for p in Phase}:
        phase, _, tag = tag.partition(".")
    return (
        phase == "install" or tag == "kit" or (tag.startswith("round") and tag.endswith(("-pip", "-build")))
    )


def attribute_calls(events: list[Event], step_context: str, calls: Sequence[AgentModule]) -> list[Event]:
    """Execute phase: tag each event with the entry point or function call that caused it
    (calls run one at a time, so the call whose [start, end] holds the event's time)."""
    if step_context:
        return [replace_event(e, context=step_context) for e in events]
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
            e = replace_event(e, context=f"call {spans[i][2]}")
        out.append(e)
    return out


def phase_result(ap: AgentPhase, complete: bool, lines: int, nbytes: int) -> PhaseResult:
    """How one phase ran (status, steps, survivors, output), apart from its events."""
    if ap.phase in (Phase.IMPORT, Phase.EXERCISE, Phase.EXECUTE):
        steps = tuple(
            StepResult(name=m.name, status=_status(m.status), duration=m.duration, detail=m.detail)
            for m in ap.modules
        )
    else:
        steps = tuple(
            StepResult(
                name=s.tag if ap.phase is not Phase.INSTALL or not s.tag.isdigit() else "pip install",
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
        pass_name=ap.pass_name,
        pass_note=ap.pass_note,
        seeded=ap.seeded,
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
        modules_capped=ap.modules_capped,
        named_capped=ap.named_capped,
    )


def _status(value: str) -> PhaseStatus:
    try:
        return PhaseStatus(value)
    except ValueError:
        return PhaseStatus.ERROR


def observe_network(raw: RawRun, obs: Observation, tokens: HoneytokenSet | None) -> NetworkCapture:
    """The report's network section: the sinkhole's capture, completed from the trace."""
    windows = {
        ap.phase: (ap.started, ap.started + ap.duration) for ap in raw.phases if ap.pass_name == DEFAULT_PASS
    }
    return network_capture(Path(raw.trace_dir), obs.events, obs.processes, windows, tokens, HOME)


def _label(ap: AgentPhase) -> str:
    return ap.phase.value if ap.pass_name == DEFAULT_PASS else f"{ap.phase.value} [{ap.pass_name}]"
