"""Cliniko's timestamp format: UTC, ``Z`` suffix, whole seconds (``2024-04-02T20:04:46Z``).

Every timestamp is stored in SQLite as this exact text, so text comparison is time comparison.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = ["format_ts", "now_utc", "parse_ts"]

_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


def format_ts(value: datetime) -> str:
    """Format an aware datetime the way Cliniko does."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(value: str) -> datetime | None:
    """Parse an ISO-8601 date-time with ``Z`` or an offset; ``None`` if it is not one.

    Fractional seconds and offsets are accepted (leniently) and converted to UTC; a value
    without a zone is refused, since Cliniko says every value is UTC.
    """
    if not _TS.match(value):
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    match = re.match(r"^(.*T\d{2}:\d{2}:\d{2})\.(\d+)(.*)$", text)
    if match:  # fromisoformat in 3.11 wants 3 or 6 fraction digits
        text = f"{match[1]}.{match[2][:6].ljust(6, '0')}{match[3]}"
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None


def now_utc() -> datetime:
    """The current time in UTC, truncated to whole seconds like Cliniko's payloads."""
    return datetime.now(UTC).replace(microsecond=0)
