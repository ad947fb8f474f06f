"""What a caller asked of the appointments list, and its exact REST translation.

The schema turns ``AppointmentFilter`` and ``[AppointmentOrder!]`` into one frozen
``AppointmentCriteria``; this module validates it (an inverted date range is the
user's mistake, not an empty result) and maps it onto ``q[]`` and ``sort``:

=====================================  =============================================
GraphQL                                REST
=====================================  =============================================
``startsAt: {gte: T, lt: U}``          ``q[]=starts_at:>=T`` ``q[]=starts_at:<U``
``localDate: D, businessId: B``        ``q[]=starts_at:>=S`` ``q[]=starts_at:<E``
                                       ``q[]=business_id:=B`` (``S``, ``E``: D's bounds
                                       at B's clock, ``local_time.py``)
``patientIds: [a, b]``                 ``q[]=patient_id:=a,b``
``didNotArrive: true``                 ``q[]=did_not_arrive:=true``
``cancelled: INCLUDE`` / ``ONLY``      ``q[]=cancelled_at:*`` / ``q[]=cancelled_at:?``
``cancelled: EXCLUDE`` (default)       nothing: the upstream hides cancelled rows
``orderBy: [{field: STARTS_AT,         ``sort=starts_at:desc,id:desc``
direction: DESC}]``
=====================================  =============================================

A local day needs the business's zone, so the schema's criteria carry it as a
:class:`LocalDay` and ``local_time.local_day`` turns it into the ``startsAt`` range (with
any ``startsAt`` the caller gave: the intersection, :meth:`AppointmentCriteria.on_local_day`)
before anything reads ``filters()`` or the replica.  ``businessId`` also narrows
``businessIds`` (both given: the appointments at that business if the list names it, else
none).

Every order ends with ``id`` so that rows with equal keys keep one order across page
requests, and a reversed walk (``last`` without ``before``) is the exact mirror.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal

from appointments_gateway.resolvers.errors import BadUserInput
from appointments_gateway.upstream.filters import APPOINTMENT_LIST, Filter

__all__ = [
    "AppointmentCriteria",
    "Inclusion",
    "LocalDay",
    "OrderField",
    "OrderKey",
    "TimeRange",
]

Inclusion = Literal["INCLUDE", "EXCLUDE", "ONLY"]
OrderField = Literal["starts_at", "ends_at", "created_at", "updated_at"]

#: How many ids one list filter may carry; the upstream pages hold at most 100 rows.
MAX_FILTER_IDS = 100


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Bounds on one date-time column; any subset may be given."""

    gt: datetime | None = None
    gte: datetime | None = None
    lt: datetime | None = None
    lte: datetime | None = None

    def check(self, name: str) -> None:
        if self.gt is not None and self.gte is not None:
            raise BadUserInput(f"filter.{name}: give gt or gte, not both.")
        if self.lt is not None and self.lte is not None:
            raise BadUserInput(f"filter.{name}: give lt or lte, not both.")
        low = self.gt if self.gt is not None else self.gte
        high = self.lt if self.lt is not None else self.lte
        if low is not None and high is not None:
            empty = low >= high if (self.gt is not None or self.lt is not None) else low > high
            if empty:
                raise BadUserInput(
                    f"filter.{name}: the range is empty (its lower bound is not before its "
                    "upper bound)."
                )

    def filters(self, column: str) -> list[Filter]:
        bounds = ((">", self.gt), (">=", self.gte), ("<", self.lt), ("<=", self.lte))
        return [
            APPOINTMENT_LIST.where(column, op, value) for op, value in bounds if value is not None
        ]


@dataclass(frozen=True, slots=True)
class LocalDay:
    """A calendar day at a business's clock (``localDate`` with ``businessId``)."""

    date: date
    business_id: str


@dataclass(frozen=True, slots=True)
class OrderKey:
    field: OrderField
    descending: bool = False


@dataclass(frozen=True, slots=True)
class AppointmentCriteria:
    """A validated appointments query, minus the page window.

    Id lists are ``None`` when not given; an empty tuple means "matches nothing", which
    the caller answers without an upstream call.  ``local_day`` is still to be turned
    into ``starts_at`` bounds (``local_time.local_day``); ``filters()`` refuses until it is.
    """

    starts_at: TimeRange | None = None
    ends_at: TimeRange | None = None
    created_at: TimeRange | None = None
    updated_at: TimeRange | None = None
    ids: tuple[str, ...] | None = None
    patient_ids: tuple[str, ...] | None = None
    practitioner_ids: tuple[str, ...] | None = None
    business_ids: tuple[str, ...] | None = None
    appointment_type_ids: tuple[str, ...] | None = None
    repeated_from_id: str | None = None
    did_not_arrive: bool | None = None
    cancelled: Inclusion = "EXCLUDE"
    archived: Inclusion = "EXCLUDE"
    order: tuple[OrderKey, ...] = field(default=(OrderKey("starts_at"),))
    local_day: LocalDay | None = None

    def __post_init__(self) -> None:
        for name in ("starts_at", "ends_at", "created_at", "updated_at"):
            bounds: TimeRange | None = getattr(self, name)
            if bounds is not None:
                bounds.check(_camel(name))
        for name in (
            "ids",
            "patient_ids",
            "practitioner_ids",
            "business_ids",
            "appointment_type_ids",
        ):
            values: tuple[str, ...] | None = getattr(self, name)
            if values is not None and len(values) > MAX_FILTER_IDS:
                raise BadUserInput(
                    f"filter.{_camel(name)}: at most {MAX_FILTER_IDS} ids, got {len(values)}."
                )
        fields = [key.field for key in self.order]
        if len(set(fields)) != len(fields):
            raise BadUserInput("orderBy: each field may appear once.")

    @property
    def matches_nothing(self) -> bool:
        return any(
            values is not None and not values
            for values in (
                self.ids,
                self.patient_ids,
                self.practitioner_ids,
                self.business_ids,
                self.appointment_type_ids,
            )
        )

    def on_local_day(self, start: datetime, end: datetime) -> AppointmentCriteria:
        """The same query with ``startsAt`` narrowed to ``[start, end)``, the local day.

        A ``startsAt`` range the caller gave is intersected with the day (the stricter
        bound on each side); an intersection that is empty is the caller's mistake, as an
        inverted range is, and refused.
        """
        own = self.starts_at or TimeRange()
        gt = gte = lt = lte = None
        if own.gt is not None and own.gt >= start:
            gt = own.gt
        elif own.gte is not None and own.gte > start:
            gte = own.gte
        else:
            gte = start
        if own.lt is not None and own.lt <= end:
            lt = own.lt
        elif own.lte is not None and own.lte < end:
            lte = own.lte
        else:
            lt = end
        low, high = gt if gt is not None else gte, lt if lt is not None else lte
        assert low is not None
        assert high is not None
        if low > high or (low == high and (gt is not None or lt is not None)):
            raise BadUserInput(
                "filter.startsAt does not overlap filter.localDate: the local day is "
                f"[{_utc(start)}, {_utc(end)})."
            )
        return replace(self, starts_at=TimeRange(gt=gt, gte=gte, lt=lt, lte=lte), local_day=None)

    def filters(self) -> list[Filter]:
        """The ``q[]`` filters, in a stable order."""
        if self.local_day is not None:
            raise AssertionError("a local day is turned into startsAt bounds first")
        out: list[Filter] = []
        for column in ("starts_at", "ends_at", "created_at", "updated_at"):
            bounds: TimeRange | None = getattr(self, column)
            if bounds is not None:
                out.extend(bounds.filters(column))
        for column, values in (
            ("id", self.ids),
            ("patient_id", self.patient_ids),
            ("practitioner_id", self.practitioner_ids),
            ("business_id", self.business_ids),
            ("appointment_type_id", self.appointment_type_ids),
        ):
            if values:
                out.append(APPOINTMENT_LIST.where(column, "=", sorted(set(values))))
        if self.repeated_from_id is not None:
            out.append(APPOINTMENT_LIST.where("repeated_from_id", "=", self.repeated_from_id))
        if self.did_not_arrive is not None:
            out.append(APPOINTMENT_LIST.where("did_not_arrive", "=", self.did_not_arrive))
        out.extend(_inclusion("cancelled_at", self.cancelled))
        out.extend(_inclusion("archived_at", self.archived))
        return out

    def sort(self, *, reverse: bool = False) -> list[str]:
        """The ``sort`` keys, ending with ``id``; ``reverse`` mirrors every key."""
        keys: list[tuple[str, bool]] = [(key.field, key.descending) for key in self.order]
        keys.append(("id", keys[-1][1] if keys else False))
        return [f"{name}:{'asc' if desc == reverse else 'desc'}" for name, desc in keys]

    def scope(self, *parts: object) -> tuple[object, ...]:
        """A description of this query for cursor scoping (what a cursor is valid for)."""
        return (*parts, *(getattr(self, name) for name in self.__slots__))

    def with_parent(self, column: str, parent_ids: Sequence[str]) -> AppointmentCriteria:
        """The same query restricted to some parents (``patient_id`` and so on)."""

        def narrowed(own: tuple[str, ...] | None) -> tuple[str, ...]:
            return tuple(parent_ids) if own is None else tuple(i for i in parent_ids if i in own)

        if column == "patient_id":
            return replace(self, patient_ids=narrowed(self.patient_ids))
        if column == "practitioner_id":
            return replace(self, practitioner_ids=narrowed(self.practitioner_ids))
        if column == "business_id":
            return replace(self, business_ids=narrowed(self.business_ids))
        raise ValueError(f"cannot restrict appointments by {column!r}")


def _inclusion(column: str, inclusion: Inclusion) -> list[Filter]:
    if inclusion == "INCLUDE":
        return [APPOINTMENT_LIST.where(column, "*")]
    if inclusion == "ONLY":
        return [APPOINTMENT_LIST.where(column, "?")]
    return []


def _utc(instant: datetime) -> str:
    return instant.replace(tzinfo=None).isoformat() + "Z"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
