"""Input types of the mutations, and their translation to the write use cases' terms.

Update inputs default every field to ``UNSET``, so an omitted field (left untouched)
is told apart from an explicit ``null`` (cleared, or for ``endsAt`` recomputed).
Enums become plain upstream values through explicit tables, as in ``enums.py``.
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from appointments_gateway.resolvers.write_input import (
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_NOTE_LENGTH,
    MAX_REPEATING_INTERVAL,
    MAX_REPEATS,
    AppointmentChanges,
    RepeatRuleChange,
)
from appointments_gateway.schema.enums import CancellationReason, RepeatType

__all__ = [
    "ArchiveAppointmentInput",
    "CancelAppointmentInput",
    "CreateAppointmentInput",
    "RepeatRuleInput",
    "UpdateAppointmentInput",
    "create_changes",
    "reason_code",
    "update_changes",
]

_REPEAT_TYPE_VALUES: dict[RepeatType, str] = {
    RepeatType.DAILY: "Daily",
    RepeatType.WEEKLY: "Weekly",
    RepeatType.MONTHLY: "Monthly",
}
_REASON_CODES: dict[CancellationReason, int] = {
    CancellationReason.FEELING_BETTER: 10,
    CancellationReason.CONDITION_WORSE: 20,
    CancellationReason.SICK: 30,
    CancellationReason.COVID_19_RELATED: 31,
    CancellationReason.AWAY: 40,
    CancellationReason.OTHER: 50,
    CancellationReason.WORK: 60,
    CancellationReason.UNKNOWN: -1,
}


def reason_code(reason: CancellationReason) -> int:
    """Cliniko's code for a reason (31 and -1 are refused by the use case, not here)."""
    return _REASON_CODES[reason]


@strawberry.input(description="How a new appointment repeats: it plus `numberOfRepeats` more.")
class RepeatRuleInput:
    repeat_type: RepeatType = strawberry.field(description="Daily, weekly or monthly.")
    number_of_repeats: int = strawberry.field(
        description=f"How many appointments follow the first one (1–{MAX_REPEATS})."
    )
    repeating_interval: int = strawberry.field(
        default=1,
        description=f"Every N days, weeks or months (1–{MAX_REPEATING_INTERVAL}); default 1.",
    )


_NOTES = f"Appointment notes (at most {MAX_NOTE_LENGTH} characters)."


@strawberry.input(description="A new appointment. Ids take a global id or the Cliniko id.")
class CreateAppointmentInput:
    starts_at: datetime = strawberry.field(description="When it starts.")
    ends_at: datetime | None = strawberry.field(
        default=None,
        description="When it ends; after `startsAt`. Default: `startsAt` plus the "
        "appointment type's duration.",
    )
    patient_id: strawberry.ID = strawberry.field(description="The patient to book.")
    practitioner_id: strawberry.ID = strawberry.field(description="The practitioner to see.")
    appointment_type_id: strawberry.ID = strawberry.field(description="The appointment type.")
    business_id: strawberry.ID = strawberry.field(description="The business (location).")
    patient_case_id: strawberry.ID | None = strawberry.field(
        default=None, description="A patient case of the same patient."
    )
    notes: str | None = strawberry.field(default=None, description=_NOTES)
    repeat_rule: RepeatRuleInput | None = strawberry.field(
        default=None, description="Book a repeating series; its repeats are created too."
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="A unique string per intended booking (e.g. a UUID, at most "
        f"{MAX_IDEMPOTENCY_KEY_LENGTH} characters). Retrying with the same key and input "
        "within 24 h returns the first booking instead of booking again; the same key with "
        "another input is refused (`IDEMPOTENCY_KEY_REUSED`). If the first attempt's "
        "outcome is unknown, retries get `IDEMPOTENCY_KEY_OUTCOME_UNKNOWN`. While the gateway's "
        "shared store is unreachable, nothing is booked and the answer is "
        "`IDEMPOTENCY_KEY_UNAVAILABLE`: retry with the same key.",
    )


def _rule(rule: RepeatRuleInput | None) -> RepeatRuleChange | None:
    if rule is None:
        return None
    return RepeatRuleChange(
        repeat_type=_REPEAT_TYPE_VALUES[rule.repeat_type],
        number_of_repeats=rule.number_of_repeats,
        repeating_interval=rule.repeating_interval,
    )


def create_changes(input: CreateAppointmentInput) -> AppointmentChanges:
    """Every create field, ``None`` for those not given."""
    return {
        "starts_at": input.starts_at,
        "ends_at": input.ends_at,
        "patient_id": input.patient_id,
        "practitioner_id": input.practitioner_id,
        "appointment_type_id": input.appointment_type_id,
        "business_id": input.business_id,
        "patient_case_id": input.patient_case_id,
        "notes": input.notes,
        "repeat_rule": _rule(input.repeat_rule),
    }


_OMIT = "Omit to leave unchanged."


@strawberry.input(
    description="Changes to an appointment: only the fields given are sent to Cliniko. "
    "An omitted field is left as it is; `null` clears a field that may be empty."
)
class UpdateAppointmentInput:
    id: strawberry.ID = strawberry.field(description="The appointment (global or Cliniko id).")
    starts_at: datetime | None = strawberry.field(
        default=strawberry.UNSET,
        description=f"New start; without `endsAt` the length is kept. {_OMIT} Not null.",
    )
    ends_at: datetime | None = strawberry.field(
        default=strawberry.UNSET,
        description="New end; `null` recomputes it from the appointment type. " + _OMIT,
    )
    patient_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description=f"Another patient. {_OMIT} Not null."
    )
    practitioner_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description=f"Another practitioner. {_OMIT} Not null."
    )
    appointment_type_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description=f"Another appointment type. {_OMIT} Not null."
    )
    business_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description=f"Another business. {_OMIT} Not null."
    )
    patient_case_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description=f"Another patient case; `null` unlinks it. {_OMIT}"
    )
    notes: str | None = strawberry.field(
        default=strawberry.UNSET, description=f"{_NOTES} `null` clears them. {_OMIT}"
    )
    repeat_rule: RepeatRuleInput | None = strawberry.field(
        default=strawberry.UNSET,
        description="The rule stored on this appointment; `null` clears it. Cliniko does "
        f"not add or remove the series' appointments for it. {_OMIT}",
    )


def update_changes(input: UpdateAppointmentInput) -> AppointmentChanges:
    """Only the fields the client sent; an explicit null stays ``None``."""
    unset = strawberry.UNSET
    changes: AppointmentChanges = {}
    if input.starts_at is not unset:
        changes["starts_at"] = input.starts_at
    if input.ends_at is not unset:
        changes["ends_at"] = input.ends_at
    if input.patient_id is not unset:
        changes["patient_id"] = input.patient_id
    if input.practitioner_id is not unset:
        changes["practitioner_id"] = input.practitioner_id
    if input.appointment_type_id is not unset:
        changes["appointment_type_id"] = input.appointment_type_id
    if input.business_id is not unset:
        changes["business_id"] = input.business_id
    if input.patient_case_id is not unset:
        changes["patient_case_id"] = input.patient_case_id
    if input.notes is not unset:
        changes["notes"] = input.notes
    if input.repeat_rule is not unset:
        changes["repeat_rule"] = _rule(input.repeat_rule)
    return changes


@strawberry.input(description="Cancel an appointment (Cliniko keeps it, marked cancelled).")
class CancelAppointmentInput:
    id: strawberry.ID = strawberry.field(description="The appointment (global or Cliniko id).")
    reason: CancellationReason = strawberry.field(
        description="Why. `COVID_19_RELATED` and `UNKNOWN` are output only and refused."
    )
    note: str | None = strawberry.field(
        default=None, description=f"A note on the cancellation (at most {MAX_NOTE_LENGTH} chars)."
    )
    apply_to_repeats: bool = strawberry.field(
        default=False,
        description="Also cancel the later appointments of its repeating series (earlier "
        "ones are left as they are).",
    )


@strawberry.input(description="Archive an appointment (Cliniko's delete; it stays readable).")
class ArchiveAppointmentInput:
    id: strawberry.ID = strawberry.field(description="The appointment (global or Cliniko id).")
