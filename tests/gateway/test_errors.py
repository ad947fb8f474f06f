"""Every answer the HTTP layer gives is GraphQL-shaped JSON with a code and the request id:
an unexpected exception anywhere in the app (a 500), and the router's 404 and 405.

Logs are captured from the gateway's loggers and rendered with the server's
``JsonFormatter``, so what is checked is the printed line.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from appointments_gateway.gateway import create_app
from appointments_gateway.gateway.graphql import GatewayGraphQL
from appointments_gateway.observability import JsonFormatter
from appointments_gateway.settings import Settings
from tests.gateway.test_app import PROBE_SCHEMA

#: What the failing code "knows"; it must reach neither the client nor a log line.
SECRET = "Zoë-Secret-Record-5d1c"


class Boom(Exception):
    pass


async def boom(request: Request) -> Response:
    raise Boom(SECRET)


def app_with_a_failing_route() -> Starlette:
    app = create_app(Settings(), schema=PROBE_SCHEMA)
    app.router.routes.append(Route("/boom", boom, methods=["GET"]))
    return app


def printed(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(record)) for record in caplog.records]


def assert_internal_error(response: httpx.Response) -> str:
    """The masked 500 body, with the request id in the header and in the error."""
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == "application/json"
    request_id = response.headers["x-request-id"]
    assert response.json() == {
        "errors": [
            {
                "message": "Internal server error.",
                "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
            }
        ]
    }
    assert SECRET not in response.text
    return request_id


# --- the catch-all 500 -----------------------------------------------------------------


async def test_an_exception_in_a_route_is_a_json_500_with_the_request_id(caplog, serve):
    caplog.set_level(logging.DEBUG, logger="appointments_gateway")
    async with serve(app_with_a_failing_route()) as client:
        response = await client.get("/boom", headers={"X-Request-Id": "boom-request-0001"})
        after = await client.get("/healthz")
    assert assert_internal_error(response) == "boom-request-0001"
    assert after.status_code == 200  # the process serves on
    lines = printed(caplog)
    [line] = [line for line in lines if line["level"] == "error"]
    assert line["request_id"] == "boom-request-0001"
    assert line["exception"]["type"] == f"{__name__}.Boom"
    assert any("in boom" in frame for frame in line["exception"]["frames"])
    assert SECRET not in json.dumps(lines)


async def test_an_exception_in_the_graphql_view_is_a_json_500_and_a_logged_operation(
    caplog, monkeypatch, serve
):
    async def failing_context(self: GatewayGraphQL, request: Any, response: Any) -> Any:
        raise Boom(SECRET)

    monkeypatch.setattr(GatewayGraphQL, "get_context", failing_context)
    caplog.set_level(logging.DEBUG, logger="appointments_gateway")
    async with serve(create_app(Settings(), schema=PROBE_SCHEMA)) as client:
        response = await client.post(
            "/graphql",
            json={"query": "{ appointmentTotal }"},
            headers={"Accept": "application/graphql-response+json"},
        )
    request_id = assert_internal_error(response)
    lines = printed(caplog)
    [error] = [line for line in lines if line["level"] == "error"]
    assert error["request_id"] == request_id
    # the request's own line reports what the client got
    [operation] = [line for line in lines if line["logger"] == "appointments_gateway.operations"]
    assert (operation["request_id"], operation["http_status"]) == (request_id, 500)
    assert SECRET not in json.dumps(lines)


async def test_an_exception_after_the_response_started_is_logged_and_not_masked(caplog, serve):
    """Too late for a clean 500: the server must drop the connection, not end the body."""

    async def half_then_boom(request: Request) -> Response:
        class Half(Response):
            async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
                await send({"type": "http.response.start", "status": 200, "headers": []})
                body = b"x" * 2048  # past what gzip holds back: this part is on the wire
                await send({"type": "http.response.body", "body": body, "more_body": True})
                raise Boom(SECRET)

        return Half()

    app = create_app(Settings(), schema=PROBE_SCHEMA)
    app.router.routes.append(Route("/half", half_then_boom, methods=["GET"]))
    caplog.set_level(logging.DEBUG, logger="appointments_gateway")
    async with serve(app) as client:
        with pytest.raises(Boom):
            await client.get("/half", headers={"X-Request-Id": "half-request-0001"})
    [line] = [line for line in printed(caplog) if line["level"] == "error"]
    assert line["request_id"] == "half-request-0001"


# --- the router's own refusals ---------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_a_method_the_graphql_route_does_not_take_is_a_json_405_with_allow(method, serve):
    async with serve(create_app(Settings(), schema=PROBE_SCHEMA)) as client:
        response = await client.request(method, "/graphql", json={"query": "{ ok }"})
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert method in error["message"]
    assert "data" not in response.json()


@pytest.mark.parametrize("path", ["/nope", "/healthz/x", "/metrics.txt", "/graphql/extra"])
async def test_a_path_with_no_route_is_a_json_404(path, serve):
    async with serve(create_app(Settings(), schema=PROBE_SCHEMA)) as client:
        response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "NOT_FOUND"}
    assert "/graphql" in error["message"]
