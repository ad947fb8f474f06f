"""GraphQL over SSE against the real CLI over TCP, read by a real event-stream reader.

The reader is httpx's streaming response, its lines parsed here by the Server-Sent Events
rules (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
``field: value`` lines accumulate into an event, a blank line dispatches it, a line
starting with ``:`` is a comment.  Nothing of the gateway's code is used to read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from appointments_gateway.sandbox import DEMO_KEY_A
from tests.e2e.conftest import Running, serve_on_sandbox

pytestmark = pytest.mark.e2e

STREAM = {"Accept": "text/event-stream", "Accept-Encoding": "gzip"}


@dataclass
class ServerSentEvent:
    event: str = "message"
    data: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads("\n".join(self.data))


@dataclass
class EventStreamReader:
    """Dispatches the events of a streaming response as their blank line arrives."""

    response: httpx.Response
    comments: int = 0
    arrivals: list[float] = field(default_factory=list)

    def events(self) -> Iterator[ServerSentEvent]:
        current = ServerSentEvent()
        seen_field = False
        for line in self.response.iter_lines():
            if line == "":
                if seen_field:
                    self.arrivals.append(time.monotonic())
                    yield current
                current, seen_field = ServerSentEvent(), False
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            seen_field = True
            if name == "event":
                current.event = value
            elif name == "data":
                current.data.append(value)
            else:
                raise AssertionError(f"unexpected field in {line!r}")


def test_a_real_reader_gets_a_query_as_one_next_then_complete(cli: list[Running]) -> None:
    _, endpoint, _ = serve_on_sandbox(cli)
    query = {"query": "query Two { appointments(first: 2) { edges { node { id } } } }"}
    with (
        httpx.Client(timeout=10) as http,
        http.stream("POST", endpoint, json=query, headers=STREAM) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-accel-buffering"] == "no"
        # Not compressed, even though the client accepts gzip: gzip would hold events back.
        assert "content-encoding" not in response.headers
        reader = EventStreamReader(response)
        events = list(reader.events())
    assert [e.event for e in events] == ["next", "complete"]
    assert len(events[0].json()["data"]["appointments"]["edges"]) == 2
    assert events[1].data == [""]
    assert reader.comments >= 1  # the comment that opens the stream


def test_a_real_reader_gets_validation_errors_in_the_stream_and_refusals_as_json(
    cli: list[Running],
) -> None:
    _, endpoint, _ = serve_on_sandbox(cli, "--auth", "forward")
    query = {"query": "{ appointments(first: 1) { edges { node { nope } } } }"}
    with httpx.Client(timeout=10) as http:
        refused = http.post(endpoint, json=query, headers=STREAM)
        assert refused.status_code == 401
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        with http.stream(
            "POST",
            endpoint,
            json=query,
            headers={**STREAM, "Authorization": "Bearer " + DEMO_KEY_A},
        ) as response:
            assert response.status_code == 200
            events = list(EventStreamReader(response).events())
    assert [e.event for e in events] == ["next", "complete"]
    (error,) = events[0].json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "nope" in error["message"]
