"""The GraphQL HTTP view: Strawberry's ASGI app with our per-request ``Context``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from appointments_gateway.gateway.credentials import (
    GatewayTokens,
    MissingCredential,
    credential_from_request,
)
from appointments_gateway.gateway.over_http import GraphQLOverHTTP
from appointments_gateway.resolvers.context import Context
from appointments_gateway.schema.example import EXAMPLE_QUERY
from appointments_gateway.upstream import Credential, UpstreamClient

__all__ = ["GatewayGraphQL"]

_EXAMPLE_START = "const EXAMPLE_QUERY = `"


class GatewayGraphQL(GraphQLOverHTTP):
    """Builds a fresh ``Context`` per request and refuses callers without a credential.

    Args:
        schema: the Strawberry schema.
        service_credential: the gateway's own key in service mode; ``None`` in forward mode.
        forward_base_url: where forwarded keys go (``None``: each key's Cliniko shard).
        graphiql: serve GraphiQL to browsers at ``GET /graphql``.
        tokens: service mode: the gateway tokens a caller must present; ``None`` lets
            anyone who reaches the port in (Settings allows that on loopback only).
    """

    def __init__(
        self,
        schema: Any,
        *,
        service_credential: Credential | None,
        forward_base_url: str | None,
        graphiql: bool,
        tokens: GatewayTokens | None = None,
    ) -> None:
        super().__init__(schema, graphql_ide="graphiql" if graphiql else None)
        self._service_credential = service_credential
        self._forward_base_url = forward_base_url
        self._ide_html: str | None = None
        self._tokens = tokens if service_credential is not None else None

    def _credential(self, request: Request | WebSocket) -> Credential:
        if self._service_credential is not None:
            return self._service_credential
        return credential_from_request(request, base_url=self._forward_base_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            self._service_credential is None or self._tokens is not None
        ):
            request = Request(scope)
            try:
                if self._tokens is not None:
                    self._tokens.check(request)
                else:
                    credential_from_request(request, base_url=self._forward_base_url)
            except MissingCredential as exc:
                # The GraphiQL page itself needs no key (the developer adds one in its
                # headers pane); every operation does, and is refused here, before
                # anything is parsed or sent upstream.
                wants_ide = (
                    request.method == "GET"
                    and "query" not in request.query_params
                    and "text/html" in request.headers.get("accept", "")
                )
                response = (
                    await self.render_graphql_ide(request)
                    if wants_ide and self.graphql_ide
                    else _unauthenticated(str(exc), bearer=self._tokens is not None)
                )
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    @property
    def graphql_ide_html(self) -> str:
        """Strawberry's GraphiQL page, opening with our example operation."""
        if self._ide_html is None:
            html = super().graphql_ide_html
            start = html.index(_EXAMPLE_START) + len(_EXAMPLE_START)
            end = html.index("`;", start)
            self._ide_html = html[:start] + EXAMPLE_QUERY + html[end:]
        return self._ide_html

    def encode_json(self, data: object) -> bytes:
        # orjson returns bytes, which Strawberry sends as they are (no str round trip).
        return orjson.dumps(data)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        upstream: UpstreamClient = request.state.upstream
        return Context.for_session(
            request,
            upstream.session(self._credential(request)),
            idempotency=request.state.idempotency,
        )


def _unauthenticated(message: str, *, bearer: bool = False) -> Response:
    scheme = "Bearer" if bearer else "Basic"
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]},
        status_code=401,
        headers={"WWW-Authenticate": f'{scheme} realm="appointments-gateway"'},
    )
