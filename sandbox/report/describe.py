"""Where a path is (credentials, home, site-packages …) and what an event did, in words."""

from __future__ import annotations

import re
from functools import lru_cache

from sandbox.judge.rules import CREDENTIAL_PATHS, SYSTEM_SECRETS
from sandbox.models import (
    Address,
    Event,
    EventKind,
)
from sandbox.report.sanitize import argv_text, printable

# ---------------------------------------------------------------- locations

LOCATIONS: tuple[tuple[str, str], ...] = (
    ("credentials", "credentials (keys, tokens, cloud config, secrets)"),
    ("home", "home directory"),
    ("site-packages", "site-packages and the virtualenv"),
    ("temp", "temporary directories"),
    ("system", "system (/usr, /etc, /proc, /dev …)"),
    ("other", "other"),
)
_LOCATION_ORDER = {name: i for i, (name, _) in enumerate(LOCATIONS)}
_LABELS = dict(LOCATIONS)
_TEMP = re.compile(r"^/(?:tmp|var/tmp|dev/shm)(?:/|$)")
_HOME = re.compile(r"^/(?:root|home/[^/]+)(?:/|$)")
_SITE = re.compile(r"/(?:site|dist)-packages(?:/|$)")
_SYSTEM = re.compile(
    r"^/(?:usr|etc|lib|lib32|lib64|libx32|bin|sbin|opt|var|run|proc|sys|dev|boot|srv)"
    r"(?:/|$)"
)


def venv_root(site_packages: str) -> str:
    """The virtualenv of a site-packages directory: ``…/.venv`` for ``…/.venv/lib/pythonX/site-packages``."""
    m = re.match(r"^(.*)/lib\d*/python[^/]*/(?:site|dist)-packages/?$", site_packages)
    return m.group(1) if m else ""


def _maybe_secret(path: str) -> bool:
    """A cheap superset test of the judge's credential patterns (a hidden name, ``secrets``, ``/etc/``).

    The full patterns cost microseconds per path and most paths are nowhere near a
    credential; ``test_views`` checks that every credential pattern stays inside this test.
    """
    return "/." in path or "secrets" in path or path.startswith("/etc/")


def location_of(path: str, venv: str = "") -> str:
    """The location class of an absolute path; credentials win over where they live."""
    if _maybe_secret(path) and (CREDENTIAL_PATHS.search(path) or SYSTEM_SECRETS.match(path)):
        return "credentials"
    if venv and (path == venv or (path.startswith(venv) and path[len(venv) : len(venv) + 1] == "/")):
        return "site-packages"
    if _TEMP.match(path):
        return "temp"  # pip's build environments live here, site-packages or not
    if _HOME.match(path):
        return "home"
    if _SITE.search(path):
        return "site-packages"
    if _SYSTEM.match(path):
        return "system"
    return "other"


# ---------------------------------------------------------------- descriptions

_ACCESS = {
    EventKind.FILE_READ: "read",
    EventKind.FILE_WRITE: "write",
    EventKind.FILE_STAT: "stat",
    EventKind.FILE_LIST: "list",
    EventKind.FILE_DELETE: "delete",
    EventKind.FILE_RENAME: "rename",
    EventKind.FILE_CHMOD: "chmod",
    EventKind.FILE_LINK: "link",
    EventKind.DIR_CREATE: "mkdir",
    EventKind.EXEC: "exec",
}
ACCESS_ORDER: tuple[str, ...] = (
    "exec",
    "write",
    "rename",
    "rename-to",
    "link",
    "chmod",
    "delete",
    "mkdir",
    "read",
    "list",
    "stat",
)
_ACCESS_RANK = {a: i for i, a in enumerate(ACCESS_ORDER)}
_ACCESS_BIT = {a: 1 << i for i, a in enumerate(ACCESS_ORDER)}
_KIND_BIT = {k: _ACCESS_BIT[a] for k, a in _ACCESS.items()}


@lru_cache(maxsize=4096)
def _access_names(mask: int) -> tuple[str, ...]:
    """Access kinds of a bit mask, in :data:`ACCESS_ORDER`."""
    return tuple(a for a in ACCESS_ORDER if mask & _ACCESS_BIT[a])


_NET_KINDS = {
    EventKind.CONNECT,
    EventKind.SEND,
    EventKind.RECV,
    EventKind.BIND,
    EventKind.LISTEN,
    EventKind.DNS,
}
_ADDRESS_KINDS = _NET_KINDS | {EventKind.SOCKET}
_SOCK_TYPE = re.compile(r"SOCK_(STREAM|DGRAM|RAW|SEQPACKET)")
_PROTO = {"STREAM": "tcp", "DGRAM": "udp", "RAW": "raw", "SEQPACKET": "seqpacket"}
# Bounds on what one row carries: the JSON report keeps everything, the views are for reading.
SUBJECT_LIMIT = 1000
DETAIL_LIMIT = 300
DATA_LIMIT = 200


def _address(a: Address) -> str:
    return printable(a.render(), SUBJECT_LIMIT)


def describe(ev: Event) -> tuple[str, str]:
    """(subject, detail) of an event: what it acted on, and the rest worth a glance."""
    kind = ev.kind
    if kind is EventKind.EXEC:
        argv = ev.argv or ()
        if ev.path and argv and argv[0] == ev.path:
            # the usual case: argv[0] repeats the path, show it once
            return printable(ev.path, SUBJECT_LIMIT), argv_text(argv[1:], DETAIL_LIMIT)
        # argv[0] differs from what ran (PATH lookup, or a process lying about its name): show both
        return printable(ev.path or "", SUBJECT_LIMIT), argv_text(argv, DETAIL_LIMIT)
    if kind is EventKind.SPAWN:
        return (f"pid {ev.target}" if ev.target is not None else "?"), printable(ev.flags or "", DETAIL_LIMIT)
    if kind is EventKind.EXIT:
        if ev.syscall == "killed":
            return printable(ev.flags or "signal", DETAIL_LIMIT), ""
        return f"status {ev.result}" if ev.result is not None else "", ""
    if kind in (EventKind.SIGNAL, EventKind.PTRACE):
        subject = f"pid {ev.target}" if ev.target is not None else printable(ev.path or "", SUBJECT_LIMIT)
        return subject, printable(ev.flags or "", DETAIL_LIMIT)
    if kind in _ADDRESS_KINDS:
        subject = _address(ev.address) if ev.address is not None else printable(ev.path or "", SUBJECT_LIMIT)
        parts = []
        if kind is EventKind.SOCKET and ev.flags:
            return printable(ev.flags, SUBJECT_LIMIT), ""
        if ev.size is not None:
            parts.append(f"{ev.size} B")
        if ev.data:
            parts.append('"' + printable(ev.data, DATA_LIMIT) + '"')
        return subject, " ".join(parts)
    # files and the rest: the path (or what strace printed for a path-less fd)
    subject = printable(ev.path, SUBJECT_LIMIT) if ev.path else printable(ev.flags or "", SUBJECT_LIMIT)
    parts = []
    if ev.path2:
        parts.append("→ " + printable(ev.path2, DETAIL_LIMIT))
    elif ev.path and ev.flags:
        parts.append(printable(ev.flags, DETAIL_LIMIT))
    if ev.size is not None:
        parts.append(f"{ev.size} B")
    if ev.data:  # what was written: often the most telling part of a file or pipe write
        parts.append('"' + printable(ev.data, DATA_LIMIT) + '"')
    return subject, " ".join(parts)
