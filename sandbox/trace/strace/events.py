"""The parser's output models; the fast Event construction lives in
:mod:`sandbox.eventrows` (re-exported here for the parsers and tests).

:class:`ParsedTrace` is what :func:`~sandbox.trace.strace.parse_strace` returns.
"""

from __future__ import annotations

from typing import Any

from sandbox.eventrows import _make_event_fast as _make_event_fast
from sandbox.eventrows import _make_event_slow as _make_event_slow
from sandbox.eventrows import make_event as make_event
from sandbox.eventrows import share_strings as share_strings
from sandbox.models import Event, Frozen, Phase, ProcessInfo


class ParsedTrace(Frozen):
    """Everything one strace output file says, normalised."""

    events: tuple[Event, ...]
    processes: tuple[ProcessInfo, ...]
    lines: int  # lines read
    unparsed: int  # lines that matched nothing
    unparsed_samples: tuple[str, ...]  # the first 20 (each cut at 500 characters)
    truncated_strings: int  # strings (and argv arrays) strace cut at -s
    degraded: int  # calls whose path or address strace could not decode
    complete: bool  # False if the text ends mid-line or a call never resumed in a live process


def process_info(p: Any, phase: Phase) -> ProcessInfo:
    """The frozen record of a parser's mutable process state (strace and eBPF parsers
    share the slots: pid, ppid, argv, exe, start, end, exit_code, killed_by, execs)."""
    return ProcessInfo.model_construct(
        pid=p.pid,
        ppid=p.ppid,
        phase=phase,
        argv=p.argv,
        exe=p.exe,
        start=p.start,
        end=p.end,
        exit_code=p.exit_code,
        killed_by=p.killed_by,
        execs=tuple(p.execs),
    )
