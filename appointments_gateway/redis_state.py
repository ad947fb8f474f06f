""":class:`~appointments_gateway.state.SharedState` on Redis: one truth for every process.

Selected by ``GATEWAY_REDIS_URL`` (``redis://`` or ``rediss://``, with ``user:password@``
when the server wants one).  Each method is one Redis command or one Lua script, so it is
atomic on the server whatever the number of gateways (the table in :mod:`.state`).

**Keys** are ``{prefix}:{namespace}:{name}``: ``tb`` token buckets, ``pause`` pauses, ``kv``
values, ``st`` streams.  Names come from callers and are fingerprints and hashes, never an
API key or anything a patient typed.  **Every key has a TTL**: a bucket expires when it is
full again (its GCRA instant), a pause when it ends, a value after its ``ttl``, a stream
``ttl`` after its last append, and a stream is trimmed to ``max_entries``.  Nothing grows
without bound, and an idle deployment leaves an empty Redis behind.

**Time** comes from the server (``redis.call("TIME")`` inside the scripts), so gateways with
skewed clocks share one timeline; a bucket's answer is a duration, so callers never compare
instants across machines.  Tests pass ``clock`` to drive buckets and pauses on a fake
timeline (values and streams then still expire in real time: Redis knows no other).

**Failures**: a connection refused, a reset, a timeout (``timeout`` seconds per command,
plus the blocking time of a stream read), a server still loading its data or a read-only
replica all raise :class:`~appointments_gateway.state.SharedStateUnavailable`, never a
redis-py exception, so callers have one thing to handle.  What is safe to do without
Redis is decided above this class (:mod:`.state_fallback`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as redis
from redis.exceptions import ReadOnlyError, RedisError, ResponseError

from appointments_gateway.state import SharedStateUnavailable, check_bucket_args, stream_id_key

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "RedisState"]

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 1.0
"""How long one command may take before Redis counts as unreachable."""

#: Error replies that mean "not now" rather than "never".
_TRANSIENT = ("LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")

# Scripts take ``now`` as their last argument: "" means the server's clock.
_NOW = """
local now
if ARGV[#ARGV] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[#ARGV])
end
"""

# GCRA (state.py): ARGV = interval, tau, max_wait, now. Numbers go back as strings:
# Redis would truncate a Lua number to an integer.
_TAKE = (
    _NOW
    + """
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tau - now
if wait < 0 then wait = 0 end
if wait > max_wait then return string.format('%.6f', wait) end
local new = tat + interval
redis.call('SET', KEYS[1], string.format('%.6f', new), 'PX', math.ceil((new - now) * 1000) + 1)
return string.format('%.6f', wait)
"""
)

# Move a bucket's instant on by ``tokens`` intervals: tokens spent elsewhere (while this
# process could not reach Redis) are charged to the shared bucket. ARGV = interval, tokens, now.
_CHARGE = (
    _NOW
    + """
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new = tat + tonumber(ARGV[1]) * tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.6f', new), 'PX', math.ceil((new - now) * 1000) + 1)
return string.format('%.6f', new - now)
"""
)

# ARGV = until, now. Keeps the later instant; expires when it ends.
_PAUSE = (
    _NOW
    + """
local ends = tonumber(ARGV[1])
local stored = tonumber(redis.call('GET', KEYS[1]) or '-1')
if stored > ends then ends = stored end
if ends > now then
  redis.call('SET', KEYS[1], string.format('%.6f', ends), 'PX', math.ceil((ends - now) * 1000) + 1)
end
return string.format('%.6f', ends)
"""
)

# ARGV = now.
_PAUSED_UNTIL = (
    _NOW
    + """
local stored = redis.call('GET', KEYS[1])
if not stored then return false end
if tonumber(stored) <= now then return false end
return stored
"""
)

# ARGV = expected, value, ttl_ms.
_COMPARE_AND_SET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""

# ARGV = expected.
_COMPARE_AND_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

# ARGV = max_entries, data, ttl_ms. One script, so the trim and the expiry always come
# with the append (an XADD followed by a lost PEXPIRE would leave a stream forever).
_APPEND = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return id
"""


def _ms(seconds: float) -> int:
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"ttl must be a finite number of seconds above 0, got {seconds}.")
    return max(1, math.ceil(seconds * 1000))


class RedisState:
    """:class:`~appointments_gateway.state.SharedState` in one Redis (or a Redis behind TLS).

    Args:
        url: ``redis://`` or ``rediss://``; the password, if any, inside it.
        prefix: first part of every key (``GATEWAY_REDIS_PREFIX``).
        timeout: seconds one command may take (connecting included).
        clock: only for tests: drive buckets and pauses on this clock instead of Redis'.
        client: an existing client (tests); ``url`` is then ignored.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "gw",
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Callable[[], float] | None = None,
        client: redis.Redis | None = None,
    ) -> None:
        self._redis: redis.Redis = client or redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            # No socket timeout: a blocking stream read waits longer than a command may;
            # every call is bounded by ``asyncio.timeout`` instead (``_call``).
            socket_timeout=None,
            health_check_interval=30,
            # Errors are ours to map (SharedStateUnavailable); redis-py must not retry
            # a script that moved a bucket on, or a write it may already have made.
            retry_on_timeout=False,
        )
        self._prefix = prefix
        self._timeout = timeout
        self._clock = clock
        register = self._redis.register_script
        # Loaded once by EVALSHA's first NOSCRIPT (redis-py's Script does it), then by hash.
        self._take = register(_TAKE)
        self._charge = register(_CHARGE)
        self._pause = register(_PAUSE)
        self._paused_until = register(_PAUSED_UNTIL)
        self._compare_and_set = register(_COMPARE_AND_SET)
        self._compare_and_delete = register(_COMPARE_AND_DELETE)
        self._append = register(_APPEND)

    def __repr__(self) -> str:
        # Never the URL: it may carry a password.
        return f"RedisState(prefix={self._prefix!r})"

    def key(self, namespace: str, name: str) -> str:
        """The Redis key of ``name`` in ``namespace`` (``tb``, ``pause``, ``kv``, ``st``)."""
        return f"{self._prefix}:{namespace}:{name}"

    async def _call(self, action: Callable[[], Awaitable[T]], *, extra: float = 0.0) -> T:
        try:
            async with asyncio.timeout(self._timeout + extra):
                return await action()
        except ResponseError as exc:
            # A script or command refused: a bug of ours unless the server is between
            # states (loading, a replica turned read-only, busy with a script).
            if isinstance(exc, ReadOnlyError) or str(exc).startswith(_TRANSIENT):
                raise SharedStateUnavailable(
                    f"Redis refused for now ({type(exc).__name__})"
                ) from exc
            raise
        except (RedisError, OSError, TimeoutError) as exc:
            raise SharedStateUnavailable(f"Redis did not answer ({type(exc).__name__})") from exc

    def _now(self, now: float | None) -> str:
        if self._clock is None:
            return ""
        return repr(self._clock() if now is None else now)

    async def ping(self) -> None:
        """Raise :class:`SharedStateUnavailable` unless Redis answers now."""
        await self._call(self._redis.ping)

    async def aclose(self) -> None:
        await self._redis.aclose()

    # --- buckets and pauses ---------------------------------------------------------

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
        interval = 1.0 / rate_per_second
        args = [
            repr(interval),
            repr((capacity - 1.0) * interval),
            "1e300" if math.isinf(max_wait) else repr(max_wait),
            self._now(now),
        ]
        key = self.key("tb", bucket)
        raw = await self._call(lambda: self._take(keys=[key], args=args))
        return float(raw)

    async def charge(
        self, bucket: str, *, rate_per_second: float, tokens: int, now: float | None = None
    ) -> float:
        """Count ``tokens`` spent outside Redis against ``bucket``; the seconds it is now owed.

        Not part of :class:`~appointments_gateway.state.SharedState`: only the fallback
        (``state_fallback.py``) needs it, to hand back what it spent while Redis was away.
        """
        args = [repr(1.0 / rate_per_second), str(tokens), self._now(now)]
        key = self.key("tb", bucket)
        return float(await self._call(lambda: self._charge(keys=[key], args=args)))

    async def pause(self, bucket: str, until: float) -> float:
        if math.isnan(until):
            raise ValueError("until must be an instant, got NaN.")
        args = [repr(until), self._now(None)]
        key = self.key("pause", bucket)
        return float(await self._call(lambda: self._pause(keys=[key], args=args)))

    async def paused_until(self, bucket: str, *, now: float | None = None) -> float | None:
        args = [self._now(now)]
        key = self.key("pause", bucket)
        raw = await self._call(lambda: self._paused_until(keys=[key], args=args))
        return None if raw is None else float(raw)

    # --- values ---------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        name = self.key("kv", key)
        raw: Any = await self._call(lambda: self._redis.get(name))
        return None if raw is None else bytes(raw)

    async def set(self, key: str, value: bytes, *, ttl: float) -> None:
        ms, name = _ms(ttl), self.key("kv", key)
        await self._call(lambda: self._redis.set(name, value, px=ms))

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float) -> bool:
        ms, name = _ms(ttl), self.key("kv", key)
        return bool(await self._call(lambda: self._redis.set(name, value, px=ms, nx=True)))

    async def compare_and_set(self, key: str, expected: bytes, value: bytes, *, ttl: float) -> bool:
        args: list[Any] = [expected, value, _ms(ttl)]
        name = self.key("kv", key)
        return bool(await self._call(lambda: self._compare_and_set(keys=[name], args=args)))

    async def compare_and_delete(self, key: str, expected: bytes) -> bool:
        name = self.key("kv", key)
        return bool(
            await self._call(lambda: self._compare_and_delete(keys=[name], args=[expected]))
        )

    async def delete(self, key: str) -> None:
        name = self.key("kv", key)
        await self._call(lambda: self._redis.delete(name))

    # --- streams --------------------------------------------------------------------

    async def append(self, stream: str, data: bytes, *, max_entries: int, ttl: float) -> str:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}.")
        args: list[Any] = [max_entries, data, _ms(ttl)]
        name = self.key("st", stream)
        raw = await self._call(lambda: self._append(keys=[name], args=args))
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    async def read_after(
        self, stream: str, after: str, *, count: int = 100, block: float = 0.0
    ) -> list[tuple[str, bytes]]:
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}.")
        ms, seq = stream_id_key(after)
        name = self.key("st", stream)
        # BLOCK 0 would wait forever in Redis: no BLOCK at all for "do not wait".
        block_ms = max(1, math.ceil(block * 1000)) if block > 0 else None
        found: Any = await self._call(
            lambda: self._redis.xread({name: f"{ms}-{seq}"}, count=count, block=block_ms),
            extra=max(0.0, block),
        )
        entries: list[tuple[str, bytes]] = []
        # RESP2's answer: [[stream, [(id, {field: value}), ...]]]; ids and values as bytes.
        for _stream, rows in found or []:
            for entry_id, fields in rows:
                entries.append((entry_id.decode(), bytes(fields[b"d"])))
        return entries
