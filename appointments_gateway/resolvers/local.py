"""Appointment lists answered from the replica, exactly as the upstream would answer them.

A list is answered here only when the replica holds *every* row that could match
(``ReplicaView``): its ``startsAt`` range lies inside the replica's coverage, or it names
appointment ids all known to the replica, or patients whose appointments the replica holds
whole.  Then the matching rows are filtered and ordered here exactly as the upstream's
``q[]`` and ``sort`` would (the same comparisons on the same whole-second values, the same
``id`` tie-breaker in the direction of the last key), and handed to ``paginate`` through an
in-memory page fetch: cursors, ``pageInfo`` and ``totalCount`` come from the very code the
upstream path uses, so they cannot differ.  Anything else returns ``None`` and goes
upstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from appointments_gateway.replica import ReplicaView
from appointments_gateway.resolvers.criteria import AppointmentCriteria, Inclusion, TimeRange
from appointments_gateway.resolvers.pagination import Fetched, PageRequest
from appointments_gateway.upstream import AppointmentRecord

__all__ = ["InMemoryList", "matches", "matching_rows"]


def matching_rows(
    view: ReplicaView, criteria: AppointmentCriteria
) -> list[AppointmentRecord] | None:
    """Every appointment matching ``criteria``, in its order; ``None`` if not all are held."""
    if criteria.local_day is not None:
        raise AssertionError("a local day is turned into startsAt bounds first")
    candidates = _candidates(view, criteria)
    if candidates is None:
        view.count(hit=False)
        return None
    view.count(hit=True)
    rows = [row for row in candidates if matches(criteria, row)]
    return _ordered(rows, criteria)


class InMemoryList:
    """A ``paginate`` fetch over rows already in order: pages as the upstream cuts them."""

    __slots__ = ("_reversed", "_rows")

    def __init__(self, rows: Sequence[AppointmentRecord]) -> None:
        self._rows = rows
        self._reversed: Sequence[AppointmentRecord] | None = None

    async def __call__(self, request: PageRequest) -> Fetched[AppointmentRecord]:
        rows = self._rows
        if request.reverse:
            # Every sort key flipped, the id tie-breaker too: the order exactly backwards.
            if self._reversed is None:
                self._reversed = rows[::-1]
            rows = self._reversed
        start = (request.page - 1) * request.per_page
        return Fetched(items=rows[start : start + request.per_page], total_entries=len(self._rows))


def _candidates(view: ReplicaView, criteria: AppointmentCriteria) -> list[AppointmentRecord] | None:
    if criteria.matches_nothing:
        return []
    bounds = criteria.starts_at
    if bounds is not None:
        low = bounds.gt if bounds.gt is not None else bounds.gte
        high = bounds.lt if bounds.lt is not None else bounds.lte
        if low is not None and high is not None:
            rows = view.covering(low, high)
            if rows is not None:
                return rows
    if criteria.ids is not None:
        known = view.known(criteria.ids)
        if known is not None:
            return known
    if criteria.patient_ids is not None:
        return view.of_patients(criteria.patient_ids)
    return None


def _within(bounds: TimeRange | None, value: datetime) -> bool:
    if bounds is None:
        return True
    if bounds.gt is not None and not value > bounds.gt:
        return False
    if bounds.gte is not None and not value >= bounds.gte:
        return False
    if bounds.lt is not None and not value < bounds.lt:
        return False
    return not (bounds.lte is not None and not value <= bounds.lte)


def _included(inclusion: Inclusion, stamp: datetime | None) -> bool:
    if inclusion == "INCLUDE":
        return True
    if inclusion == "ONLY":
        return stamp is not None
    return stamp is None


def _among(values: tuple[str, ...] | None, value: str | None) -> bool:
    return values is None or (value is not None and value in values)


def matches(c: AppointmentCriteria, row: AppointmentRecord, *, deleted: bool = False) -> bool:
    """``q[]`` semantics: every filter holds (a null never equals anything).

    ``deleted``: whether the row would match but for its deletion (live updates tell a
    subscriber of the deletion of a row its filter matched).
    """
    return (
        (deleted or row.deleted_at is None)
        and _included(c.cancelled, row.cancelled_at)
        and _included(c.archived, row.archived_at)
        and _within(c.starts_at, row.starts_at)
        and _within(c.ends_at, row.ends_at)
        and _within(c.created_at, row.created_at)
        and _within(c.updated_at, row.updated_at)
        and _among(c.ids, row.id)
        and _among(c.patient_ids, row.patient_id)
        and _among(c.practitioner_ids, row.practitioner_id)
        and _among(c.business_ids, row.business_id)
        and _among(c.appointment_type_ids, row.appointment_type_id)
        and (c.repeated_from_id is None or row.repeated_from_id == c.repeated_from_id)
        and (c.did_not_arrive is None or row.did_not_arrive == c.did_not_arrive)
    )


def _ordered(
    rows: list[AppointmentRecord], criteria: AppointmentCriteria
) -> list[AppointmentRecord]:
    """``sort=<keys>,id``: the id in the last key's direction, compared as a number.

    Sorted from the least significant key to the most (Python's sort is stable), so each
    key keeps its own direction.
    """
    order = criteria.order
    last_descending = order[-1].descending if order else False
    rows.sort(key=lambda row: int(row.id), reverse=last_descending)
    for key in reversed(order):
        field = key.field
        rows.sort(key=lambda row: getattr(row, field), reverse=key.descending)
    return rows
