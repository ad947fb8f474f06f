"""The replica's appointment events: what live updates deliver, derived as rows are applied.

Each outside edit (the sandbox's web-app door) makes exactly one event of the right kind,
with the row as it is now and the version before; polls that re-read the same rows (the
overlap every poll asks for, the deletion check's counts) make none; a write through the
gateway makes its event at once, and the poll that later fetches the same row none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from appointments_gateway.replica import AppointmentEvent, ChangeKind
from tests.replica.conftest import (
    DELETION_CHECK_INTERVAL,
    POLL_WAIT,
    Replicated,
    eventually,
)


@contextmanager
def watching(gw: Replicated) -> Iterator[list[AppointmentEvent]]:
    seen: list[AppointmentEvent] = []
    remove = gw.replicas.watch(lambda _key, events: seen.extend(events))
    try:
        yield seen
    finally:
        remove()


async def one_event(
    seen: list[AppointmentEvent], appointment_id: str, within: float = POLL_WAIT
) -> AppointmentEvent:
    async def found() -> AppointmentEvent | None:
        mine = [e for e in seen if e.row.id == appointment_id]
        return mine[0] if mine else None

    event, _ = await eventually(found, within=within, what=f"an event of {appointment_id}")
    return event


def body_like(row: dict[str, object]) -> dict[str, object]:
    return {
        name: row[name]
        for name in ("patient_id", "practitioner_id", "appointment_type_id", "business_id")
    }


async def test_each_outside_edit_makes_one_event_of_its_kind(gw: Replicated) -> None:
    rows = [{**row, "id": str(row["id"])} for row in (gw.live(skip=n) for n in range(5))]
    path = "individual_appointments/{}"
    with watching(gw) as seen:
        await gw.edit("PATCH", path.format(rows[0]["id"]), {"notes": "Moved to the afternoon"})
        await gw.edit("POST", path.format(rows[1]["id"]) + "/cancel", None)
        await gw.edit("POST", path.format(rows[2]["id"]) + "/archive", None)
        await gw.edit("DELETE", path.format(rows[3]["id"]), None)
        created = await gw.edit_json(
            "POST",
            "individual_appointments",
            {**body_like(rows[4]), "starts_at": rows[4]["starts_at"], "notes": "Walk-in"},
        )
        expected = {
            rows[0]["id"]: ChangeKind.UPDATED,
            rows[1]["id"]: ChangeKind.CANCELLED,
            rows[2]["id"]: ChangeKind.ARCHIVED,
            rows[3]["id"]: ChangeKind.DELETED,
            str(created["id"]): ChangeKind.CREATED,
        }
        events = {i: await one_event(seen, str(i)) for i in expected}
        # Several more polls re-read the same seconds (the overlap): nothing new.
        await gw.polled_after(gw.replica.now() + 1.0)
        await gw.polled_after(gw.replica.now())
    assert {i: e.kind for i, e in events.items()} == expected
    assert len(seen) == len(expected), [(e.kind, e.row.id) for e in seen]
    assert events[rows[0]["id"]].row.notes == "Moved to the afternoon"
    before = events[rows[0]["id"]].before
    assert before is not None
    assert before.notes != "Moved to the afternoon"
    assert events[rows[3]["id"]].row.deleted_at is not None
    assert events[str(created["id"])].before is None


async def test_a_row_removed_without_trace_is_deleted_by_the_deletion_check(
    gw: Replicated,
) -> None:
    row = gw.live(skip=7)
    with watching(gw) as seen:
        await gw.edit("DELETE", f"individual_appointments/{row['id']}?hard=true", None)
        event = await one_event(
            seen, str(row["id"]), within=POLL_WAIT + 4 * DELETION_CHECK_INTERVAL
        )
    assert event.kind is ChangeKind.DELETED
    assert event.row.id == str(row["id"])  # the last version known, with its id


async def test_nothing_happens_nothing_is_told(gw: Replicated) -> None:
    with watching(gw) as seen:
        # Polls and deletion checks go on (each re-reads rows the replica holds).
        await gw.polled_after(gw.replica.now())
        await asyncio.sleep(2 * DELETION_CHECK_INTERVAL)
        await gw.polled_after(gw.replica.now())
    assert seen == []


async def test_a_write_through_the_gateway_is_told_at_once_and_not_again(
    gw: Replicated,
) -> None:
    row_id = str(gw.live(skip=9)["id"])
    document = """mutation($id: ID!) {
      updateAppointment(input: {id: $id, notes: "Bring the referral"}) {
        appointment { id } userErrors { code }
      }
    }"""
    with watching(gw) as seen:
        answer = await gw.query(document, {"id": row_id})
        assert answer.data["updateAppointment"]["userErrors"] == []
        told = [e for e in seen if e.row.id == row_id]
        assert [e.kind for e in told] == [ChangeKind.UPDATED]  # before the poll
        await gw.polled_after(gw.replica.now() + 0.5)
        await gw.polled_after(gw.replica.now())
    assert [e.kind for e in seen if e.row.id == row_id] == [ChangeKind.UPDATED]
