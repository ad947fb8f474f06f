"""The write use cases: create, update, cancel and archive an appointment.

Each one checks what it can be certain of before any upstream call (ids malformed,
``endsAt`` not after ``startsAt``, repeat ranges, text lengths, output-only reasons)
and answers every such problem at once as :class:`UserError` values, with the
GraphQL path of the input field and a stable code; nothing is sent then. What only
Cliniko can judge (does this practitioner exist?) comes back as a 422, which is
mapped to user errors the same way. Failures that are not the caller's input
(401, 403, 404, 429, 5xx, timeouts) stay GraphQL errors with the codes of
DESIGN.md §5, through ``translate_upstream``.

Cliniko's 422 messages are never passed on: they are part of an upstream body, which
may quote a record. Known phrasings ("can't be blank", "must exist", ...) become our
own message and code; anything else becomes a generic INVALID for that field.

After a write, the request's loaders forget every appointment row and appointment
list they hold (a cancel may have changed a whole series, a move changes conflicts
and lists) and remember the fresh record, so nothing later in the same operation
serves the old version.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from appointments_gateway.resolvers.context import Context
from appointments_gateway.resolvers.errors import BadUserInput, NotFound, translate_upstream
from appointments_gateway.resolvers.idempotency import (
    IdempotencyKeyReused,
    IdempotencyOutcomeUnknown,
    Replay,
)
from appointments_gateway.resolvers.ids import parse_id
from appointments_gateway.resolvers.loaders import Loaders
from appointments_gateway.upstream import (
    ACCEPTED_CANCELLATION_REASONS,
    AppointmentFields,
    AppointmentRecord,
    InvalidRequest,
    RepeatRule,
    UpstreamConflict,
    UpstreamValidationError,
    format_datetime,
    validate_id,
)

__all__ = [
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "MAX_NOTE_LENGTH",
    "MAX_REPEATING_INTERVAL",
    "MAX_REPEATS",
    "AppointmentChanges",
    "RepeatRuleChange",
    "UserError",
    "UserErrorCode",
    "WriteResult",
    "archive_appointment",
    "cancel_appointment",
    "create_appointment",
    "update_appointment",
    "user_errors_for",
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

_INPUT = "input"


class UserErrorCode(enum.StrEnum):
    """The stable codes of ``UserError.code``; clients branch on these, not on messages."""

    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    NOT_FOUND = "NOT_FOUND"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    TOO_LONG = "TOO_LONG"
    CONFLICT = "CONFLICT"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_KEY_OUTCOME_UNKNOWN = "IDEMPOTENCY_KEY_OUTCOME_UNKNOWN"


@dataclass(frozen=True, slots=True)
class UserError:
    """A problem with the caller's input: where (a GraphQL path), what, and a code."""

    field: tuple[str, ...] | None
    message: str
    code: UserErrorCode


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The appointment as written, or the reasons it was not."""

    record: AppointmentRecord | None
    user_errors: tuple[UserError, ...] = ()


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


# ---------------------------------------------------------------------------------------
# Field names and paths

#: Upstream field → GraphQL input field, where the two are not simply snake vs camel.
_RENAMED = {"cancellation_reason": "reason", "cancellation_note": "note"}
_KNOWN_FIELDS = frozenset(
    {
        "id",
        "starts_at",
        "ends_at",
        "patient_id",
        "practitioner_id",
        "appointment_type_id",
        "business_id",
        "patient_case_id",
        "notes",
        "repeat_rule",
        "repeat_rule.repeat_type",
        "repeat_rule.repeating_interval",
        "repeat_rule.number_of_repeats",
        "cancellation_reason",
        "cancellation_note",
        "apply_to_repeats",
    }
)
_ID_TYPES = {
    "patient_id": "Patient",
    "practitioner_id": "Practitioner",
    "appointment_type_id": "AppointmentType",
    "business_id": "Business",
    "patient_case_id": "PatientCase",
}
_REQUIRED = ("starts_at", "patient_id", "practitioner_id", "appointment_type_id", "business_id")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _path(upstream_field: str) -> tuple[str, ...]:
    """The GraphQL input path of an upstream field name (dotted for nested ones)."""
    if upstream_field not in _KNOWN_FIELDS:
        return (_INPUT,)
    parts = _RENAMED.get(upstream_field, upstream_field).split(".")
    return (_INPUT, *(_camel(part) for part in parts))


def _label(path: tuple[str, ...]) -> str:
    return ".".join(path[1:]) or "The input"


# ---------------------------------------------------------------------------------------
# Upstream 422 → user errors

_UPSTREAM_PHRASES: tuple[tuple[re.Pattern[str], UserErrorCode, str], ...] = (
    (re.compile(r"can't be blank|is required", re.I), UserErrorCode.REQUIRED, "is required."),
    (
        re.compile(r"must exist|does not exist|not found", re.I),
        UserErrorCode.NOT_FOUND,
        "does not name a record in this account.",
    ),
    (
        re.compile(r"must belong to", re.I),
        UserErrorCode.INVALID,
        "belongs to another record (a patient case must be the patient's own).",
    ),
    (re.compile(r"too long", re.I), UserErrorCode.TOO_LONG, "is too long."),
    (
        re.compile(r"from -?\d+ to -?\d+|less than|greater than|out of range", re.I),
        UserErrorCode.OUT_OF_RANGE,
        "is out of range.",
    ),
    (re.compile(r"must be after", re.I), UserErrorCode.INVALID, "must be after startsAt."),
)


def user_errors_for(field_errors: Mapping[str, str]) -> tuple[UserError, ...]:
    """User errors for a 422's ``{upstream field: message}``, in our words, never theirs."""
    errors: list[UserError] = []
    for upstream_field, upstream_message in sorted(field_errors.items()):
        path = _path(upstream_field)
        code, text = UserErrorCode.INVALID, "was refused by Cliniko."
        for pattern, phrase_code, phrase_text in _UPSTREAM_PHRASES:
            if pattern.search(upstream_message):
                code, text = phrase_code, phrase_text
                break
        errors.append(UserError(path, f"{_label(path)} {text}", code))
    if not errors:  # a 422 without the documented body
        errors.append(
            UserError((_INPUT,), "Cliniko refused the appointment.", UserErrorCode.INVALID)
        )
    return tuple(errors)


# ---------------------------------------------------------------------------------------
# Validation before the upstream call


def _raw_id(value: str, type_name: str, path: tuple[str, ...], errors: list[UserError]) -> str:
    """The raw Cliniko id named by ``value``; records a user error and returns "" if none."""
    try:
        return validate_id(parse_id(value, type_name, argument=".".join(path)))
    except BadUserInput as exc:
        errors.append(UserError(path, exc.message, UserErrorCode.INVALID))
    except InvalidRequest:
        errors.append(
            UserError(
                path,
                f"{_label(path)}: a Cliniko id is digits without leading zeros.",
                UserErrorCode.INVALID,
            )
        )
    return ""


def _check_text(value: str | None, path: tuple[str, ...], errors: list[UserError]) -> None:
    if value is not None and len(value) > MAX_NOTE_LENGTH:
        errors.append(
            UserError(
                path,
                f"{_label(path)} is {len(value)} characters; at most {MAX_NOTE_LENGTH} fit.",
                UserErrorCode.TOO_LONG,
            )
        )


def _check_range(
    value: int, low: int, high: int, path: tuple[str, ...], errors: list[UserError]
) -> None:
    if not low <= value <= high:
        errors.append(
            UserError(
                path, f"{_label(path)} must be from {low} to {high}.", UserErrorCode.OUT_OF_RANGE
            )
        )


def _repeat_rule(rule: RepeatRuleChange, errors: list[UserError]) -> RepeatRule:
    base = (_INPUT, "repeatRule")
    _check_range(
        rule.repeating_interval, 1, MAX_REPEATING_INTERVAL, (*base, "repeatingInterval"), errors
    )
    _check_range(rule.number_of_repeats, 1, MAX_REPEATS, (*base, "numberOfRepeats"), errors)
    return RepeatRule(rule.repeat_type, rule.number_of_repeats, rule.repeating_interval)


def _validated(
    changes: AppointmentChanges, *, creating: bool
) -> tuple[AppointmentFields, list[UserError]]:
    """The upstream fields for ``changes``, and every problem certain before sending.

    On create, a ``None`` leaves the field out (Cliniko derives ``ends_at``); on
    update it is sent as null, which clears the field (or recomputes ``ends_at``).
    """
    errors: list[UserError] = []
    fields: AppointmentFields = {}
    sent: Mapping[str, object] = changes
    for name in _REQUIRED:
        if name in sent and sent[name] is None:
            path = (_INPUT, _camel(name))
            errors.append(
                UserError(path, f"{_label(path)} cannot be null.", UserErrorCode.REQUIRED)
            )

    def raw_id(name: str) -> str | None:
        value = sent.get(name)
        if not isinstance(value, str):
            return None
        return _raw_id(value, _ID_TYPES[name], (_INPUT, _camel(name)), errors)

    if (patient_id := raw_id("patient_id")) is not None:
        fields["patient_id"] = patient_id
    if (practitioner_id := raw_id("practitioner_id")) is not None:
        fields["practitioner_id"] = practitioner_id
    if (appointment_type_id := raw_id("appointment_type_id")) is not None:
        fields["appointment_type_id"] = appointment_type_id
    if (business_id := raw_id("business_id")) is not None:
        fields["business_id"] = business_id
    if (patient_case_id := raw_id("patient_case_id")) is not None:
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
                UserError(
                    (_INPUT, "endsAt"), "endsAt must be after startsAt.", UserErrorCode.INVALID
                )
            )
    if "notes" in changes:
        notes = changes["notes"]
        _check_text(notes, (_INPUT, "notes"), errors)
        if notes is not None or not creating:
            fields["notes"] = notes
    if "repeat_rule" in changes:
        rule = changes["repeat_rule"]
        if rule is not None:
            fields["repeat_rule"] = _repeat_rule(rule, errors)
        elif not creating:
            fields["repeat_rule"] = None
    return fields, errors


def _fingerprint(fields: AppointmentFields) -> str:
    """A digest of the normalised create body: equal for the same booking however spelt."""

    def canonical(value: object) -> object:
        if isinstance(value, datetime):
            return format_datetime(value)
        if isinstance(value, RepeatRule):
            return [value.repeat_type, value.number_of_repeats, value.repeating_interval]
        return value

    body = {key: canonical(value) for key, value in fields.items()}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _check_idempotency_key(key: str, errors: list[UserError]) -> None:
    path = (_INPUT, "idempotencyKey")
    if not key.strip() or not key.isprintable():
        errors.append(
            UserError(
                path, "idempotencyKey must be non-blank printable text.", UserErrorCode.INVALID
            )
        )
    elif len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        errors.append(
            UserError(
                path,
                f"idempotencyKey is at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters.",
                UserErrorCode.TOO_LONG,
            )
        )


def _appointment_id(value: str, errors: list[UserError]) -> str:
    return _raw_id(value, "Appointment", (_INPUT, "id"), errors)


# ---------------------------------------------------------------------------------------
# After a write


def _remember(loaders: Loaders, record: AppointmentRecord) -> AppointmentRecord:
    """Forget every appointment row and list this request cached; keep the fresh row."""
    loaders.appointments.clear_all()
    loaders.children.clear_all()
    loaders.conflicts.clear_all()
    loaders.appointments.remember(record.id, record)
    return record


async def _reread(context: Context, appointment_id: str) -> AppointmentRecord:
    """The appointment after a write that answers 204, cancelled and archived included."""
    record = await context.upstream.appointments.get(
        appointment_id, include_cancelled=True, include_archived=True
    )
    return _remember(context.loaders, record)


# ---------------------------------------------------------------------------------------
# The use cases


async def create_appointment(
    context: Context, changes: AppointmentChanges, *, idempotency_key: str | None = None
) -> WriteResult:
    """Book an appointment (and its repeats); at most once per idempotency key."""
    fields, errors = _validated(changes, creating=True)
    if idempotency_key is not None:
        _check_idempotency_key(idempotency_key, errors)
    if errors:
        return WriteResult(None, tuple(errors))
    appointments = context.upstream.appointments
    with translate_upstream():
        try:
            if idempotency_key is None:
                return WriteResult(_remember(context.loaders, await appointments.create(fields)))
            outcome = await context.idempotency.run(
                scope=context.upstream.credential.fingerprint,
                key=idempotency_key,
                fingerprint=_fingerprint(fields),
                action=lambda: appointments.create(fields),
                result_of=lambda record: record.id,
            )
        except UpstreamValidationError as exc:
            return WriteResult(None, user_errors_for(exc.field_errors))
        except IdempotencyKeyReused:
            return WriteResult(None, (_KEY_REUSED,))
        except IdempotencyOutcomeUnknown:
            return WriteResult(None, (_OUTCOME_UNKNOWN,))
    if isinstance(outcome, Replay):
        record = await context.loaders.appointments.get(outcome.result)
        if record is None:
            raise NotFound("The appointment created with this idempotency key no longer exists.")
        return WriteResult(record)
    return WriteResult(_remember(context.loaders, outcome.value))


_KEY_REUSED = UserError(
    (_INPUT, "idempotencyKey"),
    "This idempotencyKey was already used with a different input; use a new key for a new booking.",
    UserErrorCode.IDEMPOTENCY_KEY_REUSED,
)
_OUTCOME_UNKNOWN = UserError(
    (_INPUT, "idempotencyKey"),
    "An earlier request with this idempotencyKey may or may not have booked the appointment "
    "(Cliniko did not confirm in time). Look for it before booking again, and use a new key "
    "if you do.",
    UserErrorCode.IDEMPOTENCY_KEY_OUTCOME_UNKNOWN,
)


async def update_appointment(
    context: Context, appointment_id: str, changes: AppointmentChanges
) -> WriteResult:
    """Change only the fields the client sent."""
    errors: list[UserError] = []
    raw_id = _appointment_id(appointment_id, errors)
    fields, field_errors = _validated(changes, creating=False)
    errors.extend(field_errors)
    if not changes:
        errors.append(
            UserError((_INPUT,), "Give at least one field to change.", UserErrorCode.REQUIRED)
        )
    if errors:
        return WriteResult(None, tuple(errors))
    with translate_upstream():
        try:
            record = await context.upstream.appointments.update(raw_id, fields)
        except UpstreamValidationError as exc:
            return WriteResult(None, user_errors_for(exc.field_errors))
        except UpstreamConflict:
            return WriteResult(None, (_CONFLICT,))
    return WriteResult(_remember(context.loaders, record))


_CONFLICT = UserError(
    (_INPUT, "id"),
    "Cliniko refused the change because of the appointment's current state; read it again.",
    UserErrorCode.CONFLICT,
)
_OUTPUT_ONLY_REASON = (
    "reason: {name} cannot be given; Cliniko accepts FEELING_BETTER, CONDITION_WORSE, SICK, "
    "AWAY, OTHER and WORK."
)


async def cancel_appointment(
    context: Context,
    appointment_id: str,
    *,
    reason: int,
    reason_name: str,
    note: str | None,
    apply_to_repeats: bool,
) -> WriteResult:
    """Cancel it (and, if asked, the later appointments of its series), then re-read it.

    ``reason_name`` is the enum name the client sent, for the message when the code is
    one Cliniko no longer accepts (COVID_19_RELATED) or a placeholder (UNKNOWN).
    """
    errors: list[UserError] = []
    raw_id = _appointment_id(appointment_id, errors)
    if reason not in ACCEPTED_CANCELLATION_REASONS:
        errors.append(
            UserError(
                (_INPUT, "reason"),
                _OUTPUT_ONLY_REASON.format(name=reason_name),
                UserErrorCode.INVALID,
            )
        )
    _check_text(note, (_INPUT, "note"), errors)
    if errors:
        return WriteResult(None, tuple(errors))
    with translate_upstream():
        try:
            await context.upstream.appointments.cancel(
                raw_id, reason=reason, note=note, apply_to_repeats=apply_to_repeats
            )
        except UpstreamValidationError as exc:
            return WriteResult(None, user_errors_for(exc.field_errors))
        except UpstreamConflict:
            return WriteResult(None, (_CONFLICT,))
        return WriteResult(await _reread(context, raw_id))


async def archive_appointment(context: Context, appointment_id: str) -> WriteResult:
    """Archive it with ``POST …/archive`` (not the deprecated DELETE), then re-read it."""
    errors: list[UserError] = []
    raw_id = _appointment_id(appointment_id, errors)
    if errors:
        return WriteResult(None, tuple(errors))
    with translate_upstream():
        try:
            await context.upstream.appointments.archive(raw_id)
        except UpstreamConflict:
            return WriteResult(None, (_CONFLICT,))
        return WriteResult(await _reread(context, raw_id))
