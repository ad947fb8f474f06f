"""The web-app door: outside edits, seen by the API only through ``updated_at`` (and counts).

Every seeded ``updated_at`` is at or before the anchor, long before the wall clock, so a change
made now is exactly what a poll from ``now_second()`` taken just before it finds; no test
needs to sleep.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from appointments_gateway.sandbox import DEMO_KEY_B, create_sandbox_app

from .conftest import (
    START,
    SYNC_POLLS,
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
    total_entries,
)

APPOINTMENTS = "/v1/individual_appointments"
ALL_HIDDEN = SYNC_POLLS[APPOINTMENTS]
WEB = "/_sandbox/webapp/a"
WEB_APPOINTMENTS = f"{WEB}/individual_appointments"


@pytest.fixture
async def web(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credentials: the web app needs none."""
    async with client_for(app, None) as c:
        yield c


async def first_live(client: httpx.AsyncClient) -> dict[str, Any]:
    """A seeded, live appointment of account A (its ``updated_at`` is long past)."""
    body = (await client.get(APPOINTMENTS, params={"per_page": 1})).json()
    appointment: dict[str, Any] = body["individual_appointments"][0]
    return appointment


async def first_with(client: httpx.AsyncClient, *filters: str) -> dict[str, Any]:
    body = (await client.get(APPOINTMENTS, params={"q[]": list(filters), "per_page": 1})).json()
    appointment: dict[str, Any] = body["individual_appointments"][0]
    return appointment


def stamped(value: str, before: str, after: str) -> bool:
    """Whether ``value`` is a whole second between two ``now_second()`` readings."""
    return before <= value <= after


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- create ------------------------------------------------------------------------------


async def test_create_is_the_apis_create_and_the_poll_finds_it(
    client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    refs = await references(client)
    before = now_second()
    response = await web.post(WEB_APPOINTMENTS, json=body_for(refs, notes="Booked by phone"))
    after = now_second()
    assert response.status_code == 201, response.text
    created = response.json()
    assert created == await get_any(client, created["id"])
    assert created["notes"] == "Booked by phone"
    assert created["starts_at"] == START
    assert at(created["ends_at"]) - at(START) == timedelta(minutes=refs["duration"])
    assert created["created_at"] == created["updated_at"]
    assert stamped(created["updated_at"], before, after)
    assert await changed_since(client, APPOINTMENTS, before) == [created]


async def test_create_with_a_repeat_rule_makes_the_series_like_the_api(
    client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    refs = await references(client)
    rule = {"repeat_type": "Daily", "repeating_interval": 2, "number_of_repeats": 3}
    response = await web.post(WEB_APPOINTMENTS, json=body_for(refs, repeat_rule=rule))
    assert response.status_code == 201
    origin = response.json()
    repeats = await fetch_all(client, APPOINTMENTS, {"q[]": f"repeated_from_id:={origin['id']}"})
    assert len(repeats) == 3
    assert origin["repeat_rule"] == rule


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"patient_id": None}, "patient_id", "can't be blank"),
        ({"starts_at": "soon"}, "starts_at", "is not a valid date-time"),
        ({"business_id": "1405999999999999999"}, "business_id", "must exist"),
        ({"ends_at": "2030-01-07T00:00:00Z"}, "ends_at", "must be after starts_at"),
        ({"colour": "red"}, "colour", "is not a field the web app sets here"),
    ],
)
async def test_create_refuses_bad_input_with_400_and_the_apis_messages(
    app: Starlette,
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    change: dict[str, Any],
    field: str,
    message: str,
) -> None:
    refs = await references(client)
    count = state_of(app).count_appointments()
    response = await web.post(WEB_APPOINTMENTS, json=body_for(refs, **change))
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Validation Failed"
    assert body["errors"][field].startswith(message)
    assert state_of(app).count_appointments() == count


@pytest.mark.parametrize("raw", [b"{", b"[1, 2]", b'"text"', b"\xff"])
async def test_bodies_that_are_not_json_objects_are_400(
    client: httpx.AsyncClient, web: httpx.AsyncClient, raw: bytes
) -> None:
    appointment = await first_live(client)
    for method, url in (
        ("POST", WEB_APPOINTMENTS),
        ("PATCH", f"{WEB_APPOINTMENTS}/{appointment['id']}"),
        ("POST", f"{WEB_APPOINTMENTS}/{appointment['id']}/cancel"),
        ("PATCH", f"{WEB}/patients/{link_id(appointment['patient'])}"),
    ):
        response = await web.request(method, url, content=raw)
        assert response.status_code == 400, (method, url)
        assert "message" in response.json()


# --- update ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"notes": "Running late"}, {"notes": "Running late"}),
        ({"did_not_arrive": True}, {"did_not_arrive": True}),
        ({"patient_arrived": True}, {"patient_arrived": True}),
        (
            {"starts_at": "2030-02-04T03:00:00Z", "ends_at": "2030-02-04T03:45:00Z"},
            {"starts_at": "2030-02-04T03:00:00Z", "ends_at": "2030-02-04T03:45:00Z"},
        ),
    ],
)
async def test_patch_changes_fields_and_the_poll_finds_exactly_that_row(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    change: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    original = await first_live(client)
    before = now_second()
    response = await web.patch(f"{WEB_APPOINTMENTS}/{original['id']}", json=change)
    after = now_second()
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed == await get_any(client, original["id"])
    assert {k: changed[k] for k in expected} == expected
    assert original["updated_at"] < changed["updated_at"]
    assert stamped(changed["updated_at"], before, after)
    untouched = set(original) - set(expected) - {"updated_at"}
    assert {k: changed[k] for k in untouched} == {k: original[k] for k in untouched}
    assert await changed_since(client, APPOINTMENTS, before) == [changed]


async def test_patch_moving_starts_at_keeps_the_length_and_can_change_practitioner(
    client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    original = await first_live(client)
    practitioners = (await client.get("/v1/practitioners", params={"per_page": 100})).json()
    other = next(
        p["id"]
        for p in practitioners["practitioners"]
        if p["id"] != link_id(original["practitioner"])
    )
    change = {"starts_at": "2030-03-01T00:00:00Z", "practitioner_id": other}
    response = await web.patch(f"{WEB_APPOINTMENTS}/{original['id']}", json=change)
    assert response.status_code == 200
    moved = response.json()
    assert moved["starts_at"] == "2030-03-01T00:00:00Z"
    length = at(original["ends_at"]) - at(original["starts_at"])
    assert at(moved["ends_at"]) - at(moved["starts_at"]) == length
    assert link_id(moved["practitioner"]) == other


async def test_did_not_arrive_set_in_the_web_app_is_what_the_api_filter_sees(
    client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    original = await first_live(client)
    flagged = f"id:={original['id']}", "did_not_arrive:=true"
    assert await total_entries(client, APPOINTMENTS, *flagged) == 0
    await web.patch(f"{WEB_APPOINTMENTS}/{original['id']}", json={"did_not_arrive": True})
    assert await total_entries(client, APPOINTMENTS, *flagged) == 1
    await web.patch(f"{WEB_APPOINTMENTS}/{original['id']}", json={"did_not_arrive": False})
    assert await total_entries(client, APPOINTMENTS, *flagged) == 0


async def test_the_api_cannot_set_the_web_only_fields(client: httpx.AsyncClient) -> None:
    original = await first_live(client)
    response = await client.patch(
        original["links"]["self"], json={"did_not_arrive": True, "patient_arrived": True}
    )
    assert response.status_code == 200  # unknown fields are ignored, as Rails does
    assert (response.json()["did_not_arrive"], response.json()["patient_arrived"]) == (
        original["did_not_arrive"],
        original["patient_arrived"],
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"did_not_arrive": "yes"}, "did_not_arrive"),
        ({"patient_arrived": None}, "patient_arrived"),
        ({"ends_at": "2000-01-01T00:00:00Z"}, "ends_at"),
        ({"practitioner_id": "1"}, "practitioner_id"),
        ({"nickname": "x"}, "nickname"),
    ],
)
async def test_patch_refuses_bad_input_with_400_and_changes_nothing(
    client: httpx.AsyncClient, web: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    original = await first_live(client)
    response = await web.patch(f"{WEB_APPOINTMENTS}/{original['id']}", json=change)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert await get_any(client, original["id"]) == original


async def test_patch_with_nothing_to_change_is_400(
    client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    original = await first_live(client)
    response = await web.patch(f"{WEB_APPOINTMENTS}/{original['id']}", json={})
    assert response.status_code == 400
    assert "Nothing to change" in response.json()["message"]
    assert await get_any(client, original["id"]) == original


async def test_patch_works_on_cancelled_rows_but_not_archived_or_deleted_ones(
    client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    cancelled = await first_with(client, "cancelled_at:?")
    before = now_second()
    response = await web.patch(f"{WEB_APPOINTMENTS}/{cancelled['id']}", json={"notes": "Called"})
    assert response.status_code == 200
    assert response.json()["cancelled_at"] == cancelled["cancelled_at"]
    assert [a["id"] for a in await changed_since(client, APPOINTMENTS, before)] == [cancelled["id"]]
    for hidden in ("archived_at:?", "deleted_at:?"):
        row = await first_with(client, hidden)
        response = await web.patch(f"{WEB_APPOINTMENTS}/{row['id']}", json={"notes": "x"})
        assert response.status_code == 404, hidden
        assert "message" in response.json()
    unknown = await web.patch(f"{WEB_APPOINTMENTS}/1999999999999999999", json={"notes": "x"})
    assert unknown.status_code == 404
    assert (await web.patch(f"{WEB_APPOINTMENTS}/abc", json={"notes": "x"})).status_code == 404


# --- cancel, archive ---------------------------------------------------------------------


async def test_cancel_defaults_to_reason_50_and_hides_the_row_from_the_api(
    client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    original = await first_live(client)
    before = now_second()
    response = await web.post(f"{WEB_APPOINTMENTS}/{original['id']}/cancel")
    after = now_second()
    assert response.status_code == 200
    cancelled = response.json()
    assert cancelled == await get_any(client, original["id"])
    assert (cancelled["cancellation_reason"], cancelled["cancellation_note"]) == (50, None)
    assert cancelled["cancellation_reason_description"] == "Other"
    assert cancelled["cancelled_at"] == cancelled["updated_at"]
    assert stamped(cancelled["updated_at"], before, after)
    assert (await client.get(original["links"]["self"])).status_code == 404
    assert await changed_since(client, APPOINTMENTS, before) == [cancelled]


async def test_cancel_takes_a_reason_and_note_and_validates_them(
    client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    original = await first_live(client)
    url = f"{WEB_APPOINTMENTS}/{original['id']}/cancel"
    refused = await web.post(url, json={"cancellation_reason": 31})
    assert refused.status_code == 400
    assert refused.json()["errors"] == {"cancellation_reason": "is not included in the list"}
    assert (await web.post(url, json={"reason": 10})).status_code == 400
    response = await web.post(url, json={"cancellation_reason": 30, "cancellation_note": "Flu"})
    assert response.status_code == 200
    assert response.json()["cancellation_reason_description"] == "Sick"
    assert response.json()["cancellation_note"] == "Flu"


async def test_archive_hides_the_row_stamps_it_once_and_is_idempotent(
    client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    original = await first_live(client)
    url = f"{WEB_APPOINTMENTS}/{original['id']}/archive"
    before = now_second()
    response = await web.post(url)
    assert response.status_code == 200
    archived = response.json()
    assert archived["archived_at"] == archived["updated_at"] >= before
    assert (await client.get(original["links"]["self"])).status_code == 404
    assert await changed_since(client, APPOINTMENTS, before) == [archived]
    again = await web.post(url)
    assert again.status_code == 200
    assert again.json() == archived
    cancel = await web.post(f"{WEB_APPOINTMENTS}/{original['id']}/cancel")
    assert cancel.status_code == 404


# --- delete ------------------------------------------------------------------------------


async def test_soft_delete_hides_the_row_everywhere_but_under_deleted_at(
    app: Starlette, client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    original = await first_live(client)
    live = await total_entries(client, APPOINTMENTS)
    everything = await total_entries(client, APPOINTMENTS, *ALL_HIDDEN)
    before = now_second()
    response = await web.delete(f"{WEB_APPOINTMENTS}/{original['id']}")
    after = now_second()
    assert response.status_code == 204
    assert response.content == b""
    assert await total_entries(client, APPOINTMENTS) == live - 1
    assert await total_entries(client, APPOINTMENTS, *ALL_HIDDEN) == everything
    for filters in ([], ["cancelled_at:*"], ["archived_at:*"], ["cancelled_at:*", "archived_at:*"]):
        got = await client.get(original["links"]["self"], params={"q[]": filters})
        assert got.status_code == 404, filters
    deleted = await get_any(client, original["id"])
    assert deleted["deleted_at"] == deleted["updated_at"]
    assert stamped(deleted["updated_at"], before, after)
    assert await changed_since(client, APPOINTMENTS, before) == [deleted]
    assert state_of(app).count_appointments("a", live_only=True) == live - 1
    again = await web.delete(f"{WEB_APPOINTMENTS}/{original['id']}")
    assert again.status_code == 404
    patch = await web.patch(f"{WEB_APPOINTMENTS}/{original['id']}", json={"notes": "x"})
    assert patch.status_code == 404


async def test_hard_delete_leaves_no_trace_for_a_poll_but_the_counts_drop(
    app: Starlette, client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    original = await first_live(client)
    rows = state_of(app).count_appointments("a")
    everything = await total_entries(client, APPOINTMENTS, *ALL_HIDDEN)
    practitioner = f"practitioner_id:={link_id(original['practitioner'])}"
    by_practitioner = await total_entries(client, APPOINTMENTS, practitioner, *ALL_HIDDEN)
    before = now_second()
    response = await web.delete(f"{WEB_APPOINTMENTS}/{original['id']}", params={"hard": "true"})
    assert response.status_code == 204
    assert await changed_since(client, APPOINTMENTS, before) == []
    assert state_of(app).count_appointments("a") == rows - 1
    assert await total_entries(client, APPOINTMENTS, *ALL_HIDDEN) == everything - 1
    assert await total_entries(client, APPOINTMENTS, practitioner, *ALL_HIDDEN) == (
        by_practitioner - 1
    )
    listed = await fetch_all(client, APPOINTMENTS, {"q[]": list(ALL_HIDDEN)})
    assert original["id"] not in {a["id"] for a in listed}
    got = await client.get(original["links"]["self"], params={"q[]": list(ALL_HIDDEN)})
    assert got.status_code == 404
    stats = (await web.get("/_sandbox/stats")).json()
    assert stats["appointments"]["a"] == rows - 1
    gone = await web.delete(f"{WEB_APPOINTMENTS}/{original['id']}", params={"hard": "true"})
    assert gone.status_code == 404


async def test_hard_delete_also_removes_a_soft_deleted_row(
    app: Starlette, client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    deleted = await first_with(client, "deleted_at:?")
    rows = state_of(app).count_appointments("a")
    url = f"{WEB_APPOINTMENTS}/{deleted['id']}"
    assert (await web.delete(url)).status_code == 404  # already deleted
    assert (await web.delete(url, params={"hard": "true"})).status_code == 204
    assert state_of(app).count_appointments("a") == rows - 1


async def test_hard_takes_true_or_false_only(
    client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    original = await first_live(client)
    url = f"{WEB_APPOINTMENTS}/{original['id']}"
    response = await web.delete(url, params={"hard": "yes"})
    assert response.status_code == 400
    assert "hard" in response.json()["message"]
    assert (await web.delete(url, params={"hard": "false"})).status_code == 204
    assert (await get_any(client, original["id"]))["deleted_at"] is not None


# --- related rows ------------------------------------------------------------------------


RELATED_EDITS: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    # (poll path, filter picking a row, change, fields expected afterwards besides the change)
    (
        "/v1/patients",
        "archived_at:!?",
        {"first_name": "Wiremu", "last_name": "Ngārimu", "email": "wiremu@example.com"},
        {"label": "Wiremu Ngārimu"},
    ),
    ("/v1/patients", "archived_at:?", {"preferred_first_name": "Bex"}, {}),
    ("/v1/patients", "archived_at:!?", {"preferred_first_name": None, "email": None}, {}),
    (
        "/v1/practitioners",
        "active:=true",
        {"first_name": "Hēmi", "display_name": "Dr Hēmi"},
        {"display_name": "Dr Hēmi"},
    ),
    ("/v1/practitioners/inactive", "active:=false", {"last_name": "Roa"}, {}),
    (
        "/v1/businesses",
        "archived_at:!?",
        {"business_name": "Harbourside — Northside"},
        {"label": "Harbourside — Northside"},
    ),
    ("/v1/appointment_types", "archived_at:*", {"name": "Long consult"}, {}),
]


@pytest.mark.parametrize(("path", "pick", "change", "also"), RELATED_EDITS)
async def test_related_edits_show_through_the_api_and_the_poll(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    path: str,
    pick: str,
    change: dict[str, Any],
    also: dict[str, Any],
) -> None:
    resource = path.split("/")[2]
    picked = await fetch_all(client, path, {"q[]": [pick, *SYNC_POLLS[path]]})
    original = picked[0]
    before = now_second()
    response = await web.patch(f"{WEB}/{resource}/{original['id']}", json=change)
    after = now_second()
    assert response.status_code == 200, response.text
    changed = response.json()
    assert {k: changed[k] for k in change} == change
    assert {k: changed[k] for k in also} == also
    assert original["updated_at"] < changed["updated_at"]
    assert stamped(changed["updated_at"], before, after)
    if {"first_name", "last_name"} & set(change):  # the label follows the name
        assert changed["label"] == f"{changed['first_name']} {changed['last_name']}"
    kept = set(original) - set(change) - set(also) - {"updated_at", "label"}
    assert {k: changed[k] for k in kept} == {k: original[k] for k in kept}
    assert await changed_since(client, path, before) == [changed]
    for other in SYNC_POLLS:
        if other != path:
            assert await changed_since(client, other, before) == [], other


async def test_a_renamed_patient_is_found_by_the_apis_name_filters(
    client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    patient = (await client.get("/v1/patients", params={"per_page": 1})).json()["patients"][0]
    change = {"first_name": "Mereana", "email": "mereana@example.org"}
    assert (await web.patch(f"{WEB}/patients/{patient['id']}", json=change)).status_code == 200
    for q in ("first_name:=Mereana", "email:~@example.org"):
        found = await fetch_all(client, "/v1/patients", {"q[]": q})
        assert [p["id"] for p in found] == [patient["id"]], q
    assert await fetch_all(client, "/v1/patients", {"q[]": f"email:={patient['email']}"}) == []


async def test_renaming_a_patient_leaves_the_name_snapshot_on_appointments(
    client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    appointment = await first_live(client)
    before = now_second()
    patient_id = link_id(appointment["patient"])
    response = await web.patch(f"{WEB}/patients/{patient_id}", json={"first_name": "Renamed"})
    assert response.status_code == 200
    assert (await get_any(client, appointment["id"]))["patient_name"] == appointment["patient_name"]
    assert await changed_since(client, APPOINTMENTS, before) == []


@pytest.mark.parametrize(
    ("resource", "change", "field", "message"),
    [
        ("patients", {"first_name": ""}, "first_name", "can't be blank"),
        ("patients", {"first_name": None}, "first_name", "can't be blank"),
        ("patients", {"last_name": 7}, "last_name", "must be a string"),
        ("patients", {"email": "not an address"}, "email", "is not an email address"),
        ("patients", {"date_of_birth": "2000-01-01"}, "date_of_birth", "is not a field"),
        ("practitioners", {"display_name": "  "}, "display_name", "can't be blank"),
        ("businesses", {"name": "x"}, "name", "is not a field"),
        ("appointment_types", {"name": ["x"]}, "name", "must be a string"),
    ],
)
async def test_related_edits_refuse_bad_input_with_400(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    resource: str,
    change: dict[str, Any],
    field: str,
    message: str,
) -> None:
    original = (await client.get(f"/v1/{resource}", params={"per_page": 1})).json()[resource][0]
    response = await web.patch(f"{WEB}/{resource}/{original['id']}", json=change)
    assert response.status_code == 400
    assert message in response.json()["errors"][field]
    assert (await client.get(original["links"]["self"])).json() == original


async def test_related_edits_need_something_to_change_and_a_known_row(
    client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    patient = (await client.get("/v1/patients", params={"per_page": 1})).json()["patients"][0]
    empty = await web.patch(f"{WEB}/patients/{patient['id']}", json={})
    assert empty.status_code == 400
    assert "Nothing to change" in empty.json()["message"]
    unknown = await web.patch(f"{WEB}/patients/1999999999999999999", json={"first_name": "X"})
    assert unknown.status_code == 404
    assert "message" in unknown.json()
    cases = await web.patch(f"{WEB}/patient_cases/1", json={"name": "X"})
    assert cases.status_code == 404  # not editable through this door


# --- the door itself ---------------------------------------------------------------------


async def test_unknown_account_labels_are_json_404s(web: httpx.AsyncClient) -> None:
    for method, url in (
        ("POST", "/_sandbox/webapp/c/individual_appointments"),
        ("PATCH", "/_sandbox/webapp/A/individual_appointments/1"),
        ("DELETE", "/_sandbox/webapp/sandbox-key-a-au1/individual_appointments/1"),
        ("PATCH", "/_sandbox/webapp/zz/patients/1"),
    ):
        response = await web.request(method, url, json={})
        assert response.status_code == 404, url
        assert "account" in response.json()["message"]


async def test_another_accounts_ids_are_404_through_this_account(
    app: Starlette, client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    async with client_for(app, DEMO_KEY_B) as b:
        theirs = (await b.get(APPOINTMENTS, params={"per_page": 1})).json()
        appointment = theirs["individual_appointments"][0]
        patient = (await b.get("/v1/patients", params={"per_page": 1})).json()["patients"][0]
        rows = state_of(app).count_appointments()
        own = f"{WEB_APPOINTMENTS}/{appointment['id']}"
        for method, url, body in (
            ("PATCH", own, {"notes": "x"}),
            ("POST", f"{own}/cancel", {}),
            ("POST", f"{own}/archive", {}),
            ("DELETE", own, None),
            ("DELETE", f"{own}?hard=true", None),
            ("PATCH", f"{WEB}/patients/{patient['id']}", {"first_name": "X"}),
        ):
            response = await web.request(method, url, json=body)
            assert response.status_code == 404, (method, url)
        assert state_of(app).count_appointments() == rows
        assert (await b.get(appointment["links"]["self"])).json() == appointment
        refs = await references(client)
        crossed = await web.post(WEB_APPOINTMENTS, json=body_for(refs, patient_id=patient["id"]))
        assert crossed.status_code == 400
        assert crossed.json()["errors"] == {"patient_id": "must exist"}
        through_b = await web.patch(
            f"/_sandbox/webapp/b/individual_appointments/{appointment['id']}",
            json={"notes": "Through b"},
        )
        assert through_b.status_code == 200
        assert (await b.get(appointment["links"]["self"])).json()["notes"] == "Through b"


async def test_the_web_app_is_never_counted_or_rate_limited() -> None:
    app = create_sandbox_app(config(rate_limit_per_minute=2))
    async with client_for(app) as api, client_for(app, None) as web:
        appointment = await first_live(api)
        assert (await api.get(APPOINTMENTS, params={"per_page": 1})).status_code == 200
        assert (await api.get(APPOINTMENTS, params={"per_page": 1})).status_code == 429
        url = f"{WEB_APPOINTMENTS}/{appointment['id']}"
        for n in range(5):
            response = await web.patch(url, json={"notes": f"Edit {n}"})
            assert response.status_code == 200
        assert (await web.post(f"{url}/cancel")).status_code == 200
        patient = link_id(appointment["patient"])
        assert (await web.patch(f"{WEB}/patients/{patient}", json={"email": None})).is_success
        assert (await web.delete(url)).status_code == 204
        assert (await api.get(APPOINTMENTS)).status_code == 429  # /v1 is still limited
        stats = (await web.get("/_sandbox/stats")).json()
    assert stats["total_requests"] == 4
    assert all(route.split(" ")[1].startswith("/v1") for route in stats["by_route"])
    assert stats["by_status"] == {"200": 2, "429": 2}


async def test_the_web_app_gets_no_latency_and_no_faults(app: Starlette) -> None:
    async with client_for(app) as api:  # equal configs seed equal data, ids included
        appointment = await first_live(api)
    slow = create_sandbox_app(config(latency_ms=2_000, fault_rate=1.0))
    async with client_for(slow, None) as web:
        started = time.perf_counter()
        response = await web.patch(
            f"{WEB_APPOINTMENTS}/{appointment['id']}", json={"patient_arrived": True}
        )
        assert time.perf_counter() - started < 1.0
    assert response.status_code == 200
    assert response.json()["patient_arrived"] is True
    assert state_of(slow).stats.total == 0
