"""Request ids, the per-operation log line, masked-error logging, /metrics and /readyz.

Everything over real HTTP into the ASGI app (``httpx.ASGITransport``) with the sandbox
behind it; logs are captured from the loggers the gateway writes to and rendered with
the same ``JsonFormatter`` the server uses, so what is checked is the printed line.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from appointments_gateway.gateway import create_app
from appointments_gateway.observability import JsonFormatter, log_config
from appointments_gateway.resolvers import loaders
from appointments_gateway.sandbox import DEMO_KEY_A
from appointments_gateway.settings import Settings
from tests.conftest import Serve
from tests.schema.conftest import SANDBOX_URL, Gateway, open_gateway

MARKER = "Zoë-Marker-7f3a"
UPDATE = (
    "mutation SaveNote($input: UpdateAppointmentInput!) { updateAppointment(input: $input) "
    "{ appointment { id notes patient { firstName lastName } } userErrors { code } } }"
)
LINE_FIELDS = {
    "request_id",
    "operation_name",
    "operation_type",
    "duration_ms",
    "upstream_requests",
    "error_codes",
    "http_status",
}


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Everything the gateway's and Strawberry's loggers write, at every level."""
    caplog.set_level(logging.DEBUG, logger="appointments_gateway")
    caplog.set_level(logging.DEBUG, logger="strawberry")
    return caplog


def printed(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The captured records as the server prints them: one JSON object per line."""
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert all("\n" not in line for line in lines)
    return [json.loads(line) for line in lines]


def operation_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [line for line in printed(caplog) if line["logger"] == "appointments_gateway.operations"]


def seeded_appointment(gw: Gateway) -> str:
    row = gw.sandbox.state.sandbox.store.conn.execute(
        "SELECT a.id FROM appointments a JOIN practitioners p ON p.id = a.practitioner_id "
        "WHERE a.account = 'a' AND p.active AND a.cancelled_at IS NULL "
        "AND a.archived_at IS NULL AND a.deleted_at IS NULL ORDER BY a.id"
    ).fetchone()
    return str(row["id"])


# --- request ids ---------------------------------------------------------------------


async def test_a_request_id_is_made_and_echoed_on_every_response(gw: Gateway):
    first = await gw.http.get("/healthz")
    second = await gw.http.post("/graphql", json={"query": "{ version }"})
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in ids)
    assert ids[0] != ids[1]


@pytest.mark.parametrize(
    "incoming",
    ["3f2b9c1e-7a44-4d2e-9c1a-5b6d7e8f9a0b", "01J9Z8K7M6N5P4Q3R2S1T0V9W8", "req_12345678"],
)
async def test_a_plain_incoming_request_id_is_kept(gw: Gateway, incoming: str):
    response = await gw.http.post(
        "/graphql", json={"query": "{ version }"}, headers={"X-Request-Id": incoming}
    )
    assert response.headers["x-request-id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["short", "has space in it", 'quote"and-more', "x" * 65, "-starts-with-dash", "a\tb-12345678"],
)
async def test_an_unsafe_incoming_request_id_is_replaced(
    gw: Gateway, logs: pytest.LogCaptureFixture, incoming: str
):
    response = await gw.http.post(
        "/graphql", json={"query": "{ version }"}, headers={"X-Request-Id": incoming}
    )
    echoed = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", echoed)
    assert [line["request_id"] for line in operation_lines(logs)] == [echoed]


# --- the operation log line ----------------------------------------------------------


async def test_one_line_per_operation_with_exactly_the_documented_fields(
    gw: Gateway, logs: pytest.LogCaptureFixture
):
    appointment_id = seeded_appointment(gw)
    response = await gw.http.post(
        "/graphql",
        json={
            "query": UPDATE,
            "operationName": "SaveNote",
            "variables": {"input": {"id": appointment_id, "notes": MARKER}},
        },
        headers={"X-Request-Id": "trace-0001-abcdef"},
    )
    body = response.json()
    assert "errors" not in body, body
    saved = body["data"]["updateAppointment"]["appointment"]
    assert saved["notes"] == MARKER
    patient_names = [saved["patient"]["firstName"], saved["patient"]["lastName"]]

    [line] = operation_lines(logs)
    assert set(line) == {"ts", "level", "logger", "msg", *LINE_FIELDS}
    assert line["request_id"] == "trace-0001-abcdef"
    assert line["operation_name"] == "SaveNote"
    assert line["operation_type"] == "mutation"
    assert line["upstream_requests"] == body["extensions"]["upstream"]["requests"] >= 1
    assert line["error_codes"] == []
    assert line["http_status"] == 200
    assert 0 < line["duration_ms"] < 10_000

    everything = "\n".join(logs.text.splitlines() + [json.dumps(x) for x in printed(logs)])
    for secret in [MARKER, *patient_names, DEMO_KEY_A, "updateAppointment", appointment_id]:
        assert secret not in everything


async def test_expected_errors_are_listed_by_code_and_not_logged_as_errors(
    gw: Gateway, logs: pytest.LogCaptureFixture
):
    bad_id = f"Patient:{MARKER}"
    body = (
        await gw.http.post(
            "/graphql",
            json={
                "query": "query Find($a: ID!, $b: ID!) { a: patient(id: $a) { id } "
                "b: appointment(id: $b) { id } }",
                "variables": {"a": bad_id, "b": "999999999"},
            },
        )
    ).json()
    codes = sorted(error["extensions"]["code"] for error in body["errors"])
    assert codes == ["BAD_USER_INPUT", "NOT_FOUND"]

    [line] = operation_lines(logs)
    assert line["operation_name"] == "Find"
    assert line["error_codes"] == ["BAD_USER_INPUT", "NOT_FOUND"]
    assert [r for r in logs.records if r.levelno >= logging.WARNING] == []
    assert MARKER not in logs.text
    assert all(MARKER not in json.dumps(x) for x in printed(logs))


async def test_an_operation_name_that_names_no_operation_is_never_logged(
    gw: Gateway, logs: pytest.LogCaptureFixture
):
    response = await gw.http.post(
        "/graphql", json={"query": "query Real { version }", "operationName": MARKER}
    )
    assert response.json()["errors"]
    [line] = operation_lines(logs)
    assert line["operation_name"] is None
    assert MARKER not in json.dumps(printed(logs))


async def test_a_request_refused_before_any_operation_gets_a_line(
    gw: Gateway, logs: pytest.LogCaptureFixture
):
    response = await gw.http.post(
        "/graphql", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    [line] = operation_lines(logs)
    assert line["operation_name"] is None
    assert line["http_status"] == 400
    assert line["request_id"] == response.headers["x-request-id"]


# --- unexpected errors ---------------------------------------------------------------


async def test_a_masked_error_carries_the_request_id_and_its_log_line_no_message(
    gw: Gateway, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    async def broken(self: Any, keys: list[str]) -> list[Any]:
        raise KeyError(f"patient {MARKER} has no chart")

    monkeypatch.setattr(loaders.RecordLoader, "batch_load_fn", broken)
    response = await gw.http.post(
        "/graphql",
        json={
            "query": "query One { appointments(first: 1) { nodes { id patient { firstName } } } }"
        },
        headers={"X-Request-Id": "support-ticket-4242"},
    )
    body = response.json()
    [error] = body["errors"]
    assert error["message"] == "Internal server error."
    assert error["extensions"] == {
        "code": "INTERNAL_SERVER_ERROR",
        "requestId": "support-ticket-4242",
    }
    assert MARKER not in response.text

    lines = printed(logs)
    [failure] = [line for line in lines if line["level"] == "error"]
    assert failure["logger"] == "appointments_gateway.errors"
    assert failure["request_id"] == "support-ticket-4242"
    assert failure["graphql_path"] == error["path"]
    assert failure["exception"]["type"] == "builtins.KeyError"
    assert any("test_observability.py" in frame for frame in failure["exception"]["frames"])
    [line] = operation_lines(logs)
    assert line["error_codes"] == ["INTERNAL_SERVER_ERROR"]
    assert line["request_id"] == "support-ticket-4242"
    assert MARKER not in logs.text
    assert all(MARKER not in json.dumps(x) for x in lines)


def test_the_formatter_renders_any_exception_without_its_message():
    try:
        raise ValueError(f"row for {MARKER}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, None)
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["exception"]["type"] == "builtins.ValueError"
    assert MARKER not in json.dumps(line)


def test_the_server_log_config_keeps_urls_and_access_lines_out():
    config = log_config("info")
    assert config["loggers"]["httpx"]["level"] == "WARNING"
    assert config["loggers"]["httpcore"]["level"] == "WARNING"
    assert config["loggers"]["uvicorn.access"]["handlers"] == []
    assert config["loggers"]["appointments_gateway"]["level"] == "INFO"


# --- /metrics ------------------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def limited(serve: Serve) -> AsyncIterator[tuple[httpx.AsyncClient, Starlette]]:
    """The gateway with the default rate governor on (the schema fixtures turn it off)."""
    from tests.schema.conftest import make_sandbox

    sandbox = make_sandbox()
    app = create_app(
        Settings(upstream=SANDBOX_URL, api_key=DEMO_KEY_A),
        upstream_transport=httpx.ASGITransport(app=sandbox),
    )
    async with serve(app) as http:
        yield http, sandbox


async def test_metrics_count_operations_upstream_calls_governor_and_batches(limited):
    http, sandbox = limited
    calendar = "query Calendar { appointments(first: 5) { nodes { id patient { firstName } } } }"
    for _ in range(2):
        assert "errors" not in (await http.post("/graphql", json={"query": calendar})).json()
    await http.post("/graphql", json={"query": "{ version }"})
    await http.post("/graphql", json={"query": "query Missing { appointment(id: 1) { id } }"})

    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    ops = "gateway_operations_total"
    assert value(found, ops, operation="Calendar", type="query", outcome="ok") == 2
    assert value(found, ops, operation="anonymous", type="query", outcome="ok") == 1
    assert value(found, ops, operation="Missing", type="query", outcome="partial") == 1
    assert value(found, "gateway_operation_errors_total", code="NOT_FOUND") == 1
    assert value(found, "gateway_graphql_responses_total", status="200") == 4
    assert (
        value(found, "gateway_operation_duration_seconds_count", operation="Calendar", type="query")
        == 2
    )

    upstream = {
        labels: count
        for (name, labels), count in found.items()
        if name == "gateway_upstream_requests_total"
    }
    sent = sandbox.state.sandbox.stats.total
    assert sum(upstream.values()) == sent > 0
    routes = {dict(labels)["route"] for labels in upstream}
    assert routes <= {"/individual_appointments", "/patients", "/individual_appointments/{id}"}
    assert all(not re.search(r"\d", route) for route in routes)
    assert value(found, "gateway_governor_grants_total") == sent
    assert value(found, "gateway_governor_refusals_total") == 0
    assert value(found, "gateway_governor_upstream_429s_total") == 0
    assert value(found, "gateway_dataloader_batch_size_count", loader="patients") == 2
    assert value(found, "gateway_dataloader_batch_size_sum", loader="patients") >= 2


async def test_metric_labels_are_bounded(gw: Gateway, monkeypatch: pytest.MonkeyPatch):
    from appointments_gateway.observability import metrics

    monkeypatch.setattr(metrics, "MAX_OPERATION_NAMES", 2)
    for name in ["One", "Two", "Three", "Four"]:
        await gw.http.post("/graphql", json={"query": f"query {name} {{ version }}"})
    found = samples((await gw.http.get("/metrics")).text)
    labels = {dict(key)["operation"] for (name, key) in found if name == "gateway_operations_total"}
    assert labels == {"One", "Two", "other"}


async def test_each_app_has_its_own_registry(gw: Gateway, serve: Serve):
    async with open_gateway(serve, gw.sandbox) as other:
        await other.http.post("/graphql", json={"query": "{ version }"})
        assert "gateway_operations_total" in (await other.http.get("/metrics")).text
    found = samples((await gw.http.get("/metrics")).text)
    assert (
        value(found, "gateway_operations_total", operation="anonymous", type="query", outcome="ok")
        == 0
    )


# --- /readyz -------------------------------------------------------------------------


async def test_readyz_asks_the_upstream_once_and_caches_the_answer(gw: Gateway):
    before = gw.sandbox_requests
    for _ in range(3):
        response = await gw.http.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {"status": "ready", "upstream": "ok"}
    assert gw.sandbox_requests == before + 1


class Refusing(httpx.AsyncBaseTransport):
    """An upstream whose port is closed: every connection is refused."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)


async def test_readyz_is_503_when_the_upstream_refuses_connections(
    sandbox: Starlette, serve: Serve
):
    async with open_gateway(serve, sandbox, transport=Refusing()) as gw:
        response = await gw.http.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {"status": "not ready", "upstream": "UpstreamUnavailable"}
        assert (await gw.http.get("/healthz")).status_code == 200


async def test_readyz_in_forward_mode_needs_only_an_answer(sandbox: Starlette, serve: Serve):
    app = create_app(
        Settings(upstream=SANDBOX_URL, auth="forward", upstream_rate_limit=0),
        upstream_transport=httpx.ASGITransport(app=sandbox),
    )
    async with serve(app) as http:
        response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "upstream": "answered 401"}
