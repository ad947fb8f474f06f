"""The last answer to a bug: an exception nothing else caught becomes a JSON 500.

Starlette puts its own ``ServerErrorMiddleware`` outside every middleware an app adds, so
without this its plain-text "Internal Server Error" would be the answer: no code, no
``X-Request-Id`` (the request-id middleware never sees that response), and the server's
log line for it has no request id either (the request's context is gone by then).  This
middleware sits inside ``ObservabilityMiddleware`` (and CORS, so a browser page can read
the answer too): the 500 it sends is GraphQL-shaped like every other answer
(``INTERNAL_SERVER_ERROR`` with ``extensions.requestId``), gets the request-id header and
the request's own log line, and its ERROR line carries the request id, the exception's
type and its frames, never its message (``observability.logs``).

Once logged and answered, the exception goes no further: re-raising it would only make
the server log it a second time without the id.  If the response had already started,
there is no clean answer left to give; the exception is logged here and re-raised, so the
server drops the connection rather than end a truncated body as if it were complete.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appointments_gateway.gateway.middleware.errors import send_error
from appointments_gateway.observability import current_request_id
from appointments_gateway.observability.logs import FIELDS, describe_exception

__all__ = ["INTERNAL_ERROR_MESSAGE", "InternalErrors"]

#: The same words as a masked field error (schema/errors.py): one message for every bug.
INTERNAL_ERROR_MESSAGE = "Internal server error."

logger = logging.getLogger("appointments_gateway.errors")


class InternalErrors:
    """Answers an unexpected exception with a JSON 500 and logs it with the request id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except Exception as exc:
            request_id = current_request_id()
            fields = {"request_id": request_id, "exception": describe_exception(exc)}
            logger.error("unexpected error (answered 500)", extra={FIELDS: fields})
            if started:
                raise
            await send_error(
                send,
                500,
                INTERNAL_ERROR_MESSAGE,
                code="INTERNAL_SERVER_ERROR",
                extensions={"requestId": request_id} if request_id else None,
            )
