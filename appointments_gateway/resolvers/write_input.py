"""What a write's input must satisfy before anything is sent upstream.

Only what is certain is checked here: malformed ids, ``endsAt`` not after ``startsAt``,
repeat ranges, text lengths, the idempotency key's shape. Whether a practitioner exists
or a patient case belongs to the patient is Cliniko's to say (a 422). Every problem is
reported at once, so a form can mark all its fields in one round trip.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from appointments_gateway.resolvers.errors import BadUserInput
from appointments_gateway.resolvers.ids import parse_id
from appointments_gateway.resolvers.relations import RELATIONS
from appointments_gateway.resolvers.user_errors import (
    INPUT,
    InputProblem,
    UserErrorCode,
    camel,
    label,
)
from appointments_gateway.upstream import (
    AppointmentFields,
    RepeatRuleRecord,
    format_datetime,
)

__all__ = [
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "MAX_NOTE_LENGTH",
    "MAX_REPEATING_INTERVAL",
    "MAX_REPEATS",
    "AppointmentChanges",
    "RepeatRuleChange",
    "check_idempotency_key",
    "check_text",
    "fingerprint",
    "raw_id",
    "validated",
]

MAX_NOTE_LENGTH = 10_000
"""Characters allowed in ``notes`` and a cancellation ``note``.

Cliniko documents no limit. Ten thousand characters is several pages, far more than
a booking note needs, and keeps one mutation (and the row it creates) small.
"""
MAX_REPEATS = 51
"""``numberOfRepeats`` is 1..51: the appointments that follow the first (SPEC25)."""
MAX_REPEATING_INTERVAL = 100
"""``repeatingInterval`` is 1..100 days, weeks or months (SPEC25)."""
MAX_IDEMPOTENCY_KEY_LENGTH = 255
"""Long enough for a UUID or any client's request id, short enough to bound storage."""


@dataclass(frozen=True, slots=True)
class RepeatRuleChange:
    """A repeat rule as the client gave it; ``repeat_type`` is Daily, Weekly or Monthly."""

    repeat_type: str
    number_of_repeats: int
    repeating_interval: int = 1


class AppointmentChanges(TypedDict, total=False):
    """The appointment fields a client sent: a key is present only when it was sent.

    Ids are as given (global or raw). ``None`` is an explicit null: it clears a
    nullable field on update, and on create means "not given".
    """

    starts_at: datetime | None
    ends_at: datetime | None
    patient_id: str | None
    practitioner_id: str | None
    appointment_type_id: str | None
    business_id: str | None
    patient_case_id: str | None
    notes: str | None
    repeat_rule: RepeatRuleChange | None


#: The type of each link a write may set, for its id's error messages (relations.py).
_ID_TYPES = {r.attribute: r.type_name for r in RELATIONS if not r.is_appointment}
_REQUIRED = ("starts_at", "patient_id", "practitioner_id", "appointment_type_id", "business_id")


def raw_id(value: str, type_name: str, path: tuple[str, ...], errors: list[InputProblem]) -> str:
    """The raw Cliniko id named by ``value``; records a user error and returns "" if none."""
    try:
        return parse_id(value, type_name, argument=".".join(path))
    except BadUserInput as exc:
        errors.append(InputProblem(path, exc.message, UserErrorCode.INVALID))
    return ""


def check_text(value: str | None, path: tuple[str, ...], errors: list[InputProblem]) -> None:
    if value is not None and len(value) > MAX_NOTE_LENGTH:
        errors.append(
            InputProblem(
                path,
                f"{label(path)} is {len(value)} characters; at most {MAX_NOTE_LENGTH} fit.",
                UserErrorCode.TOO_LONG,
            )
        )


def _check_range(
    value: int, low: int, high: int, path: tuple[str, ...], errors: list[InputProblem]
) -> None:
    if not low <= value <= high:
        errors.append(
            InputProblem(
                path, f"{label(path)} must be from {low} to {high}.", UserErrorCode.OUT_OF_RANGE
            )
        )


def _repeat_rule(rule: RepeatRuleChange, errors: list[InputProblem]) -> RepeatRuleRecord:
    base = (INPUT, "repeatRule")
    _check_range(
        rule.repeating_interval, 1, MAX_REPEATING_INTERVAL, (*base, "repeatingInterval"), errors
    )
    _check_range(rule.number_of_repeats, 1, MAX_REPEATS, (*base, "numberOfRepeats"), errors)
    return RepeatRuleRecord(rule.repeat_type, rule.number_of_repeats, rule.repeating_interval)


def validated(
    changes: AppointmentChanges, *, creating: bool
) -> tuple[AppointmentFields, list[InputProblem]]:
    """The upstream fields for ``changes``, and every problem certain before sending.

    On create, a ``None`` leaves the field out (Cliniko derives ``ends_at``); on
    update it is sent as null, which clears the field (or recomputes ``ends_at``).
    """
    errors: list[InputProblem] = []
    fields: AppointmentFields = {}
    sent: Mapping[str, object] = changes
    for name in _REQUIRED:
        if name in sent and sent[name] is None:
            path = (INPUT, camel(name))
            errors.append(
                InputProblem(path, f"{label(path)} cannot be null.", UserErrorCode.REQUIRED)
            )

    def id_of(name: str) -> str | None:
        value = sent.get(name)
        if not isinstance(value, str):
            return None
        return raw_id(value, _ID_TYPES[name], (INPUT, camel(name)), errors)

    if (patient_id := id_of("patient_id")) is not None:
        fields["patient_id"] = patient_id
    if (practitioner_id := id_of("practitioner_id")) is not None:
        fields["practitioner_id"] = practitioner_id
    if (appointment_type_id := id_of("appointment_type_id")) is not None:
        fields["appointment_type_id"] = appointment_type_id
    if (business_id := id_of("business_id")) is not None:
        fields["business_id"] = business_id
    if (patient_case_id := id_of("patient_case_id")) is not None:
        fields["patient_case_id"] = patient_case_id
    elif "patient_case_id" in changes and not creating:
        fields["patient_case_id"] = None
    starts_at = changes.get("starts_at")
    if starts_at is not None:
        fields["starts_at"] = starts_at
    if "ends_at" in changes:
        ends_at = changes["ends_at"]
        if ends_at is not None or not creating:
            fields["ends_at"] = ends_at
        # Cliniko keeps whole seconds: compare what it will compare.
        if (
            starts_at is not None
            and ends_at is not None
            and int(ends_at.timestamp()) <= int(starts_at.timestamp())
        ):
            errors.append(
                InputProblem(
                    (INPUT, "endsAt"), "endsAt must be after startsAt.", UserErrorCode.INVALID
                )
            )
    if "notes" in changes:
        notes = changes["notes"]
        check_text(notes, (INPUT, "notes"), errors)
        if notes is not None or not creating:
            fields["notes"] = notes
    if "repeat_rule" in changes:
        rule = changes["repeat_rule"]
        if rule is not None:
            fields["repeat_rule"] = _repeat_rule(rule, errors)
        elif not creating:
            fields["repeat_rule"] = None
    return fields, errors


def fingerprint(fields: AppointmentFields) -> str:
    """A digest of the normalised create body: equal for the same booking however spelt."""

    def canonical(value: object) -> object:
        if isinstance(value, datetime):
            return format_datetime(value)
        if isinstance(value, RepeatRuleRecord):
            return [value.repeat_type, value.number_of_repeats, value.repeating_interval]
        return value

    body = {key: canonical(value) for key, value in fields.items()}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def check_idempotency_key(key: str, errors: list[InputProblem]) -> None:
    path = (INPUT, "idempotencyKey")
    if not key.strip() or not key.isprintable():
        errors.append(
            InputProblem(
                path, "idempotencyKey must be non-blank printable text.", UserErrorCode.INVALID
            )
        )
    elif len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        errors.append(
            InputProblem(
                path,
                f"idempotencyKey is at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters.",
                UserErrorCode.TOO_LONG,
            )
        )
