"""Nested data: connections under many parents, series, partial failure, credentials."""

from __future__ import annotations

import asyncio
import base64
import math
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from appointments_gateway.gateway import create_app
from appointments_gateway.sandbox import DEMO_KEY_A, DEMO_KEY_B
from appointments_gateway.settings import Settings
from tests.conftest import Serve
from tests.schema.conftest import SANDBOX_URL, Gateway, make_sandbox

UPCOMING = '{startsAt: {gte: "2025-03-10T00:00:00Z"}}'


async def _patients_with_upcoming(gw: Gateway, count: int) -> list[str]:
    listed = await gw.query(
        f"{{ appointments(first: 300, filter: {UPCOMING}) {{ nodes {{ patient {{ clinikoId }} }} }} }}"
    )
    ids = [n["patient"]["clinikoId"] for n in listed["data"]["appointments"]["nodes"]]
    return list(dict.fromkeys(ids))[:count]


async def _rest_ids(gw: Gateway, params: list[tuple[str, str]]) -> tuple[list[str], int]:
    body = (
        await gw.rest.get("individual_appointments", params=[*params, ("per_page", "100")])
    ).json()
    return [row["id"] for row in body["individual_appointments"]], body["total_entries"]


async def test_next_three_appointments_of_many_patients_share_one_list_call(gw: Gateway):
    patients = await _patients_with_upcoming(gw, 20)
    assert len(patients) == 20
    global_ids = [base64.b64encode(f"Patient:{p}".encode()).decode() for p in patients]
    body = await gw.query(
        f"""query ($ids: [ID!]!) {{
              nodes(ids: $ids) {{ ... on Patient {{ clinikoId
                  appointments(first: 3, filter: {UPCOMING}) {{
                    totalCount pageInfo {{ hasNextPage endCursor }}
                    nodes {{ clinikoId practitioner {{ displayName }} }} }} }} }} }}""",
        {"ids": global_ids},
    )
    assert "errors" not in body, body.get("errors")
    _, combined_total = await _rest_ids(
        gw,
        [("q[]", f"patient_id:={','.join(patients)}"), ("q[]", "starts_at:>=2025-03-10T00:00:00Z")],
    )
    combined_pages = math.ceil(combined_total / 100)
    assert 1 < combined_pages < len(patients)
    # the patients, ONE combined list (its pages fetched concurrently) for every
    # patient's appointments instead of one list per patient, and one batched
    # practitioner lookup for all of their nodes
    assert body["extensions"]["upstream"]["requests"] == 1 + combined_pages + 1
    routes = gw.routes()
    assert routes["GET /v1/patients"] == 1
    assert routes["GET /v1/practitioners"] == 1
    seen: dict[str, Any] = {
        node["clinikoId"]: node["appointments"] for node in body["data"]["nodes"]
    }
    assert list(seen) == patients
    for patient, connection in list(seen.items())[:5]:
        expected, total = await _rest_ids(
            gw,
            [
                ("q[]", f"patient_id:={patient}"),
                ("q[]", "starts_at:>=2025-03-10T00:00:00Z"),
                ("sort", "starts_at,id"),
            ],
        )
        assert [n["clinikoId"] for n in connection["nodes"]] == expected[:3]
        assert connection["totalCount"] == total
        assert connection["pageInfo"]["hasNextPage"] is (total > 3)


async def test_a_cursor_from_a_combined_page_continues_with_a_single_parent_request(gw: Gateway):
    [patient, other] = await _patients_with_upcoming(gw, 2)
    query = """query ($a: ID!, $b: ID!, $after: String) {
                 a: patient(id: $a) { appointments(first: 2, after: $after) { pageInfo { endCursor } nodes { clinikoId } } }
                 b: patient(id: $b) { appointments(first: 2) { nodes { clinikoId } } } }"""
    first = await gw.query(query, {"a": patient, "b": other})
    cursor = first["data"]["a"]["appointments"]["pageInfo"]["endCursor"]
    second = await gw.query(query, {"a": patient, "b": other, "after": cursor})
    assert "errors" not in second, second.get("errors")
    expected, _ = await _rest_ids(gw, [("q[]", f"patient_id:={patient}"), ("sort", "starts_at,id")])
    walked = [n["clinikoId"] for n in first["data"]["a"]["appointments"]["nodes"]]
    walked += [n["clinikoId"] for n in second["data"]["a"]["appointments"]["nodes"]]
    assert walked == expected[:4]


async def test_repeats_and_repeated_from(gw: Gateway):
    origins, _ = await _rest_ids(gw, [("q[]", "repeated_from_id:?")])
    child = (await gw.rest.get(f"individual_appointments/{origins[0]}")).json()
    origin_id = child["repeated_from"]["links"]["self"].rsplit("/", 1)[1]
    expected, total = await _rest_ids(
        gw, [("q[]", f"repeated_from_id:={origin_id}"), ("sort", "starts_at,id")]
    )
    body = await gw.query(
        """query ($origin: ID!, $child: ID!) {
             origin: appointment(id: $origin) {
               repeatRule { repeatType repeatingInterval numberOfRepeats }
               repeats(first: 100) { totalCount nodes { clinikoId repeatedFrom { clinikoId patient { firstName } } } } }
             child: appointment(id: $child) { repeatRule { repeatType } repeats { totalCount } } }""",
        {"origin": origin_id, "child": origins[0]},
    )
    assert "errors" not in body, body.get("errors")
    origin = body["data"]["origin"]
    assert origin["repeatRule"]["repeatType"] in ("DAILY", "WEEKLY", "MONTHLY")
    assert origin["repeats"]["totalCount"] == total
    assert [n["clinikoId"] for n in origin["repeats"]["nodes"]] == expected
    assert {n["repeatedFrom"]["clinikoId"] for n in origin["repeats"]["nodes"]} == {origin_id}
    # the child's row says it has no repeats: its connection costs nothing
    assert body["data"]["child"]["repeats"]["totalCount"] == 0


class FailingRoute(httpx.AsyncBaseTransport):
    """The real sandbox, except one route that answers 503 (a partial upstream outage)."""

    def __init__(self, app: Starlette, failing_path: str) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._failing = failing_path

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == self._failing:
            return httpx.Response(503, text="<html>down</html>")
        return await self._inner.handle_async_request(request)


async def test_a_failing_relation_nulls_that_field_not_the_list(serve: Serve):
    sandbox = make_sandbox()
    app = create_app(
        Settings(
            upstream=SANDBOX_URL, api_key=DEMO_KEY_A, upstream_timeout=5, upstream_rate_limit=0
        ),
        upstream_transport=FailingRoute(sandbox, "/v1/patients"),
    )
    async with serve(app) as http:
        response = await http.post(
            "/graphql",
            json={
                "query": "{ appointments(first: 3) { nodes { clinikoId "
                "patient { firstName } business { businessName } } } }"
            },
        )
    body = response.json()
    nodes = body["data"]["appointments"]["nodes"]
    assert len(nodes) == 3
    assert all(n["patient"] is None and n["business"]["businessName"] for n in nodes)
    assert {e["extensions"]["code"] for e in body["errors"]} == {"UPSTREAM_UNAVAILABLE"}
    assert {tuple(e["path"][-1:]) for e in body["errors"]} == {("patient",)}
    assert "html" not in response.text.lower()


def _basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


@pytest.mark.parametrize("rounds", [3])
async def test_concurrent_callers_with_different_keys_share_no_loader_or_row(
    rounds: int, serve: Serve
):
    sandbox = make_sandbox()
    app = create_app(
        Settings(upstream=SANDBOX_URL, auth="forward", upstream_rate_limit=0),
        upstream_transport=httpx.ASGITransport(app=sandbox),
    )
    async with serve(app) as http:

        async def ask(key: str, document: str, variables: dict[str, Any]) -> dict[str, Any]:
            response = await http.post(
                "/graphql",
                json={"query": document, "variables": variables},
                headers={"Authorization": _basic(key)},
            )
            result: dict[str, Any] = response.json()
            return result

        listing = (
            "{ appointments(first: 5) { nodes { clinikoId patient { clinikoId lastName } } } }"
        )
        a = await ask(DEMO_KEY_A, listing, {})
        a_ids = [n["clinikoId"] for n in a["data"]["appointments"]["nodes"]]
        lookup = "query ($id: ID!) { appointment(id: $id) { clinikoId patient { lastName } } }"
        for _ in range(rounds):
            results = await asyncio.gather(
                *(ask(key, lookup, {"id": a_ids[0]}) for key in [DEMO_KEY_A, DEMO_KEY_B] * 5)
            )
            for i, result in enumerate(results):
                if i % 2 == 0:
                    assert result["data"]["appointment"]["clinikoId"] == a_ids[0]
                else:
                    # account B never sees A's row, not even from a loader A just filled
                    assert result["data"]["appointment"] is None
                    assert result["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_large_combined_list_serves_parents_from_its_first_page_unless_counted(
    gw: Gateway,
):
    listed = await gw.query("{ appointments(first: 100) { nodes { practitioner { clinikoId } } } }")
    candidates = list(
        dict.fromkeys(
            n["practitioner"]["clinikoId"] for n in listed["data"]["appointments"]["nodes"]
        )
    )
    counts = {p: (await _rest_ids(gw, [("q[]", f"practitioner_id:={p}")]))[1] for p in candidates}
    practitioners = sorted(candidates, key=counts.__getitem__, reverse=True)[:2]
    _, combined_total = await _rest_ids(
        gw, [("q[]", f"practitioner_id:={','.join(practitioners)}")]
    )
    assert combined_total > 200  # more pages than parents: the list is not completed
    document = """query ($a: ID!, $b: ID!) {
        a: practitioner(id: $a) { appointments(first: 3) { %s nodes { clinikoId } } }
        b: practitioner(id: $b) { appointments(first: 3) { %s nodes { clinikoId } } } }"""
    variables = {"a": practitioners[0], "b": practitioners[1]}
    uncounted = await gw.query(document % ("", ""), variables)
    # 2 practitioner lookups (one batch) + ONE combined list serving both
    assert uncounted["extensions"]["upstream"]["requests"] == 2
    counted = await gw.query(document % ("totalCount", "totalCount"), variables)
    # the count needs each practitioner's own request: the combined one was spent
    assert counted["extensions"]["upstream"]["requests"] == 1 + 1 + 2
    for alias, practitioner in zip(("a", "b"), practitioners, strict=True):
        expected, total = await _rest_ids(
            gw, [("q[]", f"practitioner_id:={practitioner}"), ("sort", "starts_at,id")]
        )
        assert [
            n["clinikoId"] for n in uncounted["data"][alias]["appointments"]["nodes"]
        ] == expected[:3]
        assert (
            counted["data"][alias]["appointments"]["nodes"]
            == uncounted["data"][alias]["appointments"]["nodes"]
        )
        assert counted["data"][alias]["appointments"]["totalCount"] == total


async def test_an_appointment_fetched_by_a_list_is_not_fetched_again_by_id(gw: Gateway):
    children, _ = await _rest_ids(gw, [("q[]", "repeated_from_id:?")])
    child = (await gw.rest.get(f"individual_appointments/{children[0]}")).json()
    origin = child["repeated_from"]["links"]["self"].rsplit("/", 1)[1]
    body = await gw.query(
        """query ($ids: [ID!]!) { appointments(filter: {ids: $ids}) {
             nodes { clinikoId repeatedFrom { clinikoId startsAt } } } }""",
        {"ids": [origin, children[0]]},
    )
    nodes = {n["clinikoId"]: n for n in body["data"]["appointments"]["nodes"]}
    assert nodes[children[0]]["repeatedFrom"]["clinikoId"] == origin
    # the origin came with the page, so the child's repeatedFrom needed no second call
    assert body["extensions"]["upstream"]["requests"] == 1
