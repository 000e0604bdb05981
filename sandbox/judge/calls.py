"""The execute phase's calls as the default profile judges them: proof only.

The calls hand the candidate's public functions and classes made-up arguments (a URL
on ``example.invalid``, ``/tmp/mock``, a mock object). A library asked to
fetch a URL looks up ``~/.netrc`` and resolves the name; a config helper reads
``~/.aws``; a shell-completion helper appends to ``~/.bashrc``. That is what it was
asked to do, by us, and no sign of malice. What a call does that no argument asks
for is different: a planted secret leaving the sandbox (PS010), the bait second stage
run (PS013), decoded or fileless code run (PS021, PS029), requests that follow the
secrets (PS031). Those keep their severity; every other finding of the phase stays in
the report as LOW context, so ``ctx``'s constructor that sends the environment is
malicious and ``requests.delete`` is not.

The rest of the run is judged without the calls' events (:func:`without_calls`): a
credential stat at import is not raised to HIGH because a call reached the network.
"""

from __future__ import annotations

from typing import Any

from sandbox.judge.canary import AUTH_ONLY
from sandbox.judge.profiles import Profile
from sandbox.models import Finding, NetworkCapture, Observation, Phase, Severity

PROOF_RULES = frozenset({"PS010", "PS013", "PS021", "PS029", "PS031", "PS032"})
CONTEXT_NOTE = "during a call with made-up arguments: context, not proof"
# The host of the URL the caller hands a url/host parameter (sandbox/agent/scripts.py,
# CALLER's mock_for): a helper that downloads and runs what that URL serves ran the
# bait because we asked it to.
MOCK_HOSTS = frozenset({"example.invalid"})
# Hosts a call was handed (CALLER): the made-up URL's, and the name a mock object turns
# into as text. A secret sent there is a client at work on what we gave it.
HANDED_HOSTS = MOCK_HOSTS | {"test"}
ASKED_NOTE = "the bait came only from the made-up URL the call was handed"
AUTH_NOTE = (
    "only in an authentication header of a request a call with made-up arguments made: a client logging in"
)


def proof_only(profile: Profile) -> bool:
    """Whether this profile runs the calls and judges them on proof alone."""
    return Phase.EXECUTE in profile.phases.run and profile.phases.execute_evidence == "proof"


_OBS_FIELDS = ("events", "processes", "phases", "fs_changes")
_NET_FIELDS = ("dns", "connections", "datagrams", "exfiltration", "honeytoken_reads")


def without_calls(obs: Observation, net: NetworkCapture | None) -> tuple[Observation, NetworkCapture | None]:
    """*obs* and *net* without anything of the execute phase (every field that holds
    per-phase records)."""

    def drop(model: Any, fields: tuple[str, ...]) -> Any:
        return model.model_copy(
            update={f: tuple(x for x in getattr(model, f) if x.phase is not Phase.EXECUTE) for f in fields}
        )

    return drop(obs, _OBS_FIELDS), None if net is None else drop(net, _NET_FIELDS)


def fetched_only_what_we_handed(net: NetworkCapture | None) -> bool:
    """Every connection the calls made went to the made-up URL's host (and there was
    one): whatever they downloaded, we pointed them at it."""
    if net is None:
        return False
    conns = [c for c in net.connections if c.phase is Phase.EXECUTE]
    return bool(conns) and all((c.host or "").lower().rstrip(".") in MOCK_HOSTS for c in conns)


def as_context(f: Finding, *, asked: bool = False) -> Finding:
    """An execute-phase finding that proves nothing: LOW, saying why. With *asked*
    (:func:`fetched_only_what_we_handed`), running the bait (PS013) proves nothing
    either: a download-and-run helper did what its argument said."""
    if f.severity.rank <= Severity.LOW.rank:
        return f
    if asked and f.rule_id == "PS013":
        return f.model_copy(update={"severity": Severity.LOW, "message": f"{f.message} ({ASKED_NOTE})"})
    if f.rule_id == "PS010" and f.evidence and all(AUTH_ONLY in (e.detail or "") for e in f.evidence):
        # the environment's key, only in an Authorization (or API-key) header of a
        # request a call asked for: a client authenticating to its service
        return f.model_copy(update={"severity": Severity.LOW, "message": f"{f.message} ({AUTH_NOTE})"})
    if f.rule_id in PROOF_RULES:
        return f
    return f.model_copy(update={"severity": Severity.LOW, "message": f"{f.message} ({CONTEXT_NOTE})"})
