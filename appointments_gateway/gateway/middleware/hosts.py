"""Refuse requests whose ``Host`` header names a host this gateway does not serve.

Why: DNS rebinding.  A web page a developer opens (``http://attacker.example:8000``) can
make its own name resolve to ``127.0.0.1`` a moment later; the browser then sends the
page's requests to the gateway on the developer's machine, and because the origin has
not changed, the page may read the answers.  A token-less loopback server in service
mode would hand it patient data.  What gives the trick away is the ``Host`` header: it
still names the attacker's domain.  So a server bound to loopback answers only requests
addressed to ``localhost``, ``127.0.0.1`` or ``[::1]`` (with any port), plus the names in
``GATEWAY_ALLOWED_HOSTS``; a server on any other interface answers only those names
(``Settings`` refuses to start one without them).

The matching is Starlette's ``TrustedHostMiddleware`` (exact names, ``*.example.com``
wildcards, IPv6 literals in brackets as ``parse_host_header`` keeps them), reused as it
is; only its refusal changes, from plain text to the gateway's GraphQL-shaped JSON:
400 ``BAD_USER_INPUT``, no ``data``.  It sits inside the request-id middleware, so the
refusal carries ``X-Request-Id`` and is logged like any other.

``/healthz``, ``/readyz`` and ``/metrics`` are exempt: orchestrators probe them by the
pod's IP address, which no list of names can know in advance, and none of them returns
patient data (on a public interface the last two require a token as well).
"""

from __future__ import annotations

from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appointments_gateway.gateway.middleware.errors import send_error
from appointments_gateway.settings import Settings

__all__ = ["EXEMPT_PATHS", "LOOPBACK_NAMES", "TrustedHosts", "allowed_hosts_for"]

#: The names a loopback-bound server always answers to, as ``parse_host_header`` reads
#: them (an IPv6 literal keeps its brackets).
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")

#: Probed by orchestrators by IP address; no patient data (see the module docstring).
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

#: Marks, in the ASGI scope, a request Starlette's check let through.
_PASSED = "appointments_gateway.trusted_host"

REFUSAL = (
    "This gateway does not serve the host named in the request's Host header; address it "
    "by one of its configured names (GATEWAY_ALLOWED_HOSTS)."
)


def allowed_hosts_for(settings: Settings) -> tuple[str, ...]:
    """The host names ``settings`` lets requests address the gateway by."""
    if settings.is_loopback:
        return (*LOOPBACK_NAMES, *settings.allowed_hosts)
    return settings.allowed_hosts


class TrustedHosts:
    """Starlette's host check with a JSON refusal and the probe paths exempt.

    Args:
        app: the wrapped ASGI app.
        allowed_hosts: names (``*.example.com`` wildcards allowed, never ``*`` alone).
    """

    def __init__(self, app: ASGIApp, *, allowed_hosts: tuple[str, ...]) -> None:
        if "*" in allowed_hosts:
            raise ValueError("'*' would let any Host header through; list the names instead.")
        self.app = app
        self._check = TrustedHostMiddleware(self._passed, allowed_hosts, www_redirect=False)

    async def _passed(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[_PASSED] = True
        await self.app(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # /graphql's live updates (gateway/over_ws.py): the same check, refused
            # before the handshake is accepted (an HTTP 400 to the upgrade request), so a
            # rebound name never opens a socket.  Its Origin is checked by the view.
            await self._check(scope, receive, send)
            return
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return

        async def refuse_as_json(message: Message) -> None:
            if scope.get(_PASSED):
                await send(message)
            elif message["type"] == "http.response.start":
                # Starlette's own plain-text refusal: replaced, and its body dropped.
                await send_error(send, 400, REFUSAL)

        await self._check(scope, receive, refuse_as_json)
