"""``GET /readyz``: can this process serve operations now, i.e. does the upstream answer?

Cheap by design, because probes come every few seconds from every orchestrator replica:

* **service mode**: one ``GET /businesses?per_page=1`` with the service key, through the
  governor like any call (so a probe can never cause a 429).  Ready when it succeeds,
  and also when the budget or the upstream says "rate limited": the upstream is up and
  the key works, the gateway is merely busy, and taking the instance out of rotation
  would not help.  A refused key (401/403) is *not ready*: every operation would fail.
* **forward mode**: there is no key of our own, so the check is one unauthenticated GET
  of the same route, and *any* HTTP status (a 401 is expected) means the upstream host
  answers.  With ``--upstream cliniko`` each caller's key picks its shard; the probe
  asks the default shard's host, which says whether Cliniko is reachable from here.

**Shared state** (with ``GATEWAY_REDIS_URL``): the body also says whether Redis answers
(``"sharedState": "ok"`` or ``"unreachable"`` with the failure's class and since when).  An
instance without Redis stays *ready*: it serves reads and writes on its conservative local
share of the budget (``state_fallback.py``), and taking every instance out of rotation
because a shared dependency is down would turn a degradation into an outage; only creates
with an ``idempotencyKey`` are refused meanwhile.  Alert on the field, not on the status.

An answer is kept for :data:`READY_TTL_SECONDS` (a failure for :data:`NOT_READY_TTL_SECONDS`)
and concurrent probes share one upstream call, so a service-mode instance spends at most
6 of the key's requests per minute on readiness, 3% of Cliniko's 200.  The body says
``ready`` or ``not ready`` with a reason class (an exception type or a status), never an
upstream body.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse

from appointments_gateway.state import SharedStateUnavailable
from appointments_gateway.state_fallback import FallbackState
from appointments_gateway.upstream import (
    Credential,
    UpstreamClient,
    UpstreamError,
    UpstreamRateLimited,
)
from appointments_gateway.upstream.credentials import DEFAULT_SHARD, base_url_for_shard

__all__ = ["NOT_READY_TTL_SECONDS", "PROBE_TIMEOUT_SECONDS", "READY_TTL_SECONDS", "Readiness"]

READY_TTL_SECONDS = 10.0
NOT_READY_TTL_SECONDS = 2.0
#: A probe that takes longer than this is a failure: readiness must answer promptly.
PROBE_TIMEOUT_SECONDS = 3.0

_ROUTE = "/businesses"


class Readiness:
    """The ``/readyz`` endpoint.

    Args:
        service_credential: the gateway's key in service mode; ``None`` in forward mode.
        forward_base_url: the upstream base URL in forward mode (``None``: Cliniko).
    """

    def __init__(
        self,
        *,
        service_credential: Credential | None,
        forward_base_url: str | None,
        shared: FallbackState | None = None,
    ) -> None:
        self._shared = shared
        self._credential = service_credential
        root = forward_base_url or base_url_for_shard(DEFAULT_SHARD)
        self._probe_url = root.rstrip("/") + _ROUTE
        self._lock = asyncio.Lock()
        self._answer: tuple[bool, str] | None = None
        self._expires = 0.0

    async def endpoint(self, request: Request) -> JSONResponse:
        """The route handler."""
        ready, reason = await self.check(request.state.upstream)
        body: dict[str, object] = {"status": "ready" if ready else "not ready", "upstream": reason}
        if self._shared is not None:
            body.update(await self._shared_state(self._shared))
        return JSONResponse(body, status_code=200 if ready else 503)

    @staticmethod
    async def _shared_state(shared: FallbackState) -> dict[str, object]:
        if shared.available:
            try:
                # Cheap (one PING) and the only way to notice an outage while idle.
                async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                    await shared.redis.ping()
            except SharedStateUnavailable:
                return {"sharedState": "unreachable", "sharedStateError": "ping failed"}
            return {"sharedState": "ok"}
        since = shared.down_since or time.time()
        return {
            "sharedState": "unreachable",
            "sharedStateError": shared.last_error,
            "sharedStateDownSeconds": round(time.time() - since, 1),
        }

    async def check(self, upstream: UpstreamClient) -> tuple[bool, str]:
        """Whether the upstream answers, and a short reason; cached, single-flight."""
        async with self._lock:
            if self._answer is None or time.monotonic() >= self._expires:
                self._answer = await self._probe(upstream)
                ttl = READY_TTL_SECONDS if self._answer[0] else NOT_READY_TTL_SECONDS
                self._expires = time.monotonic() + ttl
            return self._answer

    async def _probe(self, upstream: UpstreamClient) -> tuple[bool, str]:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                if self._credential is None:
                    status = await upstream.probe(self._probe_url)
                    return True, f"answered {status}"
                session = upstream.session(self._credential)
                await session.request("GET", _ROUTE, params=[("per_page", "1")])
                return True, "ok"
        except UpstreamRateLimited:
            return True, "rate limited"
        except TimeoutError:
            return False, "timeout"
        except (UpstreamError, httpx.HTTPError) as exc:
            return False, type(exc).__name__
