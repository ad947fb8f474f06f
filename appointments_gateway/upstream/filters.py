"""``q[]`` filters and ``sort`` keys, limited to what each endpoint documents.

Cliniko answers 400 to a filter it does not know or a value of the wrong type
(UPSTREAM.md §3.2), and that 400 would cost a request from the 200/min budget.
So every endpoint has a whitelist taken from the vendored OpenAPI file, and
anything outside it raises :class:`InvalidRequest` before a request exists.

A filter is ``field:<operator><value>`` (UPSTREAM.md §4.1)::

    APPOINTMENT_LIST.where("starts_at", ">=", datetime(2024, 4, 1, tzinfo=UTC))
    # -> q[]=starts_at:>=2024-04-01T00:00:00Z
    APPOINTMENT_LIST.where("patient_id", "=", ["1", "2", "3"])
    # -> q[]=patient_id:=1,2,3
    APPOINTMENT_LIST.sort(["starts_at:desc", "id"])
    # -> sort=starts_at:desc,id

Date-time bounds are sent as whole seconds, rounded per operator so that the
filter keeps its exact meaning on Cliniko's whole-second data (see
:func:`format_datetime_bound`): ``starts_at >= 10:00:00.5`` is sent as
``>= 10:00:01``, never truncated to ``>= 10:00:00``.

Sort keys are not documented per endpoint: the spec describes ``sort`` only
generically ("comma separated search fields", example ``created_at:desc``).
The whitelist is therefore an inference, the conservative set
both the client and the sandbox agree on: an endpoint's date-time filter
fields plus ``id``. Numeric, string, boolean and date fields are filterable
but are not assumed sortable (a wrong guess would be a 400 and a wasted
request). ``id`` is always allowed, so callers can append it as the final
tie-breaker (``sort=starts_at:desc,id:desc``) for stable paging.

Messages name the field and operator but never echo the value: values can be
PHI (a patient's e-mail, a date of birth).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType

from .errors import InvalidRequest

__all__ = [
    "APPOINTMENT_GET",
    "APPOINTMENT_LIST",
    "APPOINTMENT_TYPE_GET",
    "APPOINTMENT_TYPE_LIST",
    "BUSINESS_GET",
    "BUSINESS_LIST",
    "OPERATORS",
    "PATIENT_CASE_GET",
    "PATIENT_CASE_LIST",
    "PATIENT_GET",
    "PATIENT_LIST",
    "PRACTITIONER_GET",
    "PRACTITIONER_LIST",
    "FieldType",
    "Filter",
    "FilterSpec",
    "FilterValue",
    "format_datetime",
    "format_datetime_bound",
    "validate_batch_id",
    "validate_id",
]


class FieldType(enum.Enum):
    """A filter field's format, which decides its operators and value syntax."""

    NUMERIC = "int64"
    DATETIME = "date-time"
    DATE = "date"
    STRING = "string"
    BOOLEAN = "boolean"
    ARRAY = "array"


OPERATORS: Mapping[FieldType, frozenset[str]] = MappingProxyType(
    {
        FieldType.NUMERIC: frozenset({"=", "!=", ">", ">=", "<", "<=", "?", "!?"}),
        FieldType.DATETIME: frozenset({">", ">=", "<", "<=", "?", "!?", "*"}),
        FieldType.DATE: frozenset({"=", ">", ">=", "<", "<=", "?", "!?"}),
        FieldType.STRING: frozenset({"=", "!=", "~", "~~", "?", "!?"}),
        FieldType.BOOLEAN: frozenset({"=", "!="}),
        FieldType.ARRAY: frozenset({"~"}),
    }
)
"""Operators per field type (Cliniko's "Filtering results" section)."""

_VALUELESS = frozenset({"?", "!?", "*"})  # not null, null, any (incl. hidden rows)
_MAX_ID = 2**63 - 1  # Cliniko ids are int64: 9223372036854775807
_ROUND_UP = frozenset({">=", "<"})
_ROUND_DOWN = frozenset({">", "<="})
_DATE_PATTERN = re.compile(r"[\d*]{4}-[\d*]{2}-[\d*]{2}", re.ASCII)  # "****-05-**"
_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f]")

FilterValue = str | int | bool | date | datetime | Iterable[str | int] | None
"""What ``where`` accepts; which of these is valid depends on the field type."""


def validate_id(value: object) -> str:
    """Return a Cliniko id as its canonical string: ASCII digits, at most int64 max.

    Ids are int64 sent as strings; they exceed 2**53, so they are never floats.
    Ints are accepted for convenience (not bools). Leading zeros are refused
    (``"007"`` is not the canonical spelling of an id, and records come back
    keyed by the canonical one), as is anything above 9223372036854775807:
    Cliniko ids are int64, and the sandbox answers such a value with 400.

    Raises:
        InvalidRequest: not an id; the message never echoes the value.
    """
    text = _id_text(value)
    if text is None or _above_int64(text):
        raise InvalidRequest(
            "A Cliniko id must be a string of digits without leading zeros, "
            "at most 9223372036854775807."
        )
    return text


def validate_batch_id(value: object) -> str | None:
    """Like :func:`validate_id`, but ``None`` for a well-formed id above int64 max.

    Such an id cannot exist upstream (ids are int64), so a batch lookup can
    drop it without asking; sent, it makes the whole batch a 400 (the sandbox
    does this, and Cliniko's int64 ids suggest the same).
    Anything malformed still raises :class:`InvalidRequest`.
    """
    text = _id_text(value)
    if text is not None and _above_int64(text):
        return None
    return validate_id(value)


def _above_int64(text: str) -> bool:
    """Whether a canonical digit string exceeds int64 max (length first: no huge ``int()``)."""
    return len(text) > len(str(_MAX_ID)) or int(text) > _MAX_ID


def _id_text(value: object) -> str | None:
    """The canonical digit string of a non-negative id, or ``None`` if it is not one."""
    if type(value) is int and value >= 0:
        return str(value)
    if (
        type(value) is not str
        or not value.isascii()
        or not value.isdigit()
        or (len(value) > 1 and value.startswith("0"))
    ):
        return None
    return value


def format_datetime(value: datetime) -> str:
    """Format an aware datetime as Cliniko wants it: UTC, seconds, ``Z``.

    Sub-second precision is dropped (truncated); the API stores whole seconds.
    Use this for values that are written; filter bounds go through
    :func:`format_datetime_bound`, which rounds per operator instead.

    Raises:
        InvalidRequest: the datetime is naive (its instant would be a guess).
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequest("Date-times sent to Cliniko must be timezone-aware.")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_datetime_bound(operator: str, value: datetime) -> str:
    """Format a date-time filter bound, rounding a fraction so the comparison stays exact.

    Cliniko takes whole-second values and stores whole-second times, so for a
    stored time ``s`` (a whole second) and a bound ``t + f`` (``t`` whole,
    ``0 < f < 1``):

    * ``s >= t+f``  holds exactly when ``s >= t+1``: round **up**;
    * ``s <  t+f``  holds exactly when ``s <  t+1`` (i.e. ``s <= t``): round **up**;
    * ``s >  t+f``  holds exactly when ``s >  t`` (i.e. ``s >= t+1``): round **down**;
    * ``s <= t+f``  holds exactly when ``s <= t``: round **down**.

    Truncating everything (the old behaviour) was wrong for ``>=`` and ``<``:
    ``>= t+0.5s`` became ``>= t`` and matched a row at exactly ``t``. A bound
    without a fraction is sent unchanged.

    Raises:
        InvalidRequest: the datetime is naive, or the operator takes no bound.
    """
    if operator not in _ROUND_UP and operator not in _ROUND_DOWN:
        raise InvalidRequest(f"Operator {operator!r} takes no date-time bound.")
    text = format_datetime(value)  # validates awareness
    if value.microsecond and operator in _ROUND_UP:
        whole = value.astimezone(UTC).replace(microsecond=0)
        text = format_datetime(whole + timedelta(seconds=1))
    return text


@dataclass(frozen=True, slots=True)
class Filter:
    """One validated ``q[]`` value, bound to the endpoint whose whitelist allowed it."""

    endpoint: str
    field: str
    operator: str
    value: str = dataclass_field(repr=False)  # may be PHI

    @property
    def query(self) -> str:
        """The ``q[]`` parameter value, e.g. ``patient_id:=1,2``."""
        return f"{self.field}:{self.operator}{self.value}"


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """The filters and sort keys one endpoint documents.

    Sort keys default to the date-time filter fields plus ``id`` (an
    inference; see the module docstring): the spec's ``sort`` parameter only
    says "comma separated search fields" with the example ``created_at:desc``,
    and these are the fields the client and the sandbox both accept.
    """

    endpoint: str
    fields: Mapping[str, FieldType]
    sort_fields: frozenset[str] = frozenset()

    @classmethod
    def of(cls, endpoint: str, *, sortable: bool = True, **fields: FieldType) -> FilterSpec:
        """Build a spec from keyword arguments ``field=FieldType``."""
        sort = frozenset(k for k, t in fields.items() if t is FieldType.DATETIME) | {"id"}
        return cls(endpoint, MappingProxyType(fields), sort if sortable else frozenset())

    def where(self, field: str, operator: str, value: FilterValue = None) -> Filter:
        """Validate and format one filter; raise :class:`InvalidRequest` if undocumented."""
        kind = self.fields.get(field)
        if kind is None:
            raise InvalidRequest(f"{self.endpoint} has no documented filter {field!r}.")
        if operator not in OPERATORS[kind]:
            raise InvalidRequest(
                f"Operator {operator!r} is not documented for {kind.value} filter "
                f"{field!r} on {self.endpoint}."
            )
        if operator in _VALUELESS:
            if value is not None:
                raise InvalidRequest(f"Operator {operator!r} on {field!r} takes no value.")
            text = ""
        else:
            text = _format_value(kind, operator, field, value)
        return Filter(self.endpoint, field, operator, text)

    def sort(self, keys: Sequence[str]) -> str:
        """Validate ``["starts_at:desc", "id"]`` and join it into the ``sort`` value."""
        if isinstance(keys, str):
            raise InvalidRequest("Sort keys must be a sequence of strings, not one string.")
        for key in keys:
            name, colon, direction = key.partition(":")
            if name not in self.sort_fields:
                raise InvalidRequest(f"{self.endpoint} cannot be sorted by {name!r}.")
            if colon and direction not in ("asc", "desc"):
                raise InvalidRequest(f"Sort direction for {name!r} must be 'asc' or 'desc'.")
        return ",".join(keys)

    def check(self, filters: Iterable[Filter]) -> list[str]:
        """Return the ``q[]`` values, refusing filters built for another endpoint."""
        queries = []
        for f in filters:
            if f.endpoint != self.endpoint:
                raise InvalidRequest(
                    f"A filter built for {f.endpoint} cannot be sent to {self.endpoint}."
                )
            queries.append(f.query)
        return queries


def _format_value(kind: FieldType, operator: str, field: str, value: FilterValue) -> str:
    def bad(expected: str) -> InvalidRequest:
        return InvalidRequest(f"Filter {field!r} {operator!r} expects {expected}.")

    if kind is FieldType.NUMERIC:
        if operator == "=" and not isinstance(value, str | int):
            if value is None or not isinstance(value, Iterable):
                raise bad("an id or a list of ids")
            ids = [validate_id(v) for v in value]
            if not ids:
                raise bad("at least one id")
            return ",".join(ids)
        return validate_id(value)
    if kind is FieldType.DATETIME:
        if not isinstance(value, datetime):
            raise bad("an aware datetime")
        return format_datetime_bound(operator, value)
    if kind is FieldType.DATE:
        if isinstance(value, datetime):
            raise bad("a date, not a datetime")
        if isinstance(value, date):
            return value.isoformat()
        if operator == "=" and isinstance(value, str) and _DATE_PATTERN.fullmatch(value):
            return value  # wildcard form, e.g. birthdays in May: "****-05-**"
        raise bad("a date")
    if kind is FieldType.BOOLEAN:
        if not isinstance(value, bool):
            raise bad("a bool")
        return "true" if value else "false"
    if kind is FieldType.ARRAY:
        return validate_id(value)
    if not isinstance(value, str) or not value or _UNSAFE_TEXT.search(value):
        raise bad("a non-empty string without control characters")
    return value


_N, _DT, _D, _S, _B, _A = (
    FieldType.NUMERIC,
    FieldType.DATETIME,
    FieldType.DATE,
    FieldType.STRING,
    FieldType.BOOLEAN,
    FieldType.ARRAY,
)

# From the vendored spec, paths.<endpoint>.get.parameters "q[]" (UPSTREAM.md §2, §4).
APPOINTMENT_LIST = FilterSpec.of(
    "/individual_appointments",
    id=_N,
    appointment_type_id=_N,
    business_id=_N,
    patient_id=_N,
    practitioner_id=_N,
    repeated_from_id=_N,
    archived_at=_DT,
    cancelled_at=_DT,
    created_at=_DT,
    deleted_at=_DT,
    ends_at=_DT,
    starts_at=_DT,
    updated_at=_DT,
    did_not_arrive=_B,
)
APPOINTMENT_GET = FilterSpec.of(
    "/individual_appointments/{id}",
    sortable=False,
    archived_at=_DT,
    cancelled_at=_DT,
    deleted_at=_DT,
)
PATIENT_LIST = FilterSpec.of(
    "/patients",
    id=_N,
    first_name=_S,
    last_name=_S,
    preferred_first_name=_S,
    email=_S,
    old_reference_id=_S,
    date_of_birth=_D,
    accepted_privacy_policy=_B,
    archived_at=_DT,
    created_at=_DT,
    updated_at=_DT,
)
PATIENT_GET = FilterSpec.of("/patients/{id}", sortable=False, archived_at=_DT)
PRACTITIONER_LIST = FilterSpec.of(
    "/practitioners",
    id=_N,
    user_id=_N,
    active=_B,
    show_in_online_bookings=_B,
    created_at=_DT,
    updated_at=_DT,
)
PRACTITIONER_GET = FilterSpec.of("/practitioners/{id}", sortable=False)
BUSINESS_LIST = FilterSpec.of(
    "/businesses",
    id=_N,
    appointment_type_ids=_A,
    show_in_online_bookings=_B,
    archived_at=_DT,
    created_at=_DT,
    deleted_at=_DT,
    updated_at=_DT,
)
BUSINESS_GET = FilterSpec.of("/businesses/{id}", sortable=False, archived_at=_DT, deleted_at=_DT)
APPOINTMENT_TYPE_LIST = FilterSpec.of(
    "/appointment_types",
    id=_N,
    category=_S,
    online_payments_mode=_S,
    show_in_online_bookings=_B,
    appointment_confirmation_template_ids=_A,
    appointment_follow_up_template_ids=_A,
    appointment_reminder_template_ids=_A,
    archived_at=_DT,
    created_at=_DT,
    updated_at=_DT,
)
APPOINTMENT_TYPE_GET = FilterSpec.of("/appointment_types/{id}", sortable=False, archived_at=_DT)
PATIENT_CASE_LIST = FilterSpec.of(
    "/patient_cases",
    id=_N,
    patient_id=_N,
    name=_S,
    referral_type=_S,
    issue_date=_D,
    expiry_date=_D,
    archived_at=_DT,
    closed_at=_DT,
    created_at=_DT,
    updated_at=_DT,
)
PATIENT_CASE_GET = FilterSpec.of("/patient_cases/{id}", sortable=False, archived_at=_DT)
