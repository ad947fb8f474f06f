"""HTTP hygiene over real HTTP: body limit, content types, batching, CORS, gzip,
introspection, and GraphQL-over-HTTP media types and status codes.

Every refusal is checked to happen before anything is sent upstream: the sandbox's own
request counter stays at 0, while a positive control shows the same app does reach it.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import strawberry
from starlette.applications import Starlette

from appointments_gateway.gateway import create_app
from appointments_gateway.gateway.over_http import prefers_graphql_response_json
from appointments_gateway.gateway.request_json import MAX_JSON_DEPTH
from appointments_gateway.resolvers.errors import BadUserInput
from appointments_gateway.sandbox import DEMO_KEY_A, SandboxConfig, create_sandbox_app
from appointments_gateway.schema.errors import GatewayErrors
from appointments_gateway.schema.example import EXAMPLE_QUERY
from appointments_gateway.settings import ConfigError, Settings

SANDBOX_URL = "http://sandbox.test/v1"
MODERN = "application/graphql-response+json"
SMALL_LIMIT = 1024


@strawberry.type
class ProbeQuery:
    """Fields with known outcomes, to pin down the status code of each kind of result."""

    @strawberry.field
    def ok(self) -> str:
        return "ok"

    @strawberry.field
    def fails(self) -> str | None:
        raise BadUserInput("this field always fails")

    @strawberry.field
    def fails_non_null(self) -> str:
        raise BadUserInput("this field always fails")


@strawberry.type
class ProbeMutation:
    @strawberry.mutation
    def touch(self) -> bool:
        return True


PROBE_SCHEMA = strawberry.Schema(
    query=ProbeQuery, mutation=ProbeMutation, extensions=[GatewayErrors]
)


@pytest.fixture
def sandbox() -> Starlette:
    return create_sandbox_app(SandboxConfig(rate_limit_per_minute=0))


def upstream_requests(sandbox: Starlette) -> int:
    total: int = sandbox.state.sandbox.stats.total
    return total


def gateway_app(
    sandbox: Starlette, schema: strawberry.Schema | None = None, **settings: Any
) -> Starlette:
    """The gateway (real schema unless given) over ``sandbox``."""
    return create_app(
        Settings(upstream=SANDBOX_URL, api_key=DEMO_KEY_A, **settings),
        upstream_transport=httpx.ASGITransport(app=sandbox),
        schema=schema,
    )


def assert_refusal(response: httpx.Response, status: int, words: str) -> None:
    """A GraphQL-shaped JSON error with a code and a message that explains itself."""
    assert response.status_code == status, response.text
    body = response.json()
    assert "data" not in body
    (error,) = body["errors"]
    assert words.lower() in error["message"].lower()
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


# --- body size limit -------------------------------------------------------------------


async def test_a_body_over_the_limit_by_content_length_is_refused_before_any_upstream_call(
    sandbox,
    serve,
):
    query = "{ appointments(first: 1) { totalCount } }"
    padding = " " * SMALL_LIMIT
    async with serve(gateway_app(sandbox, max_request_bytes=SMALL_LIMIT)) as client:
        refused = await client.post("/graphql", json={"query": query + padding})
        assert upstream_requests(sandbox) == 0
        # the positive control: the same app, a small body, does reach the upstream
        accepted = await client.post("/graphql", json={"query": query})
    assert_refusal(refused, 413, "larger than the gateway accepts (1024 bytes)")
    assert refused.headers["connection"] == "close"
    assert accepted.status_code == 200
    assert accepted.json()["data"]["appointments"]["totalCount"] > 0
    assert upstream_requests(sandbox) == 1


async def test_a_streamed_body_is_cut_off_at_the_limit_not_read_to_the_end(sandbox, serve):
    """No Content-Length (chunked): the gateway stops reading once the limit is passed."""
    chunk = b" " * 256
    pulled = 0

    async def endless_body() -> AsyncIterator[bytes]:
        nonlocal pulled
        yield b'{"query": "{ ok }"'
        for _ in range(100_000):  # 25 MB if the gateway read it all
            pulled += 1
            yield chunk

    async with serve(gateway_app(sandbox, max_request_bytes=SMALL_LIMIT)) as client:
        response = await client.post(
            "/graphql", content=endless_body(), headers={"Content-Type": "application/json"}
        )
    assert "content-length" not in response.request.headers
    assert_refusal(response, 413, "larger than the gateway accepts")
    # the limit is 4 chunks; the gateway read at most one past it
    assert pulled <= SMALL_LIMIT // len(chunk) + 1
    assert upstream_requests(sandbox) == 0


async def test_a_body_of_exactly_the_limit_is_accepted(sandbox, serve):
    document = "{ __typename }"
    body = b'{"query": "' + document.encode() + b'"}'
    body = body[:-1] + b" " * (SMALL_LIMIT - len(body)) + b"}"
    assert len(body) == SMALL_LIMIT
    async with serve(gateway_app(sandbox, max_request_bytes=SMALL_LIMIT)) as client:
        response = await client.post(
            "/graphql", content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 200
    assert response.json()["data"] == {"__typename": "Query"}


# --- content type, JSON, batching ------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx", "text/json"],
)
async def test_a_post_that_is_not_json_gets_415(sandbox, content_type, serve):
    headers = {"Content-Type": content_type} if content_type else {}
    async with serve(gateway_app(sandbox)) as client:
        response = await client.post(
            "/graphql", content=b'{"query": "{ appointments { totalCount } }"}', headers=headers
        )
    assert_refusal(response, 415, "Content-Type: application/json")
    assert upstream_requests(sandbox) == 0


async def test_json_with_a_charset_parameter_is_json(sandbox, serve):
    async with serve(gateway_app(sandbox, schema=PROBE_SCHEMA)) as client:
        response = await client.post(
            "/graphql",
            content=b'{"query": "{ ok }"}',
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
    assert response.json() == {"data": {"ok": "ok"}}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"query": "{ appointments { totalCount } }"', "not valid JSON"),
        (b"", "not valid JSON"),
        (b'{"query": "\xff\xfe"}', "not valid JSON"),  # not UTF-8: was a 500
        (b'"{ appointments { totalCount } }"', "must be a JSON object"),
        (b"42", "must be a JSON object"),
        (b'{"query": 42}', "`query` must be a string"),
        (b'{"query": "{ ok }", "variables": [1]}', "`variables` must be an object"),
        (b"{}", "No GraphQL query found"),
    ],
)
@pytest.mark.parametrize("accept", ["application/json", MODERN])
async def test_a_malformed_body_gets_400_with_a_clear_message(sandbox, body, words, accept, serve):
    async with serve(gateway_app(sandbox)) as client:
        response = await client.post(
            "/graphql",
            content=body,
            headers={"Content-Type": "application/json", "Accept": accept},
        )
    assert_refusal(response, 400, words)
    assert response.headers["content-type"] == accept
    assert upstream_requests(sandbox) == 0


OK_BODY = json.dumps({"query": "{ ok }"})


@pytest.mark.parametrize(
    "body",
    [
        OK_BODY.encode("utf-16"),  # with a byte order mark
        OK_BODY.encode("utf-16-le"),
        OK_BODY.encode("utf-16-be"),
        OK_BODY.encode("utf-32"),
        OK_BODY.encode("utf-8-sig"),  # RFC 8259: JSON text carries no byte order mark
        b'{"query": "{ ok }", "extensions": {"n": NaN}}',
        b'{"query": "{ ok }", "extensions": {"n": Infinity}}',
        b'{"query": "{ ok }", "extensions": {"n": -Infinity}}',
        b'{"query": "{ ok }", "extensions": {"s": "\\ud800"}}',  # a lone surrogate
    ],
)
async def test_only_utf_8_json_as_rfc_8259_defines_it_is_accepted(sandbox, body, serve):
    async with serve(gateway_app(sandbox, schema=PROBE_SCHEMA)) as client:
        refused = await client.post(
            "/graphql", content=body, headers={"Content-Type": "application/json"}
        )
        accepted = await client.post(
            "/graphql", content=OK_BODY.encode(), headers={"Content-Type": "application/json"}
        )
    assert_refusal(refused, 400, "not valid JSON")
    assert accepted.json() == {"data": {"ok": "ok"}}


@pytest.mark.parametrize("value", ['{"n": NaN}', '{"s": "\\udc00"}'])
async def test_get_parameters_must_be_rfc_8259_json_too(sandbox, value, serve):
    async with serve(gateway_app(sandbox, schema=PROBE_SCHEMA)) as client:
        response = await client.get("/graphql", params={"query": "{ ok }", "variables": value})
    assert_refusal(response, 400, "not valid JSON")


def nested_body(depth: int, kind: str) -> bytes:
    """A request body whose JSON nests exactly ``depth`` levels (the body itself is one)."""
    levels = depth - 2  # the body's object and its variables
    if kind == "arrays":
        value = "[" * levels + "]" * levels
    else:
        value = '{"a": ' * (levels - 1) + "{}" + "}" * (levels - 1)
    return b'{"query": "{ ok }", "variables": {"v": ' + value.encode() + b"}}"


@pytest.mark.parametrize("kind", ["arrays", "objects"])
async def test_json_nested_deeper_than_the_limit_is_refused_before_it_is_parsed(
    sandbox, kind, caplog, serve
):
    caplog.set_level(logging.INFO, logger="appointments_gateway.operations")
    json_headers = {"Content-Type": "application/json"}
    deep = nested_body(1000, kind)
    async with serve(gateway_app(sandbox, schema=PROBE_SCHEMA)) as client:
        refused = await client.post("/graphql", content=deep, headers=json_headers)
        at_limit = await client.post(
            "/graphql", content=nested_body(MAX_JSON_DEPTH, kind), headers=json_headers
        )
        over_limit = await client.post(
            "/graphql", content=nested_body(MAX_JSON_DEPTH + 1, kind), headers=json_headers
        )
    assert len(deep) < 8 * 1024  # a small body: the size limit is no help here
    assert_refusal(refused, 400, f"nested deeper than {MAX_JSON_DEPTH} levels")
    assert_refusal(over_limit, 400, f"nested deeper than {MAX_JSON_DEPTH} levels")
    assert at_limit.json() == {"data": {"ok": "ok"}}
    # the refusal's own log line carries the request id the client got
    [line, *_] = [r for r in caplog.records if getattr(r, "fields", {}).get("http_status") == 400]
    assert line.fields["request_id"] == refused.headers["x-request-id"]


@pytest.mark.parametrize("parameter", ["variables", "extensions"])
async def test_deep_json_in_get_parameters_is_refused_too(sandbox, parameter, serve):
    query = "{ appointments(first: 1) { totalCount } }"
    async with serve(gateway_app(sandbox)) as client:
        response = await client.get(
            "/graphql",
            params={"query": query, parameter: '{"v": ' + "[" * 1000 + "]" * 1000 + "}"},
        )
        assert upstream_requests(sandbox) == 0
        # the positive control: the same operation with shallow JSON reaches the upstream
        accepted = await client.get("/graphql", params={"query": query, parameter: '{"v": [[]]}'})
    assert_refusal(response, 400, f"nested deeper than {MAX_JSON_DEPTH} levels")
    assert response.headers["x-request-id"]
    assert accepted.json()["data"]["appointments"]["totalCount"] > 0
    assert upstream_requests(sandbox) == 1


async def test_brackets_inside_strings_do_not_count_as_nesting(sandbox, serve):
    text = '\\\\\\"[{' * 500  # escaped backslashes and quotes: neither ends the string
    body = '{"query": "{ ok }", "variables": {"s": "' + text + '", "t": [[["x]]]]]"]]]}}'
    async with serve(gateway_app(sandbox, schema=PROBE_SCHEMA)) as client:
        response = await client.post(
            "/graphql", content=body.encode(), headers={"Content-Type": "application/json"}
        )
    assert response.json() == {"data": {"ok": "ok"}}


async def test_batching_is_refused_with_a_message_saying_so(sandbox, serve):
    operation = {"query": "{ appointments(first: 1) { totalCount } }"}
    async with serve(gateway_app(sandbox)) as client:
        response = await client.post("/graphql", json=[operation, operation])
    assert_refusal(response, 400, "Batching (a JSON array of operations) is not supported")
    assert upstream_requests(sandbox) == 0


# --- CORS ------------------------------------------------------------------------------


APP_ORIGIN = "https://app.example"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


async def test_without_configured_origins_there_are_no_cors_headers(sandbox, serve):
    async with serve(gateway_app(sandbox, schema=PROBE_SCHEMA)) as client:
        response = await client.post(
            "/graphql", json={"query": "{ ok }"}, headers={"Origin": APP_ORIGIN}
        )
        preflight = await client.options("/graphql", headers={"Origin": APP_ORIGIN, **PREFLIGHT})
    assert response.status_code == 200
    assert not [h for h in response.headers if h.startswith("access-control-")]
    assert not [h for h in preflight.headers if h.startswith("access-control-")]
    # issue 13: a JSON refusal naming the setting, not the router's 405
    assert preflight.status_code == 403
    assert "GATEWAY_CORS_ORIGINS" in preflight.json()["errors"][0]["message"]


async def test_configured_origins_may_call_the_gateway_and_others_may_not(sandbox, serve):
    async with serve(
        gateway_app(
            sandbox, schema=PROBE_SCHEMA, cors_origins=(APP_ORIGIN, "http://localhost:5173")
        )
    ) as client:
        preflight = await client.options("/graphql", headers={"Origin": APP_ORIGIN, **PREFLIGHT})
        allowed = await client.post(
            "/graphql", json={"query": "{ ok }"}, headers={"Origin": APP_ORIGIN}
        )
        evil = "https://evil.example"
        refused_preflight = await client.options("/graphql", headers={"Origin": evil, **PREFLIGHT})
        other = await client.post("/graphql", json={"query": "{ ok }"}, headers={"Origin": evil})
        too_large = await client.post(
            "/graphql",
            content=b" " * (300 * 1024),
            headers={"Origin": APP_ORIGIN, "Content-Type": "application/json"},
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in preflight.headers
    assert allowed.headers["access-control-allow-origin"] == APP_ORIGIN
    assert allowed.headers["access-control-expose-headers"].lower() == "x-request-id"
    # issue 13: a JSON 403 naming the setting, not Starlette's plain-text 400
    assert refused_preflight.status_code == 403
    assert refused_preflight.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "access-control-allow-origin" not in refused_preflight.headers
    assert "access-control-allow-origin" not in other.headers
    # a refusal carries the header too, so the page can read why
    assert too_large.status_code == 413
    assert too_large.headers["access-control-allow-origin"] == APP_ORIGIN


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("*", "'*' is not allowed"),
        ("https://app.example/path", "expected origins such as"),
        ("app.example", "expected origins such as"),
        ("ftp://app.example", "expected origins such as"),
    ],
)
def test_cors_origins_must_be_exact_origins(raw, reason):
    with pytest.raises(ConfigError, match="GATEWAY_CORS_ORIGINS") as caught:
        Settings.load({"GATEWAY_CORS_ORIGINS": raw})
    assert reason in str(caught.value)


def test_cors_origins_survive_the_trip_to_worker_processes():
    settings = Settings.load({"GATEWAY_CORS_ORIGINS": " https://a.example/, http://b.test:81 "})
    assert settings.cors_origins == ("https://a.example", "http://b.test:81")
    assert Settings.load(settings.to_environ()) == settings
    assert "GATEWAY_CORS_ORIGINS" not in Settings().to_environ()


# --- gzip ------------------------------------------------------------------------------


async def post_raw(client: httpx.AsyncClient, **kwargs: Any) -> tuple[httpx.Response, bytes]:
    """The response and its body as sent on the wire (httpx would decompress it)."""
    request = client.build_request("POST", "/graphql", **kwargs)
    response = await client.send(request, stream=True)
    raw = b"".join([part async for part in response.aiter_raw()])
    await response.aclose()
    return response, raw


async def test_large_responses_are_gzipped_small_ones_are_not(sandbox, serve):
    gzip_ok = {"Accept-Encoding": "gzip"}
    async with serve(gateway_app(sandbox)) as client:
        large, large_raw = await post_raw(client, json={"query": EXAMPLE_QUERY}, headers=gzip_ok)
        small, small_raw = await post_raw(client, json={"query": "{ __typename }"}, headers=gzip_ok)
        plain = await client.post(
            "/graphql", json={"query": EXAMPLE_QUERY}, headers={"Accept-Encoding": "identity"}
        )
    assert large.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in large.headers["vary"].lower()
    unzipped = gzip.decompress(large_raw)
    assert len(large_raw) < len(unzipped) / 3
    assert unzipped.startswith(b'{"data":{"appointments"')
    assert "content-encoding" not in small.headers
    assert small_raw.startswith(b'{"data":{"__typename":"Query"}')
    assert "content-encoding" not in plain.headers
    assert plain.json()["data"]["appointments"]["edges"]


async def test_graphiql_still_loads_and_its_example_runs_with_gzip(sandbox, serve):
    """The page is compressed (it is ~5 KiB) and decodes to the page with our example."""
    async with serve(gateway_app(sandbox)) as client:
        page = await client.get(
            "/graphql", headers={"Accept": "text/html", "Accept-Encoding": "gzip"}
        )
        result = await client.post(
            "/graphql",
            json={"query": EXAMPLE_QUERY},
            headers={"Accept": "application/json", "Accept-Encoding": "gzip"},
        )
    assert page.status_code == 200
    assert page.headers["content-encoding"] == "gzip"
    assert page.headers["content-type"].startswith("text/html")
    # the page hands the example to its script as JSON (tests/gateway/test_graphiql.py)
    assert json.dumps(EXAMPLE_QUERY) in page.text
    assert result.headers["content-encoding"] == "gzip"
    assert "errors" not in result.json()


# --- introspection ---------------------------------------------------------------------


INTROSPECTION = "{ __schema { queryType { name } } }"
TYPE_INTROSPECTION = '{ __type(name: "Appointment") { name } }'


async def test_introspection_is_on_by_default(sandbox, serve):
    async with serve(gateway_app(sandbox)) as client:
        response = await client.post("/graphql", json={"query": INTROSPECTION})
    assert response.json()["data"]["__schema"]["queryType"]["name"] == "Query"


@pytest.mark.parametrize("document", [INTROSPECTION, TYPE_INTROSPECTION])
async def test_introspection_can_be_switched_off(sandbox, document, serve):
    async with serve(gateway_app(sandbox, introspection=False, graphiql=False)) as client:
        legacy = await client.post("/graphql", json={"query": document})
        modern = await client.post("/graphql", json={"query": document}, headers={"Accept": MODERN})
        # __typename is not introspection of the schema; clients rely on it
        typename = await client.post("/graphql", json={"query": "{ __typename }"})
        page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert legacy.status_code == 200
    error = legacy.json()["errors"][0]
    assert "introspection has been disabled" in error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert modern.status_code == 400
    assert "data" not in modern.json()
    assert typename.json()["data"] == {"__typename": "Query"}
    assert page.status_code == 404
    assert page.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert upstream_requests(sandbox) == 0


def test_introspection_setting_reads_from_the_environment():
    assert Settings.load({"GATEWAY_INTROSPECTION": "false"}).introspection is False
    assert Settings.load({}).introspection is True


# --- GraphQL over HTTP: media types and status codes -----------------------------------


@pytest.mark.parametrize(
    ("accept", "modern"),
    [
        ("", False),
        ("*/*", False),
        ("application/json", False),
        (MODERN, True),
        (f"{MODERN}, application/json", True),
        (f"application/json, {MODERN}", True),
        (f"{MODERN};q=0.9, application/json", False),
        (f"{MODERN}, application/json;q=0.9", True),
        (f"{MODERN};q=0", False),
        (f"{MODERN};charset=utf-8", True),
        (f"{MODERN};q=oops", False),
        ("text/html, application/xhtml+xml, */*;q=0.8", False),
    ],
)
def test_accept_negotiation(accept, modern):
    assert prefers_graphql_response_json(accept) is modern


@pytest.mark.parametrize(
    ("document", "legacy_status", "modern_status", "has_data"),
    [
        ("{ ok }", 200, 200, True),
        # partial data with a field error: execution began, so 200
        ("{ ok fails }", 200, 200, True),
        # a non-null field's error nulls data itself: still a field error, still 200
        ("{ ok failsNonNull }", 200, 200, True),
        # request errors: parse, validation
        ("{ ok", 200, 400, False),
        ("{ nope }", 200, 400, False),
    ],
)
async def test_status_codes_follow_the_accepted_media_type(
    sandbox, document, legacy_status, modern_status, has_data, serve
):
    async with serve(gateway_app(sandbox, schema=PROBE_SCHEMA)) as client:
        legacy = await client.post(
            "/graphql", json={"query": document}, headers={"Accept": "application/json"}
        )
        default = await client.post("/graphql", json={"query": document})
        modern = await client.post("/graphql", json={"query": document}, headers={"Accept": MODERN})
    assert legacy.status_code == default.status_code == legacy_status
    assert legacy.headers["content-type"] == default.headers["content-type"] == "application/json"
    # A request error has no data entry for any client (GraphQL-over-HTTP), not data: null.
    assert ("data" in legacy.json()) is ("data" in default.json()) is has_data
    assert modern.status_code == modern_status, modern.text
    assert modern.headers["content-type"] == MODERN
    assert ("data" in modern.json()) is has_data
    if not has_data:
        assert modern.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_variable_that_cannot_be_coerced_is_a_400_for_modern_clients(sandbox, serve):
    document = "query Q($first: Int) { appointments(first: $first) { totalCount } }"
    async with serve(gateway_app(sandbox)) as client:
        response = await client.post(
            "/graphql",
            json={"query": document, "variables": {"first": "ten"}},
            headers={"Accept": MODERN},
        )
        legacy = await client.post(
            "/graphql", json={"query": document, "variables": {"first": "ten"}}
        )
    assert response.status_code == 400
    assert "data" not in response.json()
    assert legacy.status_code == 200
    assert "data" not in legacy.json()
    assert legacy.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert upstream_requests(sandbox) == 0


async def test_an_operation_over_the_cost_limit_is_a_400_for_modern_clients(sandbox, serve):
    async with serve(gateway_app(sandbox, max_upstream_requests=1)) as client:
        modern = await client.post(
            "/graphql", json={"query": EXAMPLE_QUERY}, headers={"Accept": MODERN}
        )
        legacy = await client.post("/graphql", json={"query": EXAMPLE_QUERY})
    assert modern.status_code == 400
    assert modern.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert legacy.status_code == 200
    assert legacy.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "data" not in legacy.json()
    assert upstream_requests(sandbox) == 0


@pytest.mark.parametrize("accept", ["application/json", MODERN])
async def test_a_mutation_over_get_is_405_with_allow_post(sandbox, accept, serve):
    async with serve(gateway_app(sandbox, schema=PROBE_SCHEMA)) as client:
        response = await client.get(
            "/graphql", params={"query": "mutation { touch }"}, headers={"Accept": accept}
        )
        query = await client.get("/graphql", params={"query": "{ ok }"}, headers={"Accept": accept})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"] == accept
    assert "mutations are not allowed" in response.json()["errors"][0]["message"]
    assert query.status_code == 200
    assert query.json() == {"data": {"ok": "ok"}}
