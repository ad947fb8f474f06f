from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from appointments_gateway.upstream import (
    NO_RETRY,
    Credential,
    UpstreamConflict,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnauthenticated,
    UpstreamUnavailable,
    UpstreamValidationError,
    error_for_response,
    translate_errors,
)

from .conftest import API_KEY, ClientFactory, example_appointment

ROUTE = "/individual_appointments/{id}"
PHI = "Jane Citizen, DOB 1980-02-29"


def _raise(exc: Exception) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


async def _get_error(
    make_client: ClientFactory, credential: Credential, handler: Any
) -> UpstreamError:
    session = make_client(handler, retry=NO_RETRY).session(credential)
    with pytest.raises(UpstreamError) as info:
        await session.appointments.get("1")
    return info.value


def _assert_clean(error: BaseException) -> None:
    text = str(error) + repr(error)
    assert API_KEY not in text
    assert "Jane" not in text
    assert "<html" not in text.lower()


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, UpstreamRejected),
        (401, UpstreamUnauthenticated),
        (403, UpstreamForbidden),
        (404, UpstreamNotFound),
        (409, UpstreamConflict),
        (410, UpstreamStatusError),
    ],
)
async def test_client_errors_map_by_status(
    make_client: ClientFactory, credential: Credential, status: int, cls: type[UpstreamError]
) -> None:
    error = await _get_error(
        make_client, credential, lambda r: httpx.Response(status, json={"message": PHI})
    )
    assert type(error) is cls
    assert isinstance(error, UpstreamStatusError)
    assert error.status_code == status
    assert (error.method, error.route) == ("GET", ROUTE)
    assert str(error) == f"GET {ROUTE} failed: upstream answered {status}"
    _assert_clean(error)


async def test_404_with_an_html_body(make_client: ClientFactory, credential: Credential) -> None:
    html = f"<!DOCTYPE html><html><title>Cliniko - 404</title>{PHI}</html>"
    error = await _get_error(
        make_client,
        credential,
        lambda r: httpx.Response(
            404, text=html, headers={"Content-Type": "text/html", "X-Request-Id": "req-1"}
        ),
    )
    assert isinstance(error, UpstreamNotFound)
    assert error.request_id == "req-1"
    _assert_clean(error)


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        ({"title": "can't be blank"}, {"title": "can't be blank"}),
        (
            {"starts_at": ["can't be blank", "is invalid"], "notes": "too long"},
            {"starts_at": "can't be blank; is invalid", "notes": "too long"},
        ),
        ({"weird": 5}, {}),
        ("not a map", {}),
    ],
)
async def test_422_keeps_field_errors_out_of_the_message(
    make_client: ClientFactory, credential: Credential, errors: Any, expected: dict[str, str]
) -> None:
    session = make_client(
        lambda r: httpx.Response(422, json={"message": "Validation Failed", "errors": errors})
    ).session(credential)
    with pytest.raises(UpstreamValidationError) as info:
        await session.appointments.create({"patient_id": "1"})
    error = info.value
    assert isinstance(error, UpstreamRejected)
    assert dict(error.field_errors) == expected
    assert error.status_code == 422
    assert "blank" not in str(error)
    assert str(error) == "POST /individual_appointments failed: upstream answered 422"


async def test_422_with_a_non_json_body(make_client: ClientFactory, credential: Credential) -> None:
    session = make_client(lambda r: httpx.Response(422, text="nope")).session(credential)
    with pytest.raises(UpstreamValidationError) as info:
        await session.appointments.create({"patient_id": "1"})
    assert dict(info.value.field_errors) == {}


def test_429_reads_x_ratelimit_reset_first() -> None:
    response = httpx.Response(429, headers={"X-RateLimit-Reset": "1712070000", "Retry-After": "5"})
    error = error_for_response(response, method="GET", route=ROUTE, now=1712069990.0)
    assert isinstance(error, UpstreamRateLimited)
    assert error.reset_at == datetime.fromtimestamp(1712070000, UTC)
    assert error.retry_after_seconds == 10.0


@pytest.mark.parametrize(
    ("retry_after", "seconds"), [("7", 7.0), ("Tue, 02 Apr 2024 14:46:40 GMT", 40.0)]
)
def test_429_falls_back_to_retry_after(retry_after: str, seconds: float) -> None:
    now = datetime(2024, 4, 2, 14, 46, tzinfo=UTC).timestamp()
    headers = {"Retry-After": retry_after, "X-RateLimit-Reset": "soon"}
    error = error_for_response(
        httpx.Response(429, headers=headers), method="GET", route=ROUTE, now=now
    )
    assert isinstance(error, UpstreamRateLimited)
    assert error.retry_after_seconds == seconds
    assert error.reset_at == datetime.fromtimestamp(now + seconds, UTC)


def test_429_without_usable_headers() -> None:
    error = error_for_response(httpx.Response(429), method="GET", route=ROUTE, now=0.0)
    assert isinstance(error, UpstreamRateLimited)
    assert (error.reset_at, error.retry_after_seconds) == (None, None)


def test_429_reset_in_the_past_gives_zero_wait() -> None:
    response = httpx.Response(429, headers={"X-RateLimit-Reset": "100"})
    error = error_for_response(response, method="GET", route=ROUTE, now=200.0)
    assert isinstance(error, UpstreamRateLimited)
    assert error.retry_after_seconds == 0.0


async def test_429_through_the_client(make_client: ClientFactory, credential: Credential) -> None:
    error = await _get_error(
        make_client,
        credential,
        lambda r: httpx.Response(429, headers={"X-RateLimit-Reset": "4102444800"}),
    )
    assert isinstance(error, UpstreamRateLimited)
    assert error.reset_at == datetime(2100, 1, 1, tzinfo=UTC)
    assert error.retry_after_seconds is not None
    assert error.retry_after_seconds > 0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_unavailable(
    make_client: ClientFactory, credential: Credential, status: int
) -> None:
    error = await _get_error(make_client, credential, lambda r: httpx.Response(status, text=PHI))
    assert type(error) is UpstreamUnavailable
    assert error.status_code == status
    _assert_clean(error)


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (httpx.ReadTimeout("slow"), UpstreamTimeout),
        (httpx.ConnectTimeout("slow"), UpstreamTimeout),
        (httpx.WriteTimeout("slow"), UpstreamTimeout),
        (httpx.PoolTimeout("busy"), UpstreamTimeout),
        (httpx.ConnectError("refused"), UpstreamUnavailable),
        (httpx.ReadError("reset"), UpstreamUnavailable),
        (httpx.RemoteProtocolError("hung up"), UpstreamUnavailable),
        (httpx.DecodingError("bad gzip"), UpstreamProtocolError),
    ],
)
async def test_transport_errors_are_translated(
    make_client: ClientFactory, credential: Credential, exc: Exception, cls: type[UpstreamError]
) -> None:
    error = await _get_error(make_client, credential, _raise(exc))
    assert type(error) is cls
    assert error.__cause__ is exc
    assert (error.method, error.route) == ("GET", ROUTE)
    assert isinstance(error, UpstreamTimeout) == isinstance(exc, httpx.TimeoutException)


def test_translate_errors_catches_every_httpx_error() -> None:
    with pytest.raises(UpstreamError) as info, translate_errors("GET", ROUTE):
        raise httpx.InvalidURL("bad")
    assert type(info.value) is UpstreamError


@pytest.mark.parametrize(
    ("content", "content_type"),
    [(b"<html>oops</html>", "text/html"), (b"{truncated", "application/json"), (b"", "")],
)
async def test_non_json_success_body_is_a_protocol_error(
    make_client: ClientFactory, credential: Credential, content: bytes, content_type: str
) -> None:
    error = await _get_error(
        make_client,
        credential,
        lambda r: httpx.Response(200, content=content, headers={"Content-Type": content_type}),
    )
    assert type(error) is UpstreamProtocolError
    assert error.route == ROUTE
    assert "oops" not in str(error)


async def test_malformed_record_error_names_route_and_field(
    make_client: ClientFactory, credential: Credential
) -> None:
    body = example_appointment(starts_at=None)
    error = await _get_error(
        make_client, credential, lambda r: httpx.Response(200, content=json.dumps(body).encode())
    )
    assert type(error) is UpstreamProtocolError
    assert str(error).startswith(f"GET {ROUTE}: ")
    assert "'starts_at'" in str(error)
    assert (error.method, error.route) == ("GET", ROUTE)


def test_status_errors_outside_the_usual_range() -> None:
    assert type(error_for_response(httpx.Response(301), method="GET", route="/x")) is (
        UpstreamProtocolError
    )
    assert isinstance(
        error_for_response(httpx.Response(418), method="GET", route="/x"), (UpstreamStatusError)
    )
