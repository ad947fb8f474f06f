"""CORS: Starlette's middleware for allowed origins, a JSON refusal naming the setting for others.

A browser asks before a page of another origin may call the gateway (a *preflight*:
``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``).  Without this module
a gateway with no origins configured answered the router's 405, and one with origins
answered Starlette's plain-text 400 to an origin not listed: neither tells the developer
staring at the browser's network panel what to change.  Here a preflight from an origin
that is not in ``GATEWAY_CORS_ORIGINS`` (all of them, when it is empty) gets a
GraphQL-shaped JSON error, 403 ``FORBIDDEN`` (the request is understood and refused by
policy; 405 would claim ``OPTIONS`` is unsupported, 400 that the request is malformed),
whose message names ``--cors-origins`` / ``GATEWAY_CORS_ORIGINS``, and no CORS headers,
so the browser refuses the page's request as before.

Each refused origin is logged once, as one WARNING line with the origin and nothing else
of the request (no headers, no body), at most once per :data:`WARN_EVERY_SECONDS` per
origin; the memory of recent warnings holds at most :data:`MAX_REMEMBERED_ORIGINS`, and
when that many distinct origins were refused within the interval, further new ones are
refused without a line (so a flood of made-up origins cannot flood the log either).

An allowed origin goes to Starlette's ``CORSMiddleware`` as configured (methods GET and
POST, headers ``Authorization``, ``Content-Type``, ``Accept``); a preflight it refuses for
its method or headers gets a JSON 400 saying which are allowed.  Requests that are not
preflights pass through: a browser will not let a page read an answer without the
headers, and non-browser clients are not CORS's business.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appointments_gateway.gateway.middleware.errors import send_error
from appointments_gateway.observability.logs import FIELDS

__all__ = [
    "ALLOWED_HEADERS",
    "ALLOWED_METHODS",
    "MAX_REMEMBERED_ORIGINS",
    "WARN_EVERY_SECONDS",
    "CrossOrigin",
]

ALLOWED_METHODS = ("GET", "POST")
#: Authorization carries the caller's key (forward mode) or gateway token; no cookies are
#: involved, so credentials mode stays off.
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Accept")
WARN_EVERY_SECONDS = 600.0
MAX_REMEMBERED_ORIGINS = 256
#: Origins longer than this are cut in the log line (a real one is far shorter).
_MAX_ORIGIN_CHARS = 200

_NONE_CONFIGURED = (
    "This gateway accepts no cross-origin requests from browsers: no origins are "
    "configured. Start it with --cors-origins (GATEWAY_CORS_ORIGINS) set to your front "
    "end's origin, such as https://app.example or http://localhost:5173."
)
_NOT_LISTED = (
    "This origin may not call the gateway from a browser: it is not one of the origins "
    "in --cors-origins (GATEWAY_CORS_ORIGINS). Add it there (scheme, host and port, such "
    "as https://app.example)."
)
_BAD_PREFLIGHT = (
    "This cross-origin request asks for a method or headers the gateway does not allow: "
    f"methods {', '.join(ALLOWED_METHODS)}; headers {', '.join(ALLOWED_HEADERS)}."
)

logger = logging.getLogger("appointments_gateway.cors")


class CrossOrigin:
    """CORS for ``origins``, with JSON refusals of preflights and rate-limited warnings.

    Args:
        app: the wrapped ASGI app.
        origins: exact origins (``GATEWAY_CORS_ORIGINS``); empty: none is allowed.
        clock: monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        origins: tuple[str, ...],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.origins = frozenset(origins)
        self._cors: ASGIApp = (
            CORSMiddleware(
                app,
                allow_origins=origins,
                allow_methods=ALLOWED_METHODS,
                allow_headers=ALLOWED_HEADERS,
                # so a browser client can read the id to quote in a support request
                expose_headers=("X-Request-Id",),
                max_age=600,
            )
            if origins
            else app
        )
        self._clock = clock
        self._warned: dict[str, float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        preflight = (
            origin is not None
            and scope["method"] == "OPTIONS"
            and "access-control-request-method" in headers
        )
        if not preflight:
            await self._cors(scope, receive, send)
            return
        assert origin is not None
        if origin not in self.origins:
            self._warn(origin)
            message = _NOT_LISTED if self.origins else _NONE_CONFIGURED
            await send_error(send, 403, message, code="FORBIDDEN")
            return

        refused = False

        async def json_refusal(message: Message) -> None:
            nonlocal refused
            if message["type"] == "http.response.start" and message["status"] >= 400:
                refused = True
                await send_error(send, 400, _BAD_PREFLIGHT)
            elif not refused:
                await send(message)

        await self._cors(scope, receive, json_refusal)

    def _warn(self, origin: str) -> None:
        now = self._clock()
        last = self._warned.get(origin)
        if last is not None and now - last < WARN_EVERY_SECONDS:
            return
        if last is None and len(self._warned) >= MAX_REMEMBERED_ORIGINS:
            self._forget(now)
            if len(self._warned) >= MAX_REMEMBERED_ORIGINS:
                return  # that many origins within the interval: the log stays bounded
        self._warned.pop(origin, None)
        self._warned[origin] = now
        shown = origin[:_MAX_ORIGIN_CHARS]
        logger.warning(
            "refused a CORS preflight from an origin not in GATEWAY_CORS_ORIGINS",
            extra={FIELDS: {"origin": shown}},
        )

    def _forget(self, now: float) -> None:
        """Drop the warnings older than the interval."""
        for name in [o for o, at in self._warned.items() if now - at >= WARN_EVERY_SECONDS]:
            del self._warned[name]
