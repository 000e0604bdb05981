"""The host ↔ agent protocol: container paths, the plan the host writes, the messages
the agent prints. Stdlib only: the one agent module the host may import.

The plan is JSON (``/stage/plan.json``, written atomically by the host, re-read by the
agent before each phase); the agent answers with one JSON object per line on the
``docker exec`` stream, each with a ``type`` (see :data:`MESSAGE_TYPES`).
"""

from __future__ import annotations

import ast
import configparser
import contextlib
import re
from typing import Any, TypedDict

# --------------------------------------------------------------------------- who and where
SANDBOX_USER = "dev"
SANDBOX_UID = 1000
HOME = f"/home/{SANDBOX_USER}"
PROJECT = f"{HOME}/project"
VENV = f"{PROJECT}/.venv"

STAGE = "/stage"  # read-only bind mount of the host's staging directory
STAGE_ARTIFACTS = f"{STAGE}/artifacts"
PLAN_PATH = f"{STAGE}/plan.json"
# eBPF recorder: the host's answer, between the passes, to "did the default pass probe
# for a sandbox?" (the time pass's trigger; under strace the agent reads its own traces)
PROBES_NAME = "probes.json"

# A survivor's CPU is judged from this many seconds into the observation window (at
# most half of it) to its close: thread pools spin down for a moment after their last
# job (OpenBLAS yields for ~0.1-0.3 s before it parks), which is not work left running.
CPU_SETTLE_SECONDS = 1.0

TRACE_MOUNT = "/var/lib/devtools"  # root-only tmpfs: traces and captures
OUT = f"{TRACE_MOUNT}/out"

# the parts of a dotted name that make it a test suite's (tests/, test_x, x_test, conftest):
# the import phase leaves such modules out (agent/modlist.py), and the host's static
# second opinion of a capped import does too (judge/static.py)
TEST_PART = re.compile(r"^(?:tests?|testing|conftest|test_\w*|\w*_tests?)$")

# The image's own files (root-owned, read-only to the candidate), named like a
# developer's own tools: /proc/*/cmdline is world-readable and shows these paths (the
# agent's interpreter line, the candidate's own argv), so they must not name a sandbox
# or a tracer. lib/ and bin/ (the agent's code, which does) are root-only (0700).
TOOL_ROOT = "/usr/local/lib/devtools"
AGENT = f"{TOOL_ROOT}/bin/agent"
RUN_DIR = f"{TOOL_ROOT}/run"  # driver scripts the candidate's interpreter runs
VENV_TEMPLATE = f"{TOOL_ROOT}/venv"
KIT_PREFIX = f"{TOOL_ROOT}/kit"  # the developer kit, installed at image build (images/kit/)
TARGET_JSON = f"{TOOL_ROOT}/target.json"

# --------------------------------------------------------------------------- plan


class PhasePlan(TypedDict):
    timeout: float


class CandidateRef(TypedDict):
    name: str
    version: str


class Plan(TypedDict, total=False):
    """What the agent follows. Setup needs only the identity, HOME and sinkhole parts;
    the candidate's part (``candidate``, ``install_args``, ``phases`` …) arrives later."""

    user: str
    uid: int
    gid: int
    home: str
    project: str
    venv: str
    hostname: str
    evidence: bool
    honeytokens: bool
    env: dict[str, str]  # honeytoken variables in the candidate's environment
    home_files: dict[str, str]  # honeytoken files, relative to HOME
    home_blobs: dict[str, str]  # binary honeytoken files (base64), relative to HOME
    call_secrets: dict[str, str]  # canaries the caller hands secret-named arguments ("hex", "text")
    passes: dict[str, Any]  # extra passes of startup and import (sandbox/agent/passes.py)
    identity: dict[str, str]
    sinkhole: dict[str, Any]
    candidate: CandidateRef
    install_args: list[str]
    phases: dict[str, PhasePlan]
    window: float
    module_timeout: float
    call_timeout: float
    max_modules: int
    output_cap: int
    strace: list[str]  # the recorder's argv, "{output}" standing for the trace file
    recorder: str  # "strace" (inside, per step) or "ebpf" (on the host: steps run untraced)
    kit: list[str]  # developer packages installed before a legacy setup.py sdist
    kit_in_image: (
        bool  # the kit is the image's /usr/local/lib/devtools/kit tree (KIT_PREFIX), not staged wheels
    )
    dependency_files: list[str]  # staged dependency wheels (listed by a --no-deps install)
    build_names: list[str]  # build requirements a build without isolation needs in the venv
    rounds: dict[str, Any]  # adaptive rounds: {"max": N, "wait": seconds}


# --------------------------------------------------------------------------- messages
# "status" (progress: phase, msg), "phase" (a phase starts: phase), "result" (a phase's
# record, see sandbox.runner.interface.AgentPhase), "setup", "probe", "tells" (doctor --tells),
# "done", "error" (msg), "need" (an adaptive round: round, phase, modules, requirements,
# reason; the agent then waits for ROUNDS_DIR/<round>.json: {"install", "added", "missing"}).
# "collect": the rest of the stream is the output directory's tar (``agent run --collect``)
MESSAGE_TYPES = frozenset(
    {"status", "phase", "result", "setup", "probe", "tells", "done", "error", "need", "collect", "skipped"}
)
# The cloud metadata addresses a plain ``GET /`` of which is a cloud SDK asking whether
# it runs in the cloud: the judge accounts it (judge/rules/accounted.py metadata_ping),
# and the agent does not take it for data sent (agent/passes.py sent_out)
METADATA_ADDRESSES = frozenset({"169.254.169.254", "fd00:ec2::254"})
ROUNDS_DIR = f"{STAGE}/rounds"


SETPRIV = "/usr/bin/setpriv"


def privilege_drop(uid: int, gid: int) -> list[str]:
    """setpriv + choom in front of every step: candidate uid, no capabilities at all,
    no-new-privs, OOM-first. (The host needs it too: under the eBPF recorder the
    setpriv exec happens as root, out of the recorder's sight.)"""
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
        "choom",
        "-n",
        "1000",
        "--",
    ]


def identity_plan() -> Plan:
    """The identity part of every plan: the candidate's user, HOME, project and venv."""
    return {
        "user": SANDBOX_USER,
        "uid": SANDBOX_UID,
        "gid": SANDBOX_UID,
        "home": HOME,
        "project": PROJECT,
        "venv": VENV,
    }


# What the install phase's first round asks for, before a legacy build in the venv; the host
# reads the same two files of the sdist in memory and fetches the answer while the sandbox
# starts (the agent and the host must agree on the list).
# the requirement forms a round accepts (no URLs, no options)
_REQ = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[\w,\s-]*\])?\s*(?:[<>=!~]=?[^;@]*)?$")


def _literal_strings(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [ln.strip() for ln in node.value.splitlines() if ln.strip()]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        elts = [e.value for e in node.elts if isinstance(e, ast.Constant)]
        return [e.strip() for e in elts if isinstance(e, str)]
    return []


def literal_setup_requires(setup_py: bytes | None, setup_cfg: bytes | None) -> list[str]:
    """What setuptools would fetch from the index while it runs setup.py: the literal
    ``setup_requires=`` of a call in setup.py, ``[options] setup_requires`` of
    setup.cfg; parsed, never run. Built without isolation, setuptools fetches these with
    its own ``pip wheel`` from the internet; staged first, it finds them installed."""
    found: list[str] = []
    tree: ast.AST | None = None
    if setup_py is not None:
        with contextlib.suppress(SyntaxError, ValueError, MemoryError, RecursionError):
            tree = ast.parse(setup_py)
    for node in ast.walk(tree) if tree is not None else ():
        for kw in node.keywords if isinstance(node, ast.Call) else ():
            if kw.arg == "setup_requires":
                found += _literal_strings(kw.value)
    if setup_cfg is not None:
        cfg = configparser.ConfigParser(interpolation=None, strict=False)
        with contextlib.suppress(configparser.Error, UnicodeDecodeError):
            cfg.read_string(setup_cfg.decode())
            raw = cfg.get("options", "setup_requires", fallback="")
            found += [ln.strip() for ln in raw.replace(";", "\n").splitlines() if ln.strip()]
    out: list[str] = []
    for req in found:
        if _REQ.match(req) and req not in out:
            out.append(req)
    return out[:8]
