"""Session 24's hostile read (judge seams). Each test failed on main before its fix."""

from __future__ import annotations

import random
from pathlib import Path

from sandbox.judge.honeytokens import make_honeytokens
from sandbox.judge.rules import evaluate
from sandbox.models import Event, EventKind, Phase, ProcessInfo, Severity
from sandbox.trace.netcapture import network_capture
from sandbox.trace.strace.tables import _open_kind
from tests.unit.test_rules import ev, obs

# ---------------------------------------------------------------- PS001 client configuration


def test_changing_client_configuration_in_a_command_is_never_calmed_as_reading_it() -> None:
    """In the exercise and execute phases every event carries the command or call that
    caused it, and the evidence detail starts with it ("during entry point x --help;
    changed by the candidate …"), so the calm compared a prefixed detail with the bare
    marker and a console script planting a ``credential_process`` in the AWS config
    (or a kubeconfig ``exec`` plugin) ended LOW: clean."""
    rng = random.Random()
    cmd = f"entry point {rng.choice(['awshelper', 'kctl', 'cfgtool'])} --help"
    for phase, path in (
        (Phase.EXERCISE, "/home/dev/.aws/config"),
        (Phase.EXERCISE, "/home/dev/.kube/config"),
        (Phase.EXECUTE, "/home/dev/.aws/credentials"),
    ):
        kw = {"phase": phase, "path": path, "context": cmd}
        read = ev(EventKind.FILE_READ, "openat", seq=1, **kw)
        write = ev(EventKind.FILE_WRITE, "openat", seq=2, flags="O_WRONLY|O_APPEND", **kw)
        found = [f for f in evaluate(obs([read, write])) if f.rule_id == "PS001"]
        assert Severity.MEDIUM in [f.severity for f in found] or Severity.HIGH in [f.severity for f in found], (
            phase,
            path,
            [(f.severity, [e.detail for e in f.evidence]) for f in found],
        )
        if path.endswith("config"):  # the carve-out's case in a command: only read, nothing sent
            assert [f.severity for f in evaluate(obs([read])) if f.rule_id == "PS001"] == [Severity.LOW], path


# ---------------------------------------------------------------- PS012 honeytoken opened read-write


def test_a_planted_store_opened_read_write_is_read(tmp_path: Path) -> None:
    """``sqlite3.connect(path)`` opens ``O_RDWR|O_CREAT`` (and ``open(p, "r+")``
    ``O_RDWR``): the trace types such an open as a write, and only opens typed as reads
    counted as honeytoken reads, so a stealer querying a planted browser store in place
    (no copy) read it without PS012. An open that can read is a read; a write-only one
    (``O_WRONLY|O_TRUNC``) is not."""
    rng = random.Random()
    tokens = make_honeytokens(rng)
    planted = sorted(tokens.paths(HOME))
    rw, ro, wo = rng.sample(planted, 3)
    argv = (f"{HOME}/project/.venv/bin/python", "-c", "import x")
    events = [
        _open(rw, rng.choice(["O_RDWR|O_CREAT|O_CLOEXEC", "O_RDWR|O_CLOEXEC", "O_RDONLY|O_CREAT"]), 1),
        _open(ro, "O_RDONLY|O_CLOEXEC", 2),
        _open(wo, "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC", 3),
    ]
    procs = [ProcessInfo(pid=42, ppid=1, phase=Phase.IMPORT, argv=argv, exe=argv[0], start=T0)]
    windows = {Phase.IMPORT: (T0 - 1, T0 + 30)}
    net = network_capture(tmp_path, events, procs, windows, tokens, HOME)
    assert sorted(r.path for r in net.honeytoken_reads) == sorted([rw, ro]), net.honeytoken_reads


T0 = 1_800_000_000.0
HOME = "/home/dev"


def _open(path: str, flags: str, seq: int) -> Event:
    kind = _open_kind(flags)
    return Event(
        phase=Phase.IMPORT, seq=seq, pid=42, time=T0 + seq, syscall="openat", kind=kind, path=path, flags=flags
    )
