"""Paths as the kernel resolves them, for both trace decoders (pure).

The eBPF recorder reads a path argument as the caller wrote it; strace's ``-yy``
prints the file the kernel opened. To judge the same path, the decoder resolves
what the trace itself tells: ``/proc/<self|pid>/{cwd,root,fd/N}`` and ``/dev/fd/N``
magic links (before lexical normalisation, or ``/proc/self/cwd/../.ssh/id_rsa``
would become ``/proc/self/.ssh/id_rsa``), then a walk component by component that
follows the symlinks created earlier in the trace where the kernel meets them: a
``..`` after a link climbs from the link's target (``/tmp/l/../.ssh`` with ``l`` →
``~/.cache`` is ``~/.ssh``), a target is walked in its turn, and the last component is
followed by the calls that follow it (open, exec, chdir). The strace parser uses the
same functions for ``-yy``-less paths (a ``/proc/self/cwd/..`` argument, a path under a
symlink it saw created).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from sandbox.trace.strace._syntax import normalise

__all__ = ["PROC_LINK_RE", "kernel_path", "proc_link", "through_links", "walk"]

# /proc/<self|pid>/{cwd,root,fd/N} and /dev/fd/N: magic links the kernel follows to the
# process's cwd, root or open file; resolved before lexical normalisation, or
# ``/proc/self/cwd/../.ssh/id_rsa`` would become ``/proc/self/.ssh/id_rsa``.
PROC_LINK_RE = re.compile(
    r"^(?:/proc/(self|thread-self|\d+)(?:/task/\d+)?/(cwd|root|fd/(\d+))|/dev/fd/(\d+))(?=/|$)"
)


class _Task(Protocol):
    @property
    def cwd(self) -> str | None: ...
    @property
    def fds(self) -> Mapping[int, Any]: ...


def kernel_path(
    path: str,
    own: _Task,
    find: Callable[[int], _Task | None],
    links: Mapping[str, str],
    *,
    follow_last: bool = False,
) -> str:
    """Absolute *path* of task *own* as the kernel resolves it, as far as the trace
    tells; *find* gives another task by its pid (as the candidate names it);
    *follow_last*: the call follows a symlink in the last component too."""
    if path.startswith(("/proc/", "/dev/fd/")):
        path = proc_link(path, own, find)
    if links:
        return walk(path, links, follow_last=follow_last)
    return normalise(path)


def proc_link(path: str, own: _Task, find: Callable[[int], _Task | None]) -> str:
    """``/proc/self/cwd/x`` → ``<cwd>/x`` (also ``root``, ``fd/N``, ``/dev/fd/N``, a
    pid *find* knows); unchanged when the target is not known."""
    m = PROC_LINK_RE.match(path)
    if m is None:
        return path
    who, what, fd, devfd = m.groups()
    if devfd is not None:
        target: _Task | None = own
        what, fd = "fd", devfd
    elif who in ("self", "thread-self"):
        target = own
    else:
        target = find(int(who))
    if target is None:
        return path
    if what == "cwd":
        base: Any = target.cwd
    elif what == "root":
        base = ""
    else:
        base = target.fds.get(int(fd))
    if not isinstance(base, str):
        return path
    return (base.rstrip("/") + path[m.end() :]) or "/"


def through_links(path: str, links: Mapping[str, str]) -> str:
    """Follow the symlinks the trace created in *path*'s directory part (not its last
    component: lstat/unlink act on a link itself)."""
    return walk(path, links, follow_last=False)


_MAX_LINKS = 40  # the kernel's own bound on symlinks followed in one lookup (ELOOP)


def walk(path: str, links: Mapping[str, str], *, follow_last: bool) -> str:
    """Absolute *path* resolved as the kernel walks it: each component in turn, a
    known symlink replaced by its (absolute) target before the next one, so ``..``
    after a link leaves the link's target, not the link's directory."""
    if not path.startswith("/"):
        return path
    pending = [c for c in path.split("/") if c and c != "."]
    pending.reverse()  # a stack: the next component last
    done: list[str] = []
    budget = _MAX_LINKS
    while pending:
        comp = pending.pop()
        if comp == "..":
            if done:
                done.pop()
            continue
        done.append(comp)
        here = "/" + "/".join(done)
        target = links.get(here)
        if target is None or (not pending and not follow_last) or budget <= 0:
            continue
        budget -= 1
        done.pop()
        if target.startswith("/"):
            done = []
        more = [c for c in target.split("/") if c and c != "."]
        pending.extend(reversed(more))
    return "/" + "/".join(done)
