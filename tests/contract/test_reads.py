"""Reads through the real client against the real sandbox: pages, filters, hidden rows, batches."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from appointments_gateway.upstream import (
    APPOINTMENT_GET,
    APPOINTMENT_LIST,
    APPOINTMENT_TYPE_LIST,
    BUSINESS_LIST,
    PATIENT_CASE_LIST,
    PATIENT_LIST,
    PRACTITIONER_LIST,
    InvalidRequest,
    UpstreamNotFound,
)

from .conftest import ANCHOR, LIVE, one, rows, scalar, ts


async def test_list_pages_agree_with_the_sandbox_count(app, sandbox, session):
    live = sandbox.count_appointments("a", live_only=True)
    assert live == scalar(app, f"SELECT COUNT(*) FROM appointments WHERE account='a' AND {LIVE}")
    last = math.ceil(live / 100)
    assert last >= 3

    first = await session.appointments.list(per_page=100)
    assert (first.page, first.per_page, first.total_entries) == (1, 100, live)
    assert len(first.items) == 100
    assert first.has_next is True

    second = await session.appointments.list(page=2, per_page=100)
    assert second.total_entries == live
    assert second.has_next is True
    assert not {r.id for r in first.items} & {r.id for r in second.items}
    # Default order is created_at ascending (then id), across the page boundary too.
    keys = [(r.created_at, int(r.id)) for r in (*first.items, *second.items)]
    assert keys == sorted(keys)

    final = await session.appointments.list(page=last, per_page=100)
    assert len(final.items) == live - 100 * (last - 1)
    assert final.has_next is False

    beyond = await session.appointments.list(page=last + 1, per_page=100)
    assert beyond.items == ()
    assert beyond.has_next is False
    assert beyond.total_entries == live

    default = await session.appointments.list()
    assert (default.per_page, len(default.items)) == (50, 50)
    assert session.stats.requests == 5 == sandbox.stats.total


async def test_numeric_comma_list_filter(app, session):
    practitioners = [
        str(r["id"])
        for r in rows(
            app, "SELECT id FROM practitioners WHERE account='a' AND active=1 ORDER BY id LIMIT 3"
        )
    ]
    expected = scalar(
        app,
        f"SELECT COUNT(*) FROM appointments WHERE account='a' AND {LIVE} "
        "AND practitioner_id IN (?, ?, ?)",
        *map(int, practitioners),
    )
    page = await session.appointments.list(
        per_page=100, filters=[APPOINTMENT_LIST.where("practitioner_id", "=", practitioners)]
    )
    assert page.total_entries == expected > 0
    assert {r.practitioner_id for r in page.items} <= set(practitioners)
    assert len({r.practitioner_id for r in page.items}) > 1


async def test_datetime_range_filter(app, session):
    start, end = ANCHOR, ANCHOR + timedelta(days=7)
    expected = scalar(
        app,
        f"SELECT COUNT(*) FROM appointments WHERE account='a' AND {LIVE} "
        "AND starts_at >= ? AND starts_at < ?",
        ts(start),
        ts(end),
    )
    page = await session.appointments.list(
        per_page=100,
        filters=[
            APPOINTMENT_LIST.where("starts_at", ">=", start),
            APPOINTMENT_LIST.where("starts_at", "<", end),
        ],
    )
    assert page.total_entries == expected > 0
    assert all(start <= r.starts_at < end for r in page.items)


async def test_did_not_arrive_filter(app, session):
    expected = scalar(
        app, f"SELECT COUNT(*) FROM appointments WHERE account='a' AND {LIVE} AND did_not_arrive=1"
    )
    page = await session.appointments.list(
        per_page=100, filters=[APPOINTMENT_LIST.where("did_not_arrive", "=", True)]
    )
    assert page.total_entries == expected > 0
    assert all(r.did_not_arrive is True for r in page.items)


async def test_repeated_from_id_filter_lists_a_series(app, session):
    origin = one(
        app,
        "SELECT * FROM appointments WHERE account='a' AND repeat_type IS NOT NULL "
        f"AND repeated_from_id IS NULL AND {LIVE} ORDER BY id LIMIT 1",
    )
    children = rows(
        app,
        f"SELECT id FROM appointments WHERE repeated_from_id=? AND {LIVE} ORDER BY id",
        origin["id"],
    )
    page = await session.appointments.list(
        filters=[APPOINTMENT_LIST.where("repeated_from_id", "=", str(origin["id"]))],
        sort=["starts_at"],
    )
    assert [r.id for r in page.items] == [str(c["id"]) for c in children]
    assert len(children) == origin["number_of_repeats"]
    assert all(r.repeated_from_id == str(origin["id"]) and not r.has_repeats for r in page.items)


async def test_sort_desc(app, session):
    latest = scalar(app, f"SELECT MAX(starts_at) FROM appointments WHERE account='a' AND {LIVE}")
    page = await session.appointments.list(per_page=100, sort=["starts_at:desc"])
    starts = [r.starts_at for r in page.items]
    assert starts == sorted(starts, reverse=True)
    assert ts(starts[0]) == latest


async def test_get_by_id(app, session, raw_get):
    row = one(app, f"SELECT id FROM appointments WHERE account='a' AND {LIVE} ORDER BY id LIMIT 1")
    record = await session.appointments.get(str(row["id"]))
    assert record.id == str(row["id"])
    assert record == await session.appointments.get(record.id)  # stable
    payload = await raw_get(f"individual_appointments/{record.id}")
    assert payload["id"] == record.id


@pytest.mark.parametrize(
    ("column", "flag"),
    [("cancelled_at", "include_cancelled"), ("archived_at", "include_archived")],
)
async def test_hidden_appointment_needs_its_include_flag(app, session, column, flag):
    row = one(
        app,
        f"SELECT * FROM appointments WHERE account='a' AND {column} IS NOT NULL "
        "AND deleted_at IS NULL AND (cancelled_at IS NULL OR archived_at IS NULL) LIMIT 1",
    )
    id_ = str(row["id"])
    with pytest.raises(UpstreamNotFound) as caught:
        await session.appointments.get(id_)
    assert caught.value.status_code == 404
    assert caught.value.route == "/individual_appointments/{id}"

    record = await session.appointments.get(id_, **{flag: True})
    assert record.id == id_
    assert ts(getattr(record, column)) == row[column]

    assert await session.appointments.by_ids([id_]) == {}
    assert list(await session.appointments.by_ids([id_], **{flag: True})) == [id_]
    hidden = await session.appointments.list(
        per_page=100, filters=[APPOINTMENT_LIST.where(column, "?")]
    )
    expected = scalar(
        app,
        f"SELECT COUNT(*) FROM appointments WHERE account='a' AND {column} IS NOT NULL "
        + " ".join(
            f"AND {c} IS NULL" for c in ("cancelled_at", "archived_at", "deleted_at") if c != column
        ),
    )
    assert hidden.total_entries == expected > 0


async def test_deleted_appointment_through_an_explicit_get_filter(app, session):
    row = one(app, "SELECT * FROM appointments WHERE account='a' AND deleted_at IS NOT NULL")
    with pytest.raises(UpstreamNotFound):
        await session.appointments.get(str(row["id"]))
    record = await session.appointments.get(
        str(row["id"]), filters=[APPOINTMENT_GET.where("deleted_at", "*")]
    )
    assert ts(record.deleted_at) == row["deleted_at"]


RELATED = {
    # resource: (table, SQL that the default list shows)
    "patients": ("patients", "archived_at IS NULL"),
    "practitioners": ("practitioners", "active = 1"),
    "businesses": ("businesses", "archived_at IS NULL AND deleted_at IS NULL"),
    "appointment_types": ("appointment_types", "archived_at IS NULL"),
    "patient_cases": ("patient_cases", "archived_at IS NULL"),
}


@pytest.mark.parametrize("name", sorted(RELATED))
async def test_related_resource_list_get_and_by_ids(app, session, raw_get, name):
    table, visible = RELATED[name]
    resource = getattr(session, name)
    expected = [
        str(r["id"])
        for r in rows(
            app, f"SELECT id FROM {table} WHERE account='a' AND {visible} ORDER BY created_at, id"
        )
    ]
    page = await resource.list(per_page=100)
    assert page.total_entries == len(expected)
    assert [r.id for r in page.items] == expected[:100]
    assert page.has_next is (len(expected) > 100)

    record = await resource.get(expected[-1])
    assert record.id == expected[-1]
    payload = await raw_get(f"{name}/{record.id}")
    assert record.created_at is not None
    assert ts(record.created_at) == payload["created_at"]

    wanted = [*expected[:3], "1999999999999999999"]
    assert sorted(await resource.by_ids(wanted)) == sorted(expected[:3])


async def test_archived_patient_needs_include_archived(app, session):
    row = one(app, "SELECT * FROM patients WHERE account='a' AND archived_at IS NOT NULL")
    with pytest.raises(UpstreamNotFound):
        await session.patients.get(str(row["id"]))
    record = await session.patients.get(str(row["id"]), include_archived=True)
    assert ts(record.archived_at) == row["archived_at"]
    assert await session.patients.by_ids([str(row["id"])]) == {}
    found = await session.patients.by_ids([str(row["id"])], include_archived=True)
    assert list(found) == [str(row["id"])]


async def test_inactive_practitioner_list_get_and_by_ids(app, sandbox, session):
    inactive = [
        str(r["id"])
        for r in rows(app, "SELECT id FROM practitioners WHERE account='a' AND active=0")
    ]
    active = str(scalar(app, "SELECT id FROM practitioners WHERE account='a' AND active=1"))
    assert inactive

    page = await session.practitioners.list(inactive=True)
    assert sorted(r.id for r in page.items) == sorted(inactive)
    assert all(r.active is False for r in page.items)
    record = await session.practitioners.get(inactive[0])
    assert record.active is False

    before = session.stats.requests
    found = await session.practitioners.by_ids([active, inactive[0], active])
    assert sorted(found) == sorted([active, inactive[0]])
    assert found[inactive[0]].active is False
    assert found[active].active is True
    # One request to /practitioners, one to /practitioners/inactive for the id still missing.
    assert session.stats.requests - before == 2
    assert sandbox.stats.by_route["GET /v1/practitioners/inactive"] == 2

    before = session.stats.requests
    assert list(await session.practitioners.by_ids([active])) == [active]
    assert session.stats.requests - before == 1  # nothing missing: no inactive lookup


async def test_by_ids_with_250_ids_returns_exactly_the_known_ones(app, sandbox, session):
    live = [
        str(r["id"])
        for r in rows(app, f"SELECT id FROM appointments WHERE account='a' AND {LIVE} LIMIT 170")
    ]
    cancelled = str(
        scalar(app, "SELECT id FROM appointments WHERE account='a' AND cancelled_at IS NOT NULL")
    )
    other_account = str(scalar(app, "SELECT id FROM appointments WHERE account='b'"))
    unknown = [str(1_999_999_999_999_999_000 + n) for n in range(38)]
    ids = [*live, cancelled, other_account, *unknown, *live[:40]]  # 40 duplicates
    assert len(ids) == 250
    unique = len(set(ids))
    assert unique == 210

    before_client, before_sandbox = session.stats.requests, sandbox.stats.total
    found = await session.appointments.by_ids(ids)
    assert sorted(found) == sorted(live)
    assert all(found[i].id == i for i in live)
    spent = session.stats.requests - before_client
    assert spent == math.ceil(unique / 100) == 3
    assert sandbox.stats.total - before_sandbox == spent
    assert sandbox.stats.by_route == {"GET /v1/individual_appointments": 3}

    with_cancelled = await session.appointments.by_ids(ids, include_cancelled=True)
    assert sorted(with_cancelled) == sorted([*live, cancelled])
    assert with_cancelled[cancelled].cancelled_at is not None


async def test_filters_and_sorts_the_client_refuses_never_reach_the_sandbox(sandbox, session):
    with pytest.raises(InvalidRequest):
        APPOINTMENT_LIST.where("patient_case_id", "=", "1")  # undocumented on this endpoint
    with pytest.raises(InvalidRequest):
        await session.appointments.list(filters=[PATIENT_LIST.where("first_name", "=", "Zoë")])
    with pytest.raises(InvalidRequest):
        await session.appointments.list(per_page=101)
    assert session.stats.requests == 0 == sandbox.stats.total


async def test_subsecond_lower_bound_excludes_a_row_starting_just_before_it(app, session):
    row = one(app, f"SELECT * FROM appointments WHERE account='a' AND {LIVE} ORDER BY id LIMIT 1")
    start = datetime.fromisoformat(row["starts_at"])
    page = await session.appointments.list(
        filters=[
            APPOINTMENT_LIST.where("id", "=", str(row["id"])),
            APPOINTMENT_LIST.where("starts_at", ">=", start + timedelta(milliseconds=500)),
        ]
    )
    assert page.items == ()


async def test_subsecond_bounds_keep_their_meaning_for_every_operator(app, session):
    row = one(app, f"SELECT * FROM appointments WHERE account='a' AND {LIVE} ORDER BY id LIMIT 1")
    start = datetime.fromisoformat(row["starts_at"])
    half = timedelta(milliseconds=500)
    # (operator, bound, does the row at `start` match?) - the answer on exact instants.
    cases = [
        (">=", start - half, True),
        (">=", start + half, False),
        (">", start - half, True),
        (">", start + half, False),
        ("<", start + half, True),
        ("<", start - half, False),
        ("<=", start + half, True),
        ("<=", start - half, False),
    ]
    for operator, bound, matches in cases:
        page = await session.appointments.list(
            filters=[
                APPOINTMENT_LIST.where("id", "=", str(row["id"])),
                APPOINTMENT_LIST.where("starts_at", operator, bound),
            ]
        )
        assert [r.id for r in page.items] == ([str(row["id"])] if matches else []), operator


LIST_RESOURCES = [
    ("appointments", APPOINTMENT_LIST),
    ("patients", PATIENT_LIST),
    ("practitioners", PRACTITIONER_LIST),
    ("businesses", BUSINESS_LIST),
    ("appointment_types", APPOINTMENT_TYPE_LIST),
    ("patient_cases", PATIENT_CASE_LIST),
]


@pytest.mark.parametrize(("attribute", "spec"), LIST_RESOURCES, ids=[a for a, _ in LIST_RESOURCES])
async def test_every_sort_key_the_client_accepts_is_accepted_by_the_sandbox(
    sandbox, session, attribute, spec
):
    resource = getattr(session, attribute)
    assert "id" in spec.sort_fields
    for key in sorted(spec.sort_fields):
        for direction in ("asc", "desc"):
            # The gateway always appends id as the final tie-breaker.
            tie = "id:asc" if key == "id" else f"id:{direction}"
            await resource.list(per_page=1, sort=[f"{key}:{direction}", tie])
    assert sandbox.stats.total == 2 * len(spec.sort_fields)


async def test_sort_with_id_tie_breaker_orders_pages_like_the_sandbox_store(app, session):
    expected = [
        str(r["id"])
        for r in rows(
            app,
            f"SELECT id FROM appointments WHERE account='a' AND {LIVE} "
            "ORDER BY starts_at DESC, id DESC LIMIT 100",
        )
    ]
    page = await session.appointments.list(per_page=100, sort=["starts_at:desc", "id:desc"])
    assert [r.id for r in page.items] == expected


async def test_by_ids_with_an_id_above_int64_still_returns_the_known_ones(
    app, sandbox, session, raw
):
    known = str(scalar(app, f"SELECT id FROM appointments WHERE account='a' AND {LIVE}"))
    above = "9999999999999999999"  # 19 digits, above int64 max: cannot exist upstream
    found = await session.appointments.by_ids([known, above])
    assert list(found) == [known]
    assert sandbox.stats.total == 1

    # Only out-of-range ids: nothing can match, so nothing is sent.
    assert await session.appointments.by_ids([above, str(2**64)]) == {}
    assert sandbox.stats.total == 1

    # A single get of such an id is the caller's mistake, refused before a request.
    with pytest.raises(InvalidRequest):
        await session.appointments.get(above)
    assert sandbox.stats.total == 1

    # The sandbox really does refuse it: sending it would fail the whole batch.
    response = await raw.get("individual_appointments", params={"q[]": f"id:={known},{above}"})
    assert response.status_code == 400
