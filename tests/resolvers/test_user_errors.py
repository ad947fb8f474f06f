"""Cliniko's 422 bodies as user errors: GraphQL paths, stable codes, none of their words."""

from __future__ import annotations

import pytest

from appointments_gateway.resolvers.user_errors import InputProblem, UserErrorCode, user_errors_for


@pytest.mark.parametrize(
    ("upstream", "path"),
    [
        ("practitioner_id", ("input", "practitionerId")),
        ("repeat_rule.number_of_repeats", ("input", "repeatRule", "numberOfRepeats")),
        ("repeat_rule.repeating_interval", ("input", "repeatRule", "repeatingInterval")),
        ("repeat_rule.repeat_type", ("input", "repeatRule", "repeatType")),
        ("cancellation_reason", ("input", "reason")),
        ("cancellation_note", ("input", "note")),
        ("apply_to_repeats", ("input", "applyToRepeats")),
        ("base", ("input",)),
        ("some_field_we_never_send", ("input",)),
    ],
)
def test_upstream_fields_become_graphql_input_paths(upstream, path):
    (error,) = user_errors_for({upstream: "must exist"})
    assert error.field == path
    assert error.code is UserErrorCode.NOT_FOUND


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("can't be blank", UserErrorCode.REQUIRED),
        ("must exist", UserErrorCode.NOT_FOUND),
        ("must be an integer from 1 to 51", UserErrorCode.OUT_OF_RANGE),
        ("is too long (maximum is 255 characters)", UserErrorCode.TOO_LONG),
        ("must be after starts_at", UserErrorCode.INVALID),
        ("must belong to the patient", UserErrorCode.INVALID),
        ("is not included in the list", UserErrorCode.INVALID),
        ("Jane Citizen is already booked at 9:00", UserErrorCode.INVALID),
    ],
)
def test_known_phrasings_get_their_code_and_no_upstream_text_is_passed_on(message, code):
    (error,) = user_errors_for({"starts_at": message})
    assert error.code is code
    assert error.field == ("input", "startsAt")
    assert message not in error.message
    assert "Jane" not in error.message
    assert error.message.startswith("startsAt ")


def test_one_user_error_per_field_in_a_stable_order():
    errors = user_errors_for({"starts_at": "can't be blank", "business_id": "must exist"})
    assert [e.field for e in errors] == [("input", "businessId"), ("input", "startsAt")]


def test_a_422_without_the_documented_body_still_says_something():
    assert user_errors_for({}) == (
        InputProblem(("input",), "Cliniko refused the appointment.", UserErrorCode.INVALID),
    )
