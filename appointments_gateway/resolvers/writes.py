"""The write use cases: create, update, cancel and archive an appointment.

Each one checks its input first (``write_input.py``) and, if anything is wrong,
answers with user errors and sends nothing. Cliniko's 422s become user errors too
(``user_errors.py``), and a 409 is a ``CONFLICT``. Failures that are not the caller's
input (401, 403, 404, 429, 5xx, timeouts) stay GraphQL errors with the codes of
DESIGN.md §5, through ``translate_upstream``.

After a write, the request's loaders forget every appointment row and appointment
list they hold (a cancel may have changed a whole series, a move changes conflicts
and lists) and remember the fresh record, so nothing later in the same operation
serves the old version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from appointments_gateway.resolvers.context import Context
from appointments_gateway.resolvers.errors import NotFound, translate_upstream
from appointments_gateway.resolvers.idempotency import (
    IdempotencyKeyReused,
    IdempotencyOutcomeUnknown,
    IdempotencyUnavailable,
    Replay,
)
from appointments_gateway.resolvers.user_errors import (
    INPUT,
    InputProblem,
    UserErrorCode,
    user_errors_for,
)
from appointments_gateway.resolvers.write_input import (
    AppointmentChanges,
    check_idempotency_key,
    check_text,
    fingerprint,
    raw_id,
    validated,
)
from appointments_gateway.upstream import (
    ACCEPTED_CANCELLATION_REASONS,
    AppointmentFields,
    AppointmentRecord,
    UpstreamConflict,
    UpstreamValidationError,
)

__all__ = [
    "WriteResult",
    "archive_appointment",
    "cancel_appointment",
    "create_appointment",
    "update_appointment",
]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The appointment as written, or the reasons it was not."""

    record: AppointmentRecord | None
    user_errors: tuple[InputProblem, ...] = ()


def _appointment_id(value: str, errors: list[InputProblem]) -> str:
    return raw_id(value, "Appointment", (INPUT, "id"), errors)


_KEY_REUSED = InputProblem(
    (INPUT, "idempotencyKey"),
    "This idempotencyKey was already used with a different input; use a new key for a new booking.",
    UserErrorCode.IDEMPOTENCY_KEY_REUSED,
)
_OUTCOME_UNKNOWN = InputProblem(
    (INPUT, "idempotencyKey"),
    "An earlier request with this idempotencyKey may or may not have booked the appointment "
    "(Cliniko did not confirm in time). Look for it before booking again, and use a new key "
    "if you do.",
    UserErrorCode.IDEMPOTENCY_KEY_OUTCOME_UNKNOWN,
)


def _key_unavailable(retry_after: float) -> InputProblem:
    return InputProblem(
        (INPUT, "idempotencyKey"),
        "Nothing was booked: the gateway cannot check this idempotencyKey right now (its "
        f"shared store is unreachable). Send the same request again in {math.ceil(retry_after)} "
        "s or later, with the same key.",
        UserErrorCode.IDEMPOTENCY_KEY_UNAVAILABLE,
    )


_CONFLICT = InputProblem(
    (INPUT, "id"),
    "Cliniko refused the change because of the appointment's current state; read it again.",
    UserErrorCode.CONFLICT,
)
_BOOKING_CONFLICT = InputProblem(
    (INPUT,),
    "Cliniko refused the booking as conflicting with the account's current state.",
    UserErrorCode.CONFLICT,
)
_OUTPUT_ONLY_REASON = (
    "reason: {name} cannot be given; Cliniko accepts FEELING_BETTER, CONDITION_WORSE, SICK, "
    "AWAY, OTHER and WORK."
)


def _remember(
    context: Context, record: AppointmentRecord, *, series: bool = False
) -> AppointmentRecord:
    """Forget every appointment row and list this request cached; keep the fresh row.

    The replica gets the row before the mutation answers, so the next read sees it;
    ``series``: the write changed other rows too (see ``ReplicaView.wrote``).
    """
    if context.local is not None:
        context.local.wrote(record, series=series)
    loaders = context.loaders
    loaders.appointments.clear_all()
    loaders.children.clear_all()
    loaders.conflicts.clear_all()
    loaders.appointments.remember(record.id, record)
    return record


def _series(fields: AppointmentFields) -> bool:
    """Whether a create or update also books or changes a series' other appointments."""
    return fields.get("repeat_rule") is not None


async def _reread(
    context: Context, appointment_id: str, *, series: bool = False
) -> AppointmentRecord:
    """The appointment after a write that answers 204, cancelled and archived included."""
    record = await context.upstream.appointments.get(
        appointment_id, include_cancelled=True, include_archived=True
    )
    return _remember(context, record, series=series)


async def create_appointment(
    context: Context, changes: AppointmentChanges, *, idempotency_key: str | None = None
) -> WriteResult:
    """Book an appointment (and its repeats); at most once per idempotency key."""
    fields, errors = validated(changes, creating=True)
    if idempotency_key is not None:
        check_idempotency_key(idempotency_key, errors)
    if errors:
        return WriteResult(None, tuple(errors))
    appointments = context.upstream.appointments
    with translate_upstream():
        try:
            if idempotency_key is None:
                created = await appointments.create(fields)
                return WriteResult(_remember(context, created, series=_series(fields)))
            outcome = await context.idempotency.run(
                scope=context.upstream.credential.fingerprint,
                key=idempotency_key,
                fingerprint=fingerprint(fields),
                action=lambda: appointments.create(fields),
                result_of=lambda record: record.id,
            )
        except UpstreamValidationError as exc:
            return WriteResult(None, user_errors_for(exc.field_errors))
        except UpstreamConflict:
            return WriteResult(None, (_BOOKING_CONFLICT,))
        except IdempotencyKeyReused:
            return WriteResult(None, (_KEY_REUSED,))
        except IdempotencyOutcomeUnknown:
            return WriteResult(None, (_OUTCOME_UNKNOWN,))
        except IdempotencyUnavailable as exc:
            return WriteResult(None, (_key_unavailable(exc.retry_after_seconds),))
    if isinstance(outcome, Replay):
        record = await context.loaders.appointments.get(outcome.result)
        if record is None:
            raise NotFound("The appointment created with this idempotency key no longer exists.")
        return WriteResult(record)
    return WriteResult(_remember(context, outcome.value, series=_series(fields)))


async def update_appointment(
    context: Context, appointment_id: str, changes: AppointmentChanges
) -> WriteResult:
    """Change only the fields the client sent."""
    errors: list[InputProblem] = []
    raw_id = _appointment_id(appointment_id, errors)
    fields, field_errors = validated(changes, creating=False)
    errors.extend(field_errors)
    if not changes:
        errors.append(
            InputProblem((INPUT,), "Give at least one field to change.", UserErrorCode.REQUIRED)
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
    return WriteResult(_remember(context, record, series=_series(fields)))


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
    errors: list[InputProblem] = []
    raw_id = _appointment_id(appointment_id, errors)
    if reason not in ACCEPTED_CANCELLATION_REASONS:
        errors.append(
            InputProblem(
                (INPUT, "reason"),
                _OUTPUT_ONLY_REASON.format(name=reason_name),
                UserErrorCode.INVALID,
            )
        )
    check_text(note, (INPUT, "note"), errors)
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
        return WriteResult(await _reread(context, raw_id, series=apply_to_repeats))


async def archive_appointment(context: Context, appointment_id: str) -> WriteResult:
    """Archive it with ``POST …/archive`` (not the deprecated DELETE), then re-read it."""
    errors: list[InputProblem] = []
    raw_id = _appointment_id(appointment_id, errors)
    if errors:
        return WriteResult(None, tuple(errors))
    with translate_upstream():
        try:
            await context.upstream.appointments.archive(raw_id)
        except UpstreamConflict:
            return WriteResult(None, (_CONFLICT,))
        return WriteResult(await _reread(context, raw_id))
