"""Idempotency keys: at most one create per key, whatever the timing and the failures."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest

from appointments_gateway.resolvers.idempotency import (
    DEFAULT_TTL,
    Fresh,
    Idempotency,
    IdempotencyKeyReused,
    IdempotencyOutcomeUnknown,
    Replay,
    certainly_without_effect,
)
from appointments_gateway.state import InMemoryState
from appointments_gateway.upstream import (
    InvalidRequest,
    UpstreamNotFound,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
    UpstreamValidationError,
)


class Clock:
    """One hand-moved clock for the state's TTLs and the store's deadlines."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Create:
    """A stand-in for the upstream POST: counts calls, can block, can fail."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.fail_with: BaseException | None = None

    async def __call__(self) -> str:
        self.calls += 1
        call, failure = self.calls, self.fail_with  # decided when the call starts
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if failure is not None:
            raise failure
        return f"appointment-{call}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> Idempotency:
    return Idempotency(InMemoryState(clock=clock), clock=clock, in_flight_seconds=60.0)


def runner(
    store: Idempotency, create: Create, *, scope: str = "cred-a", fingerprint: str = "input-1"
) -> Callable[[], Awaitable[Fresh[str] | Replay]]:
    def run() -> Awaitable[Fresh[str] | Replay]:
        return store.run(
            scope=scope, key="key-1", fingerprint=fingerprint, action=create, result_of=str
        )

    return run


def timeout_after_sending() -> UpstreamTimeout:
    error = UpstreamTimeout("POST timed out", method="POST")
    error.__cause__ = httpx.ReadTimeout("read")
    return error


def connect_refused() -> UpstreamUnavailable:
    error = UpstreamUnavailable("POST failed", method="POST")
    error.__cause__ = httpx.ConnectError("refused")
    return error


async def test_the_first_use_runs_and_a_repeat_replays_without_running(store):
    create = Create()
    run = runner(store, create)
    assert await run() == Fresh("appointment-1")
    assert await run() == Replay("appointment-1")
    assert create.calls == 1


async def test_another_input_with_the_key_is_refused_without_running(store):
    create = Create()
    await runner(store, create)()
    with pytest.raises(IdempotencyKeyReused):
        await runner(store, create, fingerprint="input-2")()
    assert create.calls == 1


async def test_keys_of_different_credentials_do_not_meet(store):
    create = Create()
    await runner(store, create, scope="cred-a")()
    assert await runner(store, create, scope="cred-b")() == Fresh("appointment-2")
    assert create.calls == 2


async def test_a_key_is_forgotten_after_24_hours(store, clock):
    create = Create()
    run = runner(store, create)
    await run()
    clock.now += DEFAULT_TTL - 1
    assert await run() == Replay("appointment-1")
    clock.now += 2
    assert await run() == Fresh("appointment-2")


@pytest.mark.parametrize(
    "error",
    [
        UpstreamValidationError("422", status_code=422, field_errors={"patient_id": "must exist"}),
        UpstreamNotFound("404", status_code=404),
        UpstreamRateLimited("429", status_code=429, reset_at=None, retry_after_seconds=None),
        InvalidRequest("bad id"),
        connect_refused(),
    ],
    ids=["422", "404", "429", "refused-before-sending", "connection-refused"],
)
async def test_a_failure_without_effect_frees_the_key(store, error):
    create = Create()
    run = runner(store, create)
    create.fail_with = error
    with pytest.raises(type(error)):
        await run()
    create.fail_with = None
    assert await run() == Fresh("appointment-2")


@pytest.mark.parametrize(
    "error",
    [
        timeout_after_sending(),
        UpstreamUnavailable("502", method="POST", status_code=502),
        UpstreamProtocolError("201 with an unreadable body"),
        RuntimeError("a bug after sending"),
    ],
    ids=["read-timeout", "5xx", "unreadable-2xx", "bug"],
)
async def test_an_ambiguous_failure_keeps_the_key_as_unknown(store, clock, error):
    create = Create()
    run = runner(store, create)
    create.fail_with = error
    with pytest.raises(type(error)):
        await run()
    create.fail_with = None
    with pytest.raises(IdempotencyOutcomeUnknown):
        await run()
    clock.now += DEFAULT_TTL - 1
    with pytest.raises(IdempotencyOutcomeUnknown):
        await run()
    assert create.calls == 1


async def test_a_cancelled_create_is_an_unknown_outcome(store):
    create = Create()
    create.gate = asyncio.Event()
    run = runner(store, create)
    task = asyncio.ensure_future(run())
    await create.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(IdempotencyOutcomeUnknown):
        await run()
    assert create.calls == 1


async def test_a_concurrent_repeat_waits_for_the_first_and_replays_it(store):
    create = Create()
    create.gate = asyncio.Event()
    run = runner(store, create)
    first = asyncio.ensure_future(run())
    await create.started.wait()
    second = asyncio.ensure_future(run())
    await asyncio.sleep(0.05)
    assert not second.done()
    create.gate.set()
    assert await first == Fresh("appointment-1")
    assert await second == Replay("appointment-1")
    assert create.calls == 1


async def test_a_concurrent_repeat_runs_itself_when_the_first_failed_without_effect(store):
    create = Create()
    create.gate = asyncio.Event()
    create.fail_with = UpstreamValidationError("422", status_code=422, field_errors={})
    run = runner(store, create)
    first = asyncio.ensure_future(run())
    await create.started.wait()
    second = asyncio.ensure_future(run())
    await asyncio.sleep(0.05)
    assert create.calls == 1
    create.fail_with = None  # the waiter's own attempt will succeed
    create.gate.set()
    with pytest.raises(UpstreamValidationError):
        await first
    assert await second == Fresh("appointment-2")


async def test_a_concurrent_other_input_is_refused_at_once(store):
    create = Create()
    create.gate = asyncio.Event()
    first = asyncio.ensure_future(runner(store, create)())
    await create.started.wait()
    with pytest.raises(IdempotencyKeyReused):
        await runner(store, create, fingerprint="input-2")()
    create.gate.set()
    await first


async def test_a_waiter_gives_up_when_the_first_outlives_its_deadline(clock):
    """The first attempt's owner may have died: after the deadline the outcome is unknown."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds
        await asyncio.sleep(0)

    store = Idempotency(InMemoryState(clock=clock), clock=clock, in_flight_seconds=5.0, sleep=sleep)
    create = Create()
    create.gate = asyncio.Event()
    first = asyncio.ensure_future(runner(store, create)())
    await create.started.wait()
    with pytest.raises(IdempotencyOutcomeUnknown):
        await runner(store, create)()
    assert 5.0 <= sum(slept) < 5.5
    assert max(slept) <= 0.25
    create.gate.set()
    assert await first == Fresh("appointment-1")
    # A late success is still recorded: later repeats get it.
    assert await runner(store, create)() == Replay("appointment-1")


def test_the_stored_key_holds_neither_the_client_key_nor_the_credential():
    key = Idempotency.storage_key("fingerprint-of-credential", "client-key-42")
    assert "client-key-42" not in key
    assert key.startswith("idempotency:v1:fingerprint-of-credential:")


async def test_only_the_result_id_is_stored(clock):
    state = InMemoryState(clock=clock)
    store = Idempotency(state, clock=clock)
    await store.run(scope="s", key="k", fingerprint="f", action=Create(), result_of=lambda _: "42")
    raw = await state.get(Idempotency.storage_key("s", "k"))
    assert raw is not None
    assert b'"result":"42"' in raw
    assert b"appointment-1" not in raw


@pytest.mark.parametrize(
    ("error", "without_effect"),
    [
        (UpstreamValidationError("422", status_code=422, field_errors={}), True),
        (InvalidRequest("never sent"), True),
        (connect_refused(), True),
        (timeout_after_sending(), False),
        (UpstreamUnavailable("503", status_code=503), False),
        (UpstreamProtocolError("bad body"), False),
        (asyncio.CancelledError(), False),
        (ValueError("bug"), False),
    ],
)
def test_which_failures_certainly_changed_nothing(error, without_effect):
    assert certainly_without_effect(error) is without_effect
