"""Credential rules: PS001 (credential locations, system secrets, cloud metadata) and
PS012 (a planted honeytoken opened for reading)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sandbox.judge.rules.context import HOME_DIR, NET_KINDS, Context, dedupe, make_finding, per_phase
from sandbox.models import (
    Event,
    EventKind,
    Evidence,
    Finding,
    NetworkCapture,
    Severity,
)

CREDENTIAL_PATHS = re.compile(
    "|".join(
        [
            HOME_DIR + r"/\.ssh(?:/|$)",
            HOME_DIR + r"/\.aws(?:/|$)",
            HOME_DIR + r"/\.kube(?:/|$)",
            HOME_DIR + r"/\.docker/config\.json$",
            # gcloud's secrets (and listing the directory); its other files (properties,
            # certificate_config.json, which client libraries probe for mTLS) hold none.
            HOME_DIR
            + r"/\.config/gcloud(?:$|/legacy_credentials(?:/|$)|/(?:credentials\.db|access_tokens\.db"
            r"|application_default_credentials\.json)$)",
            HOME_DIR + r"/\.azure(?:/|$)",
            HOME_DIR + r"/\.git-credentials$",
            HOME_DIR + r"/\.netrc$",
            HOME_DIR + r"/\.pypirc$",
            HOME_DIR + r"/\.npmrc$",
            HOME_DIR + r"/\.gnupg(?:/|$)",
            HOME_DIR + r"/\.config/gh/hosts\.yml$",
            HOME_DIR + r"/\.password-store(?:/|$)",
            HOME_DIR + r"/\.vault-token$",
            HOME_DIR + r"/\.terraform\.d/credentials",
            HOME_DIR + r"/\.(?:bitcoin|ethereum|electrum|monero|litecoin|dogecoin)(?:/|$)",
            HOME_DIR + r"/\.config/(?:Exodus|solana|Electrum|atomic)(?:/|$)",
            HOME_DIR + r"/\.local/share/keyrings(?:/|$)",
            r"/\.env(?:\.[A-Za-z0-9_-]+)?$",
            r"^/var/run/secrets(?:/|$)",
            r"^/run/secrets(?:/|$)",
        ]
    )
)


# Credentials a client library loads for its own requests (dotenv, requests' netrc,
# cloud SDKs' config and workload identity, the metadata address). Any other secret
# store touched in the phase (keys, browsers, chat tokens, wallets, keyrings, package
# registry tokens) is a stealer's target: its network findings stay HIGH
# (:mod:`sandbox.judge.rules.accounted`).
# a project's dotenv file (.env, .env.local …)
DOTENV = r"/\.env(?:\.[A-Za-z0-9_-]+)?$"
CLIENT_CONFIG = re.compile(
    DOTENV + r"|/\.netrc$|/\.aws/(?:config|credentials)$|/\.kube/config$"
    r"|/\.docker/config\.json$|/\.config/gcloud(?:/|$)|/\.azure(?:/|$)|^/(?:var/)?run/secrets(?:/|$)"
    r"|^169\.254\.169\.254:\d+$"
)


def is_client_config(ev: Evidence, pattern: re.Pattern[str] = CLIENT_CONFIG) -> bool:
    """Whether *ev* names client configuration only: a link's or rename's evidence
    names two files ("a -> b"), and a credential hard-linked under a configuration
    name (``~/.config/gcloud/x`` -> ``~/.ssh/id_rsa``) is still the credential."""
    place = ev.path or ev.destination or ""
    return all(pattern.search(part) for part in place.split(" -> "))


def stealer_first(evidence: Iterable[Evidence]) -> list[Evidence]:
    """*evidence* with a stealer's targets first (anything but :data:`CLIENT_CONFIG`),
    then what was really opened (no errno), in event order otherwise.  A finding keeps
    at most ``MAX_EVIDENCE`` rows and the accounting judges a phase by them: twenty
    processes reading ``.env`` first must not push the SSH key read off the end."""
    return sorted(
        evidence,
        key=lambda e: (is_client_config(e), e.errno is not None),
    )


SYSTEM_SECRETS = re.compile(r"^/etc/(?:g?shadow-?|sudoers)$")


METADATA_HOSTS = frozenset({"169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200"})


_TOUCH = {
    EventKind.FILE_READ,
    EventKind.FILE_STAT,
    EventKind.FILE_LIST,
    EventKind.FILE_WRITE,
    EventKind.FILE_CHMOD,
    EventKind.FILE_RENAME,
    EventKind.FILE_LINK,
    EventKind.FILE_DELETE,
}


def rule_credentials(ctx: Context) -> list[Finding]:
    hits = [e for e in ctx.events if e.kind in _TOUCH and e.path and CREDENTIAL_PATHS.search(e.path)]
    # a link to a credential: reading through it later shows only the link's name
    hits += [
        e
        for e in ctx.events
        if e.kind is EventKind.FILE_LINK and e.path2 and CREDENTIAL_PATHS.search(e.path2) and e not in hits
    ]
    # System password hashes: opening counts; a stat while walking /etc does not.
    hits += [
        e
        for e in ctx.events
        if e.kind in (EventKind.FILE_READ, EventKind.FILE_WRITE) and e.path and SYSTEM_SECRETS.match(e.path)
    ]
    hits += [
        e
        for e in ctx.events
        if e.kind in NET_KINDS and e.address is not None and e.address.host in METADATA_HOSTS
    ]
    if not hits:
        return []
    networked = bool(ctx.outbound())
    out = []
    for phase, evs in per_phase(hits).items():
        uniq = dedupe(evs, lambda e: (e.pid, e.path, e.path2, e.address, _changes(e)))
        # An existence check that found nothing (client libraries probe for workload
        # identity or mTLS files) took nothing: LOW unless the run also reaches out.
        absent = [e for e in uniq if e.kind is EventKind.FILE_STAT and e.errno == "ENOENT"]
        # So did a stat of one that exists when nothing of it was then opened, listed or
        # changed (a CLI walking HOME's entries): its size and times, no content.
        opened = {e.path for e in uniq if e.kind is not EventKind.FILE_STAT and e.path}
        checked = [
            e
            for e in uniq
            if e.kind is EventKind.FILE_STAT
            and e.errno is None
            and e.path
            and not any(p == e.path or p.startswith(e.path.rstrip("/") + "/") for p in opened)
        ]
        # Changing one (a .env line, an AWS credential_process, a kubeconfig exec plugin:
        # commands the user's tools run later) is no client loading its configuration.
        changed = [e for e in uniq if _changes(e)]
        quiet = absent + checked
        touched = [e for e in uniq if e not in changed and (networked or e not in quiet)]
        groups = [(touched, "touched"), (changed, "modified")]
        if not networked:
            groups += [(absent, "probed for absent"), (checked, "only checked (a stat, nothing read)")]
        for group, verb in groups:
            if not group:
                continue
            places = sorted({_cred_place(e) for e in group})
            msg = f"{verb} credential location(s): {', '.join(places[:6])}"
            sev = (
                Severity.HIGH
                if networked
                else Severity.LOW
                if group is absent or group is checked
                else Severity.MEDIUM
            )
            if networked:
                msg += " — and the run attempts network connections"
            evid = stealer_first(ctx.evidence(e, MODIFIED if e in changed else "") for e in group)
            out.append(make_finding("PS001", phase, msg, evid, sev))
    return out


# The evidence detail of a credential location the candidate wrote, renamed, linked,
# chmodded or deleted: never "client configuration read" (see accounted.calm_command_config).
MODIFIED = "changed by the candidate, not only read"


def is_modified(ev: Evidence) -> bool:
    """Whether *ev* is a change to a credential location (its detail is ``MODIFIED``
    behind the command or call that caused it: see Context.evidence)."""
    detail = ev.detail.removeprefix(f"during {ev.context}; ") if ev.context else ev.detail
    return detail == MODIFIED


_CHANGES = frozenset(
    {
        EventKind.FILE_WRITE,
        EventKind.FILE_CHMOD,
        EventKind.FILE_RENAME,
        EventKind.FILE_LINK,
        EventKind.FILE_DELETE,
    }
)


# A cloud CLI keeps its own state under these directories (command index, version
# check, session, logs) and writes there on every run, --help included: that is the
# client's own, judged as its configuration read is.
_CLI_STATE = re.compile(HOME_DIR + r"/(?:\.config/gcloud|\.azure)/")


def _changes(e: Event) -> bool:
    """Whether *e* changed the credential location (a link made elsewhere to one only
    gives it another name: that is access, judged as such)."""
    if e.errno or e.kind not in _CHANGES or (e.path and _CLI_STATE.search(e.path)):
        return False
    return e.kind is not EventKind.FILE_LINK or bool(e.path and CREDENTIAL_PATHS.search(e.path))


def _cred_place(e: Event) -> str:
    if e.kind is EventKind.FILE_LINK and e.path2 and CREDENTIAL_PATHS.search(e.path2):
        return e.path2
    return e.path or (e.address.render() if e.address else "")


def rule_honeytoken_read(net: NetworkCapture) -> list[Finding]:
    out = []
    for phase in sorted({r.phase for r in net.honeytoken_reads}, key=lambda p: p.order):
        rs = [r for r in net.honeytoken_reads if r.phase is phase]
        evid = [
            Evidence(
                phase=r.phase,
                pid=r.pid,
                time=r.time,
                syscall="(open for read)",
                process=r.process,
                path=r.path,
                detail=f"honeytoken {r.location}",
            )
            for r in rs
        ]
        places = sorted({r.location for r in rs})
        out.append(
            make_finding(
                "PS012", phase, f"read planted credential(s): {', '.join(places[:6])}", stealer_first(evid)
            )
        )
    return out
