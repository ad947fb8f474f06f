"""Admission control: the upstream-cost bound refuses costly documents before they run,
and is never below what the benchmark suite's operations really cost."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from graphql import parse, specified_rules
from starlette.applications import Starlette

from appointments_gateway.schema import build_schema
from appointments_gateway.schema.admission import Admission, AdmissionLimits
from appointments_gateway.schema.build import DEFAULT_MAX_ANALYSIS_MS
from bench.attacks import alias_fanout, chain, duplicate_fields, fanout, wide
from bench.ops import operations
from bench.run import build_fixture
from tests.conftest import Serve
from tests.schema.conftest import Gateway, open_gateway

TOO_COSTLY = """{ appointments(first: 200) { nodes { clinikoId hasConflicts } } }"""


async def test_a_document_over_the_limit_is_refused_before_any_upstream_call(gw: Gateway):
    body = await gw.query(TOO_COSTLY)
    assert "data" not in body
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


async def test_several_operations_without_an_operation_name_are_refused(gw: Gateway):
    # Strawberry ran the first operation when no operationName was given; the spec says
    # refuse (GraphQL spec, GetOperation), and nothing then reaches the upstream.
    document = f"query Cheap {{ version }} query Costly {TOO_COSTLY}"
    response = await gw.http.post("/graphql", json={"query": document})
    body = response.json()
    assert "data" not in body or body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "operationName" in error["message"]
    assert gw.sandbox_requests == 0


async def test_the_named_operation_is_the_one_estimated(gw: Gateway):
    document = f"query Cheap {{ version }} query Costly {TOO_COSTLY}"
    cheap = await gw.http.post("/graphql", json={"query": document, "operationName": "Cheap"})
    assert cheap.json()["data"] == {"version": cheap.json()["data"]["version"]}
    assert cheap.json()["extensions"]["upstream"]["estimate"] == 0
    costly = await gw.http.post("/graphql", json={"query": document, "operationName": "Costly"})
    assert costly.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
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
        assert "data" not in body
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX", body["errors"]
    assert gw.sandbox_requests == 0
    within = await gw.query("{ " + " ".join(f"v{i}: version" for i in range(30)) + " }")
    assert "errors" not in within


async def test_a_syntax_error_carries_a_code_too(gw: Gateway):
    response = await gw.http.post("/graphql", json={"query": "{ version"})
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_the_fan_out_that_froze_a_worker_runs_as_what_it_is(gw: Gateway):
    # 2^22 selections if every spread were expanded; execution collects F21 once per set,
    # so the operation is one __typename, and admission now measures it so.
    for n in (22, 30):
        body = await gw.query(fanout(n))
        assert body["extensions"].pop("freshness")["source"] == "none"  # nothing was read
        assert body == {
            "data": {"__typename": "Query"},
            "extensions": {"upstream": {"requests": 0, "milliseconds": 0.0, "estimate": 0}},
        }


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (alias_fanout(8), "510 aliases"),
        (wide(2000), "selects 2000 fields"),
        (chain(60), "nests selections or fragments too deeply"),
        (fanout(60), "nests selections or fragments too deeply"),
        # graphql-core compares every pair of these (0.37 s alone): the time limit stops it.
        (duplicate_fields(250), "took too long to validate"),
    ],
)
async def test_hostile_shapes_are_refused_before_any_upstream_call(
    serve: Serve, sandbox: Starlette, document: str, message: str
):
    # The production default for the time limit, which the last case is about.
    async with open_gateway(serve, sandbox, max_analysis_ms=DEFAULT_MAX_ANALYSIS_MS) as gw:
        response = await gw.http.post("/graphql", json={"query": document})
    body = response.json()
    assert body.get("data") is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert message in error["message"]
    assert gw.sandbox_requests == 0


def test_a_refusal_by_the_clock_is_not_remembered_one_by_shape_is():
    # A slow moment must not keep a client's document refused: refused for time, it is
    # validated afresh next time.  Shapes do not change with the moment: cached.
    admission = Admission(
        AdmissionLimits(
            max_depth=12,
            max_aliases=30,
            max_selections=1000,
            max_upstream_requests=50,
            max_analysis_seconds=10,
        )
    )
    schema = build_schema()._schema
    rules = tuple(specified_rules)
    slow = duplicate_fields(100)
    first = admission.outcome(slow, parse(slow), schema, rules, seconds_left=0.001)
    assert "took too long" in first.errors[0].message
    again = admission.outcome(slow, parse(slow), schema, rules, seconds_left=10)
    assert again.errors == ()
    too_wide = wide(2000)
    refused = admission.outcome(too_wide, parse(too_wide), schema, rules, seconds_left=10)
    assert refused.errors[0].extensions == {
        "code": "QUERY_TOO_COMPLEX",
        "selections": 2000,
        "maxSelections": 1000,
    }
    assert admission.outcome(too_wide, parse(too_wide), schema, rules, seconds_left=10) is refused


async def test_refused_documents_leave_no_syntax_tree_behind():
    # A full collection walks every object a cache keeps; 256 kept hostile documents made
    # it hold the worker for up to 0.6 s. A refused document keeps nothing but a digest.
    schema = build_schema()
    gc.collect()
    before = len(gc.get_objects())
    for k in range(40):
        result = await schema.execute(f"{wide(1500)} # {k}")  # ~4,500 nodes each
        assert result.errors is not None
        assert result.errors[0].extensions == {
            "code": "QUERY_TOO_COMPLEX",
            "selections": 1500,
            "maxSelections": 1000,
        }
    del result
    gc.collect()
    assert len(gc.get_objects()) - before < 5_000
