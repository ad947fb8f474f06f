"""Live updates against the real CLI over TCP, with a real graphql-transport-ws client.

``appointments-gateway serve`` on the embedded sandbox, polling every half second; staff's
edits come through the sandbox's web-app door over HTTP; the subscriber is Python's
``websockets`` speaking the protocol message by message (``tests/live_ws.py``).  Each
edit must reach the subscriber, with its kind, within the sync interval plus a second.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Running, serve_on_sandbox
from tests.live_ws import TransportWS, changes

pytestmark = pytest.mark.e2e

SYNC_INTERVAL = 0.5
BOUND = SYNC_INTERVAL + 1.0
DOCUMENT = """subscription {
  appointmentChanged {
    kind
    appointment { clinikoId notes status patient { lastName } practitioner { displayName } }
  }
}"""
ROWS = """query($after: DateTime!) { appointments(first: 6, filter: {startsAt: {gte: $after}}) {
nodes {
  clinikoId startsAt
  patient { clinikoId } practitioner { clinikoId } business { clinikoId }
  appointmentType { clinikoId }
} } }"""


async def test_outside_edits_reach_a_websocket_subscriber_of_the_cli(cli: list[Running]) -> None:
    # Two polls a second, and a window loaded at once, are more than the gateway's budget
    # of 200 a minute allows the sync (its polls would stretch, its load take ~30 s): the
    # budget is off here (the sandbox's own 200 a minute still holds; the test sends ~80).
    running, _endpoint, root = serve_on_sandbox(
        cli,
        "--sync-interval",
        str(SYNC_INTERVAL),
        "--sync-start-after",
        "0",
        "--upstream-rate-limit",
        "0",
    )
    sandbox = running.wait_for("Upstream:         embedded sandbox at").removesuffix("/v1")
    address = root.removeprefix("http://")
    async with (
        httpx.AsyncClient(base_url=root, timeout=10) as http,
        httpx.AsyncClient(base_url=f"{sandbox}/_sandbox/webapp/a/", timeout=10) as web,
    ):
        tomorrow = datetime.now(UTC) + timedelta(days=1)
        variables = {"after": tomorrow.isoformat().replace("+00:00", "Z")}
        answer = await http.post("/graphql", json={"query": ROWS, "variables": variables})
        rows = answer.json()["data"]
        nodes: list[dict[str, Any]] = rows["appointments"]["nodes"]
        ids = [n["clinikoId"] for n in nodes]
        template = nodes[5]
        create = {
            "patient_id": template["patient"]["clinikoId"],
            "practitioner_id": template["practitioner"]["clinikoId"],
            "business_id": template["business"]["clinikoId"],
            "appointment_type_id": template["appointmentType"]["clinikoId"],
            "starts_at": template["startsAt"],
            "notes": "Booked at the front desk",
        }
        edits = [
            ("UPDATED", "PATCH", f"individual_appointments/{ids[0]}", {"notes": "Running late"}),
            ("CANCELLED", "POST", f"individual_appointments/{ids[1]}/cancel", None),
            ("ARCHIVED", "POST", f"individual_appointments/{ids[2]}/archive", None),
            ("CREATED", "POST", "individual_appointments", create),
            ("DELETED", "DELETE", f"individual_appointments/{ids[3]}", None),
        ]
        async with TransportWS.connect(address, {}) as client:
            await client.subscribe("live", DOCUMENT)
            # The subscription started the key's replica: once its window is loaded, the
            # sync only polls (while it loads, load steps share the budget with the polls).
            for _ in range(200):
                metrics = (await http.get("/metrics")).text
                if "gateway_replica_keys 1.0" in metrics and (
                    "gateway_replica_loading 0.0" in metrics
                ):
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the replica did not load within 20 s")
            latencies: dict[str, float] = {}
            for kind, method, path, body in edits:
                response = await web.request(method, path, json=body)
                assert response.status_code in (200, 201, 204), response.text
                done = time.time()
                try:
                    (change,) = await changes(client, "live", 1, within=BOUND + 5)
                except TimeoutError:
                    pytest.fail(f"no {kind} change; seen {client.seen}; {running.output()}")
                latencies[kind] = time.time() - done
                assert change["kind"] == kind, (kind, change)
                assert change["appointment"]["patient"]["lastName"]
                if kind != "CREATED":
                    assert change["appointment"]["clinikoId"] == path.split("/")[1], kind
            await client.complete("live")
    print("CLI latencies (s):", {k: round(v, 3) for k, v in latencies.items()})
    assert {k: v for k, v in latencies.items() if v > BOUND} == {}
