"""Two gateway instances on one Redis: one budget, one idempotency store, and Redis taken away.

Each "instance" is a whole app (its own lifespan, upstream client, governor and state
client) configured by ``GATEWAY_REDIS_URL`` exactly as a separate process would be; both
talk to one sandbox.  A real ``redis-server`` holds what they share.  The end-to-end
version, with processes and TCP, is ``bench/scaleout.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from appointments_gateway.gateway import create_app
from appointments_gateway.redis_state import RedisState
from appointments_gateway.sandbox import DEMO_KEY_A, SandboxConfig, create_sandbox_app
from appointments_gateway.settings import Settings
from appointments_gateway.state_fallback import FallbackState
from appointments_gateway.upstream import Governor
from tests.conftest import Serve
from tests.redis_server import RedisServer
from tests.schema.conftest import ANCHOR, SANDBOX_URL, booking_refs

_PREFIXES = itertools.count()
CREATE = (
    "mutation Create($input: CreateAppointmentInput!) { createAppointment(input: $input) "
    "{ appointment { id } userErrors { field message code } } }"
)
POSTS = "POST /v1/individual_appointments"
LIST = {"query": "{ appointments(first: 1) { totalCount } }"}


class Arrivals:
    """The sandbox behind a recorder of when each upstream request arrived, and its route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.times: list[float] = []
        self.routes: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            self.times.append(time.monotonic())
            self.routes.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


def _slot(n: int) -> str:
    return (ANCHOR + timedelta(weeks=60, hours=n)).isoformat().replace("+00:00", "Z")


async def _create(client: httpx.AsyncClient, refs: dict[str, str], n: int, key: str | None) -> Any:
    variables: dict[str, Any] = {"input": {**refs, "startsAt": _slot(n)}}
    if key is not None:
        variables["input"]["idempotencyKey"] = key
    response = await client.post("/graphql", json={"query": CREATE, "variables": variables})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["createAppointment"]


class Instances:
    def __init__(self, sandbox: Starlette, arrivals: Arrivals) -> None:
        self.sandbox = sandbox
        self.arrivals = arrivals
        self.clients: list[httpx.AsyncClient] = []

    def posts(self) -> int:
        return self.arrivals.routes.count(POSTS)


def _settings(url: str, prefix: str, **overrides: Any) -> Settings:
    return Settings(
        upstream=SANDBOX_URL,
        api_key=DEMO_KEY_A,
        redis_url=url,
        redis_prefix=prefix,
        sync=False,
        **overrides,
    )


@pytest.fixture
def open_instances(serve: Serve) -> Callable[..., Any]:
    """``async with open_instances(redis_url, n, governor=...)``: n apps sharing one Redis."""

    def opener(
        url: str,
        count: int = 2,
        *,
        governor: Callable[[str], Governor] | None = None,
        **overrides: Any,
    ) -> Any:
        prefix = f"scale{next(_PREFIXES)}"

        class Opened:
            async def __aenter__(self) -> Instances:
                self.stack = AsyncExitStack()
                sandbox = create_sandbox_app(SandboxConfig(rate_limit_per_minute=0))
                arrivals = Arrivals(sandbox)
                instances = Instances(sandbox, arrivals)
                for _ in range(count):
                    app = create_app(
                        _settings(url, prefix, **overrides),
                        upstream_transport=httpx.ASGITransport(app=arrivals),
                        governor=governor(prefix) if governor else None,
                    )
                    instances.clients.append(await self.stack.enter_async_context(serve(app)))
                return instances

            async def __aexit__(self, *exc: object) -> None:
                await self.stack.aclose()

        return Opened()

    return opener


async def test_fifty_split_pairs_of_one_key_make_exactly_fifty_posts(
    redis_server: RedisServer, open_instances: Callable[..., Any]
) -> None:
    # The budget off: 150 requests at once are this test's load, not its subject.
    async with open_instances(redis_server.url, upstream_rate_limit=0) as instances:
        one, two = instances.clients
        refs = booking_refs(instances.sandbox)

        async def pair(n: int) -> tuple[Any, Any]:
            key = f"booking-{n}-{time.time_ns()}"
            first, second = await asyncio.gather(
                _create(one, refs, n, key), _create(two, refs, n, key)
            )
            return first, second

        results = await asyncio.gather(*(pair(n) for n in range(50)))
        assert instances.posts() == 50
        for first, second in results:
            assert first["userErrors"] == []
            assert second["userErrors"] == []
            assert first["appointment"]["id"] == second["appointment"]["id"]
        assert len({first["appointment"]["id"] for first, _ in results}) == 50


async def test_two_instances_share_one_budget_undivided(
    redis_server: RedisServer, open_instances: Callable[..., Any]
) -> None:
    """20 per 2-second window for the key, whichever instance sends: never more, no 429.

    Each instance's governor holds the whole limit (no division by instances); only
    sharing the bucket in Redis keeps the pair within it.
    """
    window, limit = 2.0, 20

    states: list[FallbackState] = []

    def governor(prefix: str) -> Governor:
        state = FallbackState(
            RedisState(redis_server.url, prefix=prefix),
            processes=2,
            horizon=window + 0.2,
        )
        states.append(state)
        return Governor(state, limit=limit, window=window, margin=0.2, max_wait=1.0)

    async with AsyncExitStack() as stack:
        instances = await stack.enter_async_context(
            open_instances(redis_server.url, governor=governor)
        )
        for state in states:
            stack.push_async_callback(state.aclose)
        instances.sandbox.state.sandbox.limiter.limit = limit
        instances.sandbox.state.sandbox.limiter.WINDOW_SECONDS = window
        query = LIST
        started = time.monotonic()
        codes: list[str] = []

        async def hammer(client: httpx.AsyncClient) -> None:
            while time.monotonic() - started < 5.0:
                body = (await client.post("/graphql", json=query)).json()
                if "errors" in body:
                    (error,) = body["errors"]
                    codes.append(error["extensions"]["code"])
                    assert error["extensions"]["code"] == "RATE_LIMITED", error
                    assert error["extensions"]["retryAfterSeconds"] > 0
                else:
                    codes.append("OK")

        await asyncio.gather(*(hammer(c) for c in instances.clients for _ in range(4)))
        times = sorted(instances.arrivals.times)
        most = max(sum(1 for t in times if start <= t <= start + window) for start in times)
        assert most <= limit
        assert instances.sandbox.state.sandbox.stats.by_status.get("429", 0) == 0
        assert set(codes) <= {"OK", "RATE_LIMITED"}
        # One budget, used whole (20 at once, then 18 per 2.2 s: ~60 in 5 s). Two separate
        # budgets of 20 would have sent ~120 and met the sandbox's 429s above.
        assert codes.count("OK") >= 45


async def test_redis_away_refuses_keyed_creates_and_serves_the_rest(
    open_instances: Callable[..., Any],
) -> None:
    server = RedisServer().start()
    try:
        async with open_instances(server.url, count=1) as instances:
            (client,) = instances.clients
            refs = booking_refs(instances.sandbox)
            assert (await _create(client, refs, 1, "k-before"))["userErrors"] == []
            ready = (await client.get("/readyz")).json()
            assert ready["sharedState"] == "ok"

            server.stop()
            posts = instances.posts()
            refused = await _create(client, refs, 2, "k-during")
            (error,) = refused["userErrors"]
            assert error["code"] == "IDEMPOTENCY_KEY_UNAVAILABLE"
            assert error["field"] == ["input", "idempotencyKey"]
            assert refused["appointment"] is None
            assert instances.posts() == posts  # nothing was sent
            # Without a key nothing can be booked twice by a retry elsewhere: it goes on.
            assert (await _create(client, refs, 3, None))["userErrors"] == []
            assert instances.posts() == posts + 1
            read = await client.post("/graphql", json=LIST)
            assert read.status_code == 200
            assert "errors" not in read.json()
            ready_response = await client.get("/readyz")
            assert ready_response.status_code == 200
            assert ready_response.json()["sharedState"] == "unreachable"

            server.start()
            await asyncio.sleep(1.1)  # the next probe
            created = await _create(client, refs, 2, "k-during")
            assert created["userErrors"] == []
            again = await _create(client, refs, 2, "k-during")
            assert again["appointment"]["id"] == created["appointment"]["id"]
            assert instances.posts() == posts + 2
            assert (await client.get("/readyz")).json()["sharedState"] == "ok"
    finally:
        server.close()
