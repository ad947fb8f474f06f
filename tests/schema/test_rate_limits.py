"""The upstream budget end to end: gateway → governor → sandbox with its rate limit on.

Time is scaled so the tests take seconds, not minutes: the sandbox's fixed window and the
governor's window are both ``WINDOW`` seconds instead of 60, with ``LIMIT`` requests per
window on both sides (the same ratio as Cliniko's 200 a minute against the gateway's
default of 200), and a margin of 15% of the window instead of 1/60, because an
in-process event loop busy with hundreds of operations delays a granted request by far
more than a network would, relative to a 2-second window.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from appointments_gateway.gateway import create_app
from appointments_gateway.sandbox import DEMO_KEY_A, DEMO_KEY_B, SandboxConfig, create_sandbox_app
from appointments_gateway.settings import Settings
from appointments_gateway.upstream import Governor
from tests.conftest import Serve

from .conftest import ANCHOR, SANDBOX_URL

WINDOW = 2.0
LIMIT = 20
MARGIN = 0.3
MAX_WAIT = 0.5

# Three upstream calls: the list, one batch of patients, one batch of businesses.
HEAVY = """{ appointments(first: 5) {
  nodes { clinikoId patient { lastName } business { businessName } } } }"""
# One upstream call.
LIGHT = "{ appointments(first: 1) { nodes { clinikoId } } }"


@dataclass
class Setup:
    http: httpx.AsyncClient
    sandbox: Starlette
    governor: Governor

    @property
    def stats(self) -> Any:
        return self.sandbox.state.sandbox.stats

    async def ask(self, key: str, document: str) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql",
            json={"query": document},
            headers={"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def scaled_sandbox(limit: int) -> Starlette:
    sandbox = create_sandbox_app(SandboxConfig(anchor=ANCHOR, rate_limit_per_minute=limit))
    sandbox.state.sandbox.limiter.WINDOW_SECONDS = WINDOW
    return sandbox


async def open_setup(serve: Serve, sandbox: Starlette, governor: Governor) -> AsyncIterator[Setup]:
    app = create_app(
        Settings(upstream=SANDBOX_URL, auth="forward"),
        upstream_transport=httpx.ASGITransport(app=sandbox),
        governor=governor,
    )
    async with serve(app) as http:
        yield Setup(http=http, sandbox=sandbox, governor=governor)


@pytest.fixture
async def matched(serve: Serve) -> AsyncIterator[Setup]:
    """The sandbox and the governor agree on the budget."""
    governor = Governor(limit=LIMIT, window=WINDOW, margin=MARGIN, max_wait=MAX_WAIT)
    async for setup in open_setup(serve, scaled_sandbox(LIMIT), governor):
        yield setup


def assert_succeeded_or_rate_limited(body: dict[str, Any]) -> bool:
    """True if the operation succeeded; otherwise every error must be RATE_LIMITED."""
    errors = body.get("errors") or []
    for error in errors:
        extensions = error["extensions"]
        assert extensions["code"] == "RATE_LIMITED", error
        retry_after = extensions["retryAfterSeconds"]
        assert isinstance(retry_after, int)
        assert 1 <= retry_after <= WINDOW + MARGIN + 1
    return not errors


async def test_a_burst_of_600_upstream_calls_gets_no_429_and_fails_clearly(matched: Setup):
    async def heavy_at(delay: float) -> dict[str, Any]:
        await asyncio.sleep(delay)
        return await matched.ask(DEMO_KEY_A, HEAVY)

    async def light_at(delay: float) -> dict[str, Any]:
        await asyncio.sleep(delay)
        return await matched.ask(DEMO_KEY_B, LIGHT)

    # 200 operations of 3 calls each for key A, in four waves across two windows...
    waves = [0.0, 0.35 * WINDOW, 0.7 * WINDOW, 1.05 * WINDOW]
    heavy = [heavy_at(t) for t in waves for _ in range(50)]
    # ...while key B asks now and then, each time when A's queue is full.
    light = [light_at(t + 0.05) for t in waves]
    results = await asyncio.gather(*heavy, *light)
    a_results, b_results = results[: len(heavy)], results[len(heavy) :]

    statuses = dict(matched.stats.by_status)
    assert "429" not in statuses, statuses
    succeeded = [assert_succeeded_or_rate_limited(body) for body in a_results]
    # The budget went to key A's calls (how many whole operations finish depends on how
    # the loop interleaves them under load, so that count is not asserted: see the note
    # on reserving an operation's estimate up front), and the governor refused the rest.
    assert matched.stats.by_account["a"] > 0
    assert not all(succeeded)
    assert matched.stats.by_account["a"] < 600 // 4  # the governor, not the sandbox, said no
    assert matched.governor.stats.refused > 0
    # Key B was never refused although key A was being refused all along.
    for body in b_results:
        assert "errors" not in body, body
        assert len(body["data"]["appointments"]["nodes"]) == 1
    assert matched.stats.by_account["b"] == len(light)


async def test_an_upstream_429_pauses_the_key_and_every_caller_gets_rate_limited_cleanly(
    serve: Serve,
):
    # A governor four times as generous as the sandbox (another app spending the same
    # key's budget looks the same): the sandbox answers 429, the key pauses until its reset.
    governor = Governor(limit=4 * LIMIT, window=WINDOW, margin=MARGIN, max_wait=MAX_WAIT)
    sandbox = scaled_sandbox(LIMIT)
    async for setup in open_setup(serve, sandbox, governor):
        results = await asyncio.gather(*(setup.ask(DEMO_KEY_A, LIGHT) for _ in range(60)))
        for body in results:
            assert_succeeded_or_rate_limited(body)
        sandbox_429s = setup.stats.by_status.get("429", 0)
        assert sandbox_429s >= 1
        assert governor.stats.upstream_429s == sandbox_429s
        # Only requests already under way when the first 429 came back can meet one; the
        # rest waited for the pause (or were refused) instead of knocking again.
        assert sandbox_429s <= governor.burst
        assert setup.stats.by_account["a"] <= LIMIT + governor.burst
        # Key B is not paused by key A's 429s.
        assert "errors" not in await setup.ask(DEMO_KEY_B, LIGHT)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (Settings(), (200, 5.0)),
        (Settings(upstream_rate_limit=120, upstream_max_wait=1.5), (120, 1.5)),
        (Settings(upstream_rate_limit=0), None),
    ],
)
async def test_the_app_builds_its_governor_from_the_settings(settings, expected):
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:
        assert state is not None
        governor = state["upstream"].governor
        if expected is None:
            assert governor is None
        else:
            assert (governor.limit, governor.max_wait) == expected
