r"""Scalars: ``DateTime``, an instant (UTC, ``Z``), and ``Date``, a calendar day.

``DateTime`` is ISO-8601 in UTC with a ``Z``, as Cliniko sends it; ``Date`` is
``YYYY-MM-DD``.  These two are the schema's only custom scalars; both say so in the SDL
(a description and ``@specifiedBy``: RFC 3339's ``date-time`` and ``full-date``), which
graphql-codegen's ``strictScalars`` needs to map them (README).

Input must be a whole instant in ISO-8601's extended form with an offset, and nothing
else: ``2024-04-02T14:45:00Z`` or ``2024-04-03T00:45:00+10:00``, the seconds optionally
with a fraction.  :data:`_INSTANT` checks the shape before ``datetime.fromisoformat`` sees
the text (it then checks the ranges: month 13, hour 24, February 30), because on its own
``fromisoformat`` (Python 3.11) takes far more: it stops reading at a NUL after the zone
(``"...Z\x00junk"`` passed), and it takes any separator for ``T``, the basic form, week
dates, an hour without minutes and ``+01`` offsets.  The pattern spells ``[0-9]``, since
``\d`` would match any Unicode digit.  ``Date`` input is checked the same way
(:data:`_DAY`): ``date.fromisoformat`` alone takes ``20261124`` and ``2026-W48-2``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import strawberry

__all__ = [
    "RFC_3339",
    "Date",
    "DateTime",
    "parse_date",
    "parse_datetime",
    "serialize_date",
    "serialize_datetime",
]

#: What both scalars' ``@specifiedBy`` points at: RFC 3339 §5.6, the grammar of
#: ``full-date`` (``Date``) and ``date-time`` (``DateTime``, always with an offset).
RFC_3339 = "https://datatracker.ietf.org/doc/html/rfc3339#section-5.6"

#: ``YYYY-MM-DDTHH:MM:SS[.fraction]`` and an optional zone, ``Z`` or ``±HH:MM`` (a missing
#: zone gets its own message).  Up to 9 fraction digits, as RFC 3339 nanosecond clocks
#: write them; ``fromisoformat`` keeps microseconds (Cliniko itself keeps seconds).
_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})?"
)
#: ``YYYY-MM-DD``: RFC 3339's ``full-date``, and nothing else.
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def serialize_datetime(value: datetime) -> str:
    value = value.astimezone(UTC) if value.utcoffset() else value
    text = value.replace(tzinfo=None).isoformat()
    return text + "Z"


def parse_datetime(value: object) -> datetime:
    """Accept ``2024-04-02T14:45:00Z`` or any offset; refuse a time without a zone."""
    if not isinstance(value, str):
        raise ValueError("DateTime must be a string such as '2024-04-02T14:45:00Z'.")
    not_iso = f"DateTime {value[:40]!r} is not ISO-8601 (expected e.g. '2024-04-02T14:45:00Z')."
    match = _INSTANT.fullmatch(value)
    if match is None:
        raise ValueError(not_iso)
    if match["zone"] is None:
        raise ValueError(f"DateTime {value[:40]!r} has no time zone; add 'Z' for UTC.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(not_iso) from None
    return parsed.astimezone(UTC)


def serialize_date(value: date) -> str:
    return value.isoformat()


def parse_date(value: object) -> date:
    """Accept ``2026-11-24``; refuse any other form and a day that does not exist."""
    if not isinstance(value, str):
        raise ValueError("Date must be a string such as '2026-11-24'.")
    wrong = f"Date {value[:40]!r} is not a calendar day as YYYY-MM-DD (e.g. '2026-11-24')."
    if _DAY.fullmatch(value) is None:
        raise ValueError(wrong)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(wrong) from None


#: Registered with ``StrawberryConfig(scalar_map={datetime: DateTime, date: Date})``, so
#: fields annotated ``datetime`` and ``date`` serialise this way.
DateTime = strawberry.scalar(
    name="DateTime",
    description="An instant, as an RFC 3339 / ISO 8601 date-time string. Output is always UTC "
    "with `Z`, e.g. `2024-04-02T14:45:00Z`; input must carry an offset "
    "(`Z` or `±HH:MM`, e.g. `2024-04-03T00:45:00+10:00`) and may have a fraction of a "
    "second. A JSON string: map it to `string` in generated clients.",
    specified_by_url=RFC_3339,
    serialize=serialize_datetime,
    parse_value=parse_datetime,
)
Date = strawberry.scalar(
    name="Date",
    description="A calendar day without a time or zone, as an RFC 3339 full-date string "
    "`YYYY-MM-DD`, e.g. `2026-11-24`, in output and input. A JSON string: map it to "
    "`string` in generated clients.",
    specified_by_url=RFC_3339,
    serialize=serialize_date,
    parse_value=parse_date,
)
