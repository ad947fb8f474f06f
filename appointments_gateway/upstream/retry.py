"""When a failed call to Cliniko is tried again, and how long we wait first.

The rule is about duplicates, not about errors: a retried read costs budget, a
retried write can book a patient twice. So

* reads (GET/HEAD) are retried on 500/502/503/504, network errors, the server
  hanging up, and connect/read/write timeouts;
* writes (POST/PATCH/PUT/DELETE) are retried **only** when the connection was
  never established (``httpx.ConnectError``/``ConnectTimeout``): the request
  bytes cannot have left this machine. A read timeout or a 5xx after a write
  is ambiguous and is raised, never retried;
* 429 is never retried here: the rate governor owns waiting for the budget;
* a pool timeout is never retried: it means we are the bottleneck.

Delays use exponential backoff with full jitter (uniform in ``[0, min(cap,
base * 2**n)]``), which spreads a burst of retries from many requests.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

__all__ = ["IDEMPOTENT_METHODS", "NO_RETRY", "RetryPolicy"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD"})
"""Methods safe to repeat. PUT/DELETE are idempotent in HTTP, but we do not rely on it."""

_RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times, and after how long, a failed call is repeated.

    Args:
        max_retries: retries after the first attempt (so 2 means up to 3 sends).
        base_delay: the backoff ceiling before the first retry, in seconds.
        max_delay: the cap on any single delay, in seconds.
        retry_writes_on_connect_error: retry writes whose connection failed to open.
        sleep: awaited with the delay; injectable so tests do not wait.
        rng: returns a float in ``[0, 1)``; injectable for deterministic jitter.
    """

    max_retries: int = 2
    base_delay: float = 0.1
    max_delay: float = 2.0
    retry_writes_on_connect_error: bool = True
    retry_statuses: frozenset[int] = _RETRYABLE_STATUSES
    sleep: Callable[[float], Awaitable[None]] = field(default=_sleep, compare=False)
    rng: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("Retry counts and delays must not be negative.")

    def delay(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (0 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0**retry_number)
        return self.rng() * ceiling

    def retries_status(self, method: str, status_code: int) -> bool:
        """Whether a response with this status is worth sending again."""
        return method in IDEMPOTENT_METHODS and status_code in self.retry_statuses

    def retries_exception(self, method: str, exc: httpx.HTTPError) -> bool:
        """Whether a transport failure is worth sending again (see the module docstring)."""
        if isinstance(exc, httpx.PoolTimeout):
            return False
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return method in IDEMPOTENT_METHODS or self.retry_writes_on_connect_error
        if method not in IDEMPOTENT_METHODS:
            return False
        return isinstance(
            exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError
        )


NO_RETRY = RetryPolicy(max_retries=0)
"""Send once; useful in tests and behind a caller that retries itself."""
