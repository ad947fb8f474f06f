"""What a sync step does to a replica, as a value: applied here, published, applied there.

Every change the sync makes to a replica is one of the values below, built by a step of
:class:`~appointments_gateway.replica.sync.Syncer` and applied by one method,
:meth:`Syncer.apply`.  The process that syncs a credential applies each change as it
makes it; with a shared state (``shared.py``) it also publishes it, and every other
process applies the same value with the same method.  One method for both is what makes a
follower's replica answer the same lists as the holder's: there is no second copy of the
rules to drift.

A change carries what its step read from the upstream (rows, as records) and the sync's
position after it (a feed's next ``updated_at`` cursor, a sync instant, a load's span), so
a process that has applied a change also knows where the next poll must start
(the hand-over guarantee in ``shared.py`` rests on that).  Each change is applied in one
step of the event loop, so no read sees half of one.

The wire form (:func:`encode_changes` / :func:`decode_changes`) is JSON (orjson): a change
is a list ``[tag, ...fields]``, a row the list of its record's field values in declaration
order (date-times as ISO 8601), so an entry is compact and needs no field names.  Rows are
health data: they live in the shared store's values (which expire), never in a key or a log.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, TypeAlias

import orjson

from appointments_gateway.upstream import (
    AppointmentRecord,
    AppointmentTypeRecord,
    BusinessRecord,
    PatientCaseRecord,
    PatientRecord,
    PractitionerRecord,
)

from .store import APPOINTMENTS

__all__ = [
    "RECORD_TYPES",
    "Bye",
    "Change",
    "Coverage",
    "FeedLoaded",
    "Linked",
    "PatientRead",
    "Polled",
    "Span",
    "Trim",
    "WindowLoaded",
    "decode_changes",
    "decode_rows",
    "encode_changes",
    "encode_rows",
]

#: The record type of each kind a replica holds.
RECORD_TYPES: Final[dict[str, type[Any]]] = {
    APPOINTMENTS: AppointmentRecord,
    "businesses": BusinessRecord,
    "practitioners": PractitionerRecord,
    "appointment_types": AppointmentTypeRecord,
    "patients": PatientRecord,
    "patient_cases": PatientCaseRecord,
}


@dataclass(frozen=True, slots=True)
class Polled:
    """A feed's ``updated_at`` poll: its rows, whether whole, its start, its next cursor.

    ``feed`` is ``"appointments"`` or a reference feed's name; ``since`` is the instant the
    feed's next poll asks from.
    """

    feed: str
    kind: str
    rows: tuple[Any, ...]
    whole: bool
    started: float
    since: float


@dataclass(frozen=True, slots=True)
class FeedLoaded:
    """A reference feed read whole for the first time, as of ``started``."""

    feed: str
    kind: str
    rows: tuple[Any, ...]
    started: float


@dataclass(frozen=True, slots=True)
class Linked:
    """Rows the held appointments link to, fetched by id."""

    kind: str
    rows: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Coverage:
    """The coverage starts (an empty span where the load begins)."""

    low: datetime
    high: datetime


@dataclass(frozen=True, slots=True)
class Span:
    """Every appointment starting in ``[low, high)``; ``extend``: the coverage grows by it.

    A load step (``extend``) or a deletion check's re-read of a span (not ``extend``).
    """

    low: datetime
    high: datetime
    rows: tuple[AppointmentRecord, ...]
    extend: bool


@dataclass(frozen=True, slots=True)
class Trim:
    """The coverage before ``low`` is given up (the window moved on)."""

    low: datetime


@dataclass(frozen=True, slots=True)
class PatientRead:
    """Every appointment of one patient, read whole."""

    patient_id: str
    rows: tuple[AppointmentRecord, ...]


@dataclass(frozen=True, slots=True)
class WindowLoaded:
    """The whole window is loaded."""


@dataclass(frozen=True, slots=True)
class Bye:
    """The publishing process gives its lease up now (``shared.py``); changes nothing."""


Change: TypeAlias = (
    Polled | FeedLoaded | Linked | Coverage | Span | Trim | PatientRead | WindowLoaded | Bye
)


# --- rows ----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [_plain(getattr(value, f.name)) for f in dataclasses.fields(value)]
    return value


def _reader(hint: Any) -> Callable[[Any], Any] | None:
    """How a JSON value becomes a field of type ``hint`` again (``None``: as it is)."""
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            inner = _reader(options[0])
            if inner is None:
                return None
            return lambda v: None if v is None else inner(v)
        return None
    if hint is datetime:
        return datetime.fromisoformat
    if hint is date:
        return date.fromisoformat
    if origin is tuple:
        return tuple
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decoder(hint)
    return None


def _decoder(cls: type[Any]) -> Callable[[Any], Any]:
    hints = typing.get_type_hints(cls)
    readers = [_reader(hints[f.name]) for f in dataclasses.fields(cls)]

    def decode(values: Sequence[Any]) -> Any:
        return cls(*[v if r is None else r(v) for r, v in zip(readers, values, strict=True)])

    return decode


_DECODERS: Final = {kind: _decoder(cls) for kind, cls in RECORD_TYPES.items()}


def encode_rows(rows: Iterable[Any]) -> list[list[Any]]:
    """Records as lists of their field values (orjson writes date-times as ISO 8601)."""
    return [_plain(row) for row in rows]


def decode_rows(kind: str, rows: Iterable[Sequence[Any]]) -> tuple[Any, ...]:
    """The records of ``kind`` that :func:`encode_rows` wrote."""
    decode = _DECODERS[kind]
    return tuple(decode(row) for row in rows)


# --- changes -------------------------------------------------------------------------


def _encode(change: Change) -> list[Any]:
    match change:
        case Polled(feed, kind, rows, whole, started, since):
            return ["p", feed, kind, encode_rows(rows), whole, started, since]
        case FeedLoaded(feed, kind, rows, started):
            return ["f", feed, kind, encode_rows(rows), started]
        case Linked(kind, rows):
            return ["l", kind, encode_rows(rows)]
        case Coverage(low, high):
            return ["c", low, high]
        case Span(low, high, rows, extend):
            return ["s", low, high, encode_rows(rows), extend]
        case Trim(low):
            return ["t", low]
        case PatientRead(patient_id, rows):
            return ["r", patient_id, encode_rows(rows)]
        case WindowLoaded():
            return ["w"]
        case Bye():
            return ["b"]
    raise TypeError(f"not a change: {type(change).__name__}")


def _decode(data: Sequence[Any]) -> Change:
    tag = data[0]
    when = datetime.fromisoformat
    if tag == "p":
        _, feed, kind, rows, whole, started, since = data
        return Polled(feed, kind, decode_rows(kind, rows), whole, started, since)
    if tag == "f":
        _, feed, kind, rows, started = data
        return FeedLoaded(feed, kind, decode_rows(kind, rows), started)
    if tag == "l":
        return Linked(data[1], decode_rows(data[1], data[2]))
    if tag == "c":
        return Coverage(when(data[1]), when(data[2]))
    if tag == "s":
        _, low, high, rows, extend = data
        return Span(when(low), when(high), decode_rows(APPOINTMENTS, rows), extend)
    if tag == "t":
        return Trim(when(data[1]))
    if tag == "r":
        return PatientRead(data[1], decode_rows(APPOINTMENTS, data[2]))
    if tag == "w":
        return WindowLoaded()
    if tag == "b":
        return Bye()
    raise ValueError(f"unknown change tag {tag!r}")


def encode_changes(changes: Iterable[Change]) -> list[list[Any]]:
    """Changes as JSON-ready lists (for :func:`orjson.dumps`)."""
    return [_encode(change) for change in changes]


def decode_changes(data: Iterable[Sequence[Any]]) -> list[Change]:
    """The changes :func:`encode_changes` wrote."""
    return [_decode(item) for item in data]


def dumps(value: Any) -> bytes:
    """JSON bytes (orjson; date-times and dates as ISO 8601)."""
    return orjson.dumps(value)


def loads(data: bytes) -> Any:
    return orjson.loads(data)
