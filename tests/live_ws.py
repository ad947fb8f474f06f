"""A graphql-transport-ws client spoken message by message, and an app served over TCP.

The client is Python's ``websockets`` package (what uvicorn itself uses), with nothing of
Strawberry's in between: ``connection_init`` → ``connection_ack`` → ``subscribe`` →
``next``… → ``complete``, each message written and read as JSON, exactly as the protocol
(``graphql-ws``'s ``PROTOCOL.md``) lays them out.  Pings from the server are answered
with pongs unless a test says otherwise.

:func:`served_over_tcp` runs uvicorn on the test's own event loop on a free loopback
port (lifespan on), so a test can open real sockets to the app and still look at its
internals (the fan-out, the tasks) in the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
import websockets
from starlette.types import ASGIApp
from websockets.asyncio.client import ClientConnection

PROTOCOL = "graphql-transport-ws"
WAIT = 10.0


@contextlib.asynccontextmanager
async def served_over_tcp(app: ASGIApp) -> AsyncIterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 on this loop; yields ``host:port``."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(1000):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)
        sock.close()


@dataclass
class TransportWS:
    """One graphql-transport-ws connection (see the module docstring)."""

    ws: ClientConnection
    answer_pings: bool = True
    #: Messages of other kinds than the test waits for, in order (pings included).
    seen: list[dict[str, Any]] = field(default_factory=list)
    #: Messages of operations other than the one a ``next`` waited for, not yet taken.
    pending: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        address: str,
        payload: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
        ack: bool = True,
        answer_pings: bool = True,
        host_name: str | None = None,
    ) -> AsyncIterator[TransportWS]:
        """Open the socket, send ``connection_init`` and (``ack``) expect the ack.

        ``host_name``: the name the ``Host`` header carries (the socket still goes to
        ``address``), as a browser would send it after a DNS rebinding.
        """
        ip, port = address.rsplit(":", 1)
        uri = f"ws://{host_name or ip}:{port}/graphql"
        async with websockets.connect(
            uri,
            host=ip,
            port=int(port),
            subprotocols=[PROTOCOL],  # type: ignore[list-item]
            additional_headers=headers,
            open_timeout=WAIT,
            max_size=None,
        ) as ws:
            client = cls(ws, answer_pings=answer_pings)
            init: dict[str, Any] = {"type": "connection_init"}
            if payload is not None:
                init["payload"] = payload
            await client.send(init)
            if ack:
                message = await client.receive()
                assert message["type"] == "connection_ack", message
            yield client

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, within: float = WAIT) -> dict[str, Any]:
        """The next message within ``within`` s; ``ping``s are answered (and recorded)."""
        async with asyncio.timeout(within):
            while True:
                raw = await self.ws.recv()
                # The protocol's messages are text frames (a browser client drops binary).
                assert isinstance(raw, str), f"a binary frame: {raw!r:.80}"
                message: dict[str, Any] = json.loads(raw)
                if message.get("type") == "ping":
                    self.seen.append(message)
                    if self.answer_pings:
                        await self.send({"type": "pong"})
                    continue
                return message

    async def subscribe(self, id: str, query: str, variables: dict[str, Any] | None = None) -> None:
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        await self.send({"id": id, "type": "subscribe", "payload": payload})

    async def next(self, id: str, within: float = WAIT) -> dict[str, Any]:
        """The next ``next`` payload of operation ``id`` (other operations' are kept)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            mine = [m for m in self.pending if m.get("id") == id]
            if mine:
                message = mine[0]
                self.pending.remove(message)
            else:
                message = await self.receive(max(0.0, deadline - loop.time()))
            if message.get("id") == id and message["type"] == "next":
                payload: dict[str, Any] = message["payload"]
                return payload
            if message.get("id") == id and message["type"] in ("error", "complete"):
                raise AssertionError(f"operation {id} ended: {message}")
            if message.get("id") is not None:
                self.pending.append(message)
            else:
                self.seen.append(message)

    async def complete(self, id: str) -> None:
        await self.send({"id": id, "type": "complete"})

    async def closed(self, within: float = WAIT) -> tuple[int | None, str | None]:
        """Wait for the server to close the socket: its code and reason."""
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(self.ws.recv(), within)
        return self.ws.close_code, self.ws.close_reason


async def changes(
    client: TransportWS, id: str, count: int, *, within: float = WAIT
) -> list[dict[str, Any]]:
    """The next ``count`` ``appointmentChanged`` payloads of operation ``id``."""
    got = []
    for _ in range(count):
        payload = await client.next(id, within)
        assert "errors" not in payload, payload
        got.append(payload["data"]["appointmentChanged"])
    return got
