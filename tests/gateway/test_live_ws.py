"""Live updates over graphql-transport-ws: the handshake, credentials, limits, keep-alive.

Every test serves the real app with uvicorn on a loopback port (on the test's loop) and
speaks the protocol message by message with Python's ``websockets`` (``tests/live_ws.py``).
What a subscription delivers is ``tests/replica/test_live.py``'s subject; here it is the
transport: who may open one, how many, and what happens to idle or vanished clients.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from starlette.applications import Starlette

from appointments_gateway.gateway import create_app
from appointments_gateway.resolvers.live import LiveUpdates
from appointments_gateway.sandbox import DEMO_KEY_A, DEMO_KEY_B, SandboxConfig, create_sandbox_app
from appointments_gateway.settings import Settings
from tests.live_ws import PROTOCOL, TransportWS, served_over_tcp

SANDBOX_URL = "http://sandbox.test/v1"
TOKEN = "live-updates-gateway-token-" + "x" * 24
SUBSCRIPTION = "subscription { appointmentChanged { kind appointment { id } } }"


def app_for(**values: Any) -> Starlette:
    sandbox = create_sandbox_app(SandboxConfig(rate_limit_per_minute=0))
    settings = Settings(
        **{"upstream": SANDBOX_URL, "api_key": DEMO_KEY_A, "upstream_rate_limit": 0, **values}
    )
    return create_app(settings, upstream_transport=httpx.ASGITransport(app=sandbox))


@pytest.fixture
async def service() -> AsyncIterator[tuple[Starlette, str]]:
    app = app_for()
    async with served_over_tcp(app) as address:
        yield app, address


def live_of(app: Starlette) -> LiveUpdates:
    live: LiveUpdates | None = app.state.live
    assert live is not None
    return live


async def until(check: Any, within: float = 5.0) -> None:
    for _ in range(int(within / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    assert check()


async def test_only_graphql_transport_ws_is_spoken(service) -> None:
    _, address = service
    async with websockets.connect(
        f"ws://{address}/graphql",
        subprotocols=["graphql-ws"],  # type: ignore[list-item]
    ) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 4406


async def test_a_subscription_runs_and_completes_and_leaves_nothing(service) -> None:
    app, address = service
    live = live_of(app)
    async with TransportWS.connect(address) as client:
        await client.subscribe("a", SUBSCRIPTION)
        await until(lambda: live.active() == 1)
        assert app.state.replicas.pinned() == 1
        await client.complete("a")
        await until(lambda: live.active() == 0)
    assert app.state.replicas.pinned() == 0


async def test_queries_and_mutations_belong_to_http(service) -> None:
    _, address = service
    async with TransportWS.connect(address) as client:
        await client.subscribe("q", "{ version }")
        message = await client.receive()
    assert message["type"] == "error"
    assert message["id"] == "q"


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


@pytest.mark.parametrize(
    "payload",
    [
        {"Authorization": basic(DEMO_KEY_A)},
        {"authorization": f"Bearer {DEMO_KEY_B}"},
        {"headers": {"Authorization": f"Bearer {DEMO_KEY_A}"}},
    ],
)
async def test_forward_mode_takes_the_key_from_connection_init(payload) -> None:
    app = app_for(auth="forward", api_key=None)
    async with served_over_tcp(app) as address, TransportWS.connect(address, payload) as client:
        await client.subscribe("a", SUBSCRIPTION)
        await until(lambda: live_of(app).active() == 1)


@pytest.mark.parametrize(
    "payload",
    [None, {}, {"Authorization": "Basic !!!"}, {"Authorization": "Token x"}, {"x": "y"}],
)
async def test_forward_mode_without_a_key_is_closed_4403(payload) -> None:
    app = app_for(auth="forward", api_key=None)
    async with (
        served_over_tcp(app) as address,
        TransportWS.connect(address, payload, ack=False) as client,
    ):
        code, reason = await client.closed()
    assert code == 4403
    assert reason  # says what to send


@pytest.mark.parametrize(
    ("payload", "accepted"),
    [
        ({"Authorization": f"Bearer {TOKEN}"}, True),
        ({"Authorization": f"Bearer {TOKEN}x"}, False),
        ({}, False),
    ],
)
async def test_service_mode_with_tokens_wants_the_token_in_connection_init(
    payload, accepted
) -> None:
    app = app_for(gateway_tokens=Settings.load(environ={"GATEWAY_TOKENS": TOKEN}).gateway_tokens)
    async with (
        served_over_tcp(app) as address,
        TransportWS.connect(address, payload, ack=False) as client,
    ):
        if accepted:
            assert (await client.receive())["type"] == "connection_ack"
        else:
            assert (await client.closed())[0] == 4403


async def test_no_connection_init_in_time_is_closed_4408() -> None:
    async with served_over_tcp(app_for(ws_init_timeout=0.3)) as address:
        async with websockets.connect(
            f"ws://{address}/graphql",
            subprotocols=[PROTOCOL],  # type: ignore[list-item]
        ) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 4408


async def test_operations_per_connection_are_limited_with_a_code() -> None:
    app = app_for(subscriptions_per_connection=2)
    async with served_over_tcp(app) as address, TransportWS.connect(address) as client:
        await client.subscribe("1", SUBSCRIPTION)
        await client.subscribe("2", SUBSCRIPTION)
        await client.subscribe("3", SUBSCRIPTION)
        refused = await client.receive()
        assert refused["type"] == "error"
        assert refused["id"] == "3"
        error = refused["payload"][0]
        assert error["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
        assert error["extensions"]["max"] == 2
        await client.complete("1")
        await until(lambda: live_of(app).active() == 1)
        await client.subscribe("4", SUBSCRIPTION)
        await until(lambda: live_of(app).active() == 2)


async def test_subscriptions_per_key_are_limited_across_connections() -> None:
    app = app_for(subscriptions_per_key=2)
    async with (
        served_over_tcp(app) as address,
        TransportWS.connect(address) as first,
        TransportWS.connect(address) as second,
    ):
        await first.subscribe("1", SUBSCRIPTION)
        await second.subscribe("1", SUBSCRIPTION)
        await until(lambda: live_of(app).active() == 2)
        await second.subscribe("2", SUBSCRIPTION)
        payload = await second.next("2")
        assert payload["data"] is None
        assert payload["errors"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
        assert (await second.receive()) == {"id": "2", "type": "complete"}
        assert live_of(app).active() == 2
        assert live_of(app).stats.refused == 1


async def test_a_client_that_answers_pings_stays_and_one_that_does_not_is_closed() -> None:
    app = app_for(ws_ping_interval=0.2, ws_pong_timeout=0.4)
    async with served_over_tcp(app) as address:
        async with TransportWS.connect(address) as polite:
            await polite.subscribe("a", SUBSCRIPTION)
            with pytest.raises(TimeoutError):
                await polite.receive(within=1.5)  # pings answered on the way, nothing else
            assert len(polite.seen) >= 3
        async with TransportWS.connect(address, answer_pings=False) as silent:
            await silent.subscribe("a", SUBSCRIPTION)
            code, reason = await silent.closed()
        assert (code, reason) == (4408, "Pong timeout")
        await until(lambda: live_of(app).active() == 0)


async def test_a_client_that_vanishes_leaves_no_subscriber_and_no_task(service) -> None:
    app, address = service
    live = live_of(app)
    async with TransportWS.connect(address) as warm:  # the replica and its tasks start
        await warm.subscribe("a", SUBSCRIPTION)
        await until(lambda: live.active() == 1)
    await until(lambda: live.active() == 0)
    await asyncio.sleep(0.2)
    tasks_before = len(asyncio.all_tasks())
    client = TransportWS.connect(address)
    async with client as ws:
        for n in range(5):
            await ws.subscribe(str(n), SUBSCRIPTION)
        await until(lambda: live.active() == 5)
        assert len(asyncio.all_tasks()) > tasks_before
        # Gone without complete, without a close frame: the TCP connection just ends.
        ws.ws.transport.abort()
    await until(lambda: live.active() == 0)
    await until(lambda: len(asyncio.all_tasks()) <= tasks_before)
    assert live.keys() == 0


async def test_a_page_of_another_origin_cannot_open_a_socket(service) -> None:
    _, address = service
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with TransportWS.connect(address, headers={"Origin": "http://evil.example"}):
            pass
    assert refused.value.response.status_code == 403
    # The gateway's own origin (GraphiQL's page) and non-browser clients may.
    async with TransportWS.connect(address, headers={"Origin": f"http://{address}"}):
        pass


async def test_an_origin_in_cors_origins_may_open_a_socket() -> None:
    app = app_for(cors_origins=("https://app.example",))
    async with (
        served_over_tcp(app) as address,
        TransportWS.connect(address, headers={"Origin": "https://app.example"}),
    ):
        pass


async def test_a_host_the_gateway_does_not_serve_gets_no_socket(service) -> None:
    _, address = service
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with TransportWS.connect(address, host_name="rebound.example"):
            pass
    assert refused.value.response.status_code == 400


async def test_subscriptions_count_in_metrics(service) -> None:
    app, address = service
    async with (
        httpx.AsyncClient(base_url=f"http://{address}") as http,
        TransportWS.connect(address) as client,
    ):
        await client.subscribe("a", SUBSCRIPTION)
        await until(lambda: live_of(app).active() == 1)
        during = (await http.get("/metrics")).text
        await client.complete("a")
        await until(lambda: live_of(app).active() == 0)
        after = (await http.get("/metrics")).text
    assert "gateway_subscriptions_active 1.0" in during
    assert "gateway_subscriptions_active 0.0" in after
    for name in (
        "gateway_subscription_events_delivered_total",
        "gateway_subscriptions_dropped_slow_total",
        "gateway_subscriptions_refused_total",
        "gateway_subscription_keys",
    ):
        assert name in after, name


async def test_without_replicas_a_subscription_says_live_updates_are_unavailable() -> None:
    async with (
        served_over_tcp(app_for(sync=False)) as address,
        TransportWS.connect(address) as client,
    ):
        await client.subscribe("a", SUBSCRIPTION)
        payload = await client.next("a")
    assert payload["errors"][0]["extensions"]["code"] == "LIVE_UPDATES_UNAVAILABLE"
