"""Writes through the real client against the real sandbox: create, update, cancel, archive."""

from __future__ import annotations

from datetime import timedelta

import pytest

from appointments_gateway.upstream import (
    APPOINTMENT_LIST,
    InvalidRequest,
    RepeatRuleRecord,
    UpstreamNotFound,
    UpstreamValidationError,
)

from .conftest import ANCHOR, LIVE, assert_appointment_matches, one, scalar, ts

# A year out: past every seeded appointment and series, so nothing clashes by accident.
FREE_SLOT = ANCHOR + timedelta(weeks=52, hours=1)
UNKNOWN_ID = "1999999999999999999"


@pytest.fixture
def refs(app):
    """Ids a booking needs, taken from a live seeded appointment (so they all exist in A)."""
    row = one(app, f"SELECT * FROM appointments WHERE account='a' AND {LIVE} ORDER BY id")
    return {
        "patient_id": str(row["patient_id"]),
        "practitioner_id": str(row["practitioner_id"]),
        "business_id": str(row["business_id"]),
        "appointment_type_id": str(row["appointment_type_id"]),
    }


def duration_of(app, type_id: str) -> int:
    minutes: int = scalar(
        app, "SELECT duration_in_minutes FROM appointment_types WHERE id = ?", int(type_id)
    )
    return minutes


async def test_create_without_ends_at_derives_it_from_the_type(
    app, sandbox, session, refs, raw_get
):
    before = sandbox.count_appointments("a")
    record = await session.appointments.create({**refs, "starts_at": FREE_SLOT, "notes": "Hi"})

    kind = await session.appointment_types.get(refs["appointment_type_id"])
    assert kind.duration_in_minutes == duration_of(app, refs["appointment_type_id"])
    assert record.ends_at - record.starts_at == timedelta(minutes=kind.duration_in_minutes)
    assert record.starts_at == FREE_SLOT
    assert (record.patient_id, record.practitioner_id) == (
        refs["patient_id"],
        refs["practitioner_id"],
    )
    assert (record.business_id, record.appointment_type_id) == (
        refs["business_id"],
        refs["appointment_type_id"],
    )
    assert record.notes == "Hi"
    assert record.repeat_rule is None
    assert record.has_repeats is False
    assert record.cancellation_reason_description is None
    assert len(record.id) == 19
    assert record.id.isdigit()

    assert sandbox.count_appointments("a") == before + 1
    stored = one(app, "SELECT * FROM appointments WHERE id = ?", int(record.id))
    assert str(stored["id"]) == record.id
    assert stored["account"] == "a"
    assert_appointment_matches(record, await raw_get(f"individual_appointments/{record.id}"))
    assert await session.appointments.get(record.id) == record


async def test_create_with_ends_at_keeps_it(session, refs):
    ends = FREE_SLOT + timedelta(minutes=17)
    record = await session.appointments.create({**refs, "starts_at": FREE_SLOT, "ends_at": ends})
    assert (record.starts_at, record.ends_at) == (FREE_SLOT, ends)


async def test_create_with_a_repeat_rule_books_the_repeats(app, session, refs):
    rule = RepeatRuleRecord("Weekly", 3, 2)  # 3 more, every 2 weeks
    origin = await session.appointments.create(
        {**refs, "starts_at": FREE_SLOT, "repeat_rule": rule}
    )
    assert origin.repeat_rule == rule
    assert origin.has_repeats is True
    repeats = await session.appointments.list(
        filters=[APPOINTMENT_LIST.where("repeated_from_id", "=", origin.id)], sort=["starts_at"]
    )
    assert repeats.total_entries == 3
    assert [r.starts_at for r in repeats.items] == [
        FREE_SLOT + timedelta(weeks=2 * k) for k in (1, 2, 3)
    ]
    for child in repeats.items:
        assert child.repeated_from_id == origin.id
        assert child.has_repeats is False
        assert child.ends_at - child.starts_at == origin.ends_at - origin.starts_at
        assert child.patient_id == origin.patient_id
    assert (
        scalar(app, "SELECT COUNT(*) FROM appointments WHERE repeated_from_id = ?", int(origin.id))
        == 3
    )


async def test_update_changes_only_the_sent_keys(app, session, refs):
    created = await session.appointments.create({**refs, "starts_at": FREE_SLOT, "notes": "before"})
    updated = await session.appointments.update(created.id, {"notes": "after"})
    assert updated.notes == "after"
    unchanged = {
        f: getattr(created, f) for f in created.__slots__ if f not in ("notes", "updated_at")
    }
    assert {f: getattr(updated, f) for f in unchanged} == unchanged
    assert updated.updated_at >= created.updated_at

    moved = await session.appointments.update(
        created.id, {"starts_at": FREE_SLOT + timedelta(hours=2)}
    )
    assert moved.starts_at == FREE_SLOT + timedelta(hours=2)
    assert moved.ends_at - moved.starts_at == created.ends_at - created.starts_at  # length kept
    assert moved.notes == "after"

    stretched = await session.appointments.update(
        created.id, {"ends_at": moved.starts_at + timedelta(minutes=5)}
    )
    assert stretched.ends_at - stretched.starts_at == timedelta(minutes=5)
    recomputed = await session.appointments.update(created.id, {"ends_at": None})
    assert recomputed.ends_at - recomputed.starts_at == timedelta(
        minutes=duration_of(app, refs["appointment_type_id"])
    )


async def test_cancel_then_read_back_with_include_cancelled(app, session, refs):
    created = await session.appointments.create({**refs, "starts_at": FREE_SLOT})
    assert await session.appointments.cancel(created.id, reason=40, note="On holiday") is None
    with pytest.raises(UpstreamNotFound):
        await session.appointments.get(created.id)
    cancelled = await session.appointments.get(created.id, include_cancelled=True)
    assert cancelled.cancellation_reason == 40
    assert cancelled.cancellation_reason_description == "Away"
    assert cancelled.cancellation_note == "On holiday"
    assert cancelled.cancelled_at is not None
    row = one(app, "SELECT * FROM appointments WHERE id = ?", int(created.id))
    assert ts(cancelled.cancelled_at) == row["cancelled_at"]


async def test_cancel_with_apply_to_repeats_cancels_it_and_the_later_ones(session, refs):
    origin = await session.appointments.create(
        {**refs, "starts_at": FREE_SLOT, "repeat_rule": RepeatRuleRecord("Daily", 3, 1)}
    )
    series = APPOINTMENT_LIST.where("repeated_from_id", "=", origin.id)
    first, *later = (await session.appointments.list(filters=[series], sort=["starts_at"])).items
    assert len(later) == 2

    await session.appointments.cancel(first.id, reason=60, apply_to_repeats=True)

    assert (await session.appointments.get(origin.id)).cancelled_at is None  # earlier: untouched
    assert (await session.appointments.list(filters=[series])).total_entries == 0
    cancelled = await session.appointments.by_ids(
        [first.id, *(r.id for r in later)], include_cancelled=True
    )
    assert {r.cancellation_reason for r in cancelled.values()} == {60}
    assert len(cancelled) == 3

    # Without apply_to_repeats only the one appointment is cancelled.
    other = await session.appointments.create(
        {
            **refs,
            "starts_at": FREE_SLOT + timedelta(weeks=4),
            "repeat_rule": RepeatRuleRecord("Daily", 2, 1),
        }
    )
    await session.appointments.cancel(other.id, reason=10)
    remaining = await session.appointments.list(
        filters=[APPOINTMENT_LIST.where("repeated_from_id", "=", other.id)]
    )
    assert remaining.total_entries == 2


async def test_archive_hides_the_appointment(sandbox, session, refs):
    created = await session.appointments.create({**refs, "starts_at": FREE_SLOT})
    assert await session.appointments.archive(created.id) is None
    with pytest.raises(UpstreamNotFound):
        await session.appointments.get(created.id)
    archived = await session.appointments.get(created.id, include_archived=True)
    assert archived.archived_at is not None
    assert archived.cancelled_at is None
    assert sandbox.stats.by_route["POST /v1/individual_appointments/{id}/archive"] == 1
    assert not any(route.startswith("DELETE") for route in sandbox.stats.by_route)


async def test_has_conflicts_only_for_an_overlapping_booking(session, refs):
    alone = await session.appointments.create({**refs, "starts_at": FREE_SLOT})
    assert await session.appointments.has_conflicts(alone.id) is False

    clash = await session.appointments.create(
        {**refs, "starts_at": FREE_SLOT + timedelta(minutes=10)}
    )
    assert await session.appointments.has_conflicts(clash.id) is True
    assert await session.appointments.has_conflicts(alone.id) is True

    await session.appointments.cancel(clash.id, reason=50)
    assert await session.appointments.has_conflicts(alone.id) is False


async def test_seeded_double_booking_has_conflicts(app, session):
    row = one(
        app,
        f"SELECT id FROM appointments WHERE account='a' AND {LIVE} AND notes LIKE 'Double-booked%'",
    )
    assert await session.appointments.has_conflicts(str(row["id"])) is True


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"practitioner_id": UNKNOWN_ID}, "practitioner_id", "must exist"),
        ({"ends_at": FREE_SLOT - timedelta(minutes=1)}, "ends_at", "must be after starts_at"),
        (
            {"repeat_rule": RepeatRuleRecord("Weekly", 52, 1)},
            "repeat_rule.number_of_repeats",
            "must be an integer from 1 to 51",
        ),
    ],
)
async def test_create_validation_error_names_the_field(
    sandbox, session, refs, change, field, message
):
    before = sandbox.count_appointments()
    with pytest.raises(UpstreamValidationError) as caught:
        await session.appointments.create({**refs, "starts_at": FREE_SLOT, **change})
    error = caught.value
    assert error.status_code == 422
    assert dict(error.field_errors) == {field: message}
    assert (error.method, error.route) == ("POST", "/individual_appointments")
    assert sandbox.count_appointments() == before
    assert session.stats.requests == 1
    assert session.stats.retries == 0


async def test_update_validation_error_names_the_field(session, refs):
    created = await session.appointments.create({**refs, "starts_at": FREE_SLOT})
    with pytest.raises(UpstreamValidationError) as caught:
        await session.appointments.update(created.id, {"ends_at": FREE_SLOT - timedelta(hours=1)})
    assert dict(caught.value.field_errors) == {"ends_at": "must be after starts_at"}
    assert caught.value.route == "/individual_appointments/{id}"
    assert await session.appointments.get(created.id) == created


async def test_legacy_reason_31_is_refused_before_any_request(sandbox, session, refs):
    created = await session.appointments.create({**refs, "starts_at": FREE_SLOT})
    requests, total = session.stats.requests, sandbox.stats.total
    with pytest.raises(InvalidRequest):
        await session.appointments.cancel(created.id, reason=31)
    assert (session.stats.requests, sandbox.stats.total) == (requests, total)
    assert (await session.appointments.get(created.id)).cancelled_at is None
