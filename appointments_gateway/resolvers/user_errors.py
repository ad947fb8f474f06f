"""User errors: problems with a mutation's input, at a GraphQL input path, with a code.

This layer calls one an ``InputProblem``; the schema shows it as the GraphQL type
``UserError`` (``schema/mutations.py``), so an import says which of the two it is.
Both kinds of input problem end up here: what the gateway refuses before any upstream
call (``write_input.py``) and what Cliniko refuses with a 422. Cliniko's 422 messages
are never passed on: they are part of an upstream body, which may quote a record.
Known phrasings ("can't be blank", "must exist", ...) become our own message and
code; anything else becomes a generic ``INVALID`` for that field. Upstream field names
become input paths: ``repeat_rule.number_of_repeats`` is
``["input", "repeatRule", "numberOfRepeats"]``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["INPUT", "InputProblem", "UserErrorCode", "camel", "label", "user_errors_for"]

INPUT = "input"
"""The argument every mutation takes, so the first part of every path."""


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
    IDEMPOTENCY_KEY_UNAVAILABLE = "IDEMPOTENCY_KEY_UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class InputProblem:
    """A problem with the caller's input: where (a GraphQL path), what, and a code."""

    field: tuple[str, ...] | None
    message: str
    code: UserErrorCode


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


def camel(name: str) -> str:
    """``number_of_repeats`` → ``numberOfRepeats``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _path(upstream_field: str) -> tuple[str, ...]:
    """The GraphQL input path of an upstream field name (dotted for nested ones)."""
    if upstream_field not in _KNOWN_FIELDS:
        return (INPUT,)
    parts = _RENAMED.get(upstream_field, upstream_field).split(".")
    return (INPUT, *(camel(part) for part in parts))


def label(path: tuple[str, ...]) -> str:
    """How a message names the field at ``path``: ``repeatRule.numberOfRepeats``."""
    return ".".join(path[1:]) or "The input"


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


def user_errors_for(field_errors: Mapping[str, str]) -> tuple[InputProblem, ...]:
    """User errors for a 422's ``{upstream field: message}``, in our words, never theirs."""
    errors: list[InputProblem] = []
    for upstream_field, upstream_message in sorted(field_errors.items()):
        path = _path(upstream_field)
        code, text = UserErrorCode.INVALID, "was refused by Cliniko."
        for pattern, phrase_code, phrase_text in _UPSTREAM_PHRASES:
            if pattern.search(upstream_message):
                code, text = phrase_code, phrase_text
                break
        errors.append(InputProblem(path, f"{label(path)} {text}", code))
    if not errors:  # a 422 without the documented body
        errors.append(
            InputProblem((INPUT,), "Cliniko refused the appointment.", UserErrorCode.INVALID)
        )
    return tuple(errors)
