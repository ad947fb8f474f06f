"""Enums of the contract (DESIGN.md §4), with safe fallbacks for values Cliniko adds later."""

from __future__ import annotations

import enum

import strawberry

from appointments_gateway.replica import ChangeKind
from appointments_gateway.resolvers.criteria import Inclusion as InclusionValue
from appointments_gateway.resolvers.criteria import OrderField

__all__ = [
    "AppointmentChangeKind",
    "AppointmentOrderField",
    "AppointmentStatus",
    "CancellationReason",
    "Inclusion",
    "OrderDirection",
    "RepeatType",
    "cancellation_reason_for",
    "change_kind_of",
    "inclusion_of",
    "order_field_of",
    "repeat_type_for",
]


@strawberry.enum(description="Where an appointment stands, derived from its timestamps and flags.")
class AppointmentStatus(enum.Enum):
    BOOKED = strawberry.enum_value("BOOKED", description="Booked and not yet marked otherwise.")
    ARRIVED = strawberry.enum_value("ARRIVED", description="The patient arrived.")
    DID_NOT_ARRIVE = strawberry.enum_value(
        "DID_NOT_ARRIVE", description="Marked as did not arrive."
    )
    CANCELLED = strawberry.enum_value("CANCELLED", description="Cancelled; see `cancellation`.")
    ARCHIVED = strawberry.enum_value("ARCHIVED", description="Archived (Cliniko's delete).")
    DELETED = strawberry.enum_value("DELETED", description="Deleted under the legacy API.")


@strawberry.enum(
    description="Why an appointment was cancelled. `COVID_19_RELATED` (code 31) appears on old "
    "appointments only and is refused as input; `UNKNOWN` stands for a code this gateway does "
    "not know yet (`reasonCode` keeps the number), so a new upstream code never fails a query."
)
class CancellationReason(enum.Enum):
    FEELING_BETTER = strawberry.enum_value(10, description="Feeling better (code 10).")
    CONDITION_WORSE = strawberry.enum_value(20, description="Condition worse (code 20).")
    SICK = strawberry.enum_value(30, description="Sick (code 30).")
    COVID_19_RELATED = strawberry.enum_value(
        31, description="COVID-19 related (code 31); output only, Cliniko no longer accepts it."
    )
    AWAY = strawberry.enum_value(40, description="Away (code 40).")
    OTHER = strawberry.enum_value(50, description="Other (code 50).")
    WORK = strawberry.enum_value(60, description="Work (code 60).")
    UNKNOWN = strawberry.enum_value(-1, description="A code this gateway does not know yet.")


_REASONS = {
    10: CancellationReason.FEELING_BETTER,
    20: CancellationReason.CONDITION_WORSE,
    30: CancellationReason.SICK,
    31: CancellationReason.COVID_19_RELATED,
    40: CancellationReason.AWAY,
    50: CancellationReason.OTHER,
    60: CancellationReason.WORK,
}


def cancellation_reason_for(code: int | None) -> CancellationReason | None:
    if code is None:
        return None
    return _REASONS.get(code, CancellationReason.UNKNOWN)


@strawberry.enum(description="How often a repeating appointment repeats.")
class RepeatType(enum.Enum):
    DAILY = strawberry.enum_value("Daily", description="Every N days.")
    WEEKLY = strawberry.enum_value("Weekly", description="Every N weeks.")
    MONTHLY = strawberry.enum_value("Monthly", description="Every N months.")


_REPEAT_TYPES = {
    "daily": RepeatType.DAILY,
    "weekly": RepeatType.WEEKLY,
    "monthly": RepeatType.MONTHLY,
}


def repeat_type_for(value: str | None) -> RepeatType | None:
    """The enum for Cliniko's ``repeat_type``; ``None`` for absent or unknown values."""
    return _REPEAT_TYPES.get(value.lower()) if value else None


@strawberry.enum(description="Fields appointments can be ordered by.")
class AppointmentOrderField(enum.Enum):
    STARTS_AT = strawberry.enum_value("starts_at", description="When it starts.")
    ENDS_AT = strawberry.enum_value("ends_at", description="When it ends.")
    CREATED_AT = strawberry.enum_value("created_at", description="When it was booked.")
    UPDATED_AT = strawberry.enum_value("updated_at", description="When it last changed.")


@strawberry.enum(description="Sort direction.")
class OrderDirection(enum.Enum):
    ASC = strawberry.enum_value("ASC", description="Smallest (earliest) first.")
    DESC = strawberry.enum_value("DESC", description="Largest (latest) first.")


@strawberry.enum(
    description="Whether rows of a kind that Cliniko hides by default (cancelled, archived) "
    "are left out, included, or the only ones returned."
)
class Inclusion(enum.Enum):
    EXCLUDE = strawberry.enum_value("EXCLUDE", description="Leave them out (the default).")
    INCLUDE = strawberry.enum_value("INCLUDE", description="Return them with the others.")
    ONLY = strawberry.enum_value("ONLY", description="Return only them.")


_ORDER_FIELDS: dict[AppointmentOrderField, OrderField] = {
    AppointmentOrderField.STARTS_AT: "starts_at",
    AppointmentOrderField.ENDS_AT: "ends_at",
    AppointmentOrderField.CREATED_AT: "created_at",
    AppointmentOrderField.UPDATED_AT: "updated_at",
}
_INCLUSIONS: dict[Inclusion, InclusionValue] = {
    Inclusion.EXCLUDE: "EXCLUDE",
    Inclusion.INCLUDE: "INCLUDE",
    Inclusion.ONLY: "ONLY",
}


def order_field_of(field: AppointmentOrderField) -> OrderField:
    return _ORDER_FIELDS[field]


def inclusion_of(inclusion: Inclusion) -> InclusionValue:
    return _INCLUSIONS[inclusion]


@strawberry.enum(description="How an appointment changed (live updates, `appointmentChanged`).")
class AppointmentChangeKind(enum.Enum):
    CREATED = strawberry.enum_value("CREATED", description="Booked (newly seen).")
    UPDATED = strawberry.enum_value(
        "UPDATED", description="Changed: times, practitioner, notes, arrival, anything else."
    )
    CANCELLED = strawberry.enum_value("CANCELLED", description="Cancelled; see `cancellation`.")
    ARCHIVED = strawberry.enum_value("ARCHIVED", description="Archived (Cliniko's delete).")
    DELETED = strawberry.enum_value(
        "DELETED",
        description="Deleted, or gone from Cliniko without a trace; the appointment is the "
        "last version the gateway knew.",
    )


_CHANGE_KINDS = {kind: AppointmentChangeKind[kind.value] for kind in ChangeKind}


def change_kind_of(kind: ChangeKind) -> AppointmentChangeKind:
    return _CHANGE_KINDS[kind]
