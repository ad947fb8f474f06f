"""Live updates end to end in process: outside edits reach subscribers over graphql-transport-ws.

The gateway runs with uvicorn on a loopback port (on the test's loop, so its fan-out can
be inspected), over the in-process sandbox; edits come through the sandbox's web-app door,
as staff make them in Cliniko; subscribers are ``websockets`` clients speaking the
protocol message by message (``tests/live_ws.py``).  The 500-subscriber test runs the
subscription's stream in process instead (500 sockets would measure the client library),
through Strawberry's ``schema.subscribe`` with the gateway's own per-operation context.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.requests import HTTPConnection
from starlette.routing import WebSocketRoute

from appointments_gateway.gateway import create_app
from appointments_gateway.gateway.graphql import GatewayGraphQL
from appointments_gateway.resolvers.live import LiveUpdates
from appointments_gateway.sandbox import DEMO_KEY_A, DEMO_KEY_B
from tests.live_ws import TransportWS, changes, served_over_tcp
from tests.replica.conftest import (
    SANDBOX_ROOT,
    SANDBOX_URL,
    SLACK,
    SYNC_INTERVAL,
    Replicated,
    basic,
    eventually,
    make_sandbox,
    replica_settings,
)

DOCUMENT = """subscription Live($filter: AppointmentFilter) {
  appointmentChanged(filter: $filter) {
    kind
    appointment {
      id clinikoId notes status startsAt
      patient { firstName lastName }
      practitioner { displayName }
      business { businessName timeZoneIdentifier }
      appointmentType { name }
    }
  }
}"""
#: What the issue allows: the sync interval, plus a second.
BOUND = SYNC_INTERVAL + SLACK


@contextlib.asynccontextmanager
async def over_tcp(
    sandbox: Starlette | None = None, *, key: str = DEMO_KEY_A, **settings: Any
) -> AsyncIterator[tuple[Replicated, str]]:
    """The gateway with a replica, served over TCP; ``(gateway, host:port)``."""
    sandbox = sandbox or make_sandbox()
    app = create_app(
        replica_settings(**settings), upstream_transport=httpx.ASGITransport(app=sandbox)
    )
    async with (
        served_over_tcp(app) as address,
        httpx.AsyncClient(base_url=f"http://{address}") as http,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url=SANDBOX_ROOT) as web,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sandbox),
            base_url=SANDBOX_URL + "/",
            auth=(key, ""),
        ) as rest,
    ):
        yield Replicated(app=app, sandbox=sandbox, http=http, web=web, rest=rest), address


async def loaded(gw: Replicated, count: int = 1) -> None:
    async def ready() -> bool | None:
        running = list(gw.replicas.replicas())
        done = len(running) == count and all(s.loaded.is_set() for _, s in running)
        return True if done else None

    await eventually(ready, within=20, what="the replicas' load")


def live_of(gw: Replicated) -> LiveUpdates:
    live: LiveUpdates | None = gw.app.state.live
    assert live is not None
    return live


async def subscribed(gw: Replicated, count: int) -> None:
    async def registered() -> bool | None:
        return True if live_of(gw).active() == count else None

    await eventually(registered, within=5, what=f"{count} subscribers")


def create_body(row: dict[str, Any], notes: str) -> dict[str, Any]:
    names = ("patient_id", "practitioner_id", "appointment_type_id", "business_id", "starts_at")
    return {**{name: row[name] for name in names}, "notes": notes}


async def test_outside_edits_reach_a_subscriber_within_the_sync_interval_with_their_kind() -> None:
    async with over_tcp() as (gw, address):
        await gw.query("{ version }")
        await gw.settled()
        rows = [gw.live(skip=n) for n in range(5)]
        path = "individual_appointments/{}"
        edits = [
            ("UPDATED", "PATCH", path.format(rows[0]["id"]), {"notes": "Running late"}),
            ("CANCELLED", "POST", path.format(rows[1]["id"]) + "/cancel", None),
            ("ARCHIVED", "POST", path.format(rows[2]["id"]) + "/archive", None),
            ("CREATED", "POST", "individual_appointments", create_body(rows[3], "Walk-in")),
            ("DELETED", "DELETE", path.format(rows[4]["id"]), None),
        ]
        latencies: dict[str, float] = {}
        async with TransportWS.connect(address) as client:
            await client.subscribe("cal", DOCUMENT)
            await subscribed(gw, 1)
            for kind, method, where, body in edits:
                done = await gw.edit(method, where, body)
                (change,) = await changes(client, "cal", 1, within=BOUND + 2)
                latencies[kind] = time.time() - done
                assert change["kind"] == kind, (kind, change)
                appointment = change["appointment"]
                if kind == "CREATED":
                    assert appointment["notes"] == "Walk-in"
                else:
                    index = [e[0] for e in edits].index(kind)
                    assert appointment["clinikoId"] == str(rows[index]["id"])
                # The whole selection, nested records included, from the replica.
                assert appointment["patient"]["firstName"]
                assert appointment["practitioner"]["displayName"]
                assert appointment["business"]["timeZoneIdentifier"]
                assert appointment["appointmentType"]["name"]
            assert {kind: round(s, 3) for kind, s in latencies.items() if s > BOUND} == {}
        print("latencies (s):", {k: round(v, 3) for k, v in latencies.items()})


async def test_each_result_costs_no_upstream_request_on_a_warm_replica() -> None:
    async with over_tcp() as (gw, address):
        await gw.query("{ version }")
        await gw.settled()
        row = gw.live()
        async with TransportWS.connect(address) as client:
            await client.subscribe("1", DOCUMENT)
            await subscribed(gw, 1)
            await gw.edit("PATCH", f"individual_appointments/{row['id']}", {"notes": "x"})
            payload = await client.next("1", BOUND + 2)
    assert payload["extensions"]["upstream"]["requests"] == 0
    assert payload["extensions"]["freshness"]["source"] == "replica"


async def test_a_local_day_filter_delivers_that_days_changes_and_those_that_leave_it() -> None:
    async with over_tcp() as (gw, address):
        await gw.query("{ version }")
        await gw.settled()
        row = gw.live(days=2)
        local = await gw.query(
            "query($id: ID!) { appointment(id: $id) { startsAtLocal business { id } } }",
            {"id": str(row["id"])},
        )
        day = local.data["appointment"]["startsAtLocal"][:10]
        business = local.data["appointment"]["business"]["id"]
        others = [
            r
            for r in gw.rows("cancelled_at IS NULL AND archived_at IS NULL AND deleted_at IS NULL")
            if r["business_id"] != row["business_id"]
        ]
        elsewhere = others[len(others) // 2]
        filter = {"businessId": business, "localDate": day}
        async with TransportWS.connect(address) as client:
            await client.subscribe("day", DOCUMENT, {"filter": filter})
            await subscribed(gw, 1)
            # Another business's change first: had it been delivered, it would come first.
            await gw.edit("PATCH", f"individual_appointments/{elsewhere['id']}", {"notes": "n"})
            await gw.edit("PATCH", f"individual_appointments/{row['id']}", {"notes": "Today"})
            (edited,) = await changes(client, "day", 1, within=BOUND + 2)
            # Cancelled, it leaves the (default: not cancelled) list: told all the same.
            await gw.edit("POST", f"individual_appointments/{row['id']}/cancel", None)
            (cancelled,) = await changes(client, "day", 1, within=BOUND + 2)
            with pytest.raises(TimeoutError):
                await client.next("day", within=3 * SYNC_INTERVAL)
    assert (edited["kind"], edited["appointment"]["notes"]) == ("UPDATED", "Today")
    assert (cancelled["kind"], cancelled["appointment"]["status"]) == ("CANCELLED", "CANCELLED")
    assert edited["appointment"]["clinikoId"] == str(row["id"])


async def test_a_subscriber_with_key_b_never_receives_key_as_changes() -> None:
    sandbox = make_sandbox()
    async with over_tcp(sandbox, auth="forward", api_key=None) as (gw, address):
        web = gw.web
        async with (
            TransportWS.connect(
                address, {"Authorization": basic(DEMO_KEY_A)["Authorization"]}
            ) as a,
            TransportWS.connect(address, {"Authorization": f"Bearer {DEMO_KEY_B}"}) as b,
        ):
            await a.subscribe("a", DOCUMENT)
            await b.subscribe("b", DOCUMENT)
            await subscribed(gw, 2)
            await loaded(gw, 2)  # each key's replica, started by its subscription

            def booked(account: str) -> list[Any]:
                conn = sandbox.state.sandbox.store.conn
                return [
                    row["id"]
                    for row in conn.execute(
                        "SELECT id FROM appointments WHERE account = ? AND cancelled_at IS NULL "
                        "AND archived_at IS NULL AND deleted_at IS NULL AND starts_at > ? "
                        "ORDER BY starts_at LIMIT 6",
                        (account, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
                    )
                ]

            ids_a, ids_b = booked("a"), booked("b")

            async def edit(account: str, ids: list[Any]) -> None:
                for n, row_id in enumerate(ids):
                    response = await web.patch(
                        f"/_sandbox/webapp/{account}/individual_appointments/{row_id}",
                        json={"notes": f"{account}{n}"},
                    )
                    assert response.status_code == 200, response.text

            # Concurrent edits on both accounts.
            await asyncio.gather(edit("a", ids_a), edit("b", ids_b))
            got_a = await changes(a, "a", len(ids_a), within=BOUND + 3)
            got_b = await changes(b, "b", len(ids_b), within=BOUND + 3)
            with pytest.raises(TimeoutError):
                await b.next("b", within=3 * SYNC_INTERVAL)
    assert sorted(c["appointment"]["clinikoId"] for c in got_a) == sorted(map(str, ids_a))
    assert sorted(c["appointment"]["clinikoId"] for c in got_b) == sorted(map(str, ids_b))
    assert all(c["appointment"]["notes"].startswith("b") for c in got_b)


async def test_a_slow_subscriber_is_ended_with_slow_consumer_and_the_others_go_on() -> None:
    # Polls 2 s apart, so four edits made right after one land in the next, together.
    async with over_tcp(subscription_queue=2, sync_interval=2.0) as (gw, address):
        await gw.query("{ version }")
        await gw.settled()
        rows = [gw.live(skip=n) for n in range(4)]
        async with TransportWS.connect(address) as client:
            await client.subscribe("slow", DOCUMENT)
            await subscribed(gw, 1)
            # Four changes in one poll: more than the queue holds, in one step.
            await gw.polled_after(time.time())
            for n, row in enumerate(rows):
                await gw.edit("PATCH", f"individual_appointments/{row['id']}", {"notes": str(n)})
            ended: dict[str, Any] | None = None
            for _ in range(4):
                payload = await client.next("slow", 5.0)
                if "errors" in payload:
                    ended = payload
                    break
            assert ended is not None, "the slow subscriber was not ended"
            assert ended["errors"][0]["extensions"]["code"] == "SLOW_CONSUMER"
            assert ended["errors"][0]["extensions"]["queueSize"] == 2
            assert (await client.receive()) == {"id": "slow", "type": "complete"}
            assert live_of(gw).active() == 0
            assert live_of(gw).stats.dropped_slow == 1


async def test_a_client_that_leaves_mid_stream_leaves_no_subscriber_task_or_queue() -> None:
    async with over_tcp() as (gw, address):
        await gw.query("{ version }")
        await gw.settled()
        live = live_of(gw)
        rows = [gw.live(skip=n) for n in range(3)]
        await asyncio.sleep(0.2)
        tasks_before = len(asyncio.all_tasks())
        async with TransportWS.connect(address) as client:
            await client.subscribe("1", DOCUMENT)
            await client.subscribe("2", DOCUMENT)
            await subscribed(gw, 2)
            await gw.edit("PATCH", f"individual_appointments/{rows[0]['id']}", {"notes": "one"})
            await changes(client, "1", 1, within=BOUND + 2)
            await changes(client, "2", 1, within=BOUND + 2)
            assert len(asyncio.all_tasks()) > tasks_before
            client.ws.transport.abort()  # gone mid-stream: no complete, no close frame
        await subscribed(gw, 0)
        assert (live.keys(), gw.replicas.pinned()) == (0, 0)

        async def settled_tasks() -> bool | None:
            return True if len(asyncio.all_tasks()) <= tasks_before else None

        await eventually(settled_tasks, within=5, what="the connection's tasks ending")
        # Changes after it left go nowhere (nobody is registered to queue them for).
        delivered = live.stats.delivered
        done = await gw.edit("PATCH", f"individual_appointments/{rows[1]['id']}", {"notes": "2"})
        await gw.polled_after(done)
        assert (live.active(), live.stats.delivered) == (0, delivered)


# --- 500 subscribers ----------------------------------------------------------------------

SUBSCRIBERS = 500
EDITS = 5
#: Seconds each phase of the comparison lasts (with and without subscribers).
PHASE = 4.0


async def upstream_requests(gw: Replicated, since: float, until: float) -> int:
    """The sandbox's own count of ``/v1`` requests that arrived in ``[since, until)``."""
    arrivals = (await gw.web.get("/_sandbox/arrivals", params={"since": since})).json()
    return sum(1 for at, *_ in arrivals["arrivals"] if at < until)


async def edits_over(
    gw: Replicated, rows: list[dict[str, Any]], tag: str, done: list[float] | None = None
) -> tuple[float, float]:
    """``EDITS`` outside edits spread over ``PHASE`` seconds; the phase's start and end.

    ``done``: gets the instant each edit was made.
    """
    started = time.time()
    for n, row in enumerate(rows[:EDITS]):
        at = await gw.edit("PATCH", f"individual_appointments/{row['id']}", {"notes": f"{tag}{n}"})
        if done is not None:
            done.append(at)
        await asyncio.sleep(PHASE / EDITS)
    await asyncio.sleep(2 * SYNC_INTERVAL + SLACK)  # the last edit's poll is in the phase
    return started, time.time()


async def test_500_subscribers_on_one_worker_cost_no_upstream_request_and_all_receive() -> None:
    sandbox = make_sandbox()
    app = create_app(replica_settings(), upstream_transport=httpx.ASGITransport(app=sandbox))
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://localhost"
        ) as http,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url=SANDBOX_ROOT) as web,
    ):
        gw = Replicated(app=app, sandbox=sandbox, http=http, web=web, rest=web)
        await gw.query("{ version }")
        await gw.settled()
        rows = [gw.live(skip=n) for n in range(2 * EDITS)]
        sync_before = sum(gw.replicas.sync_stats.requests.values())

        # Without subscribers: what the sync alone costs over a phase of edits.
        alone = await edits_over(gw, rows, "alone")
        cost_alone = await upstream_requests(gw, *alone)

        # 500 subscriptions of the same key, each a stream of its own, as a transport
        # runs it: Strawberry's schema.subscribe with the gateway's per-operation context.
        view = next(r.app for r in app.routes if isinstance(r, WebSocketRoute))
        assert isinstance(view, GatewayGraphQL)
        conn = HTTPConnection({"type": "http", "state": manager._state, "headers": []})
        credential = view._service_credential
        assert credential is not None
        received: list[list[tuple[float, dict[str, Any]]]] = [[] for _ in range(SUBSCRIBERS)]
        gc.collect()
        tracemalloc.start()
        memory_before = tracemalloc.get_traced_memory()[0]
        streams = [
            await view.schema.subscribe(DOCUMENT, context_value=view.context_for(conn, credential))
            for _ in range(SUBSCRIBERS)
        ]

        async def consume(n: int) -> None:
            async for result in streams[n]:
                assert not result.errors, result.errors
                assert result.data is not None
                received[n].append((time.time(), result.data))

        tasks = [asyncio.create_task(consume(n)) for n in range(SUBSCRIBERS)]
        await subscribed(gw, SUBSCRIBERS)
        gc.collect()
        per_subscriber = (tracemalloc.get_traced_memory()[0] - memory_before) / SUBSCRIBERS
        tracemalloc.stop()

        edited: list[float] = []
        together = await edits_over(gw, rows[EDITS:], "live", edited)
        cost_together = await upstream_requests(gw, *together)
        sync_requests = sum(gw.replicas.sync_stats.requests.values()) - sync_before

        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await subscribed(gw, 0)

    # Every upstream request in both phases was the sync's own (nothing per subscriber),
    # and the sync cost about the same with 500 subscribers as without.
    total = cost_alone + cost_together
    assert sync_requests >= total, (sync_requests, cost_alone, cost_together)
    assert cost_together <= cost_alone * 1.5 + 5, (cost_alone, cost_together)
    # Every subscriber received every change, in order.
    expected = [f"live{n}" for n in range(EDITS)]
    for got in received:
        assert [d["appointmentChanged"]["appointment"]["notes"] for _, d in got] == expected
    assert per_subscriber < 50_000, per_subscriber
    # The last of the 500 to receive each change, from the edit.
    slowest = [max(got[n][0] for got in received) - at for n, at in enumerate(edited)]
    assert max(slowest) <= BOUND, slowest
    print("500 subscribers, edit to the last one's result (s):", [round(s, 3) for s in slowest])
    print(
        f"\n500 subscribers: upstream requests {cost_alone} alone vs {cost_together} with "
        f"subscribers over {together[1] - together[0]:.1f} s; "
        f"{per_subscriber / 1024:.1f} KiB per subscriber (tracemalloc)"
    )
