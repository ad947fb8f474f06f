"""Automatic persisted queries, spoken exactly as Apollo Client's link and urql's exchange do.

The link's steps (apollo-client ``src/link/persisted-queries``): send the hash alone; on
``PERSISTED_QUERY_NOT_FOUND`` (code) or ``PersistedQueryNotFound`` (message: urql looks at
that only) send the text and the hash by POST; later send the hash alone again, by GET
for queries with ``useGETForHashedQueries``.  Every refusal is checked to cost no
upstream request.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import strawberry
from starlette.applications import Starlette
from strawberry.http import GraphQLRequestData

from appointments_gateway.gateway import create_app
from appointments_gateway.gateway.persisted import (
    APQ_KEY_PREFIX,
    MAX_STORED_DOCUMENT_BYTES,
    MEMORY_DOCUMENTS,
    PersistedDocuments,
    PersistedQueryRefusal,
)
from appointments_gateway.gateway.trusted import sha256_hex
from appointments_gateway.sandbox import DEMO_KEY_A, SandboxConfig, create_sandbox_app
from appointments_gateway.settings import ConfigError, Settings
from appointments_gateway.state import InMemoryState, SharedStateUnavailable
from tests.conftest import Serve
from tests.gateway.test_http_hygiene import PROBE_SCHEMA
from tests.redis_server import RedisServer

SANDBOX_URL = "http://sandbox.test/v1"
MODERN = "application/graphql-response+json"
COUNT = "query Count { appointments(first: 1) { totalCount } }"
#: Its upstream cost grows with $first: 4 requests at 1, 21 at 500 (schema/cost.py).
PAGE = (
    "query Page($first: Int) { appointments(first: $first) { edges { node { id "
    "patient { firstName } practitioner { firstName } } } } }"
)
NOT_FOUND = {
    "errors": [
        {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
    ]
}


def extensions(document: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(document)}}


def hashed(document: str, name: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the link sends first: no query, the hash in extensions."""
    return {"operationName": name, "variables": variables or {}, "extensions": extensions(document)}


def hashed_get_params(
    document: str, name: str, variables: dict[str, Any] | None = None
) -> dict[str, str]:
    """The same as a GET's query string (``useGETForHashedQueries``)."""
    return {
        "operationName": name,
        "variables": json.dumps(variables or {}),
        "extensions": json.dumps(extensions(document)),
    }


@pytest.fixture
def sandbox() -> Starlette:
    return create_sandbox_app(SandboxConfig(rate_limit_per_minute=0))


def upstream_requests(sandbox: Starlette) -> int:
    total: int = sandbox.state.sandbox.stats.total
    return total


def gateway_app(
    sandbox: Starlette, schema: strawberry.Schema | None = None, **settings: Any
) -> Starlette:
    return create_app(
        Settings(upstream=SANDBOX_URL, api_key=DEMO_KEY_A, sync=False, **settings),
        upstream_transport=httpx.ASGITransport(app=sandbox),
        schema=schema,
    )


async def test_apollos_link_round_trip_hash_then_text_then_hash_by_post_and_get(sandbox, serve):
    async with serve(gateway_app(sandbox)) as client:
        first = await client.post("/graphql", json=hashed(COUNT, "Count"))
        assert upstream_requests(sandbox) == 0  # refused before anything ran
        modern = await client.post(
            "/graphql", json=hashed(COUNT, "Count"), headers={"Accept": MODERN}
        )
        full = await client.post("/graphql", json={**hashed(COUNT, "Count"), "query": COUNT})
        again = await client.post("/graphql", json=hashed(COUNT, "Count"))
        by_get = await client.get(
            "/graphql", params=hashed_get_params(COUNT, "Count"), headers={"Accept": "*/*"}
        )
    # Apollo Server's answer: 200 for application/json, the exact message and code.
    assert first.status_code == 200
    assert first.json() == NOT_FOUND
    # A graphql-response+json client gets the spec's 4xx for a response without data.
    assert modern.status_code == 400
    assert modern.json() == NOT_FOUND
    total = full.json()["data"]["appointments"]["totalCount"]
    assert total > 0
    assert again.json()["data"]["appointments"]["totalCount"] == total
    assert by_get.status_code == 200
    assert by_get.headers["content-type"] == "application/json"
    assert by_get.json()["data"]["appointments"]["totalCount"] == total


async def test_a_hash_that_is_not_the_texts_is_refused_and_nothing_is_stored(sandbox, serve):
    other = "query Other { appointments(first: 2) { totalCount } }"
    wrong = {**hashed(other, "Count"), "query": COUNT}
    async with serve(gateway_app(sandbox)) as client:
        refused = await client.post("/graphql", json=wrong)
        under_wrong_hash = await client.post("/graphql", json=hashed(other, "Other"))
        under_right_hash = await client.post("/graphql", json=hashed(COUNT, "Count"))
    assert refused.status_code == 400
    (error,) = refused.json()["errors"]
    assert error["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    assert "not the SHA-256" in error["message"]
    assert under_wrong_hash.json() == NOT_FOUND
    assert under_right_hash.json() == NOT_FOUND
    assert upstream_requests(sandbox) == 0


@pytest.mark.parametrize(
    ("persisted", "words"),
    [
        ({"version": 2, "sha256Hash": "0" * 64}, "Unsupported persisted query version"),
        ({"sha256Hash": "0" * 64}, "Unsupported persisted query version"),
        ({"version": 1, "sha256Hash": "xyz"}, "64 hex digits"),
        ({"version": 1}, "64 hex digits"),
        ("abc", "must be an object"),
    ],
)
async def test_a_malformed_persisted_query_extension_is_a_clear_400(
    sandbox, serve, persisted, words
):
    async with serve(gateway_app(sandbox)) as client:
        response = await client.post("/graphql", json={"extensions": {"persistedQuery": persisted}})
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert words in error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_persisted_document_passes_every_admission_check_again(sandbox, serve):
    """Stored while cheap; sent by hash with variables that make it dear: refused."""
    async with serve(gateway_app(sandbox, max_upstream_requests=10)) as client:
        stored = await client.post(
            "/graphql", json={**hashed(PAGE, "Page", {"first": 1}), "query": PAGE}
        )
        spent = upstream_requests(sandbox)
        dear = await client.post("/graphql", json=hashed(PAGE, "Page", {"first": 500}))
        cheap = await client.post("/graphql", json=hashed(PAGE, "Page", {"first": 1}))
    assert "errors" not in stored.json()
    (error,) = dear.json()["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["estimatedUpstreamRequests"] == 21
    assert upstream_requests(sandbox) > spent  # only the cheap one went upstream
    assert "errors" not in cheap.json()


async def test_a_document_refused_by_admission_is_not_stored(sandbox, serve):
    deep = "query Deep { appointments(first: 1) { edges { node { patient { id } } } } }"
    async with serve(gateway_app(sandbox, max_depth=3)) as client:
        refused = await client.post("/graphql", json={**hashed(deep, "Deep"), "query": deep})
        later = await client.post("/graphql", json=hashed(deep, "Deep"))
    assert refused.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert later.json() == NOT_FOUND
    assert upstream_requests(sandbox) == 0


async def test_a_persisted_mutation_never_runs_by_get(sandbox, serve):
    touch = "mutation Touch { touch }"
    async with serve(gateway_app(sandbox, schema=PROBE_SCHEMA)) as client:
        stored = await client.post("/graphql", json={**hashed(touch, "Touch"), "query": touch})
        by_get = await client.get("/graphql", params=hashed_get_params(touch, "Touch"))
        by_post = await client.post("/graphql", json=hashed(touch, "Touch"))
    assert stored.json() == {"data": {"touch": True}}
    assert by_get.status_code == 405
    assert by_get.headers["allow"] == "POST"
    assert "mutations are not allowed" in by_get.json()["errors"][0]["message"]
    assert by_post.json() == {"data": {"touch": True}}


async def test_with_apq_off_a_hash_is_not_supported_so_links_send_texts(sandbox, serve):
    async with serve(gateway_app(sandbox, apq=False)) as client:
        hash_only = await client.post("/graphql", json=hashed(COUNT, "Count"))
        full = await client.post("/graphql", json={**hashed(COUNT, "Count"), "query": COUNT})
        again = await client.post("/graphql", json=hashed(COUNT, "Count"))
    assert hash_only.status_code == 200
    assert hash_only.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotSupported",
                "extensions": {"code": "PERSISTED_QUERY_NOT_SUPPORTED"},
            }
        ]
    }
    assert full.json()["data"]["appointments"]["totalCount"] > 0
    assert again.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"


# --- the store: bounded, expiring, refreshed on use, degrading without Redis -------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def request(document: str | None, digest_of: str) -> GraphQLRequestData:
    return GraphQLRequestData(
        query=document, variables=None, operation_name=None, extensions=extensions(digest_of)
    )


async def store_and_find(documents: PersistedDocuments, text: str) -> str | None:
    resolved = await documents.resolve(request(text, text))
    assert resolved.register is not None
    await documents.register(*resolved.register)
    return await find(documents, text)


async def find(documents: PersistedDocuments, text: str) -> str | None:
    """The stored text, or ``None`` when the hash alone answers PERSISTED_QUERY_NOT_FOUND."""
    try:
        return (await documents.resolve(request(None, text))).query
    except PersistedQueryRefusal as refusal:
        code = refusal.code
    assert code == "PERSISTED_QUERY_NOT_FOUND"
    return None


async def test_the_store_is_bounded_and_evicts_the_oldest():
    clock = Clock()
    documents = PersistedDocuments(InMemoryState(clock=clock, max_values=2), clock=clock)
    texts = [f"{{ a{n}: __typename }}" for n in range(3)]
    for text in texts:
        clock.now += 1
        assert await store_and_find(documents, text) == text
    assert await find(documents, texts[0]) is None
    assert await find(documents, texts[1]) == texts[1]
    assert await find(documents, texts[2]) == texts[2]


async def test_documents_expire_unless_used_and_use_keeps_them():
    clock = Clock()
    state = InMemoryState(clock=clock)
    documents = PersistedDocuments(state, ttl=100, clock=clock)
    used, unused = "{ used: __typename }", "{ unused: __typename }"
    await store_and_find(documents, used)
    await store_and_find(documents, unused)
    clock.now += 60  # past half the TTL: a use stores the document again
    assert await find(documents, used) == used
    clock.now += 60  # 120 s after storing, 60 s after the use
    assert await find(documents, used) == used
    assert await find(documents, unused) is None
    assert await state.get(APQ_KEY_PREFIX + sha256_hex(unused)) is None


async def test_large_documents_run_but_are_not_stored():
    documents = PersistedDocuments(InMemoryState())
    text = "{ __typename }" + " " * MAX_STORED_DOCUMENT_BYTES
    resolved = await documents.resolve(request(text, text))
    assert resolved.query == text
    assert resolved.register is None


async def test_the_in_memory_store_is_its_own_so_it_never_evicts_idempotency_keys():
    shared = InMemoryState(max_values=1)
    await shared.set("idem:k", b"booked", ttl=3600)
    documents = PersistedDocuments.from_settings(Settings(), shared)
    for n in range(3):
        await store_and_find(documents, f"{{ a{n}: __typename }}")
    assert await shared.get("idem:k") == b"booked"
    assert MEMORY_DOCUMENTS == 1024


class AwayState(InMemoryState):
    """A shared state whose store is unreachable, as FallbackState's values are."""

    async def get(self, key: str) -> bytes | None:
        raise SharedStateUnavailable("away")

    async def set(self, key: str, value: bytes, *, ttl: float) -> None:
        raise SharedStateUnavailable("away")


async def test_without_the_store_a_hash_is_not_found_and_a_text_runs_unstored():
    documents = PersistedDocuments(AwayState())
    assert await store_and_find(documents, COUNT) is None  # register swallowed the outage
    resolved = await documents.resolve(request(COUNT, COUNT))
    assert resolved.query == COUNT


async def test_instances_share_documents_through_redis_and_degrade_while_it_is_away(
    sandbox, serve: Serve
):
    server = RedisServer().start()
    try:
        async with (
            serve(gateway_app(sandbox, redis_url=server.url, redis_prefix="apq")) as one,
            serve(gateway_app(sandbox, redis_url=server.url, redis_prefix="apq")) as two,
        ):
            assert (await one.post("/graphql", json=hashed(COUNT, "Count"))).json() == NOT_FOUND
            stored = await one.post("/graphql", json={**hashed(COUNT, "Count"), "query": COUNT})
            assert "errors" not in stored.json()
            elsewhere = await two.get("/graphql", params=hashed_get_params(COUNT, "Count"))
            assert elsewhere.json()["data"] == stored.json()["data"]

            server.stop()
            away = await two.post("/graphql", json=hashed(COUNT, "Count"))
            assert away.status_code == 200
            assert away.json() == NOT_FOUND  # so the link sends the text, which runs:
            full = await two.post("/graphql", json={**hashed(COUNT, "Count"), "query": COUNT})
            assert full.json()["data"] == stored.json()["data"]
    finally:
        server.close()


def test_apq_settings_read_from_the_environment():
    settings = Settings.load({"GATEWAY_APQ": "false", "GATEWAY_APQ_TTL": "3600"})
    assert settings.apq is False
    assert settings.apq_ttl == 3600.0
    assert Settings.load(settings.to_environ()) == settings
    with pytest.raises(ConfigError, match="GATEWAY_APQ_TTL"):
        Settings.load({"GATEWAY_APQ_TTL": "0"})
