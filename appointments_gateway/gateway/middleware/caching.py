"""``Cache-Control: no-store`` and ``Vary`` on every answer from ``/graphql``.

Every answer there may hold health data, so no cache, shared or private, may keep it:
``no-store`` (RFC 9111 §5.2.2.5) says so for the whole response, whatever produced it:
a result, a GraphQL error, a refusal of this stack (413, 415, 401, the host check), even
the 500 of a bug.  The same URL also answers differently by ``Accept`` (JSON, the newer
GraphQL media type, GraphiQL's HTML), ``Accept-Encoding`` (gzip) and ``Authorization``
(whose data it is), so ``Vary`` names all three, merged with what an inner layer has
already named (gzip's ``Accept-Encoding``, CORS's ``Origin``).  A cache that ignores
``no-store`` at least learns from ``Vary`` never to hand one caller's answer to another.

The headers go on in the response's start message, so they cost nothing per byte and
cover streaming answers too.  Other paths (probes, metrics, GraphiQL's static files,
which are cacheable on purpose) pass through untouched.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CACHE_CONTROL", "VARY", "NoStore"]

CACHE_CONTROL = "no-store"
#: What an answer of ``/graphql`` differs by.
VARY = ("Accept", "Accept-Encoding", "Authorization")


class NoStore:
    """Adds ``Cache-Control: no-store`` and ``Vary`` to every response of ``paths``."""

    def __init__(self, app: ASGIApp, *, paths: frozenset[str] = frozenset({"/graphql"})) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                headers["Cache-Control"] = CACHE_CONTROL
                named = [v.strip() for v in headers.get("vary", "").split(",") if v.strip()]
                known = {v.lower() for v in named}
                named += [v for v in VARY if v.lower() not in known]
                headers["Vary"] = ", ".join(named)
            await send(message)

        await self.app(scope, receive, send_with_headers)
