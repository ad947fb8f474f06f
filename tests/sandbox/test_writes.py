"""Create, update, cancel, archive, delete and conflicts, with Cliniko's 422 shapes."""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from appointments_gateway.sandbox import DEMO_KEY_B, create_sandbox_app

from .conftest import (
    API,
    START,
    body_for,
    changed_since,
    client_for,
    config,
    fetch_all,
    get_any,
    link_id,
    now_second,
    references,
    state_of,
)

APPOINTMENTS = "/v1/individual_appointments"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(APPOINTMENTS, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# --- create ------------------------------------------------------------------------------


async def test_create_answers_201_with_location_and_derives_ends_at(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    refs = await references(client)
    before = state_of(app).count_appointments("a")
    response = await client.post(APPOINTMENTS, json=body_for(refs, notes="Fresh booking"))
    assert response.status_code == 201
    created = response.json()
    assert re.fullmatch(r"\d{19}", created["id"])
    assert response.headers["location"] == created["links"]["self"]
    assert created["links"]["self"] == f"{API}/individual_appointments/{created['id']}"
    assert created["starts_at"] == START
    assert at(created["ends_at"]) - at(START) == timedelta(minutes=refs["duration"])
    assert created["created_at"] == created["updated_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created["created_at"])
    assert created["notes"] == "Fresh booking"
    assert created["repeat_rule"] == {}
    assert created["repeats"] is None
    assert "repeated_from" not in created
    assert "patient_case" not in created
    assert created["cancellation_reason_description"] == ""
    assert link_id(created["patient"]) == refs["patient_id"]
    assert state_of(app).count_appointments("a") == before + 1
    fetched = await client.get(created["links"]["self"])
    assert fetched.json() == created


async def test_create_with_explicit_ends_at_case_and_integer_ids(
    client: httpx.AsyncClient,
) -> None:
    refs = await references(client)
    body = body_for(
        refs,
        ends_at="2030-01-07T01:20:00Z",
        patient_case_id=refs["case_id"],
        practitioner_id=int(refs["practitioner_id"]),
    )
    created = await create(client, body)
    assert created["ends_at"] == "2030-01-07T01:20:00Z"
    assert link_id(created["patient_case"]) == refs["case_id"]
    assert link_id(created["practitioner"]) == refs["practitioner_id"]


async def test_create_accepts_offsets_and_stores_utc_whole_seconds(
    client: httpx.AsyncClient,
) -> None:
    refs = await references(client)
    created = await create(client, body_for(refs, starts_at="2030-01-07T11:00:00.750+10:00"))
    assert created["starts_at"] == START


async def test_create_without_required_fields_is_422_with_string_messages(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(APPOINTMENTS, json={})
    assert response.status_code == 422
    body = response.json()
    assert body["message"] == "Validation Failed"
    assert set(body["errors"]) == {
        "patient_id",
        "practitioner_id",
        "appointment_type_id",
        "business_id",
        "starts_at",
    }
    assert all(value == "can't be blank" for value in body["errors"].values())


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ({"patient_id": "1999999999999999999"}, "patient_id", "must exist"),
        ({"business_id": "not-a-number"}, "business_id", "is not a valid id"),
        ({"starts_at": "next tuesday"}, "starts_at", "is not a valid date-time"),
        ({"ends_at": "2030-01-07T00:59:00Z"}, "ends_at", "must be after starts_at"),
        ({"ends_at": START}, "ends_at", "must be after starts_at"),
        ({"notes": 42}, "notes", "must be a string"),
        ({"patient_case_id": "1405999999999999999"}, "patient_case_id", "must exist"),
        ({"repeat_rule": []}, "repeat_rule", "must be an object"),
        (
            {"repeat_rule": {"repeat_type": "Yearly", "number_of_repeats": 2}},
            "repeat_rule.repeat_type",
            "must be one of Daily, Weekly, Monthly",
        ),
        (
            {"repeat_rule": {"repeat_type": "Daily", "number_of_repeats": 0}},
            "repeat_rule.number_of_repeats",
            "from 1 to 51",
        ),
        (
            {"repeat_rule": {"repeat_type": "Daily", "number_of_repeats": 52}},
            "repeat_rule.number_of_repeats",
            "from 1 to 51",
        ),
        (
            {
                "repeat_rule": {
                    "repeat_type": "Daily",
                    "number_of_repeats": 2,
                    "repeating_interval": 0,
                }
            },
            "repeat_rule.repeating_interval",
            "from 1 to 100",
        ),
        (
            {
                "repeat_rule": {
                    "repeat_type": "Weekly",
                    "number_of_repeats": 2,
                    "repeating_interval": 101,
                }
            },
            "repeat_rule.repeating_interval",
            "from 1 to 100",
        ),
    ],
)
async def test_create_validation_failures(
    app: Starlette, client: httpx.AsyncClient, override: dict[str, Any], field: str, message: str
) -> None:
    refs = await references(client)
    before = state_of(app).count_appointments()
    response = await client.post(APPOINTMENTS, json=body_for(refs, **override))
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert field in errors
    assert message in errors[field]
    assert all(isinstance(v, str) for v in errors.values())
    assert state_of(app).count_appointments() == before  # nothing written


async def test_create_refuses_a_case_of_another_patient(client: httpx.AsyncClient) -> None:
    refs = await references(client)
    other_patient = await client.get("/v1/patients", params={"q[]": f"id:!={refs['patient_id']}"})
    patient_id = other_patient.json()["patients"][0]["id"]
    body = body_for(refs, patient_id=patient_id, patient_case_id=refs["case_id"])
    response = await client.post(APPOINTMENTS, json=body)
    assert response.status_code == 422
    assert response.json()["errors"] == {"patient_case_id": "must belong to the patient"}


async def test_create_cannot_reference_another_accounts_rows(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    refs = await references(client)
    async with client_for(app, DEMO_KEY_B) as b:
        b_refs = await references(b)
    response = await client.post(APPOINTMENTS, json=body_for(refs, patient_id=b_refs["patient_id"]))
    assert response.status_code == 422
    assert response.json()["errors"] == {"patient_id": "must exist"}


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe"])
async def test_malformed_bodies_are_400(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post(
        APPOINTMENTS, content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["message"]


# --- repeats -----------------------------------------------------------------------------


async def test_repeat_rule_creates_the_origin_plus_number_of_repeats(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    refs = await references(client)
    rule = {"repeat_type": "Weekly", "repeating_interval": 2, "number_of_repeats": 3}
    before = state_of(app).count_appointments("a")
    origin = await create(client, body_for(refs, repeat_rule=rule))
    assert state_of(app).count_appointments("a") == before + 4
    assert origin["repeat_rule"] == rule
    repeats_url = origin["repeats"]["links"]["self"]
    assert repeats_url == f"{API}/individual_appointments?q[]=repeated_from_id:={origin['id']}"
    children = (await client.get(repeats_url)).json()["individual_appointments"]
    assert len(children) == 3
    starts = [at(origin["starts_at"]), *sorted(at(c["starts_at"]) for c in children)]
    assert [b - a for a, b in itertools.pairwise(starts)] == [timedelta(weeks=2)] * 3
    for child in children:
        assert child["repeats"] is None
        assert link_id(child["repeated_from"]) == origin["id"]
        assert child["repeat_rule"] == rule
        assert at(child["ends_at"]) - at(child["starts_at"]) == timedelta(minutes=refs["duration"])


async def test_monthly_repeats_keep_the_day_of_month_clamped_to_month_end(
    client: httpx.AsyncClient,
) -> None:
    refs = await references(client)
    rule = {"repeat_type": "Monthly", "number_of_repeats": 2}  # interval defaults to 1
    origin = await create(
        client, body_for(refs, starts_at="2031-01-31T02:00:00Z", repeat_rule=rule)
    )
    assert origin["repeat_rule"]["repeating_interval"] == 1
    children = await fetch_all(client, APPOINTMENTS, {"q[]": f"repeated_from_id:={origin['id']}"})
    assert sorted(c["starts_at"] for c in children) == [
        "2031-02-28T02:00:00Z",
        "2031-03-31T02:00:00Z",
    ]


async def test_seeded_series_are_linked_both_ways(client: httpx.AsyncClient) -> None:
    children = await fetch_all(
        client, APPOINTMENTS, {"q[]": ["repeated_from_id:?", "cancelled_at:*", "archived_at:*"]}
    )
    origins = {link_id(c["repeated_from"]) for c in children}
    assert len(origins) == 10
    for origin_id in origins:
        origin = await get_any(client, origin_id)
        assert origin["repeats"]["links"]["self"].endswith(f"repeated_from_id:={origin_id}")
        assert "repeated_from" not in origin
        count = sum(link_id(c["repeated_from"]) == origin_id for c in children)
        assert count == origin["repeat_rule"]["number_of_repeats"]
    types = {c["repeat_rule"]["repeat_type"] for c in children}
    assert types == {"Daily", "Weekly", "Monthly"}


# --- update ------------------------------------------------------------------------------


async def test_update_changes_fields_and_bumps_updated_at(client: httpx.AsyncClient) -> None:
    seeded = (await client.get(APPOINTMENTS, params={"per_page": 1})).json()
    original = seeded["individual_appointments"][0]
    response = await client.patch(original["links"]["self"], json={"notes": "Moved by phone"})
    assert response.status_code == 200
    updated = response.json()
    assert updated["notes"] == "Moved by phone"
    assert updated["updated_at"] > original["updated_at"]
    assert updated["starts_at"] == original["starts_at"]
    assert (await client.get(original["links"]["self"])).json() == updated


async def test_update_moving_starts_at_keeps_the_length(client: httpx.AsyncClient) -> None:
    refs = await references(client)
    created = await create(client, body_for(refs, ends_at="2030-01-07T01:25:00Z"))
    moved = await client.patch(created["links"]["self"], json={"starts_at": "2030-01-08T03:00:00Z"})
    assert moved.status_code == 200
    assert (moved.json()["starts_at"], moved.json()["ends_at"]) == (
        "2030-01-08T03:00:00Z",
        "2030-01-08T03:25:00Z",
    )


async def test_update_with_null_ends_at_uses_the_new_types_duration(
    client: httpx.AsyncClient,
) -> None:
    refs = await references(client)
    created = await create(client, body_for(refs))
    types = (await client.get("/v1/appointment_types", params={"per_page": 100})).json()
    other = next(
        t for t in types["appointment_types"] if t["duration_in_minutes"] != refs["duration"]
    )
    response = await client.patch(
        created["links"]["self"], json={"appointment_type_id": other["id"], "ends_at": None}
    )
    assert response.status_code == 200
    updated = response.json()
    assert link_id(updated["appointment_type"]) == other["id"]
    length = at(updated["ends_at"]) - at(updated["starts_at"])
    assert length == timedelta(minutes=other["duration_in_minutes"])


async def test_update_patient_refreshes_name_and_case_can_be_removed(
    client: httpx.AsyncClient,
) -> None:
    refs = await references(client)
    created = await create(client, body_for(refs, patient_case_id=refs["case_id"]))
    cleared = await client.patch(created["links"]["self"], json={"patient_case_id": None})
    assert "patient_case" not in cleared.json()
    patient = (await client.get("/v1/patients", params={"q[]": "first_name:=Łukasz"})).json()
    target = patient["patients"][0]
    renamed = await client.patch(created["links"]["self"], json={"patient_id": target["id"]})
    assert renamed.json()["patient_name"] == f"{target['first_name']} {target['last_name']}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ends_at": "2030-01-07T00:00:00Z"}, "ends_at"),
        ({"starts_at": None}, "starts_at"),
        ({"practitioner_id": None}, "practitioner_id"),
        ({"appointment_type_id": "1"}, "appointment_type_id"),
    ],
)
async def test_update_validation_failures(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    refs = await references(client)
    created = await create(client, body_for(refs))
    response = await client.patch(created["links"]["self"], json=body)
    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert (await client.get(created["links"]["self"])).json() == created


async def test_update_of_unknown_or_archived_appointments_is_404(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.patch(f"{APPOINTMENTS}/1999999999999999999", json={})).status_code == 404
    assert (await client.patch(f"{APPOINTMENTS}/abc", json={})).status_code == 404
    archived = (await client.get(APPOINTMENTS, params={"q[]": "archived_at:?"})).json()
    archived_id = archived["individual_appointments"][0]["id"]
    response = await client.patch(f"{APPOINTMENTS}/{archived_id}", json={"notes": "x"})
    assert response.status_code == 404


# --- cancel ------------------------------------------------------------------------------


async def test_cancel_answers_204_hides_the_row_and_records_the_reason(
    client: httpx.AsyncClient,
) -> None:
    refs = await references(client)
    created = await create(client, body_for(refs))
    response = await client.patch(
        f"{created['links']['self']}/cancel",
        json={"cancellation_reason": 30, "cancellation_note": "Flu", "apply_to_repeats": False},
    )
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(created["links"]["self"])).status_code == 404
    cancelled = await get_any(client, created["id"])
    assert cancelled["cancellation_reason"] == 30
    assert cancelled["cancellation_reason_description"] == "Sick"
    assert cancelled["cancellation_note"] == "Flu"
    assert cancelled["cancelled_at"] is not None
    assert cancelled["updated_at"] >= cancelled["cancelled_at"]
    assert cancelled["updated_at"] >= created["updated_at"]


@pytest.mark.parametrize(
    ("code", "description"),
    [(10, "Feeling Better"), (20, "Condition Worse"), (40, "Away"), (50, "Other"), (60, "Work")],
)
async def test_every_current_reason_has_its_description(
    client: httpx.AsyncClient, code: int, description: str
) -> None:
    refs = await references(client)
    created = await create(client, body_for(refs))
    response = await client.patch(
        f"{created['links']['self']}/cancel", json={"cancellation_reason": code}
    )
    assert response.status_code == 204
    assert (await get_any(client, created["id"]))["cancellation_reason_description"] == description


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"cancellation_reason": 31}, "cancellation_reason", "is not included in the list"),
        ({"cancellation_reason": 35}, "cancellation_reason", "is not included in the list"),
        ({"cancellation_reason": "10"}, "cancellation_reason", "is not included in the list"),
        ({"cancellation_reason": True}, "cancellation_reason", "is not included in the list"),
        ({}, "cancellation_reason", "can't be blank"),
        (
            {"cancellation_reason": 10, "apply_to_repeats": "yes"},
            "apply_to_repeats",
            "must be true or false",
        ),
        (
            {"cancellation_reason": 10, "cancellation_note": 5},
            "cancellation_note",
            "must be a string",
        ),
    ],
)
async def test_cancel_validation_failures(
    client: httpx.AsyncClient, body: dict[str, Any], field: str, message: str
) -> None:
    refs = await references(client)
    created = await create(client, body_for(refs))
    response = await client.patch(f"{created['links']['self']}/cancel", json=body)
    assert response.status_code == 422
    assert response.json() == {"message": "Validation Failed", "errors": {field: message}}
    assert (await client.get(created["links"]["self"])).status_code == 200  # still booked


async def test_legacy_code_31_is_still_readable_on_old_rows(client: httpx.AsyncClient) -> None:
    cancelled = await fetch_all(client, APPOINTMENTS, {"q[]": "cancelled_at:<2022-01-01T00:00:00Z"})
    covid = [a for a in cancelled if a["cancellation_reason"] == 31]
    assert len(covid) == 5
    assert {a["cancellation_reason_description"] for a in covid} == {"COVID-19 related"}


async def test_cancel_with_apply_to_repeats_cancels_this_and_later_ones(
    client: httpx.AsyncClient,
) -> None:
    refs = await references(client)
    rule = {"repeat_type": "Daily", "repeating_interval": 1, "number_of_repeats": 4}
    origin = await create(client, body_for(refs, repeat_rule=rule))
    series = await fetch_all(client, APPOINTMENTS, {"q[]": f"repeated_from_id:={origin['id']}"})
    series.sort(key=lambda a: a["starts_at"])
    middle = series[1]  # the third appointment of five
    response = await client.patch(
        f"{middle['links']['self']}/cancel",
        json={"cancellation_reason": 40, "apply_to_repeats": True},
    )
    assert response.status_code == 204
    states = {}
    for appointment in [origin, *series]:
        states[appointment["starts_at"]] = (await get_any(client, appointment["id"]))[
            "cancelled_at"
        ]
    ordered = [states[k] is not None for k in sorted(states)]
    assert ordered == [False, False, True, True, True]


async def test_cancel_without_apply_to_repeats_touches_only_one(client: httpx.AsyncClient) -> None:
    refs = await references(client)
    rule = {"repeat_type": "Weekly", "number_of_repeats": 2}
    origin = await create(client, body_for(refs, repeat_rule=rule))
    response = await client.patch(
        f"{origin['links']['self']}/cancel", json={"cancellation_reason": 50}
    )
    assert response.status_code == 204
    live_children = await fetch_all(
        client, APPOINTMENTS, {"q[]": f"repeated_from_id:={origin['id']}"}
    )
    assert len(live_children) == 2


# --- archive, delete ---------------------------------------------------------------------


@pytest.mark.parametrize(("method", "suffix"), [("POST", "/archive"), ("DELETE", "")])
async def test_archive_and_deprecated_delete_both_archive(
    client: httpx.AsyncClient, method: str, suffix: str
) -> None:
    refs = await references(client)
    created = await create(client, body_for(refs))
    response = await client.request(method, f"{created['links']['self']}{suffix}")
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(created["links"]["self"])).status_code == 404
    archived = await get_any(client, created["id"])
    assert archived["archived_at"] is not None
    assert archived["deleted_at"] is None
    again = await client.post(f"{created['links']['self']}/archive")
    assert again.status_code == 204
    assert (await get_any(client, created["id"]))["archived_at"] == archived["archived_at"]
    cancel = await client.patch(
        f"{created['links']['self']}/cancel", json={"cancellation_reason": 10}
    )
    assert cancel.status_code == 404


# --- updated_at: what a replica's poll sees ---------------------------------------------


async def _patch_notes(client: httpx.AsyncClient, url: str) -> int:
    return (await client.patch(url, json={"notes": "Changed by API"})).status_code


async def _cancel(client: httpx.AsyncClient, url: str) -> int:
    return (await client.patch(f"{url}/cancel", json={"cancellation_reason": 10})).status_code


async def _archive(client: httpx.AsyncClient, url: str) -> int:
    return (await client.post(f"{url}/archive")).status_code


async def _delete(client: httpx.AsyncClient, url: str) -> int:
    return (await client.delete(url)).status_code


Write = Callable[[httpx.AsyncClient, str], Awaitable[int]]


@pytest.mark.parametrize(
    ("write", "status"),
    [(_patch_notes, 200), (_cancel, 204), (_archive, 204), (_delete, 204)],
)
async def test_every_api_change_stamps_updated_at_and_the_poll_finds_exactly_it(
    client: httpx.AsyncClient, write: Write, status: int
) -> None:
    seeded = (await client.get(APPOINTMENTS, params={"per_page": 1})).json()
    original = seeded["individual_appointments"][0]
    before = now_second()
    assert await write(client, original["links"]["self"]) == status
    after = now_second()
    changed = await get_any(client, original["id"])
    assert original["updated_at"] < before <= changed["updated_at"] <= after
    polled = await changed_since(client, APPOINTMENTS, before)
    assert polled == [changed]


async def test_create_stamps_created_at_and_updated_at_and_the_poll_finds_it(
    client: httpx.AsyncClient,
) -> None:
    refs = await references(client)
    before = now_second()
    rule = {"repeat_type": "Weekly", "number_of_repeats": 2}
    origin = await create(client, body_for(refs, repeat_rule=rule))
    after = now_second()
    assert before <= origin["created_at"] == origin["updated_at"] <= after
    polled = await changed_since(client, APPOINTMENTS, before)
    assert len(polled) == 3  # the origin and its two repeats
    assert {a["updated_at"] for a in polled} == {origin["updated_at"]}


async def test_a_series_cancel_stamps_every_appointment_it_touches(
    client: httpx.AsyncClient,
) -> None:
    children = await fetch_all(client, APPOINTMENTS, {"q[]": "repeated_from_id:?"})
    series: dict[str, list[dict[str, Any]]] = {}
    for child in children:
        series.setdefault(link_id(child["repeated_from"]), []).append(child)
    longest = max(series.values(), key=len)
    assert len(longest) >= 3
    longest.sort(key=lambda a: a["starts_at"])
    pick = longest[1]
    touched = {a["id"] for a in longest if a["starts_at"] >= pick["starts_at"]}
    before = now_second()
    response = await client.patch(
        f"{pick['links']['self']}/cancel",
        json={"cancellation_reason": 20, "apply_to_repeats": True},
    )
    assert response.status_code == 204
    polled = await changed_since(client, APPOINTMENTS, before)
    assert {a["id"] for a in polled} == touched
    assert all(a["cancelled_at"] == a["updated_at"] >= before for a in polled)


async def test_archiving_an_archived_appointment_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    archived = (await client.get(APPOINTMENTS, params={"q[]": "archived_at:?"})).json()
    row = archived["individual_appointments"][0]
    before = now_second()
    assert (await client.post(f"{row['links']['self']}/archive")).status_code == 204
    assert await changed_since(client, APPOINTMENTS, before) == []


# --- conflicts ---------------------------------------------------------------------------


async def test_conflicts_find_overlaps_of_the_same_practitioner_only(
    client: httpx.AsyncClient,
) -> None:
    refs = await references(client)
    first = await create(client, body_for(refs, starts_at="2032-06-07T01:00:00Z"))
    alone = (await client.get(first["conflicts"]["links"]["self"])).json()
    assert alone == {"conflicts": {"exist": False}}
    practitioners = (await client.get("/v1/practitioners", params={"per_page": 2})).json()
    other_practitioner = practitioners["practitioners"][1]["id"]
    await create(
        client,
        body_for(refs, starts_at="2032-06-07T01:00:00Z", practitioner_id=other_practitioner),
    )
    assert (await client.get(first["conflicts"]["links"]["self"])).json()["conflicts"][
        "exist"
    ] is False
    await create(client, body_for(refs, starts_at=first["ends_at"]))  # back to back
    assert (await client.get(first["conflicts"]["links"]["self"])).json()["conflicts"][
        "exist"
    ] is False
    overlapping = await create(client, body_for(refs, starts_at="2032-06-07T01:10:00Z"))
    for appointment in (first, overlapping):
        body = (await client.get(appointment["conflicts"]["links"]["self"])).json()
        assert body == {"conflicts": {"exist": True}}
    cancel = await client.patch(
        f"{overlapping['links']['self']}/cancel", json={"cancellation_reason": 50}
    )
    assert cancel.status_code == 204
    assert (await client.get(first["conflicts"]["links"]["self"])).json()["conflicts"][
        "exist"
    ] is False


async def test_seeded_double_bookings_show_as_conflicts(client: httpx.AsyncClient) -> None:
    notes = await fetch_all(client, APPOINTMENTS, {"q[]": "starts_at:>2025-03-10T00:00:00Z"})
    clashes = [a for a in notes if a["notes"] and "Double-booked" in a["notes"]]
    assert len(clashes) == 6
    for appointment in clashes[:2]:
        body = (await client.get(appointment["conflicts"]["links"]["self"])).json()
        assert body["conflicts"]["exist"] is True


async def test_conflicts_of_an_unknown_id_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{APPOINTMENTS}/1999999999999999999/conflicts")
    assert response.status_code == 404


# --- persistence -------------------------------------------------------------------------


async def test_a_file_database_keeps_acknowledged_writes_across_apps(tmp_path: Path) -> None:
    db = str(tmp_path / "sandbox.sqlite3")
    first = create_sandbox_app(config(db_path=db))
    async with client_for(first) as c:
        refs = await references(c)
        created = await create(c, body_for(refs, notes="Survives a restart"))
    count = state_of(first).count_appointments()
    state_of(first).store.close()
    second = create_sandbox_app(config(db_path=db))
    assert state_of(second).count_appointments() == count
    async with client_for(second) as c:
        again = await c.get(created["links"]["self"])
    assert again.json()["notes"] == "Survives a restart"
    state_of(second).store.close()
