"""The one JSON error body the HTTP layer sends, shaped like a GraphQL response.

Clients parse every answer from ``/graphql`` as GraphQL; a refusal made before any
GraphQL runs (a body too large, say) still arrives as ``{"errors": [...]}`` with an
``extensions.code`` from DESIGN.md §5, so client error handling needs no special case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Send

__all__ = ["error_body", "http_exception", "send_error"]

#: ``extensions.code`` of the router's refusals, by status; any other 4xx is the caller's
#: request at fault.  A 405 has no code of its own in DESIGN.md §5.
_CODES = {401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND"}


def error_body(
    message: str, code: str = "BAD_USER_INPUT", extensions: Mapping[str, Any] | None = None
) -> bytes:
    """``{"errors": [{"message": ..., "extensions": {"code": ..., ...}}]}``, without ``data``.

    No ``data`` entry: the request failed before execution, and the GraphQL-over-HTTP
    spec asks for none then.  ``extensions`` adds entries after the code (``requestId``).
    """
    error = {"message": message, "extensions": {"code": code, **(extensions or {})}}
    return orjson.dumps({"errors": [error]})


async def send_error(
    send: Send,
    status: int,
    message: str,
    *,
    code: str = "BAD_USER_INPUT",
    extensions: Mapping[str, Any] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a complete ``application/json`` error response through raw ASGI ``send``."""
    body = error_body(message, code, extensions)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's handler for ``HTTPException``: the router's 404 and 405, as JSON.

    Starlette answers them in plain text ("Not Found"); a client that parses every answer
    as GraphQL gets an error with a code instead.  Headers are kept (``Allow`` on a 405).
    """
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status == 404:
        message = "There is nothing at this path; the GraphQL endpoint is /graphql."
    elif status == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"This path does not accept {request.method}; it accepts {allowed}."
    else:
        message = exc.detail
    code = _CODES.get(status, "BAD_USER_INPUT" if status < 500 else "INTERNAL_SERVER_ERROR")
    return Response(
        error_body(message, code),
        status_code=status,
        headers=exc.headers,
        media_type="application/json",
    )
