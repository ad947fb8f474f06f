"""GraphQL over Server-Sent Events: the ``graphql-sse`` protocol, distinct connections mode.

The protocol is that of the ``graphql-sse`` library (its ``PROTOCOL.md``): every
operation is one HTTP request that the server answers with one event stream.  What the
gateway does, and why:

* **Where.** ``/graphql``, the HTTP endpoint itself: a ``GET`` or ``POST`` whose
  ``Accept`` names ``text/event-stream`` (and prefers it to JSON) comes here
  (:class:`EventStreamDispatch`), everything else goes to the JSON view as before.  The
  ``graphql-sse`` client sends exactly ``Accept: text/event-stream``.  One URL keeps one
  set of middleware (request id and the operation's log line, CORS, the host check,
  ``Cache-Control: no-store``, the body limit) and one URL in every client's config.
* **Request.** As over HTTP (``over_http.py``, whose parsing this reuses): ``POST`` with
  a JSON body ``{query, variables, operationName, extensions}``, or ``GET`` with them as
  query parameters; persisted documents (APQ hashes, ``documentId``) resolve as there.
  Credentials and their refusals are those of ``GatewayGraphQL``: the gateway token in
  service mode, the caller's own key in forward mode, both in ``Authorization``.
* **Answers before the stream.** What makes the request unusable is answered as JSON
  with its HTTP status, as the reference server does: 401 without a credential, 400 for
  bad JSON, a missing query or a batch, 415 for another body type, 405 (``Allow: POST``)
  for a mutation sent by ``GET``.  Everything GraphQL itself refuses before execution
  (syntax, validation, ``QUERY_TOO_COMPLEX``, variables, persisted-document refusals)
  goes *through an accepted stream*, as the protocol requires: status 200, one ``next``
  event whose data holds the ``errors``, then ``complete``.  (A browser's
  ``EventSource`` shows nothing of a 400's body.)
* **Stream.** ``Content-Type: text/event-stream``, ``Cache-Control: no-store``,
  ``X-Accel-Buffering: no`` (nginx must not buffer it), ``Connection: keep-alive`` on
  HTTP/1.1.  A comment line ``:`` goes out at once (some browsers report the stream open
  only once bytes arrive) and again after every :data:`KEEP_ALIVE_SECONDS` without a
  write, so proxies do not cut idle streams.  Each result is ``event: next`` with one
  ``data:`` line of JSON (orjson never writes a raw newline), and the end is ``event:
  complete`` with an empty ``data:`` line: the ``graphql-sse`` client reads that as
  ``null``, and a browser's ``EventSource`` dispatches only events that have one.  No
  ``event: error``: errors during execution are results (``next`` with ``errors``), then
  ``complete``.
* **Any operation.** Subscriptions stream until their source ends or the client leaves;
  queries and mutations (mutations only by ``POST``) give one ``next``, then
  ``complete``.  Strawberry's ``schema.stream`` runs all three, inside the schema's
  extensions, so admission, error masking and the operation log line apply as over
  HTTP.  A subscription has no whole-operation deadline (it lasts as long as the client
  stays); queries and mutations keep ``GATEWAY_OPERATION_TIMEOUT``.
* **The client leaving** (``http.disconnect``; uvicorn's ``send`` just drops what comes
  after it) cancels the task that drives the operation, which closes its async
  generator (the subscription's ``finally`` runs), stops the keep-alive and ends the
  operation's upstream calls.  Nothing of the stream outlives the request.

Strawberry 0.341 has an SSE transport of its own (``SSETransport``, enabled by listing
``graphql-sse`` in the view's protocols).  It is not used as it is because it streams
from inside the JSON view: there ``GatewayGraphQL`` bounds the operation by its deadline
and ends its upstream session as soon as the stream *starts*, its disconnect watcher
takes the ``http.disconnect`` the stream would need to stop (so an idle subscription
would outlive its client until the next write), and it neither flushes on accept nor
answers request errors with a status.  This module keeps its framing rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError, OperationDefinitionNode, get_operation_ast, parse
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from appointments_gateway.gateway.graphql import GatewayGraphQL
from appointments_gateway.gateway.middleware.errors import error_body
from appointments_gateway.gateway.over_http import accept_quality
from appointments_gateway.gateway.persisted import PersistedQueryRefusal, Resolved
from appointments_gateway.observability.requests import current_request_id
from appointments_gateway.replica import Replicas
from appointments_gateway.resolvers.context import Context

__all__ = [
    "EVENT_STREAM",
    "KEEP_ALIVE_SECONDS",
    "EventStreamDispatch",
    "GraphQLOverSSE",
    "wants_event_stream",
]

EVENT_STREAM = "text/event-stream"
#: Seconds without a write after which a comment line goes out; proxies commonly cut a
#: response that is silent for 30 to 60 s.
KEEP_ALIVE_SECONDS = 15.0
#: The most tokens the look at a document's operation type reads (the schema's own
#: default limit); a longer document is looked at no further and keeps the deadline.
PEEK_MAX_TOKENS = 5000

_JSON_TYPES = ("application/json", "application/graphql-response+json")
_KEEP_ALIVE = b":\n\n"
_COMPLETE = b"event: complete\ndata:\n\n"

logger = logging.getLogger("appointments_gateway.gateway")


def wants_event_stream(accept: str) -> bool:
    """Whether ``Accept`` names ``text/event-stream`` and likes it at least as well as JSON.

    Only an explicit mention counts (``*/*`` is every client's default, and keeps JSON).
    """
    stream = accept_quality(accept, (EVENT_STREAM,))
    return stream > 0 and stream >= accept_quality(accept, _JSON_TYPES)


class EventStreamDispatch:
    """The ``/graphql`` endpoint: event-stream requests to ``sse``, the rest to ``view``."""

    def __init__(self, view: GatewayGraphQL, sse: GraphQLOverSSE | None = None) -> None:
        self.view = view
        self.sse = sse or GraphQLOverSSE(view)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "POST")
            and wants_event_stream(Headers(scope=scope).get("accept", ""))
        ):
            await self.sse(scope, receive, send)
        else:
            await self.view(scope, receive, send)


class GraphQLOverSSE:
    """Serves one operation per request as a ``graphql-sse`` event stream.

    Args:
        view: the JSON view whose credentials, request parsing, context, persisted
            documents and result processing this shares.
        keep_alive: seconds without a write before a comment line goes out
            (:data:`KEEP_ALIVE_SECONDS` as it is when the handler is built).
    """

    def __init__(self, view: GatewayGraphQL, *, keep_alive: float | None = None) -> None:
        self.view = view
        self.keep_alive = KEEP_ALIVE_SECONDS if keep_alive is None else keep_alive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        prepared = self.view.admit(request) or await self._prepare(request)
        if isinstance(prepared, Response):
            await prepared(scope, receive, send)
        else:
            await self._stream(request, prepared, receive, send)

    async def _prepare(self, request: Request) -> _Operation | Response:
        view = self.view
        try:
            data = await view.parse_http_body(view.request_adapter_class(request))
        except HTTPException as exc:
            code = "NOT_FOUND" if exc.status_code == 404 else "BAD_USER_INPUT"
            return _json_error(exc.reason, exc.status_code, code)
        assert not isinstance(data, list)  # parse_http_body refuses batches
        resolved: Resolved | None = None
        refusal: PersistedQueryRefusal | None = None
        if view.persisted is not None:
            try:
                resolved = await view.persisted.resolve(data)
            except PersistedQueryRefusal as exc:
                refusal = exc
        query = resolved.query if resolved is not None else data.query
        if query is None and refusal is None:
            return _json_error("No GraphQL query found in the request.", 400)
        kind = _operation_type(query, data.operation_name) if query is not None else None
        if kind is OperationType.MUTATION and request.method == "GET":
            return _json_error(
                "Mutations cannot be sent by GET: send them by POST.",
                405,
                headers={"allow": "POST"},
            )
        return _Operation(
            query=query,
            variables=data.variables,
            operation_name=data.operation_name,
            extensions=data.extensions,
            kind=kind,
            register=resolved.register if resolved is not None else None,
            refusal=refusal,
        )

    async def _stream(
        self, request: Request, operation: _Operation, receive: Receive, send: Send
    ) -> None:
        view = self.view
        context: Context = await view.get_context(request, None)
        session = context.upstream
        if operation.kind is OperationType.SUBSCRIPTION:
            # It lasts as long as its client stays; each event's reads are bounded by the
            # upstream timeouts and the governor's wait, not by the connect time.
            session.deadline = None
        headers = [
            (b"content-type", EVENT_STREAM.encode()),
            (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"),
        ]
        if request.scope.get("http_version") == "1.1":
            headers.append((b"connection", b"keep-alive"))

        lock = asyncio.Lock()
        loop = asyncio.get_running_loop()
        last_write = loop.time()

        async def write(chunk: bytes) -> None:
            nonlocal last_write
            async with lock:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                last_write = loop.time()

        async def produce() -> None:
            try:
                async for payload in self._results(request, operation, context):
                    await write(b"event: next\ndata: " + payload + b"\n\n")
            except Exception:
                # A bug, not an answer: the client gets a masked error, the log the rest.
                logger.exception("the event stream's operation failed")
                request_id = current_request_id()
                body = error_body(
                    "Internal server error.",
                    "INTERNAL_SERVER_ERROR",
                    {"requestId": request_id} if request_id is not None else None,
                )
                await write(b"event: next\ndata: " + body + b"\n\n")
            await write(_COMPLETE)

        async def keep_alive() -> None:
            while True:
                await asyncio.sleep(max(0.0, last_write + self.keep_alive - loop.time()))
                if loop.time() - last_write >= self.keep_alive:
                    await write(_KEEP_ALIVE)

        async def client_gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await write(_KEEP_ALIVE)
        producer = asyncio.create_task(produce())
        pinger = asyncio.create_task(keep_alive())
        watcher = asyncio.create_task(client_gone())
        try:
            await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (producer, pinger, watcher):
                task.cancel()
            await asyncio.gather(producer, pinger, watcher, return_exceptions=True)
            # However it ended, end its upstream calls (the session a long-lived operation
            # renewed for its last result too), as the HTTP view does.
            session.cancel()
            latest = context.upstream
            latest.cancel()
            replicas: Replicas | None = getattr(request.state, "replicas", None)
            if replicas is not None and context.local is None:
                replicas.note_reads(latest.credential, latest.stats.requests)
        if watcher.done() and not watcher.cancelled():
            logger.info("event stream client disconnected; operation ended")
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _results(
        self, request: Request, operation: _Operation, context: Context
    ) -> AsyncGenerator[bytes, None]:
        """Each result of the operation, processed as over HTTP and encoded as JSON."""
        view = self.view
        if operation.refusal is not None:
            refused = PreExecutionError(
                data=None,
                errors=[
                    GraphQLError(
                        operation.refusal.reason, extensions={"code": operation.refusal.code}
                    )
                ],
            )
            yield view.encode_json(await view.process_result(request, refused))
            return
        allowed = (
            {OperationType.QUERY, OperationType.SUBSCRIPTION}
            if request.method == "GET"
            else {OperationType.QUERY, OperationType.MUTATION, OperationType.SUBSCRIPTION}
        )
        results = await view.schema.stream(
            operation.query,
            variable_values=operation.variables,
            context_value=context,
            operation_name=operation.operation_name,
            operation_extensions=operation.extensions,
            allowed_operation_types=allowed,
        )
        register = operation.register
        pending: list[Any] = []
        async with contextlib.aclosing(results):
            async for result in results:
                if register is not None and not isinstance(result, PreExecutionError):
                    assert view.persisted is not None
                    await view.persisted.register(*register)
                    register = None
                payload, pending = await view._process_stream_result(request, result, pending)
                yield view.encode_json(payload)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Operation:
    """A request that may run: what to run, or the refusal to stream instead."""

    query: str | None
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None
    #: What the document selects, if a bounded look could tell.
    kind: OperationType | None
    #: APQ: the hash and text to store once the operation has begun.
    register: tuple[str, str] | None
    #: A persisted-document refusal, streamed as the operation's one result.
    refusal: PersistedQueryRefusal | None


def _operation_type(query: str, operation_name: str | None) -> OperationType | None:
    """The type of the operation ``query`` selects; ``None`` if it cannot be told.

    A bounded parse (at most :data:`PEEK_MAX_TOKENS`), without locations; the schema
    parses the document again under its own limits, and refuses what is wrong with it.
    """
    try:
        document = parse(query, no_location=True, max_tokens=PEEK_MAX_TOKENS)
    except GraphQLError:
        return None
    node = get_operation_ast(document, operation_name)
    if not isinstance(node, OperationDefinitionNode):
        return None
    return OperationType(node.operation.value)


def _json_error(
    message: str, status: int, code: str = "BAD_USER_INPUT", headers: dict[str, str] | None = None
) -> Response:
    return Response(
        error_body(message, code),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )
