"""Demo data: volume, id format, names, determinism, and how fast apps are built."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.applications import Starlette

from appointments_gateway.sandbox import SandboxConfig, create_sandbox_app

from .conftest import ANCHOR, client_for, config, fetch_all, state_of

RESOURCES = ("patients", "practitioners", "businesses", "appointment_types", "patient_cases")


async def test_account_a_has_realistic_volume(client: httpx.AsyncClient, app: Starlette) -> None:
    totals = {
        name: (
            await client.get(f"/v1/{name}", params={"q[]": "created_at:>2000-01-01T00:00:00Z"})
        ).json()["total_entries"]
        for name in RESOURCES
    }
    assert 3 <= totals["businesses"] <= 4
    assert 25 <= totals["practitioners"] <= 40
    assert 300 <= totals["patients"] <= 500
    assert 8 <= totals["appointment_types"] <= 12
    assert totals["patient_cases"] > 20
    assert 3000 <= state_of(app).count_appointments("a") <= 6000
    assert 100 <= state_of(app).count_appointments("b") <= 400


async def test_appointments_spread_over_past_and_future_weeks(client: httpx.AsyncClient) -> None:
    anchor = ANCHOR.strftime("%Y-%m-%dT%H:%M:%SZ")
    past = await client.get("/v1/individual_appointments", params={"q[]": f"starts_at:<{anchor}"})
    future = await client.get("/v1/individual_appointments", params={"q[]": f"starts_at:>{anchor}"})
    assert past.json()["total_entries"] > 1500
    assert future.json()["total_entries"] > 800
    four_weeks = (ANCHOR + timedelta(weeks=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    near = await client.get(
        "/v1/individual_appointments",
        params={"q[]": [f"starts_at:>{anchor}", f"starts_at:<{four_weeks}"]},
    )
    assert near.json()["total_entries"] > 800


async def test_statuses_are_varied(client: httpx.AsyncClient) -> None:
    params = {"q[]": ["cancelled_at:*", "archived_at:*", "starts_at:<2025-03-10T00:00:00Z"]}
    first_page = (await client.get("/v1/individual_appointments", params=params)).json()
    assert first_page["total_entries"] > 1000
    rows = first_page["individual_appointments"]
    rows += (await client.get(first_page["links"]["next"])).json()["individual_appointments"]
    everything = await fetch_all(
        client,
        "/v1/individual_appointments",
        {"q[]": ["cancelled_at:?", "starts_at:>2022-01-01T00:00:00Z"]},
    )
    reasons = {a["cancellation_reason"] for a in everything}
    assert reasons == {10, 20, 30, 40, 50, 60}
    assert any(a["patient_arrived"] for a in rows)
    dna = await client.get("/v1/individual_appointments", params={"q[]": "did_not_arrive:=true"})
    assert dna.json()["total_entries"] > 50
    online = [a for a in rows if a["booking_ip_address"]]
    assert online
    assert all(a["online_booking_policy_accepted"] is True for a in online)


async def test_ids_are_unique_19_digit_strings_above_2_to_the_53(app: Starlette) -> None:
    ids: list[str] = []
    for key_client in (client_for(app), client_for(app, "sandbox-key-b-au1")):
        async with key_client as c:
            for name in RESOURCES:
                ids.extend(r["id"] for r in await fetch_all(c, f"/v1/{name}"))
            page = (await c.get("/v1/individual_appointments", params={"per_page": 100})).json()
            ids.extend(a["id"] for a in page["individual_appointments"])
    assert all(isinstance(i, str) and re.fullmatch(r"[1-9]\d{18}", i) for i in ids)
    assert all(int(i) > 2**53 for i in ids)
    assert len(ids) == len(set(ids))


async def test_names_include_non_ascii(client: httpx.AsyncClient) -> None:
    patients = await fetch_all(client, "/v1/patients")
    names = {p["first_name"] for p in patients} | {p["last_name"] for p in patients}
    for expected in ("Zoë", "José", "Łukasz", "Siobhán", "Nguyễn"):
        assert expected in names
    response = await client.get("/v1/patients", params={"q[]": "first_name:=Siobhán"})
    assert "Siobhán".encode() in response.content  # UTF-8, not \\u escapes


async def test_same_seed_and_anchor_give_identical_data() -> None:
    async def snapshot(cfg: SandboxConfig) -> list[bytes]:
        app = create_sandbox_app(cfg)
        async with client_for(app) as c:
            urls = ["/v1/patients?per_page=100&page=3", "/v1/individual_appointments?page=17"]
            return [(await c.get(url)).content for url in urls]

    first = await snapshot(config())
    assert first == await snapshot(config())
    assert first != await snapshot(config(seed=2))
    assert first != await snapshot(config(anchor=ANCHOR + timedelta(weeks=1)))


def test_default_anchor_is_monday_midnight_utc_of_this_week() -> None:
    anchor = SandboxConfig().resolved_anchor(now=datetime(2025, 3, 13, 15, 30, tzinfo=UTC))
    assert anchor == datetime(2025, 3, 10, tzinfo=UTC)
    today = SandboxConfig().resolved_anchor()
    assert today.weekday() == 0
    assert (today.hour, today.minute, today.second) == (0, 0, 0)
    assert datetime.now(UTC) - today < timedelta(days=7)


def test_app_creation_is_fast_after_the_first() -> None:
    create_sandbox_app(config())  # the template for this (seed, anchor) exists after this
    started = time.perf_counter()
    for _ in range(10):
        create_sandbox_app(config())
    assert (time.perf_counter() - started) / 10 < 0.05


def test_first_app_for_a_new_seed_is_built_within_budget() -> None:
    started = time.perf_counter()
    create_sandbox_app(config(seed=987_654))
    assert time.perf_counter() - started < 1.5


def test_apps_do_not_share_state() -> None:
    one, two = state_of(create_sandbox_app(config())), state_of(create_sandbox_app(config()))
    assert one.store.conn is not two.store.conn
    row_id = one.store.next_appointment_id() - 1
    one.store.update_appointments([row_id], {"notes": "only in one"})
    found_one, found_two = (
        one.store.find("appointments", "b", row_id),
        two.store.find("appointments", "b", row_id),
    )
    assert found_one is not None
    assert found_two is not None
    assert found_one["notes"] == "only in one"
    assert found_two["notes"] != "only in one"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"latency_ms": -1}, "latency_ms must be a finite number >= 0, got -1"),
        ({"latency_ms": float("nan")}, "latency_ms"),
        ({"rate_limit_per_minute": -5}, "got -5"),
        ({"rate_limit_per_minute": 2.5}, "must be an integer, got 2.5"),
        ({"fault_rate": 1.5}, "between 0.0 and 1.0, got 1.5"),
        ({"seed": "one"}, "seed must be an integer, got 'one'"),
        ({"db_path": ""}, "db_path must be a non-empty path"),
        ({"anchor": datetime(2025, 3, 10)}, "anchor must be timezone-aware"),
    ],
)
def test_config_rejects_bad_values_with_a_sentence(
    kwargs: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        SandboxConfig(**kwargs)  # type: ignore[arg-type]


def test_config_is_frozen_and_keyword_only() -> None:
    cfg = SandboxConfig(latency_ms=5)
    with pytest.raises(AttributeError):
        cfg.latency_ms = 6  # type: ignore[misc]
    with pytest.raises(TypeError):
        SandboxConfig(5)  # type: ignore[call-arg]


def test_public_api_is_sorted_and_complete() -> None:
    import appointments_gateway.sandbox as sandbox

    assert sandbox.__all__ == sorted(sandbox.__all__)
    public = {name for name in vars(sandbox) if not name.startswith("_")}
    modules = {
        "accounts",
        "app",
        "config",
        "filters",
        "knobs",
        "payloads",
        "plumbing",
        "resources",
        "seed",
        "store",
        "timefmt",
        "webapp",
        "writes",
        "annotations",
    }
    assert public - modules == set(sandbox.__all__)
