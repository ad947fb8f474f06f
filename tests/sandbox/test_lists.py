"""List envelope, paging links, sorting and the 400s for bad paging/sort parameters."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from .conftest import API, SYNC_POLLS, client_for, fetch_all, total_entries

RELATED = ("patients", "practitioners", "businesses", "appointment_types", "patient_cases")


async def test_list_envelope_has_exactly_the_resource_key_total_and_links(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/individual_appointments")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"individual_appointments", "total_entries", "links"}
    assert len(body["individual_appointments"]) == 50  # default per_page
    assert body["total_entries"] > 3000
    assert set(body["links"]) == {"self", "next"}  # first page: no previous


@pytest.mark.parametrize("resource", RELATED)
async def test_related_lists_use_their_resource_name_as_key(
    client: httpx.AsyncClient, resource: str
) -> None:
    body = (await client.get(f"/v1/{resource}")).json()
    assert set(body) == {resource, "total_entries", "links"}
    assert body["total_entries"] >= len(body[resource]) > 0
    assert body[resource][0]["links"]["self"].startswith(f"{API}/{resource}/")


async def test_paging_links_point_at_neighbouring_pages_and_keep_filters(
    client: httpx.AsyncClient,
) -> None:
    params: dict[str, Any] = {
        "per_page": 7,
        "page": 2,
        "q[]": "business_id:>0",
        "sort": "starts_at",
    }
    body = (await client.get("/v1/individual_appointments", params=params)).json()
    links = body["links"]
    assert set(links) == {"self", "next", "previous"}
    for name, page in (("self", "2"), ("next", "3"), ("previous", "1")):
        parts = urlsplit(links[name])
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{API}/individual_appointments"
        query = parse_qs(parts.query)
        assert query["page"] == [page]
        assert query["per_page"] == ["7"]
        assert query["q[]"] == ["business_id:>0"]
        assert query["sort"] == ["starts_at"]
    next_body = (await client.get(links["next"])).json()
    previous_body = (await client.get(links["previous"])).json()
    ids = [a["id"] for a in body["individual_appointments"]]
    assert not set(ids) & {a["id"] for a in next_body["individual_appointments"]}
    assert not set(ids) & {a["id"] for a in previous_body["individual_appointments"]}


async def test_last_page_has_no_next_and_a_page_past_the_end_is_empty(
    client: httpx.AsyncClient,
) -> None:
    total = (await client.get("/v1/businesses")).json()["total_entries"]
    assert total == 3
    last = (await client.get("/v1/businesses", params={"per_page": 2, "page": 2})).json()
    assert len(last["businesses"]) == 1
    assert set(last["links"]) == {"self", "previous"}
    beyond = (await client.get("/v1/businesses", params={"per_page": 2, "page": 9})).json()
    assert beyond["businesses"] == []
    assert beyond["total_entries"] == 3
    assert "next" not in beyond["links"]


async def test_walking_every_page_visits_each_row_exactly_once(client: httpx.AsyncClient) -> None:
    seen: list[str] = []
    url: str | None = "/v1/patients?per_page=100"
    total = None
    while url:
        body = (await client.get(url)).json()
        total = body["total_entries"]
        seen.extend(p["id"] for p in body["patients"])
        url = body["links"].get("next")
    assert len(seen) == total == len(set(seen))


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"per_page": "0"}, "per_page must be between 1 and 100"),
        ({"per_page": "101"}, "per_page must be between 1 and 100"),
        ({"per_page": "ten"}, "per_page must be between 1 and 100"),
        ({"page": "0"}, "page must be a positive integer"),
        ({"page": "-1"}, "page must be a positive integer"),
        ({"sort": "patient_name"}, "is not sortable"),
        ({"sort": "starts_at:sideways"}, "must be asc or desc"),
        ({"order": "up"}, "order must be asc or desc"),
    ],
)
async def test_bad_paging_and_sort_parameters_are_400_with_a_message(
    client: httpx.AsyncClient, params: dict[str, str], fragment: str
) -> None:
    response = await client.get("/v1/individual_appointments", params=params)
    assert response.status_code == 400
    assert fragment in response.json()["message"]


async def test_per_page_bounds_are_inclusive(client: httpx.AsyncClient) -> None:
    one = (await client.get("/v1/patients", params={"per_page": 1})).json()
    hundred = (await client.get("/v1/patients", params={"per_page": 100})).json()
    assert (len(one["patients"]), len(hundred["patients"])) == (1, 100)


async def test_default_order_is_created_at_ascending(client: httpx.AsyncClient) -> None:
    rows = (await client.get("/v1/individual_appointments", params={"per_page": 100})).json()
    keys = [(a["created_at"], int(a["id"])) for a in rows["individual_appointments"]]
    assert keys == sorted(keys)


async def test_sort_desc_and_multiple_fields(client: httpx.AsyncClient) -> None:
    params: dict[str, Any] = {"sort": "starts_at:desc,created_at", "per_page": 100}
    rows = (await client.get("/v1/individual_appointments", params=params)).json()
    appointments = rows["individual_appointments"]
    starts = [a["starts_at"] for a in appointments]
    assert starts == sorted(starts, reverse=True)
    for earlier, later in itertools.pairwise(appointments):
        if earlier["starts_at"] == later["starts_at"]:
            assert earlier["created_at"] <= later["created_at"]


async def test_deprecated_order_parameter_sets_the_default_direction(
    client: httpx.AsyncClient,
) -> None:
    params: dict[str, Any] = {"sort": "updated_at", "order": "desc", "per_page": 50}
    rows = (await client.get("/v1/patients", params=params)).json()["patients"]
    updated = [p["updated_at"] for p in rows]
    assert updated == sorted(updated, reverse=True)


async def test_id_breaks_ties_so_pages_never_overlap(client: httpx.AsyncClient) -> None:
    # Many appointments share a starts_at (same slot, different practitioners).
    params: dict[str, Any] = {
        "sort": "starts_at",
        "per_page": 10,
        "q[]": "starts_at:>=2025-03-10T00:00:00Z",
    }
    first = (await client.get("/v1/individual_appointments", params=params)).json()
    second = (await client.get("/v1/individual_appointments", params={**params, "page": 2})).json()
    rows = first["individual_appointments"] + second["individual_appointments"]
    keys = [(a["starts_at"], int(a["id"])) for a in rows]
    assert len({a["starts_at"] for a in rows}) < len(rows)  # there really are ties
    assert keys == sorted(keys)
    assert len({a["id"] for a in rows}) == 20


@pytest.mark.parametrize("path", SYNC_POLLS)
async def test_sort_by_updated_at_orders_every_list_with_id_breaking_ties(
    client: httpx.AsyncClient, path: str
) -> None:
    hidden = list(SYNC_POLLS[path])
    for sort in ("updated_at", "updated_at,id", "updated_at:asc,id:asc"):
        rows = await fetch_all(client, path, {"sort": sort, "q[]": hidden})
        keys = [(r["updated_at"], int(r["id"])) for r in rows]
        assert keys, path
        assert keys == sorted(keys), (path, sort)
        assert len(keys) == len(set(keys)) == await total_entries(client, path, *hidden)


async def test_updated_at_ties_are_real_so_the_id_tie_breaker_matters(
    client: httpx.AsyncClient,
) -> None:
    path = "/v1/individual_appointments"
    rows = await fetch_all(client, path, {"sort": "updated_at", "q[]": list(SYNC_POLLS[path])})
    assert len({r["updated_at"] for r in rows}) < len(rows)


async def test_sort_by_id_is_allowed(client: httpx.AsyncClient) -> None:
    rows = (await client.get("/v1/practitioners", params={"sort": "id:desc"})).json()
    ids = [int(p["id"]) for p in rows["practitioners"]]
    assert ids == sorted(ids, reverse=True)


async def test_sort_by_id_desc_on_every_list(client: httpx.AsyncClient) -> None:
    for name in ("individual_appointments", *RELATED):
        rows = (await client.get(f"/v1/{name}", params={"sort": "id:desc"})).json()[name]
        ids = [int(r["id"]) for r in rows]
        assert len(ids) > 1, name
        assert ids == sorted(ids, reverse=True), name


async def test_id_desc_as_the_final_tie_breaker(client: httpx.AsyncClient) -> None:
    params: dict[str, Any] = {
        "sort": "starts_at:desc,id:desc",
        "per_page": 100,
        "q[]": "starts_at:>=2025-03-10T00:00:00Z",
    }
    rows = (await client.get("/v1/individual_appointments", params=params)).json()
    keys = [(a["starts_at"], int(a["id"])) for a in rows["individual_appointments"]]
    assert len({s for s, _ in keys}) < len(keys)  # there really are ties
    assert keys == sorted(keys, reverse=True)  # ties broken by id descending, not ascending


async def test_a_repeated_sort_field_is_decided_by_its_first_occurrence(
    client: httpx.AsyncClient,
) -> None:
    async def ids(sort: str) -> list[str]:
        params: dict[str, Any] = {"sort": sort, "per_page": 100}
        response = await client.get("/v1/individual_appointments", params=params)
        assert response.status_code == 200, response.text
        return [a["id"] for a in response.json()["individual_appointments"]]

    assert await ids("starts_at:desc,starts_at:asc") == await ids("starts_at:desc")
    assert await ids("starts_at:desc,id:desc,starts_at") == await ids("starts_at:desc,id:desc")
    assert await ids("id:desc,id:asc") == await ids("id:desc")
    assert await ids("id,id:desc") == await ids("id:asc")


async def test_links_use_the_requests_own_host(app: Starlette) -> None:
    async with client_for(app) as c:
        c.base_url = httpx.URL("https://api.au9.example.org")
        body = (await c.get("/v1/individual_appointments", params={"per_page": 1})).json()
    appointment = body["individual_appointments"][0]
    assert body["links"]["self"].startswith(
        "https://api.au9.example.org/v1/individual_appointments?"
    )
    assert appointment["links"]["self"].startswith("https://api.au9.example.org/v1/")
    assert appointment["patient"]["links"]["self"].startswith("https://api.au9.example.org/v1/")
