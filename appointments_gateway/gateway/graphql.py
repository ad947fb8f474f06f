"""The GraphQL view: Strawberry's ASGI app with our per-request ``Context``.

HTTP requests (``over_http.py``) and WebSocket connections (``over_ws.py``, live updates
over graphql-transport-ws) both come here; each operation gets a ``Context`` of its own,
built by :meth:`GatewayGraphQL.context_for`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import nullcontext
from datetime import timedelta
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.http import GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult, SubscriptionExecutionResult

from appointments_gateway.gateway.auth import (
    GatewayTokens,
    MissingCredential,
    authorization_from_params,
    credential_from_authorization,
    credential_from_request,
)
from appointments_gateway.gateway.graphiql import graphiql_page, page_response
from appointments_gateway.gateway.over_http import GraphQLOverHTTP, is_page_request
from appointments_gateway.gateway.over_ws import (
    GatewayTransportWS,
    Socket,
    SocketOptions,
    TextFrames,
)
from appointments_gateway.gateway.persisted import PersistedDocuments
from appointments_gateway.observability.tracing import Tracing
from appointments_gateway.replica import Replicas, ReplicaView
from appointments_gateway.resolvers.context import Context
from appointments_gateway.resolvers.live import LiveUpdates
from appointments_gateway.schema.example import EXAMPLE_QUERY, EXAMPLE_SUBSCRIPTION
from appointments_gateway.upstream import ClinikoSession, Credential, UpstreamClient

__all__ = ["GatewayGraphQL"]

#: How long past its deadline an operation may still run before the view gives up on it.
#: The session cuts every upstream call at the deadline itself, so resolvers finish with
#: field errors and partial data a moment later; this bound only catches time spent
#: elsewhere, and then the whole operation answers UPSTREAM_TIMEOUT.
BACKSTOP_GRACE_SECONDS = 0.5

logger = logging.getLogger("appointments_gateway.gateway")


class GatewayGraphQL(GraphQLOverHTTP):
    """Builds a fresh ``Context`` per request and refuses callers without a credential.

    Args:
        schema: the Strawberry schema.
        service_credential: the gateway's own key in service mode; ``None`` in forward mode.
        forward_base_url: where forwarded keys go (``None``: each key's Cliniko shard).
        graphiql: serve GraphiQL to browsers at ``GET /graphql``.
        tokens: service mode: the gateway tokens a caller must present; ``None`` lets
            anyone who reaches the port in (Settings allows that on loopback only).
        operation_timeout: seconds one operation may take, upstream calls included;
            ``None``: no deadline beyond each upstream call's own timeout.
        persisted: resolves APQ hashes and trusted document ids (``gateway/persisted.py``);
            ``None``: requests must send their text.
        sockets: the WebSocket limits and timings (``over_ws.py``).
        origins: the origins (``GATEWAY_CORS_ORIGINS``) whose pages may open a WebSocket
            besides the gateway's own (Strawberry checks ``Origin`` against ``Host`` and
            these before it accepts; a client that sends no ``Origin`` is no browser).
    """

    graphql_transport_ws_handler_class = GatewayTransportWS
    websocket_adapter_class = TextFrames  # type: ignore[assignment]

    def __init__(
        self,
        schema: Any,
        *,
        service_credential: Credential | None,
        forward_base_url: str | None,
        graphiql: bool,
        tokens: GatewayTokens | None = None,
        operation_timeout: float | None = None,
        tracing: Tracing | None = None,
        persisted: PersistedDocuments | None = None,
        sockets: SocketOptions | None = None,
        origins: tuple[str, ...] = (),
    ) -> None:
        self.socket_options = sockets or SocketOptions()
        super().__init__(
            schema,
            graphql_ide="graphiql" if graphiql else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=self.socket_options.init_timeout),
            # Counted by our handler, which answers with a code (over_ws.py).
            max_subscriptions_per_connection=None,
            allowed_origins=origins,
        )
        self.persisted = persisted
        self._service_credential = service_credential
        self._forward_base_url = forward_base_url
        self._ide_html: str | None = None
        self._tokens = tokens if service_credential is not None else None
        self._operation_timeout = operation_timeout
        self._tracing = tracing

    def _credential(self, request: Request | WebSocket) -> Credential:
        if self._service_credential is not None:
            return self._service_credential
        return credential_from_request(request, base_url=self._forward_base_url)

    def admit(self, request: Request) -> Response | None:
        """The 401 for a caller without what this mode needs, or ``None`` to go on.

        Service mode with tokens: a gateway token; forward mode: the caller's own key.
        HTTP and SSE alike check it before anything is parsed or sent upstream.
        """
        try:
            if self._tokens is not None:
                self._tokens.check(request)
            else:
                self._credential(request)
        except MissingCredential as exc:
            return _unauthenticated(str(exc), bearer=self._tokens is not None)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            self._service_credential is None or self._tokens is not None
        ):
            request = Request(scope)
            refusal = self.admit(request)
            if refusal is not None:
                # The GraphiQL page itself needs no key (the developer adds one in its
                # headers pane); every operation does, and is refused here, before
                # anything is parsed or sent upstream.
                response = (
                    await self.render_graphql_ide(request)
                    if self.graphql_ide
                    and is_page_request(request.method, request.query_params, request.headers)
                    else refusal
                )
                await response(scope, receive, send)
                return
        if scope["type"] == "http":
            await self._serve_until_disconnect(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def _serve_until_disconnect(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request, and cancel it if the client goes away before the answer.

        Neither uvicorn nor Starlette cancels a handler whose client hung up (only
        Starlette's streaming responses listen for that), so an abandoned operation would
        go on spending the key's upstream budget.  Once Strawberry has read the body (a
        GET has none to read), a watcher takes over ``receive``; an ``http.disconnect``
        before the response starts cancels this task, and the view's ``finally`` then
        cancels the operation's upstream calls still in flight (see
        ``execute_operation``).  Nothing is sent: nobody is there to read it.
        """
        task = asyncio.current_task()
        assert task is not None
        body_read = asyncio.Event()
        if scope.get("method") in ("GET", "HEAD"):
            body_read.set()
        responding = False
        disconnected = False

        async def receive_body() -> Message:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_read.set()
            return message

        async def send_tracked(message: Message) -> None:
            nonlocal responding
            responding = True
            await send(message)

        async def watch() -> None:
            nonlocal disconnected
            await body_read.wait()
            while (await receive())["type"] != "http.disconnect":
                pass
            if not responding:
                disconnected = True
                task.cancel()

        watcher = asyncio.create_task(watch())
        try:
            await super().__call__(scope, receive_body, send_tracked)
        except asyncio.CancelledError:
            if not disconnected:
                raise
            task.uncancel()
            logger.info("client disconnected; operation cancelled")
        finally:
            watcher.cancel()

    async def execute_operation(
        self,
        request: Any,
        request_adapter: Any,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Any,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        """Run the operation within its deadline; however it ends, end its upstream calls.

        The session's deadline cuts each upstream call short (field errors, partial
        data).  The bound here is the backstop for everything else, so a request never
        hangs past the deadline: it answers ``UPSTREAM_TIMEOUT`` for the whole operation.
        ``session.cancel()`` in ``finally`` stops calls that dataloaders started in tasks
        of their own, which cancelling this task (timeout, client gone) would not reach.
        """
        session = context.upstream
        deadline = session.deadline
        delay = None if deadline is None else deadline - time.monotonic() + BACKSTOP_GRACE_SECONDS
        span = self._tracing.operation() if self._tracing is not None else nullcontext()
        try:
            with span:
                async with asyncio.timeout(delay) as bound:
                    return await super().execute_operation(
                        request=request,
                        request_adapter=request_adapter,
                        request_data=request_data,
                        context=context,
                        root_value=root_value,
                        sub_response=sub_response,
                    )
        except TimeoutError:
            if not bound.expired():
                raise
            logger.warning("operation passed its deadline; answered UPSTREAM_TIMEOUT")
            timed_out = ExecutionResult(
                data=None,
                errors=[
                    GraphQLError(
                        "The operation did not finish in time.",
                        extensions={"code": "UPSTREAM_TIMEOUT"},
                    )
                ],
                extensions={
                    "upstream": {
                        "requests": session.stats.requests,
                        "milliseconds": round(session.stats.seconds * 1000, 1),
                    }
                },
            )
            return [timed_out] * len(request_data) if isinstance(request_data, list) else timed_out
        finally:
            session.cancel()
            replicas: Replicas | None = getattr(request.state, "replicas", None)
            if replicas is not None and context.local is None:
                # What this key's reads cost upstream decides when its replica starts.
                replicas.note_reads(session.credential, session.stats.requests)

    @property
    def graphql_ide_html(self) -> str:
        """Our GraphiQL page (gateway/graphiql.py), opening with our example operations."""
        if self._ide_html is None:
            self._ide_html = graphiql_page(EXAMPLE_QUERY, EXAMPLE_SUBSCRIPTION)
        return self._ide_html

    async def render_graphql_ide(self, request: Request) -> Response:
        # Assets from the gateway itself only, under a strict Content-Security-Policy.
        return page_response(self.graphql_ide_html)

    def encode_json(self, data: object) -> bytes:
        # orjson returns bytes, which Strawberry sends as they are (no str round trip).
        return orjson.dumps(data)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Any:
        """An HTTP request's ``Context``; for a WebSocket, the connection's :class:`Socket`.

        A WebSocket's credential comes later, with ``connection_init`` (:meth:`authenticate`),
        and each of its operations gets a ``Context`` then (:meth:`operation_context`).
        """
        if isinstance(request, WebSocket):
            return Socket(request)
        return self.context_for(request, self._credential(request))

    def context_for(self, conn: HTTPConnection, credential: Credential) -> Context:
        """A fresh ``Context`` for one operation of ``credential`` (HTTP, WebSocket, SSE).

        Its ``renewal`` gives a long-lived operation (a subscription) a new session (with
        its own deadline) and replica view for each result.
        """
        upstream: UpstreamClient = conn.state.upstream
        replicas: Replicas | None = getattr(conn.state, "replicas", None)
        live: LiveUpdates | None = getattr(conn.state, "live", None)
        use_replica = replicas is not None and not _bypasses_replica(conn)
        timeout = self._operation_timeout

        def renewal() -> tuple[ClinikoSession, ReplicaView | None]:
            session = upstream.session(credential)
            if timeout is not None:
                # The governor and the session both honour it (see ClinikoSession).
                session.deadline = time.monotonic() + timeout
            local = replicas.view(credential) if use_replica and replicas is not None else None
            return session, local

        session, local = renewal()
        return Context.for_session(
            conn,
            session,
            idempotency=conn.state.idempotency,
            local=local,
            live=live,
            renewal=renewal,
        )

    def authenticate(self, socket: Socket) -> Credential:
        """The credential of a WebSocket's ``connection_init`` (``MissingCredential``: none).

        Forward mode: the caller's key, as the HTTP header would carry it.  Service mode:
        the service key, once the payload's gateway token is accepted (with tokens).
        """
        header = authorization_from_params(socket.connection_params)
        if self._service_credential is not None:
            if self._tokens is not None:
                self._tokens.check_authorization(header or "")
            return self._service_credential
        return credential_from_authorization(header, base_url=self._forward_base_url)

    def operation_context(self, socket: Socket) -> Context:
        """A fresh ``Context`` for one operation of an accepted WebSocket."""
        if socket.credential is None:  # pragma: no cover - the handler acks first
            raise MissingCredential("connection_init first")
        return self.context_for(socket.websocket, socket.credential)


def _bypasses_replica(request: HTTPConnection) -> bool:
    """``Cache-Control: no-cache`` (RFC 9111 §5.2.1.4): answer from the upstream itself."""
    directives = request.headers.get("cache-control", "").lower()
    return any(d.strip() in ("no-cache", "no-store") for d in directives.split(","))


def _unauthenticated(message: str, *, bearer: bool = False) -> Response:
    scheme = "Bearer" if bearer else "Basic"
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]},
        status_code=401,
        headers={"WWW-Authenticate": f'{scheme} realm="appointments-gateway"'},
    )
