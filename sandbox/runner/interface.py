"""The runner seam: the :class:`Sandbox` a vet runs in, what it takes, what it gives
back, and the progress observer."""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sandbox.agent.protocol import Plan
from sandbox.models import DEFAULT_PASS, Frozen, ImageInfo, Phase, PhaseStatus


class Limits(Frozen):
    """Resource limits of one sandbox container."""

    memory_mb: int = 3072
    pids: int = 512
    cpus: float = 1.5
    home_mb: int = 2048  # tmpfs for HOME (the venv lives there); counts toward memory
    tmp_mb: int = 512
    trace_mb: int = 768  # root-only tmpfs for traces and captures
    # the most memory a run whose staged closure needs a bigger HOME may grow to (see
    # sandbox/runner/sizing.py; also bounded by a share of the engine's memory)
    max_memory_mb: int = 16384


class RunOptions(Frozen):
    """How to run the phases."""

    phases: tuple[Phase, ...] = (Phase.INSTALL, Phase.STARTUP, Phase.IMPORT)
    timeouts: dict[Phase, float] = Field(
        default_factory=lambda: {
            Phase.INSTALL: 600.0,
            Phase.STARTUP: 60.0,
            Phase.IMPORT: 300.0,
            Phase.EXERCISE: 60.0,
            Phase.EXECUTE: 300.0,
        }
    )
    call_timeout: float = 10.0  # exercise and execute phases: each command / function call
    module_timeout: float = 30.0
    window: float = 5.0  # observation window after each step for what outlives it
    max_modules: int = 3000
    # extra passes (name → "auto" | "always" | "never"), run after the default phases
    passes: dict[str, str] = Field(default_factory=dict)
    output_cap: int = 65536
    limits: Limits = Limits()
    recorder: Literal["strace", "ebpf"] = "strace"  # resolved: `auto` is the CLI's choice
    # eBPF chosen by `auto`: a run it could not record whole is vetted again under strace
    recorder_auto: bool = False
    # runc: namespaces on the host kernel; runsc: gVisor's user-space kernel (strace inside)
    runtime: Literal["runc", "runsc"] = "runc"


class _Loose(BaseModel):
    """Agent output: validated, but tolerant of fields a newer agent may add."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class AgentLingering(_Loose):
    pid: int
    ppid: int | None = None
    argv: list[str] = []
    threads: int = 0
    status: str = ""
    cpu: float = 0.0
    active: bool = True


class AgentStep(_Loose):
    tag: str
    argv: list[str]
    status: str
    exit_code: int | None = None
    main_pid: int | None = None
    trace: str
    trace_bytes: int = 0
    trace_complete: bool = False
    lingering: list[AgentLingering] = []
    window: float = 0.0
    output: str = ""
    output_bytes: int = 0
    problems: list[str] = []
    strace_rc: int | None = None
    oom_kills: int = 0
    context: str = ""  # execute phase: the entry point this step ran
    start_ns: int = 0  # CLOCK_MONOTONIC at the step's start (eBPF: which records are its)
    # The agent's kill(-1) children (container pids): they run as the candidate's uid
    # for the kill, so the eBPF recorder sees them; they are the harness, not the candidate.
    sweepers: list[int] = []


class AgentModule(_Loose):
    name: str
    status: str
    duration: float = 0.0
    detail: str = ""
    t0: float = 0.0  # wall-clock start/end (execute phase: attributes events to the call)
    t1: float = 0.0


class AgentPhase(_Loose):
    phase: Phase
    status: PhaseStatus
    pass_name: str = Field(DEFAULT_PASS, alias="pass")  # an extra pass's name (agent key "pass")
    pass_note: str = ""  # why the extra pass ran
    seeded: bool = False  # its randomness and clock were the seeded ones (secrets, control)
    steps: list[AgentStep] = []
    modules: list[AgentModule] = []
    modules_capped: int = 0  # import: modules the cap left out (the deepest)
    named_capped: int = 0  # import: of those, top-level or entry-point modules
    problems: list[str] = []
    # The agent's own candidate-uid processes outside any step (container pids; the
    # developer kit's copy): the eBPF recorder sees them, they are not the candidate.
    agent_pids: list[int] = []
    inventory: dict[str, Any] = {}
    started: float = 0.0
    duration: float = 0.0
    # the planted files as the phase began: (kernel dev_t, inode number, path); the
    # eBPF decoder names opens by them (sandbox.trace.ebpf.StepWindow.inodes)
    inodes: list[tuple[int, int, str]] = []


class RawRun(Frozen):
    """What a backend hands back: the agent's phase records and where the traces are."""

    run_id: str
    container: str
    hostname: str
    phases: tuple[AgentPhase, ...]
    trace_dir: str
    harness_argv: dict[str, tuple[str, ...]]  # step key "phase.tag" → exact argv the harness ran
    inventory: dict[str, Any] = {}
    problems: tuple[str, ...] = ()
    recorder: Literal["strace", "ebpf"] = "strace"
    recorder_trace: str = ""  # eBPF: the recorder's output in trace_dir
    wall_offset: float = 0.0  # eBPF: wall clock minus monotonic clock (records carry the latter)
    recorder_rss_kb: int = 0  # eBPF: peak RSS of the host-side recorder
    recorder_loader: str = "bpftrace"  # eBPF: "compiled" (sandbox.runner.bpfbuild) or "bpftrace"
    runtime: Literal["runc", "runsc"] = "runc"


class Observer:
    """Progress callbacks; the CLI renders them (the core never imports rich)."""

    def status(self, message: str) -> None:
        """A human-readable progress line."""

    def phase_started(self, phase: Phase) -> None:
        """A phase begins."""

    def phase_finished(self, phase: Phase, status: PhaseStatus, seconds: float) -> None:
        """A phase ended."""


class Session(abc.ABC):
    """One open sandbox: phases run in it (possibly several times, e.g. in rounds), then
    :meth:`close` removes it. Closing twice is harmless."""

    #: phases finished so far, readable after an interrupt (for a partial report)
    finished: list[AgentPhase]
    #: the hostname the sandbox shows the candidate
    hostname: str

    @abc.abstractmethod
    def run_phases(
        self,
        plan: Plan,
        observer: Observer,
        on_need: Callable[[dict[str, Any]], None] | None = None,
        on_result: Callable[[AgentPhase, Path | None], None] | None = None,
    ) -> RawRun:
        """Run the plan's phases, collect the traces; the sandbox stays until :meth:`close`.

        *on_need* answers the agent's ``need`` messages (adaptive rounds): it stages what a
        step lacked and writes the answer the agent waits for. *on_result* hears each
        phase's record as it arrives, with the host-side recorder's live trace, which
        by then holds every record of the phase (None when the recorder runs inside
        the sandbox)."""

    @abc.abstractmethod
    def keep(self) -> str:
        """Leave the sandbox for inspection; returns how to reach it ("" when nothing is kept)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Remove the sandbox and everything it holds."""


class Sandbox(abc.ABC):
    """Where candidates run: built once (engine, image, leftovers swept), then one
    :class:`Session` per vet. The recorder and the runtime are choices behind it."""

    #: the sandbox image (its Python and platforms decide what is fetched)
    image: ImageInfo
    #: bytes of memory the engine's host has (None: unknown, limits never grow)
    engine_memory: int | None = None

    @abc.abstractmethod
    def open(self, staging: Path, setup: Plan, options: RunOptions, observer: Observer) -> Session:
        """Start a sandbox with *staging* mounted read-only (artifacts may arrive there
        later) and run setup (HOME, honeytokens, sinkhole) from the *setup* plan."""
