"""GraphQL over Server-Sent Events (``gateway/sse.py``), the ``graphql-sse`` protocol.

Finite streams go through ``httpx.ASGITransport`` (which hands over the body once the
app is done); streams that stay open are driven message by message straight through
the app's ASGI interface (:class:`Exchange`), so a test sees each chunk as it is sent
and decides when the client leaves.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import strawberry
import uvicorn
from asgi_lifespan import LifespanManager
from starlette.types import ASGIApp, Message

from appointments_gateway.gateway import create_app
from appointments_gateway.gateway import sse as sse_module
from appointments_gateway.gateway.auth import token_digest
from appointments_gateway.gateway.sse import wants_event_stream
from appointments_gateway.resolvers.context import Context
from appointments_gateway.resolvers.errors import NotFound
from appointments_gateway.sandbox import DEMO_KEY_A
from appointments_gateway.schema.build import GatewaySchema
from appointments_gateway.schema.errors import GatewayErrors
from appointments_gateway.schema.extensions import UpstreamUsage
from appointments_gateway.schema.observe import OperationObserver
from appointments_gateway.settings import Settings

STREAM = {"Accept": "text/event-stream"}


@dataclass
class Probe:
    """What the test schema's long subscription reports about its own life."""

    started: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    credentials: list[str] = field(default_factory=list)


PROBE = Probe()


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


@strawberry.type
class Mutation:
    @strawberry.mutation
    def bump(self) -> int:
        return 1


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def count(
        self, to: int, fail_at: int | None = None, missing_at: int | None = None
    ) -> AsyncGenerator[int, None]:
        for value in range(1, to + 1):
            if value == fail_at:
                raise RuntimeError("a bug's message, never shown")
            if value == missing_at:
                raise NotFound("No appointment has this id.")
            yield value

    @strawberry.subscription
    async def forever(self, info: strawberry.Info[Context, None]) -> AsyncGenerator[int, None]:
        PROBE.credentials.append(info.context.upstream.credential.fingerprint)
        PROBE.started.set()
        try:
            yield 1
            await asyncio.Event().wait()
            yield 2  # pragma: no cover - never reached
        finally:
            PROBE.closed.set()


SCHEMA = GatewaySchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    # As build_schema orders them: the observer first, so it sees the coded errors.
    extensions=[OperationObserver, GatewayErrors, UpstreamUsage],
)


@pytest.fixture(autouse=True)
def fresh_probe() -> None:
    global PROBE
    PROBE = Probe()


def app_for(settings: Settings | None = None, *, schema: Any = SCHEMA) -> ASGIApp:
    return create_app(settings or Settings(), schema=schema)


@dataclass
class Event:
    """One event of a stream; a comment line (keep-alive) has ``comment=True``."""

    event: str = ""
    data: str = ""
    comment: bool = False

    def json(self) -> Any:
        return json.loads(self.data)


def parse_events(text: str) -> list[Event]:
    """The events of a complete stream body, by the SSE spec's rules (LF line ends)."""
    assert text.endswith("\n\n"), text
    events = []
    for block in text.split("\n\n")[:-1]:
        event = Event()
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                event.comment = True
            elif name == "event":
                event.event = value
            elif name == "data":
                event.data = value
            else:
                raise AssertionError(f"unexpected field {line!r}")
        events.append(event)
    return events


def results(text: str) -> list[Any]:
    """The data of each ``next`` event, checking the stream ends with one ``complete``."""
    events = [e for e in parse_events(text) if not e.comment]
    assert [e.event for e in events[-1:]] == ["complete"], text
    assert events[-1].data == ""
    assert all(e.event == "next" for e in events[:-1]), text
    return [e.json() for e in events[:-1]]


@asynccontextmanager
async def client_for(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://localhost"
        ) as client,
    ):
        yield client


SUBSCRIBE = {"query": "subscription { count(to: 3) }"}


# --- which requests are event streams ------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/event-stream", True),
        ("text/event-stream; charset=utf-8", True),
        ("application/json, text/event-stream", True),
        ("text/event-stream;q=0.5, application/json", False),
        ("text/event-stream;q=0", False),
        ("application/json", False),
        ("*/*", False),
        ("", False),
    ],
)
def test_an_event_stream_is_asked_for_by_name_and_preferred_to_json(accept, expected):
    assert wants_event_stream(accept) is expected


async def test_json_clients_of_the_same_url_still_get_json():
    async with client_for(app_for()) as client:
        response = await client.post("/graphql", json={"query": "{ hello }"})
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "data": {"hello": "world"},
        "extensions": response.json()["extensions"],
    }


# --- the stream ----------------------------------------------------------------------


async def test_a_subscription_streams_each_result_then_complete_in_the_exact_framing():
    async with client_for(app_for()) as client:
        response = await client.post("/graphql", json=SUBSCRIBE, headers=STREAM)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["x-request-id"]
    body = response.text
    # A comment first (flushes the headers), LF line ends, one data line per event.
    assert body.startswith(':\n\nevent: next\ndata: {"data":{"count":1}')
    assert body.endswith("\n\nevent: complete\ndata:\n\n")
    assert [r["data"] for r in results(body)] == [{"count": 1}, {"count": 2}, {"count": 3}]


async def test_a_subscription_by_get_with_query_parameters():
    params = urlencode(
        {
            "query": "subscription Two($n: Int!) { count(to: $n) }",
            "variables": json.dumps({"n": 2}),
            "operationName": "Two",
        }
    )
    async with client_for(app_for()) as client:
        response = await client.get(f"/graphql?{params}", headers=STREAM)
    assert response.status_code == 200
    assert [r["data"] for r in results(response.text)] == [{"count": 1}, {"count": 2}]


async def test_queries_and_mutations_give_one_result_then_complete():
    async with client_for(app_for()) as client:
        query = await client.post("/graphql", json={"query": "{ hello }"}, headers=STREAM)
        mutation = await client.post(
            "/graphql", json={"query": "mutation { bump }"}, headers=STREAM
        )
        by_get = await client.get("/graphql?query={hello}", headers=STREAM)
    assert [r["data"] for r in results(query.text)] == [{"hello": "world"}]
    assert [r["data"] for r in results(mutation.text)] == [{"bump": 1}]
    assert [r["data"] for r in results(by_get.text)] == [{"hello": "world"}]


async def test_a_mutation_by_get_is_refused_405_before_any_stream():
    async with client_for(app_for()) as client:
        response = await client.get("/graphql?query=mutation{bump}", headers=STREAM)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"] == "application/json"
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("subscription { count(to: 3", "Syntax Error"),
        ("subscription { nope }", "Cannot query field 'nope'"),
        ("subscription { count }", "count(to:)"),
    ],
)
async def test_document_errors_come_through_an_accepted_stream(document, expected):
    """PROTOCOL.md: validation errors MUST be ``next`` events of an accepted stream."""
    async with client_for(app_for()) as client:
        response = await client.post("/graphql", json={"query": document}, headers=STREAM)
    assert response.status_code == 200
    (result,) = results(response.text)
    assert "data" not in result
    assert expected in result["errors"][0]["message"]
    assert result["errors"][0]["extensions"]["code"]


async def test_an_error_during_the_stream_is_a_next_event_then_complete():
    async with client_for(app_for()) as client:
        response = await client.post(
            "/graphql",
            json={"query": "subscription { count(to: 5, missingAt: 3) }"},
            headers=STREAM,
        )
    one, two, missing = results(response.text)
    assert [one["data"], two["data"]] == [{"count": 1}, {"count": 2}]
    assert missing["errors"][0]["message"] == "No appointment has this id."
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert "event: error" not in response.text


async def test_a_bug_during_the_stream_is_masked_with_the_request_id():
    async with client_for(app_for()) as client:
        bug = await client.post(
            "/graphql", json={"query": "subscription { count(to: 5, failAt: 2) }"}, headers=STREAM
        )
    first, failed = results(bug.text)
    assert first["data"] == {"count": 1}
    assert "never shown" not in bug.text
    assert failed["errors"][0]["message"] == "Internal server error."
    assert failed["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert failed["errors"][0]["extensions"]["requestId"] == bug.headers["x-request-id"]


# --- refusals before the stream ------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b'[{"query": "{ hello }"}]', "application/json", 400),
        (b'{"variables": {}}', "application/json", 400),
        (b"query=%7Bhello%7D", "application/x-www-form-urlencoded", 415),
    ],
)
async def test_unusable_requests_are_refused_as_json_with_their_status(
    content, content_type, status
):
    async with client_for(app_for()) as client:
        response = await client.post(
            "/graphql", content=content, headers={**STREAM, "Content-Type": content_type}
        )
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


async def test_forward_mode_refuses_a_stream_without_a_key():
    async with client_for(app_for(Settings(auth="forward"))) as client:
        refused = await client.post("/graphql", json=SUBSCRIBE, headers=STREAM)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Basic")
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert PROBE.credentials == []


async def test_forward_mode_runs_the_stream_with_the_callers_key():
    async with Exchange.open(
        app_for(Settings(auth="forward")),
        {"query": "subscription { forever }"},
        headers={"authorization": basic(DEMO_KEY_A)},
    ) as exchange:
        assert (await exchange.start())["status"] == 200
        assert (await exchange.next_event()).json()["data"] == {"forever": 1}
    from appointments_gateway.upstream import Credential

    expected = Credential.from_api_key(DEMO_KEY_A, base_url=None).fingerprint
    assert PROBE.credentials == [expected]


TOKEN = "sse-gateway-token-" + "t" * 24


@pytest.mark.parametrize(("authorization", "status"), [(None, 401), ("Bearer wrong", 401)])
async def test_service_mode_with_tokens_refuses_a_stream_without_a_valid_token(
    authorization, status
):
    settings = Settings(
        api_key=DEMO_KEY_A,
        host="0.0.0.0",
        allowed_hosts=("localhost",),
        gateway_tokens=(token_digest(TOKEN),),
    )
    headers = {**STREAM, **({"Authorization": authorization} if authorization else {})}
    async with client_for(app_for(settings)) as client:
        response = await client.post("/graphql", json=SUBSCRIBE, headers=headers)
        served = await client.post(
            "/graphql", json=SUBSCRIBE, headers={**STREAM, "Authorization": f"Bearer {TOKEN}"}
        )
    assert response.status_code == status
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert served.status_code == 200
    assert len(results(served.text)) == 3


# --- the gateway's own schema: admission and persisted documents ---------------------


async def test_query_too_complex_comes_through_the_stream_before_anything_runs():
    deep = "{ appointments(first: 1) { edges { node { patient { firstName } } } } }"
    async with client_for(create_app(Settings(max_depth=3))) as client:
        response = await client.post("/graphql", json={"query": deep}, headers=STREAM)
    assert response.status_code == 200
    (result,) = results(response.text)
    assert result["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "data" not in result


async def test_a_query_of_the_real_schema_over_sse_reports_its_upstream_cost():
    async with client_for(create_app(Settings())) as client:
        response = await client.post(
            "/graphql",
            json={"query": "{ appointments(first: 2) { edges { node { id } } } }"},
            headers=STREAM,
        )
    (result,) = results(response.text)
    assert len(result["data"]["appointments"]["edges"]) == 2
    assert result["extensions"]["upstream"]["requests"] >= 0


async def test_persisted_queries_over_sse():
    text = "subscription { count(to: 2) }"
    digest = hashlib.sha256(text.encode()).hexdigest()
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    async with client_for(app_for()) as client:
        unknown = await client.post("/graphql", json={"extensions": persisted}, headers=STREAM)
        stored = await client.post(
            "/graphql", json={"query": text, "extensions": persisted}, headers=STREAM
        )
        by_hash = await client.get(
            "/graphql?" + urlencode({"extensions": json.dumps(persisted)}), headers=STREAM
        )
    (refusal,) = results(unknown.text)
    assert refusal["errors"][0]["message"] == "PersistedQueryNotFound"
    assert refusal["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert [r["data"] for r in results(stored.text)] == [{"count": 1}, {"count": 2}]
    assert [r["data"] for r in results(by_hash.text)] == [{"count": 1}, {"count": 2}]


async def test_the_operation_log_line_is_written_when_the_stream_ends(caplog):
    caplog.set_level(logging.INFO, logger="appointments_gateway.operations")
    async with client_for(app_for()) as client:
        response = await client.post(
            "/graphql", json={"query": "subscription Counting { count(to: 2) }"}, headers=STREAM
        )
    (record,) = [r for r in caplog.records if r.name == "appointments_gateway.operations"]
    fields = record.__dict__["fields"] if "fields" in record.__dict__ else None
    line = record.getMessage() + json.dumps(fields or {}, default=str) + str(record.__dict__)
    assert "Counting" in line
    assert "subscription" in line
    assert response.headers["x-request-id"] in line


# --- streams that stay open: driven message by message --------------------------------


@dataclass
class Exchange:
    """One request driven through an ASGI app by hand: each message as the app sends it."""

    task: asyncio.Task[None]
    sent: asyncio.Queue[Message]
    leave: asyncio.Event
    buffer: str = ""

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        app: ASGIApp,
        body: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
    ) -> AsyncIterator[Exchange]:
        async with LifespanManager(app) as manager:
            exchange = cls.start_on(manager.app, body, headers or {})
            try:
                yield exchange
            finally:
                exchange.leave.set()
                await asyncio.wait_for(exchange.task, 5)

    @classmethod
    def start_on(cls, app: ASGIApp, body: dict[str, Any], headers: dict[str, str]) -> Exchange:
        raw = json.dumps(body).encode()
        leave = asyncio.Event()
        sent: asyncio.Queue[Message] = asyncio.Queue()
        request_read = False

        async def receive() -> Message:
            nonlocal request_read
            if not request_read:
                request_read = True
                return {"type": "http.request", "body": raw, "more_body": False}
            await leave.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            await sent.put(message)

        all_headers = {
            "host": "localhost",
            "accept": "text/event-stream",
            "content-type": "application/json",
            "content-length": str(len(raw)),
            **headers,
        }
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/graphql",
            "raw_path": b"/graphql",
            "query_string": b"",
            "root_path": "",
            "headers": [(k.encode(), v.encode()) for k, v in all_headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("localhost", 80),
        }

        async def run() -> None:
            await app(scope, receive, send)

        task = asyncio.create_task(run())
        return cls(task, sent, leave)

    async def message(self, within: float = 5.0) -> Message:
        return await asyncio.wait_for(self.sent.get(), within)

    async def start(self) -> Message:
        message = await self.message()
        assert message["type"] == "http.response.start"
        return message

    async def next_block(self, within: float = 5.0) -> Event:
        """The next event or comment, reading body chunks as they come."""
        while "\n\n" not in self.buffer:
            message = await self.message(within)
            assert message["type"] == "http.response.body", message
            assert message.get("more_body"), "the stream ended"
            self.buffer += message["body"].decode()
        block, self.buffer = self.buffer.split("\n\n", 1)
        (event,) = parse_events(block + "\n\n")
        return event

    async def next_event(self, within: float = 5.0) -> Event:
        """The next event that is not a comment."""
        while (event := await self.next_block(within)).comment:
            pass
        return event


async def test_the_stream_flushes_a_comment_at_once_then_keeps_alive_while_idle(monkeypatch):
    monkeypatch.setattr(sse_module, "KEEP_ALIVE_SECONDS", 0.1)
    async with Exchange.open(app_for(), {"query": "subscription { forever }"}) as exchange:
        start = await exchange.start()
        headers = dict(start["headers"])
        assert headers[b"connection"] == b"keep-alive"
        assert (await exchange.next_block()).comment
        assert (await exchange.next_block()).json()["data"] == {"forever": 1}
        loop = asyncio.get_running_loop()
        began = loop.time()
        pings = [await exchange.next_block(within=1.0) for _ in range(3)]
        assert all(p.comment for p in pings)
        # One per idle interval, not a burst.
        assert loop.time() - began >= 0.25


async def test_a_client_that_leaves_ends_the_subscription_and_leaves_no_task():
    async with LifespanManager(app_for()) as manager:
        before = asyncio.all_tasks()
        exchange = Exchange.start_on(manager.app, {"query": "subscription { forever }"}, {})
        await exchange.start()
        assert (await exchange.next_event()).json()["data"] == {"forever": 1}
        assert PROBE.started.is_set()
        during = asyncio.all_tasks() - before
        assert len(during) >= 3  # the request, its operation, the keep-alive (and watcher)

        exchange.leave.set()  # http.disconnect
        await asyncio.wait_for(exchange.task, 2)
        assert PROBE.closed.is_set()  # the subscription's generator was closed
        await asyncio.sleep(0)
        assert asyncio.all_tasks() - before == set()
        # Nothing is written after the client left.
        while not exchange.sent.empty():
            message = exchange.sent.get_nowait()
            assert not message.get("body", b"").startswith(b"event: complete")


async def test_gzip_does_not_hold_back_a_streamed_event():
    async with Exchange.open(
        app_for(), {"query": "subscription { forever }"}, headers={"accept-encoding": "gzip"}
    ) as exchange:
        start = await exchange.start()
        headers = dict(start["headers"])
        assert b"content-encoding" not in headers
        assert headers[b"content-type"] == b"text/event-stream"
        # The first result arrives while the stream is still open (it never ends).
        assert (await exchange.next_event()).json()["data"] == {"forever": 1}
        assert not exchange.task.done()


async def eventually(condition: Callable[[], bool], *, within: float) -> None:
    """Wait until ``condition()`` holds, checking every 10 ms; fail after ``within`` s."""
    for _ in range(int(within / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


@asynccontextmanager
async def served_over_tcp(app: ASGIApp) -> AsyncIterator[str]:
    """``app`` served by uvicorn on a free loopback port, on this test's own event loop."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, lifespan="on", ws="none", access_log=False)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: server.started, within=15)
        yield f"http://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 15)
        sock.close()


async def test_over_tcp_a_reader_that_hangs_up_ends_the_subscription_at_once():
    """uvicorn tells the app through ``receive`` only: its ``send`` drops writes silently."""
    async with served_over_tcp(app_for()) as url, httpx.AsyncClient(timeout=5) as http:
        before = asyncio.all_tasks()
        async with http.stream(
            "POST", url, json={"query": "subscription { forever }"}, headers=STREAM
        ) as response:
            assert response.status_code == 200
            lines = response.aiter_lines()
            while not (await anext(lines)).startswith("data: "):
                pass
            assert PROBE.started.is_set()
        # Leaving the block closed the connection mid-stream (nothing was ever complete).
        await asyncio.wait_for(PROBE.closed.wait(), 2)
        await eventually(lambda: not asyncio.all_tasks() - before, within=2)
