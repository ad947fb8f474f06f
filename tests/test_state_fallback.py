"""Redis taken away and given back under a busy budget: never more than N in any window.

Two processes (two ``FallbackState`` over one real Redis, on one fake clock) take tokens
greedily, every 50 ms of fake time, before, during and after an outage in which Redis is
stopped by its PID and restarted empty (no persistence). Every grant is recorded, and every
window of the horizon's length must hold at most the budget.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from appointments_gateway.redis_state import RedisState
from appointments_gateway.state import SharedStateUnavailable
from appointments_gateway.state_fallback import FallbackState
from tests.redis_server import RedisServer
from tests.upstream.test_governor import most_in_any_window

T0 = 1_700_000_000.0
HORIZON = 10.0
CAPACITY = 4.0
RATE = 1.6  # CAPACITY + RATE * HORIZON = 20 per window
BUDGET = 20


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.close()


def _process(server: RedisServer, clock: Clock, processes: int) -> FallbackState:
    return FallbackState(
        RedisState(server.url, prefix="fb", clock=clock, timeout=0.5),
        processes=processes,
        horizon=HORIZON,
        clock=clock,
    )


async def test_the_budget_holds_across_an_outage_and_a_restart_that_lost_the_data(
    server: RedisServer,
) -> None:
    clock = Clock()
    pair = [_process(server, clock, 2), _process(server, clock, 2)]
    grants: list[float] = []
    phases = {"before": 0, "during": 0, "after": 0}
    phase = "before"
    step = 0.05
    for tick in range(int(45 / step)):
        clock.now = T0 + tick * step
        if tick == int(5 / step):
            server.stop()
            phase = "during"
        if tick == int(25 / step):
            server.start()  # empty: Redis forgot every bucket
            phase = "after"
        for process in pair:
            wait = await process.take_tokens("upstream:fp", rate_per_second=RATE, capacity=CAPACITY)
            if wait == 0.0:
                grants.append(clock.now)
                phases[phase] += 1
    assert most_in_any_window(grants, HORIZON) <= BUDGET
    # The pair kept working in each phase, and the fallback did not starve it:
    # 20 s of outage at the shared rate is ~32 grants (the first window pays for the burst).
    assert phases["before"] >= CAPACITY
    assert phases["during"] >= 20
    assert phases["after"] >= 15  # less: the outage's grants were charged back
    assert all(p.available for p in pair)
    assert [p.outages for p in pair] == [1, 1]
    assert [p.recoveries for p in pair] == [1, 1]
    for process in pair:
        await process.aclose()


async def test_values_are_refused_while_away_and_redis_is_tried_once_a_second(
    server: RedisServer,
) -> None:
    clock = Clock()
    state = _process(server, clock, 1)
    assert await state.set_if_absent("idempotency:k", b"pending", ttl=60)
    server.stop()
    with pytest.raises(SharedStateUnavailable):
        await state.get("idempotency:k")
    assert not state.available
    assert state.last_error  # a class name, for /readyz
    # Within the probe interval nothing goes to Redis: refusals are immediate and say when.
    with pytest.raises(SharedStateUnavailable) as caught:
        await state.set_if_absent("idempotency:other", b"pending", ttl=60)
    assert 0 < caught.value.retry_after_seconds <= 1.5
    server.start()
    clock.now += 1.0
    assert await state.set_if_absent("idempotency:other", b"pending", ttl=60)
    assert state.available
    await state.aclose()


async def test_a_pause_seen_in_redis_holds_while_redis_is_away(server: RedisServer) -> None:
    clock = Clock()
    state = _process(server, clock, 1)
    await state.pause("upstream:fp", T0 + 30)
    assert await state.paused_until("upstream:fp") == pytest.approx(T0 + 30)
    server.stop()
    clock.now += 1
    assert await state.paused_until("upstream:fp") == pytest.approx(T0 + 30)
    await state.aclose()
