"""What each served resource may be filtered and sorted on (UPSTREAM.md section 4, SPEC25).

These tables are the whitelist: a filter or sort field is turned into SQL only if it appears
here, and the column name used in SQL always comes from here, never from the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["RESOURCES", "FieldType", "Resource"]


class FieldType(Enum):
    """Filter value types, each with its documented operator set."""

    NUMERIC = "numeric"
    DATETIME = "date-time"
    DATE = "date"
    STRING = "string"
    BOOLEAN = "boolean"
    ARRAY = "array"


OPERATORS: dict[FieldType, frozenset[str]] = {
    FieldType.NUMERIC: frozenset({"=", "!=", ">", ">=", "<", "<=", "?", "!?"}),
    FieldType.DATETIME: frozenset({">", ">=", "<", "<=", "?", "!?", "*"}),
    FieldType.DATE: frozenset({"=", ">", ">=", "<", "<=", "?", "!?"}),
    FieldType.STRING: frozenset({"=", "!=", "~", "~~", "?", "!?"}),
    FieldType.BOOLEAN: frozenset({"=", "!="}),
    FieldType.ARRAY: frozenset({"~"}),
}

_N, _DT, _D, _S, _B, _A = (
    FieldType.NUMERIC,
    FieldType.DATETIME,
    FieldType.DATE,
    FieldType.STRING,
    FieldType.BOOLEAN,
    FieldType.ARRAY,
)


@dataclass(frozen=True)
class Resource:
    """One list/get endpoint pair.

    Attributes:
        name: The URL segment and the list envelope key (``patients``).
        table: The SQLite table.
        list_filters: Field name (= column name) to type, for ``GET /<name>``.
        get_filters: The subset ``GET /<name>/{id}`` accepts.
        hidden: Columns whose non-null rows are left out unless a filter names the column.
        extra_where: A fixed SQL condition for the list (``/practitioners`` lists active ones).
    """

    name: str
    table: str
    list_filters: dict[str, FieldType]
    get_filters: dict[str, FieldType]
    hidden: tuple[str, ...]
    extra_where: str = ""

    @property
    def sortable(self) -> frozenset[str]:
        """Date-time fields plus ``id``: what ``sort=`` accepts."""
        names = {f for f, t in self.list_filters.items() if t is FieldType.DATETIME}
        return frozenset(names | {"id", "created_at", "updated_at"})


_APPOINTMENT_FILTERS = {
    "id": _N,
    "appointment_type_id": _N,
    "business_id": _N,
    "patient_id": _N,
    "practitioner_id": _N,
    "repeated_from_id": _N,
    "archived_at": _DT,
    "cancelled_at": _DT,
    "created_at": _DT,
    "deleted_at": _DT,
    "ends_at": _DT,
    "starts_at": _DT,
    "updated_at": _DT,
    "did_not_arrive": _B,
}

RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in (
        Resource(
            "individual_appointments",
            "appointments",
            _APPOINTMENT_FILTERS,
            {"archived_at": _DT, "cancelled_at": _DT, "deleted_at": _DT},
            ("archived_at", "cancelled_at", "deleted_at"),
        ),
        Resource(
            "patients",
            "patients",
            {
                "id": _N,
                "first_name": _S,
                "last_name": _S,
                "preferred_first_name": _S,
                "email": _S,
                "old_reference_id": _S,
                "date_of_birth": _D,
                "accepted_privacy_policy": _B,
                "archived_at": _DT,
                "created_at": _DT,
                "updated_at": _DT,
            },
            {"archived_at": _DT},
            ("archived_at",),
        ),
        Resource(
            "practitioners",
            "practitioners",
            {
                "id": _N,
                "user_id": _N,
                "active": _B,
                "show_in_online_bookings": _B,
                "created_at": _DT,
                "updated_at": _DT,
            },
            {},
            (),
            extra_where="active = 1",
        ),
        Resource(
            "businesses",
            "businesses",
            {
                "id": _N,
                "appointment_type_ids": _A,
                "show_in_online_bookings": _B,
                "archived_at": _DT,
                "created_at": _DT,
                "deleted_at": _DT,
                "updated_at": _DT,
            },
            {"archived_at": _DT, "deleted_at": _DT},
            ("archived_at", "deleted_at"),
        ),
        Resource(
            "appointment_types",
            "appointment_types",
            {
                "id": _N,
                "category": _S,
                "online_payments_mode": _S,
                "show_in_online_bookings": _B,
                "appointment_confirmation_template_ids": _A,
                "appointment_follow_up_template_ids": _A,
                "appointment_reminder_template_ids": _A,
                "archived_at": _DT,
                "created_at": _DT,
                "updated_at": _DT,
            },
            {"archived_at": _DT},
            ("archived_at",),
        ),
        Resource(
            "patient_cases",
            "patient_cases",
            {
                "id": _N,
                "patient_id": _N,
                "name": _S,
                "referral_type": _S,
                "issue_date": _D,
                "expiry_date": _D,
                "archived_at": _DT,
                "closed_at": _DT,
                "created_at": _DT,
                "updated_at": _DT,
            },
            {"archived_at": _DT},
            ("archived_at",),
        ),
    )
}

INACTIVE_PRACTITIONERS = Resource(
    "practitioners",
    "practitioners",
    RESOURCES["practitioners"].list_filters,
    {},
    (),
    extra_where="active = 0",
)
"""``GET /practitioners/inactive``: Cliniko splits practitioners by ``active``, not archive."""
