"""What only the Redis state promises: prefixed keys, a TTL on every key, scripts by hash,
server time, passwords, and one exception when Redis is away (tests/test_state.py holds
the contract both implementations share)."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as redis

from appointments_gateway.redis_state import RedisState
from appointments_gateway.state import SharedStateUnavailable
from tests.redis_server import RedisServer, free_port


async def _exercise(state: RedisState) -> None:
    await state.take_tokens("upstream:fp", rate_per_second=1.0, capacity=3.0)
    await state.take_tokens("upstream:fp", rate_per_second=1.0, capacity=3.0, max_wait=10)
    await state.pause("upstream:fp", time.time() + 30)
    await state.set("idempotency:v1:fp:abc", b"x", ttl=60)
    await state.set_if_absent("lease:fp", b"t", ttl=5)
    await state.compare_and_set("lease:fp", b"t", b"t", ttl=5)
    await state.append("feed:fp", b"e", max_entries=5, ttl=30)


async def test_every_key_is_prefixed_and_expires(redis_server: RedisServer) -> None:
    state = RedisState(redis_server.url, prefix="ttlcheck")
    client = redis.Redis.from_url(redis_server.url)
    try:
        await _exercise(state)
        keys = sorted(
            str(k, "utf-8") if isinstance(k, bytes) else k for k in await client.keys("ttlcheck:*")
        )
        assert keys == [
            "ttlcheck:kv:idempotency:v1:fp:abc",
            "ttlcheck:kv:lease:fp",
            "ttlcheck:pause:upstream:fp",
            "ttlcheck:st:feed:fp",
            "ttlcheck:tb:upstream:fp",
        ]
        for key in keys:
            ttl = await client.pttl(key)
            assert ttl > 0, key  # -1 would be a key that lives forever
    finally:
        await client.aclose()
        await state.aclose()


async def test_scripts_run_by_hash_on_the_servers_clock(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    await client.config_resetstat()
    state = RedisState(redis_server.url, prefix="sha")
    try:
        for _ in range(5):
            await state.take_tokens("b", rate_per_second=1.0, capacity=2.0, now=12345.0)
        stats = await client.info("commandstats")
        # Every call by hash; a server that lacks the script answers NOSCRIPT once and
        # redis-py loads it (SCRIPT LOAD), never sending the source with each call.
        assert stats["cmdstat_evalsha"]["calls"] in (5, 6)
        assert "cmdstat_eval" not in stats
        assert stats.get("cmdstat_script|load", {"calls": 0})["calls"] <= 1
        # Without a test clock, ``now`` from the caller is ignored: the server's TIME
        # decides. A caller an hour ahead still finds the bucket as the server sees it.
        assert await state.take_tokens("b", rate_per_second=1.0, capacity=2.0) > 0
        late = await state.take_tokens(
            "b", rate_per_second=1.0, capacity=2.0, now=time.time() + 3600
        )
        assert late > 0
    finally:
        await client.aclose()
        await state.aclose()


async def test_a_password_protected_redis(tmp_path: object) -> None:
    server = RedisServer(password="s3cret-Pw").start()
    try:
        with_password = RedisState(server.url, prefix="pw")
        assert "s3cret" not in repr(with_password)
        await with_password.set("k", b"v", ttl=5)
        assert await with_password.get("k") == b"v"
        await with_password.aclose()
        anonymous = RedisState(server.url.replace(":s3cret-Pw@", ""), prefix="pw")
        with pytest.raises(SharedStateUnavailable) as caught:
            await anonymous.get("k")
        assert "s3cret" not in str(caught.value)
        await anonymous.aclose()
    finally:
        server.close()


async def test_an_unreachable_redis_raises_one_exception_promptly() -> None:
    state = RedisState(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    started = time.monotonic()
    for call in (
        state.get("k"),
        state.set_if_absent("k", b"v", ttl=5),
        state.take_tokens("b", rate_per_second=1.0, capacity=1.0),
        state.read_after("s", "0", block=0.2),
    ):
        with pytest.raises(SharedStateUnavailable):
            await call
    assert time.monotonic() - started < 3
    await state.aclose()


async def test_a_restarted_redis_is_used_again_without_a_new_client() -> None:
    server = RedisServer().start()
    state = RedisState(server.url, prefix="restart")
    try:
        await state.set("k", b"1", ttl=30)
        server.stop()
        with pytest.raises(SharedStateUnavailable):
            await state.get("k")
        server.start()
        # The data went with the process (no persistence); the connection comes back.
        assert await state.get("k") is None
        await state.set("k", b"2", ttl=30)
        assert await state.get("k") == b"2"
    finally:
        await state.aclose()
        server.close()
