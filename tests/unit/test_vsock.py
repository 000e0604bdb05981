"""AF_VSOCK: a socket family that no network namespace confines.

A ``--network none`` container has no route out, but a vsock socket talks to the
hypervisor host (CID 2) of a VM (Firecracker, Kata, Docker Desktop's VM, WSL2)
whatever namespace it is in, and the sinkhole's iptables rules never see it.

``vsock-import.strace`` holds real lines recorded by ``pkgsandbox vet`` (strace
recorder, default profile) of a defanged wheel whose import read
``~/.aws/credentials`` and then did ``socket(AF_VSOCK)`` + ``connect((1, port))``
(the step root's setpriv → choom → python execs kept, so the classifier sees the
agent's lineage). Before the fix the sandbox let the socket through and the judge
took any non-IP family for loopback: no PS002, PS001 only MEDIUM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.judge.classify import classify
from sandbox.judge.profiles import load_profile
from sandbox.judge.rules import evaluate
from sandbox.models import (
    EventKind,
    Finding,
    Inventory,
    Observation,
    Phase,
    PhaseResult,
    PhaseStatus,
    Severity,
)
from sandbox.runner.seccomp import AF_VSOCK, profile
from sandbox.trace.strace import parse_strace

DATA = Path(__file__).resolve().parents[1] / "data" / "strace"
HOME = "/home/dev"
VENV = f"{HOME}/project/.venv"
TRACE = (DATA / "vsock-import.strace").read_text()


def judged(text: str) -> tuple[Observation, list[Finding]]:
    parsed = parse_strace(text, Phase.IMPORT)
    events, procs = classify(parsed.events, parsed.processes, [], VENV, f"{HOME}/project")
    obs = Observation(
        events=tuple(events),
        processes=tuple(procs),
        phases=(PhaseResult(phase=Phase.IMPORT, status=PhaseStatus.OK, duration=1.0),),
        inventory=Inventory(),
        home=HOME,
        venv=VENV,
    )
    return obs, evaluate(obs, load_profile("default"))


def by_rule(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule_id == rule]


def test_a_vsock_connect_is_an_outbound_attempt_and_makes_the_credential_read_high() -> None:
    _, findings = judged(TRACE)
    ps002 = by_rule(findings, "PS002")
    assert ps002, [f.rule_id for f in findings]
    assert "AF_VSOCK" in ps002[0].message and ps002[0].severity is Severity.HIGH
    assert {e.syscall for e in ps002[0].evidence} >= {"connect"}
    ps001 = by_rule(findings, "PS001")
    assert ps001 and ps001[0].severity is Severity.HIGH, ps001


def test_a_refused_vsock_socket_is_still_an_outbound_attempt() -> None:
    # The fixed profile refuses socket(AF_VSOCK): under --seccomp-bpf the refusal leaves
    # no line, but a recorder that sees it (eBPF at sys_exit; strace without
    # --seccomp-bpf under gVisor) records this line (captured in the sandbox image with
    # the fixed profile, pid added), and the attempt is judged as one.
    lines = TRACE.splitlines()
    at = next(i for i, line in enumerate(lines) if "socket(AF_VSOCK" in line)
    stamp = lines[at].split()[1]
    call = "socket(AF_VSOCK, SOCK_STREAM|SOCK_CLOEXEC, 0) = -1 EPERM (Operation not permitted)"
    refused = f"81    {stamp} {call}"
    text = "\n".join([*lines[:at], refused, *(line for line in lines[at + 1 :] if "socket:[" not in line)])
    obs, findings = judged(text + "\n")
    assert any(e.kind is EventKind.SOCKET and e.errno == "EPERM" for e in obs.events)
    ps002 = by_rule(findings, "PS002")
    assert ps002 and "AF_VSOCK" in ps002[0].message, [f.rule_id for f in findings]
    assert by_rule(findings, "PS001")[0].severity is Severity.HIGH


def test_the_seccomp_profile_refuses_vsock_sockets_and_allows_every_other_family() -> None:
    """seccomp compares the whole 64-bit register, the kernel reads an int: on main the
    rule was ``!= AF_VSOCK`` and AF_VSOCK | 1 << 32 passed it (s27 hostile read)."""
    ops = {"SCMP_CMP_LT": lambda a, v: a < v, "SCMP_CMP_EQ": lambda a, v: a == v}
    for traced in (True, False):
        rules = [r for r in profile("x86_64", traced=traced)["syscalls"] if "socket" in r["names"]]
        assert all(r["names"] == ["socket"] and r["action"] == "SCMP_ACT_ALLOW" for r in rules)

        def allowed(family: int, rules: list[dict[str, Any]] = rules) -> bool:
            return any(all(ops[c["op"]](family, c["value"]) for c in r["args"]) for r in rules)

        assert [f for f in range(48) if not allowed(f)] == [AF_VSOCK, 46, 47]
        assert not allowed((1 << 32) | AF_VSOCK) and not allowed((1 << 32) | 2)
