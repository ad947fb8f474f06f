from __future__ import annotations

import pytest

from appointments_gateway.state import InMemoryState, SharedState

T0 = 1_700_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> InMemoryState:
    return InMemoryState(clock=clock)


def test_in_memory_state_is_a_shared_state(state: InMemoryState) -> None:
    shared: SharedState = state  # mypy checks the protocol; this checks it at runtime too
    assert callable(shared.take_tokens)


async def test_a_new_bucket_is_full_and_then_refills_at_its_rate(
    state: InMemoryState, clock: Clock
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
    state: InMemoryState,
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


async def test_buckets_are_independent(state: InMemoryState) -> None:
    args = {"rate_per_second": 1.0, "capacity": 1.0}
    assert await state.take_tokens("a", **args) == 0.0
    assert await state.take_tokens("a", **args) > 0
    assert await state.take_tokens("b", **args) == 0.0


async def test_explicit_now_overrides_the_clock(state: InMemoryState) -> None:
    args = {"rate_per_second": 1.0, "capacity": 1.0}
    assert await state.take_tokens("b", now=T0, **args) == 0.0
    assert await state.take_tokens("b", now=T0 + 0.25, **args) == pytest.approx(0.75)
    assert await state.take_tokens("b", now=T0 + 1.0, **args) == 0.0


@pytest.mark.parametrize(
    ("rate", "capacity", "max_wait"),
    [(0.0, 1.0, 0.0), (-1.0, 1.0, 0.0), (1.0, 0.5, 0.0), (1.0, 1.0, -1.0), (float("inf"), 1, 0)],
)
async def test_bucket_arguments_are_checked(
    state: InMemoryState, rate: float, capacity: float, max_wait: float
) -> None:
    with pytest.raises(ValueError, match="must be"):
        await state.take_tokens("b", rate_per_second=rate, capacity=capacity, max_wait=max_wait)


async def test_pauses_keep_the_later_instant_and_end_by_themselves(
    state: InMemoryState, clock: Clock
) -> None:
    assert await state.paused_until("b") is None
    assert await state.pause("b", T0 + 10) == T0 + 10
    assert await state.pause("b", T0 + 5) == T0 + 10  # an earlier reset never shortens it
    assert await state.paused_until("b") == T0 + 10
    assert await state.paused_until("other") is None
    assert await state.paused_until("b", now=T0 + 10) is None
    clock.now = T0 + 10
    assert await state.paused_until("b") is None


async def test_values_expire_after_their_ttl(state: InMemoryState, clock: Clock) -> None:
    await state.set("k", b"v", ttl=5)
    assert await state.get("k") == b"v"
    clock.now += 4.9
    assert await state.get("k") == b"v"
    clock.now += 0.1
    assert await state.get("k") is None


async def test_set_if_absent_claims_once_until_expiry(state: InMemoryState, clock: Clock) -> None:
    assert await state.set_if_absent("k", b"first", ttl=5)
    assert not await state.set_if_absent("k", b"second", ttl=5)
    assert await state.get("k") == b"first"
    clock.now += 5
    assert await state.set_if_absent("k", b"third", ttl=5)
    assert await state.get("k") == b"third"


async def test_compare_and_set_and_delete_only_act_on_the_expected_value(
    state: InMemoryState,
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
async def test_ttl_must_be_positive_and_finite(state: InMemoryState, ttl: float) -> None:
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


async def test_idle_buckets_and_ended_pauses_are_swept(state: InMemoryState, clock: Clock) -> None:
    for n in range(2000):
        await state.take_tokens(f"key-{n}", rate_per_second=1.0, capacity=2.0)
        await state.pause(f"key-{n}", T0 + 1)
    clock.now += 10  # every bucket is full again, every pause over
    for _ in range(2000):
        await state.take_tokens("busy", rate_per_second=1000.0, capacity=5000.0)
    assert "buckets=1," in repr(state)
    assert "pauses=0," in repr(state)


def test_repr_shows_counts_not_names(state: InMemoryState) -> None:
    assert repr(state) == "InMemoryState(buckets=0, pauses=0, values=0, streams=0)"
