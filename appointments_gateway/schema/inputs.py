"""Input types for filtering and ordering appointments, and their translation to criteria."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import strawberry

from appointments_gateway.resolvers.criteria import (
    AppointmentCriteria,
    LocalDay,
    OrderKey,
    TimeRange,
)
from appointments_gateway.resolvers.errors import BadUserInput
from appointments_gateway.resolvers.ids import parse_id
from appointments_gateway.schema.enums import (
    AppointmentOrderField,
    Inclusion,
    OrderDirection,
    inclusion_of,
    order_field_of,
)

__all__ = ["AppointmentFilter", "AppointmentOrder", "DateTimeFilter", "to_criteria"]


@strawberry.input(description="Bounds on an instant; give any of them (an empty range is refused).")
class DateTimeFilter:
    gt: datetime | None = strawberry.field(default=None, description="Strictly after.")
    gte: datetime | None = strawberry.field(default=None, description="At or after.")
    lt: datetime | None = strawberry.field(default=None, description="Strictly before.")
    lte: datetime | None = strawberry.field(default=None, description="At or before.")


@strawberry.input(
    description="Which appointments to return. Conditions are combined with AND; ids accept "
    "global ids or Cliniko ids (at most 100 per list; an empty list matches nothing)."
)
class AppointmentFilter:
    starts_at: DateTimeFilter | None = strawberry.field(default=None, description="Start time.")
    ends_at: DateTimeFilter | None = strawberry.field(default=None, description="End time.")
    created_at: DateTimeFilter | None = strawberry.field(default=None, description="When booked.")
    updated_at: DateTimeFilter | None = strawberry.field(
        default=None, description="When last changed (for incremental sync)."
    )
    ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Only these appointments."
    )
    patient_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Only these patients' appointments."
    )
    practitioner_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Only these practitioners' appointments."
    )
    business_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Only appointments at these businesses."
    )
    business_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Only appointments at this business; with `localDate`, also the business "
        "whose time zone defines the day. With `businessIds` too: none unless the list names it.",
    )
    local_date: date | None = strawberry.field(
        default=None,
        description="Only appointments starting on this calendar day at the business's clock "
        "(`businessId` required; its `timeZoneIdentifier`): from local midnight to the next, "
        "exactly, so a daylight-saving day is 23 or 25 hours. With `startsAt` too: both hold "
        "(an empty overlap is refused). The business is read like `business` (none on a warm "
        "replica).",
    )
    appointment_type_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Only appointments of these types."
    )
    repeated_from_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only the repeats of this appointment."
    )
    did_not_arrive: bool | None = strawberry.field(
        default=None, description="Only appointments marked (or not marked) as did not arrive."
    )
    cancelled: Inclusion = strawberry.field(
        default=Inclusion.EXCLUDE, description="Cancelled appointments: EXCLUDE (default)."
    )
    archived: Inclusion = strawberry.field(
        default=Inclusion.EXCLUDE, description="Archived appointments: EXCLUDE (default)."
    )


@strawberry.input(description="One sort key.")
class AppointmentOrder:
    field: AppointmentOrderField = strawberry.field(description="What to sort by.")
    direction: OrderDirection = strawberry.field(
        default=OrderDirection.ASC, description="ASC (default) or DESC."
    )


def _range(bounds: DateTimeFilter | None) -> TimeRange | None:
    if bounds is None:
        return None
    return TimeRange(gt=bounds.gt, gte=bounds.gte, lt=bounds.lt, lte=bounds.lte)


def _ids(values: Sequence[str] | None, type_name: str, argument: str) -> tuple[str, ...] | None:
    if values is None:
        return None
    return tuple(
        parse_id(value, type_name, argument=f"filter.{argument}[{i}]")
        for i, value in enumerate(values)
    )


def to_criteria(
    filter: AppointmentFilter | None, order_by: Sequence[AppointmentOrder] | None
) -> AppointmentCriteria:
    """Validate the arguments into criteria; ``BadUserInput`` names what is wrong."""
    order = (
        tuple(
            OrderKey(order_field_of(key.field), descending=key.direction is OrderDirection.DESC)
            for key in order_by
        )
        if order_by
        else (OrderKey("starts_at"),)
    )
    if filter is None:
        return AppointmentCriteria(order=order)
    business_ids = _ids(filter.business_ids, "Business", "businessIds")
    local_day = None
    if filter.business_id is not None:
        business_id = parse_id(filter.business_id, "Business", argument="filter.businessId")
        in_list = business_ids is None or business_id in business_ids
        business_ids = (business_id,) if in_list else ()
        if filter.local_date is not None:
            local_day = LocalDay(filter.local_date, business_id)
    elif filter.local_date is not None:
        raise BadUserInput(
            "filter.localDate needs filter.businessId: the business whose time zone "
            "defines the day."
        )
    return AppointmentCriteria(
        starts_at=_range(filter.starts_at),
        ends_at=_range(filter.ends_at),
        created_at=_range(filter.created_at),
        updated_at=_range(filter.updated_at),
        ids=_ids(filter.ids, "Appointment", "ids"),
        patient_ids=_ids(filter.patient_ids, "Patient", "patientIds"),
        practitioner_ids=_ids(filter.practitioner_ids, "Practitioner", "practitionerIds"),
        business_ids=business_ids,
        appointment_type_ids=_ids(
            filter.appointment_type_ids, "AppointmentType", "appointmentTypeIds"
        ),
        repeated_from_id=None
        if filter.repeated_from_id is None
        else parse_id(filter.repeated_from_id, "Appointment", argument="filter.repeatedFromId"),
        did_not_arrive=filter.did_not_arrive,
        cancelled=inclusion_of(filter.cancelled),
        archived=inclusion_of(filter.archived),
        order=order,
        local_day=local_day,
    )
