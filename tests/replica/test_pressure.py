"""Sync under pressure: reads that need the whole budget lose nothing to the sync.

The gateway's governor is shrunk to a 6-second window (60 requests per 6 s: the same
shape as Cliniko's 200 a minute, ten times faster) so a burst that needs the key's whole
budget, and the recovery after it, fit in a few seconds.  The reads are paced just above
the bucket's sustained rate: without a sync none of them is refused (they wait their
turn, well inside ``max_wait``), so any ``RATE_LIMITED`` would be the sync's doing.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from starlette.applications import Starlette

from appointments_gateway.gateway import create_app
from appointments_gateway.upstream import Governor
from tests.conftest import Serve

from .conftest import Replicated, eventually, make_sandbox, replica_settings

IDS_ONLY = "{ appointments(first: 1) { nodes { id } } }"  # one upstream request


def governor() -> Governor:
    return Governor(limit=60, window=6.0, margin=0.1, max_wait=5.0, background_share=0.2)


async def burst(http: httpx.AsyncClient, gov: Governor, seconds: float) -> list[str]:
    """Reads at 110% of the key's sustained rate, upstream each; their error codes."""
    every = 1 / (gov.rate_per_second * 1.1)
    codes: list[str] = []

    async def read() -> None:
        response = await http.post(
            "/graphql", json={"query": IDS_ONLY}, headers={"Cache-Control": "no-cache"}
        )
        body = response.json()
        codes.extend(e["extensions"]["code"] for e in body.get("errors") or [])

    started = time.monotonic()
    reads = []
    n = 0
    while time.monotonic() - started < seconds:
        reads.append(asyncio.create_task(read()))
        n += 1
        await asyncio.sleep(max(0.0, started + n * every - time.monotonic()))
    await asyncio.gather(*reads)
    return codes


async def test_a_burst_that_needs_the_whole_budget_gets_no_rate_limited_from_sync(
    serve: Serve,
) -> None:
    sandbox: Starlette = make_sandbox()
    gov = governor()
    app = create_app(
        # A short window: the load fits the shrunken budget's sync share in seconds.
        replica_settings(
            sync_interval=1.0,
            sync_reference_interval=60.0,
            sync_deletion_check_interval=60.0,
            sync_max_staleness=60.0,
            sync_days_back=2,
            sync_days_ahead=3,
        ),
        upstream_transport=httpx.ASGITransport(app=sandbox),
        governor=gov,
    )
    async with (
        serve(app) as http,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox)) as nobody,
    ):
        gw = Replicated(app, sandbox, http, nobody, nobody)
        await gw.query(IDS_ONLY)  # starts the replica
        # The shrunken budget's share loads the window in ~15 s on an idle machine; on a
        # busy one it takes longer, and that is not what this test is about.
        await asyncio.wait_for(gw.syncer.loaded.wait(), 90)
        await gw.settled()
        syncer = gw.syncer
        base = syncer.config.interval
        assert syncer.current_interval == base

        intervals: list[float] = []

        async def watch() -> None:
            while True:
                intervals.append(syncer.current_interval)
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch())
        refused_before = gov.stats.background_refused
        try:
            codes = await burst(http, gov, seconds=4.0)
        finally:
            watcher.cancel()
        # No read was refused: the sync took nothing the reads needed.
        assert codes == []
        # The sync was turned away meanwhile, and its interval stretched...
        assert gov.stats.background_refused > refused_before
        assert max(intervals) > base, intervals
        # ...and it recovers once the pressure ends.

        async def recovered() -> bool | None:
            return True if syncer.current_interval == base else None

        await eventually(recovered, within=20.0, what="the sync interval back to its setting")
        metrics = (await http.get("/metrics")).text
        assert f"gateway_replica_sync_interval_seconds {base}" in metrics
        assert "gateway_replica_sync_refusals_total" in metrics
