"""Fuzzing over HTTP: generated operations and malformed requests never break the gateway.

Operations come from ``hypothesis-graphql`` over the schema's own SDL: valid queries
(``Mode.POSITIVE``) and queries with one schema violation (``Mode.NEGATIVE``). IDs are a mix
of real ids of account A's demo rows (raw and global, of every node type, so resolvers reach
the sandbox and nest) and arbitrary text; ``Date``/``DateTime`` are a mix of valid values and
arbitrary text. Malformed requests are plain Hypothesis: random bytes under random content
types, random JSON values, and JSON objects whose fields have the wrong shapes.

Properties: no HTTP 5xx (the sandbox behind is healthy, so even the upstream codes have no
reason to appear with a 5xx), a JSON body every time, and every GraphQL error carries one of
DESIGN.md §5's codes, never ``INTERNAL_SERVER_ERROR`` (a masked unexpected exception, i.e.
a bug). Only queries are generated: mutations would write to the sandbox.
"""

from __future__ import annotations

import json
from typing import Any

import graphql
import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, nodes, queries

from appointments_gateway.resolvers.ids import NODE_TYPES, to_global_id
from appointments_gateway.sandbox import create_sandbox_app
from appointments_gateway.schema import build_schema
from bench.attacks import families
from tests.schema.conftest import Gateway

CODES = {
    "BAD_USER_INPUT",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "RATE_LIMITED",
    "QUERY_TOO_COMPLEX",
    "UPSTREAM_TIMEOUT",
    "UPSTREAM_UNAVAILABLE",
    # A business whose zone the gateway does not know (not in the demo data today).
    "UNKNOWN_TIME_ZONE",
}
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SDL = build_schema().as_str()
_TABLES = {
    "Appointment": "appointments",
    "Patient": "patients",
    "Practitioner": "practitioners",
    "Business": "businesses",
    "AppointmentType": "appointment_types",
    "PatientCase": "patient_cases",
}
assert set(_TABLES) == NODE_TYPES


def _real_ids() -> list[str]:
    """A few ids of account A's demo rows per type, raw and global, and one of account B."""
    store = create_sandbox_app().state.sandbox.store
    try:
        ids: list[str] = []
        for type_name, table in _TABLES.items():
            for account in ("a", "a", "b"):
                row = store.conn.execute(
                    f"SELECT id FROM {table} WHERE account = ? ORDER BY id LIMIT 1 OFFSET ?",
                    (account, len(ids) % 3),
                ).fetchone()
                if row is not None:
                    ids += [str(row["id"]), to_global_id(type_name, str(row["id"]))]
        return ids
    finally:
        store.close()


TEXT = st.text(max_size=30)
IDS = st.one_of(st.sampled_from(_real_ids()), TEXT, st.integers().map(str)).map(nodes.String)
SCALARS = {
    "ID": IDS,
    "Date": st.one_of(st.dates().map(str), TEXT).map(nodes.String),
    "DateTime": st.one_of(
        st.datetimes().map(lambda d: d.isoformat() + "Z"),
        st.datetimes().map(lambda d: d.isoformat()),
        TEXT,
    ).map(nodes.String),
}


def check_response(response: httpx.Response, request: object) -> dict[str, Any]:
    """No 5xx, a JSON object, and only known, unmasked error codes."""
    assert response.status_code < 500, (response.status_code, request, response.text[:500])
    body = response.json()
    assert isinstance(body, dict), (request, response.text[:500])
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code != "INTERNAL_SERVER_ERROR", (request, error)
        assert code in CODES, (request, error)
    return body


async def post_query(gw: Gateway, document: str) -> None:
    before = gw.sandbox_requests
    response = await gw.http.post("/graphql", json={"query": document})
    body = check_response(response, document)
    # Whatever the document, the admission bound is never below what it really cost.
    upstream = (body.get("extensions") or {}).get("upstream") or {}
    if "requests" in upstream:
        assert upstream["requests"] == gw.sandbox_requests - before, document
    if "estimate" in upstream:
        assert upstream["estimate"] >= upstream["requests"], document


@FUZZ
@given(document=queries(SDL, custom_scalars=SCALARS, allow_x00=False))
async def test_generated_queries_get_an_answer_or_a_known_error(gw: Gateway, document: str):
    graphql.parse(document)  # the generator's own output is a document
    await post_query(gw, document)


@FUZZ
@given(document=queries(SDL, custom_scalars=SCALARS, mode=Mode.NEGATIVE))
async def test_queries_that_break_the_schema_get_a_known_error(gw: Gateway, document: str):
    response = await gw.http.post("/graphql", json={"query": document})
    body = check_response(response, document)
    assert body.get("errors"), document


CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=latin-1",
            "application/graphql",
            "application/graphql-response+json",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "multipart/form-data; boundary=xyz",
            "text/plain",
            "",
        ]
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
)
ACCEPTS = st.sampled_from(
    ["application/json", "application/graphql-response+json", "text/html", "*/*", "x/y", ""]
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
FIELDS = st.sampled_from(["query", "variables", "operationName", "extensions"])
SHAPED = st.dictionaries(FIELDS, JSON, max_size=4) | st.fixed_dictionaries(
    {"query": st.sampled_from(["{ version }", "query Q($id: ID!) { node(id: $id) { id } }"])},
    optional={"variables": JSON, "operationName": JSON, "extensions": JSON},
)


def check_refusal(response: httpx.Response, request: object) -> None:
    assert response.status_code < 500, (response.status_code, request, response.text[:500])
    try:
        body = response.json()
    except json.JSONDecodeError as error:
        raise AssertionError((request, response.headers, response.text[:500])) from error
    for result in body if isinstance(body, list) else [body]:  # a batch answers a list
        assert isinstance(result, dict), (request, response.text[:500])
        for item in result.get("errors") or []:
            code = (item.get("extensions") or {}).get("code")
            assert code in CODES, (request, item)


@FUZZ
@given(body=st.binary(max_size=300), content_type=CONTENT_TYPES, accept=ACCEPTS)
async def test_random_bytes_get_a_json_answer(
    gw: Gateway, body: bytes, content_type: str, accept: str
):
    headers = {"content-type": content_type, "accept": accept}
    response = await gw.http.post("/graphql", content=body, headers=headers)
    check_refusal(response, (body, headers))


@FUZZ
@given(value=JSON | SHAPED | st.lists(SHAPED, max_size=3), content_type=CONTENT_TYPES)
async def test_random_json_gets_a_json_answer(gw: Gateway, value: object, content_type: str):
    body = json.dumps(value).encode()
    response = await gw.http.post("/graphql", content=body, headers={"content-type": content_type})
    check_refusal(response, (value, content_type))


@FUZZ
@given(params=st.dictionaries(FIELDS | st.text(max_size=10), st.text(max_size=40), max_size=4))
async def test_random_get_parameters_get_a_json_answer(gw: Gateway, params: dict[str, str]):
    response = await gw.http.get("/graphql", params=params, headers={"accept": "application/json"})
    check_refusal(response, params)


@st.composite
def hostile_documents(draw: st.DrawFn) -> str:
    """The shapes of bench/attacks.py at random sizes, or fields nested up to 60 deep.

    Fan-outs, alias fan-outs, fragment chains, wide sets, repeated fields, sibling
    fragments, deep nesting: each must end in data or a known code, never a 5xx, an
    unknown code or a masked error.
    """
    family = draw(st.sampled_from([make for _, make, _ in families()]))
    size = draw(st.integers(1, 70))
    document = family(size)
    if draw(st.booleans()):
        depth = draw(st.integers(1, 20))  # three fields a level
        document = "{ " + "appointments(first: 1) { nodes { repeatedFrom { " * depth
        document += "id" + " } } }" * depth + " }"
    return document


@FUZZ
@given(document=hostile_documents())
async def test_hostile_shapes_get_an_answer_or_a_known_error(gw: Gateway, document: str):
    await post_query(gw, document)


@FUZZ
@given(depth=st.integers(1, 3000), kind=st.sampled_from(["[", '{"a":']))
async def test_deeply_nested_json_gets_a_json_answer(gw: Gateway, depth: int, kind: str):
    closing = "]" if kind == "[" else "}"
    variables = kind * depth + "1" + closing * depth
    body = '{"query": "{ version }", "variables": {"v": ' + variables + "}}"
    response = await gw.http.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    check_refusal(response, depth)
