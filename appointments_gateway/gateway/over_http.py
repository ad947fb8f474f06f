"""GraphQL-over-HTTP semantics on top of Strawberry's ASGI view.

What Strawberry 0.341 does by itself, and what this adds:

* It answers everything with ``application/json`` and status 200, whatever the client
  accepts.  A client that accepts ``application/graphql-response+json`` (and prefers it
  to ``application/json``) now gets that media type with the spec's status codes: 400
  when the request failed before execution (parse, validation, unknown operation,
  variable coercion, admission control); 200 whenever execution began, partial data and
  field errors included.  ``application/json`` clients keep the legacy status: 200 for
  every well-formed request.  Either way a request error has no ``data`` entry, where
  Strawberry sends ``"data": null``: the spec tells the two cases apart by it.
* Its refusals (bad JSON, a non-string ``query``, GET mutations...) are plain text; here
  they are GraphQL-shaped JSON errors with a DESIGN.md §5 code, in the negotiated type.
* It treats any content type containing ``application/json`` as JSON and refuses others
  with 400; here a POST must be exactly ``application/json`` (parameters such as charset
  allowed) and anything else gets 415.  This also keeps browsers' "simple" cross-site
  POSTs (``text/plain``, forms) from ever running a mutation.
* Batching (a JSON array of operations) is refused with a message that says so.  It is
  refused rather than supported because each operation of a batch would need its own
  admission-control budget, so one request could cost many times the per-request limit,
  and the upstream calls of one operation are already batched; a client gains nothing
  a few concurrent requests would not give it.
* Request JSON (the body, GET's ``variables`` and ``extensions``) is decoded by
  ``request_json.decode_request_json``: RFC 8259 JSON in strict UTF-8, at most
  ``MAX_JSON_DEPTH`` levels deep, else a 400.  ``json.loads`` took UTF-16 bodies and
  ``NaN``, raised ``UnicodeDecodeError`` on other non-UTF-8 bytes and ``RecursionError``
  on deep nesting (both 500s).
* A GET mutation gets 405 with ``Allow: POST``, as the spec requires, not 400.
* A request may name a persisted document instead of sending it (APQ's
  ``extensions.persistedQuery``, ``documentId``): ``gateway/persisted.py`` turns it into
  the text before Strawberry parses anything, and its refusals (``PERSISTED_QUERY_*``)
  are GraphQL errors with their own codes and statuses.
* GraphiQL's page goes only to a ``GET`` that names no operation (no ``query``,
  ``extensions`` or ``documentId``) from a client that asks for ``text/html`` by name.
  Strawberry serves it to ``Accept: */*`` too, so a script or client library without an
  ``Accept`` preference (Apollo's hashed ``GET``, curl) got a 200 page of HTML where it
  expected a JSON error.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any, overload

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult, SubscriptionExecutionResult
from strawberry.types.unset import UNSET

from appointments_gateway.gateway.middleware.errors import error_body
from appointments_gateway.gateway.persisted import (
    GatewayRequestData,
    PersistedDocuments,
    PersistedQueryRefusal,
)
from appointments_gateway.gateway.request_json import (
    MAX_JSON_DEPTH,
    JsonTooDeep,
    decode_request_json,
)
from appointments_gateway.resolvers.context import Context
from appointments_gateway.schema.errors import code_for

__all__ = [
    "GRAPHQL_RESPONSE_JSON",
    "GraphQLOverHTTP",
    "asks_for_html",
    "is_page_request",
    "prefers_graphql_response_json",
]

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
_JSON = "application/json"
_TOO_DEEP = f"The request's JSON is nested deeper than {MAX_JSON_DEPTH} levels."
_NOT_JSON = "{} is not valid JSON: send UTF-8 JSON as RFC 8259 defines it (no NaN or Infinity)."
#: Set in the ASGI scope when the result is a request error (execution never began).
_REQUEST_ERROR = "appointments_gateway.request_error"


def accept_quality(accept: str, media_types: Collection[str]) -> float:
    """The highest quality an ``Accept`` header gives any of ``media_types`` (0: none).

    Media types compare case-insensitively; a malformed ``q`` counts as 0.
    """
    best = 0.0
    for media_range in accept.lower().split(","):
        media_type, params = parse_content_type(media_range)
        if media_type in media_types:
            try:
                best = max(best, float(params.get("q", "1")))
            except ValueError:
                pass
    return best


def prefers_graphql_response_json(accept: str) -> bool:
    """Whether an ``Accept`` header asks for ``application/graphql-response+json``.

    Only an explicit mention counts (``*/*`` keeps ``application/json``, as the spec
    recommends during its transition), and only when its quality is at least that of
    ``application/json``; on a tie the newer type wins, as the spec prefers.
    """
    modern = accept_quality(accept, (GRAPHQL_RESPONSE_JSON,))
    return modern > 0 and modern >= accept_quality(accept, (_JSON, "application/*", "*/*"))


def asks_for_html(accept: str) -> bool:
    """Whether an ``Accept`` header names ``text/html`` (with a quality above 0).

    ``*/*`` alone does not count: every client library sends it, browsers name the type.
    """
    return accept_quality(accept, ("text/html",)) > 0


#: Query parameters of a GET that names an operation: no page for it, whatever it accepts.
_OPERATION_PARAMS = ("query", "extensions", "documentId")


def is_page_request(method: str, params: Mapping[str, Any], headers: Mapping[str, str]) -> bool:
    """A ``GET`` that names no operation, from a client that asks for HTML: GraphiQL's page."""
    return (
        method == "GET"
        and all(params.get(name) is None for name in _OPERATION_PARAMS)
        and asks_for_html(headers.get("accept", ""))
    )


#: Codes only execution produces: an error carrying one ended an operation that had begun
#: (the whole-operation deadline answers UPSTREAM_TIMEOUT without a path).
_EXECUTION_CODES = frozenset(
    {"UPSTREAM_TIMEOUT", "UPSTREAM_UNAVAILABLE", "RATE_LIMITED", "INTERNAL_SERVER_ERROR"}
)


def _is_request_error(result: ExecutionResult) -> bool:
    """No data and no error with a ``path``: the request failed before execution began.

    Field errors always carry a ``path`` (GraphQL spec §7.1.2); parse, validation and
    variable errors, and admission control's refusal, never do. An error with an
    execution-only code counts as execution even without a path.
    """
    errors = result.errors
    if result.data is not None or not errors:
        return False
    return all(
        error.path is None and (error.extensions or {}).get("code") not in _EXECUTION_CODES
        for error in errors
    )


class GraphQLOverHTTP(GraphQL[Context, None]):
    """Strawberry's view with the GraphQL-over-HTTP behaviour described in the module.

    ``persisted`` resolves persisted documents (``gateway/persisted.py``); ``None``
    leaves requests as they come (a request that names no text then has no query).
    """

    persisted: PersistedDocuments | None = None

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        return is_page_request(request.method, request.query_params, request.headers)

    @overload
    async def run(
        self, request: Request, context: Context = UNSET, root_value: None = UNSET
    ) -> Response: ...

    @overload
    async def run(
        self, request: WebSocket, context: Context = UNSET, root_value: None = UNSET
    ) -> WebSocket: ...

    async def run(
        self, request: Request | WebSocket, context: Context = UNSET, root_value: None = UNSET
    ) -> Response | WebSocket:
        if isinstance(request, WebSocket):
            return await super().run(request, context, root_value)
        media_type = (
            GRAPHQL_RESPONSE_JSON
            if prefers_graphql_response_json(request.headers.get("accept", ""))
            else _JSON
        )
        try:
            response = await super().run(request, context, root_value)
        except HTTPException as exc:
            return _refusal(request, exc, media_type)
        if media_type == GRAPHQL_RESPONSE_JSON and response.media_type == _JSON:
            response.headers["content-type"] = GRAPHQL_RESPONSE_JSON
            if request.scope.get(_REQUEST_ERROR) and response.status_code == 200:
                response.status_code = 400
        return response

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        if request.method == "GET":
            data = self.parse_query_params(request.query_params)
        elif request.method == "POST":
            content_type, _ = parse_content_type(request.content_type or "")
            if content_type != _JSON:
                raise HTTPException(
                    415,
                    "A GraphQL request must be sent as JSON, with 'Content-Type: "
                    "application/json'.",
                )
            try:
                decoded = decode_request_json(await request.get_body())
            except JsonTooDeep:
                raise HTTPException(400, _TOO_DEEP) from None
            except ValueError:
                raise HTTPException(400, _NOT_JSON.format("The request body")) from None
            if isinstance(decoded, list):
                raise HTTPException(
                    400,
                    "Batching (a JSON array of operations) is not supported: send each "
                    "operation in its own request.",
                )
            if not isinstance(decoded, dict):
                raise HTTPException(
                    400, 'The request body must be a JSON object such as {"query": "..."}.'
                )
            data = decoded
        else:  # pragma: no cover - the route takes GET and POST only
            return await super().parse_http_body(request)
        transport = self._get_stream_transport_from_headers(request.headers)
        return _request_data(data, "http" if transport is None else transport.protocol)

    def parse_json(self, data: str | bytes) -> Any:
        """GET's ``variables`` and ``extensions`` (and the body, again, once checked above)."""
        try:
            return decode_request_json(data)
        except JsonTooDeep:
            raise HTTPException(400, _TOO_DEEP) from None
        except ValueError:
            raise HTTPException(
                400, _NOT_JSON.format("The `variables` or `extensions` parameter")
            ) from None

    async def execute_operation(
        self,
        request: Any,
        request_adapter: Any,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Any,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        """Run the persisted document a request names; store a new one once it has run."""
        persisted = self.persisted
        if persisted is None or not isinstance(request_data, GraphQLRequestData):
            return await super().execute_operation(
                request, request_adapter, request_data, context, root_value, sub_response
            )
        resolved = await persisted.resolve(request_data)
        if resolved.query != request_data.query:
            request_data = replace(request_data, query=resolved.query)
        result = await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )
        if (
            resolved.register is not None
            and isinstance(result, ExecutionResult)
            and not _is_request_error(result)
        ):
            await persisted.register(*resolved.register)
        return result

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        for error in result.errors or ():
            # Parse errors never pass through the schema's extensions: give them the
            # code every error leaving the gateway must have.
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": code_for(error)}
        response: GraphQLHTTPResponse = await super().process_result(request, result)
        if _is_request_error(result):
            request.scope[_REQUEST_ERROR] = True
            # The spec: a request error has no data entry at all, not a null one, whatever
            # the media type (only the status code depends on it).
            response.pop("data", None)
        return response


def _request_data(data: dict[str, Any], protocol: Any) -> GatewayRequestData:
    """The request's parameters, each of the type the spec gives it (Strawberry's checks)."""
    for name, kind, what in (
        ("query", str, "a string"),
        ("variables", dict, "an object"),
        ("extensions", dict, "an object"),
        ("documentId", str, "a string"),
    ):
        if not isinstance(data.get(name), (kind, type(None))):
            raise HTTPException(
                400, f"The GraphQL operation's `{name}` must be {what} or null, if provided."
            )
    return GatewayRequestData(
        query=data.get("query"),
        variables=data.get("variables"),
        operation_name=data.get("operationName"),
        extensions=data.get("extensions"),
        protocol=protocol,
        document_id=data.get("documentId"),
    )


def _refusal(request: Request, exc: HTTPException, media_type: str) -> Response:
    status = exc.status_code
    headers: dict[str, Any] = {}
    if isinstance(exc.__cause__, InvalidOperationTypeError) and request.method == "GET":
        status = 405
        headers["allow"] = "POST"
    code = "NOT_FOUND" if status == 404 else "BAD_USER_INPUT"
    if isinstance(exc, PersistedQueryRefusal):
        code = exc.code
        if media_type == _JSON:
            status = exc.legacy_status
    return Response(
        error_body(exc.reason, code), status_code=status, headers=headers, media_type=media_type
    )
