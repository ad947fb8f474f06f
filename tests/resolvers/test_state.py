"""The in-memory shared state: TTLs, the atomic steps, and bounded memory."""

from __future__ import annotations

import pytest

from appointments_gateway.resolvers.state import MemoryState


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> MemoryState:
    return MemoryState(clock=clock)


async def test_a_value_lives_for_its_ttl(state, clock):
    await state.set("k", b"v", ttl=10)
    clock.now += 9.9
    assert await state.get("k") == b"v"
    clock.now += 0.1
    assert await state.get("k") is None


async def test_set_if_absent_stores_only_once_until_expiry(state, clock):
    assert await state.set_if_absent("k", b"first", ttl=10)
    assert not await state.set_if_absent("k", b"second", ttl=10)
    assert await state.get("k") == b"first"
    clock.now += 10
    assert await state.set_if_absent("k", b"third", ttl=10)
    assert await state.get("k") == b"third"


async def test_compare_and_set_needs_the_exact_current_value(state, clock):
    await state.set("k", b"mine", ttl=10)
    assert not await state.compare_and_set("k", b"theirs", b"new", ttl=10)
    assert await state.get("k") == b"mine"
    assert await state.compare_and_set("k", b"mine", b"new", ttl=100)
    clock.now += 50
    assert await state.get("k") == b"new"  # the new TTL applies
    assert not await state.compare_and_set("absent", b"mine", b"new", ttl=10)
    assert await state.get("absent") is None


async def test_compare_and_delete_needs_the_exact_current_value(state):
    await state.set("k", b"mine", ttl=10)
    assert not await state.compare_and_delete("k", b"theirs")
    assert await state.get("k") == b"mine"
    assert await state.compare_and_delete("k", b"mine")
    assert await state.get("k") is None


async def test_an_expired_value_cannot_be_compared(state, clock):
    """A holder whose entry expired must not act as if it still held it."""
    await state.set("k", b"mine", ttl=1)
    clock.now += 1
    assert not await state.compare_and_set("k", b"mine", b"new", ttl=10)
    assert not await state.compare_and_delete("k", b"mine")


async def test_delete(state):
    await state.set("k", b"v", ttl=10)
    await state.delete("k")
    await state.delete("never-there")
    assert await state.get("k") is None


async def test_a_full_state_drops_expired_values_first_then_the_soonest(clock):
    state = MemoryState(max_entries=3, clock=clock)
    await state.set("short", b"1", ttl=1)
    await state.set("long", b"2", ttl=100)
    await state.set("middle", b"3", ttl=50)
    clock.now += 2  # "short" has expired
    await state.set("new", b"4", ttl=100)
    assert len(state) == 3
    assert await state.get("middle") == b"3"
    await state.set("newer", b"5", ttl=100)  # full, nothing expired: "middle" goes
    assert len(state) == 3
    assert await state.get("middle") is None
    assert [await state.get(k) for k in ("long", "new", "newer")] == [b"2", b"4", b"5"]


async def test_ttl_must_be_positive(state):
    with pytest.raises(ValueError, match="ttl"):
        await state.set("k", b"v", ttl=0)
    with pytest.raises(ValueError, match="ttl"):
        await state.set_if_absent("k", b"v", ttl=-1)


def test_max_entries_must_be_positive():
    with pytest.raises(ValueError, match="max_entries"):
        MemoryState(max_entries=0)
