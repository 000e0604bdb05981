"""32-bit system calls from a 64-bit process (``int 0x80``), judged on real lines.

Docker's profile admits the x86 and x32 ABIs next to x86_64. There socket() is
multiplexed through socketcall(), whose family seccomp cannot read: a wheel's import
opened ``~/.aws/credentials`` with a 32-bit open() and made an AF_VSOCK socket through
socketcall(SYS_SOCKET) past the family refusal (demonstrated with ``pkgsandbox vet``:
``vsock via socketcall -> 5``). The fixed profile admits the native ABI only: the
first 32-bit call kills the process with SIGSYS. ``compat-abi-import.strace`` holds
the real lines of that run (the step root's setpriv → choom → python execs, the last
calls and ``+++ killed by SIGSYS +++``).
"""

from __future__ import annotations

from sandbox.models import Severity
from sandbox.runner.seccomp import profile
from tests.unit.test_vsock import DATA, by_rule, judged


def test_only_the_native_abi_is_admitted() -> None:
    for machine in ("x86_64", "aarch64"):
        for traced in (True, False):
            arches = profile(machine, traced=traced)["archMap"]
            assert [a["subArchitectures"] for a in arches] == [[]], arches


def test_a_process_killed_for_a_foreign_abi_call_is_an_escape_attempt() -> None:
    _, judged_findings = judged((DATA / "compat-abi-import.strace").read_text())
    findings = by_rule(judged_findings, "PS008")
    assert findings and findings[0].severity is Severity.HIGH, findings
    assert "SIGSYS" in findings[0].message
