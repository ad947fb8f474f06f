"""The write API over real HTTP against the sandbox: writes, read-backs, user errors, retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from appointments_gateway.resolvers.ids import to_global_id
from tests.conftest import Serve
from tests.schema.conftest import ANCHOR, Gateway, booking_refs, open_gateway

#: A year out: past every seeded appointment, so nothing the tests book clashes by accident.
FREE_SLOT = ANCHOR + timedelta(weeks=52, hours=1)
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
APPOINTMENTS = "/v1/individual_appointments"


class Wire(httpx.AsyncBaseTransport):
    """Forwards to the sandbox and records what was sent; can lose answers or hold POSTs.

    ``lose_answers_to`` names methods whose request the sandbox handles (and stores)
    but whose answer never arrives: an ``httpx.ReadTimeout``, as on a flaky network.
    ``hold_posts`` keeps every POST waiting until it is set.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[tuple[str, str, Any]] = []
        self.lose_answers_to: set[str] = set()
        self.hold_posts: asyncio.Event | None = None
        self.post_arrived = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.sent.append((request.method, request.url.path, body))
        if request.method == "POST" and self.hold_posts is not None:
            self.post_arrived.set()
            await self.hold_posts.wait()
        response = await self.inner.handle_async_request(request)
        if request.method in self.lose_answers_to:
            await response.aread()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    def writes(self) -> list[tuple[str, str, Any]]:
        return [sent for sent in self.sent if sent[0] in WRITE_METHODS]


@pytest.fixture
def wire(sandbox: Starlette) -> Wire:
    return Wire(httpx.ASGITransport(app=sandbox))


@pytest.fixture
async def gw(serve: Serve, sandbox: Starlette, wire: Wire) -> AsyncIterator[Gateway]:
    async with open_gateway(serve, sandbox, wire) as gateway:
        yield gateway


@pytest.fixture
def refs(sandbox: Starlette) -> dict[str, str]:
    return booking_refs(sandbox)


def stored(gw: Gateway, appointment_id: str) -> dict[str, Any]:
    row = gw.sandbox.state.sandbox.store.conn.execute(
        "SELECT * FROM appointments WHERE id = ?", (int(appointment_id),)
    ).fetchone()
    return dict(row) if row is not None else {}


def sandbox_writes(gw: Gateway) -> dict[str, int]:
    """The write requests the sandbox counted, by method and route template."""
    return {r: n for r, n in gw.routes().items() if r.split(" ", 1)[0] in WRITE_METHODS}


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


APPOINTMENT = """
    id clinikoId startsAt endsAt status notes archivedAt cancelledAt
    cancellation { reason reasonCode note }
    repeatRule { repeatType repeatingInterval numberOfRepeats }
    patient { id firstName lastName }
    practitioner { displayName }
    appointmentType { name durationInMinutes }
    business { businessName }
"""
ERRORS = "userErrors { field message code }"


def mutation(name: str, input_type: str, selection: str = APPOINTMENT) -> str:
    return (
        f"mutation Write($input: {input_type}!) {{ {name}(input: $input) "
        f"{{ appointment {{ {selection} }} {ERRORS} }} }}"
    )


CREATE = mutation("createAppointment", "CreateAppointmentInput")
UPDATE = mutation("updateAppointment", "UpdateAppointmentInput")
CANCEL = mutation("cancelAppointment", "CancelAppointmentInput")
ARCHIVE = mutation("archiveAppointment", "ArchiveAppointmentInput")
READ = (
    f"query Read($id: ID!) {{ appointment(id: $id) {{ {APPOINTMENT} repeats {{ totalCount }} }} }}"
)


async def write(gw: Gateway, document: str, input: dict[str, Any]) -> dict[str, Any]:
    """Run a mutation that must not fail as a GraphQL error; return its payload."""
    body = await gw.query(document, {"input": input})
    assert "errors" not in body, body["errors"]
    (payload,) = body["data"].values()
    assert isinstance(payload, dict)
    return payload


async def read(gw: Gateway, appointment_id: str) -> dict[str, Any]:
    body = await gw.query(READ, {"id": appointment_id})
    assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body["data"]["appointment"]
    return result


async def book(gw: Gateway, refs: dict[str, str], **extra: Any) -> dict[str, Any]:
    payload = await write(gw, CREATE, {**refs, "startsAt": iso(FREE_SLOT), **extra})
    assert payload["userErrors"] == []
    appointment: dict[str, Any] = payload["appointment"]
    return appointment


# --- happy paths, read back ---------------------------------------------------------------


async def test_create_returns_the_booking_with_its_nested_records(gw: Gateway, refs, sandbox):
    before = sandbox.state.sandbox.count_appointments("a")
    payload = await write(
        gw, CREATE, {**refs, "startsAt": iso(FREE_SLOT), "notes": "First visit, bring scans"}
    )

    assert payload["userErrors"] == []
    created = payload["appointment"]
    assert created["status"] == "BOOKED"
    assert created["startsAt"] == iso(FREE_SLOT)
    minutes = created["appointmentType"]["durationInMinutes"]
    assert created["endsAt"] == iso(FREE_SLOT + timedelta(minutes=minutes))
    assert created["notes"] == "First visit, bring scans"
    assert created["patient"]["id"] == to_global_id("Patient", refs["patientId"])
    assert created["patient"]["firstName"]
    assert created["practitioner"]["displayName"]
    assert created["business"]["businessName"]
    assert created["cancellation"] is None
    assert created["repeatRule"] is None

    assert sandbox.state.sandbox.count_appointments("a") == before + 1
    assert sandbox_writes(gw) == {f"POST {APPOINTMENTS}": 1}
    read_back = await read(gw, created["id"])
    assert {k: v for k, v in read_back.items() if k != "repeats"} == created
    assert read_back["repeats"]["totalCount"] == 0
    row = stored(gw, created["clinikoId"])
    assert row["notes"] == "First visit, bring scans"
    assert str(row["practitioner_id"]) == refs["practitionerId"]


async def test_create_accepts_global_ids_and_an_explicit_end(gw: Gateway, refs, wire: Wire):
    global_refs = {
        "patientId": to_global_id("Patient", refs["patientId"]),
        "practitionerId": to_global_id("Practitioner", refs["practitionerId"]),
        "appointmentTypeId": to_global_id("AppointmentType", refs["appointmentTypeId"]),
        "businessId": to_global_id("Business", refs["businessId"]),
    }
    ends = FREE_SLOT + timedelta(minutes=17)
    created = await book(gw, global_refs, endsAt=iso(ends))
    assert created["endsAt"] == iso(ends)
    ((method, path, body),) = wire.writes()
    assert (method, path) == ("POST", APPOINTMENTS)
    assert body == {
        "patient_id": refs["patientId"],
        "practitioner_id": refs["practitionerId"],
        "appointment_type_id": refs["appointmentTypeId"],
        "business_id": refs["businessId"],
        "starts_at": iso(FREE_SLOT),
        "ends_at": iso(ends),
    }


async def test_repeating_create_books_the_series_and_shows_its_repeats(gw: Gateway, refs, sandbox):
    before = sandbox.state.sandbox.count_appointments("a")
    document = mutation(
        "createAppointment",
        "CreateAppointmentInput",
        APPOINTMENT + " repeats { totalCount nodes { startsAt repeatedFrom { id } } }",
    )
    rule = {"repeatType": "WEEKLY", "numberOfRepeats": 3, "repeatingInterval": 2}
    payload = await write(gw, document, {**refs, "startsAt": iso(FREE_SLOT), "repeatRule": rule})

    origin = payload["appointment"]
    assert origin["repeatRule"] == rule
    assert origin["repeats"]["totalCount"] == 3
    assert [n["startsAt"] for n in origin["repeats"]["nodes"]] == [
        iso(FREE_SLOT + timedelta(weeks=2 * k)) for k in (1, 2, 3)
    ]
    assert {n["repeatedFrom"]["id"] for n in origin["repeats"]["nodes"]} == {origin["id"]}
    assert sandbox.state.sandbox.count_appointments("a") == before + 4
    assert sandbox_writes(gw) == {f"POST {APPOINTMENTS}": 1}
    assert (await read(gw, origin["id"]))["repeats"]["totalCount"] == 3


async def test_update_sends_only_the_fields_given(gw: Gateway, refs, wire: Wire):
    created = await book(gw, refs, notes="before", endsAt=iso(FREE_SLOT + timedelta(minutes=17)))
    payload = await write(gw, UPDATE, {"id": created["id"], "notes": "after"})

    assert payload["userErrors"] == []
    updated = payload["appointment"]
    assert updated["notes"] == "after"
    assert (updated["startsAt"], updated["endsAt"]) == (created["startsAt"], created["endsAt"])
    assert wire.writes()[-1] == (
        "PATCH",
        f"{APPOINTMENTS}/{created['clinikoId']}",
        {"notes": "after"},
    )
    assert (await read(gw, created["id"]))["notes"] == "after"


async def test_update_with_null_clears_notes_and_recomputes_the_end(gw: Gateway, refs, wire: Wire):
    created = await book(gw, refs, notes="to clear", endsAt=iso(FREE_SLOT + timedelta(minutes=17)))
    payload = await write(gw, UPDATE, {"id": created["clinikoId"], "notes": None, "endsAt": None})

    updated = payload["appointment"]
    assert updated["notes"] is None
    minutes = updated["appointmentType"]["durationInMinutes"]
    assert minutes != 17
    assert updated["endsAt"] == iso(FREE_SLOT + timedelta(minutes=minutes))
    assert wire.writes()[-1][2] == {"notes": None, "ends_at": None}
    row = stored(gw, created["clinikoId"])
    assert row["notes"] is None
    assert row["ends_at"] == iso(FREE_SLOT + timedelta(minutes=minutes))


async def test_cancel_shows_the_cancellation_and_reads_back(gw: Gateway, refs, wire: Wire):
    created = await book(gw, refs)
    payload = await write(
        gw, CANCEL, {"id": created["id"], "reason": "SICK", "note": "Flu, will rebook"}
    )

    cancelled = payload["appointment"]
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["cancelledAt"] is not None
    assert cancelled["cancellation"] == {
        "reason": "SICK",
        "reasonCode": 30,
        "note": "Flu, will rebook",
    }
    assert wire.writes()[-1] == (
        "PATCH",
        f"{APPOINTMENTS}/{created['clinikoId']}/cancel",
        {
            "cancellation_reason": 30,
            "apply_to_repeats": False,
            "cancellation_note": "Flu, will rebook",
        },
    )
    read_back = await read(gw, created["id"])
    assert read_back["status"] == "CANCELLED"
    assert read_back["cancellation"] == cancelled["cancellation"]


async def test_cancel_with_apply_to_repeats_cancels_this_and_later_ones(gw: Gateway, refs):
    document = mutation(
        "createAppointment", "CreateAppointmentInput", "id repeats { nodes { id clinikoId } }"
    )
    rule = {"repeatType": "DAILY", "numberOfRepeats": 3}
    payload = await write(gw, document, {**refs, "startsAt": iso(FREE_SLOT), "repeatRule": rule})
    origin = payload["appointment"]["id"]
    first, second, third = (n["id"] for n in payload["appointment"]["repeats"]["nodes"])

    payload = await write(gw, CANCEL, {"id": second, "reason": "AWAY", "applyToRepeats": True})
    assert payload["appointment"]["status"] == "CANCELLED"

    statuses = {i: (await read(gw, i))["status"] for i in (origin, first, second, third)}
    assert statuses == {
        origin: "BOOKED",
        first: "BOOKED",
        second: "CANCELLED",
        third: "CANCELLED",
    }
    assert (await read(gw, origin))["repeats"]["totalCount"] == 1  # cancelled ones are hidden


async def test_archive_shows_archived_and_reads_back(gw: Gateway, refs):
    created = await book(gw, refs)
    payload = await write(gw, ARCHIVE, {"id": created["id"]})
    archived = payload["appointment"]
    assert archived["status"] == "ARCHIVED"
    assert archived["archivedAt"] is not None
    assert (await read(gw, created["id"]))["status"] == "ARCHIVED"


async def test_booked_cancelled_and_archived_through_the_gateway_the_sandbox_has_exactly_that(
    gw: Gateway, refs, sandbox
):
    before = sandbox.state.sandbox.count_appointments("a")
    created = await book(gw, refs, notes="kept")
    await write(gw, CANCEL, {"id": created["id"], "reason": "WORK", "note": "Shift moved"})
    await write(gw, ARCHIVE, {"id": created["id"]})

    assert sandbox_writes(gw) == {
        f"POST {APPOINTMENTS}": 1,
        f"PATCH {APPOINTMENTS}/{{id}}/cancel": 1,
        f"POST {APPOINTMENTS}/{{id}}/archive": 1,
    }
    assert sandbox.state.sandbox.count_appointments("a") == before + 1
    row = stored(gw, created["clinikoId"])
    assert row["notes"] == "kept"
    assert (row["cancellation_reason"], row["cancellation_note"]) == (60, "Shift moved")
    assert row["cancelled_at"] is not None
    assert row["archived_at"] is not None
    assert row["deleted_at"] is None
    assert row["starts_at"] == iso(FREE_SLOT)


async def test_later_fields_of_one_operation_see_the_write_not_a_cached_list(gw: Gateway, refs):
    """Two bookings in one document: the second payload's patient list includes both."""
    counted = (
        'patient { appointments(filter: {startsAt: {gte: "'
        + iso(FREE_SLOT)
        + '"}}) { totalCount } }'
    )
    document = f"""
    mutation Two($one: CreateAppointmentInput!, $two: CreateAppointmentInput!) {{
      one: createAppointment(input: $one) {{ appointment {{ {counted} }} {ERRORS} }}
      two: createAppointment(input: $two) {{ appointment {{ {counted} }} {ERRORS} }}
    }}
    """
    later = iso(FREE_SLOT + timedelta(hours=3))
    body = await gw.query(
        document,
        {"one": {**refs, "startsAt": iso(FREE_SLOT)}, "two": {**refs, "startsAt": later}},
    )
    assert "errors" not in body
    assert body["data"]["one"]["appointment"]["patient"]["appointments"]["totalCount"] == 1
    assert body["data"]["two"]["appointment"]["patient"]["appointments"]["totalCount"] == 2


# --- validation before the upstream call ----------------------------------------------------


def _create(refs: dict[str, str], **changes: Any) -> dict[str, Any]:
    return {**refs, "startsAt": iso(FREE_SLOT), **changes}


CREATE_FAILURES = [
    pytest.param({"patientId": "not-an-id"}, ["input", "patientId"], "INVALID", id="malformed-id"),
    pytest.param(
        {"patientId": "007"}, ["input", "patientId"], "INVALID", id="id-with-leading-zeros"
    ),
    pytest.param(
        {"practitionerId": to_global_id("Patient", "1")},
        ["input", "practitionerId"],
        "INVALID",
        id="global-id-of-another-type",
    ),
    pytest.param({"endsAt": iso(FREE_SLOT)}, ["input", "endsAt"], "INVALID", id="ends-at-start"),
    pytest.param(
        {"endsAt": iso(FREE_SLOT - timedelta(minutes=5))},
        ["input", "endsAt"],
        "INVALID",
        id="ends-before-start",
    ),
    pytest.param(
        {"repeatRule": {"repeatType": "DAILY", "numberOfRepeats": 3, "repeatingInterval": 0}},
        ["input", "repeatRule", "repeatingInterval"],
        "OUT_OF_RANGE",
        id="interval-0",
    ),
    pytest.param(
        {"repeatRule": {"repeatType": "DAILY", "numberOfRepeats": 3, "repeatingInterval": 101}},
        ["input", "repeatRule", "repeatingInterval"],
        "OUT_OF_RANGE",
        id="interval-101",
    ),
    pytest.param(
        {"repeatRule": {"repeatType": "WEEKLY", "numberOfRepeats": 0}},
        ["input", "repeatRule", "numberOfRepeats"],
        "OUT_OF_RANGE",
        id="repeats-0",
    ),
    pytest.param(
        {"repeatRule": {"repeatType": "WEEKLY", "numberOfRepeats": 52}},
        ["input", "repeatRule", "numberOfRepeats"],
        "OUT_OF_RANGE",
        id="repeats-52",
    ),
    pytest.param({"notes": "x" * 10_001}, ["input", "notes"], "TOO_LONG", id="notes-too-long"),
    pytest.param({"idempotencyKey": "  "}, ["input", "idempotencyKey"], "INVALID", id="blank-key"),
    pytest.param(
        {"idempotencyKey": "k" * 256}, ["input", "idempotencyKey"], "TOO_LONG", id="long-key"
    ),
]


@pytest.mark.parametrize(("changes", "field", "code"), CREATE_FAILURES)
async def test_invalid_create_is_a_user_error_and_sends_nothing(
    gw: Gateway, refs, changes, field, code
):
    payload = await write(gw, CREATE, _create(refs, **changes))
    assert payload["appointment"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)]
    assert payload["userErrors"][0]["message"]
    assert gw.sandbox_requests == 0


async def test_the_limits_themselves_are_accepted(gw: Gateway, refs):
    rule = {"repeatType": "MONTHLY", "numberOfRepeats": 1, "repeatingInterval": 100}
    created = await book(gw, refs, notes="x" * 10_000, repeatRule=rule)
    assert created["repeatRule"] == rule
    assert len(created["notes"]) == 10_000


async def test_every_problem_is_reported_at_once(gw: Gateway, refs):
    payload = await write(
        gw,
        CREATE,
        _create(
            refs,
            businessId="x",
            endsAt=iso(FREE_SLOT),
            repeatRule={"repeatType": "DAILY", "numberOfRepeats": 99, "repeatingInterval": 0},
        ),
    )
    assert sorted(tuple(e["field"]) for e in payload["userErrors"]) == [
        ("input", "businessId"),
        ("input", "endsAt"),
        ("input", "repeatRule", "numberOfRepeats"),
        ("input", "repeatRule", "repeatingInterval"),
    ]
    assert gw.sandbox_requests == 0


UPDATE_FAILURES = [
    pytest.param({"id": "nope", "notes": "x"}, ["input", "id"], "INVALID", id="malformed-id"),
    pytest.param(
        {"id": to_global_id("Patient", "5"), "notes": "x"},
        ["input", "id"],
        "INVALID",
        id="id-of-a-patient",
    ),
    pytest.param({"id": "5", "startsAt": None}, ["input", "startsAt"], "REQUIRED", id="null-start"),
    pytest.param(
        {"id": "5", "practitionerId": None}, ["input", "practitionerId"], "REQUIRED", id="null-ref"
    ),
    pytest.param({"id": "5"}, ["input"], "REQUIRED", id="nothing-to-change"),
    pytest.param(
        {"id": "5", "startsAt": iso(FREE_SLOT), "endsAt": iso(FREE_SLOT)},
        ["input", "endsAt"],
        "INVALID",
        id="ends-at-start",
    ),
    pytest.param(
        {"id": "5", "repeatRule": {"repeatType": "DAILY", "numberOfRepeats": 52}},
        ["input", "repeatRule", "numberOfRepeats"],
        "OUT_OF_RANGE",
        id="repeats-52",
    ),
    pytest.param(
        {"id": "5", "notes": "x" * 10_001}, ["input", "notes"], "TOO_LONG", id="notes-too-long"
    ),
]


@pytest.mark.parametrize(("input", "field", "code"), UPDATE_FAILURES)
async def test_invalid_update_is_a_user_error_and_sends_nothing(gw: Gateway, input, field, code):
    payload = await write(gw, UPDATE, input)
    assert payload["appointment"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)]
    assert gw.sandbox_requests == 0


CANCEL_FAILURES = [
    pytest.param(
        {"id": "5", "reason": "COVID_19_RELATED"}, ["input", "reason"], "INVALID", id="covid"
    ),
    pytest.param({"id": "5", "reason": "UNKNOWN"}, ["input", "reason"], "INVALID", id="unknown"),
    pytest.param(
        {"id": "5", "reason": "SICK", "note": "x" * 10_001},
        ["input", "note"],
        "TOO_LONG",
        id="note-too-long",
    ),
    pytest.param({"id": "x5", "reason": "SICK"}, ["input", "id"], "INVALID", id="malformed-id"),
]


@pytest.mark.parametrize(("input", "field", "code"), CANCEL_FAILURES)
async def test_invalid_cancel_is_a_user_error_and_sends_nothing(gw: Gateway, input, field, code):
    payload = await write(gw, CANCEL, input)
    assert payload["appointment"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)]
    assert gw.sandbox_requests == 0


async def test_covid_reason_is_refused_with_the_accepted_ones_named(gw: Gateway):
    payload = await write(gw, CANCEL, {"id": "5", "reason": "COVID_19_RELATED"})
    (error,) = payload["userErrors"]
    assert "COVID_19_RELATED" in error["message"]
    assert "FEELING_BETTER" in error["message"]


async def test_invalid_archive_is_a_user_error_and_sends_nothing(gw: Gateway):
    payload = await write(gw, ARCHIVE, {"id": "twelve"})
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["input", "id"], "INVALID")
    ]
    assert gw.sandbox_requests == 0


# --- upstream answers -----------------------------------------------------------------------


async def test_unknown_practitioner_is_a_user_error_at_its_field(gw: Gateway, refs, sandbox):
    before = sandbox.state.sandbox.count_appointments("a")
    payload = await write(gw, CREATE, _create(refs, practitionerId="999999999"))

    assert payload["appointment"] is None
    assert payload["userErrors"] == [
        {
            "field": ["input", "practitionerId"],
            "message": "practitionerId does not name a record in this account.",
            "code": "NOT_FOUND",
        }
    ]
    assert sandbox_writes(gw) == {f"POST {APPOINTMENTS}": 1}
    assert sandbox.state.sandbox.count_appointments("a") == before


async def test_patient_case_of_another_patient_is_a_user_error_at_its_field(
    gw: Gateway, refs, sandbox
):
    case_id = sandbox.state.sandbox.store.conn.execute(
        "SELECT id FROM patient_cases WHERE account = 'a' AND patient_id != ? ORDER BY id",
        (int(refs["patientId"]),),
    ).fetchone()[0]
    created = await book(gw, refs)
    payload = await write(gw, UPDATE, {"id": created["id"], "patientCaseId": str(case_id)})
    assert payload["appointment"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["input", "patientCaseId"], "INVALID")
    ]
    assert stored(gw, created["clinikoId"])["patient_case_id"] is None


async def test_update_of_a_missing_appointment_is_a_not_found_error(gw: Gateway):
    body = await gw.query(UPDATE, {"input": {"id": "999999999", "notes": "x"}})
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert sandbox_writes(gw) == {f"PATCH {APPOINTMENTS}/{{id}}": 1}


async def test_cancel_of_an_archived_appointment_is_a_not_found_error(gw: Gateway, refs):
    created = await book(gw, refs)
    await write(gw, ARCHIVE, {"id": created["id"]})
    body = await gw.query(CANCEL, {"input": {"id": created["id"], "reason": "SICK"}})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert stored(gw, created["clinikoId"])["cancelled_at"] is None


# --- no duplicate bookings ----------------------------------------------------------------


async def test_create_whose_answer_is_lost_is_not_sent_again(gw: Gateway, refs, wire, sandbox):
    before = sandbox.state.sandbox.count_appointments("a")
    wire.lose_answers_to.add("POST")
    body = await gw.query(CREATE, {"input": _create(refs)})

    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "UPSTREAM_TIMEOUT"
    assert [(m, p) for m, p, _ in wire.writes()] == [("POST", APPOINTMENTS)]
    assert sandbox_writes(gw) == {f"POST {APPOINTMENTS}": 1}
    assert sandbox.state.sandbox.count_appointments("a") == before + 1  # it DID store it


async def test_retry_after_a_lost_answer_with_the_same_key_is_told_to_check(
    gw: Gateway, refs, wire, sandbox
):
    before = sandbox.state.sandbox.count_appointments("a")
    input = _create(refs, idempotencyKey="booking-7f3a")
    wire.lose_answers_to.add("POST")
    first = await gw.query(CREATE, {"input": input})
    assert first["errors"][0]["extensions"]["code"] == "UPSTREAM_TIMEOUT"

    wire.lose_answers_to.clear()  # the network is fine now; the key still must not re-send
    payload = await write(gw, CREATE, input)
    assert payload["appointment"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["input", "idempotencyKey"], "IDEMPOTENCY_KEY_OUTCOME_UNKNOWN")
    ]
    assert sandbox_writes(gw) == {f"POST {APPOINTMENTS}": 1}
    assert sandbox.state.sandbox.count_appointments("a") == before + 1

    fresh = await book(gw, refs, idempotencyKey="booking-7f3a-second-try")
    assert fresh["status"] == "BOOKED"
    assert sandbox_writes(gw) == {f"POST {APPOINTMENTS}": 2}


async def test_repeat_with_the_same_key_returns_the_first_booking(gw: Gateway, refs, sandbox):
    before = sandbox.state.sandbox.count_appointments("a")
    input = _create(refs, idempotencyKey="k-1", notes="once")
    first = await book(gw, refs, **{k: v for k, v in input.items() if k not in refs})
    await write(gw, CANCEL, {"id": first["id"], "reason": "OTHER"})

    again = await write(gw, CREATE, input)
    assert again["userErrors"] == []
    assert again["appointment"]["id"] == first["id"]
    assert again["appointment"]["status"] == "CANCELLED"  # as it is now, not as it was
    assert again["appointment"]["patient"] == first["patient"]
    assert sandbox_writes(gw)[f"POST {APPOINTMENTS}"] == 1
    assert sandbox.state.sandbox.count_appointments("a") == before + 1


async def test_same_key_with_global_ids_is_the_same_input(gw: Gateway, refs):
    first = await book(gw, refs, idempotencyKey="k-2")
    again = await book(
        gw,
        {**refs, "patientId": to_global_id("Patient", refs["patientId"])},
        idempotencyKey="k-2",
    )
    assert again["id"] == first["id"]
    assert sandbox_writes(gw) == {f"POST {APPOINTMENTS}": 1}


async def test_same_key_with_another_input_is_refused(gw: Gateway, refs):
    await book(gw, refs, idempotencyKey="k-3")
    payload = await write(gw, CREATE, _create(refs, idempotencyKey="k-3", notes="different"))
    assert payload["appointment"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["input", "idempotencyKey"], "IDEMPOTENCY_KEY_REUSED")
    ]
    assert sandbox_writes(gw) == {f"POST {APPOINTMENTS}": 1}


async def test_a_refused_first_attempt_frees_the_key(gw: Gateway, refs):
    refused = await write(
        gw, CREATE, _create(refs, practitionerId="999999999", idempotencyKey="k-4")
    )
    assert refused["userErrors"][0]["code"] == "NOT_FOUND"
    corrected = await book(gw, refs, idempotencyKey="k-4")
    assert corrected["status"] == "BOOKED"
    assert sandbox_writes(gw) == {f"POST {APPOINTMENTS}": 2}


async def test_concurrent_creates_with_one_key_make_one_post(gw: Gateway, refs, wire, sandbox):
    before = sandbox.state.sandbox.count_appointments("a")
    wire.hold_posts = asyncio.Event()
    request = {"query": CREATE, "variables": {"input": _create(refs, idempotencyKey="k-5")}}

    first = asyncio.ensure_future(gw.http.post("/graphql", json=request))
    await asyncio.wait_for(wire.post_arrived.wait(), 5)
    second = asyncio.ensure_future(gw.http.post("/graphql", json=request))
    await asyncio.sleep(0.1)  # the second is in, waiting on the key, not sending
    assert not second.done()
    assert len(wire.writes()) == 1
    wire.hold_posts.set()
    answers = [r.json() for r in await asyncio.gather(first, second)]

    ids = {a["data"]["createAppointment"]["appointment"]["id"] for a in answers}
    assert len(ids) == 1
    assert all(a["data"]["createAppointment"]["userErrors"] == [] for a in answers)
    assert [(m, p) for m, p, _ in wire.writes()] == [("POST", APPOINTMENTS)]
    assert sandbox_writes(gw) == {f"POST {APPOINTMENTS}": 1}
    assert sandbox.state.sandbox.count_appointments("a") == before + 1


# --- the transport of mutations -------------------------------------------------------------


async def test_mutations_are_refused_over_get(gw: Gateway, refs):
    document = (
        "mutation { createAppointment(input: {"
        + ", ".join(f'{k}: "{v}"' for k, v in _create(refs).items())
        + "}) { appointment { id } } }"
    )
    response = await gw.http.get("/graphql", params={"query": document})
    assert response.status_code == 405  # as the GraphQL-over-HTTP spec requires
    assert response.headers["allow"] == "POST"
    assert "not allowed when using GET" in response.text
    assert gw.sandbox_requests == 0


async def test_a_malformed_document_runs_no_mutation(gw: Gateway, refs):
    document = CREATE.replace("userErrors {", "userErrors { nosuchfield ")
    body = await gw.query(document, {"input": _create(refs)})
    assert "data" not in body
    assert body["errors"]
    assert gw.sandbox_requests == 0


async def test_ill_typed_variables_run_no_mutation(gw: Gateway, refs):
    body = await gw.query(CREATE, {"input": _create(refs, startsAt="next tuesday")})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert gw.sandbox_requests == 0
