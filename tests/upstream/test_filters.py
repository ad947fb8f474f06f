from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from appointments_gateway.upstream import (
    APPOINTMENT_GET,
    APPOINTMENT_LIST,
    BUSINESS_LIST,
    PATIENT_CASE_GET,
    PATIENT_CASE_LIST,
    PATIENT_LIST,
    PRACTITIONER_GET,
    PRACTITIONER_LIST,
    FieldType,
    InvalidRequest,
    format_datetime,
    validate_id,
)
from appointments_gateway.upstream.filters import (
    APPOINTMENT_TYPE_LIST,
    OPERATORS,
    format_datetime_bound,
    validate_batch_id,
)

AT = datetime(2024, 4, 2, 14, 45, 0, tzinfo=UTC)


def q(spec: Any, field: str, op: str, value: Any = None) -> str:
    return str(spec.where(field, op, value).query)


@pytest.mark.parametrize("op", ["=", "!=", ">", ">=", "<", "<="])
def test_numeric_operators(op: str) -> None:
    assert q(APPOINTMENT_LIST, "patient_id", op, "1390710863102485699") == (
        f"patient_id:{op}1390710863102485699"
    )


@pytest.mark.parametrize("op", ["?", "!?"])
def test_null_operators_take_no_value(op: str) -> None:
    assert q(APPOINTMENT_LIST, "repeated_from_id", op) == f"repeated_from_id:{op}"
    with pytest.raises(InvalidRequest):
        APPOINTMENT_LIST.where("repeated_from_id", op, "1")


def test_numeric_equals_accepts_a_list_of_ids() -> None:
    assert q(APPOINTMENT_LIST, "id", "=", ["1", "22", 333]) == "id:=1,22,333"
    assert q(APPOINTMENT_LIST, "id", "=", ("9223372036854775807",)) == "id:=9223372036854775807"


@pytest.mark.parametrize("value", [[], ["1", "x"], ["1.5"], [True], None, 1.5, "-1", " 1"])
def test_bad_numeric_values_are_rejected(value: Any) -> None:
    with pytest.raises(InvalidRequest):
        APPOINTMENT_LIST.where("id", "=", value)


def test_lists_only_with_equals() -> None:
    with pytest.raises(InvalidRequest):
        APPOINTMENT_LIST.where("id", "!=", ["1", "2"])


@pytest.mark.parametrize("op", [">", ">=", "<", "<="])
def test_datetime_operators(op: str) -> None:
    assert q(APPOINTMENT_LIST, "starts_at", op, AT) == f"starts_at:{op}2024-04-02T14:45:00Z"


@pytest.mark.parametrize("op", ["?", "!?", "*"])
def test_datetime_valueless_operators(op: str) -> None:
    assert q(APPOINTMENT_LIST, "cancelled_at", op) == f"cancelled_at:{op}"


def test_datetimes_are_converted_to_utc() -> None:
    melbourne = timezone(timedelta(hours=10))
    local = datetime(2024, 4, 3, 0, 45, 30, tzinfo=melbourne)
    assert q(APPOINTMENT_LIST, "starts_at", ">=", local) == "starts_at:>=2024-04-02T14:45:30Z"
    assert format_datetime(local.replace(microsecond=999_999)) == "2024-04-02T14:45:30Z"


# Bound t + 0.5s against whole-second data: what each operator must be sent as.
_FRACTION = timedelta(milliseconds=500)


@pytest.mark.parametrize(
    ("op", "sent"),
    [
        (">=", "2024-04-02T14:45:01Z"),  # s >= t+0.5  <=>  s >= t+1   (up)
        ("<", "2024-04-02T14:45:01Z"),  # s <  t+0.5  <=>  s <  t+1   (up)
        (">", "2024-04-02T14:45:00Z"),  # s >  t+0.5  <=>  s >  t     (down)
        ("<=", "2024-04-02T14:45:00Z"),  # s <= t+0.5  <=>  s <= t     (down)
    ],
)
def test_subsecond_bounds_are_rounded_per_operator(op: str, sent: str) -> None:
    assert q(APPOINTMENT_LIST, "starts_at", op, AT + _FRACTION) == f"starts_at:{op}{sent}"
    assert format_datetime_bound(op, AT + _FRACTION) == sent


@pytest.mark.parametrize("op", [">", ">=", "<", "<="])
def test_subsecond_rounding_matches_exact_comparison_on_whole_seconds(op: str) -> None:
    compare: Callable[[datetime, datetime], bool] = {
        ">": operator.gt,
        ">=": operator.ge,
        "<": operator.lt,
        "<=": operator.le,
    }[op]
    stored = [AT + timedelta(seconds=n) for n in range(-3, 4)]  # whole seconds around AT
    for micro in (0, 1, 500_000, 999_999):
        bound = AT + timedelta(microseconds=micro)
        sent = datetime.fromisoformat(format_datetime_bound(op, bound))
        assert [compare(s, sent) for s in stored] == [compare(s, bound) for s in stored], (
            op,
            micro,
        )


def test_subsecond_rounding_happens_in_utc_and_crosses_boundaries() -> None:
    melbourne = timezone(timedelta(hours=10))
    local = datetime(2025, 1, 1, 9, 59, 59, 1, tzinfo=melbourne)  # 2024-12-31T23:59:59Z
    assert format_datetime_bound(">=", local) == "2025-01-01T00:00:00Z"
    assert format_datetime_bound("<=", local) == "2024-12-31T23:59:59Z"


def test_datetime_bounds_need_a_comparison_and_awareness() -> None:
    with pytest.raises(InvalidRequest):
        format_datetime_bound("*", AT)
    with pytest.raises(InvalidRequest, match="timezone-aware"):
        format_datetime_bound(">=", datetime(2024, 4, 2, 14, 45, 0, 500_000))


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(InvalidRequest, match="timezone-aware"):
        APPOINTMENT_LIST.where("starts_at", ">=", datetime(2024, 4, 2, 14, 45))


@pytest.mark.parametrize("value", ["2024-04-02T14:45:00Z", date(2024, 4, 2), 1])
def test_datetime_filters_want_datetimes(value: Any) -> None:
    with pytest.raises(InvalidRequest):
        APPOINTMENT_LIST.where("starts_at", ">=", value)


@pytest.mark.parametrize("op", ["=", ">", ">=", "<", "<="])
def test_date_operators(op: str) -> None:
    assert (
        q(PATIENT_LIST, "date_of_birth", op, date(1980, 2, 29)) == f"date_of_birth:{op}1980-02-29"
    )


def test_date_wildcards_and_rejections() -> None:
    assert q(PATIENT_LIST, "date_of_birth", "=", "****-05-**") == "date_of_birth:=****-05-**"
    for bad in (AT, "May", "1980-5-1"):
        with pytest.raises(InvalidRequest):
            PATIENT_LIST.where("date_of_birth", "=", bad)
    with pytest.raises(InvalidRequest):
        PATIENT_LIST.where("date_of_birth", "*")


@pytest.mark.parametrize("op", ["=", "!=", "~", "~~"])
def test_string_operators(op: str) -> None:
    assert q(PATIENT_LIST, "last_name", op, "O'Brien %") == f"last_name:{op}O'Brien %"


@pytest.mark.parametrize("value", ["", "line\nbreak", 5])
def test_bad_string_values(value: Any) -> None:
    with pytest.raises(InvalidRequest):
        PATIENT_LIST.where("last_name", "=", value)


@pytest.mark.parametrize("op", ["=", "!="])
def test_boolean_operators(op: str) -> None:
    assert q(APPOINTMENT_LIST, "did_not_arrive", op, True) == f"did_not_arrive:{op}true"
    assert q(PRACTITIONER_LIST, "active", op, False) == f"active:{op}false"
    with pytest.raises(InvalidRequest):
        APPOINTMENT_LIST.where("did_not_arrive", op, "true")


def test_array_contains() -> None:
    assert q(BUSINESS_LIST, "appointment_type_ids", "~", "12") == "appointment_type_ids:~12"
    with pytest.raises(InvalidRequest):
        BUSINESS_LIST.where("appointment_type_ids", "=", "12")


def test_every_documented_operator_builds_for_every_type() -> None:
    samples: dict[FieldType, Any] = {
        FieldType.NUMERIC: "1",
        FieldType.DATETIME: AT,
        FieldType.DATE: date(2024, 1, 1),
        FieldType.STRING: "x",
        FieldType.BOOLEAN: True,
        FieldType.ARRAY: "1",
    }
    specs = [APPOINTMENT_LIST, PATIENT_LIST, BUSINESS_LIST, PATIENT_CASE_LIST]
    seen = set()
    for spec in specs:
        for field, kind in spec.fields.items():
            for op in OPERATORS[kind]:
                value = None if op in ("?", "!?", "*") else samples[kind]
                assert spec.where(field, op, value).query.startswith(f"{field}:{op}")
                seen.add(kind)
    assert seen == set(FieldType)


@pytest.mark.parametrize(
    ("field", "op"),
    [
        ("patient_case_id", "="),  # not a filter on /individual_appointments
        ("status", "="),
        ("starts_at", "="),  # date-times have no equality operator
        ("patient_id", "~"),
        ("did_not_arrive", ">"),
    ],
)
def test_undocumented_fields_and_operators_are_rejected(field: str, op: str) -> None:
    with pytest.raises(InvalidRequest):
        APPOINTMENT_LIST.where(field, op, "1")


def test_single_get_endpoints_have_their_own_short_whitelists() -> None:
    assert q(APPOINTMENT_GET, "cancelled_at", "*") == "cancelled_at:*"
    with pytest.raises(InvalidRequest):
        APPOINTMENT_GET.where("starts_at", ">", AT)
    with pytest.raises(InvalidRequest):
        PRACTITIONER_GET.where("archived_at", "*")


def test_individual_appointment_whitelist_matches_the_spec() -> None:
    assert dict(APPOINTMENT_LIST.fields) == {
        "id": FieldType.NUMERIC,
        "appointment_type_id": FieldType.NUMERIC,
        "business_id": FieldType.NUMERIC,
        "patient_id": FieldType.NUMERIC,
        "practitioner_id": FieldType.NUMERIC,
        "repeated_from_id": FieldType.NUMERIC,
        "archived_at": FieldType.DATETIME,
        "cancelled_at": FieldType.DATETIME,
        "created_at": FieldType.DATETIME,
        "deleted_at": FieldType.DATETIME,
        "ends_at": FieldType.DATETIME,
        "starts_at": FieldType.DATETIME,
        "updated_at": FieldType.DATETIME,
        "did_not_arrive": FieldType.BOOLEAN,
    }


def test_filter_values_are_never_echoed_in_errors_or_reprs() -> None:
    with pytest.raises(InvalidRequest) as info:
        PATIENT_LIST.where("email", "=", "jane@example.com\n")
    assert "jane" not in str(info.value)
    assert "jane" not in repr(PATIENT_LIST.where("email", "=", "jane@example.com"))


def test_sort_whitelist() -> None:
    assert APPOINTMENT_LIST.sort(["starts_at:desc", "id"]) == "starts_at:desc,id"
    assert APPOINTMENT_LIST.sort(["starts_at:desc", "id:desc"]) == "starts_at:desc,id:desc"
    assert APPOINTMENT_LIST.sort(["updated_at:asc"]) == "updated_at:asc"
    assert APPOINTMENT_LIST.sort(["id:desc"]) == "id:desc"
    for bad in (["patient_name"], ["starts_at:down"], "starts_at"):
        with pytest.raises(InvalidRequest):
            APPOINTMENT_LIST.sort(bad)
    with pytest.raises(InvalidRequest):
        BUSINESS_LIST.sort(["appointment_type_ids"])  # arrays do not sort


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (APPOINTMENT_LIST, "practitioner_id"),
        (APPOINTMENT_LIST, "did_not_arrive"),
        (PATIENT_LIST, "last_name"),
        (PATIENT_LIST, "date_of_birth"),
        (PRACTITIONER_LIST, "active"),
        (PATIENT_CASE_LIST, "issue_date"),
    ],
)
def test_filterable_fields_that_are_not_date_times_do_not_sort(spec: Any, field: str) -> None:
    assert field in spec.fields
    with pytest.raises(InvalidRequest):
        spec.sort([field])


@pytest.mark.parametrize(
    "spec",
    [
        APPOINTMENT_LIST,
        PATIENT_LIST,
        PRACTITIONER_LIST,
        BUSINESS_LIST,
        APPOINTMENT_TYPE_LIST,
        PATIENT_CASE_LIST,
    ],
)
def test_sort_fields_are_the_date_times_and_id(spec: Any) -> None:
    date_times = {f for f, t in spec.fields.items() if t is FieldType.DATETIME}
    assert spec.sort_fields == date_times | {"id"}


def test_get_endpoints_do_not_sort() -> None:
    assert APPOINTMENT_GET.sort_fields == frozenset() == PATIENT_CASE_GET.sort_fields
    with pytest.raises(InvalidRequest):
        APPOINTMENT_GET.sort(["id"])


def test_filters_are_bound_to_their_endpoint() -> None:
    patient_filter = PATIENT_LIST.where("id", "=", "1")
    assert APPOINTMENT_LIST.check([APPOINTMENT_LIST.where("id", "=", "1")]) == ["id:=1"]
    with pytest.raises(InvalidRequest):
        APPOINTMENT_LIST.check([patient_filter])


@pytest.mark.parametrize("value", ["1", "0", 7, "9223372036854775807", 9223372036854775807])
def test_validate_id_accepts_digit_strings(value: Any) -> None:
    assert validate_id(value) == str(value)
    assert validate_batch_id(value) == str(value)


MALFORMED_IDS = ["", "abc", "1/2", "../1", "١٢", "²", "007", "00", " 1", "+1", -1, True, 1.0, None]
ABOVE_INT64 = [
    "9223372036854775808",
    "9999999999999999999",
    "12345678901234567890",
    pytest.param("9" * 10_000, id="10000-digits"),  # beyond int()'s digit limit: no ValueError
    2**63,
]


@pytest.mark.parametrize("value", [*MALFORMED_IDS, *ABOVE_INT64])
def test_validate_id_rejects_everything_else(value: Any) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_id(value)
    if isinstance(value, str) and value:
        assert value not in str(info.value)


@pytest.mark.parametrize("value", ABOVE_INT64)
def test_validate_batch_id_drops_ids_above_int64(value: Any) -> None:
    assert validate_batch_id(value) is None


@pytest.mark.parametrize("value", MALFORMED_IDS)
def test_validate_batch_id_still_rejects_malformed_ids(value: Any) -> None:
    with pytest.raises(InvalidRequest):
        validate_batch_id(value)


def test_numeric_filters_refuse_ids_above_int64() -> None:
    with pytest.raises(InvalidRequest):
        APPOINTMENT_LIST.where("patient_id", "=", ["1", "9223372036854775808"])
    with pytest.raises(InvalidRequest):
        APPOINTMENT_LIST.where("id", ">", "9223372036854775808")
