"""Latency, rate limit, fault injection, and the /_sandbox counters."""

from __future__ import annotations

import time

import httpx
from starlette.applications import Starlette

from appointments_gateway.sandbox import DEMO_KEY_A, DEMO_KEY_B, create_sandbox_app

from .conftest import client_for, config, state_of


async def test_latency_is_added_to_every_v1_request() -> None:
    slow = create_sandbox_app(config(latency_ms=120))
    async with client_for(slow) as c:
        started = time.perf_counter()
        response = await c.get("/v1/businesses")
        elapsed = time.perf_counter() - started
        assert response.status_code == 200
        assert elapsed >= 0.12
        started = time.perf_counter()
        await c.get("/_sandbox/stats")  # outside /v1: no added latency
        assert time.perf_counter() - started < 0.1


async def test_rate_limit_answers_429_with_reset_headers_per_key() -> None:
    limited = create_sandbox_app(config(rate_limit_per_minute=3))
    async with client_for(limited) as a, client_for(limited, DEMO_KEY_B) as b:
        statuses = [(await a.get("/v1/businesses")).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        before = time.time()
        refused = await a.get("/v1/businesses")
        assert refused.status_code == 429
        reset = int(refused.headers["x-ratelimit-reset"])
        assert before < reset <= before + 61
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "message" in refused.json()
        assert (await b.get("/v1/businesses")).status_code == 200  # B has its own window
        assert (await a.get("/_sandbox/stats")).status_code == 200  # never limited


async def test_rate_limit_window_reopens_after_sixty_seconds() -> None:
    limited = create_sandbox_app(config(rate_limit_per_minute=1))
    clock = [1_000.0]
    state_of(limited).limiter.clock = lambda: clock[0]
    async with client_for(limited) as a:
        assert (await a.get("/v1/businesses")).status_code == 200
        clock[0] += 59.5
        refused = await a.get("/v1/businesses")
        assert refused.status_code == 429
        assert refused.headers["x-ratelimit-reset"] == "1060"
        assert refused.headers["retry-after"] == "1"
        clock[0] += 0.5
        assert (await a.get("/v1/businesses")).status_code == 200


async def test_default_config_has_cliniko_budget_of_200() -> None:
    app = create_sandbox_app()
    assert state_of(app).limiter.limit == 200


async def test_fault_rate_one_makes_every_v1_request_a_503() -> None:
    faulty = create_sandbox_app(config(fault_rate=1.0))
    async with client_for(faulty) as c:
        response = await c.get("/v1/individual_appointments")
        assert response.status_code == 503
        assert "message" in response.json()
        assert (await c.get("/_sandbox/stats")).status_code == 200


async def test_fault_sequence_is_reproducible_from_the_seed() -> None:
    async def statuses(seed: int) -> list[int]:
        app = create_sandbox_app(config(fault_rate=0.5, seed=seed))
        async with client_for(app) as c:
            return [(await c.get("/v1/businesses")).status_code for _ in range(20)]

    first = await statuses(7)
    assert first == await statuses(7)
    assert set(first) == {200, 503}


async def test_stats_count_every_v1_request_by_route_status_and_account(app: Starlette) -> None:
    async with client_for(app) as a, client_for(app, DEMO_KEY_B) as b:
        anonymous = client_for(app, None)
        async with anonymous:
            await a.get("/v1/individual_appointments")
            appointment = (await a.get("/v1/individual_appointments")).json()
            first_id = appointment["individual_appointments"][0]["id"]
            await a.get(f"/v1/individual_appointments/{first_id}")
            await a.get(f"/v1/individual_appointments/{first_id}/conflicts")
            await b.get("/v1/patients?q[]=nope:=1")
            await anonymous.get("/v1/patients")
            await a.get("/v1/no_such_thing")
            stats = (await a.get("/_sandbox/stats")).json()
    assert stats["total_requests"] == 7
    assert stats["by_route"] == {
        "GET /v1/individual_appointments": 2,
        "GET /v1/individual_appointments/{id}": 1,
        "GET /v1/individual_appointments/{id}/conflicts": 1,
        "GET /v1/patients": 2,
        "GET <unmatched>": 1,
    }
    assert stats["by_status"] == {"200": 4, "400": 1, "401": 1, "404": 1}
    assert stats["by_account"] == {"a": 5, "b": 1, "unauthenticated": 1}
    assert DEMO_KEY_A not in str(stats)
    assert DEMO_KEY_B not in str(stats)


async def test_stats_count_429_and_503_answers() -> None:
    app = create_sandbox_app(config(rate_limit_per_minute=1, fault_rate=1.0))
    async with client_for(app) as c:
        await c.get("/v1/businesses")
        await c.get("/v1/businesses")
        stats = (await c.get("/_sandbox/stats")).json()
    assert stats["by_status"] == {"429": 1, "503": 1}


async def test_reset_zeroes_counters_and_optionally_reseeds(app: Starlette) -> None:
    async with client_for(app) as c:
        seeded = state_of(app).count_appointments()
        first = (await c.get("/v1/individual_appointments", params={"per_page": 1})).json()
        appointment = first["individual_appointments"][0]
        await c.post(f"{appointment['links']['self']}/archive")
        assert state_of(app).count_appointments(live_only=True) < seeded
        response = await c.post("/_sandbox/reset")
        assert response.status_code == 200
        stats = (await c.get("/_sandbox/stats")).json()
        assert stats["total_requests"] == 0
        assert (await c.get(appointment["links"]["self"])).status_code == 404  # still archived
        await c.post("/_sandbox/reset", params={"data": "true"})
        restored = await c.get(appointment["links"]["self"])
        assert restored.status_code == 200
        assert restored.json() == appointment
        assert state_of(app).count_appointments() == seeded


async def test_unknown_routes_are_json_404s(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/invoices")
    assert response.status_code == 404
    assert "message" in response.json()
    wrong_method = await client.put("/v1/individual_appointments/1")
    assert wrong_method.status_code == 405
    assert "message" in wrong_method.json()


async def test_arrivals_list_each_request_with_its_arrival_route_and_status() -> None:
    limited = create_sandbox_app(config(rate_limit_per_minute=2, latency_ms=50))
    async with client_for(limited) as a:
        before = time.time()
        for _ in range(3):
            await a.get("/v1/businesses")
        after = time.time()
        arrivals = (await a.get("/_sandbox/arrivals", params={"since": before})).json()
        assert [(route, status) for _, route, status, _ in arrivals["arrivals"]] == [
            ("GET /v1/businesses", 200),
            ("GET /v1/businesses", 200),
            ("GET /v1/businesses", 429),
        ]
        times = [t for t, *_ in arrivals["arrivals"]]
        # The arrival, before the 50 ms of latency, not the answer.
        assert all(before <= t <= after - 0.05 for t in times)
        assert (await a.get("/_sandbox/arrivals", params={"since": after})).json() == {
            "arrivals": []
        }
        assert (await a.get("/_sandbox/arrivals", params={"since": "x"})).status_code == 400
