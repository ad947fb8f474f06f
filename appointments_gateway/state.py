"""The small shared-state interface (DESIGN.md §7) and its in-memory implementation.

The gateway process is stateless, but a few things must be agreed on by every worker and
replica that serves the same Cliniko key: the key's upstream budget (200 requests per
minute per *user*, however many gateways send them), a pause after a 429, idempotency keys,
later persisted queries and reference-data caches.  They all go through :class:`SharedState`,
whose every method is **one atomic step** on the store, so there is no read-modify-write
race between replicas.  This module is a leaf (standard library only) so ``upstream/`` and
``resolvers/`` can both import it.

Three namespaces, which must not collide (a Redis implementation prefixes its keys, e.g.
``gw:tb:``, ``gw:pause:``, ``gw:kv:``):

* **token buckets** (:meth:`SharedState.take_tokens`), stored as one number per bucket;
* **pauses** (:meth:`SharedState.pause` / :meth:`SharedState.paused_until`), one instant per
  bucket;
* **values**: bytes under string keys with a time to live, and the compare-and-set steps an
  idempotency store needs.

How a Redis implementation maps each method (all single commands or one short Lua script;
nothing here needs a transaction spanning two calls):

==================================  =======================================================
``take_tokens``                     Lua (GET tat, compute, SET tat PXAT), see below
``pause(bucket, until)``            Lua: ``SET`` only if the stored instant is earlier,
                                    ``PXAT until`` (so it expires by itself)
``paused_until(bucket)``            ``GET`` (an expired pause is simply absent)
``get(key)``                        ``GET key``
``set(key, value, ttl)``            ``SET key value PX ttl``
``set_if_absent(key, value, ttl)``  ``SET key value NX PX ttl``
``compare_and_set``                 Lua: ``if GET key == expected then SET key value PX ttl``
``compare_and_delete``              Lua: ``if GET key == expected then DEL key``
``delete(key)``                     ``DEL key``
``append(stream, data, ...)``       Lua: ``XADD stream MAXLEN n * d data``, ``PEXPIRE``
``read_after(stream, after, ...)``  ``XREAD COUNT n BLOCK ms STREAMS stream after``
==================================  =======================================================

**Streams** are bounded, ordered logs (one per credential for the replica's change feed,
DESIGN.md §8).  An entry's id is ``"<milliseconds>-<sequence>"``, as Redis makes them, and
ids grow; a reader remembers the last id it saw and asks for what came after.  A stream
keeps its last ``max_entries`` entries (older ones are trimmed, so a reader that falls too
far behind misses some: its publisher numbers its entries to let readers notice) and expires
``ttl`` seconds after its last append.

**When the store is unreachable** every method raises :class:`SharedStateUnavailable`;
callers decide what is safe without it (``redis_state.py`` and DESIGN.md §7).

**Token buckets are stored as GCRA** (the "generic cell rate algorithm"): instead of a token
count and a last-refill time, one number per bucket, the *theoretical arrival time* ``tat``
(the instant the bucket will be full again).  With ``T = 1 / rate_per_second`` and a burst
tolerance ``tau = (capacity - 1) * T``, one call does::

    tat   = max(stored_tat, now)          # an absent or old value means "full"
    wait  = max(0, tat - tau - now)       # when this caller's token is there
    if wait > max_wait: return wait       # refused: nothing is taken
    stored_tat = tat + T                  # take (or reserve) one token
    return wait

It behaves exactly like a bucket of ``capacity`` tokens refilled at ``rate_per_second``,
needs no refill loop, and a bucket whose ``tat`` is in the past is identical to an absent
one, so a Redis key can expire at ``tat`` (``PXAT``) and idle keys cost nothing.  In Redis
the script must run atomically (``EVALSHA``) and should take ``now`` from ``redis.call("TIME")``
rather than from the caller, so replicas with skewed clocks still share one timeline; the
result is a duration, so callers do not care whose clock produced it.

Reservation: a caller that is willing to wait (``max_wait > 0``) and whose token is due
within ``max_wait`` *reserves* it (``tat`` moves on), sleeps ``wait`` and then sends.  Later
callers queue behind it, so waiters are served in arrival order and the bucket is never
promised twice; a caller that would have to wait longer takes nothing and is told how long.
A reserved token whose caller is cancelled while sleeping is lost, which can only send
*less* than the budget, never more.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

__all__ = [
    "DEFAULT_MAX_VALUES",
    "InMemoryState",
    "SharedState",
    "SharedStateUnavailable",
    "check_bucket_args",
    "stream_id_key",
]

DEFAULT_MAX_VALUES = 100_000
"""Values :class:`InMemoryState` keeps before evicting the one closest to expiry."""

_SWEEP_EVERY = 1024
"""Writes between two sweeps of full buckets, ended pauses and expired values."""


class SharedStateUnavailable(Exception):
    """The shared store cannot be reached (or did not answer in time); nothing was done.

    Attributes:
        retry_after_seconds: when it is worth trying again (the next reconnect attempt).
    """

    def __init__(self, message: str, *, retry_after_seconds: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


def stream_id_key(entry_id: str) -> tuple[int, int]:
    """An entry id as a sortable pair (``"12-3"`` → ``(12, 3)``; ``"0"`` → ``(0, 0)``)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class SharedState(Protocol):
    """State shared by every request, worker and (with Redis) replica; each method is atomic.

    Instants (``now``, ``until``) are UNIX seconds, the clock that ``X-RateLimit-Reset``
    uses and that means the same on every machine; durations (``ttl``, ``max_wait``, the
    returned waits) are seconds.
    """

    async def take_tokens(
        self,
        bucket: str,
        *,
        rate_per_second: float,
        capacity: float,
        max_wait: float = 0.0,
        now: float | None = None,
    ) -> float:
        """Take one token from ``bucket``, or reserve the next one, or be told how long.

        The bucket holds up to ``capacity`` tokens (at least 1) and gains
        ``rate_per_second`` (above 0); a bucket never used before is full.

        Returns:
            ``0.0``: a token was taken; send now.
            ``0 < w <= max_wait``: the caller's token is reserved; send after ``w`` seconds.
            ``w > max_wait``: nothing was taken; a token is due in ``w`` seconds.
        """
        ...

    async def pause(self, bucket: str, until: float) -> float:
        """Pause ``bucket`` until the instant ``until``, unless it is already paused longer.

        Returns the instant the pause now ends (the later of the two).
        """
        ...

    async def paused_until(self, bucket: str, *, now: float | None = None) -> float | None:
        """The instant the pause of ``bucket`` ends, or ``None`` if it is not paused."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The value under ``key``, or ``None`` when absent or expired."""
        ...

    async def set(self, key: str, value: bytes, *, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (above 0), replacing any value."""
        ...

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float) -> bool:
        """Store ``value`` only if ``key`` holds nothing; whether it was stored."""
        ...

    async def compare_and_set(self, key: str, expected: bytes, value: bytes, *, ttl: float) -> bool:
        """Store ``value`` only if ``key`` holds exactly ``expected``; whether it was stored.

        With a random token inside the value this is "only if I still hold it": a holder
        whose entry expired and was taken over cannot overwrite the newcomer's.
        """
        ...

    async def compare_and_delete(self, key: str, expected: bytes) -> bool:
        """Delete ``key`` only if it holds exactly ``expected``; whether it was deleted."""
        ...

    async def delete(self, key: str) -> None:
        """Delete ``key`` if present."""
        ...

    async def append(self, stream: str, data: bytes, *, max_entries: int, ttl: float) -> str:
        """Append ``data`` to ``stream``; return the new entry's id.

        The stream keeps its last ``max_entries`` entries and expires ``ttl`` seconds
        after this append.
        """
        ...

    async def read_after(
        self, stream: str, after: str, *, count: int = 100, block: float = 0.0
    ) -> list[tuple[str, bytes]]:
        """Up to ``count`` entries of ``stream`` with ids above ``after``, oldest first.

        ``after="0"`` reads from the oldest entry kept.  With ``block`` above 0 and
        nothing there yet, waits up to ``block`` seconds for an entry; an empty list
        means none came.
        """
        ...


def check_bucket_args(rate_per_second: float, capacity: float, max_wait: float) -> None:
    if not (math.isfinite(rate_per_second) and rate_per_second > 0):
        raise ValueError(f"rate_per_second must be a finite number above 0, got {rate_per_second}.")
    if not (math.isfinite(capacity) and capacity >= 1):
        raise ValueError(f"capacity must be a finite number of at least 1, got {capacity}.")
    if math.isnan(max_wait) or max_wait < 0:
        raise ValueError(f"max_wait must be at least 0, got {max_wait}.")


def _check_ttl(ttl: float) -> None:
    if not (math.isfinite(ttl) and ttl > 0):
        raise ValueError(f"ttl must be a finite number of seconds above 0, got {ttl}.")


class InMemoryState:
    """:class:`SharedState` in dicts: correct within one process, not shared beyond it.

    Atomic because no method awaits anything: on one event loop a coroutine runs from
    one ``await`` to the next without another task in between, so each method is one
    indivisible step (it is not thread-safe, and needs not be: each worker process
    has its own loop and its own instance).  With several workers or replicas each one
    keeps its own budget, so the per-key limit must then be divided among them, or a
    shared (Redis) implementation used.

    Memory stays bounded: full buckets, ended pauses and expired values are swept every
    few thousand writes (a full bucket is the same as an absent one), and at most
    ``max_values`` values are kept, evicting the one closest to expiry.

    Args:
        clock: UNIX seconds (``time.time``); injectable so tests can move time by hand.
        max_values: the most values kept at once.
    """

    __slots__ = (
        "_buckets",
        "_clock",
        "_last_id",
        "_max_values",
        "_pauses",
        "_streams",
        "_values",
        "_writes",
    )

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        max_values: int = DEFAULT_MAX_VALUES,
    ) -> None:
        if max_values < 1:
            raise ValueError(f"max_values must be at least 1, got {max_values}.")
        self._clock = clock
        self._max_values = max_values
        self._buckets: dict[str, float] = {}
        self._pauses: dict[str, float] = {}
        self._values: dict[str, tuple[bytes, float]] = {}
        self._streams: dict[str, _Stream] = {}
        self._last_id = (0, 0)
        self._writes = 0

    def __repr__(self) -> str:
        # Counts only: bucket names and keys may be derived from credentials.
        return (
            f"InMemoryState(buckets={len(self._buckets)}, pauses={len(self._pauses)}, "
            f"values={len(self._values)}, streams={len(self._streams)})"
        )

    async def take_tokens(
        self,
        bucket: str,
        *,
        rate_per_second: float,
        capacity: float,
        max_wait: float = 0.0,
        now: float | None = None,
    ) -> float:
        check_bucket_args(rate_per_second, capacity, max_wait)
        now = self._clock() if now is None else now
        interval = 1.0 / rate_per_second
        tat = max(self._buckets.get(bucket, now), now)
        wait = max(0.0, tat - (capacity - 1.0) * interval - now)
        if wait > max_wait:
            return wait
        self._buckets[bucket] = tat + interval
        self._wrote(now)
        return wait

    async def pause(self, bucket: str, until: float) -> float:
        if math.isnan(until):
            raise ValueError("until must be an instant, got NaN.")
        until = max(self._pauses.get(bucket, until), until)
        self._pauses[bucket] = until
        self._wrote(self._clock())
        return until

    async def paused_until(self, bucket: str, *, now: float | None = None) -> float | None:
        until = self._pauses.get(bucket)
        if until is None:
            return None
        if until <= (self._clock() if now is None else now):
            return None
        return until

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def set(self, key: str, value: bytes, *, ttl: float) -> None:
        self._store(key, value, ttl)

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float) -> bool:
        _check_ttl(ttl)
        if self._live(key) is not None:
            return False
        self._store(key, value, ttl)
        return True

    async def compare_and_set(self, key: str, expected: bytes, value: bytes, *, ttl: float) -> bool:
        _check_ttl(ttl)
        if self._live(key) != expected:
            return False
        self._store(key, value, ttl)
        return True

    async def compare_and_delete(self, key: str, expected: bytes) -> bool:
        if self._live(key) != expected:
            return False
        del self._values[key]
        return True

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)

    async def append(self, stream: str, data: bytes, *, max_entries: int, ttl: float) -> str:
        _check_ttl(ttl)
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}.")
        now = self._clock()
        log = self._streams.get(stream)
        if log is None or log.expires_at <= now:
            log = self._streams[stream] = _Stream()
        # Ids as Redis makes them: milliseconds, then a sequence within the millisecond.
        ms = int(now * 1000)
        last_ms, last_seq = self._last_id
        self._last_id = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
        entry_id = f"{self._last_id[0]}-{self._last_id[1]}"
        log.entries.append((self._last_id, entry_id, data))
        while len(log.entries) > max_entries:
            log.entries.popleft()
        log.expires_at = now + ttl
        log.changed.set()
        log.changed = asyncio.Event()
        self._wrote(now)
        return entry_id

    async def read_after(
        self, stream: str, after: str, *, count: int = 100, block: float = 0.0
    ) -> list[tuple[str, bytes]]:
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}.")
        position = stream_id_key(after)
        found = self._after(stream, position, count)
        if found or block <= 0:
            return found
        log = self._streams.get(stream)
        if log is None:
            log = self._streams[stream] = _Stream(expires_at=self._clock() + block)
        try:
            async with asyncio.timeout(block):
                await log.changed.wait()
        except TimeoutError:
            return []
        return self._after(stream, position, count)

    def _after(self, stream: str, position: tuple[int, int], count: int) -> list[tuple[str, bytes]]:
        log = self._streams.get(stream)
        if log is None or log.expires_at <= self._clock():
            return []
        found: list[tuple[str, bytes]] = []
        # Newest last: walk back to the first entry past ``position`` (readers keep up,
        # so this is short), then forward.
        start = len(log.entries)
        while start > 0 and log.entries[start - 1][0] > position:
            start -= 1
        for index in range(start, min(start + count, len(log.entries))):
            _, entry_id, data = log.entries[index]
            found.append((entry_id, data))
        return found

    def _live(self, key: str) -> bytes | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at <= self._clock():
            del self._values[key]
            return None
        return value

    def _store(self, key: str, value: bytes, ttl: float) -> None:
        _check_ttl(ttl)
        now = self._clock()
        if key not in self._values and len(self._values) >= self._max_values:
            self._sweep(now)
            if len(self._values) >= self._max_values:
                soonest = min(self._values, key=lambda k: self._values[k][1])
                del self._values[soonest]
        self._values[key] = (value, now + ttl)
        self._wrote(now)

    def _wrote(self, now: float) -> None:
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        for name in [b for b, tat in self._buckets.items() if tat <= now]:
            del self._buckets[name]
        for name in [b for b, until in self._pauses.items() if until <= now]:
            del self._pauses[name]
        for key in [k for k, (_, expires_at) in self._values.items() if expires_at <= now]:
            del self._values[key]
        for name in [n for n, log in self._streams.items() if log.expires_at <= now]:
            del self._streams[name]


class _Stream:
    """One in-memory stream: its entries, expiry, and an event set on each append."""

    __slots__ = ("changed", "entries", "expires_at")

    def __init__(self, expires_at: float = math.inf) -> None:
        self.entries: deque[tuple[tuple[int, int], str, bytes]] = deque()
        self.expires_at = expires_at
        self.changed = asyncio.Event()
