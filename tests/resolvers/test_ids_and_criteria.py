import base64
from datetime import UTC, datetime, timedelta

import pytest

from appointments_gateway.resolvers.criteria import AppointmentCriteria, OrderKey, TimeRange
from appointments_gateway.resolvers.errors import BadUserInput
from appointments_gateway.resolvers.ids import parse_global_id, parse_id, to_global_id

BIG = "9223372036854775807"
T0 = datetime(2025, 3, 10, tzinfo=UTC)


def test_global_ids_round_trip_nineteen_digit_ids_exactly():
    for raw in (BIG, "1390726237298631770", "1"):
        assert parse_global_id(to_global_id("Patient", raw)) == ("Patient", raw)
        assert parse_id(to_global_id("Patient", raw), "Patient") == raw
        assert parse_id(raw, "Patient") == raw


@pytest.mark.parametrize(
    "value",
    ["", "abc", "12a", "9223372036854775808", base64.b64encode(b"Nope:1").decode(), "-1"],
)
def test_malformed_ids_are_bad_user_input(value):
    with pytest.raises(BadUserInput) as caught:
        parse_id(value, "Appointment", argument="id")
    assert caught.value.extensions["code"] == "BAD_USER_INPUT"


def test_an_id_of_another_type_is_refused_with_both_names():
    with pytest.raises(BadUserInput, match="belongs to a Patient, not a Business"):
        parse_id(to_global_id("Patient", "5"), "Business")


def test_criteria_map_onto_q_and_sort_exactly():
    criteria = AppointmentCriteria(
        starts_at=TimeRange(gte=T0, lt=T0 + timedelta(days=7)),
        updated_at=TimeRange(gt=T0.astimezone(UTC)),
        patient_ids=("3", "1", "3"),
        repeated_from_id="9",
        did_not_arrive=False,
        cancelled="ONLY",
        archived="INCLUDE",
        order=(OrderKey("ends_at", descending=True), OrderKey("created_at")),
    )
    assert [f.query for f in criteria.filters()] == [
        "starts_at:>=2025-03-10T00:00:00Z",
        "starts_at:<2025-03-17T00:00:00Z",
        "updated_at:>2025-03-10T00:00:00Z",
        "patient_id:=1,3",
        "repeated_from_id:=9",
        "did_not_arrive:=false",
        "cancelled_at:?",
        "archived_at:*",
    ]
    assert criteria.sort() == ["ends_at:desc", "created_at:asc", "id:asc"]
    assert criteria.sort(reverse=True) == ["ends_at:asc", "created_at:desc", "id:desc"]


@pytest.mark.parametrize(
    "bounds",
    [
        TimeRange(gte=T0, lt=T0),
        TimeRange(gt=T0, lte=T0),
        TimeRange(gte=T0 + timedelta(seconds=1), lte=T0),
        TimeRange(gt=T0, gte=T0),
        TimeRange(lt=T0, lte=T0),
    ],
)
def test_empty_or_contradictory_ranges_are_refused(bounds):
    with pytest.raises(BadUserInput, match=r"filter\.startsAt"):
        AppointmentCriteria(starts_at=bounds)


def test_a_single_instant_range_is_allowed():
    assert AppointmentCriteria(starts_at=TimeRange(gte=T0, lte=T0)).filters()


def test_restricting_to_a_parent_keeps_the_callers_own_id_filter():
    criteria = AppointmentCriteria(patient_ids=("1", "2"))
    assert criteria.with_parent("patient_id", ["2", "3"]).patient_ids == ("2",)
    assert criteria.with_parent("patient_id", ["3"]).matches_nothing
    assert AppointmentCriteria().with_parent("business_id", ["7"]).business_ids == ("7",)


def test_too_many_ids_and_repeated_order_fields_are_refused():
    with pytest.raises(BadUserInput, match="at most 100"):
        AppointmentCriteria(business_ids=tuple(str(i) for i in range(101)))
    with pytest.raises(BadUserInput, match="orderBy"):
        AppointmentCriteria(order=(OrderKey("starts_at"), OrderKey("starts_at", True)))
