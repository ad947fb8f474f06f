"""Read your writes: a mutation through the gateway is in the very next read.

The gateway applies the upstream's answer to a mutation to the replica before it
responds, so a read sent right after (no wait, no poll) is served from the replica and
shows the change.  A change that touches rows the answer does not show (a series
cancelled with its repeats) sends reads upstream until the next poll has fetched them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta
from functools import partial
from typing import Any

import pytest

from appointments_gateway.resolvers.ids import to_global_id
from tests.conftest import Serve

from .conftest import (
    Answer,
    Held,
    Replicated,
    day_around,
    eventually,
    is_patient_read,
    is_poll,
    is_span_read,
    iso,
    make_sandbox,
    open_replicated,
    parse_time,
)

DAY = """
query($filter: AppointmentFilter) {
  appointments(first: 500, filter: $filter) {
    totalCount
    edges { cursor node { id clinikoId notes status startsAt cancelledAt archivedAt
                          cancellation { reasonCode note } } }
  }
}
"""
BY_ID = """
query($id: ID!) {
  appointment(id: $id) { id clinikoId notes status startsAt updatedAt cancelledAt archivedAt }
}
"""
PAYLOAD = "appointment { id clinikoId notes status startsAt updatedAt } userErrors { code message }"
UPDATE = f"""
mutation($input: UpdateAppointmentInput!) {{ updateAppointment(input: $input) {{ {PAYLOAD} }} }}
"""
CANCEL = f"""
mutation($input: CancelAppointmentInput!) {{ cancelAppointment(input: $input) {{ {PAYLOAD} }} }}
"""
ARCHIVE = f"""
mutation($input: ArchiveAppointmentInput!) {{ archiveAppointment(input: $input) {{ {PAYLOAD} }} }}
"""
CREATE = f"""
mutation($input: CreateAppointmentInput!) {{ createAppointment(input: $input) {{ {PAYLOAD} }} }}
"""


def rows_of(answer: Answer) -> dict[str, dict[str, Any]]:
    """The list's rows by Cliniko id."""
    return {e["node"]["clinikoId"]: e["node"] for e in answer.data["appointments"]["edges"]}


async def local(gw: Replicated, document: str, variables: dict[str, Any]) -> Answer:
    """A normal read that the replica must serve (no request, ``source: replica``)."""
    answer = await gw.query(document, variables)
    assert not answer.errors, answer.errors
    assert answer.source == "replica", answer.body["extensions"]
    assert answer.requests == 0, answer.body["extensions"]
    return answer


async def mutate(gw: Replicated, document: str, input_: dict[str, Any]) -> dict[str, Any]:
    answer = await gw.query(document, {"input": input_})
    assert not answer.errors, answer.errors
    (payload,) = answer.data.values()
    assert payload["userErrors"] == [], payload["userErrors"]
    appointment: dict[str, Any] = payload["appointment"]
    return appointment


async def test_an_update_is_in_the_next_read(gw: Replicated) -> None:
    row = gw.live()
    target = str(row["id"])
    written = await mutate(gw, UPDATE, {"id": target, "notes": "Bring the referral letter"})
    by_id = await local(gw, BY_ID, {"id": target})
    assert by_id.data["appointment"]["notes"] == "Bring the referral letter"
    assert by_id.data["appointment"]["updatedAt"] == written["updatedAt"]
    day = await local(gw, DAY, {"filter": {"startsAt": day_around(row["starts_at"])}})
    assert rows_of(day)[target]["notes"] == "Bring the referral letter"


async def test_a_cancel_is_in_the_next_read(gw: Replicated) -> None:
    row = gw.live()
    target, around = str(row["id"]), day_around(row["starts_at"])
    cancelled = await mutate(gw, CANCEL, {"id": target, "reason": "SICK", "note": "Flu"})
    assert cancelled["status"] == "CANCELLED"
    default = await local(gw, DAY, {"filter": {"startsAt": around}})
    assert target not in rows_of(default)
    included = await local(gw, DAY, {"filter": {"startsAt": around, "cancelled": "INCLUDE"}})
    node = rows_of(included)[target]
    assert node["status"] == "CANCELLED"
    assert node["cancellation"] == {"reasonCode": 30, "note": "Flu"}


async def test_an_archive_is_in_the_next_read(gw: Replicated) -> None:
    row = gw.live()
    target, around = str(row["id"]), day_around(row["starts_at"])
    archived = await mutate(gw, ARCHIVE, {"id": target})
    assert archived["status"] == "ARCHIVED"
    default = await local(gw, DAY, {"filter": {"startsAt": around}})
    assert target not in rows_of(default)
    only = await local(gw, DAY, {"filter": {"startsAt": around, "archived": "ONLY"}})
    assert rows_of(only)[target]["status"] == "ARCHIVED"


async def test_a_create_is_in_the_next_read(gw: Replicated) -> None:
    row = gw.live()
    starts = row["starts_at"]
    created = await mutate(
        gw,
        CREATE,
        {
            "startsAt": starts,
            "patientId": str(row["patient_id"]),
            "practitionerId": str(row["practitioner_id"]),
            "appointmentTypeId": str(row["appointment_type_id"]),
            "businessId": str(row["business_id"]),
            "notes": "First visit",
        },
    )
    day = await local(gw, DAY, {"filter": {"startsAt": day_around(starts)}})
    assert rows_of(day)[created["clinikoId"]]["notes"] == "First visit"
    by_id = await local(gw, BY_ID, {"id": created["id"]})
    assert by_id.data["appointment"]["clinikoId"] == created["clinikoId"]


def series_in_window(gw: Replicated) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A live series origin in the window with at least two live repeats after it."""
    live = "cancelled_at IS NULL AND archived_at IS NULL AND deleted_at IS NULL"
    for origin in gw.rows(f"repeated_from_id IS NULL AND {live}"):
        repeats = gw.rows(f"repeated_from_id = ? AND {live}", origin["id"])
        if len(repeats) >= 2:
            return origin, repeats
    raise AssertionError("no series with repeats in the window")


def series_filter(origin: dict[str, Any], repeats: list[dict[str, Any]]) -> dict[str, Any]:
    """The series' span for its patient: the series and little else (a page holds it)."""
    return {
        "startsAt": {"gte": origin["starts_at"], "lte": repeats[-1]["starts_at"]},
        "patientIds": [str(origin["patient_id"])],
    }


async def test_a_series_cancelled_with_its_repeats_is_in_the_next_list_read(
    gw: Replicated,
) -> None:
    """The answer shows the origin only; the next list read still has every repeat cancelled.

    Until a poll has fetched the repeats the replica's lists are known to lag, so the read
    goes upstream; after it, the replica serves it.  The data is what counts, not where
    it came from.
    """
    origin, repeats = series_in_window(gw)
    series = [str(origin["id"]), *(str(r["id"]) for r in repeats)]
    await mutate(
        gw, CANCEL, {"id": series[0], "reason": "AWAY", "note": "Moved", "applyToRepeats": True}
    )
    span = series_filter(origin, repeats)
    included = await gw.query(DAY, {"filter": {**span, "cancelled": "INCLUDE"}})
    statuses = {i: rows_of(included)[i]["status"] for i in series}
    assert set(statuses.values()) == {"CANCELLED"}, statuses
    default = await gw.query(DAY, {"filter": span})
    assert not set(series) & set(rows_of(default))
    upstream = await gw.query(DAY, {"filter": {**span, "cancelled": "INCLUDE"}}, fresh=True)
    assert included.data == upstream.data


async def test_a_move_out_of_the_window_is_in_the_next_read(gw: Replicated) -> None:
    """Moved beyond the window through the gateway: gone from its day at once, and its
    lookup by id (now upstream's business) shows where it went."""
    row = gw.live()
    target = str(row["id"])
    coverage = gw.replica.coverage
    assert coverage is not None
    away = iso((coverage[1] + timedelta(days=20)).replace(minute=0, second=0, microsecond=0))
    moved = await mutate(gw, UPDATE, {"id": target, "startsAt": away})
    assert moved["startsAt"] == away
    day = await local(gw, DAY, {"filter": {"startsAt": day_around(row["starts_at"])}})
    assert target not in rows_of(day)
    by_id = await gw.query(BY_ID, {"id": target})
    assert by_id.data["appointment"]["startsAt"] == away
    assert by_id.requests > 0


async def test_a_series_booked_is_in_the_next_list_read(gw: Replicated) -> None:
    """Booking a series answers its first appointment only: the next list read still has
    every repeat (upstream until a poll fetched them, from the replica after)."""
    row = gw.live()
    booked = await mutate(
        gw,
        CREATE,
        {
            **create_input(row, row["starts_at"]),
            "repeatRule": {"repeatType": "WEEKLY", "numberOfRepeats": 3},
        },
    )
    start = parse_time(row["starts_at"])
    span = {
        "startsAt": {"gte": row["starts_at"], "lte": iso(start + timedelta(weeks=3))},
        "patientIds": [str(row["patient_id"])],
    }
    series = await gw.query(DAY, {"filter": span})
    assert not series.errors, series.errors
    mine = [n for n in rows_of(series).values() if n["notes"] == booked["notes"]]
    assert len(mine) == 4, mine
    done = time.time()
    await gw.polled_after(done)
    served = await local(gw, DAY, {"filter": span})
    assert served.data == series.data


@pytest.fixture
async def held(serve: Serve) -> AsyncIterator[tuple[Replicated, Held]]:
    """The gateway whose replica's polls can be held in flight."""
    sandbox = make_sandbox()
    transport = Held(sandbox)
    async with open_replicated(serve, sandbox, transport=transport) as gateway:
        yield gateway, transport


async def test_a_series_cancel_is_read_through_while_no_poll_has_come_back(
    held: tuple[Replicated, Held],
) -> None:
    """With the poll that would fetch the repeats held in flight, reads still see them.

    The replica knows its rows lag the write (``appointments_dirty``): a list by ids and
    a lookup by id of a repeat must then read through, not answer the row as it was.
    """
    gw, polls = held
    origin, repeats = series_in_window(gw)
    repeat = str(repeats[0]["id"])
    async with polls.holding(is_poll):
        await mutate(
            gw, CANCEL, {"id": str(origin["id"]), "reason": "AWAY", "applyToRepeats": True}
        )
        by_ids = await gw.query(
            DAY, {"filter": {"ids": [str(r["id"]) for r in repeats], "cancelled": "INCLUDE"}}
        )
        statuses = {node["clinikoId"]: node["status"] for node in rows_of(by_ids).values()}
        assert set(statuses.values()) == {"CANCELLED"}, statuses
        by_id = await gw.query(BY_ID, {"id": to_global_id("Appointment", repeat)})
        assert by_id.data["appointment"]["status"] == "CANCELLED"


async def test_a_poll_answered_before_a_write_does_not_undo_it(
    held: tuple[Replicated, Held],
) -> None:
    """A poll in flight across a write, with a row of that same second, comes back after.

    Cliniko stamps whole seconds: a row changed twice within one second has one
    ``updated_at`` for both versions.  A poll answered between the two changes and
    applied after the second must not replace the written row in the replica (the next
    read would show the first version).
    """
    gw, polls = held
    row = gw.live()
    target = str(row["id"])

    async def early_in_a_second() -> bool | None:
        return True if time.time() % 1.0 < 0.3 else None

    for _attempt in range(5):
        await eventually(early_in_a_second, within=1.5, what="the start of a second")
        first = await mutate(gw, UPDATE, {"id": target, "notes": "First version"})
        async with polls.holding(is_poll) as poll_held:
            await eventually(
                partial(_set, poll_held), within=2.0, what="a poll answered after the write"
            )
            second = await mutate(gw, UPDATE, {"id": target, "notes": "Second version"})
        if first["updatedAt"] != second["updatedAt"]:
            continue  # the second changed between the writes: try again
        # The held poll (it saw "First version") has been applied by now or is about to:
        # wait until the replica has taken it in, then read.
        before = gw.replica.sync_instant("appointments") or 0.0
        await eventually(
            partial(_after, gw, before), within=2.0, what="the held poll being applied"
        )
        answer = await local(gw, BY_ID, {"id": target})
        assert answer.data["appointment"]["notes"] == "Second version"
        return
    pytest.fail("could not make two writes within one second in five attempts")


async def _set(event: Any) -> bool | None:
    return True if event.is_set() else None


async def _after(gw: Replicated, instant: float) -> bool | None:
    synced = gw.replica.sync_instant("appointments")
    return True if synced is not None and synced > instant else None


def create_input(row: dict[str, Any], starts_at: str) -> dict[str, Any]:
    """A booking like ``row`` (same patient, practitioner, type, business) at ``starts_at``."""
    return {
        "startsAt": starts_at,
        "patientId": str(row["patient_id"]),
        "practitionerId": str(row["practitioner_id"]),
        "appointmentTypeId": str(row["appointment_type_id"]),
        "businessId": str(row["business_id"]),
        "notes": "Booked while the sync was reading",
    }


async def test_a_span_read_before_a_create_does_not_drop_it(
    held: tuple[Replicated, Held],
) -> None:
    """A deletion check re-reads a span; a booking made meanwhile is not in that answer.

    A hard delete makes the coverage's count differ, so the check reads the span holding
    the deleted row again and replaces it with the answer.  A booking created through the
    gateway in that span while the answer is in flight must survive the replacement.
    """
    gw, transport = held
    deleted, neighbour = gw.live(), gw.live(skip=1)
    response = await gw.web.delete(
        f"/_sandbox/webapp/a/individual_appointments/{deleted['id']}?hard=true"
    )
    assert response.status_code == 204, response.text
    found = gw.replicas.sync_stats.deletions_found
    async with AsyncExitStack() as polls_held:
        async with transport.holding(is_span_read) as span_held:
            await eventually(
                partial(_set, span_held), within=5.0, what="the deletion check's span read"
            )
            created = await mutate(gw, CREATE, create_input(neighbour, deleted["starts_at"]))
            # The sync waits for the span's answer: no poll runs until it is released, and
            # from then on polls are held, so no poll can mend what the replacement did.
            await polls_held.enter_async_context(transport.holding(is_poll))

        async def replaced() -> bool | None:
            return True if gw.replicas.sync_stats.deletions_found > found else None

        await eventually(replaced, within=2.0, what="the span replaced")
        day = await local(gw, DAY, {"filter": {"startsAt": day_around(deleted["starts_at"])}})
        assert str(deleted["id"]) not in rows_of(day)
        assert created["clinikoId"] in rows_of(day)


async def test_a_create_while_its_span_loads_is_not_lost(serve: Serve) -> None:
    """The first span of the load is read; a booking in it is made before it comes back.

    The booking's answer lands outside the coverage (not yet loaded) and the span's answer
    lacks it: once the span is covered, a read served from it must still show it.
    """
    sandbox = make_sandbox()
    transport = Held(sandbox)
    async with (
        open_replicated(serve, sandbox, transport=transport, start=False) as gw,
        AsyncExitStack() as polls_held,
    ):
        async with transport.holding(is_span_read) as span_held:
            await gw.query("{ version }")  # starts the replica
            await eventually(partial(_set, span_held), within=5.0, what="the first span read")
            coverage = gw.replica.coverage
            assert coverage is not None
            low = coverage[0] + timedelta(hours=2)
            row = next(r for r in gw.rows(window=False) if parse_time(r["starts_at"]) >= low)
            created = await mutate(gw, CREATE, create_input(row, row["starts_at"]))
            await polls_held.enter_async_context(transport.holding(is_poll))
        at = parse_time(row["starts_at"])

        async def covered() -> bool | None:
            span = gw.replica.coverage
            return True if span is not None and span[1] > at + timedelta(hours=1) else None

        await eventually(covered, within=2.0, what="the first span covered")
        around = {"gte": iso(at - timedelta(minutes=30)), "lt": iso(at + timedelta(minutes=30))}
        day = await local(gw, DAY, {"filter": {"startsAt": around}})
        assert created["clinikoId"] in rows_of(day)


PATIENT_SCREEN = """
query($id: ID!) {
  patient(id: $id) {
    appointments(first: 100, filter: {cancelled: INCLUDE}) {
      totalCount
      edges { cursor node { id clinikoId notes status startsAt } }
    }
  }
}
"""


async def test_a_patient_read_whole_across_a_create_keeps_the_booking(
    held: tuple[Replicated, Held],
) -> None:
    """A patient screen reads the patient whole; a booking for them is made meanwhile.

    The whole read's answer lacks the booking; once the replica holds the patient whole
    from it, the next patient screen and the booking's day must still show the booking.
    """
    gw, transport = held
    row = gw.live()
    patient = str(row["patient_id"])
    async with AsyncExitStack() as polls_held:
        async with transport.holding(is_patient_read) as read_held:
            screen = asyncio.create_task(gw.query(PATIENT_SCREEN, {"id": patient}))
            await eventually(partial(_set, read_held), within=5.0, what="the patient read whole")
            # From now on no poll can bring the booking in behind the whole read's back.
            await polls_held.enter_async_context(transport.holding(is_poll))
            created = await mutate(gw, CREATE, create_input(row, row["starts_at"]))
        first = await screen
        assert not first.errors, first.errors
        assert patient in gw.replica.complete_patients
        again = await local(gw, PATIENT_SCREEN, {"id": patient})
        listed = {e["node"]["clinikoId"] for e in again.data["patient"]["appointments"]["edges"]}
        assert created["clinikoId"] in listed
        day = await local(gw, DAY, {"filter": {"startsAt": day_around(row["starts_at"])}})
        assert created["clinikoId"] in rows_of(day)
