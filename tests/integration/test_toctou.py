"""The eBPF recorder reads a call's path from the caller's memory when the call
returns; the kernel copied it when the call began. A second thread that rewrites the
buffer in between shows the recorder another path than the file the kernel opened
(session 18's hostile read won that race with native code).

The fixture makes the race certain rather than likely: it holds a write lease on the
planted SSH key (the candidate owns its home), so a ctypes open of the key sleeps in the
kernel's lease break after the path was copied; the fixture sees the break pending
(``F_GETLEASE`` no longer answers ``F_WRLCK``), rewrites the buffer to a name that does not exist
and only then gives the lease up. A scheduler-dependent flip (a thread racing plain
opens) raced thousands of times on a quiet machine and never on the CI runner (likely
both threads on one CPU, under a kernel that does not preempt a syscall that does not
sleep: not measured there). Any successful open recorded under the other name is a
lie. Defanged: a planted credential is opened; nothing leaves the sandbox."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

from sandbox.models import EventKind
from tests.conftest import run_cli
from tests.fixtures.builders import Randomised, build_wheel, leased_race_source

pytestmark = [pytest.mark.usefixtures("sandbox_image", "no_leaks"), pytest.mark.slow]

KEY = "/home/dev/.ssh/id_rsa"
ROUNDS = 3


def test_a_path_rewritten_during_the_open_still_names_the_file_opened(tmp_path: Path) -> None:
    r = Randomised()
    name = r.name("racer")
    # the same length as the key's path: the NUL stays where it is
    decoy = "/tmp/" + "".join(r.rng.choice(string.ascii_lowercase) for _ in range(len(KEY) - 5))
    src = leased_race_source(
        KEY,
        KEY,
        decoy,
        call="got.append(libc.open(buf, os.O_RDONLY))\n",
        # a write lease needs the file open nowhere else
        after="if got[-1] >= 0:\n    os.close(got[-1])\n",
        rounds=ROUNDS,
    )
    whl = build_wheel(tmp_path, name, "1.0", {f"{name}/__init__.py": src})
    code, report = run_cli(tmp_path, str(whl), "--recorder", "ebpf", "--phases", "import")
    assert report is not None
    rules = {f.rule_id for f in report.findings}
    assert code == 1 and "PS001" in rules, (code, report.verdict, rules, report.notes)

    opens = [
        e
        for e in report.events
        if e.kind in (EventKind.FILE_READ, EventKind.FILE_WRITE) and e.syscall in ("open", "openat")
    ]
    lies = [e for e in opens if e.path == decoy and not e.failed]
    assert not lies, f"{len(lies)} successful open(s) recorded under the rewritten name, e.g. {lies[0]}"
    # every raced open names the key, the name the call's memory showed kept as evidence
    raced = [e for e in opens if e.path == KEY and not e.failed and e.path2 == decoy]
    assert len(raced) == ROUNDS, (len(raced), [(e.path, e.path2) for e in opens if e.path in (KEY, decoy)])
