"""Per-operation deadlines and client disconnects, over real HTTP and raw ASGI.

The upstream hangs (``Hanging``), so only the gateway's own deadline or a disconnect can
end a call; every test also checks the hanging call was really cancelled, not left
running in a dataloader's task and spending the key's budget for nobody.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import strawberry
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from appointments_gateway.gateway import create_app
from appointments_gateway.resolvers import Context
from appointments_gateway.sandbox import DEMO_KEY_A, SandboxConfig, create_sandbox_app
from appointments_gateway.schema.extensions import UpstreamUsage
from appointments_gateway.settings import Settings
from appointments_gateway.upstream import Credential, UpstreamClient, UpstreamTimeout
from tests.gateway.faults import Hanging
from tests.gateway.test_app import SANDBOX_URL

RELATIONS = "{ appointments(first: 3) { nodes { clinikoId patient { firstName } } } }"


def settings(timeout: float) -> Settings:
    return Settings(
        upstream=SANDBOX_URL,
        api_key=DEMO_KEY_A,
        upstream_rate_limit=0,
        operation_timeout=timeout,
    )


@pytest.fixture
def sandbox() -> Starlette:
    return create_sandbox_app(SandboxConfig(rate_limit_per_minute=0))


async def test_a_hanging_relation_times_out_at_the_deadline_keeping_the_rest(sandbox, serve):
    hanging = Hanging(sandbox, "/v1/patients")
    app = create_app(settings(0.3), upstream_transport=hanging)
    async with serve(app) as client:
        started = time.monotonic()
        response = await client.post("/graphql", json={"query": RELATIONS})
        elapsed = time.monotonic() - started
        hanging.hanging = False
        again = await client.post("/graphql", json={"query": RELATIONS})
    assert response.status_code == 200
    body = response.json()
    nodes = body["data"]["appointments"]["nodes"]
    assert len(nodes) == 3
    assert all(n["patient"] is None for n in nodes)
    assert {e["extensions"]["code"] for e in body["errors"]} == {"UPSTREAM_TIMEOUT"}
    assert 0.3 <= elapsed < 0.3 + 1.0
    # the patients lookup ran in a dataloader task: it was cancelled all the same
    assert hanging.calls == hanging.cancelled == 1
    assert "errors" not in again.json()
    assert again.json()["data"]["appointments"]["nodes"][0]["patient"]["firstName"]


@strawberry.type
class SlowQuery:
    @strawberry.field
    async def stuck(self, info: strawberry.Info[Context, None]) -> int:
        await asyncio.Event().wait()  # not an upstream call: only the backstop ends it
        return 0

    @strawberry.field
    def fine(self) -> int:
        return 1


async def test_an_operation_stuck_elsewhere_answers_upstream_timeout_as_a_whole(sandbox, serve):
    app = create_app(
        settings(0.2),
        upstream_transport=httpx.ASGITransport(app=sandbox),
        schema=strawberry.Schema(query=SlowQuery, extensions=[UpstreamUsage]),
    )
    async with serve(app) as client:
        started = time.monotonic()
        response = await client.post("/graphql", json={"query": "{ stuck }"})
        elapsed = time.monotonic() - started
        again = await client.post("/graphql", json={"query": "{ fine }"})
        # execution had begun: per GraphQL-over-HTTP that is a 200, not a request error
        spec = await client.post(
            "/graphql",
            json={"query": "{ stuck }"},
            headers={"Accept": "application/graphql-response+json"},
        )
    assert spec.status_code == 200
    assert spec.json()["errors"][0]["extensions"]["code"] == "UPSTREAM_TIMEOUT"
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UPSTREAM_TIMEOUT"]
    assert "Traceback" not in response.text
    assert elapsed < 0.2 + 1.0
    assert again.json() == {"data": {"fine": 1}, "extensions": again.json()["extensions"]}


async def test_a_call_after_the_deadline_is_never_sent():
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"patients": [], "total_entries": 0, "links": {}})

    async with UpstreamClient(
        user_agent="Tests (tests@example.com)",
        transport=httpx.MockTransport(record),
        governor=None,
    ) as upstream:
        session = upstream.session(Credential(DEMO_KEY_A, base_url=SANDBOX_URL))
        session.deadline = time.monotonic() - 0.001
        with pytest.raises(UpstreamTimeout, match="deadline passed before the call"):
            await session.patients.list(per_page=1)
        session.deadline = None
        session.cancel()
        with pytest.raises(UpstreamTimeout, match="operation has ended"):
            await session.patients.list(per_page=1)
    assert sent == []


async def _raw_post(
    app: Any, body: bytes, disconnect: asyncio.Event
) -> tuple[asyncio.Task[None], list[dict[str, Any]]]:
    """Call the ASGI app as a server would; ``disconnect`` makes the client hang up."""
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    return asyncio.create_task(app(scope, receive, send)), sent


async def test_a_client_disconnect_cancels_the_operation_and_its_upstream_calls(sandbox):
    hanging = Hanging(sandbox, "/v1/patients")
    app = create_app(settings(30), upstream_transport=hanging)
    async with LifespanManager(app) as manager:
        disconnect = asyncio.Event()
        body = b'{"query": "' + RELATIONS.encode() + b'"}'
        task, sent = await _raw_post(manager.app, body, disconnect)
        await asyncio.wait_for(hanging.started.wait(), 5)
        assert not task.done()
        disconnect.set()
        await asyncio.wait_for(task, 2)  # ends well before the 30 s deadline
        assert sent == []  # nobody is there to read an answer
        await asyncio.sleep(0)
        assert hanging.calls == hanging.cancelled == 1
        # the process keeps serving
        hanging.hanging = False
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://localhost"
        ) as client:
            response = await client.post("/graphql", json={"query": RELATIONS})
    assert response.status_code == 200
    assert "errors" not in response.json()


async def test_a_client_that_stays_gets_its_answer(sandbox):
    app = create_app(settings(30), upstream_transport=httpx.ASGITransport(app=sandbox))
    async with LifespanManager(app) as manager:
        task, sent = await _raw_post(
            manager.app, b'{"query": "{ appointments(first: 1) { totalCount } }"}', asyncio.Event()
        )
        await asyncio.wait_for(task, 5)
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 200
    assert b"totalCount" in b"".join(m.get("body", b"") for m in sent[1:])
