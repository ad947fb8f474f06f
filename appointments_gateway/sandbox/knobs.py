"""The sandbox's outer layer for ``/v1``: counters, latency, auth, rate limit, faults.

A plain ASGI class (as Starlette's own middleware are), so the order is explicit and every
``/v1`` request is counted, including the ones it answers itself (401, 429, 503) and unknown
routes. Order, outermost first:

1. count the request (route template + method, status, account label ``a``/``b``, or
   ``unauthenticated``; never the key itself);
2. sleep ``latency_ms``;
3. authenticate (401 with ``WWW-Authenticate: Basic`` for a missing or unknown key);
4. rate limit per key (429 with ``X-RateLimit-Reset`` and ``Retry-After``);
5. inject a fault with probability ``fault_rate`` (503), from a seeded ``random.Random``.

Rate limit: a **fixed 60-second window per key that opens with the key's first request** (not
aligned to the wall-clock minute, so a short test never straddles a boundary). Requests beyond
``rate_limit_per_minute`` in the window get 429 until it closes; ``X-RateLimit-Reset`` is the
window's end in unix seconds (rounded up) and ``Retry-After`` the whole seconds until then.
Cliniko documents only ``X-RateLimit-Reset``; ``Retry-After`` is added as a fallback clients
may read. Not imitated: Cliniko's fair-use blocking and any ``X-RateLimit-Limit``/``-Remaining``
headers (undocumented).

Requests outside ``/v1`` (``/_sandbox/*``, the web-app door included, and anything else) pass
straight through: uncounted, unlimited, with no latency and no faults.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .accounts import DemoAccount, account_for_authorization
from .config import SandboxConfig

__all__ = ["FaultInjector", "KnobsMiddleware", "RateLimiter", "Stats"]

ACCOUNT_SCOPE_KEY = "sandbox_account"
#: Arrivals kept for ``GET /_sandbox/arrivals`` (a few minutes at Cliniko's limit, times 100).
MAX_ARRIVALS = 100_000
UNMATCHED_ROUTE = "<unmatched>"


@dataclass
class Stats:
    """Request counters served at ``GET /_sandbox/stats``."""

    total: int = 0
    by_route: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    by_account: Counter[str] = field(default_factory=Counter)
    #: (arrival in UNIX seconds, route, status, account) of the latest requests, so a
    #: benchmark can check "at most N in ANY 60 s" rather than per fixed window.
    arrivals: deque[tuple[float, str, int, str]] = field(
        default_factory=lambda: deque(maxlen=MAX_ARRIVALS)
    )

    def record(self, route: str, status: int, account: str, arrived: float | None = None) -> None:
        """Count one finished ``/v1`` request (``arrived``: when it came in)."""
        self.total += 1
        self.by_route[route] += 1
        self.by_status[str(status)] += 1
        self.by_account[account] += 1
        self.arrivals.append((time.time() if arrived is None else arrived, route, status, account))

    def reset(self) -> None:
        """Zero every counter."""
        self.total = 0
        self.by_route.clear()
        self.by_status.clear()
        self.by_account.clear()
        self.arrivals.clear()

    def as_json(self) -> dict[str, object]:
        """The stats body."""
        return {
            "total_requests": self.total,
            "by_route": dict(sorted(self.by_route.items())),
            "by_status": dict(sorted(self.by_status.items())),
            "by_account": dict(sorted(self.by_account.items())),
        }


class RateLimiter:
    """Fixed 60-second windows per key, each opened by the key's first request."""

    WINDOW_SECONDS = 60.0

    def __init__(self, limit: int, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.clock = clock
        self._windows: dict[str, tuple[float, int]] = {}

    def check(self, key: str) -> float | None:
        """Count a request; ``None`` if allowed, else the unix time the window ends."""
        if self.limit <= 0:
            return None
        now = self.clock()
        start, used = self._windows.get(key, (now, 0))
        if now >= start + self.WINDOW_SECONDS:
            start, used = now, 0
        used += 1
        self._windows[key] = (start, used)
        return None if used <= self.limit else start + self.WINDOW_SECONDS

    def reset(self) -> None:
        """Forget every window."""
        self._windows.clear()


class FaultInjector:
    """Decides, reproducibly, which requests fail with 503."""

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self.seed = seed
        self._random = random.Random(seed)

    def should_fail(self) -> bool:
        """Draw for one request (no draw at all when the rate is 0)."""
        return self.rate > 0 and self._random.random() < self.rate

    def reset(self) -> None:
        """Restart the sequence from the seed."""
        self._random = random.Random(self.seed)


def _route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        path = getattr(route, "path", UNMATCHED_ROUTE)
        if match is Match.FULL:
            return f"{scope['method']} {path}"
        if match is Match.PARTIAL and partial is None:
            partial = path
    return f"{scope['method']} {partial or UNMATCHED_ROUTE}"


class KnobsMiddleware:
    """Wraps the sandbox app; see the module docstring for what it does, in order."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        config: SandboxConfig,
        stats: Stats,
        limiter: RateLimiter,
        faults: FaultInjector,
        routes: Sequence[BaseRoute],
    ) -> None:
        self.app = app
        self.config = config
        self.stats = stats
        self.limiter = limiter
        self.faults = faults
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/v1" or path.startswith("/v1/")):
            await self.app(scope, receive, send)
            return

        arrived = time.time()
        route = _route_template(self.routes, scope)
        status_seen = 500
        account: DemoAccount | None = None

        async def counting_send(message: Message) -> None:
            nonlocal status_seen
            if message["type"] == "http.response.start":
                status_seen = message["status"]
            await send(message)

        try:
            if self.config.latency_ms:
                await asyncio.sleep(self.config.latency_ms / 1000)
            account = account_for_authorization(Headers(scope=scope).get("authorization"))
            if account is None:
                await _json(
                    counting_send,
                    401,
                    {"message": "An API key is required (HTTP Basic, key as the username)."},
                    [(b"www-authenticate", b'Basic realm="Cliniko sandbox"')],
                )
                return
            reset_at = self.limiter.check(account.api_key)
            if reset_at is not None:
                wait = max(1, math.ceil(reset_at - self.limiter.clock()))
                await _json(
                    counting_send,
                    429,
                    {"message": "Rate limit exceeded. Try again later."},
                    [
                        (b"x-ratelimit-reset", str(math.ceil(reset_at)).encode()),
                        (b"retry-after", str(wait).encode()),
                    ],
                )
                return
            if self.faults.should_fail():
                await _json(
                    counting_send,
                    503,
                    {"message": "Service temporarily unavailable (sandbox fault injection)."},
                )
                return
            scope.setdefault("state", {})[ACCOUNT_SCOPE_KEY] = account
            await self.app(scope, receive, counting_send)
        finally:
            self.stats.record(
                route, status_seen, account.label if account else "unauthenticated", arrived
            )


async def _json(
    send: Send, status: int, body: object, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
