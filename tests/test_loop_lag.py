"""The loop-lag monitor sees a loop held by synchronous work, and only then."""

from __future__ import annotations

import asyncio
import re
import time

from appointments_gateway.gateway import create_app
from appointments_gateway.observability import GatewayMetrics
from appointments_gateway.observability.loop_lag import LoopLagMonitor
from appointments_gateway.settings import Settings
from tests.conftest import Serve


async def test_a_blocked_loop_shows_as_lag_in_the_metrics():
    metrics = GatewayMetrics()
    monitor = LoopLagMonitor(metrics.loop_lag.observe, interval=0.01)
    async with monitor.running():
        await asyncio.sleep(0.05)
        assert monitor.worst < 0.1  # an idle loop wakes on time (less than the block below)
        time.sleep(0.2)  # noqa: ASYNC251 -- the point: synchronous work that does not yield
        await asyncio.sleep(0.03)
    assert monitor.worst >= 0.15
    rendered = metrics.render().decode()
    assert 'gateway_event_loop_lag_seconds_bucket{le="0.25"}' in rendered
    assert "gateway_event_loop_lag_seconds_count" in rendered


async def test_the_monitor_stops_with_its_block():
    monitor = LoopLagMonitor(lambda _: None, interval=0.01)
    async with monitor.running():
        pass
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "loop-lag-monitor"]


async def test_the_app_samples_its_loop_for_as_long_as_it_runs(serve: Serve):
    app = create_app(Settings(upstream_rate_limit=0))
    async with serve(app, base_url="http://127.0.0.1") as http:
        await asyncio.sleep(0.25)
        metrics = (await http.get("/metrics")).text
    count = re.search(r"^gateway_event_loop_lag_seconds_count ([0-9.]+)$", metrics, re.M)
    assert count is not None
    assert float(count[1]) >= 1
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "loop-lag-monitor"]
