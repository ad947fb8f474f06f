"""Scalars: ``DateTime`` is ISO-8601 in UTC with a ``Z``, as Cliniko sends it."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

__all__ = ["DateTime", "parse_datetime", "serialize_datetime"]


def serialize_datetime(value: datetime) -> str:
    value = value.astimezone(UTC) if value.utcoffset() else value
    text = value.replace(tzinfo=None).isoformat()
    return text + "Z"


def parse_datetime(value: object) -> datetime:
    """Accept ``2024-04-02T14:45:00Z`` or any offset; refuse a time without a zone."""
    if not isinstance(value, str):
        raise ValueError("DateTime must be a string such as '2024-04-02T14:45:00Z'.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"DateTime {value[:40]!r} is not ISO-8601 (expected e.g. '2024-04-02T14:45:00Z')."
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"DateTime {value[:40]!r} has no time zone; add 'Z' for UTC.")
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
