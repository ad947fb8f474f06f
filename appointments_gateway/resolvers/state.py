"""The small shared-state interface (DESIGN.md §7), and its in-memory implementation.

State that replicas must agree on (idempotency keys today; rate budgets, persisted
queries and reference-data caches later) goes through :class:`SharedState`: byte
values under string keys, each with a time to live, plus three atomic primitives.
Every method maps onto one Redis command or one short Lua script, so a Redis
implementation needs no other design:

============================  ==============================================
``get(key)``                  ``GET key``
``set(key, value, ttl)``      ``SET key value PX ttl``
``set_if_absent``             ``SET key value NX PX ttl`` (true when it was set)
``compare_and_set``           Lua: ``if GET key == old then SET key new PX ttl``
``compare_and_delete``        Lua: ``if GET key == old then DEL key``
``delete(key)``               ``DEL key``
============================  ==============================================

``compare_and_set`` and ``compare_and_delete`` compare the whole value, so a value carrying a random
token makes them "only if I still hold it": a holder whose entry expired and was
claimed by someone else cannot overwrite or free the newcomer's entry.

:class:`MemoryState` is the default: correct within one process (asyncio runs each
method to completion without switching tasks, so every method is atomic), and
useless across processes. Until a Redis implementation exists, run one worker per
gateway when idempotency must hold across retries that may land on another worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["DEFAULT_MAX_ENTRIES", "MemoryState", "SharedState"]

DEFAULT_MAX_ENTRIES = 100_000
"""Entries the in-memory state keeps; an idempotency entry is about 200 bytes."""


class SharedState(Protocol):
    """Byte values with a time to live, shared by every request (and, in Redis, replica).

    ``ttl`` is in seconds and must be positive; an expired entry reads as absent.
    """

    async def get(self, key: str) -> bytes | None:
        """The value under ``key``, or ``None`` when absent or expired."""
        ...

    async def set(self, key: str, value: bytes, *, ttl: float) -> None:
        """Store ``value`` under ``key``, replacing anything there."""
        ...

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float) -> bool:
        """Store ``value`` only if ``key`` is absent; whether it was stored."""
        ...

    async def compare_and_set(self, key: str, expected: bytes, value: bytes, *, ttl: float) -> bool:
        """Store ``value`` only if ``key`` holds exactly ``expected``; whether it did."""
        ...

    async def compare_and_delete(self, key: str, expected: bytes) -> bool:
        """Delete ``key`` only if it holds exactly ``expected``; whether it did."""
        ...

    async def delete(self, key: str) -> None:
        """Delete ``key`` if present."""
        ...


class MemoryState:
    """:class:`SharedState` in a dict, for one process.

    Expired entries are dropped when read and swept when the dict is full. When it
    is still full after the sweep, the entry closest to expiry is evicted: memory
    stays bounded, at the price of forgetting a live entry under extreme load
    (``max_entries`` creates within one TTL).

    Args:
        max_entries: the most entries kept at once.
        clock: monotonic seconds; injectable so tests can move time forward.
    """

    __slots__ = ("_clock", "_entries", "_max_entries")

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1.")
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[bytes, float]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def _live(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at <= self._clock():
            del self._entries[key]
            return None
        return value

    def _store(self, key: str, value: bytes, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive.")
        if key not in self._entries and len(self._entries) >= self._max_entries:
            self._make_room()
        self._entries[key] = (value, self._clock() + ttl)

    def _make_room(self) -> None:
        now = self._clock()
        for key in [k for k, (_, expires_at) in self._entries.items() if expires_at <= now]:
            del self._entries[key]
        if len(self._entries) >= self._max_entries:
            soonest = min(self._entries, key=lambda k: self._entries[k][1])
            del self._entries[soonest]

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def set(self, key: str, value: bytes, *, ttl: float) -> None:
        self._store(key, value, ttl)

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float) -> bool:
        if self._live(key) is not None:
            return False
        self._store(key, value, ttl)
        return True

    async def compare_and_set(self, key: str, expected: bytes, value: bytes, *, ttl: float) -> bool:
        if self._live(key) != expected:
            return False
        self._store(key, value, ttl)
        return True

    async def compare_and_delete(self, key: str, expected: bytes) -> bool:
        if self._live(key) != expected:
            return False
        del self._entries[key]
        return True

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)
