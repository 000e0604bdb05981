"""What the agent is asked to do: run options from a profile, and the plan it follows."""

from __future__ import annotations

import os
import random
from typing import Any, Literal

from sandbox.agent.protocol import STAGE_ARTIFACTS, Plan, identity_plan
from sandbox.errors import InputError, SandboxError
from sandbox.fetch import StagedSet
from sandbox.judge.honeytokens import HoneytokenSet
from sandbox.judge.profiles import Profile
from sandbox.models import ArtifactRole, Phase
from sandbox.runner.interface import Limits, RunOptions
from sandbox.runner.recorder import strace_argv
from sandbox.runner.seccomp import TRACED_DENIED

RECORDER_ENV = "PKGSANDBOX_RECORDER"
RECORDERS = ("auto", "ebpf", "strace")

# Mode of what the host hands the agent through the read-only /stage mount besides the
# artifacts (plan.json: honeytokens, the bait stage's path, the time-travel shift):
# none.  The agent reads it as root with DAC_READ_SEARCH; the candidate, whose uid may
# own the file (a host user with uid 1000), cannot, nor chmod it on the read-only mount.
AGENT_ONLY = 0o000


def recorder_choice(choice: str | None = None) -> str:
    """The recorder asked for: *choice* (``--recorder``), else ``$PKGSANDBOX_RECORDER``,
    else ``auto``. The environment variable lets a whole test suite or CI job run
    under one recorder without touching every command line."""
    if choice is None:
        choice = os.environ.get(RECORDER_ENV, "").strip() or "auto"
    if choice not in RECORDERS:
        raise InputError(
            f"unknown recorder {choice!r} (from --recorder or ${RECORDER_ENV})",
            advice="recorders: " + ", ".join(RECORDERS),
        )
    return choice


def resolve_recorder(choice: str | None = None, runtime: str = "runc") -> Literal["strace", "ebpf"]:
    """The recorder a run uses. ``auto`` (the default) becomes eBPF where it is proven to
    attach on this kernel with this bpftrace (doctor's stamp, else a live proof made now,
    once), else strace. Under runsc it is always strace: gVisor's kernel runs the
    candidate's syscalls and the host's tracepoints never fire for them."""
    wanted = recorder_choice(choice)
    if runtime == "runsc":
        if choice == "ebpf":  # asked for on the command line, not by the environment
            raise InputError(
                "--recorder ebpf cannot see inside gVisor (--runtime runsc)",
                advice="use --recorder strace or auto under runsc",
            )
        return "strace"
    if wanted == "strace":
        return "strace"
    from sandbox.runner.ebpf_recorder import ebpf_support, prove

    support = ebpf_support(mount=True, proof=wanted == "auto")
    if wanted == "ebpf":
        if not support.usable:
            raise SandboxError(
                "the eBPF recorder is not usable here",
                advice="it needs root, bpftrace, tracefs, BTF and x86_64: see `pkgsandbox doctor`",
            )
        return "ebpf"
    if support.usable and not support.proven:
        proven, _ = prove()  # ~2 s once: the stamp spares every later run
        return "ebpf" if proven else "strace"
    return "ebpf" if support.usable else "strace"


def run_options(profile: Profile, **overrides: Any) -> RunOptions:
    """RunOptions from a profile's phases and limits; non-None *overrides* win.
    The recorder, when not overridden, is :func:`resolve_recorder`'s default."""
    lim = profile.limits
    values: dict[str, Any] = {
        "phases": profile.phases.run,
        "timeouts": {
            Phase.INSTALL: lim.install_timeout,
            Phase.STARTUP: lim.startup_timeout,
            Phase.IMPORT: lim.import_timeout,
            Phase.EXERCISE: lim.exercise_timeout,
            Phase.EXECUTE: lim.execute_timeout,
        },
        "module_timeout": lim.module_timeout,
        "call_timeout": lim.call_timeout,
        "window": lim.window,
        "limits": Limits(
            memory_mb=lim.memory_mb, pids=lim.pids, cpus=lim.cpus, max_memory_mb=lim.max_memory_mb
        ),
        "passes": {
            "windows": profile.passes.windows,
            "time": profile.passes.time,
            "ci": profile.passes.ci,
            "secrets": profile.passes.secrets,
        },
        "runtime": profile.sandbox.runtime,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "recorder" not in values:
        values["recorder"] = resolve_recorder(runtime=values["runtime"])
        values["recorder_auto"] = values["recorder"] == "ebpf" and recorder_choice() == "auto"
    return RunOptions(**values)


def seccomp_bpf(runtime: str) -> bool:
    """Whether strace may use ``--seccomp-bpf`` under *runtime*. Not under gVisor
    (runsc 2022-12): the traced command's own syscalls went unrecorded until its first
    fork ("Stray PTRACE_EVENT_EXEC"), only the child's were; plain ptrace stops record
    everything, fault injection included (measured; README "Runtimes")."""
    return runtime != "runsc"


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
        *(["--no-deps"] if staged.no_deps else []),
        f"{STAGE_ARTIFACTS}/{staged.install_target}",
        *(dependency_files(staged) if staged.no_deps else []),
    ]


def dependency_files(staged: StagedSet) -> list[str]:
    """The staged dependency wheels, as the sandbox sees them (a --no-deps install lists them)."""
    return [f"{STAGE_ARTIFACTS}/{a.filename}" for a in staged.artifacts if a.role is ArtifactRole.DEPENDENCY]


def build_plan(staged: StagedSet, options: RunOptions) -> Plan:
    """The candidate's part of the plan: what to install and how to run each phase."""
    plan = identity_plan()
    plan.update(
        {
            "candidate": {"name": staged.candidate.name, "version": staged.candidate.version},
            "install_args": install_args(staged),
            "kit": list(staged.kit),
            "kit_in_image": staged.kit_in_image,
            "dependency_files": dependency_files(staged),
            # what a build without isolation needs in the venv (a round switched to it)
            "build_names": sorted({a.name for a in staged.artifacts if a.role is ArtifactRole.BUILD}),
            "phases": {p.value: {"timeout": options.timeouts[p]} for p in options.phases},
            "window": options.window,
            "module_timeout": options.module_timeout,
            "call_timeout": options.call_timeout,
            "max_modules": options.max_modules,
            "output_cap": options.output_cap,
            "strace": strace_argv("{output}", denied=TRACED_DENIED, seccomp_bpf=seccomp_bpf(options.runtime)),
            "recorder": options.recorder,
        }
    )
    return plan


def base_plan(tokens: HoneytokenSet | None = None, sinkhole: dict[str, Any] | None = None) -> Plan:
    """The part of the plan the agent needs before the candidate is known (setup):
    with the run's honeytokens (``env``, ``home_files``) and sinkhole settings."""
    plan = identity_plan()
    if tokens is not None:
        plan.update(tokens.plan())  # type: ignore[typeddict-item]
    if sinkhole is not None:
        plan["sinkhole"] = sinkhole
    return plan


def passes_plan(
    options: RunOptions, tokens: HoneytokenSet | None, rng: random.Random | None = None
) -> dict[str, Any]:
    """The extra passes the agent may run after the default phases (see
    sandbox/agent/passes.py): ``windows`` gets the honey tree's Windows variables and
    the stub directory; ``time`` a random clock shift of 30 to 180 days (random: a fixed
    one could be waited out) which the sinkhole's NTP and HTTP Date answers share; ``ci``
    a GitHub Actions job's variables (runner tokens as canaries) and the workflow-command
    files the agent creates at setup (:mod:`sandbox.judge.cienv`); ``secrets`` the env
    honeytokens redrawn, followed by ``control`` with the run's own values again (the
    same session again: what the two send differently follows the secrets, PS031),
    preceded by ``replay`` (the run's own values): the three with the same seeded
    randomness and counted clock (see sandbox/agent/passes.py).
    ``fresh`` passes (all but time, the same machine later) start from the candidate's
    files as install left them (sandbox/agent/reset.py): a payload that marks its first
    session finds no mark there."""
    r = rng or random.SystemRandom()
    out: dict[str, Any] = {}
    # libfaketime's shared files for the passes that preload it: secret names (a
    # candidate cannot make them first in the sticky /dev/shm), named like a desktop's
    mp = "".join(r.choice("abcdefghijklmnopqrstuvwxyz0123456789_") for _ in range(8))
    clock_files = [f"/mp-{mp}", f"/pulse-shm-{r.randrange(10**9, 2**32)}"]
    for name, when in options.passes.items():
        if when == "never":
            continue
        if name == "windows":
            env = dict(tokens.windows_env) if tokens is not None else {}
            out[name] = {
                "when": when,
                "trigger": "windows",
                "stubs": "windows",
                "env": env,
                "fresh": True,
                "execute": True,  # a payload kept in a function gated on Windows
            }
        elif name == "time":
            shift = r.randrange(30 * 86400, 180 * 86400)
            out[name] = {
                "when": when,
                "trigger": "time",
                "stubs": "time",
                "clock_shift": shift,
                "clock_files": clock_files,
                "execute": True,  # a payload kept in a function gated on a date
            }
        elif name == "ci" and tokens is not None:
            # without honeytokens there is nothing a CI payload would steal to prove
            out[name] = {
                "when": when,
                "trigger": "ci",
                "env": dict(tokens.ci_env),
                "files": list(tokens.ci_files),
                "fresh": True,
            }
        elif name == "secrets" and tokens is not None and tokens.redrawn_env:
            # secrets first, control last: a value that changes once with time or state
            # between the default pass and control differs there, and is not taken for taint.
            # The three draw the same randomness and read the same clock (``seed``): a key
            # drawn fresh each run that the secret is mixed with is the same key in each.
            # libfaketime reads the seed with strtoll: below 2**63, or every larger one
            # is the same (saturated) seed
            seed = f"0x{r.getrandbits(62) | 1 << 62:016x}"
            # replay (the run's own values, seeded too) first: what replay and control
            # agree on is what the seeded passes do not vary by themselves
            out["replay"] = {
                "when": when,
                "trigger": "replay",
                "env": {},
                "fresh": True,
                "seed": seed,
                "stubs": "seeded",
                "clock_files": clock_files,
            }
            out[name] = {
                "when": when,
                "trigger": "secrets",
                "env": dict(tokens.redrawn_env),
                "fresh": True,
                "seed": seed,
                "stubs": "seeded",
                "clock_files": clock_files,
            }
            out["control"] = {
                "when": when,
                "trigger": "control",
                "env": {},
                "fresh": True,
                "seed": seed,
                "stubs": "seeded",
                "clock_files": clock_files,
            }
    return out


def sinkhole_plan(enabled: bool, capture_kib: int, rng: random.Random | None = None) -> dict[str, Any]:
    """Sinkhole settings for one run: capture bounds, the bait stage's path, and the
    home LAN the sandbox pretends to be on (random per run: a fixed address would be
    a fingerprint)."""
    r = rng or random.SystemRandom()
    third = r.choice([0, 1, 1, 2, 8, 10, 31, 178])
    ula = f"fd{r.randrange(256):02x}:{r.randrange(65536):x}:{r.randrange(65536):x}:{r.randrange(1, 16):x}"
    # What the bait second stage looks for (sinkhole/http.py stage_body): random, so
    # only code that ran the sinkhole's answer can name it.
    stage = "/var/tmp/." + "".join(r.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(14))
    return {
        "enabled": enabled,
        "capture_bytes": max(1, capture_kib) * 1024,
        "stage": stage,
        "net": {
            "address": f"192.168.{third}.{r.randrange(20, 230)}",
            "prefix": 24,
            "gateway": f"192.168.{third}.1",
            "address6": f"{ula}::{r.randrange(2, 65535):x}",
            "gateway6": "fe80::1",
            "macs": [_nic_mac(r), _nic_mac(r)],
        },
    }


# OUIs of NICs common in laptops and desktops (Intel, Realtek, Qualcomm Atheros, Broadcom,
# Apple): the kernel's random veth MACs have the locally-administered bit, a VM/container tell.
_NIC_OUIS = ("3c:6a:a7", "8c:8d:28", "a4:34:d9", "f8:94:c2", "00:e0:4c", "e4:b9:7a", "9c:b6:d0", "a4:83:e7")


def _nic_mac(r: random.Random) -> str:
    return r.choice(_NIC_OUIS) + "".join(f":{r.randrange(256):02x}" for _ in range(3))
