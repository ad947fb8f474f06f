"""Idempotency keys: one key, one upstream create, however often the client retries.

A mobile client on a flaky network cannot tell "my request was lost" from "the answer
was lost", so it retries; without a key, the second try books the patient twice.
With ``idempotencyKey``, the gateway remembers for 24 h (``DEFAULT_TTL``), per
credential, what the key was used for:

* **Same key, same input, same credential**: the first result (the appointment id),
  with no second POST. A request that arrives while the first is still in flight
  waits for its outcome instead of sending its own.
* **Same key, different input**: :class:`IdempotencyKeyReused`; nothing is sent.
* **The first attempt failed, certainly without effect** (Cliniko refused it with a
  4xx such as a 422, or the connection never opened): the key is released, so the
  corrected or repeated request can proceed with it.
* **The first attempt's outcome is unknown** (a timeout after the request was sent,
  a 5xx, a 2xx we could not read, the request being cancelled mid-flight): the key
  is kept as *unknown* for the rest of its 24 h and every later use of it gets
  :class:`IdempotencyOutcomeUnknown`. The gateway cannot know whether Cliniko stored
  the appointment, and sending it again could book it twice; the client is told to
  look for the appointment and, if it is not there, book again with a **new** key.
  A waiter whose first attempt is still in flight after ``in_flight_seconds`` (its
  owner may have died) gets the same answer.
* **The shared store is unreachable** (Redis down, ``state_fallback.py``): the key cannot
  be claimed, so :class:`IdempotencyUnavailable` is raised and **nothing is sent**: another
  instance may hold the key, and a POST here could book twice.  The client retries with
  the same key a few seconds later.  If the store goes away *after* the POST succeeded, the
  caller still gets its appointment; the key then stays "in flight" until its deadline.

The key is scoped by ``Credential.fingerprint`` (never the API key itself), and is
stored hashed, so neither the API key nor the client's key string is kept. Only the
appointment id is stored as the result, never the record (which holds PHI): a replay
re-reads the appointment, so it shows its current state.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import httpx

from appointments_gateway.state import SharedState, SharedStateUnavailable
from appointments_gateway.upstream import InvalidRequest, UpstreamStatusError, UpstreamUnavailable

__all__ = [
    "DEFAULT_IN_FLIGHT_SECONDS",
    "DEFAULT_TTL",
    "Fresh",
    "Idempotency",
    "IdempotencyKeyReused",
    "IdempotencyOutcomeUnknown",
    "IdempotencyUnavailable",
    "Replay",
    "certainly_without_effect",
]

T = TypeVar("T")

DEFAULT_TTL = 24 * 60 * 60.0
"""How long a key is remembered: 24 h after its first use completed."""
DEFAULT_IN_FLIGHT_SECONDS = 60.0
"""How long a waiter waits for the first attempt: longer than a create can take."""
_POLL_FIRST = 0.01
_POLL_MAX = 0.25

_PENDING = "pending"
_DONE = "done"
_UNKNOWN = "unknown"


class IdempotencyKeyReused(Exception):
    """The key was already used with a different input, by the same credential."""


class IdempotencyOutcomeUnknown(Exception):
    """The key's first attempt may or may not have created the record."""


class IdempotencyUnavailable(Exception):
    """The key store cannot be reached: nothing was sent; retry with the same key later."""

    def __init__(self, retry_after_seconds: float) -> None:
        super().__init__("the idempotency store is unreachable")
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True, slots=True)
class Fresh(Generic[T]):
    """This call ran the action; ``value`` is what it returned."""

    value: T


@dataclass(frozen=True, slots=True)
class Replay:
    """An earlier call with this key succeeded; ``result`` is what it recorded."""

    result: str


_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def certainly_without_effect(exc: BaseException) -> bool:
    """Whether a failed write certainly changed nothing upstream, so it may be retried.

    True for refusals before sending (``InvalidRequest``), 4xx answers (Cliniko
    looked at the request and refused it) and connections that never opened. False
    for everything else: read/write timeouts, 5xx (a proxy's 502/504 says nothing
    about whether Cliniko applied it), unreadable 2xx bodies, cancellation, bugs.
    """
    if isinstance(exc, InvalidRequest | UpstreamStatusError):
        return True
    return isinstance(exc, UpstreamUnavailable) and isinstance(exc.__cause__, _NEVER_SENT)


@dataclass(frozen=True, slots=True)
class _Entry:
    state: str
    fingerprint: str
    token: str = ""
    deadline: float = 0.0
    result: str = ""

    def encode(self) -> bytes:
        return json.dumps(
            {
                "state": self.state,
                "input": self.fingerprint,
                "token": self.token,
                "deadline": self.deadline,
                "result": self.result,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, raw: bytes) -> _Entry:
        data = json.loads(raw)
        return cls(
            state=str(data["state"]),
            fingerprint=str(data["input"]),
            token=str(data["token"]),
            deadline=float(data["deadline"]),
            result=str(data["result"]),
        )


class Idempotency:
    """Runs creates at most once per (credential, key) through a :class:`SharedState`.

    Args:
        state: where keys live; one instance per process (or a shared Redis).
        ttl: how long a key is remembered, in seconds.
        in_flight_seconds: how long a waiter waits for the first attempt.
        clock: wall-clock seconds (deadlines are compared across replicas).
        sleep: awaited between polls of a key in flight; injectable for tests.
    """

    __slots__ = ("_clock", "_in_flight", "_sleep", "_state", "_ttl")

    def __init__(
        self,
        state: SharedState,
        *,
        ttl: float = DEFAULT_TTL,
        in_flight_seconds: float = DEFAULT_IN_FLIGHT_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._state = state
        self._ttl = ttl
        self._in_flight = in_flight_seconds
        self._clock = clock
        self._sleep = sleep

    @staticmethod
    def storage_key(scope: str, key: str) -> str:
        """Where ``key`` of credential ``scope`` lives; the client's key is hashed."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"idempotency:v1:{scope}:{digest}"

    async def run(
        self,
        *,
        scope: str,
        key: str,
        fingerprint: str,
        action: Callable[[], Awaitable[T]],
        result_of: Callable[[T], str],
    ) -> Fresh[T] | Replay:
        """Run ``action`` unless this key already ran (or is running) with this input.

        Args:
            scope: the credential's fingerprint.
            key: the client's idempotency key.
            fingerprint: a digest of the normalised input; a different one is a reuse.
            action: the write; its exceptions propagate after the key is settled.
            result_of: what to remember of a success (an id, never PHI).

        Raises:
            IdempotencyKeyReused: the key was used with another input.
            IdempotencyOutcomeUnknown: an earlier attempt's outcome is unknown.
            IdempotencyUnavailable: the store is unreachable; nothing was sent.
        """
        try:
            return await self._run(scope, key, fingerprint, action, result_of)
        except SharedStateUnavailable as exc:
            raise IdempotencyUnavailable(exc.retry_after_seconds) from exc

    async def _run(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        action: Callable[[], Awaitable[T]],
        result_of: Callable[[T], str],
    ) -> Fresh[T] | Replay:
        storage_key = self.storage_key(scope, key)
        delay = _POLL_FIRST
        while True:
            pending = _Entry(
                _PENDING,
                fingerprint,
                token=secrets.token_hex(16),
                deadline=self._clock() + self._in_flight,
            ).encode()
            if await self._state.set_if_absent(storage_key, pending, ttl=self._ttl):
                return Fresh(
                    await self._execute(storage_key, pending, fingerprint, action, result_of)
                )
            raw = await self._state.get(storage_key)
            if raw is None:
                continue  # released (or expired) since the claim failed: try again
            entry = _Entry.decode(raw)
            if entry.fingerprint != fingerprint:
                raise IdempotencyKeyReused
            if entry.state == _DONE:
                return Replay(entry.result)
            if entry.state == _UNKNOWN or self._clock() >= entry.deadline:
                raise IdempotencyOutcomeUnknown
            await self._sleep(delay)
            delay = min(delay * 2, _POLL_MAX)

    async def _execute(
        self,
        storage_key: str,
        pending: bytes,
        fingerprint: str,
        action: Callable[[], Awaitable[T]],
        result_of: Callable[[T], str],
    ) -> T:
        try:
            value = await action()
        except BaseException as exc:
            # The store going away now must not hide the write's own error: the entry
            # then stays "pending" and ends as unknown at its deadline, never as free.
            with contextlib.suppress(SharedStateUnavailable):
                if certainly_without_effect(exc):
                    await self._state.compare_and_delete(storage_key, pending)
                else:
                    unknown = _Entry(_UNKNOWN, fingerprint).encode()
                    await self._state.compare_and_set(storage_key, pending, unknown, ttl=self._ttl)
            raise
        done = _Entry(_DONE, fingerprint, result=result_of(value)).encode()
        # False only if our entry vanished (evicted under memory pressure): the create
        # still succeeded, and this caller still gets it. So it does if the store went
        # away after the POST: the booking exists and this caller must learn of it.
        with contextlib.suppress(SharedStateUnavailable):
            await self._state.compare_and_set(storage_key, pending, done, ttl=self._ttl)
        return value
