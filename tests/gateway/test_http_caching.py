"""Every answer of /graphql says ``Cache-Control: no-store`` and ``Vary``; HTML only on request.

Health data must not sit in any cache, and one URL answers JSON, the newer GraphQL media
type or GraphiQL's HTML by ``Accept``, compressed or not by ``Accept-Encoding``, and
someone's data by ``Authorization``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from appointments_gateway.gateway import create_app
from appointments_gateway.gateway.over_http import asks_for_html
from appointments_gateway.gateway.trusted import sha256_hex
from appointments_gateway.schema.example import EXAMPLE_QUERY
from appointments_gateway.settings import Settings

MODERN = "application/graphql-response+json"
COUNT = "{ appointments(first: 1) { totalCount } }"
APQ_EXTENSIONS = json.dumps({"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(COUNT)}})

Call = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]

#: (what, how, expected status): successes, GraphQL errors and refusals of every layer.
ANSWERS: list[tuple[str, Call, int]] = [
    ("POST result", lambda c: c.post("/graphql", json={"query": COUNT}), 200),
    ("GET result", lambda c: c.get("/graphql", params={"query": COUNT}), 200),
    ("validation error", lambda c: c.post("/graphql", json={"query": "{ nope }"}), 200),
    (
        "validation error, modern",
        lambda c: c.post("/graphql", json={"query": "{ nope }"}, headers={"Accept": MODERN}),
        400,
    ),
    ("GET without a query", lambda c: c.get("/graphql", headers={"Accept": "*/*"}), 400),
    (
        "APQ hash not found",
        lambda c: c.get("/graphql", params={"extensions": APQ_EXTENSIONS}),
        200,
    ),
    (
        "bad JSON",
        lambda c: c.post("/graphql", content=b"{", headers={"Content-Type": "application/json"}),
        400,
    ),
    ("wrong content type", lambda c: c.post("/graphql", content=b"{}"), 415),
    ("body too large", lambda c: c.post("/graphql", content=b" " * 300_000), 413),
    ("GET mutation", lambda c: c.get("/graphql", params={"query": "mutation { x }"}), 405),
    ("GraphiQL page", lambda c: c.get("/graphql", headers={"Accept": "text/html"}), 200),
    ("gzipped", lambda c: c.post("/graphql", json={"query": EXAMPLE_QUERY}), 200),
]


def assert_not_cacheable(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store"
    vary = [v.strip().lower() for v in response.headers["vary"].split(",")]
    assert {"accept", "accept-encoding", "authorization"} <= set(vary)
    assert len(vary) == len(set(vary)), vary  # merged, not repeated


@pytest.mark.parametrize(("what", "call", "status"), ANSWERS, ids=[a[0] for a in ANSWERS])
async def test_every_answer_of_graphql_is_no_store_and_varies(
    gateway: httpx.AsyncClient, what: str, call: Call, status: int
):
    response = await call(gateway)
    assert response.status_code == status, response.text
    assert_not_cacheable(response)
    if what == "gzipped":
        assert response.headers["content-encoding"] == "gzip"


async def test_an_unauthenticated_answer_and_a_500_are_no_store_too(serve, monkeypatch):
    async with serve(create_app(Settings(auth="forward"))) as client:
        unauthenticated = await client.post("/graphql", json={"query": COUNT})
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        not_a_page = await client.get("/graphql", headers={"Accept": "*/*"})

    from appointments_gateway.gateway.graphql import GatewayGraphQL

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(GatewayGraphQL, "get_context", broken)
    async with serve(create_app(Settings())) as client:
        bug = await client.post("/graphql", json={"query": COUNT})
    assert unauthenticated.status_code == 401
    assert_not_cacheable(unauthenticated)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert_not_cacheable(page)
    # a client that does not ask for HTML gets the JSON refusal, not the page
    assert not_a_page.status_code == 401
    assert not_a_page.headers["content-type"] == "application/json"
    assert bug.status_code == 500
    assert_not_cacheable(bug)


async def test_other_paths_keep_their_own_caching(gateway: httpx.AsyncClient):
    asset = await gateway.get("/graphiql/static/init.js")
    health = await gateway.get("/healthz")
    assert asset.headers["cache-control"] == "public, max-age=86400, immutable"
    assert "cache-control" not in health.headers


@pytest.mark.parametrize(
    "accept",
    ["*/*", "", "application/json", MODERN, "text/*", "text/html;q=0", "application/*"],
)
async def test_html_never_goes_to_a_client_that_did_not_ask_for_it(
    gateway: httpx.AsyncClient, accept: str
):
    bare = await gateway.get("/graphql", headers={"Accept": accept})
    hashed = await gateway.get(
        "/graphql", params={"extensions": APQ_EXTENSIONS}, headers={"Accept": accept}
    )
    for response in (bare, hashed):
        assert not response.headers["content-type"].startswith("text/html"), response.text[:80]
        assert response.json()["errors"][0]["extensions"]["code"]
    assert bare.status_code == 400
    assert "No GraphQL query found" in bare.json()["errors"][0]["message"]
    assert hashed.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        ("text/html", True),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
        ("application/json, text/html;q=0.5", True),
        ("TEXT/HTML", True),
        ("*/*", False),
        ("text/*", False),
        ("text/html;q=0", False),
        ("text/htmlx", False),
        ("", False),
    ],
)
def test_asking_for_html_means_naming_it(accept: str, html: bool):
    assert asks_for_html(accept) is html


async def test_a_browser_still_gets_graphiql_but_not_for_a_hashed_operation(
    gateway: httpx.AsyncClient,
):
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    page = await gateway.get("/graphql", headers={"Accept": browser})
    operation = await gateway.get(
        "/graphql", params={"extensions": APQ_EXTENSIONS}, headers={"Accept": browser}
    )
    assert page.headers["content-type"].startswith("text/html")
    assert operation.headers["content-type"] == "application/json"
