from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from appointments_gateway.upstream import (
    Credential,
    RetryPolicy,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)

from .conftest import ClientFactory, NoSleep, Recorder, example_appointment, json_response

Handler = Callable[[httpx.Request], httpx.Response]


def script(*steps: httpx.Response | Exception) -> Handler:
    """Answer (or raise) each step in turn; the last one repeats."""
    remaining = list(steps)

    def handler(request: httpx.Request) -> httpx.Response:
        step = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        if isinstance(step, Exception):
            raise step
        return step

    return handler


def ok() -> httpx.Response:
    return json_response(200, example_appointment())


async def test_get_is_retried_on_503_then_succeeds_and_every_attempt_counts(
    make_client: ClientFactory, credential: Credential, no_sleep: NoSleep
) -> None:
    recorder = Recorder(script(httpx.Response(503), httpx.Response(503), ok()))
    session = make_client(recorder).session(credential)
    record = await session.appointments.get("1")
    assert record.id == "1390726237298631770"
    assert len(recorder.requests) == 3
    assert session.stats.requests == 3
    assert session.stats.retries == 2
    assert session.stats.seconds >= 0
    assert no_sleep.delays == [0.05, 0.1]  # rng 0.5 x min(2.0, 0.1 * 2**n)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500),
        httpx.Response(502),
        httpx.Response(504),
        httpx.ReadTimeout("slow"),
        httpx.ConnectTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("server hung up"),
    ],
)
async def test_get_retries_transient_failures(
    make_client: ClientFactory, credential: Credential, failure: httpx.Response | Exception
) -> None:
    recorder = Recorder(script(failure, ok()))
    session = make_client(recorder).session(credential)
    await session.appointments.get("1")
    assert len(recorder.requests) == 2
    assert session.stats.retries == 1


async def test_get_gives_up_after_max_retries(
    make_client: ClientFactory, credential: Credential, no_sleep: NoSleep
) -> None:
    recorder = Recorder(script(httpx.Response(503)))
    session = make_client(recorder).session(credential)
    with pytest.raises(UpstreamUnavailable) as info:
        await session.appointments.get("1")
    assert info.value.status_code == 503
    assert len(recorder.requests) == 3  # 1 + 2 retries
    assert session.stats.requests == 3
    assert len(no_sleep.delays) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 501])
async def test_get_is_not_retried_on_permanent_statuses(
    make_client: ClientFactory, credential: Credential, status: int
) -> None:
    recorder = Recorder(script(httpx.Response(status)))
    session = make_client(recorder).session(credential)
    with pytest.raises(Exception):  # noqa: B017, PT011 - the class is tested in test_errors
        await session.appointments.get("1")
    assert len(recorder.requests) == 1


async def test_429_is_never_retried(
    make_client: ClientFactory, credential: Credential, no_sleep: NoSleep
) -> None:
    recorder = Recorder(script(httpx.Response(429, headers={"Retry-After": "1"}), ok()))
    session = make_client(recorder).session(credential)
    with pytest.raises(UpstreamRateLimited):
        await session.appointments.get("1")
    assert len(recorder.requests) == 1
    assert no_sleep.delays == []


async def test_pool_timeout_is_not_retried_and_not_counted(
    make_client: ClientFactory, credential: Credential
) -> None:
    recorder = Recorder(script(httpx.PoolTimeout("busy"), ok()))
    session = make_client(recorder).session(credential)
    with pytest.raises(UpstreamTimeout):
        await session.appointments.get("1")
    assert len(recorder.requests) == 1
    assert session.stats.requests == 0


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("slow"),
        httpx.WriteTimeout("slow"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("hung up"),
        httpx.Response(503),
        httpx.Response(500),
    ],
)
async def test_writes_are_never_retried_after_they_may_have_been_sent(
    make_client: ClientFactory, credential: Credential, failure: httpx.Response | Exception
) -> None:
    # A second attempt would succeed: the point is that it is never made.
    create = Recorder(script(failure, json_response(201, example_appointment())))
    session = make_client(create).session(credential)
    with pytest.raises(UpstreamUnavailable):
        await session.appointments.create({"patient_id": "1"})
    cancel = Recorder(script(failure, httpx.Response(204)))
    with pytest.raises(UpstreamUnavailable):
        await make_client(cancel).session(credential).appointments.cancel("1", reason=50)
    assert [r.method for r in create.requests + cancel.requests] == ["POST", "PATCH"]
    assert (session.stats.requests, session.stats.retries) == (1, 0)


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow")])
async def test_writes_are_retried_when_the_connection_never_opened(
    make_client: ClientFactory, credential: Credential, failure: Exception
) -> None:
    recorder = Recorder(script(failure, json_response(201, example_appointment())))
    session = make_client(recorder).session(credential)
    record = await session.appointments.create({"patient_id": "1"})
    assert record.id == "1390726237298631770"
    assert len(recorder.requests) == 2
    # the failed connect never reached Cliniko, so it cost no budget
    assert (session.stats.requests, session.stats.retries) == (1, 1)


async def test_write_connect_retries_can_be_turned_off(
    make_client: ClientFactory, credential: Credential, no_sleep: NoSleep
) -> None:
    policy = RetryPolicy(retry_writes_on_connect_error=False, sleep=no_sleep)
    recorder = Recorder(script(httpx.ConnectError("refused"), ok()))
    session = make_client(recorder, retry=policy).session(credential)
    with pytest.raises(UpstreamUnavailable):
        await session.appointments.archive("1")
    assert len(recorder.requests) == 1


@pytest.mark.parametrize("rng", [0.0, 0.5, 0.999999])
def test_backoff_is_full_jitter_bounded_by_the_cap(rng: float) -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=2.0, rng=lambda: rng)
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    for n, ceiling in enumerate(ceilings):
        delay = policy.delay(n)
        assert 0.0 <= delay <= ceiling
        assert delay == pytest.approx(rng * ceiling)


def test_default_policy() -> None:
    policy = RetryPolicy()
    assert (policy.max_retries, policy.base_delay, policy.max_delay) == (2, 0.1, 2.0)
    assert all(0 <= policy.delay(n) <= 2.0 for n in range(20))
    assert policy.retries_status("GET", 503)
    assert not policy.retries_status("POST", 503)
    assert not policy.retries_status("GET", 429)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(max_retries=-1)
