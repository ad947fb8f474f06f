"""The one JSON error body the HTTP layer sends, shaped like a GraphQL response.

Clients parse every answer from ``/graphql`` as GraphQL; a refusal made before any
GraphQL runs (a body too large, say) still arrives as ``{"errors": [...]}`` with an
``extensions.code`` from DESIGN.md §5, so client error handling needs no special case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.types import Send

__all__ = ["error_body", "send_error"]


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
