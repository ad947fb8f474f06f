"""Admission control: the upstream-cost bound refuses costly documents before they run,
and is never below what the benchmark suite's operations really cost."""

from __future__ import annotations

from typing import Any

from bench.ops import operations
from bench.run import build_fixture
from tests.schema.conftest import Gateway

TOO_COSTLY = """{ appointments(first: 200) { nodes { clinikoId hasConflicts } } }"""


async def test_a_document_over_the_limit_is_refused_before_any_upstream_call(gw: Gateway):
    body = await gw.query(TOO_COSTLY)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "estimatedUpstreamRequests": 3 + 200,
        "maxUpstreamRequests": 50,
    }
    assert body["extensions"]["upstream"]["requests"] == 0
    assert gw.sandbox_requests == 0


async def test_variables_count_in_the_bound(gw: Gateway):
    document = "query ($n: Int!) { appointments(first: $n) { nodes { hasConflicts } } }"
    small = await gw.query(document, {"n": 10})
    assert "errors" not in small
    assert small["extensions"]["upstream"]["estimate"] == 11
    large = await gw.query(document, {"n": 60})
    assert large["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


class _Sender:
    """Sends through the test gateway, whose helper checks bound >= real cost."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.seen: list[dict[str, Any]] = []

    async def send(self, doc: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = await self.gw.query(doc, variables)
        assert "errors" not in body, body["errors"]
        self.seen.append(body["extensions"]["upstream"])
        data: dict[str, Any] = body["data"]
        return data

    __call__ = send


async def test_every_benchmark_operation_is_admitted_and_bounded(gw: Gateway):
    sender = _Sender(gw)
    fixture, combined = await build_fixture(sender, "2025-03-10T00:00:00Z")  # type: ignore[arg-type]  # duck-typed Client
    for operation in operations(combined):
        before = len(sender.seen)
        await operation.run(sender, fixture)
        ran = sender.seen[before:]
        assert ran, operation.name
        for upstream in ran:
            assert upstream["estimate"] >= upstream["requests"], operation.name
            assert upstream["estimate"] <= 50, operation.name


async def test_without_an_operation_name_the_operation_that_runs_is_the_one_estimated(gw: Gateway):
    # Strawberry runs the first operation when no operationName is given (the spec would
    # refuse); the bound follows the same choice, so the limit cannot be sidestepped.
    cheap_first = await gw.query(f"query Cheap {{ version }} query Costly {TOO_COSTLY}")
    assert cheap_first["data"] == {"version": cheap_first["data"]["version"]}
    assert cheap_first["extensions"]["upstream"]["estimate"] == 0
    costly_first = await gw.query(f"query Costly {TOO_COSTLY} query Cheap {{ version }}")
    assert costly_first["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert gw.sandbox_requests == 0


async def test_depth_alias_and_token_limits_are_query_too_complex_before_any_call(gw: Gateway):
    deep = "{ appointments(first: 1) { nodes { " + "repeatedFrom { " * 12 + "id" + " }" * 14 + " }"
    aliases = "{ " + " ".join(f"v{i}: version" for i in range(31)) + " }"
    tokens = "{ " + " ".join("version" for _ in range(5001)) + " }"
    for document in (deep, aliases, tokens):
        # a parse-time refusal carries no extensions, so post directly
        response = await gw.http.post("/graphql", json={"query": document})
        assert response.status_code == 200
        body = response.json()
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX", body["errors"]
    assert gw.sandbox_requests == 0
    within = await gw.query("{ " + " ".join(f"v{i}: version" for i in range(30)) + " }")
    assert "errors" not in within


async def test_a_syntax_error_carries_a_code_too(gw: Gateway):
    response = await gw.http.post("/graphql", json={"query": "{ version"})
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
