"""The web-app door changes a business's time zone, as staff do in Cliniko's settings.

The demo businesses are all in zones without daylight saving (``seed.py``); the gateway's
local-time tests move one to ``Australia/Sydney`` and one to ``Europe/London`` this way,
so no seeded id or row changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from .conftest import changed_since, client_for, now_second

WEB = "/_sandbox/webapp/a"


@pytest.fixture
async def web(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, None) as c:
        yield c


async def first_business(client: httpx.AsyncClient) -> dict[str, Any]:
    business: dict[str, Any] = (await client.get("/v1/businesses", params={"per_page": 1})).json()[
        "businesses"
    ][0]
    return business


async def test_a_business_moves_to_another_zone_and_the_poll_sees_it(
    client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    original = await first_business(client)
    assert original["time_zone_identifier"] == "Australia/Brisbane"
    before = now_second()
    change = {"time_zone": "London", "time_zone_identifier": "Europe/London"}
    response = await web.patch(f"{WEB}/businesses/{original['id']}", json=change)
    assert response.status_code == 200, response.text
    changed = response.json()
    assert {k: changed[k] for k in change} == change
    assert changed["updated_at"] >= before > original["updated_at"]
    kept = set(original) - set(change) - {"updated_at"}
    assert {k: changed[k] for k in kept} == {k: original[k] for k in kept}
    assert (await client.get(original["links"]["self"])).json() == changed
    assert await changed_since(client, "/v1/businesses", before) == [changed]


async def test_the_zone_is_not_checked_against_a_list(
    client: httpx.AsyncClient, web: httpx.AsyncClient
) -> None:
    """So a test can serve a zone a gateway does not know (newer than its tzdata)."""
    business = await first_business(client)
    response = await web.patch(
        f"{WEB}/businesses/{business['id']}", json={"time_zone_identifier": "Mars/Olympus"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["time_zone_identifier"] == "Mars/Olympus"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"time_zone_identifier": ""}, "can't be blank"),
        ({"time_zone_identifier": None}, "can't be blank"),
        ({"time_zone": 10}, "must be a string"),
    ],
)
async def test_a_blank_or_non_text_zone_is_refused(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    change: dict[str, Any],
    message: str,
) -> None:
    business = await first_business(client)
    response = await web.patch(f"{WEB}/businesses/{business['id']}", json=change)
    assert response.status_code == 400
    (field,) = change
    assert message in response.json()["errors"][field]
    assert (await client.get(business["links"]["self"])).json() == business
