"""Session 24's hostile read (judge seams). Each test failed on main before its fix."""

from __future__ import annotations

import random

from sandbox.judge.rules import evaluate
from sandbox.models import EventKind, Phase, Severity
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
