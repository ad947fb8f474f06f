"""Local time: an instant at a business's clock, and a business's local day as UTC bounds.

Cliniko keeps every time in UTC; an appointment's local time comes from its *business*'s
``time_zone_identifier``, an IANA zone such as ``Australia/Sydney`` (UPSTREAM.md §4.4,
§8.2).  The rules:

* **The zone** is ``zoneinfo.ZoneInfo(time_zone_identifier)``: the IANA rules, every
  historical and future DST change included.  An identifier the gateway's time zone
  database does not know (misspelt, newer than its tzdata), or a business without one,
  is :class:`UnknownTimeZone` (``UNKNOWN_TIME_ZONE``) on the field that needed it: never
  a guess, never a 500.  Cliniko's own ``time_zone`` label (``"Sydney"``) is not used.
* **A local time** is the instant at the business's clock with the UTC offset in force
  *at that instant*, ISO 8601 with seconds: ``2026-04-05T02:30:00+11:00`` half an hour
  before Sydney's clocks go back, ``2026-04-05T02:30:00+10:00`` half an hour after.
  The offset is always written as ``±HH:MM`` (``+00:00`` in London's winter, never ``Z``),
  so the text alone says which of a repeated hour's two instants it is.
* **A local day** ``D`` at a business is ``[start(D), start(D + 1))`` in UTC, where
  ``start(X)`` is the first instant at which the business's clock reads ``X 00:00`` or
  later: local midnight; its first occurrence where a fall-back repeats midnight; the
  instant of the jump where a spring-forward skips it (Santiago, Havana, Beirut change at
  midnight).  So a DST day is exactly 23 or 25 hours long (Lord Howe's 23.5 and 24.5),
  and consecutive days tile the time line with no gap and no overlap.  A day the zone
  skipped outright (Apia, 2011-12-30) has no instants and is refused.

:func:`local_day` applies it to a filter's ``localDate``: the business is read through
the per-request loader (batched, and from the replica when it holds the business, so a
warm key pays nothing), and the day becomes the ``startsAt`` range (``criteria.py``), so
the upstream's ``q[]`` and the replica answer it as any other range.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from appointments_gateway.resolvers.criteria import AppointmentCriteria
from appointments_gateway.resolvers.errors import BadUserInput, NotFound, UnknownTimeZone
from appointments_gateway.resolvers.loaders import Loaders
from appointments_gateway.upstream import BusinessRecord

__all__ = [
    "day_bounds",
    "local_day",
    "local_iso",
    "zone_of",
]

#: How much of an unknown identifier a message quotes (it comes from the upstream).
_QUOTED = 64


@functools.lru_cache(maxsize=512)
def _zone(identifier: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(identifier)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a directory ("Australia") or an over-long name; ValueError: an
        # absolute or escaping path, a NUL.  None of them is a zone.
        return None


def zone_of(identifier: str | None) -> ZoneInfo:
    """A business's zone from its ``time_zone_identifier``; ``UnknownTimeZone`` if none."""
    if not identifier:
        raise UnknownTimeZone(
            "The business has no time zone (timeZoneIdentifier is empty), so its local "
            "time is unknown.",
            timeZone=None,
        )
    zone = _zone(identifier)
    if zone is None:
        quoted = identifier[:_QUOTED]
        raise UnknownTimeZone(
            f"The business's time zone {quoted!r} is not in the gateway's time zone "
            "database (IANA tzdata), so its local time is unknown.",
            timeZone=quoted,
        )
    return zone


def local_iso(instant: datetime, zone: ZoneInfo) -> str:
    """``instant`` at ``zone``'s clock, ISO 8601 with the offset in force then."""
    return instant.astimezone(zone).isoformat()


def _start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant at which ``zone``'s clock reads ``day`` 00:00 or later (UTC)."""
    midnight = datetime.combine(day, time(), tzinfo=zone)  # fold=0: a repeated midnight's first
    instant = midnight.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == midnight.replace(tzinfo=None):
        return instant
    # Midnight fell in a gap: fold=0 read it with the offset before the jump (an instant at
    # or after it), fold=1 with the offset after (one before it).  The day starts at the
    # jump, the first instant whose clock reads midnight or later: found to the second
    # (zones change on whole seconds).
    wall = midnight.replace(tzinfo=None)
    low = midnight.replace(fold=1).astimezone(UTC)
    high = instant
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) // 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC of the local day ``day`` at ``zone`` (see the module docs).

    ``OverflowError`` for a day at the ends of ``date``'s range; ``ValueError`` for a day
    the zone skipped.
    """
    start = _start(day, zone)
    end = _start(day + timedelta(days=1), zone)
    if end <= start:
        raise ValueError(f"{day.isoformat()} did not happen in {zone.key}")
    return start, end


async def local_day(loaders: Loaders, criteria: AppointmentCriteria) -> AppointmentCriteria:
    """``criteria`` with its ``localDate`` turned into exact ``startsAt`` bounds.

    The business is read through the loader (one batched request at most; none when the
    replica holds it).  Criteria without a local day come back as they are.
    """
    day = criteria.local_day
    if day is None:
        return criteria
    business: BusinessRecord | None = await loaders.of_type("Business").get(day.business_id)
    if business is None:
        raise NotFound("filter.businessId: no such business.")
    zone = zone_of(business.time_zone_identifier)
    try:
        start, end = day_bounds(day.date, zone)
    except OverflowError:
        raise BadUserInput(
            f"filter.localDate: {day.date.isoformat()} is too close to the ends of the calendar."
        ) from None
    except ValueError:
        raise BadUserInput(
            f"filter.localDate: {day.date.isoformat()} did not happen at the business "
            f"({zone.key} skipped it)."
        ) from None
    return criteria.on_local_day(start, end)
