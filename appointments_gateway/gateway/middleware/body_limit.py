"""Refuse request bodies over a size limit without ever holding more than the limit.

Strawberry reads the whole body into memory before it looks at it, so without a limit
one client could make a worker buffer gigabytes.  A declared ``Content-Length`` over
the limit is refused before the application runs at all; a body without one (chunked)
or with a lying one is counted as it streams in, and the application's ``receive`` fails
the moment the count passes the limit, so at most one ASGI chunk more than the limit is
ever read.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appointments_gateway.gateway.middleware.errors import send_error

__all__ = ["BodySizeLimit", "BodyTooLarge"]


class BodyTooLarge(Exception):
    """Raised from ``receive`` once the body passes the limit; the middleware answers 413."""


class BodySizeLimit:
    """Answers 413 with a GraphQL-style JSON error for bodies over ``max_bytes``.

    The 413 is sent only if the application has not started its response; whatever the
    application (or a middleware inside this one) tries to send after the limit was
    passed is dropped, so a 500 from something that caught ``BodyTooLarge`` on the way
    out never reaches the client instead of the 413.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if started:
                raise
        if exceeded and not started:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await send_error(
            send,
            413,
            f"The request body is larger than the gateway accepts ({self.max_bytes} bytes).",
            # The rest of the body is never read; closing tells the client not to send
            # the next request on this connection after it.
            headers=[(b"connection", b"close")],
        )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects it; the count still applies
    return None
