from datetime import UTC, datetime, timedelta, timezone

import pytest

from appointments_gateway.schema.enums import (
    CancellationReason,
    RepeatType,
    cancellation_reason_for,
    repeat_type_for,
)
from appointments_gateway.schema.scalars import parse_datetime, serialize_datetime


def test_datetimes_serialise_as_utc_with_z():
    assert serialize_datetime(datetime(2024, 4, 2, 14, 45, tzinfo=UTC)) == "2024-04-02T14:45:00Z"
    aest = timezone(timedelta(hours=10))
    assert serialize_datetime(datetime(2024, 4, 3, 0, 45, tzinfo=aest)) == "2024-04-02T14:45:00Z"


def test_datetime_input_takes_any_offset_and_refuses_a_naive_time():
    assert parse_datetime("2024-04-03T00:45:00+10:00") == datetime(2024, 4, 2, 14, 45, tzinfo=UTC)
    assert parse_datetime("2024-04-02T14:45:00Z") == datetime(2024, 4, 2, 14, 45, tzinfo=UTC)
    with pytest.raises(ValueError, match="no time zone"):
        parse_datetime("2024-04-02T14:45:00")
    with pytest.raises(ValueError, match="not ISO-8601"):
        parse_datetime("next tuesday")
    with pytest.raises(ValueError, match="must be a string"):
        parse_datetime(1712069100)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (10, CancellationReason.FEELING_BETTER),
        (31, CancellationReason.COVID_19_RELATED),
        (60, CancellationReason.WORK),
        (70, CancellationReason.UNKNOWN),
        (0, CancellationReason.UNKNOWN),
        (None, None),
    ],
)
def test_cancellation_codes_never_fail_a_query(code, reason):
    assert cancellation_reason_for(code) is reason


def test_repeat_types_are_read_case_insensitively_and_unknown_ones_are_null():
    assert repeat_type_for("Weekly") is RepeatType.WEEKLY
    assert repeat_type_for("daily") is RepeatType.DAILY
    assert repeat_type_for("Fortnightly") is None
    assert repeat_type_for(None) is None
