"""Record fidelity: what the client parses equals the JSON the sandbox serves, field by field."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

import pytest

from appointments_gateway.upstream import APPOINTMENT_GET, APPOINTMENT_LIST, AppointmentRecord

from .conftest import (
    APPOINTMENT_FIELDS_CHECKED,
    LIVE,
    assert_appointment_matches,
    link_id,
    one,
    rows,
    scalar,
    ts,
)

ID_DIGITS = 19

# One example of every kind of appointment the seed holds, with the q[] a GET needs to see it.
SAMPLES = {
    "plain": (f"{LIVE} AND repeat_type IS NULL AND patient_case_id IS NULL", ()),
    "with_case": (f"{LIVE} AND patient_case_id IS NOT NULL", ()),
    "online_booking": (f"{LIVE} AND booking_ip_address IS NOT NULL", ()),
    "arrived_invoiced": (f"{LIVE} AND patient_arrived = 1 AND invoice_status IS NOT NULL", ()),
    "did_not_arrive": (f"{LIVE} AND did_not_arrive = 1", ()),
    "series_origin": (f"{LIVE} AND repeat_type IS NOT NULL AND repeated_from_id IS NULL", ()),
    "series_child": (f"{LIVE} AND repeated_from_id IS NOT NULL", ()),
    "cancelled": ("cancelled_at IS NOT NULL AND cancellation_reason = 50", ("cancelled_at",)),
    "cancelled_legacy_31": ("cancellation_reason = 31", ("cancelled_at",)),
    "archived": ("archived_at IS NOT NULL AND cancelled_at IS NULL", ("archived_at",)),
    "deleted": ("deleted_at IS NOT NULL", ("deleted_at",)),
}


def test_the_comparison_covers_every_appointment_field():
    assert {f.name for f in dataclasses.fields(AppointmentRecord)} == APPOINTMENT_FIELDS_CHECKED


@pytest.mark.parametrize("kind", sorted(SAMPLES))
async def test_appointment_record_equals_the_raw_json(app, session, raw_get, kind):
    where, star = SAMPLES[kind]
    row = one(app, f"SELECT * FROM appointments WHERE account='a' AND {where} ORDER BY id")
    id_ = str(row["id"])
    assert len(id_) == ID_DIGITS
    assert int(id_) > 2**53

    record = await session.appointments.get(
        id_, filters=[APPOINTMENT_GET.where(column, "*") for column in star]
    )
    payload = await raw_get(
        f"individual_appointments/{id_}", *(("q[]", f"{column}:*") for column in star)
    )
    assert_appointment_matches(record, payload)
    # ...and the related ids are exactly the store's foreign keys, as 19-digit strings.
    for name in ("patient_id", "practitioner_id", "business_id", "appointment_type_id"):
        assert getattr(record, name) == str(row[name])
        assert len(getattr(record, name)) == ID_DIGITS
    assert record.patient_case_id == (
        None if row["patient_case_id"] is None else str(row["patient_case_id"])
    )
    assert record.repeated_from_id == (
        None if row["repeated_from_id"] is None else str(row["repeated_from_id"])
    )


async def test_a_page_of_records_equals_the_raw_page(session, raw_get):
    star = [APPOINTMENT_LIST.where(c, "*") for c in ("cancelled_at", "archived_at", "deleted_at")]
    page = await session.appointments.list(
        page=3, per_page=100, filters=star, sort=["updated_at:desc"]
    )
    payload = await raw_get(
        "individual_appointments",
        ("page", "3"),
        ("per_page", "100"),
        *(("q[]", f"{c}:*") for c in ("cancelled_at", "archived_at", "deleted_at")),
        ("sort", "updated_at:desc"),
    )
    assert page.total_entries == payload["total_entries"]
    assert page.has_next is ("next" in payload["links"])
    assert len(page.items) == len(payload["individual_appointments"]) == 100
    for record, item in zip(page.items, payload["individual_appointments"], strict=True):
        assert_appointment_matches(record, item)


async def test_every_stored_appointment_parses_with_its_ids_unchanged(app, sandbox, session):
    star = [APPOINTMENT_LIST.where(c, "*") for c in ("cancelled_at", "archived_at", "deleted_at")]
    seen: list[str] = []
    page_number = 1
    while True:
        page = await session.appointments.list(page=page_number, per_page=100, filters=star)
        seen.extend(r.id for r in page.items)
        if not page.has_next:
            break
        page_number += 1
    stored = [str(r["id"]) for r in rows(app, "SELECT id FROM appointments WHERE account='a'")]
    assert sorted(seen) == sorted(stored)
    assert len(seen) == sandbox.count_appointments("a")
    assert all(len(i) == ID_DIGITS and i.isdigit() for i in seen)


async def test_a_series_keeps_its_rule_and_links(app, session):
    origin_row = one(
        app,
        "SELECT * FROM appointments WHERE account='a' AND repeat_type = 'Weekly' "
        f"AND repeating_interval = 2 AND repeated_from_id IS NULL AND {LIVE}",
    )
    origin = await session.appointments.get(str(origin_row["id"]))
    assert origin.has_repeats is True
    assert origin.repeated_from_id is None
    assert origin.repeat_rule is not None
    assert (
        origin.repeat_rule.repeat_type,
        origin.repeat_rule.repeating_interval,
        origin.repeat_rule.number_of_repeats,
    ) == ("Weekly", 2, origin_row["number_of_repeats"])
    children = await session.appointments.list(
        filters=[APPOINTMENT_LIST.where("repeated_from_id", "=", origin.id)],
        sort=["starts_at"],
    )
    assert children.items
    for child in children.items:
        assert child.repeated_from_id == origin.id
        assert child.has_repeats is False
        assert child.repeat_rule == origin.repeat_rule
        assert (child.starts_at - origin.starts_at).days % 14 == 0


async def test_every_cancellation_code_survives_including_legacy_31(app, session):
    expected = {
        row["cancellation_reason"]: str(row["id"])
        for row in rows(
            app,
            "SELECT cancellation_reason, MIN(id) AS id FROM appointments WHERE account='a' "
            "AND cancelled_at IS NOT NULL AND archived_at IS NULL AND deleted_at IS NULL "
            "GROUP BY cancellation_reason",
        )
    }
    assert set(expected) == {10, 20, 30, 31, 40, 50, 60}
    found = await session.appointments.by_ids(expected.values(), include_cancelled=True)
    descriptions = {
        10: "Feeling Better",
        20: "Condition Worse",
        30: "Sick",
        31: "COVID-19 related",
        40: "Away",
        50: "Other",
        60: "Work",
    }
    for code, id_ in expected.items():
        assert found[id_].cancellation_reason == code
        assert found[id_].cancellation_reason_description == descriptions[code]
        assert found[id_].cancelled_at is not None


def _assert_related_matches(record: Any, payload: dict[str, Any], links: dict[str, str]) -> None:
    """Every record field equals the payload key of the same name, or the link it comes from."""
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if field.name in links:
            assert value == link_id(payload, links[field.name]), field.name
        elif isinstance(value, datetime):
            assert ts(value) == payload[field.name], field.name
        elif isinstance(value, date):
            assert value.isoformat() == payload[field.name], field.name
        elif isinstance(value, tuple):
            assert list(value) == payload[field.name], field.name
        else:
            assert value == payload[field.name], field.name


RELATED_LINKS = {
    "patients": {},
    "practitioners": {"user_id": "user"},
    "businesses": {},
    "appointment_types": {},
    "patient_cases": {"patient_id": "patient"},
}


@pytest.mark.parametrize("name", sorted(RELATED_LINKS))
async def test_related_records_equal_the_raw_json(app, session, raw_get, name):
    page = await getattr(session, name).list(per_page=20)
    payload = await raw_get(name, ("page", "1"), ("per_page", "20"))
    assert [r.id for r in page.items] == [p["id"] for p in payload[name]]
    for record, item in zip(page.items, payload[name], strict=True):
        _assert_related_matches(record, item, RELATED_LINKS[name])
    total = scalar(app, f"SELECT COUNT(*) FROM {name} WHERE account='a'")
    assert page.total_entries <= total
