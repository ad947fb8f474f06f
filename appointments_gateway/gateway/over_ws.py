"""GraphQL over WebSocket: the graphql-transport-ws protocol, for live updates.

Strawberry speaks the protocol (``graphql-transport-ws``, the ``graphql-ws`` library's,
what Apollo Client and urql use); this module adapts its handler to the gateway:

* **Only graphql-transport-ws** is offered (the view's ``subscription_protocols``).  The
  legacy ``graphql-ws`` protocol of ``subscriptions-transport-ws`` is unmaintained since
  2018, has no standard refusal codes and every current client speaks the newer one; a
  client offering only it is closed with ``4406``.
* **Credentials come with ``connection_init``**, whose payload carries ``Authorization``
  as the HTTP header would (``gateway/auth.py``): the caller's Cliniko key in forward
  mode, the gateway token in service mode with ``GATEWAY_TOKENS``.  Refused: ``4403``
  with the reason (the protocol's *Forbidden*).  No ``connection_init`` within
  ``GATEWAY_WS_INIT_TIMEOUT``: ``4408``.
* **Each operation gets its own** :class:`~appointments_gateway.resolvers.context.Context`
  (its own loaders and session; a subscription renews them for every result), never one
  shared by the connection's operations.  Only subscriptions run here; a query or a
  mutation gets the protocol's ``error`` message (they go over HTTP, with persisted
  documents, the deadline and the log line that path gives them).
* **Limits**: at most ``GATEWAY_SUBSCRIPTIONS_PER_CONNECTION`` operations at once; one more
  gets an ``error`` message with ``TOO_MANY_SUBSCRIPTIONS`` (the connection stays).  The
  per-key limit and the slow-consumer drop are the fan-out's (``resolvers/live.py``): a
  dropped subscriber's operation ends with a last ``next`` carrying ``SLOW_CONSUMER``, then
  ``complete``; the connection and its other subscriptions stay.
* **Keep-alive**: every ``GATEWAY_WS_PING_INTERVAL`` seconds the server sends the
  protocol's ``ping``; a client that has not answered with ``pong`` (and taken the ping)
  within ``GATEWAY_WS_PONG_TIMEOUT`` is gone or wedged, and is closed with ``4408``
  ("Pong timeout"; ``graphql-ws`` clients reconnect after it).  A wedged client's
  subscriptions are bounded meanwhile by their queues.

When the socket goes, Strawberry cancels every operation's task; a subscription's stream
then leaves the fan-out in its ``finally`` (``resolvers/subscriptions.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from graphql import GraphQLError
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    CompleteMessage,
    ConnectionInitMessage,
    PongMessage,
    SubscribeMessage,
)
from strawberry.utils.aio import aclosing

from appointments_gateway.gateway.auth import MissingCredential
from appointments_gateway.resolvers.context import Context
from appointments_gateway.upstream import Credential

__all__ = ["GatewayTransportWS", "Socket", "SocketOptions", "SocketView", "TextFrames"]

logger = logging.getLogger("appointments_gateway.gateway")

#: WebSocket close reasons are at most 123 bytes (RFC 6455 §5.5).
_MAX_REASON_BYTES = 123
#: Close codes (graphql-transport-ws): refused credentials, and a timeout.
FORBIDDEN = 4403
TIMED_OUT = 4408


@dataclass(frozen=True, slots=True)
class SocketOptions:
    """The WebSocket settings (``GATEWAY_SUBSCRIPTIONS_PER_CONNECTION``, ``GATEWAY_WS_*``)."""

    per_connection: int = 20
    init_timeout: float = 10.0
    #: Seconds between two pings; 0: none.
    ping_interval: float = 15.0
    pong_timeout: float = 10.0


@dataclass(slots=True)
class Socket:
    """One WebSocket connection: Strawberry's per-connection context, not an operation's."""

    websocket: WebSocket
    #: ``connection_init``'s payload (Strawberry sets it).
    connection_params: dict[str, Any] = field(default_factory=dict)
    #: Set once ``connection_init`` is accepted.
    credential: Credential | None = None


class SocketView(Protocol):
    """What the handler needs of the view (``GatewayGraphQL``)."""

    socket_options: SocketOptions

    def authenticate(self, socket: Socket) -> Credential: ...

    def operation_context(self, socket: Socket) -> Context: ...


def close_reason(text: str) -> str:
    """``text`` cut to what a close frame can carry (whole characters)."""
    return text.encode("utf-8")[:_MAX_REASON_BYTES].decode("utf-8", "ignore")


class TextFrames(ASGIWebSocketAdapter):
    """Messages as text frames: the protocol's are JSON text (RFC 6455 text frames).

    The view encodes JSON with orjson, to bytes, which Strawberry's adapter sends as
    *binary* frames; a browser's ``graphql-ws`` client then receives a ``Blob`` it cannot
    parse, and closes the socket.
    """

    async def send_json(self, message: Any) -> None:
        data = self.view.encode_json(message)
        try:
            await self.ws.send_text(data.decode() if isinstance(data, bytes) else data)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class GatewayTransportWS(BaseGraphQLTransportWSHandler[Any, None]):
    """Strawberry's graphql-transport-ws handler, adapted as the module docstring says."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keep_alive: asyncio.Task[None] | None = None
        self._pong = asyncio.Event()

    @property
    def _view(self) -> SocketView:
        view: SocketView = self.view  # type: ignore[assignment]
        return view

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if self.connection_timed_out:
            return
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        payload = message.get("payload")
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            await self.websocket.close(code=4400, reason="Invalid connection init payload")
            return
        if self.connection_init_received:
            await self.websocket.close(code=4429, reason="Too many initialisation requests")
            return
        self.connection_init_received = True
        socket: Socket = self.context
        socket.connection_params = payload
        try:
            socket.credential = self._view.authenticate(socket)
        except MissingCredential as refused:
            await self.websocket.close(code=FORBIDDEN, reason=close_reason(str(refused)))
            return
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True
        if self._view.socket_options.ping_interval > 0:
            self._keep_alive = asyncio.create_task(self._pinging(), name="ws-keep-alive")

    async def handle_pong(self, message: PongMessage) -> None:
        self._pong.set()

    async def _pinging(self) -> None:
        options = self._view.socket_options
        while True:
            await asyncio.sleep(options.ping_interval)
            self._pong.clear()
            try:
                # The ping's own send counts: a client that does not read never takes it.
                async with asyncio.timeout(options.pong_timeout):
                    await self.send_message({"type": "ping"})
                    await self._pong.wait()
            except TimeoutError:
                logger.info("websocket closed: no pong in time")
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(options.pong_timeout):
                        await self.websocket.close(code=TIMED_OUT, reason="Pong timeout")
                return
            except Exception:  # the socket went: the handler's loop ends and shuts down
                return

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        limit = self._view.socket_options.per_connection
        if (
            self.connection_acknowledged
            and message["id"] not in self.operations
            and len(self.operations) >= limit
        ):
            error = GraphQLError(
                f"This connection has {limit} operations running already "
                "(GATEWAY_SUBSCRIPTIONS_PER_CONNECTION); complete one first.",
                extensions={
                    "code": "TOO_MANY_SUBSCRIPTIONS",
                    "limit": "perConnection",
                    "max": limit,
                },
            )
            await self.send_message(
                {"id": message["id"], "type": "error", "payload": [error.formatted]}
            )
            return
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[Any, None]) -> None:
        """Strawberry 0.341's, with an operation's own context, for subscriptions only."""
        try:
            context = self._view.operation_context(self.context)
            result_source = await self.schema.subscribe(
                operation.query,
                variable_values=operation.variables,
                context_value=context,
                root_value=self.root_value,
                operation_name=operation.operation_name,
            )
            async with aclosing(result_source):
                await self._send_result_stream(operation, result_source)
            await operation.send_operation_message(
                CompleteMessage(id=operation.id, type="complete")
            )
        except _OperationStreamClosed:
            return
        except Exception as error:
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise

    async def handle_task_exception(self, error: Exception) -> None:
        # The type only: a message might quote a row (observability/logs.py).
        logger.error("websocket operation failed (%s)", type(error).__name__)

    async def shutdown(self) -> None:
        if self._keep_alive is not None:
            self._keep_alive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keep_alive
        await super().shutdown()
