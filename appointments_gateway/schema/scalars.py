r"""Scalars: ``DateTime`` is ISO-8601 in UTC with a ``Z``, as Cliniko sends it.

Input must be a whole instant in ISO-8601's extended form with an offset, and nothing
else: ``2024-04-02T14:45:00Z`` or ``2024-04-03T00:45:00+10:00``, the seconds optionally
with a fraction.  :data:`_INSTANT` checks the shape before ``datetime.fromisoformat`` sees
the text (it then checks the ranges: month 13, hour 24), because on its own
``fromisoformat`` (Python 3.11) takes far more: it stops reading at a NUL after the zone
(``"...Z\x00junk"`` passed), and it takes any separator for ``T``, the basic form, week
dates, an hour without minutes and ``+01`` offsets.  The pattern spells ``[0-9]``, since
``\d`` would match any Unicode digit.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import strawberry

__all__ = ["DateTime", "parse_datetime", "serialize_datetime"]

#: ``YYYY-MM-DDTHH:MM:SS[.fraction]`` and an optional zone, ``Z`` or ``±HH:MM`` (a missing
#: zone gets its own message).  Up to 9 fraction digits, as RFC 3339 nanosecond clocks
#: write them; ``fromisoformat`` keeps microseconds (Cliniko itself keeps seconds).
_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})?"
)


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


#: Registered with ``StrawberryConfig(scalar_map={datetime: DateTime})``, so fields
#: annotated ``datetime`` serialise this way.
DateTime = strawberry.scalar(
    name="DateTime",
    description="An instant as ISO-8601 in UTC, e.g. `2024-04-02T14:45:00Z`. Input may use "
    "any offset; output is always UTC with `Z`.",
    serialize=serialize_datetime,
    parse_value=parse_datetime,
)
