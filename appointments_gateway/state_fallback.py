"""What a process does while Redis is unreachable: keep serving, never overspend, never guess.

:class:`FallbackState` wraps :class:`~appointments_gateway.redis_state.RedisState` and is the
:class:`~appointments_gateway.state.SharedState` the app uses with ``GATEWAY_REDIS_URL``.
While Redis answers it adds nothing but a note of this process's own grants.  When a call
fails it switches, for this process alone, to:

* **Rate budget: a conservative local share.**  Each of the ``P`` processes that share the
  Redis (``GATEWAY_WORKERS`` times ``GATEWAY_INSTANCES``) takes a bucket of capacity
  ``c = max(1, C/P)`` and rate ``(N/P - c) / H`` where ``N = C + r·H`` is the caller's own
  bound over the horizon ``H`` (the governor's window plus margin), so that ``P`` such
  buckets together let out at most ``N`` in any window.  **Each starts empty**: the shared
  bucket may have been drawn down just before Redis went away, and a window that spans the
  switch holds at most ``C + r·x`` shared grants (``x`` its part before the switch) plus at
  most ``r·(H - x)`` local ones, i.e. ``N``.  A 429 pause seen in Redis is remembered
  locally, so it holds on.
* **Values and streams: refused** with :class:`~appointments_gateway.state.SharedStateUnavailable`.
  An idempotency key cannot be claimed, so a create that carries one gets a retryable error
  instead of a POST that another instance may also send; the replica runs its own sync.

Every ``probe_every`` seconds (one caller at a time, not every request) it tries Redis
again.  On success it first **hands back what it spent**: the grants it made locally within
the horizon are charged to each shared bucket (``RedisState.charge``), local pauses are
copied, and if Redis lost its data meanwhile (a restart without persistence: its epoch key
differs) this process's grants made through Redis within the horizon are charged too, since
the shared buckets forgot them.  Then it uses Redis again.  So the budget holds across the
switch in both directions; what it costs is that a process in fallback may wait for tokens
another process does not use.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

from appointments_gateway.redis_state import RedisState
from appointments_gateway.state import InMemoryState, SharedStateUnavailable

__all__ = ["DEFAULT_PROBE_SECONDS", "FallbackState"]

logger = logging.getLogger("appointments_gateway.state")

T = TypeVar("T")

DEFAULT_PROBE_SECONDS = 1.0
"""How often a process in fallback tries Redis again."""
_EPOCH_KEY = "state:epoch"
_EPOCH_TTL = 7 * 24 * 3600.0


class _Grants:
    """This process's grants of one bucket within the horizon, and the bucket's full rate."""

    __slots__ = ("local", "rate", "redis")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.redis: deque[float] = deque()
        self.local: deque[float] = deque()


class FallbackState:
    """A :class:`RedisState` that degrades safely when Redis is away (module docstring).

    Args:
        redis: the shared store.
        processes: gateway processes sharing it (workers times instances), at least 1.
        horizon: the governor's window plus margin, in seconds.
        probe_every: seconds between two attempts to reach Redis while it is away.
        clock: UNIX seconds.
    """

    def __init__(
        self,
        redis: RedisState,
        *,
        processes: int,
        horizon: float,
        probe_every: float = DEFAULT_PROBE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}.")
        self.redis = redis
        self.processes = processes
        self.horizon = horizon
        self._probe_every = probe_every
        self._clock = clock
        # Buckets of the current outage (fresh, so empty-started, at each one), and
        # pauses (kept across outages: a pause seen in Redis must outlive its loss).
        self._local = InMemoryState(clock=clock)
        self._pauses = InMemoryState(clock=clock)
        self._paused: set[str] = set()
        self._primed: set[str] = set()
        self._grants: dict[str, _Grants] = {}
        self._epoch: bytes | None = None
        self._probe_lock = asyncio.Lock()
        #: When Redis was last found unreachable; ``None`` while it answers.
        self.down_since: float | None = None
        #: The last failure's class name, for /readyz (never a message: it may hold a host).
        self.last_error = ""
        self._next_probe = 0.0
        #: Times this process switched to the local share, and back.
        self.outages = 0
        self.recoveries = 0

    def __repr__(self) -> str:
        return f"FallbackState({self.redis!r}, processes={self.processes}, up={self.available})"

    @property
    def available(self) -> bool:
        return self.down_since is None

    async def aclose(self) -> None:
        await self.redis.aclose()

    # --- switching ------------------------------------------------------------------

    def _went_down(self, exc: SharedStateUnavailable) -> None:
        cause = exc.__cause__
        self.last_error = type(cause).__name__ if cause is not None else "unavailable"
        self._next_probe = self._clock() + self._probe_every
        if self.down_since is None:
            self.down_since = self._clock()
            self.outages += 1
            # A fresh local state: its buckets start empty (module docstring).
            self._local = InMemoryState(clock=self._clock)
            self._primed.clear()
            logger.warning(
                "shared state unreachable: using this process's local share of the budget",
                extra={"error": self.last_error},
            )

    async def _up(self) -> bool:
        """Whether to use Redis now; while it is away, one caller a second tries it."""
        if self.down_since is None:
            return True
        if self._clock() < self._next_probe or self._probe_lock.locked():
            return False
        async with self._probe_lock:
            if self.down_since is None:
                return True
            try:
                await self.redis.ping()
                await self._hand_back()
            except SharedStateUnavailable as exc:
                self._went_down(exc)
                return False
        down_for = self._clock() - self.down_since
        self.down_since = None
        self.recoveries += 1
        logger.warning("shared state reachable again", extra={"down_seconds": round(down_for, 1)})
        return True

    async def _hand_back(self) -> None:
        now = self._clock()
        lost = await self._data_lost()
        for bucket, grants in list(self._grants.items()):
            self._trim(grants, now)
            spent = len(grants.local) + (len(grants.redis) if lost else 0)
            if spent:
                await self.redis.charge(bucket, rate_per_second=grants.rate, tokens=spent)
            # Handed back: counted in Redis from now on, never charged twice.
            grants.local.clear()
            if lost:
                grants.redis.clear()
        for bucket in list(self._paused):
            until = await self._pauses.paused_until(bucket)
            if until is not None:
                await self.redis.pause(bucket, until)
        self._paused.clear()

    async def _data_lost(self) -> bool:
        """Whether Redis forgot its keys since this process last looked (its epoch changed)."""
        fresh = secrets.token_hex(8).encode()
        await self.redis.set_if_absent(_EPOCH_KEY, fresh, ttl=_EPOCH_TTL)
        epoch = await self.redis.get(_EPOCH_KEY)
        lost = self._epoch is not None and epoch != self._epoch
        self._epoch = epoch
        return lost

    async def _shared(self, action: Callable[[], Awaitable[T]]) -> T:
        """Run ``action`` on Redis, or raise :class:`SharedStateUnavailable` while it is away."""
        if not await self._up():
            raise SharedStateUnavailable(
                "shared state unreachable",
                retry_after_seconds=max(0.0, self._next_probe - self._clock()) + 0.5,
            )
        try:
            return await action()
        except SharedStateUnavailable as exc:
            self._went_down(exc)
            raise

    # --- buckets and pauses ---------------------------------------------------------

    def _trim(self, grants: _Grants, now: float) -> None:
        for log in (grants.redis, grants.local):
            while log and log[0] < now - self.horizon:
                log.popleft()

    def _note(self, bucket: str, rate: float, at: float, *, local: bool) -> None:
        grants = self._grants.get(bucket)
        if grants is None:
            grants = self._grants[bucket] = _Grants(rate)
            if len(self._grants) % 1024 == 0:
                now = self._clock()
                for name, old in list(self._grants.items()):
                    self._trim(old, now)
                    if not old.redis and not old.local and name != bucket:
                        del self._grants[name]
        grants.rate = rate
        (grants.local if local else grants.redis).append(at)
        self._trim(grants, at)

    async def take_tokens(
        self,
        bucket: str,
        *,
        rate_per_second: float,
        capacity: float,
        max_wait: float = 0.0,
        now: float | None = None,
    ) -> float:
        if self._epoch is None and self.down_since is None:
            try:
                await self._data_lost()  # learn the epoch once, before the first grant
            except SharedStateUnavailable as exc:
                self._went_down(exc)
        if await self._up():
            try:
                wait = await self.redis.take_tokens(
                    bucket,
                    rate_per_second=rate_per_second,
                    capacity=capacity,
                    max_wait=max_wait,
                    now=now,
                )
            except SharedStateUnavailable as exc:
                self._went_down(exc)
            else:
                if wait <= max_wait:
                    self._note(bucket, rate_per_second, self._clock() + wait, local=False)
                return wait
        return await self._take_local(bucket, rate_per_second, capacity, max_wait)

    async def _take_local(
        self, bucket: str, rate_per_second: float, capacity: float, max_wait: float
    ) -> float:
        per_window = capacity + rate_per_second * self.horizon
        local_capacity = max(1.0, capacity / self.processes)
        local_rate = max(1e-6, (per_window / self.processes - local_capacity) / self.horizon)
        if bucket not in self._primed:
            self._primed.add(bucket)
            # Start empty: reserve the whole capacity (module docstring).
            for _ in range(math.ceil(local_capacity)):
                await self._local.take_tokens(
                    bucket,
                    rate_per_second=local_rate,
                    capacity=local_capacity,
                    max_wait=math.inf,
                )
        wait = await self._local.take_tokens(
            bucket, rate_per_second=local_rate, capacity=local_capacity, max_wait=max_wait
        )
        if wait <= max_wait:
            self._note(bucket, rate_per_second, self._clock() + wait, local=True)
        return wait

    async def pause(self, bucket: str, until: float) -> float:
        # Also kept locally: the pause must hold if Redis goes away during it.
        local = await self._pauses.pause(bucket, until)
        if await self._up():
            try:
                return await self.redis.pause(bucket, until)
            except SharedStateUnavailable as exc:
                self._went_down(exc)
        self._paused.add(bucket)  # to hand to Redis when it is back
        return local

    async def paused_until(self, bucket: str, *, now: float | None = None) -> float | None:
        if await self._up():
            try:
                until = await self.redis.paused_until(bucket, now=now)
            except SharedStateUnavailable as exc:
                self._went_down(exc)
            else:
                if until is not None:
                    await self._pauses.pause(bucket, until)
                return until
        return await self._pauses.paused_until(bucket, now=now)

    # --- values and streams: Redis or a refusal -------------------------------------

    async def get(self, key: str) -> bytes | None:
        return await self._shared(lambda: self.redis.get(key))

    async def set(self, key: str, value: bytes, *, ttl: float) -> None:
        await self._shared(lambda: self.redis.set(key, value, ttl=ttl))

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float) -> bool:
        return await self._shared(lambda: self.redis.set_if_absent(key, value, ttl=ttl))

    async def compare_and_set(self, key: str, expected: bytes, value: bytes, *, ttl: float) -> bool:
        return await self._shared(lambda: self.redis.compare_and_set(key, expected, value, ttl=ttl))

    async def compare_and_delete(self, key: str, expected: bytes) -> bool:
        return await self._shared(lambda: self.redis.compare_and_delete(key, expected))

    async def delete(self, key: str) -> None:
        await self._shared(lambda: self.redis.delete(key))

    async def append(self, stream: str, data: bytes, *, max_entries: int, ttl: float) -> str:
        return await self._shared(
            lambda: self.redis.append(stream, data, max_entries=max_entries, ttl=ttl)
        )

    async def read_after(
        self, stream: str, after: str, *, count: int = 100, block: float = 0.0
    ) -> list[tuple[str, bytes]]:
        return await self._shared(
            lambda: self.redis.read_after(stream, after, count=count, block=block)
        )
