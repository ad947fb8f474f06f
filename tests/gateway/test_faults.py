"""Upstream faults (issue 5): 503s, hangs and malformed bodies give the right codes.

Every test checks the same four things: the code, no stack trace or upstream body in
the answer, no HTTP 500 from the gateway, and a good request right after succeeds on
the same app.  An autouse fixture captures every log record at DEBUG (the whole app,
sandbox included) and fails the test if one holds the API key, a patient's name or an
appointment's notes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from appointments_gateway.gateway import create_app
from appointments_gateway.sandbox import DEMO_KEY_A, SandboxConfig, create_sandbox_app
from appointments_gateway.settings import Settings
from tests.gateway.faults import Garbage, Hanging
from tests.gateway.test_app import SANDBOX_URL

#: Reads PHI on purpose: names and notes pass through the gateway, and must not reach logs.
QUERY = "{ appointments(first: 5) { nodes { clinikoId notes patient { firstName lastName } } } }"
LIST = "/v1/individual_appointments"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "upstream": SANDBOX_URL,
        "api_key": DEMO_KEY_A,
        "upstream_rate_limit": 0,
        "operation_timeout": 0.5,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture
async def phi() -> list[str]:
    """Secrets and PHI the good requests carry: the key, patients' names, notes."""
    sandbox = create_sandbox_app(SandboxConfig(rate_limit_per_minute=0))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox),
        base_url=SANDBOX_URL + "/",
        auth=(DEMO_KEY_A, ""),
    ) as rest:
        patients = (await rest.get("patients", params={"per_page": 50})).json()["patients"]
        rows = (await rest.get("individual_appointments", params={"per_page": 100})).json()
    names = {p[k] for p in patients for k in ("first_name", "last_name") if p.get(k)}
    notes = {a["notes"] for a in rows["individual_appointments"] if a.get("notes")}
    assert names
    assert notes
    return [DEMO_KEY_A, *sorted(names), *sorted(notes)]


@pytest.fixture(autouse=True)
def no_phi_in_logs(caplog: pytest.LogCaptureFixture, phi: list[str]) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    text = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    leaked = [value for value in phi if value in text]
    assert not leaked, f"{len(leaked)} secret or PHI values in the log"


def check_fault(response: httpx.Response, code: str) -> dict[str, Any]:
    assert response.status_code == 200, response.status_code
    body: dict[str, Any] = response.json()
    assert {e["extensions"]["code"] for e in body["errors"]} == {code}
    for marker in ("Traceback", 'File "', "Error(", "<html", "sandbox-key"):
        assert marker not in response.text
    return body


async def check_good(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": QUERY})
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body, body["errors"]
    assert body["data"]["appointments"]["nodes"][0]["patient"]["firstName"]


@pytest.fixture
def sandbox() -> Starlette:
    return create_sandbox_app(SandboxConfig(rate_limit_per_minute=0))


async def test_an_upstream_answering_503_gives_upstream_unavailable(serve):
    failing = create_sandbox_app(SandboxConfig(rate_limit_per_minute=0, fault_rate=1.0))
    healthy = create_sandbox_app(SandboxConfig(rate_limit_per_minute=0))
    target = {"app": failing}

    class Switch(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await httpx.ASGITransport(app=target["app"]).handle_async_request(request)

    async with serve(create_app(settings(), upstream_transport=Switch())) as client:
        response = await client.post("/graphql", json={"query": QUERY})
        body = check_fault(response, "UPSTREAM_UNAVAILABLE")
        assert body["data"] is None
        # reads were retried before giving up, within the deadline
        assert body["extensions"]["upstream"]["requests"] == 3
        target["app"] = healthy
        await check_good(client)


async def test_a_hanging_upstream_gives_upstream_timeout(sandbox, serve):
    hanging = Hanging(sandbox, LIST)
    async with serve(create_app(settings(), upstream_transport=hanging)) as client:
        check_fault(await client.post("/graphql", json={"query": QUERY}), "UPSTREAM_TIMEOUT")
        assert hanging.cancelled == hanging.calls == 1
        hanging.hanging = False
        await check_good(client)


class TimingOut(httpx.AsyncBaseTransport):
    """What httpx raises when its own per-call timeout fires, every time."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)


async def test_an_upstream_call_timeout_gives_upstream_timeout(sandbox, serve):
    transport: dict[str, httpx.AsyncBaseTransport] = {"t": TimingOut()}

    class Switch(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await transport["t"].handle_async_request(request)

    async with serve(create_app(settings(), upstream_transport=Switch())) as client:
        check_fault(await client.post("/graphql", json={"query": QUERY}), "UPSTREAM_TIMEOUT")
        transport["t"] = httpx.ASGITransport(app=sandbox)
        await check_good(client)


@pytest.mark.parametrize(
    "body",
    [
        b'{"individual_appointments": [',
        b"<html><body>Service Unavailable</body></html>",
        b'{"individual_appointments": "not a list", "total_entries": "many"}',
        b'{"individual_appointments": [{"id": null}], "total_entries": 1}',
        b"[1, 2, 3]",
        b"\xff\xfe\x00garbage",
    ],
    ids=["truncated", "html", "wrong-types", "null-id", "array", "binary"],
)
async def test_a_malformed_upstream_body_gives_upstream_unavailable(sandbox, body, serve):
    garbage = Garbage(sandbox, LIST, body)
    async with serve(create_app(settings(), upstream_transport=garbage)) as client:
        response = await client.post("/graphql", json={"query": QUERY})
        check_fault(response, "UPSTREAM_UNAVAILABLE")
        garbage.broken = False
        await check_good(client)


async def test_malformed_relation_bodies_null_only_that_field(sandbox, serve):
    garbage = Garbage(sandbox, "/v1/patients", b'{"patients": [{"first_name": 5}]}')
    async with serve(create_app(settings(), upstream_transport=garbage)) as client:
        body = check_fault(
            await client.post("/graphql", json={"query": QUERY}), "UPSTREAM_UNAVAILABLE"
        )
        nodes = body["data"]["appointments"]["nodes"]
        assert len(nodes) == 5
        assert all(n["patient"] is None for n in nodes)
        garbage.broken = False
        await check_good(client)
