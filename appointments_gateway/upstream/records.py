"""Typed, immutable records parsed from Cliniko's JSON.

Parsing is liberal where real payloads differ from the spec (UPSTREAM.md
§1.3-1.4, §5) and strict where a wrong value would mislead:

* every link is optional: the key may be absent, ``null``, or lack ``self``;
* related ids come from the last path segment of single-resource links;
  list links (``repeats``, possibly percent-encoded) only tell us they exist;
* ``repeat_rule: {}`` means no rule, ``cancellation_reason_description: ""``
  means none, unknown cancellation codes are kept as ints;
* ids are strings; legacy JSON-number ids become strings (never floats);
* unknown fields are ignored;
* a missing id, a required timestamp that is absent, or a value of the wrong
  type raises :class:`UpstreamProtocolError` naming the field, never the value.

This runs on the hot path (100-row pages), so it is plain functions over
dicts: no validation library, one small helper call per field, and
``datetime.fromisoformat`` (which reads ``Z`` on 3.11).

Record ``repr``s leave out PHI (names, notes, e-mail, IP addresses), so a
record in a log line or a traceback does not leak a patient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

from .errors import UpstreamProtocolError

__all__ = [
    "AppointmentRecord",
    "AppointmentTypeRecord",
    "BusinessRecord",
    "Page",
    "PatientCaseRecord",
    "PatientRecord",
    "PractitionerRecord",
    "RepeatRuleRecord",
    "parse_page",
]

T = TypeVar("T")
_Json = dict[str, Any]

_fromiso_dt = datetime.fromisoformat
_fromiso_d = date.fromisoformat


class _Malformed(Exception):
    """Internal: one field is wrong. Turned into UpstreamProtocolError per record."""

    def __init__(self, key: str, expected: str) -> None:
        super().__init__(f"field {key!r} is not {expected}")


# --- field readers: each takes the object and a key, returns the typed value ----------


def _id(d: _Json, key: str = "id") -> str:
    v = d.get(key)
    if type(v) is str:
        if v.isdigit() and v.isascii():
            return v
    elif type(v) is int and v >= 0:  # legacy numeric ids (2016-2020 payloads)
        return str(v)
    raise _Malformed(key, "an id")


def _str(d: _Json, key: str) -> str | None:
    v = d.get(key)
    if v is None or type(v) is str:
        return v
    raise _Malformed(key, "a string")


def _text(d: _Json, key: str) -> str | None:
    """A string where ``""`` means absent (e.g. ``cancellation_reason_description``)."""
    v = d.get(key)
    if v is None or type(v) is str:
        return v or None
    raise _Malformed(key, "a string")


def _req_str(d: _Json, key: str) -> str:
    v = d.get(key)
    if type(v) is str:
        return v
    raise _Malformed(key, "a string")


def _bool(d: _Json, key: str) -> bool | None:
    v = d.get(key)
    if v is None or v is True or v is False:
        return v
    raise _Malformed(key, "a boolean")


def _int(d: _Json, key: str) -> int | None:
    v = d.get(key)
    if v is None or type(v) is int:
        return v
    if type(v) is str and v.isdigit() and v.isascii():
        return int(v)
    raise _Malformed(key, "an integer")


def _datetime(d: _Json, key: str) -> datetime | None:
    v = d.get(key)
    if v is None:
        return None
    if type(v) is str:
        try:
            t = _fromiso_dt(v)
        except ValueError:
            pass
        else:
            if t.tzinfo is UTC:
                return t
            # Cliniko sends UTC with "Z"; an offset is converted, a naive value is UTC.
            return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    raise _Malformed(key, "an ISO-8601 date-time")


def _req_datetime(d: _Json, key: str) -> datetime:
    t = _datetime(d, key)
    if t is None:
        raise _Malformed(key, "present")
    return t


def _date(d: _Json, key: str) -> date | None:
    v = d.get(key)
    if v is None:
        return None
    if type(v) is str:
        try:
            return _fromiso_d(v)
        except ValueError:
            pass
    raise _Malformed(key, "an ISO-8601 date")


def _link_url(d: _Json, key: str) -> str | None:
    """The ``links.self`` URL of a relation; ``None`` if absent in any way."""
    v = d.get(key)
    if v is None:
        return None
    if type(v) is not dict:
        raise _Malformed(key, "a link object")
    links = v.get("links")
    if links is None:
        return None
    if type(links) is not dict:
        raise _Malformed(key, "a link object")
    url = links.get("self")
    if url is None or type(url) is str:
        return url or None
    raise _Malformed(key, "a link object")


def _link_id(d: _Json, key: str) -> str | None:
    """The id at the end of a single-resource link, e.g. ``…/patients/123`` → ``"123"``."""
    try:  # fast path: the shape every real payload has
        url = d[key]["links"]["self"]
        tail = url[url.rfind("/") + 1 :]
        if tail.isdigit() and tail.isascii():
            return tail  # type: ignore[no-any-return]
    except (KeyError, TypeError, AttributeError):
        pass
    url = _link_url(d, key)
    if url is None:
        return None
    # Unusual but harmless forms: a trailing slash, a query or fragment.
    path = url.partition("#")[0].partition("?")[0].rstrip("/")
    tail = path[path.rfind("/") + 1 :]
    if tail.isdigit() and tail.isascii():
        return tail
    raise _Malformed(key, "a link to a single resource")


def _has_link(d: _Json, key: str) -> bool:
    return _link_url(d, key) is not None


def _ids(d: _Json, key: str) -> tuple[str, ...]:
    v = d.get(key)
    if v is None:
        return ()
    if type(v) is not list:
        raise _Malformed(key, "a list of ids")
    try:
        return tuple(_id({key: x}, key) for x in v)
    except _Malformed:
        raise _Malformed(key, "a list of ids") from None


def _parser(kind: str) -> Callable[[Callable[[_Json], T]], Callable[[Any], T]]:
    """Wrap a field-by-field builder: check the object, turn failures into protocol errors."""

    def wrap(build: Callable[[_Json], T]) -> Callable[[Any], T]:
        def parse(data: Any) -> T:
            if type(data) is not dict:
                raise UpstreamProtocolError(f"The {kind} record is not a JSON object.")
            try:
                return build(data)
            except _Malformed as exc:
                raise UpstreamProtocolError(f"Malformed {kind} record: {exc}.") from None

        parse.__doc__ = f"Parse one {kind} object; raise UpstreamProtocolError if malformed."
        return parse

    return wrap


# --- records -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RepeatRuleRecord:
    """How an appointment series repeats: every ``repeating_interval`` days/weeks/months."""

    repeat_type: str | None
    """``"Daily"``, ``"Weekly"`` or ``"Monthly"`` (kept as sent)."""
    number_of_repeats: int | None
    repeating_interval: int | None

    @classmethod
    def from_json(cls, data: Any) -> RepeatRuleRecord | None:
        """``None`` for ``null``, ``{}``, or a rule with every part null."""
        if data is None or data == {}:
            return None
        if type(data) is not dict:
            raise _Malformed("repeat_rule", "an object")
        rule = cls(
            _str(data, "repeat_type"),
            _int(data, "number_of_repeats"),
            _int(data, "repeating_interval"),
        )
        if rule.repeat_type is None and rule.number_of_repeats is None:
            return None if rule.repeating_interval is None else rule
        return rule


@dataclass(frozen=True, slots=True)
class AppointmentRecord:
    """An individual appointment (``IndividualAppointment``, UPSTREAM.md §1.2).

    Related records are ids read from their links; ``has_repeats`` says the
    ``repeats`` list link is present (this appointment is a series origin).
    The ``conflicts``, ``attendees`` and ``links.self`` URLs are not kept:
    they are derivable from ``id``, and links are never followed.
    """

    id: str
    created_at: datetime
    updated_at: datetime
    starts_at: datetime
    ends_at: datetime
    archived_at: datetime | None
    deleted_at: datetime | None
    cancelled_at: datetime | None
    cancellation_reason: int | None
    """A code (UPSTREAM.md §5); unknown codes are kept as they are."""
    cancellation_reason_description: str | None
    """``None`` for the ``""`` sent when not cancelled."""
    cancellation_note: str | None = field(repr=False)
    did_not_arrive: bool | None
    patient_arrived: bool | None
    email_reminder_sent: bool | None
    sms_reminder_sent: bool | None
    has_patient_appointment_notes: bool | None
    notes: str | None = field(repr=False)
    online_booking_policy_accepted: bool | None
    booking_ip_address: str | None = field(repr=False)
    patient_name: str | None = field(repr=False)
    invoice_status: int | None
    treatment_note_status: int | None
    telehealth_url: str | None = field(repr=False)
    """The practitioner's link; filled even when the type has telehealth off."""
    repeat_rule: RepeatRuleRecord | None
    has_repeats: bool
    repeated_from_id: str | None
    patient_id: str | None
    practitioner_id: str | None
    business_id: str | None
    appointment_type_id: str | None
    patient_case_id: str | None

    @classmethod
    def from_json(cls, data: Any) -> AppointmentRecord:
        """Parse one appointment object; raise UpstreamProtocolError if malformed."""
        return _appointment(data)


@_parser("individual appointment")
def _appointment(d: _Json) -> AppointmentRecord:
    return AppointmentRecord(
        _id(d),
        _req_datetime(d, "created_at"),
        _req_datetime(d, "updated_at"),
        _req_datetime(d, "starts_at"),
        _req_datetime(d, "ends_at"),
        _datetime(d, "archived_at"),
        _datetime(d, "deleted_at"),
        _datetime(d, "cancelled_at"),
        _int(d, "cancellation_reason"),
        _text(d, "cancellation_reason_description"),
        _str(d, "cancellation_note"),
        _bool(d, "did_not_arrive"),
        _bool(d, "patient_arrived"),
        _bool(d, "email_reminder_sent"),
        _bool(d, "sms_reminder_sent"),
        _bool(d, "has_patient_appointment_notes"),
        _str(d, "notes"),
        _bool(d, "online_booking_policy_accepted"),
        _str(d, "booking_ip_address"),
        _str(d, "patient_name"),
        _int(d, "invoice_status"),
        _int(d, "treatment_note_status"),
        _str(d, "telehealth_url"),
        RepeatRuleRecord.from_json(d.get("repeat_rule")),
        _has_link(d, "repeats"),
        _link_id(d, "repeated_from"),
        _link_id(d, "patient"),
        _link_id(d, "practitioner"),
        _link_id(d, "business"),
        _link_id(d, "appointment_type"),
        _link_id(d, "patient_case"),
    )


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """A patient's key fields (UPSTREAM.md §4.2). Almost everything here is PHI."""

    id: str
    first_name: str | None = field(repr=False)
    last_name: str | None = field(repr=False)
    preferred_first_name: str | None = field(repr=False)
    title: str | None = field(repr=False)
    date_of_birth: date | None = field(repr=False)
    email: str | None = field(repr=False)
    time_zone: str | None
    """An IANA identifier, or ``None`` (then the business's zone applies)."""
    label: str | None = field(repr=False)
    sex: str | None = field(repr=False)
    gender_identity: str | None = field(repr=False)
    archived_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_json(cls, data: Any) -> PatientRecord:
        """Parse one patient object; raise UpstreamProtocolError if malformed."""
        return _patient(data)


@_parser("patient")
def _patient(d: _Json) -> PatientRecord:
    return PatientRecord(
        _id(d),
        _str(d, "first_name"),
        _str(d, "last_name"),
        _str(d, "preferred_first_name"),
        _str(d, "title"),
        _date(d, "date_of_birth"),
        _str(d, "email"),
        _str(d, "time_zone"),
        _str(d, "label"),
        _str(d, "sex"),
        _str(d, "gender_identity"),
        _datetime(d, "archived_at"),
        _datetime(d, "created_at"),
        _datetime(d, "updated_at"),
    )


@dataclass(frozen=True, slots=True)
class PractitionerRecord:
    """A practitioner's key fields (UPSTREAM.md §4.3). Practitioners have no time zone."""

    id: str
    first_name: str | None
    last_name: str | None
    display_name: str | None
    title: str | None
    designation: str | None
    label: str | None
    description: str | None = field(repr=False)
    active: bool | None
    show_in_online_bookings: bool | None
    user_id: str | None
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_json(cls, data: Any) -> PractitionerRecord:
        """Parse one practitioner object; raise UpstreamProtocolError if malformed."""
        return _practitioner(data)


@_parser("practitioner")
def _practitioner(d: _Json) -> PractitionerRecord:
    return PractitionerRecord(
        _id(d),
        _str(d, "first_name"),
        _str(d, "last_name"),
        _str(d, "display_name"),
        _str(d, "title"),
        _str(d, "designation"),
        _str(d, "label"),
        _str(d, "description"),
        _bool(d, "active"),
        _bool(d, "show_in_online_bookings"),
        _link_id(d, "user"),
        _datetime(d, "created_at"),
        _datetime(d, "updated_at"),
    )


@dataclass(frozen=True, slots=True)
class BusinessRecord:
    """A business (clinic location, UPSTREAM.md §4.4): where local time comes from."""

    id: str
    business_name: str | None
    display_name: str | None
    label: str | None
    time_zone: str | None
    """Cliniko's own label, e.g. ``"Melbourne"``."""
    time_zone_identifier: str | None
    """The IANA zone, e.g. ``"Australia/Melbourne"``: use this for local times."""
    country_code: str | None
    appointment_type_ids: tuple[str, ...]
    show_in_online_bookings: bool | None
    archived_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_json(cls, data: Any) -> BusinessRecord:
        """Parse one business object; raise UpstreamProtocolError if malformed."""
        return _business(data)


@_parser("business")
def _business(d: _Json) -> BusinessRecord:
    return BusinessRecord(
        _id(d),
        _str(d, "business_name"),
        _str(d, "display_name"),
        _str(d, "label"),
        _str(d, "time_zone"),
        _str(d, "time_zone_identifier"),
        _str(d, "country_code"),
        _ids(d, "appointment_type_ids"),
        _bool(d, "show_in_online_bookings"),
        _datetime(d, "archived_at"),
        _datetime(d, "created_at"),
        _datetime(d, "updated_at"),
    )


@dataclass(frozen=True, slots=True)
class AppointmentTypeRecord:
    """An appointment type (UPSTREAM.md §4.5); its duration sets a default ``ends_at``."""

    id: str
    name: str | None
    category: str | None
    color: str | None
    description: str | None
    duration_in_minutes: int | None
    max_attendees: int | None
    telehealth_enabled: bool | None
    """Whether an appointment's ``telehealth_url`` is real (it is always filled)."""
    show_in_online_bookings: bool | None
    deposit_price: str | None
    """A decimal string, kept as sent."""
    archived_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_json(cls, data: Any) -> AppointmentTypeRecord:
        """Parse one appointment type object; raise UpstreamProtocolError if malformed."""
        return _appointment_type(data)


@_parser("appointment type")
def _appointment_type(d: _Json) -> AppointmentTypeRecord:
    return AppointmentTypeRecord(
        _id(d),
        _str(d, "name"),
        _str(d, "category"),
        _str(d, "color"),
        _str(d, "description"),
        _int(d, "duration_in_minutes"),
        _int(d, "max_attendees"),
        _bool(d, "telehealth_enabled"),
        _bool(d, "show_in_online_bookings"),
        _str(d, "deposit_price"),
        _datetime(d, "archived_at"),
        _datetime(d, "created_at"),
        _datetime(d, "updated_at"),
    )


@dataclass(frozen=True, slots=True)
class PatientCaseRecord:
    """A patient case (UPSTREAM.md §4.6), e.g. a referral with a session cap."""

    id: str
    name: str | None = field(repr=False)
    notes: str | None = field(repr=False)
    issue_date: date | None
    expiry_date: date | None
    closed_at: datetime | None
    patient_id: str | None
    referral_type: str | None
    max_sessions: int | None
    max_invoiceable_amount: str | None
    """A decimal string, kept as sent."""
    archived_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_json(cls, data: Any) -> PatientCaseRecord:
        """Parse one patient case object; raise UpstreamProtocolError if malformed."""
        return _patient_case(data)


@_parser("patient case")
def _patient_case(d: _Json) -> PatientCaseRecord:
    return PatientCaseRecord(
        _id(d),
        _str(d, "name"),
        _str(d, "notes"),
        _date(d, "issue_date"),
        _date(d, "expiry_date"),
        _datetime(d, "closed_at"),
        _link_id(d, "patient"),
        _str(d, "referral_type"),
        _int(d, "max_sessions"),
        _str(d, "max_invoiceable_amount"),
        _datetime(d, "archived_at"),
        _datetime(d, "created_at"),
        _datetime(d, "updated_at"),
    )


# --- pages --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list endpoint.

    ``page`` and ``per_page`` are what was asked for; ``has_next`` follows the
    ``links.next`` key (present only when there is a next page) and falls back
    to arithmetic on ``total_entries`` if the body has no ``links``.
    """

    items: tuple[T, ...]
    total_entries: int
    page: int
    per_page: int
    has_next: bool


def parse_page(
    data: Any, list_key: str, parse_item: Callable[[Any], T], *, page: int, per_page: int
) -> Page[T]:
    """Parse a list envelope ``{list_key: [...], "total_entries": n, "links": {...}}``."""
    if type(data) is not dict:
        raise UpstreamProtocolError("A list response is not a JSON object.")
    rows = data.get(list_key)
    total = data.get("total_entries")
    if type(rows) is not list:
        raise UpstreamProtocolError(f"A list response has no {list_key!r} array.")
    if type(total) is not int:
        raise UpstreamProtocolError("A list response has no integer 'total_entries'.")
    links = data.get("links")
    if type(links) is dict:
        has_next = bool(links.get("next"))
    else:
        has_next = page * per_page < total
    return Page(tuple(map(parse_item, rows)), total, page, per_page, has_next)
