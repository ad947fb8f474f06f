"""Basic auth with the API key as username, and isolation between the two accounts."""

from __future__ import annotations

import base64

import httpx
import pytest
from starlette.applications import Starlette

from appointments_gateway.sandbox import DEMO_ACCOUNTS, DEMO_KEY_A, DEMO_KEY_B

from .conftest import client_for, fetch_all


def test_demo_keys_are_fixed_documented_strings() -> None:
    assert DEMO_KEY_A == "sandbox-key-a-au1"
    assert DEMO_KEY_B == "sandbox-key-b-au1"
    assert [(a.label, a.api_key) for a in DEMO_ACCOUNTS] == [("a", DEMO_KEY_A), ("b", DEMO_KEY_B)]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic " + base64.b64encode(b"wrong-key-au1:").decode(),
        "Bearer " + DEMO_KEY_A,
        "Basic not-base64!!",
        "Basic " + base64.b64encode(b":" + DEMO_KEY_A.encode()).decode(),  # key as password
    ],
)
async def test_missing_or_wrong_credentials_are_401(
    app: Starlette, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization else {}
    async with client_for(app, None) as c:
        response = await c.get("/v1/individual_appointments", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_the_shard_suffix_may_be_left_off(app: Starlette) -> None:
    async with client_for(app, "sandbox-key-a") as c:
        assert (await c.get("/v1/businesses")).status_code == 200


async def test_each_key_sees_only_its_own_account(
    client: httpx.AsyncClient, client_b: httpx.AsyncClient
) -> None:
    a_businesses = await fetch_all(client, "/v1/businesses")
    b_businesses = await fetch_all(client_b, "/v1/businesses")
    assert len(a_businesses) == 3
    assert len(b_businesses) == 1
    assert not {x["id"] for x in a_businesses} & {x["id"] for x in b_businesses}
    b_total = (await client_b.get("/v1/individual_appointments")).json()["total_entries"]
    a_total = (await client.get("/v1/individual_appointments")).json()["total_entries"]
    assert 100 < b_total < 400 < a_total


async def test_another_accounts_ids_are_404_everywhere(
    client: httpx.AsyncClient, client_b: httpx.AsyncClient
) -> None:
    a_page = (await client.get("/v1/individual_appointments", params={"per_page": 1})).json()
    appointment = a_page["individual_appointments"][0]
    url = appointment["links"]["self"]
    hidden = {"q[]": ["cancelled_at:*", "archived_at:*"]}
    assert (await client_b.get(url, params=hidden)).status_code == 404
    assert (await client_b.patch(url, json={"notes": "B was here"})).status_code == 404
    assert (
        await client_b.patch(f"{url}/cancel", json={"cancellation_reason": 10})
    ).status_code == 404
    assert (await client_b.post(f"{url}/archive")).status_code == 404
    assert (await client_b.delete(url)).status_code == 404
    assert (await client_b.get(f"{url}/conflicts")).status_code == 404
    by_filter = await client_b.get(
        "/v1/individual_appointments", params={"q[]": f"id:={appointment['id']}"}
    )
    assert by_filter.json()["total_entries"] == 0
    for relation in ("patient", "practitioner", "business", "appointment_type"):
        assert (await client_b.get(appointment[relation]["links"]["self"])).status_code == 404
    assert (await client.get(url)).json() == appointment  # untouched
