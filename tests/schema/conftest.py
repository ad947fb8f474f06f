from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from appointments_gateway.gateway import create_app
from appointments_gateway.sandbox import DEMO_KEY_A, SandboxConfig, create_sandbox_app
from appointments_gateway.settings import Settings
from tests.conftest import Serve

ANCHOR = datetime(2025, 3, 10, tzinfo=UTC)
SANDBOX_URL = "http://sandbox.test/v1"


@dataclass
class Gateway:
    """The gateway over an in-process sandbox, with the sandbox's own counters at hand."""

    http: httpx.AsyncClient
    sandbox: Starlette
    rest: httpx.AsyncClient

    @property
    def sandbox_requests(self) -> int:
        total: int = self.sandbox.state.sandbox.stats.total
        return total

    def routes(self) -> dict[str, int]:
        return dict(self.sandbox.state.sandbox.stats.by_route)

    async def query(
        self, document: str, variables: dict[str, Any] | None = None, **headers: str
    ) -> dict[str, Any]:
        """Run an operation and check what it cost upstream.

        The gateway's count must equal what the sandbox received, and the admission
        check's bound must never be below it: every operation the suite runs checks it.
        """
        before = self.sandbox_requests
        response = await self.http.post(
            "/graphql", json={"query": document, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        upstream = body["extensions"]["upstream"]
        assert upstream["requests"] == self.sandbox_requests - before
        if "estimate" in upstream:
            assert upstream["estimate"] >= upstream["requests"], document
        return body


def make_sandbox(**knobs: Any) -> Starlette:
    return create_sandbox_app(SandboxConfig(anchor=ANCHOR, rate_limit_per_minute=0, **knobs))


def booking_refs(sandbox: Starlette) -> dict[str, str]:
    """Ids a booking needs, from a live seeded appointment of an active practitioner in A."""
    row = sandbox.state.sandbox.store.conn.execute(
        "SELECT a.* FROM appointments a JOIN practitioners p ON p.id = a.practitioner_id "
        "WHERE a.account = 'a' AND p.active AND a.cancelled_at IS NULL "
        "AND a.archived_at IS NULL AND a.deleted_at IS NULL ORDER BY a.id"
    ).fetchone()
    return {
        "patientId": str(row["patient_id"]),
        "practitionerId": str(row["practitioner_id"]),
        "appointmentTypeId": str(row["appointment_type_id"]),
        "businessId": str(row["business_id"]),
    }


@pytest.fixture
def sandbox() -> Starlette:
    return make_sandbox()


#: The validation time limit in tests that are not about it. The default (30 ms of wall
#: time from the start of parsing) refused an ordinary mutation document while the
#: machine was busy with other processes; tests of the limit set it themselves.
TEST_MAX_ANALYSIS_MS = 250


@asynccontextmanager
async def open_gateway(
    serve: Serve,
    sandbox: Starlette,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    max_analysis_ms: int = TEST_MAX_ANALYSIS_MS,
) -> AsyncIterator[Gateway]:
    """The gateway over ``sandbox``; ``transport`` (wrapping the sandbox) replaces the default."""
    app = create_app(
        # The sandbox has no rate limit, so neither has the gateway (test_rate_limits.py).
        # These tests pin the upstream path request by request, so no replica starts
        # mid-test; tests/replica/ serves the same operations from one.
        Settings(
            upstream=SANDBOX_URL,
            api_key=DEMO_KEY_A,
            upstream_rate_limit=0,
            sync=False,
            max_analysis_ms=max_analysis_ms,
        ),
        upstream_transport=transport or httpx.ASGITransport(app=sandbox),
    )
    async with (
        serve(app) as http,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sandbox),
            base_url=SANDBOX_URL + "/",
            auth=(DEMO_KEY_A, ""),
        ) as rest,
    ):
        yield Gateway(http=http, sandbox=sandbox, rest=rest)


@pytest.fixture
async def gw(serve: Serve, sandbox: Starlette) -> AsyncIterator[Gateway]:
    async with open_gateway(serve, sandbox) as gateway:
        yield gateway
