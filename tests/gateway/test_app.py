"""The gateway's plumbing over real HTTP: context per request, credentials, extensions."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest
import strawberry
from starlette.applications import Starlette

from appointments_gateway.gateway import create_app
from appointments_gateway.resolvers import Context
from appointments_gateway.sandbox import DEMO_KEY_A, DEMO_KEY_B, SandboxConfig, create_sandbox_app
from appointments_gateway.schema.extensions import UpstreamUsage
from appointments_gateway.settings import Settings

SANDBOX_URL = "http://sandbox.test/v1"


@strawberry.type
class ProbeQuery:
    """A schema whose fields call the upstream, to test the plumbing under them."""

    @strawberry.field
    async def first_patient_id(self, info: strawberry.Info[Context, None]) -> str:
        page = await info.context.upstream.patients.list(per_page=1, sort=["id"])
        return page.items[0].id

    @strawberry.field
    async def appointment_total(self, info: strawberry.Info[Context, None]) -> int:
        page = await info.context.upstream.appointments.list(per_page=1)
        return page.total_entries


PROBE_SCHEMA = strawberry.Schema(query=ProbeQuery, extensions=[UpstreamUsage])


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


@pytest.fixture
def sandbox() -> Starlette:
    return create_sandbox_app(SandboxConfig(rate_limit_per_minute=0))


def probe_app(sandbox: Starlette, *, forward: bool = False) -> Starlette:
    settings = (
        Settings(upstream=SANDBOX_URL, auth="forward")
        if forward
        else Settings(upstream=SANDBOX_URL, api_key=DEMO_KEY_A)
    )
    return create_app(
        settings,
        upstream_transport=httpx.ASGITransport(app=sandbox),
        schema=PROBE_SCHEMA,
    )


async def test_healthz_answers_without_an_upstream_call(gateway):
    response = await gateway.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_placeholder_query_reports_zero_upstream_requests(gateway):
    response = await gateway.post("/graphql", json={"query": "{ version }"})
    assert response.status_code == 200
    body = response.json()
    assert body["data"]["version"]
    assert body["extensions"]["upstream"]["requests"] == 0


async def test_graphiql_is_served_to_browsers(gateway):
    response = await gateway.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_graphiql_can_be_switched_off(serve):
    async with serve(create_app(Settings(graphiql=False))) as client:
        response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert "graphiql" not in response.text.lower()
    assert response.status_code == 404


async def test_extensions_count_exactly_the_upstream_requests_of_the_operation(sandbox, serve):
    async with serve(probe_app(sandbox)) as client:
        one = (await client.post("/graphql", json={"query": "{ appointmentTotal }"})).json()
        two = (
            await client.post("/graphql", json={"query": "{ appointmentTotal firstPatientId }"})
        ).json()
    assert one["data"]["appointmentTotal"] > 1000
    assert one["extensions"]["upstream"]["requests"] == 1
    # a fresh session per request: the count starts again from zero
    assert two["extensions"]["upstream"]["requests"] == 2
    # the gateway's own count agrees with what the sandbox received
    assert sandbox.state.sandbox.stats.total == 3


async def test_forward_mode_refuses_an_operation_without_a_key_before_any_upstream_call(
    sandbox, serve
):
    async with serve(probe_app(sandbox, forward=True)) as client:
        response = await client.post("/graphql", json={"query": "{ appointmentTotal }"})
        page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith("Basic")
    assert page.status_code == 200  # the GraphiQL page itself needs no key
    assert sandbox.state.sandbox.stats.total == 0


@pytest.mark.parametrize(
    "authorization",
    ["Basic not-base64!", "Basic " + base64.b64encode(b":").decode(), "Token abc", "Bearer "],
)
async def test_forward_mode_rejects_malformed_credentials(sandbox, authorization, serve):
    async with serve(probe_app(sandbox, forward=True)) as client:
        response = await client.post(
            "/graphql",
            json={"query": "{ appointmentTotal }"},
            headers={"Authorization": authorization},
        )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("authorization", "words"),
    [
        ("Bearer " + "k" * 60_000 + "-au1", "longer than any Cliniko key"),
        (basic("k" * 300 + "-au1"), "longer than any Cliniko key"),
        ("Bearer sandbox-key-a-au1\x00", "characters no Cliniko key has"),
        ("Bearer sandbox key-a-au1", "characters no Cliniko key has"),
        ("Bearer sandbox-kéy-a-au1", "characters no Cliniko key has"),
        (basic("sandbox-key-a-au1\t"), "characters no Cliniko key has"),
    ],
)
async def test_forward_mode_refuses_keys_no_cliniko_key_looks_like_before_going_upstream(
    sandbox, authorization, words, serve
):
    async with serve(probe_app(sandbox, forward=True)) as client:
        response = await client.post(
            "/graphql",
            json={"query": "{ appointmentTotal }"},
            # raw bytes: httpx would refuse to send some of these values as text
            headers=[(b"authorization", authorization.encode("latin-1"))],
        )
    assert response.status_code == 401
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert words in error["message"]
    assert "kkkk" not in response.text
    assert sandbox.state.sandbox.stats.total == 0


async def test_forward_mode_callers_see_only_their_own_account_concurrently(sandbox, serve):
    async with (
        create_sandbox_client(sandbox, DEMO_KEY_A) as rest_a,
        create_sandbox_client(sandbox, DEMO_KEY_B) as rest_b,
    ):
        expected_a = (await rest_a.get("/patients", params={"per_page": 1, "sort": "id"})).json()
        expected_b = (await rest_b.get("/patients", params={"per_page": 1, "sort": "id"})).json()
    query = {"query": "{ firstPatientId appointmentTotal }"}
    async with serve(probe_app(sandbox, forward=True)) as client:
        results = await asyncio.gather(
            *(
                client.post(
                    "/graphql",
                    json=query,
                    headers={"Authorization": basic(key) if i % 2 else f"Bearer {key}"},
                )
                for i, key in enumerate([DEMO_KEY_A, DEMO_KEY_B] * 5)
            )
        )
    data = [r.json()["data"] for r in results]
    a_rows = data[0::2]
    b_rows = data[1::2]
    assert {row["firstPatientId"] for row in a_rows} == {expected_a["patients"][0]["id"]}
    assert {row["firstPatientId"] for row in b_rows} == {expected_b["patients"][0]["id"]}
    assert a_rows[0]["appointmentTotal"] != b_rows[0]["appointmentTotal"]


def create_sandbox_client(sandbox: Starlette, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox), base_url=SANDBOX_URL + "/", auth=(key, "")
    )


async def test_graphiql_opens_with_the_example_operation_and_it_runs(gateway):
    from appointments_gateway.schema.example import EXAMPLE_QUERY

    page = await gateway.get("/graphql", headers={"Accept": "text/html"})
    # the page hands the example to its script as JSON (tests/gateway/test_graphiql.py)
    assert json.dumps(EXAMPLE_QUERY) in page.text
    assert "Welcome to GraphiQL" not in page.text
    body = (await gateway.post("/graphql", json={"query": EXAMPLE_QUERY})).json()
    assert "errors" not in body
    connection = body["data"]["appointments"]
    assert len(connection["edges"]) == 10
    assert connection["edges"][0]["node"]["patient"]["firstName"]
    assert connection["pageInfo"]["hasNextPage"] is True
    assert body["extensions"]["upstream"]["requests"] <= 6
