"""``serve`` prints one JSON line per operation, and nothing of what the operation carried."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.conftest import Running, serve_on_sandbox

pytestmark = pytest.mark.e2e


def test_serve_prints_json_operation_lines_without_variables(cli: list[Running]):
    running, endpoint, root = serve_on_sandbox(cli)
    marker = "Zoë-Secret-Note-91"
    with httpx.Client(timeout=10) as http:
        response = http.post(
            endpoint,
            json={
                # the id is malformed: the caller's error message quotes it, no log may
                "query": "query Ping($id: ID!) { patient(id: $id) { id } }",
                "variables": {"id": f"Patient:{marker}"},
            },
            headers={"X-Request-Id": "e2e-request-0001"},
        )
        assert response.headers["x-request-id"] == "e2e-request-0001"
        assert marker in response.text
        assert http.get(f"{root}/readyz").json()["status"] == "ready"
        assert "gateway_operations_total" in http.get(f"{root}/metrics").text
    assert running.stop() == 0
    output = running.output()
    assert marker not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    [operation] = [line for line in lines if line.get("request_id") == "e2e-request-0001"]
    assert operation["operation_name"] == "Ping"
    assert operation["operation_type"] == "query"
    assert operation["http_status"] == 200
    assert operation["error_codes"] == ["BAD_USER_INPUT"]
    # uvicorn's own lines are JSON too
    assert any(line["logger"].startswith("uvicorn") for line in lines)
