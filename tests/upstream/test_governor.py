"""The upstream budget governor, on a virtual timeline: minutes of traffic in milliseconds."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest

from appointments_gateway.resolvers.errors import gateway_error_for
from appointments_gateway.sandbox.knobs import RateLimiter
from appointments_gateway.upstream import (
    NO_RETRY,
    Credential,
    Governor,
    RateBudgetExhausted,
    RetryPolicy,
    UpstreamClient,
    UpstreamRateLimited,
    UpstreamTimeout,
)

from .conftest import USER_AGENT, example_appointment, json_response

T = TypeVar("T")
T0 = 1_700_000_000.0
KEY = "fingerprint-a"
OTHER = "fingerprint-b"


class VirtualTime:
    """A clock and a ``sleep`` on a virtual timeline that jumps to the next wake-up.

    ``run`` drives coroutines that wait only through ``sleep``: whenever every live task
    is parked on a timer, time moves to the earliest one. Nothing sleeps for real.
    """

    def __init__(self, start: float = T0) -> None:
        self.now = start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(0.0, seconds), next(self._seq), future))
        await future

    async def run(self, *coroutines: Coroutine[Any, Any, T]) -> list[T | BaseException]:
        tasks = [asyncio.ensure_future(c) for c in coroutines]
        for _ in range(1_000_000):
            alive = sum(not t.done() for t in tasks)
            if not alive:
                break
            parked = sum(not f.done() for _, _, f in self._timers)
            if parked < alive:
                await asyncio.sleep(0)
                continue
            when, _, future = heapq.heappop(self._timers)
            self.now = max(self.now, when)
            future.set_result(None)
        else:  # pragma: no cover
            raise AssertionError("the virtual timeline did not settle")
        return [t.exception() or t.result() for t in tasks]


@pytest.fixture
def vt() -> VirtualTime:
    return VirtualTime()


def governor(vt: VirtualTime, **options: Any) -> Governor:
    return Governor(clock=vt, sleep=vt.sleep, **options)


def most_in_any_window(times: list[float], window: float) -> int:
    """The largest number of ``times`` inside one closed interval of length ``window``."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def send_at(
    vt: VirtualTime, gov: Governor, arrival: float, sent: list[float], key: str = KEY
) -> float:
    """Arrive at ``T0 + arrival``, wait for the budget, record the send instant."""
    await vt.sleep(T0 + arrival - vt.now)
    waited = await gov.acquire(key)
    sent.append(vt.now)
    return waited


def arrivals(pattern: str) -> list[float]:
    rng = random.Random(5)
    if pattern == "one burst":
        return [0.0] * 1000
    if pattern == "bursts at window edges":
        return [t for edge in (0.0, 59.9, 60.0, 119.95, 120.0) for t in [edge] * 200]
    if pattern == "steady overload":
        return [n / 5 for n in range(5 * 180)]  # 300 a minute for three minutes
    return sorted(rng.uniform(0, 180) for _ in range(1200))  # random


@pytest.mark.parametrize(
    "pattern", ["one burst", "bursts at window edges", "steady overload", "random"]
)
async def test_never_more_than_the_limit_in_any_60_seconds(vt: VirtualTime, pattern: str) -> None:
    gov = governor(vt, max_wait=3600)  # everyone waits their turn, nobody is refused
    sent: list[float] = []
    times = arrivals(pattern)
    await vt.run(*(send_at(vt, gov, t, sent) for t in times))
    assert len(sent) == len(times)
    assert most_in_any_window(sent, 60.0) <= 200
    # ...even when each request reaches upstream anywhere up to the margin later: the
    # worst such delays put every send of a (60 + margin) s interval into one minute.
    assert most_in_any_window(sent, 60.0 + gov.margin) <= 200
    # ...and the sandbox's own fixed windows (opened by a first request) never say 429.
    rng = random.Random(7)
    arrived = iter(sorted(t + rng.uniform(0, gov.margin) for t in sent))
    limiter = RateLimiter(200, clock=lambda: next(arrived))
    assert all(limiter.check("key") is None for _ in sent)


async def test_the_bound_is_tight_a_faster_rate_would_break_it(vt: VirtualTime) -> None:
    # The same burst through a bucket refilled at the naive N/60 exceeds N in a minute:
    # this is why the rate is (N - burst) / (60 + margin).
    gov = governor(vt, max_wait=3600)
    gov.rate_per_second = 200 / 60
    sent: list[float] = []
    await vt.run(*(send_at(vt, gov, 0.0, sent) for _ in range(400)))
    assert most_in_any_window(sent, 60.0) > 200


async def test_a_burst_goes_out_at_once_then_one_token_per_interval(vt: VirtualTime) -> None:
    gov = governor(vt, max_wait=3600)
    sent: list[float] = []
    await vt.run(*(send_at(vt, gov, 0.0, sent) for _ in range(25)))
    interval = 61 / 180
    assert sent[:20] == [T0] * 20
    assert sent[20:] == pytest.approx([T0 + n * interval for n in range(1, 6)])
    assert gov.stats.granted == 25
    assert gov.stats.waits == 5
    assert gov.rate_per_second * 60 == pytest.approx(177.05, abs=0.01)  # 88% of the budget


async def test_another_key_is_not_slowed(vt: VirtualTime) -> None:
    gov = governor(vt, max_wait=3600)
    sent_a: list[float] = []
    sent_b: list[float] = []
    results = await vt.run(
        *(send_at(vt, gov, 0.0, sent_a) for _ in range(400)),
        send_at(vt, gov, 1.0, sent_b, key=OTHER),
        send_at(vt, gov, 30.0, sent_b, key=OTHER),
    )
    assert results[-2:] == [0.0, 0.0]  # no wait at all
    assert sent_b == [T0 + 1.0, T0 + 30.0]
    assert max(sent_a) > T0 + 100  # while key A queued for minutes


async def test_waits_are_bounded_and_the_rest_fail_at_once_with_a_retry_time(
    vt: VirtualTime,
) -> None:
    gov = governor(vt, max_wait=2.0)
    sent: list[float] = []
    results = await vt.run(*(send_at(vt, gov, 0.0, sent) for _ in range(100)))
    waits = [r for r in results if isinstance(r, float)]
    refusals = [r for r in results if isinstance(r, RateBudgetExhausted)]
    interval = 61 / 180
    assert len(waits) == 20 + math.floor(2.0 / interval)  # the burst, then what 2 s refills
    assert max(waits) <= 2.0
    assert len(refusals) == 100 - len(waits)
    assert gov.stats.refused == len(refusals)
    # Refused callers are told when the next token is due, and were told at once.
    for exc in refusals:
        assert 2.0 < exc.retry_after_seconds <= 2.0 + interval  # type: ignore[operator]
        assert exc.status_code == 429
        error = gateway_error_for(exc)
        assert error.extensions == {"code": "RATE_LIMITED", "retryAfterSeconds": 3}
    assert "API key" in str(refusals[0])
    assert KEY not in str(refusals[0])


async def test_a_caller_may_wait_less_than_the_governor_allows(vt: VirtualTime) -> None:
    gov = governor(vt, limit=2, burst=1, margin=0, max_wait=60)
    assert await gov.acquire(KEY) == 0.0
    with pytest.raises(RateBudgetExhausted) as caught:
        await gov.acquire(KEY, max_wait=0.0)
    assert caught.value.retry_after_seconds == pytest.approx(60.0)


async def test_a_429_pauses_the_key_for_everyone_until_the_reset(vt: VirtualTime) -> None:
    gov = governor(vt, max_wait=5.0)
    until = await gov.rate_limited(KEY, rate_limited(reset_at=T0 + 10))
    assert until == T0 + 10 + gov.margin
    with pytest.raises(RateBudgetExhausted) as caught:
        await gov.acquire(KEY)  # the pause is longer than max_wait: fail fast
    assert caught.value.retry_after_seconds == pytest.approx(11.0)
    assert vt.now == T0
    assert await gov.acquire(OTHER) == 0.0  # other keys carry on
    [waited] = await vt.run(gov.acquire(KEY, max_wait=20))
    assert waited == pytest.approx(11.0)
    assert gov.stats.upstream_429s == 1


async def test_a_429_without_a_reset_pauses_a_whole_window(vt: VirtualTime) -> None:
    gov = governor(vt)
    until = await gov.rate_limited(KEY, rate_limited(reset_at=None))
    assert until == T0 + 60
    # A reset already in the past (our clock runs ahead) still pauses for the margin.
    assert await gov.rate_limited(OTHER, rate_limited(reset_at=T0 - 5)) == T0 + gov.margin


async def test_a_waiter_that_a_429_overtakes_queues_behind_the_pause(vt: VirtualTime) -> None:
    gov = governor(vt, limit=2, burst=1, margin=0, max_wait=200)  # one token a minute
    assert await gov.acquire(KEY) == 0.0

    async def late_429() -> None:
        await vt.sleep(10)
        await gov.rate_limited(KEY, rate_limited(reset_at=T0 + 100))

    waited, _ = await vt.run(gov.acquire(KEY), late_429())
    # It reserved the token due at 60 s, woke into the pause, waited it out (100 s), and
    # did not use the stale reservation: it took the next token, due at 120 s.
    assert waited == pytest.approx(120.0)


def test_disabled_and_invalid_governors() -> None:
    assert not Governor(limit=0).enabled
    assert Governor().burst == 20
    bad: list[dict[str, Any]] = [
        {"limit": 1},
        {"limit": -1},
        {"burst": 200},
        {"burst": 0},
        {"max_wait": -1},
    ]
    for options in bad:
        with pytest.raises(ValueError, match="must be"):
            Governor(**options)
    assert "key" not in repr(Governor()).lower()


def rate_limited(*, reset_at: float | None) -> UpstreamRateLimited:
    return UpstreamRateLimited(
        "GET /x failed: upstream answered 429",
        status_code=429,
        reset_at=None if reset_at is None else datetime.fromtimestamp(reset_at, UTC),
        retry_after_seconds=None,
    )


# --- through UpstreamClient ------------------------------------------------------------


Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Upstream:
    """A mock Cliniko that answers from a script and records when each request came."""

    def __init__(self, vt: VirtualTime, *answers: Callable[[], httpx.Response]) -> None:
        self.vt = vt
        self.answers = list(answers)
        self.times: list[float] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(self.vt.now)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer()


def too_many(vt: VirtualTime, seconds: int) -> Callable[[], httpx.Response]:
    return lambda: httpx.Response(429, headers={"X-RateLimit-Reset": str(int(vt.now) + seconds)})


def ok() -> httpx.Response:
    return json_response(200, example_appointment())


def unavailable() -> httpx.Response:
    return httpx.Response(503)


@pytest.fixture
async def client_for(vt: VirtualTime):
    clients: list[UpstreamClient] = []

    def make(upstream: Upstream, gov: Governor, retry: RetryPolicy = NO_RETRY) -> UpstreamClient:
        client = UpstreamClient(
            user_agent=USER_AGENT,
            transport=httpx.MockTransport(upstream),
            governor=gov,
            retry=retry,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


CREDENTIAL = Credential("MS0xLTEyMzQ1Njc4OTAtZDk4-au4")


async def test_a_read_answered_429_is_retried_once_after_the_pause(vt, client_for) -> None:
    upstream = Upstream(vt, too_many(vt, 3), ok)
    gov = governor(vt, max_wait=5.0)
    session = client_for(upstream, gov).session(CREDENTIAL)
    [record] = await vt.run(session.appointments.get("1390726237298631770"))
    assert not isinstance(record, BaseException)
    assert upstream.times == [T0, T0 + 3 + gov.margin]
    assert (session.stats.requests, session.stats.retries) == (2, 1)
    assert (gov.stats.upstream_429s, gov.stats.retried_after_429, gov.stats.granted) == (1, 1, 2)


async def test_a_read_is_retried_after_a_429_only_once(vt, client_for) -> None:
    upstream = Upstream(vt, too_many(vt, 1))
    gov = governor(vt, max_wait=5.0)
    session = client_for(upstream, gov).session(CREDENTIAL)
    [error] = await vt.run(session.appointments.get("1"))
    assert isinstance(error, UpstreamRateLimited)
    assert not isinstance(error, RateBudgetExhausted)  # Cliniko's own answer
    assert len(upstream.times) == 2


async def test_a_read_whose_pause_outlasts_max_wait_fails_at_once(vt, client_for) -> None:
    upstream = Upstream(vt, too_many(vt, 30), ok)
    gov = governor(vt, max_wait=5.0)
    session = client_for(upstream, gov).session(CREDENTIAL)
    [error] = await vt.run(session.appointments.get("1"))
    assert isinstance(error, UpstreamRateLimited)
    assert gateway_error_for(error).extensions["code"] == "RATE_LIMITED"
    assert upstream.times == [T0]
    assert vt.now == T0
    # The key stays paused: the next call fails fast without reaching Cliniko.
    [error] = await vt.run(session.appointments.get("1"))
    assert isinstance(error, RateBudgetExhausted)
    assert error.retry_after_seconds == pytest.approx(31.0)
    assert upstream.times == [T0]


async def test_a_write_answered_429_is_not_retried_and_pauses_the_key(vt, client_for) -> None:
    upstream = Upstream(vt, too_many(vt, 3), ok)
    gov = governor(vt, max_wait=5.0)
    session = client_for(upstream, gov).session(CREDENTIAL)
    [error] = await vt.run(session.appointments.archive("1"))  # a POST
    assert isinstance(error, UpstreamRateLimited)
    assert upstream.times == [T0]
    assert gov.stats.retried_after_429 == 0
    # A read right after it waits for the pause the write's 429 started.
    await vt.run(session.appointments.get("1"))
    assert upstream.times == [T0, T0 + 3 + gov.margin]


async def test_every_attempt_takes_a_token_retries_included(vt, client_for) -> None:
    upstream = Upstream(vt, unavailable, unavailable, ok)
    gov = governor(vt, limit=4, burst=1, margin=0, window=3, max_wait=10.0)  # 1 token a second
    retry = RetryPolicy(max_retries=2, base_delay=0, sleep=vt.sleep)
    session = client_for(upstream, gov, retry).session(CREDENTIAL)
    await vt.run(session.appointments.get("1"))
    assert upstream.times == [T0, T0 + 1, T0 + 2]
    assert gov.stats.granted == 3


async def test_all_attempts_of_one_call_share_one_max_wait(vt, client_for) -> None:
    upstream = Upstream(vt, unavailable, unavailable, ok)
    gov = governor(vt, limit=4, burst=1, margin=0, window=3, max_wait=1.5)
    retry = RetryPolicy(max_retries=2, base_delay=0, sleep=vt.sleep)
    session = client_for(upstream, gov, retry).session(CREDENTIAL)
    [error] = await vt.run(session.appointments.get("1"))
    # Waited 1 s before the second attempt; the third would need 1 s more than is left.
    assert isinstance(error, RateBudgetExhausted)
    assert upstream.times == [T0, T0 + 1]


async def test_no_wait_outlasts_the_operation_deadline(vt, client_for) -> None:
    upstream = Upstream(vt, ok)
    gov = governor(vt, limit=2, burst=1, max_wait=3600)
    session = client_for(upstream, gov).session(CREDENTIAL)
    await vt.run(session.appointments.get("1"))
    session.deadline = time.monotonic() + 5.0  # sooner than the next token, 30 s away
    [error] = await vt.run(session.appointments.get("1"))
    assert isinstance(error, RateBudgetExhausted)
    session.deadline = time.monotonic() - 1.0  # already past: the call is not even tried
    [error] = await vt.run(session.appointments.get("1"))
    assert isinstance(error, UpstreamTimeout)
    assert len(upstream.times) == 1


async def test_without_a_governor_requests_go_straight_through(vt, client_for) -> None:
    upstream = Upstream(vt, ok)
    client = client_for(upstream, Governor(limit=0))
    assert client.governor is None
    session = client.session(CREDENTIAL)
    for _ in range(50):
        await session.appointments.get("1")
    assert len(upstream.times) == 50


async def test_the_default_client_governs_at_cliniko_s_limit() -> None:
    async with UpstreamClient(user_agent=USER_AGENT) as client:
        assert client.governor is not None
        assert (client.governor.limit, client.governor.window) == (200, 60.0)


# --- background (replica sync) requests --------------------------------------------------


async def background_at(vt: VirtualTime, gov: Governor, arrival: float, sent: list[float]) -> None:
    """A sync that tries at ``T0 + arrival`` and gives up at once when refused."""
    await vt.sleep(T0 + arrival - vt.now)
    try:
        await gov.acquire_background(KEY)
    except RateBudgetExhausted:
        return
    sent.append(vt.now)


async def test_background_never_takes_more_than_its_share_in_any_window(vt: VirtualTime) -> None:
    gov = governor(vt, background_share=0.2)
    sent: list[float] = []
    # A sync that would try 10 times a second for three minutes, on an idle key.
    await vt.run(*(background_at(vt, gov, n / 10, sent) for n in range(1800)))
    assert most_in_any_window(sent, 60.0 + gov.margin) <= 40
    # ...and it is not starved on an idle key: close to its share each minute.
    assert len(sent) >= 3 * 40 * 0.7
    assert gov.stats.background_refused == 1800 - len(sent)
    assert gov.stats.refused == 0  # a background refusal is no user's RATE_LIMITED


async def test_background_never_waits(vt: VirtualTime) -> None:
    gov = governor(vt, background_share=0.2)
    for _ in range(int(gov.background_capacity)):
        await gov.acquire_background(KEY)
    with pytest.raises(RateBudgetExhausted) as refused:
        await gov.acquire_background(KEY)
    assert vt.now == T0  # no time passed: refused at once
    assert refused.value.retry_after_seconds is not None
    assert refused.value.retry_after_seconds > 0


async def test_background_leaves_the_reserve_to_interactive_reads(vt: VirtualTime) -> None:
    gov = governor(vt, background_share=1.0)
    # Reads drew the key's bucket down to its reserve: background gets nothing...
    for _ in range(gov.burst - gov.background_reserve):
        assert await gov.acquire(KEY) == 0.0
    with pytest.raises(RateBudgetExhausted):
        await gov.acquire_background(KEY)
    # ...while the reserve is still there for reads, without waiting.
    for _ in range(gov.background_reserve):
        assert await gov.acquire(KEY) == 0.0


async def test_under_interactive_pressure_background_gets_nothing_and_reads_lose_nothing(
    vt: VirtualTime,
) -> None:
    plain = governor(vt, max_wait=0.0)
    shared = governor(vt, max_wait=0.0)
    refused = {"plain": 0, "shared": 0}
    synced: list[float] = []

    async def read(gov: Governor, name: str, arrival: float) -> None:
        await vt.sleep(T0 + arrival - vt.now)
        try:
            await gov.acquire(KEY)
        except RateBudgetExhausted:
            refused[name] += 1

    # Reads at 250 a minute (above the budget) for two minutes; sync tries twice a second.
    reads = [n * 60 / 250 for n in range(500)]
    await vt.run(
        *(read(plain, "plain", t) for t in reads),
        *(read(shared, "shared", t) for t in reads),
        *(background_at(vt, shared, n / 2, synced) for n in range(240)),
    )
    # Sync took a token only while the bucket was above the reserve (the first moments):
    assert len(synced) <= shared.background_capacity
    # ...and reads were refused no more often than without any sync, bar what it took.
    assert refused["shared"] <= refused["plain"] + len(synced)


async def test_background_respects_a_pause_and_off_means_off(vt: VirtualTime) -> None:
    gov = governor(vt)
    await gov.rate_limited(KEY, rate_limited(reset_at=T0 + 30))
    with pytest.raises(RateBudgetExhausted):
        await gov.acquire_background(KEY)
    none = governor(vt, background_share=0.0)
    with pytest.raises(RateBudgetExhausted):
        await none.acquire_background(OTHER)
    with pytest.raises(ValueError, match="background_share"):
        governor(vt, background_share=1.5)


async def test_a_queued_background_request_gets_its_turn_while_reads_use_everything(
    vt: VirtualTime,
) -> None:
    """The replica's load under a read flood: it waits its turn and is never starved."""
    gov = governor(vt, max_wait=5.0, background_share=0.2)
    reads: list[float] = []
    loads: list[float] = []

    async def load() -> None:
        while vt.now < T0 + 120:
            try:
                await gov.acquire_background(KEY, queue=10.0)
            except RateBudgetExhausted as refused:
                await vt.sleep(max(0.05, refused.retry_after_seconds or 0.0))
                continue
            loads.append(vt.now)

    # 600 reads a minute for two minutes, three times the budget, and a load meanwhile.
    await vt.run(*(send_or_drop(vt, gov, n / 10, reads) for n in range(1200)), load())
    # It got its turn at a steady rate (not starved), and never beyond its share.
    assert len(loads) >= 2 * 10
    assert most_in_any_window(loads, 60.0 + gov.margin) <= 40
    # Reads and load together never exceed the key's limit.
    assert most_in_any_window(reads + loads, 60.0 + gov.margin) <= 200


async def send_or_drop(vt: VirtualTime, gov: Governor, arrival: float, sent: list[float]) -> None:
    await vt.sleep(T0 + arrival - vt.now)
    try:
        await gov.acquire(KEY)
    except RateBudgetExhausted:
        return
    sent.append(vt.now)
