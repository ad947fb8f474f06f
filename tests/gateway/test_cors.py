"""CORS refusals: JSON that names the setting, one warning per origin, nothing else logged."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from appointments_gateway.gateway import create_app
from appointments_gateway.gateway.middleware.cors import (
    MAX_REMEMBERED_ORIGINS,
    WARN_EVERY_SECONDS,
    CrossOrigin,
)
from appointments_gateway.settings import Settings

APP = "https://app.example"
EVIL = "https://evil.example"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}
#: Sent with every preflight: must never reach a log line.
MARKER_HEADERS = {"Authorization": "Bearer marker-token-3f9c", "Cookie": "marker-cookie=1"}


def cors_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "appointments_gateway.cors"]


def preflight(origin: str, **extra: str) -> dict[str, str]:
    return {"Origin": origin, **PREFLIGHT, **MARKER_HEADERS, **extra}


async def test_with_no_origins_a_preflight_gets_json_naming_the_flag_and_one_warning(serve, caplog):
    caplog.set_level(logging.WARNING, logger="appointments_gateway.cors")
    async with serve(create_app(Settings())) as client:
        first = await client.options("/graphql", headers=preflight(APP))
        again = await client.options("/graphql", headers=preflight(APP))
        other = await client.options("/graphql", headers=preflight(EVIL))
    assert first.status_code == 403
    assert first.headers["content-type"] == "application/json"
    (error,) = first.json()["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "--cors-origins" in error["message"]
    assert "GATEWAY_CORS_ORIGINS" in error["message"]
    assert not [h for h in first.headers if h.startswith("access-control-")]
    assert again.status_code == other.status_code == 403
    warnings = cors_warnings(caplog)
    assert [r.levelno for r in warnings] == [logging.WARNING] * 2  # one per origin
    assert [r.fields for r in warnings] == [{"origin": APP}, {"origin": EVIL}]  # type: ignore[attr-defined]
    for record in caplog.records:
        rendered = f"{record.getMessage()} {record.__dict__}"
        assert "marker" not in rendered


async def test_with_origins_an_unlisted_one_is_refused_as_json_and_a_listed_one_allowed(
    serve, caplog
):
    caplog.set_level(logging.WARNING, logger="appointments_gateway.cors")
    async with serve(create_app(Settings(cors_origins=(APP,)))) as client:
        allowed = await client.options("/graphql", headers=preflight(APP))
        refused = await client.options("/graphql", headers=preflight(EVIL))
        bad_method = await client.options(
            "/graphql", headers={**preflight(APP), "Access-Control-Request-Method": "DELETE"}
        )
        bad_header = await client.options(
            "/graphql", headers={**preflight(APP), "Access-Control-Request-Headers": "x-debug"}
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == APP
    assert refused.status_code == 403
    assert "not one of the origins in --cors-origins" in refused.json()["errors"][0]["message"]
    for response in (bad_method, bad_header):
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/json"
        message = response.json()["errors"][0]["message"]
        assert "methods GET, POST" in message
        assert "headers Authorization, Content-Type, Accept" in message
    assert [r.fields["origin"] for r in cors_warnings(caplog)] == [EVIL]  # type: ignore[attr-defined]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def bare_app(clock: Clock) -> CrossOrigin:
    async def ok(request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    inner = Starlette(routes=[Route("/graphql", ok, methods=["GET", "POST"])])
    return CrossOrigin(inner, origins=(), clock=clock)


async def test_warnings_are_rate_limited_per_origin_and_bounded_in_number(caplog):
    caplog.set_level(logging.WARNING, logger="appointments_gateway.cors")
    clock = Clock()
    transport = httpx.ASGITransport(app=bare_app(clock))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        for _ in range(5):
            await client.options("/graphql", headers=preflight(APP))
        clock.now += WARN_EVERY_SECONDS - 1
        await client.options("/graphql", headers=preflight(APP))
        assert len(cors_warnings(caplog)) == 1
        clock.now += 2
        await client.options("/graphql", headers=preflight(APP))
        assert len(cors_warnings(caplog)) == 2

        # A flood of made-up origins: at most MAX_REMEMBERED_ORIGINS lines per interval.
        for n in range(MAX_REMEMBERED_ORIGINS + 50):
            await client.options("/graphql", headers=preflight(f"https://x{n}.example"))
        assert len(cors_warnings(caplog)) == 1 + MAX_REMEMBERED_ORIGINS
        clock.now += WARN_EVERY_SECONDS
        await client.options("/graphql", headers=preflight("https://late.example"))
        assert len(cors_warnings(caplog)) == 2 + MAX_REMEMBERED_ORIGINS
        # requests that are not preflights pass through untouched, unlogged
        plain = await client.get("/graphql", headers={"Origin": EVIL})
    assert plain.text == "ok"
    assert len(cors_warnings(caplog)) == 2 + MAX_REMEMBERED_ORIGINS
