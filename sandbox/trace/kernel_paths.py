"""Paths as the kernel resolves them, for both trace decoders (pure).

The eBPF recorder reads a path argument as the caller wrote it; strace's ``-yy``
prints the file the kernel opened. To judge the same path, the decoder resolves
what the trace itself tells: ``/proc/<self|pid>/{cwd,root,fd/N}`` and ``/dev/fd/N``
magic links (before lexical normalisation, or ``/proc/self/cwd/../.ssh/id_rsa``
would become ``/proc/self/.ssh/id_rsa``), then ``..``, then the symlinks created
earlier in the trace. The strace parser uses the same functions for ``-yy``-less
paths (a ``/proc/self/cwd/..`` argument, a path under a symlink it saw created).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from sandbox.trace.strace._syntax import normalise

__all__ = ["PROC_LINK_RE", "kernel_path", "proc_link", "through_links"]

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


def kernel_path(path: str, own: _Task, find: Callable[[int], _Task | None], links: Mapping[str, str]) -> str:
    """Absolute *path* of task *own* as the kernel resolves it, as far as the trace
    tells; *find* gives another task by its pid (as the candidate names it)."""
    if path.startswith(("/proc/", "/dev/fd/")):
        path = proc_link(path, own, find)
    path = normalise(path)
    return through_links(path, links) if links else path


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
    for _ in range(8):  # link chains, bounded
        head = path
        hit = None
        while hit is None:
            i = head.rfind("/")
            if i <= 0:
                break
            head = head[:i]
            if head in links:
                hit = head
        if hit is None:
            return path
        path = normalise(links[hit] + path[len(hit) :])
    return path
