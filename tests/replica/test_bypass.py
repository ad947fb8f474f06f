"""Where the replica steps aside: asked to, switched off, outside its window, another key.

* ``Cache-Control: no-cache`` (or ``no-store``) reads upstream, whatever the replica holds;
* ``GATEWAY_SYNC=off`` runs no replica at all: every read is the upstream path's;
* a read that is not wholly inside the replica (a range beyond its window, or no upper
  bound) reads through, and answers what the upstream path answers;
* a read sent while the replica is still loading is answered (upstream), never refused;
* in forward mode every caller's key has its own replica, holding that account's rows
  only: one key never sees another account's rows, from the replica or otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from appointments_gateway.sandbox import DEMO_KEY_A, DEMO_KEY_B
from tests.conftest import Serve

from .conftest import (
    Answer,
    Replicated,
    basic,
    day_around,
    iso,
    make_sandbox,
    open_replicated,
)

DAY = """
query($filter: AppointmentFilter) {
  appointments(first: 100, filter: $filter) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id clinikoId startsAt status patient { id lastName } } }
  }
}
"""
BY_ID = "query($id: ID!) { appointment(id: $id) { id clinikoId startsAt } }"


def clinikos(answer: Answer) -> set[str]:
    return {e["node"]["clinikoId"] for e in answer.data["appointments"]["edges"]}


async def test_no_cache_reads_upstream(gw: Replicated) -> None:
    row = gw.live()
    variables = {"filter": {"startsAt": day_around(row["starts_at"])}}
    local = await gw.query(DAY, variables)
    assert (local.source, local.requests) == ("replica", 0)
    for directive in ("no-cache", "max-age=0, no-cache", "no-store"):
        upstream = await gw.query(DAY, variables, headers={"Cache-Control": directive})
        assert upstream.source == "upstream", (directive, upstream.body["extensions"])
        assert upstream.requests > 0
        assert upstream.data == local.data


async def test_with_sync_off_there_is_no_replica(serve: Serve) -> None:
    async with open_replicated(serve, start=False, sync=False) as gw:
        assert gw.app.state.replicas is None
        rows = await gw.query(
            DAY, {"filter": {"startsAt": day_around(booked_after_tomorrow(gw)["starts_at"])}}
        )
        again = await gw.query(
            DAY, {"filter": {"startsAt": day_around(booked_after_tomorrow(gw)["starts_at"])}}
        )
        for answer in (rows, again):
            assert not answer.errors, answer.errors
            assert answer.source == "upstream"
            assert answer.requests > 0
        assert again.data == rows.data
        metrics = (await gw.http.get("/metrics")).text
        assert "gateway_replica_" not in metrics


def booked_after_tomorrow(gw: Replicated) -> dict[str, Any]:
    """A booked appointment starting a day from now or later, read from the sandbox.

    Not from the replica: these tests run before it loaded, without one, or with two.
    """
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = gw.rows(
        "cancelled_at IS NULL AND archived_at IS NULL AND deleted_at IS NULL AND starts_at > ?",
        tomorrow,
        window=False,
    )
    assert rows, "no booked appointment after tomorrow"
    return rows[0]


async def same_through_upstream(gw: Replicated, variables: dict[str, Any]) -> Answer:
    """A read that is not inside the replica: it reads through, and answers as upstream."""
    local = await gw.query(DAY, variables)
    assert not local.errors, local.errors
    assert local.requests > 0, local.body["extensions"]
    assert local.source in ("upstream", "mixed"), local.body["extensions"]
    upstream = await gw.query(DAY, variables, fresh=True)
    assert upstream.data == local.data
    return local


async def test_a_range_beyond_the_window_reads_through(gw: Replicated) -> None:
    coverage = gw.replica.coverage
    assert coverage is not None
    # Put a booking beyond the window, so the range has something to find.
    row = gw.live()
    away = coverage[1] + timedelta(days=10)
    await gw.edit("PATCH", f"individual_appointments/{row['id']}", {"starts_at": iso(away)})
    beyond = {"gte": iso(away - timedelta(days=1)), "lt": iso(away + timedelta(days=1))}
    answer = await same_through_upstream(gw, {"filter": {"startsAt": beyond}})
    assert str(row["id"]) in clinikos(answer)
    # A range that starts inside the window and ends beyond it reads through too.
    straddling = {"gte": iso(coverage[1] - timedelta(days=1)), "lt": beyond["lt"]}
    await same_through_upstream(gw, {"filter": {"startsAt": straddling}})


async def test_no_upper_bound_reads_through(gw: Replicated) -> None:
    row = gw.live()
    answer = await same_through_upstream(gw, {"filter": {"startsAt": {"gte": row["starts_at"]}}})
    assert answer.data["appointments"]["totalCount"] > 0
    await same_through_upstream(gw, {"filter": {"practitionerIds": [str(row["practitioner_id"])]}})


async def test_reads_while_loading_are_answered(serve: Serve) -> None:
    """The first reads of a key start its replica; none waits for the load or fails."""
    async with open_replicated(serve, start=False) as gw:
        variables = {"filter": {"startsAt": day_around(booked_after_tomorrow(gw)["starts_at"])}}
        first = await gw.query(DAY, variables)
        assert not first.errors
        assert first.source == "upstream"
        second = await gw.query(DAY, variables)  # the replica has started; not loaded yet
        assert not second.errors
        assert second.data == first.data
        await gw.settled()
        loaded = await gw.query(DAY, variables)
        assert (loaded.source, loaded.requests) == ("replica", 0)
        assert loaded.data == first.data


def accounts_of(gw: Replicated, ids: set[str], table: str) -> set[str]:
    """The sandbox accounts the rows with these ids belong to."""
    conn = gw.sandbox.state.sandbox.store.conn
    found: set[str] = set()
    for row_id in ids:
        for (account,) in conn.execute(f"SELECT account FROM {table} WHERE id = ?", (int(row_id),)):
            found.add(account)
    return found


async def test_forward_mode_keeps_one_replica_per_key_with_its_own_rows(serve: Serve) -> None:
    sandbox = make_sandbox()
    async with open_replicated(
        serve, sandbox, auth="forward", api_key=None, headers=basic(DEMO_KEY_A)
    ) as a:
        b = Replicated(
            app=a.app,
            sandbox=sandbox,
            http=a.http,
            web=a.web,
            rest=a.rest,
            headers=basic(DEMO_KEY_B),
            account="b",
        )
        await b.query("{ version }")  # B's first read starts B's replica
        running = list(a.replicas.replicas())
        assert len(running) == 2
        for _, syncer in running:
            await syncer.loaded.wait()
        held = []
        for replica, _ in running:
            accounts = accounts_of(a, set(replica.appointments), "appointments")
            patients = accounts_of(a, set(replica.records["patients"]), "patients")
            assert len(accounts) == 1, accounts
            assert patients == accounts, (accounts, patients)
            held.append(accounts.pop())
        assert sorted(held) == ["a", "b"]

        # B reads its own day and finds none of A's rows there; A reads the same day.
        b_row = booked_after_tomorrow(b)
        variables = {"filter": {"startsAt": day_around(b_row["starts_at"])}}
        mine = await b.query(DAY, variables)
        assert not mine.errors, mine.errors
        assert accounts_of(a, clinikos(mine), "appointments") <= {"b"}
        assert str(b_row["id"]) in clinikos(mine)
        theirs = await a.query(DAY, variables)
        assert accounts_of(a, clinikos(theirs), "appointments") <= {"a"}
        assert not clinikos(mine) & clinikos(theirs)

        # A's appointment by id, asked by B: not found, though A's replica holds it.
        a_id = str(booked_after_tomorrow(a)["id"])
        assert any(a_id in replica.appointments for replica, _ in running)
        asked = await b.query(BY_ID, {"id": a_id})
        assert asked.data == {"appointment": None}
        assert asked.codes == ["NOT_FOUND"]
