"""Who may read ``/metrics`` and ``/readyz``: anyone on loopback, token holders elsewhere.

On a public interface both say too much to strangers: ``/metrics`` which operations run,
how often and how they fail; ``/readyz`` sends a request upstream with the service key
(cached, but still the key's budget) and says whether Cliniko answers.  So off loopback
they answer only ``Authorization: Bearer <token>`` with a token from GATEWAY_OPS_TOKENS
(a scraper's or an orchestrator's, in either auth mode) or, in service mode, from
GATEWAY_TOKENS, checked like gateway tokens (``GatewayTokens``: digests only, compared in
constant time).  A public server with no token that could be presented (forward mode
without GATEWAY_OPS_TOKENS) answers 401 with a message naming the setting, rather than
refusing to start: the GraphQL endpoint needs neither.

A loopback server keeps them open: only this machine reaches it.  ``/healthz`` is open
everywhere; it says nothing but "up".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from appointments_gateway.gateway.auth import GatewayTokens
from appointments_gateway.gateway.middleware.errors import error_body
from appointments_gateway.settings import Settings

__all__ = ["Endpoint", "OpsAccess"]

Endpoint = Callable[[Request], Awaitable[Response]]


class OpsAccess:
    """Wraps the operator endpoints in a Bearer-token check when the server is public.

    Args:
        tokens: the tokens that open them; ``None`` when there are none.
        required: whether a token is needed at all (a non-loopback server).
        service_tokens: GATEWAY_TOKENS count too (service mode), for the message.
    """

    def __init__(
        self, tokens: GatewayTokens | None, *, required: bool, service_tokens: bool = False
    ) -> None:
        self._tokens = tokens
        self._required = required
        names = "GATEWAY_OPS_TOKENS or GATEWAY_TOKENS" if service_tokens else "GATEWAY_OPS_TOKENS"
        self._ask = f"send 'Authorization: Bearer <token>' with a token from {names}"

    @classmethod
    def from_settings(cls, settings: Settings) -> OpsAccess:
        service_tokens = settings.auth == "service" and bool(settings.gateway_tokens)
        digests = (*settings.ops_tokens, *(settings.gateway_tokens if service_tokens else ()))
        return cls(
            GatewayTokens(digests) if digests else None,
            required=not settings.is_loopback,
            service_tokens=service_tokens,
        )

    def guard(self, endpoint: Endpoint) -> Endpoint:
        """``endpoint`` itself on loopback, else the same behind the token check."""
        if not self._required:
            return endpoint

        async def guarded(request: Request) -> Response:
            refusal = self._refusal(request)
            return refusal if refusal is not None else await endpoint(request)

        return guarded

    def _refusal(self, request: Request) -> Response | None:
        if self._tokens is None:
            return _unauthenticated(
                "This gateway listens on a public interface and has no token for this "
                "endpoint: set GATEWAY_OPS_TOKENS, then " + self._ask + "."
            )
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token and self._tokens.accepts(token):
            return None
        return _unauthenticated("This endpoint needs a token: " + self._ask + ".")


def _unauthenticated(message: str) -> Response:
    return Response(
        error_body(message, "UNAUTHENTICATED"),
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="appointments-gateway"'},
        media_type="application/json",
    )
