"""The HTTP plumbing both of the sandbox's doors share: the API (``/v1``) and the web app.

One copy of how a body is read, how an id in the path is parsed, how a refusal is answered and
how a row becomes JSON, so what the web app (:mod:`.webapp`) answers is exactly what the API
(:mod:`.app`) would serve for the same row, and a body one door refuses the other refuses with
the same words.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .filters import QueryError
from .payloads import appointment_payload, related_payload
from .store import Store
from .writes import ValidationFailed

__all__ = [
    "Handler",
    "answering_refusals",
    "api_base",
    "json_error",
    "path_id",
    "read_body",
    "row_payload",
    "store_of",
]

Handler = Callable[[Request], Awaitable[Response]]


def json_error(status: int, message: str) -> JSONResponse:
    """``{"message": ...}`` with ``status``: the one error body the sandbox sends."""
    return JSONResponse({"message": message}, status_code=status)


def store_of(request: Request) -> Store:
    """The store of the app serving ``request`` (``app.state.sandbox.store``)."""
    store: Store = request.app.state.sandbox.store
    return store


def api_base(request: Request) -> str:
    """The API root for links, on the host the request came in on (as Cliniko's shards do)."""
    return str(request.base_url).rstrip("/") + "/v1"


def path_id(request: Request) -> int | None:
    """The ``{id}`` path parameter as an int64, or ``None`` (then the answer is a 404)."""
    raw: str = request.path_params["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or int(raw) >= 2**63:
        return None
    return int(raw)


async def read_body(request: Request) -> dict[str, Any]:
    """The JSON object in the body (``{}`` when empty); anything else is a 400."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise QueryError("The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise QueryError("The request body must be a JSON object.")
    return body


def row_payload(table: str, row: sqlite3.Row, base: str) -> dict[str, Any]:
    """A row of any served table as the API's GET serialises it."""
    if table == "appointments":
        return appointment_payload(row, base)
    return related_payload(table, row, base)


def answering_refusals(validation_status: int) -> Callable[[Handler], Handler]:
    """A decorator turning a handler's refusals into answers.

    :class:`QueryError` becomes a 400 ``{"message"}``; :class:`ValidationFailed` becomes
    ``{"message": "Validation Failed", "errors": {...}}`` with ``validation_status``: Cliniko's
    422 for the API, 400 for the web app (a test tool, where any bad input is a 400).
    """

    def decorate(handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except QueryError as exc:
                return json_error(400, exc.message)
            except ValidationFailed as exc:
                body = {"message": "Validation Failed", "errors": exc.errors}
                return JSONResponse(body, status_code=validation_status)

        return wrapped

    return decorate
