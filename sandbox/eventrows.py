"""Fast construction of :class:`~sandbox.models.Event` objects, for the parsers and the
passes over every event of a run (a big project's run has millions).

:func:`make_event` turns a complete Event field dict into an :class:`Event` without
pydantic's per-field loop (checked equivalent at import, else the ordinary
``model_construct``); the field dicts share one key table (:data:`EVENT_TEMPLATE`) and
the events one fields set; :func:`replace_event` and :func:`relabel_owned` change
fields without ``model_copy``'s per-event copies.
"""

from __future__ import annotations

import copy
import pickle
from sys import intern
from typing import Any

from pydantic import BaseModel

from sandbox.models import Address, Event, EventKind, Phase


class _Row:
    """A plain object whose attribute dict gives :data:`EVENT_TEMPLATE` its shared keys."""


def _shared_keys_dict(fields: dict[str, Any]) -> dict[str, Any]:
    """*fields* as a dict whose key table is shared with its copies (CPython's split
    table, what an object's attribute dict uses): a copy then stores only its values,
    296 bytes instead of 464 for an event, which counts with millions of events.
    Adding a key unshares a copy, so this only serves dicts that keep these keys; an
    interpreter without split tables gets an ordinary dict."""
    row = _Row()
    for name, value in fields.items():
        setattr(row, name, value)
    shared = row.__dict__
    return shared if list(shared.items()) == list(fields.items()) else dict(fields)


# Every Event field with its default (None for the required ones), in field order;
# the parsers copy it for each event (``|`` and ``copy()`` keep the keys shared).
EVENT_TEMPLATE: dict[str, Any] = _shared_keys_dict(
    {
        name: (None if field.is_required() else field.get_default())
        for name, field in Event.model_fields.items()
    }
)


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


_ALL_FIELDS = _ReadOnlyFieldSet(EVENT_TEMPLATE)
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
    sample = EVENT_TEMPLATE | {
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


# Event fields whose strings recur (syscall names, flags, errnos, the same paths
# stat'ed, opened and read): one copy of each (sys.intern drops it when unused).
_SHARED_STRINGS = ("syscall", "path", "path2", "flags", "errno")


def share_strings(fields: dict[str, Any]) -> dict[str, Any]:
    """Intern the recurring strings of an Event field dict, in place; returns it."""
    for key in _SHARED_STRINGS:
        value = fields[key]
        if value.__class__ is str:
            fields[key] = intern(value)
    return fields


def replace_event(event: Event, **changes: Any) -> Event:
    """A copy of *event* with *changes*: what ``model_copy(update=…)`` gives, without
    copying the fields set for each copy (a parsed event's is shared); for the passes
    over every event of a run (pass tags, execute contexts, origins)."""
    if event.__pydantic_fields_set__ is not _ALL_FIELDS or make_event is _make_event_slow:
        return event.model_copy(update=changes)
    fields = event.__dict__.copy()
    fields.update(changes)
    return make_event(fields)


def relabel_owned(event: Event, **changes: Any) -> Event:
    """*event* itself with *changes* written in place, for events their caller owns
    alone (just parsed, in no set or dict, seen by nobody else): a run's millions of
    events would otherwise exist twice while a pass over them copies each one. Any
    other event gets a copy (:func:`replace_event`)."""
    if event.__pydantic_fields_set__ is not _ALL_FIELDS or make_event is _make_event_slow:
        return replace_event(event, **changes)
    event.__dict__.update(changes)
    return event
