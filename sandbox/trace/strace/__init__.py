"""Pure strace parser: the text of ``strace -f -yy -ttt`` in, :class:`Event`\\ s out.

The runner starts the sandbox command under :func:`strace_argv`; this module turns
the resulting file into normalised events plus a process table.  It does no I/O
besides :func:`parse_strace_file` and never raises on odd input: lines it cannot
read are counted in :attr:`ParsedTrace.unparsed`.

What it reconstructs from the line stream:

* ``<unfinished ...>`` / ``<... NAME resumed>`` pairs are joined per thread id;
  the event takes the start line's time and position.
* Threads (``CLONE_THREAD``) are folded into their thread-group leader: an
  event's ``pid`` is always a process id.  A child that prints before its
  parent's ``clone``/``vfork`` has returned is attributed provisionally to the
  (latest) pending spawn and corrected when the return value arrives.
* Paths are made absolute through the ``-yy`` dirfd decoration, the
  ``AT_FDCWD</cwd>`` decoration, or a per-process cwd learnt from those
  decorations, ``getcwd``, ``chdir`` and ``fchdir`` (inherited at fork, shared
  by threads).  They are normalised lexically (``posixpath.normpath``), never
  through symlinks.  A relative path with no known cwd is kept as printed and
  counted in ``degraded``, as is a path or address strace could only show as a
  pointer.
* Socket writes (``write``/``sendto(…, NULL, …)``) get their destination from
  the fd decoration (``TCP:[a:p->b:q]``) or, for unix sockets whose decoration
  names no peer path, from an earlier ``connect`` on the same socket inode.

Event conventions beyond :class:`~sandbox.models.Event`'s docstring:

* ``SPAWN``: ``target`` = child id, ``flags`` = ``"thread"`` or ``"process"``,
  followed by any ``CLONE_NEW*`` namespace flags (``"process|CLONE_NEWUSER"``).
* ``EXIT``: one per process (thread-group leader) from the ``+++`` line;
  ``syscall`` is ``"exited"`` (``result`` = exit code) or ``"killed"``
  (``flags`` = signal, e.g. ``"SIGABRT (core dumped)"``).  ``exit``/``exit_group``
  calls themselves produce no event.
* ``FILE_LINK``: ``path`` = the new name, ``path2`` = the target; a symlink's
  relative target is resolved against the link's directory (what it points to).
* ``sendfile``/``splice``: ``path`` = destination fd, ``path2`` = source fd.
* ``memfd_create`` is ``OTHER`` (not ``PRIVILEGED``): it needs no privilege and
  libffi uses it for closures, so every ctypes/cffi user would trip a privilege
  rule.  Its ``path`` is ``/memfd:NAME``, the name strace then shows for the fd,
  so writes to it and an ``execveat`` of it line up for the judge.
* ``chroot``, ``pivot_root``, ``swapon``/``swapoff``, ``acct``, ``quotactl``,
  the new mount API and ``kexec_*`` are ``PRIVILEGED`` as well.
* Strings are C-unescaped and decoded as UTF-8 for ``path``/``argv``; bytes that
  are not UTF-8 appear as ``\\xNN``.  ``data`` keeps strace's escaped form.
  Strings and argv arrays cut at ``-s`` keep their printed prefix (an argv cut
  short ends with a ``"..."`` element) and are counted in ``truncated_strings``.

Layout: :mod:`.lines` reads the line syntax and drives the parse, :mod:`.syscalls`
turns each call into event fields (dispatching on :mod:`.tables`),
:mod:`.processes` keeps the task, cwd and fd state paths are resolved against,
:mod:`.events` builds the models and :mod:`._syntax` holds the stateless lexing.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from sandbox.models import Phase
from sandbox.runner.recorder import STRACE_STRING_LIMIT, STRACE_SYSCALLS, strace_argv
from sandbox.trace.strace.events import ParsedTrace

# Not public; the tests reach the parser and the Event constructors through here.
from sandbox.trace.strace.events import _make_event_fast as _make_event_fast
from sandbox.trace.strace.events import _make_event_slow as _make_event_slow
from sandbox.trace.strace.events import make_event as make_event
from sandbox.trace.strace.lines import _Parser as _Parser
from sandbox.trace.strace.tables import _open_kind as _open_kind  # also for sandbox.trace.ebpf

__all__ = [
    "STRACE_STRING_LIMIT",
    "STRACE_SYSCALLS",
    "ParsedTrace",
    "parse_strace",
    "parse_strace_file",
    "strace_argv",
]


def parse_strace(text: str, phase: Phase, *, seq_start: int = 0, root_ppid: int | None = None) -> ParsedTrace:
    """Parse the text of one ``strace -f -yy -ttt`` output file.

    *phase* is stamped on every event and process; event ``seq`` numbers start
    at *seq_start* and follow the order of the (start) lines; the first process
    seen gets *root_ppid* as its parent.  Never raises on malformed input.

    The cyclic garbage collector is paused while it runs (and restored): the
    parse builds a few objects per line and frees none, and collections over
    that growing heap cost about a third of the run time.
    """
    return _Parser(phase, root_ppid).run(text, seq_start)


def parse_strace_file(
    path: Path, phase: Phase, *, seq_start: int = 0, root_ppid: int | None = None
) -> ParsedTrace:
    """Parse a strace output file (gzip-compressed if it ends in ``.gz``): the same
    result as :func:`parse_strace` on its text, read line by line.

    Bytes that are not UTF-8 are replaced (strace escapes everything outside
    printable ASCII, so only damaged files have any).
    """
    opener = gzip.open if path.suffix == ".gz" else open
    # read as a stream (newline="\n": split exactly where parse_strace splits a text):
    # a big project's trace is gigabytes, its lines many more as separate strings
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="\n") as fh:
        return _Parser(phase, root_ppid).run_file(fh, seq_start)
