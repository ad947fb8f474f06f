"""Outside edits reach the replica within the staleness bound.

Each test changes the sandbox "in Cliniko's web app" (``/_sandbox/webapp/a``: not through
the API, so only the replica's polls can find out), then reads normally until the change
shows, and fails if it takes longer than the bound: the appointments' poll interval plus
a second, the reference interval plus a second for a patient's name, the deletion-check
interval plus a second for a row removed outright.  Every read that shows it is served by
the replica (no upstream request): the change arrived by polling, not by reading through.

The seconds each change took to show are recorded (``record_property``, and printed:
``pytest -s`` or ``-rP`` shows them).

Also here: ``extensions.freshness.asOf`` is the poll the answer relied on, and a replica
whose polls are stuck past ``sync_max_staleness`` is not read from until one comes back.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from appointments_gateway.resolvers.ids import to_global_id
from tests.conftest import Serve

from .conftest import (
    DELETION_CHECK_INTERVAL,
    REFERENCE_INTERVAL,
    SLACK,
    SYNC_INTERVAL,
    Answer,
    Held,
    Replicated,
    day_around,
    eventually,
    is_poll,
    iso,
    make_sandbox,
    open_replicated,
    parse_time,
)

DAY = """
query($filter: AppointmentFilter) {
  appointments(first: 500, filter: $filter) {
    totalCount
    edges { node { id clinikoId notes status startsAt cancelledAt archivedAt } }
  }
}
"""
BY_ID = """
query($id: ID!) {
  appointment(id: $id) { id clinikoId notes status startsAt patient { id firstName } }
}
"""

Recorder = Callable[[str, object], None]


def ids_of(answer: Answer) -> dict[str, dict[str, Any]]:
    return {e["node"]["clinikoId"]: e["node"] for e in answer.data["appointments"]["edges"]}


async def replica_read(gw: Replicated, document: str, variables: dict[str, Any]) -> Answer:
    """A normal read the replica serves: no upstream request, ``source: replica``."""
    answer = await gw.query(document, variables)
    assert not answer.errors, answer.errors
    assert answer.source == "replica", answer.body["extensions"]
    assert answer.requests == 0, answer.body["extensions"]
    return answer


async def shows(
    gw: Replicated,
    record: Recorder,
    change: str,
    seen: Callable[[], Awaitable[bool]],
    *,
    bound: float,
) -> float:
    """Read until ``seen()`` is true (each read replica-served); the seconds it took."""

    async def check() -> bool | None:
        return True if await seen() else None

    _, elapsed = await eventually(check, within=bound, what=f"{change} showing in a read")
    record(f"{change}: edit to visible (s)", round(elapsed, 3))
    print(f"{change}: visible after {elapsed:.3f} s (bound {bound:.1f} s)")
    return elapsed


POLL_BOUND = SYNC_INTERVAL + SLACK


async def test_an_edited_note(gw: Replicated, record_property: Recorder) -> None:
    row = gw.live()
    target, around = str(row["id"]), {"startsAt": day_around(row["starts_at"])}
    await gw.edit("PATCH", f"individual_appointments/{target}", {"notes": "Use the side door"})

    async def seen() -> bool:
        by_id = await replica_read(gw, BY_ID, {"id": target})
        day = await replica_read(gw, DAY, {"filter": around})
        notes = {by_id.data["appointment"]["notes"], ids_of(day)[target]["notes"]}
        return notes == {"Use the side door"}

    await shows(gw, record_property, "notes edit", seen, bound=POLL_BOUND)


async def test_a_cancel(gw: Replicated, record_property: Recorder) -> None:
    row = gw.live()
    target, around = str(row["id"]), day_around(row["starts_at"])
    await gw.edit("POST", f"individual_appointments/{target}/cancel")

    async def seen() -> bool:
        default = await replica_read(gw, DAY, {"filter": {"startsAt": around}})
        included = await replica_read(
            gw, DAY, {"filter": {"startsAt": around, "cancelled": "INCLUDE"}}
        )
        node = ids_of(included).get(target)
        return target not in ids_of(default) and node is not None and node["status"] == "CANCELLED"

    await shows(gw, record_property, "cancel", seen, bound=POLL_BOUND)


async def test_an_archive(gw: Replicated, record_property: Recorder) -> None:
    row = gw.live()
    target, around = str(row["id"]), day_around(row["starts_at"])
    await gw.edit("POST", f"individual_appointments/{target}/archive")

    async def seen() -> bool:
        default = await replica_read(gw, DAY, {"filter": {"startsAt": around}})
        only = await replica_read(gw, DAY, {"filter": {"startsAt": around, "archived": "ONLY"}})
        node = ids_of(only).get(target)
        return target not in ids_of(default) and node is not None and node["status"] == "ARCHIVED"

    await shows(gw, record_property, "archive", seen, bound=POLL_BOUND)


async def test_a_create(gw: Replicated, record_property: Recorder) -> None:
    row = gw.live()
    created = await gw.edit_json(
        "POST",
        "individual_appointments",
        {
            "patient_id": row["patient_id"],
            "practitioner_id": row["practitioner_id"],
            "appointment_type_id": row["appointment_type_id"],
            "business_id": row["business_id"],
            "starts_at": row["starts_at"],
            "notes": "Booked by phone",
        },
    )
    new = str(created["id"])
    around = {"startsAt": day_around(row["starts_at"])}

    async def seen() -> bool:
        day = await replica_read(gw, DAY, {"filter": around})
        node = ids_of(day).get(new)
        return node is not None and node["notes"] == "Booked by phone"

    await shows(gw, record_property, "create", seen, bound=POLL_BOUND)


async def test_a_move_out_of_the_window(gw: Replicated, record_property: Recorder) -> None:
    """Moved far beyond ``sync_days_ahead``: gone from the replica, still read by id upstream."""
    row = gw.live()
    target, around = str(row["id"]), {"startsAt": day_around(row["starts_at"])}
    coverage = gw.replica.coverage
    assert coverage is not None
    away = (coverage[1] + timedelta(days=30)).replace(minute=0, second=0, microsecond=0)
    await gw.edit("PATCH", f"individual_appointments/{target}", {"starts_at": iso(away)})

    async def seen() -> bool:
        day = await replica_read(gw, DAY, {"filter": around})
        return target not in ids_of(day)

    await shows(gw, record_property, "move out of the window", seen, bound=POLL_BOUND)
    assert target not in gw.replica.appointments
    by_id = await gw.query(BY_ID, {"id": target})
    assert by_id.requests > 0, by_id.body["extensions"]
    assert by_id.source in ("upstream", "mixed"), by_id.body["extensions"]
    assert parse_time(by_id.data["appointment"]["startsAt"]) == away
    there = {
        "startsAt": {"gte": iso(away - timedelta(hours=1)), "lt": iso(away + timedelta(hours=1))}
    }
    far = await gw.query(DAY, {"filter": there})
    assert far.requests > 0
    assert target in ids_of(far)


async def test_a_move_into_the_window(gw: Replicated, record_property: Recorder) -> None:
    coverage = gw.replica.coverage
    assert coverage is not None
    before = [
        row
        for row in gw.rows(
            "cancelled_at IS NULL AND archived_at IS NULL AND deleted_at IS NULL", window=False
        )
        if parse_time(row["starts_at"]) < coverage[0] - timedelta(days=1)
    ]
    assert before, "no appointment before the window"
    target = str(before[-1]["id"])
    assert target not in gw.replica.appointments
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=3, minute=0, second=0, microsecond=0
    )
    await gw.edit("PATCH", f"individual_appointments/{target}", {"starts_at": iso(tomorrow)})
    around = {"startsAt": day_around(iso(tomorrow))}

    async def seen() -> bool:
        day = await replica_read(gw, DAY, {"filter": around})
        return target in ids_of(day)

    await shows(gw, record_property, "move into the window", seen, bound=POLL_BOUND)


async def test_a_soft_delete_leaves_a_tombstone(gw: Replicated, record_property: Recorder) -> None:
    """Gone from lists, and a lookup by id answers NOT_FOUND with no upstream request."""
    row = gw.live()
    target, around = str(row["id"]), {"startsAt": day_around(row["starts_at"])}
    await gw.edit("DELETE", f"individual_appointments/{target}")

    async def seen() -> bool:
        day = await replica_read(gw, DAY, {"filter": {**around, "cancelled": "INCLUDE"}})
        return target not in ids_of(day)

    await shows(gw, record_property, "soft delete", seen, bound=POLL_BOUND)
    gone = await gw.query(BY_ID, {"id": to_global_id("Appointment", target)})
    assert gone.data == {"appointment": None}
    assert gone.codes == ["NOT_FOUND"]
    assert gone.requests == 0, gone.body["extensions"]
    assert gone.source == "replica", gone.body["extensions"]
    upstream = await gw.query(BY_ID, {"id": to_global_id("Appointment", target)}, fresh=True)
    assert (upstream.data, upstream.codes) == (gone.data, gone.codes)
    assert upstream.requests > 0


async def test_a_hard_delete_is_found_by_the_deletion_check(
    gw: Replicated, record_property: Recorder
) -> None:
    """Removed outright: no ``updated_at`` changes, only the coverage's count gives it away."""
    row = gw.live()
    target, around = str(row["id"]), {"startsAt": day_around(row["starts_at"])}
    before = gw.replicas.sync_stats.deletions_found
    response = await gw.web.delete(f"/_sandbox/webapp/a/individual_appointments/{target}?hard=true")
    assert response.status_code == 204, response.text

    async def seen() -> bool:
        day = await replica_read(gw, DAY, {"filter": around})
        return target not in ids_of(day)

    await shows(gw, record_property, "hard delete", seen, bound=DELETION_CHECK_INTERVAL + SLACK)
    assert gw.replicas.sync_stats.deletions_found > before
    gone = await gw.query(BY_ID, {"id": target})
    assert gone.data == {"appointment": None}
    assert gone.codes == ["NOT_FOUND"]


async def test_a_patient_renamed(gw: Replicated, record_property: Recorder) -> None:
    row = gw.live()
    target, patient = str(row["id"]), str(row["patient_id"])
    await gw.edit("PATCH", f"patients/{patient}", {"first_name": "Marguerite"})

    async def seen() -> bool:
        by_id = await replica_read(gw, BY_ID, {"id": target})
        return bool(by_id.data["appointment"]["patient"]["firstName"] == "Marguerite")

    await shows(gw, record_property, "patient rename", seen, bound=REFERENCE_INTERVAL + SLACK)


async def test_nothing_changes_without_an_edit(gw: Replicated) -> None:
    """A control: polls that find nothing leave the replica's answer as it was."""
    row = gw.live()
    around = {"startsAt": day_around(row["starts_at"]), "cancelled": "INCLUDE"}
    first = await replica_read(gw, DAY, {"filter": around})
    await gw.polled_after(datetime.now(UTC).timestamp())
    again = await replica_read(gw, DAY, {"filter": around})
    assert again.data == first.data
    upstream = await gw.query(DAY, {"filter": around}, fresh=True)
    assert upstream.data == first.data


AS_OF_READ = "query($id: ID!) { appointment(id: $id) { id notes } }"


async def test_as_of_is_the_poll_the_answer_relies_on(gw: Replicated) -> None:
    """``freshness.asOf``: every change made before it is in the answer.

    A replica-served answer relies on the poll that found the edit, so its ``asOf`` is
    after the edit; an upstream answer is as of the operation's start.
    """
    row = gw.live()
    target = str(row["id"])
    done = await gw.edit("PATCH", f"individual_appointments/{target}", {"notes": "Asked at"})
    await gw.polled_after(done)
    answer = await replica_read(gw, AS_OF_READ, {"id": target})
    assert answer.data["appointment"]["notes"] == "Asked at"
    as_of = parse_time(answer.body["extensions"]["freshness"]["asOf"]).timestamp()
    polled = gw.replica.sync_instant("appointments")
    assert polled is not None
    assert done - 0.001 <= as_of <= polled  # milliseconds, truncated
    before = time.time()
    upstream = await gw.query(AS_OF_READ, {"id": target}, fresh=True)
    stamp = parse_time(upstream.body["extensions"]["freshness"]["asOf"]).timestamp()
    assert before - 0.001 <= stamp <= time.time()


async def test_a_replica_behind_its_staleness_bound_is_not_read(serve: Serve) -> None:
    """Polls stuck (held in flight) past ``sync_max_staleness``: reads go upstream again.

    The replica's rows are still there, but they may lack any change since its last poll,
    so they are not answered from; once a poll comes back, they are again.
    """
    sandbox = make_sandbox()
    transport = Held(sandbox)
    async with open_replicated(serve, sandbox, transport=transport, sync_max_staleness=1.0) as gw:
        row = gw.live()
        target, around = str(row["id"]), {"filter": {"startsAt": day_around(row["starts_at"])}}
        await replica_read(gw, DAY, around)
        async with transport.holding(is_poll):
            await gw.edit("PATCH", f"individual_appointments/{target}", {"notes": "Stuck"})

            async def stale() -> bool | None:
                synced = gw.replica.sync_instant("appointments") or 0.0
                return True if time.time() - synced > 1.2 else None

            await eventually(stale, within=3.0, what="the replica falling behind")
            answer = await gw.query(DAY, around)
            assert answer.requests > 0, answer.body["extensions"]
            assert answer.source == "upstream", answer.body["extensions"]
            assert ids_of(answer)[target]["notes"] == "Stuck"
        done = time.time()
        await gw.polled_after(done)
        back = await replica_read(gw, DAY, around)
        assert ids_of(back)[target]["notes"] == "Stuck"
