"""Appointment writes (create, update, cancel, archive, delete): validation and the commit.

Both doors write through here, the API (:mod:`.app`) and the web app (:mod:`.webapp`), so a
body either refuses is refused with the same errors, and every write stamps ``updated_at`` the
same way: with the current whole second passed in as ``now``, on every row it touches.

Errors are collected per field and answered as Cliniko's 422 body,
``{"message": "Validation Failed", "errors": {"<field>": "<message string>"}}`` (the web app
sends it with 400), with Rails-style messages ("can't be blank", "must exist"). Nested
repeat-rule problems use dotted keys (``repeat_rule.number_of_repeats``) so a client can point
at the exact input.

Decisions where Cliniko's documentation is silent (documented, and relied on by tests):

* **Required on create**: ``patient_id``, ``practitioner_id``, ``appointment_type_id``,
  ``business_id`` and ``starts_at``. The YAML request body lists no required fields; OLDDOCS and
  the UI require these. Ids may be JSON strings (as documented) or integers.
* **References** must exist in the caller's account (archived rows count as existing); a
  ``patient_case_id`` must also belong to the patient.
* **ends_at**: derived from the appointment type's ``duration_in_minutes`` when left out on
  create or sent as ``null`` on update. On update, moving ``starts_at`` without sending
  ``ends_at`` keeps the appointment's length (inference). ``ends_at`` must be after ``starts_at``.
* **repeat_rule** on create: ``repeat_type`` (Daily|Weekly|Monthly) and ``number_of_repeats``
  (1..51) are required in a non-empty rule, ``repeating_interval`` (1..100) defaults to 1.
  ``number_of_repeats`` counts the **additional** appointments: a rule of 3 makes the origin
  plus 3 repeats, each ``repeating_interval`` days/weeks/months after the previous one
  (monthly repeats keep the day of month, clamped to the month's end). Repeats copy the
  origin's fields and rule, get ``repeated_from_id`` = origin and ``repeats: null``.
  On update a rule is validated and stored on that appointment only; no appointments are added
  or removed (not imitated: Cliniko's series editing).
* **Cancel**: ``cancellation_reason`` is required and must be in the current request enum
  [10, 20, 30, 40, 50, 60]; the legacy 31 is refused (it stays readable on old rows).
  ``apply_to_repeats: true`` cancels the appointment and every later live appointment of the
  same series (origin and repeats alike); earlier ones are untouched. Cancelling an already
  cancelled appointment overwrites the reason and note (idempotent, 204).
* Unknown body fields are ignored, as Rails' strong parameters do (the web app refuses them;
  :data:`BODY_FIELDS` and :data:`CANCEL_FIELDS` list the known ones).
* **Archived and deleted** appointments are missing (404) for update and cancel
  (:func:`is_writable`); archive finds only deleted ones missing, and archiving an archived
  one changes nothing, ``updated_at`` included.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .seed import series_start
from .store import Store
from .timefmt import format_ts, parse_ts

__all__ = [
    "BODY_FIELDS",
    "CANCEL_FIELDS",
    "CancelRequest",
    "ValidationFailed",
    "build_create",
    "build_update",
    "commit_archive",
    "commit_cancel",
    "commit_create",
    "commit_delete",
    "is_writable",
    "parse_cancel",
]

CANCELLATION_REASONS = frozenset({10, 20, 30, 40, 50, 60})
REPEAT_TYPES = ("Daily", "Weekly", "Monthly")
BODY_FIELDS = frozenset(
    {
        "patient_id",
        "practitioner_id",
        "appointment_type_id",
        "business_id",
        "patient_case_id",
        "starts_at",
        "ends_at",
        "notes",
        "repeat_rule",
    }
)
"""The create/update body's fields (SPEC25 ``requestBodies.IndividualAppointment``)."""
CANCEL_FIELDS = frozenset({"cancellation_reason", "cancellation_note", "apply_to_repeats"})
"""The cancel body's fields (SPEC25 ``requestBodies.IndividualAppointmentCancel``)."""
_REFERENCES = (
    ("patient_id", "patients"),
    ("practitioner_id", "practitioners"),
    ("appointment_type_id", "appointment_types"),
    ("business_id", "businesses"),
)


class ValidationFailed(Exception):
    """A write was refused; ``errors`` maps field names to message strings."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(f"Validation failed: {sorted(errors)!r}")
        self.errors = errors


@dataclass(frozen=True)
class CancelRequest:
    """A validated cancel body."""

    reason: int
    note: str | None
    apply_to_repeats: bool


def _parse_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**63 else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        number = int(value)
        return number if 0 < number < 2**63 else None
    return None


def _parse_time(body: Mapping[str, Any], name: str, errors: dict[str, str]) -> datetime | None:
    value = body.get(name)
    parsed = parse_ts(value) if isinstance(value, str) else None
    if parsed is None:
        errors[name] = "is not a valid date-time (expected e.g. 2024-04-02T14:45:00Z)"
        return None
    return parsed.replace(microsecond=0)


def _parse_repeat_rule(value: Any, errors: dict[str, str]) -> dict[str, Any] | None:
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        errors["repeat_rule"] = "must be an object"
        return None
    repeat_type = value.get("repeat_type")
    if repeat_type not in REPEAT_TYPES:
        errors["repeat_rule.repeat_type"] = "must be one of Daily, Weekly, Monthly"
    interval = value.get("repeating_interval", 1)
    interval = 1 if interval is None else interval
    if isinstance(interval, bool) or not isinstance(interval, int) or not 1 <= interval <= 100:
        errors["repeat_rule.repeating_interval"] = "must be an integer from 1 to 100"
    repeats = value.get("number_of_repeats")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= 51:
        errors["repeat_rule.number_of_repeats"] = "must be an integer from 1 to 51"
    if any(key.startswith("repeat_rule") for key in errors):
        return None
    return {
        "repeat_type": repeat_type,
        "repeating_interval": interval,
        "number_of_repeats": repeats,
    }


def _resolve_references(
    body: Mapping[str, Any],
    store: Store,
    account: str,
    errors: dict[str, str],
    *,
    required: bool,
) -> dict[str, sqlite3.Row]:
    found: dict[str, sqlite3.Row] = {}
    for field, table in _REFERENCES:
        if field not in body and not required:
            continue
        value = body.get(field)
        if value is None or value == "":
            errors[field] = "can't be blank"
            continue
        row_id = _parse_id(value)
        row = store.find(table, account, row_id) if row_id is not None else None
        if row is None:
            errors[field] = "must exist" if row_id is not None else "is not a valid id"
            continue
        found[field] = row
    return found


def _patient_name(patient: sqlite3.Row) -> str:
    return f"{patient['first_name']} {patient['last_name']}"


def _resolve_case(
    body: Mapping[str, Any],
    store: Store,
    account: str,
    patient_id: int | None,
    errors: dict[str, str],
) -> int | None:
    value = body.get("patient_case_id")
    if value is None or value == "":
        return None
    case_id = _parse_id(value)
    case = store.find("patient_cases", account, case_id) if case_id is not None else None
    if case is None:
        errors["patient_case_id"] = "must exist" if case_id is not None else "is not a valid id"
        return None
    if patient_id is not None and case["patient_id"] != patient_id:
        errors["patient_case_id"] = "must belong to the patient"
    return case_id


def _check_notes(body: Mapping[str, Any], errors: dict[str, str]) -> None:
    if "notes" in body and body["notes"] is not None and not isinstance(body["notes"], str):
        errors["notes"] = "must be a string"


def build_create(
    body: Mapping[str, Any], store: Store, account: str, now: datetime
) -> list[dict[str, Any]]:
    """Validate a create body and return the new rows: the appointment, then its repeats."""
    errors: dict[str, str] = {}
    refs = _resolve_references(body, store, account, errors, required=True)
    starts = _parse_time(body, "starts_at", errors) if body.get("starts_at") is not None else None
    if body.get("starts_at") is None:
        errors["starts_at"] = "can't be blank"
    patient_id = refs["patient_id"]["id"] if "patient_id" in refs else None
    case_id = _resolve_case(body, store, account, patient_id, errors)
    _check_notes(body, errors)
    rule = _parse_repeat_rule(body.get("repeat_rule"), errors)
    ends: datetime | None = None
    if body.get("ends_at") is not None:
        ends = _parse_time(body, "ends_at", errors)
    elif starts is not None and "appointment_type_id" in refs:
        ends = starts + timedelta(minutes=refs["appointment_type_id"]["duration_in_minutes"])
    if starts is not None and ends is not None and ends <= starts:
        errors["ends_at"] = "must be after starts_at"
    if errors or starts is None or ends is None:
        raise ValidationFailed(errors or {"starts_at": "can't be blank"})

    stamp = format_ts(now)
    origin_id = store.next_appointment_id()
    base: dict[str, Any] = {
        "account": account,
        "patient_id": refs["patient_id"]["id"],
        "practitioner_id": refs["practitioner_id"]["id"],
        "appointment_type_id": refs["appointment_type_id"]["id"],
        "business_id": refs["business_id"]["id"],
        "patient_case_id": case_id,
        "repeated_from_id": None,
        "created_at": stamp,
        "updated_at": stamp,
        "archived_at": None,
        "cancelled_at": None,
        "deleted_at": None,
        "cancellation_reason": None,
        "cancellation_note": None,
        "did_not_arrive": False,
        "patient_arrived": False,
        "email_reminder_sent": False,
        "sms_reminder_sent": False,
        "has_patient_appointment_notes": False,
        "notes": body.get("notes"),
        "online_booking_policy_accepted": None,
        "booking_ip_address": None,
        "patient_name": _patient_name(refs["patient_id"]),
        "invoice_status": None,
        "treatment_note_status": None,
        "repeat_type": rule["repeat_type"] if rule else None,
        "repeating_interval": rule["repeating_interval"] if rule else None,
        "number_of_repeats": rule["number_of_repeats"] if rule else None,
    }
    rows = [{**base, "id": origin_id, "starts_at": format_ts(starts), "ends_at": format_ts(ends)}]
    if rule:
        length = ends - starts
        for k in range(1, rule["number_of_repeats"] + 1):
            start_k = series_start(starts, rule["repeat_type"], rule["repeating_interval"] * k)
            rows.append(
                {
                    **base,
                    "id": origin_id + k,
                    "repeated_from_id": origin_id,
                    "starts_at": format_ts(start_k),
                    "ends_at": format_ts(start_k + length),
                }
            )
    return rows


def build_update(
    body: Mapping[str, Any], store: Store, current: sqlite3.Row, now: datetime
) -> dict[str, Any]:
    """Validate a PATCH body against the current row and return the column changes."""
    account = current["account"]
    errors: dict[str, str] = {}
    refs = _resolve_references(body, store, account, errors, required=False)
    changes: dict[str, Any] = {field: row["id"] for field, row in refs.items()}
    if "patient_id" in refs:
        changes["patient_name"] = _patient_name(refs["patient_id"])
    patient_id = changes.get("patient_id", current["patient_id"])
    if "patient_case_id" in body:
        changes["patient_case_id"] = _resolve_case(body, store, account, patient_id, errors)
    elif "patient_id" in refs and current["patient_case_id"] is not None:
        _resolve_case(
            {"patient_case_id": current["patient_case_id"]}, store, account, patient_id, errors
        )
    _check_notes(body, errors)
    if "notes" in body:
        changes["notes"] = body["notes"]
    if "repeat_rule" in body:
        rule = _parse_repeat_rule(body["repeat_rule"], errors)
        changes["repeat_type"] = rule["repeat_type"] if rule else None
        changes["repeating_interval"] = rule["repeating_interval"] if rule else None
        changes["number_of_repeats"] = rule["number_of_repeats"] if rule else None

    old_start = datetime.fromisoformat(current["starts_at"])
    old_end = datetime.fromisoformat(current["ends_at"])
    starts: datetime | None = old_start
    if "starts_at" in body:
        if body["starts_at"] is None:
            errors["starts_at"] = "can't be blank"
            starts = None
        else:
            starts = _parse_time(body, "starts_at", errors)
    ends: datetime | None
    if "ends_at" in body and body["ends_at"] is not None:
        ends = _parse_time(body, "ends_at", errors)
    elif "ends_at" in body:  # null: derive from the (possibly new) appointment type
        type_row = refs.get("appointment_type_id") or store.find(
            "appointment_types", account, current["appointment_type_id"]
        )
        minutes = type_row["duration_in_minutes"] if type_row is not None else 0
        ends = starts + timedelta(minutes=minutes) if starts is not None else None
    else:  # keep the appointment's length
        ends = starts + (old_end - old_start) if starts is not None else None
    if starts is not None and ends is not None and ends <= starts:
        errors["ends_at"] = "must be after starts_at"
    if errors:
        raise ValidationFailed(errors)
    if starts is not None and ends is not None:
        changes["starts_at"] = format_ts(starts)
        changes["ends_at"] = format_ts(ends)
    changes["updated_at"] = format_ts(now)
    return changes


def parse_cancel(body: Mapping[str, Any]) -> CancelRequest:
    """Validate a cancel body."""
    errors: dict[str, str] = {}
    reason = body.get("cancellation_reason")
    if reason is None:
        errors["cancellation_reason"] = "can't be blank"
    elif (
        isinstance(reason, bool)
        or not isinstance(reason, int)
        or reason not in CANCELLATION_REASONS
    ):
        errors["cancellation_reason"] = "is not included in the list"
    note = body.get("cancellation_note")
    if note is not None and not isinstance(note, str):
        errors["cancellation_note"] = "must be a string"
    apply = body.get("apply_to_repeats", False)
    if apply is None:
        apply = False
    if not isinstance(apply, bool):
        errors["apply_to_repeats"] = "must be true or false"
    if errors:
        raise ValidationFailed(errors)
    assert isinstance(reason, int)
    return CancelRequest(reason=reason, note=note, apply_to_repeats=bool(apply))


def is_writable(row: sqlite3.Row) -> bool:
    """Whether an appointment exists for writes: archived and deleted ones answer 404."""
    return row["archived_at"] is None and row["deleted_at"] is None


def commit_create(store: Store, account: str, body: Mapping[str, Any], now: datetime) -> int:
    """Validate a create body, insert the appointment and its repeats; the new origin's id."""
    rows = build_create(body, store, account, now)
    store.insert_appointments(rows)
    origin_id: int = rows[0]["id"]
    return origin_id


def commit_cancel(
    store: Store, current: sqlite3.Row, cancel: CancelRequest, now: datetime
) -> list[int]:
    """Cancel the appointment (and with ``apply_to_repeats`` the later live ones of its series).

    Returns:
        The ids cancelled; each got the same ``cancelled_at`` and ``updated_at``.
    """
    rows = store.series_from(current) if cancel.apply_to_repeats else [current]
    ids = [int(row["id"]) for row in rows]
    stamp = format_ts(now)
    store.update_appointments(
        ids,
        {
            "cancelled_at": stamp,
            "cancellation_reason": cancel.reason,
            "cancellation_note": cancel.note,
            "updated_at": stamp,
        },
    )
    return ids


def commit_archive(store: Store, row: sqlite3.Row, now: datetime) -> None:
    """Archive the appointment unless it already is (then nothing changes)."""
    if row["archived_at"] is None:
        stamp = format_ts(now)
        store.update_appointments([row["id"]], {"archived_at": stamp, "updated_at": stamp})


def commit_delete(store: Store, row: sqlite3.Row, now: datetime, *, hard: bool) -> None:
    """Soft-delete (``deleted_at`` and ``updated_at`` set to now) or remove the row entirely.

    A hard delete leaves nothing an ``updated_at`` poll could find: only counts change.
    """
    if hard:
        store.delete_appointment(row["id"])
    else:
        stamp = format_ts(now)
        store.update_appointments([row["id"]], {"deleted_at": stamp, "updated_at": stamp})
