"""One contract for every SharedState: in memory and in a real Redis (``redis_server``).

Buckets and pauses run on a fake clock (both implementations take ``now`` from it: the
Redis one passes it into its scripts); values and streams expire in real time in Redis,
so their tests use real time and short TTLs for both.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest

from appointments_gateway.redis_state import RedisState
from appointments_gateway.state import InMemoryState, SharedState
from tests.redis_server import RedisServer

T0 = 1_700_000_000.0
_PREFIXES = itertools.count()


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _redis_state(server: RedisServer, clock: Clock | None) -> RedisState:
    # A prefix per test: one server serves the whole session.
    return RedisState(server.url, prefix=f"t{next(_PREFIXES)}", clock=clock)


@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[SharedState]:
    """A state whose buckets and pauses follow ``clock``."""
    if request.param == "memory":
        yield InMemoryState(clock=clock)
        return
    redis_state = _redis_state(request.getfixturevalue("redis_server"), clock)
    yield redis_state
    await redis_state.aclose()


@pytest.fixture(params=["memory", "redis"])
async def live_state(request: pytest.FixtureRequest) -> AsyncIterator[SharedState]:
    """A state on real time: values and streams expire as Redis expires them."""
    if request.param == "memory":
        yield InMemoryState()
        return
    redis_state = _redis_state(request.getfixturevalue("redis_server"), None)
    yield redis_state
    await redis_state.aclose()


@pytest.fixture
def memory(clock: Clock) -> InMemoryState:
    return InMemoryState(clock=clock)


def test_both_implementations_are_shared_states(memory: InMemoryState) -> None:
    # mypy checks the protocol on these assignments; the asserts check at runtime.
    shared: SharedState = memory
    assert callable(shared.take_tokens)
    remote: SharedState = RedisState("redis://127.0.0.1:1/0")
    assert callable(remote.read_after)


async def test_a_new_bucket_is_full_and_then_refills_at_its_rate(
    state: SharedState, clock: Clock
) -> None:
    take = [await state.take_tokens("b", rate_per_second=2.0, capacity=3.0) for _ in range(4)]
    assert take[:3] == [0.0, 0.0, 0.0]
    assert take[3] == pytest.approx(0.5)  # refused (max_wait 0): told when
    clock.now += 0.5
    assert await state.take_tokens("b", rate_per_second=2.0, capacity=3.0) == 0.0
    assert await state.take_tokens("b", rate_per_second=2.0, capacity=3.0) == pytest.approx(0.5)
    clock.now += 60  # idle for long: full again, but never above capacity
    results = [await state.take_tokens("b", rate_per_second=2.0, capacity=3.0) for _ in range(4)]
    assert results[:3] == [0.0, 0.0, 0.0]
    assert results[3] > 0


async def test_refused_callers_take_nothing_and_waiters_reserve_in_order(
    state: SharedState,
) -> None:
    args = {"rate_per_second": 1.0, "capacity": 1.0}
    assert await state.take_tokens("b", **args) == 0.0
    # Refusals leave the bucket alone: asking again gives the same answer.
    assert await state.take_tokens("b", **args) == pytest.approx(1.0)
    assert await state.take_tokens("b", **args) == pytest.approx(1.0)
    # Waiters reserve consecutive tokens: first in line gets the first one.
    reserved = [await state.take_tokens("b", max_wait=10, **args) for _ in range(3)]
    assert reserved == pytest.approx([1.0, 2.0, 3.0])
    # A caller that will not wait that long is refused with the next free slot.
    assert await state.take_tokens("b", max_wait=3.5, **args) == pytest.approx(4.0)
    assert await state.take_tokens("b", max_wait=4.0, **args) == pytest.approx(4.0)


async def test_buckets_are_independent(state: SharedState) -> None:
    args = {"rate_per_second": 1.0, "capacity": 1.0}
    assert await state.take_tokens("a", **args) == 0.0
    assert await state.take_tokens("a", **args) > 0
    assert await state.take_tokens("b", **args) == 0.0


async def test_explicit_now_overrides_the_clock(state: SharedState) -> None:
    args = {"rate_per_second": 1.0, "capacity": 1.0}
    assert await state.take_tokens("b", now=T0, **args) == 0.0
    assert await state.take_tokens("b", now=T0 + 0.25, **args) == pytest.approx(0.75)
    assert await state.take_tokens("b", now=T0 + 1.0, **args) == 0.0


@pytest.mark.parametrize(
    ("rate", "capacity", "max_wait"),
    [(0.0, 1.0, 0.0), (-1.0, 1.0, 0.0), (1.0, 0.5, 0.0), (1.0, 1.0, -1.0), (float("inf"), 1, 0)],
)
async def test_bucket_arguments_are_checked(
    state: SharedState, rate: float, capacity: float, max_wait: float
) -> None:
    with pytest.raises(ValueError, match="must be"):
        await state.take_tokens("b", rate_per_second=rate, capacity=capacity, max_wait=max_wait)


async def test_pauses_keep_the_later_instant_and_end_by_themselves(
    state: SharedState, clock: Clock
) -> None:
    assert await state.paused_until("b") is None
    assert await state.pause("b", T0 + 10) == T0 + 10
    assert await state.pause("b", T0 + 5) == T0 + 10  # an earlier reset never shortens it
    assert await state.paused_until("b") == T0 + 10
    assert await state.paused_until("other") is None
    assert await state.paused_until("b", now=T0 + 10) is None
    clock.now = T0 + 10
    assert await state.paused_until("b") is None


async def test_values_expire_after_their_ttl(live_state: SharedState) -> None:
    await live_state.set("k", b"v", ttl=0.3)
    assert await live_state.get("k") == b"v"
    await asyncio.sleep(0.45)
    assert await live_state.get("k") is None


async def test_set_if_absent_claims_once_until_expiry(live_state: SharedState) -> None:
    state = live_state
    assert await state.set_if_absent("k", b"first", ttl=0.3)
    assert not await state.set_if_absent("k", b"second", ttl=5)
    assert await state.get("k") == b"first"
    await asyncio.sleep(0.45)
    assert await state.set_if_absent("k", b"third", ttl=5)
    assert await state.get("k") == b"third"


async def test_compare_and_set_and_delete_only_act_on_the_expected_value(
    state: SharedState,
) -> None:
    await state.set("k", b"mine", ttl=5)
    assert not await state.compare_and_set("k", b"theirs", b"x", ttl=5)
    assert await state.compare_and_set("k", b"mine", b"done", ttl=5)
    assert await state.get("k") == b"done"
    assert not await state.compare_and_delete("k", b"mine")
    assert await state.compare_and_delete("k", b"done")
    assert await state.get("k") is None
    assert not await state.compare_and_set("absent", b"", b"x", ttl=5)
    await state.delete("absent")  # deleting nothing is fine


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf")])
async def test_ttl_must_be_positive_and_finite(state: SharedState, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await state.set("k", b"v", ttl=ttl)
    with pytest.raises(ValueError, match="ttl"):
        await state.set_if_absent("k", b"v", ttl=ttl)


async def test_values_are_bounded_evicting_the_soonest_to_expire(clock: Clock) -> None:
    state = InMemoryState(clock=clock, max_values=2)
    await state.set("long", b"1", ttl=100)
    await state.set("short", b"2", ttl=10)
    await state.set("new", b"3", ttl=50)
    assert await state.get("short") is None
    assert await state.get("long") == b"1"
    assert await state.get("new") == b"3"


async def test_idle_buckets_and_ended_pauses_are_swept(memory: InMemoryState, clock: Clock) -> None:
    state = memory
    for n in range(2000):
        await state.take_tokens(f"key-{n}", rate_per_second=1.0, capacity=2.0)
        await state.pause(f"key-{n}", T0 + 1)
    clock.now += 10  # every bucket is full again, every pause over
    for _ in range(2000):
        await state.take_tokens("busy", rate_per_second=1000.0, capacity=5000.0)
    assert "buckets=1," in repr(state)
    assert "pauses=0," in repr(state)


def test_repr_shows_counts_not_names(memory: InMemoryState) -> None:
    assert repr(memory) == "InMemoryState(buckets=0, pauses=0, values=0, streams=0)"


# --- streams -------------------------------------------------------------------------


async def test_streams_give_entries_after_an_id_in_order(live_state: SharedState) -> None:
    state = live_state
    assert await state.read_after("s", "0") == []
    ids = [await state.append("s", f"e{n}".encode(), max_entries=10, ttl=5) for n in range(4)]
    assert [tuple(map(int, i.split("-"))) for i in ids] == sorted(
        tuple(map(int, i.split("-"))) for i in ids
    )
    assert len(set(ids)) == 4
    assert await state.read_after("s", "0") == [(i, f"e{n}".encode()) for n, i in enumerate(ids)]
    assert await state.read_after("s", ids[1]) == [(ids[2], b"e2"), (ids[3], b"e3")]
    assert await state.read_after("s", ids[0], count=2) == [(ids[1], b"e1"), (ids[2], b"e2")]
    assert await state.read_after("s", ids[3]) == []
    assert await state.read_after("other", "0") == []


async def test_streams_keep_their_last_entries_and_expire(live_state: SharedState) -> None:
    state = live_state
    ids = [await state.append("s", str(n).encode(), max_entries=3, ttl=0.4) for n in range(6)]
    kept = await state.read_after("s", "0")
    assert kept == [(ids[3], b"3"), (ids[4], b"4"), (ids[5], b"5")]
    await asyncio.sleep(0.55)
    assert await state.read_after("s", "0") == []


async def test_a_blocked_reader_wakes_on_an_append(live_state: SharedState) -> None:
    state = live_state
    first = await state.append("s", b"a", max_entries=10, ttl=5)
    started = time.monotonic()
    reader = asyncio.create_task(state.read_after("s", first, block=3.0))
    await asyncio.sleep(0.1)
    second = await state.append("s", b"b", max_entries=10, ttl=5)
    assert await reader == [(second, b"b")]
    assert time.monotonic() - started < 1.5
    # Nothing comes: an empty answer after about ``block``.
    started = time.monotonic()
    assert await state.read_after("s", second, block=0.2) == []
    assert 0.15 < time.monotonic() - started < 1.5
