"""The parser's output models and a fast way to build its events.

:class:`ParsedTrace` is what :func:`~sandbox.trace.strace.parse_strace` returns;
:func:`make_event` turns a complete Event field dict into an :class:`Event`
without pydantic's per-field loop (checked equivalent at import, else the
ordinary ``model_construct``).
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

from pydantic import BaseModel

from sandbox.models import Address, Event, EventKind, Frozen, Phase, ProcessInfo


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


# --- fast Event construction -------------------------------------------------------

_EVENT_TEMPLATE: dict[str, Any] = {
    name: (None if field.is_required() else field.get_default()) for name, field in Event.model_fields.items()
}


class _ReadOnlyFieldSet(set[str]):
    """One ``model_fields_set`` shared by every parsed event.

    A 17-name set costs more to allocate than the rest of an event; the parser
    sets every field, so all events have the same one.  Sharing is safe because
    it cannot be changed in place and its copies (``model_copy`` takes one
    before updating) are ordinary sets.
    """

    def _read_only(self, *_: object) -> Any:
        raise TypeError("the fields set of a parsed Event is shared and read-only")

    add = discard = remove = pop = clear = update = _read_only
    intersection_update = difference_update = symmetric_difference_update = _read_only
    __ior__ = __iand__ = __isub__ = __ixor__ = _read_only

    def __copy__(self) -> set[str]:
        return set(self)

    def __deepcopy__(self, memo: object) -> set[str]:
        return set(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (set, (list(self),))


_ALL_FIELDS = _ReadOnlyFieldSet(_EVENT_TEMPLATE)
_new_model = Event.__new__
_set_attr = object.__setattr__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _make_event_fast(fields: dict[str, Any]) -> Event:
    # What Event.model_construct(**fields) builds from a complete field dict in
    # field order, minus its per-field Python loop (4-6 µs an event, most of the
    # parser's budget).  _fast_construction_works() checks the equivalence.
    event = _new_model(Event)
    _set_attr(event, "__dict__", fields)
    _set_fields_set(event, _ALL_FIELDS)
    _set_extra(event, None)
    _set_private(event, None)
    return event


def _make_event_slow(fields: dict[str, Any]) -> Event:
    return Event.model_construct(**fields)


def _fast_construction_works() -> bool:
    # Guard against pydantic internals changing: fall back to model_construct.
    if (
        Event.__pydantic_post_init__
        or Event.__pydantic_root_model__
        or Event.model_config.get("extra") == "allow"
    ):
        return False
    if any(f.alias or f.validation_alias for f in Event.model_fields.values()):
        return False
    sample = _EVENT_TEMPLATE | {
        "phase": Phase.INSTALL,
        "seq": 1,
        "pid": 2,
        "time": 3.0,
        "syscall": "connect",
        "kind": EventKind.CONNECT,
        "address": Address(family="inet", host="192.0.2.1", port=1),
    }
    try:
        fast, slow = _make_event_fast(dict(sample)), _make_event_slow(dict(sample))
        copied = fast.model_copy(update={"seq": 2})
        return (
            fast == slow
            and fast.model_fields_set == slow.model_fields_set
            and fast.model_dump_json() == slow.model_dump_json()
            and copied.seq == 2
            and fast.seq == 1
            and type(copied.model_fields_set) is set
            and pickle.loads(pickle.dumps(fast)) == fast
            and copy.deepcopy(fast) == fast
        )
    except Exception:
        return False


make_event = _make_event_fast if _fast_construction_works() else _make_event_slow


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
