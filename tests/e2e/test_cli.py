"""The console script as users run it: real processes, real TCP on loopback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import (
    SCRIPT,
    Running,
    refused_at_start,
    start_cli,
    wait_until_serving,
)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
KEY_A = "sandbox-key-a-au1"


def _start(cli: list[Running], *args: str) -> Running:
    running = start_cli(*args)
    cli.append(running)
    return running


def test_sandbox_command_answers_the_documented_requests(cli):
    running = _start(cli, "sandbox", "--port", "0", "--rate-limit", "0")
    base = running.wait_for("Sandbox Cliniko API:")
    assert KEY_A in running.wait_for("Demo API keys:")
    with httpx.Client(auth=(KEY_A, ""), timeout=10) as http:
        # the exact request README and the issue give for curl
        listed = http.get(
            f"{base}/individual_appointments?per_page=100"
            "&q[]=starts_at:>2020-01-01T00:00:00Z&sort=starts_at:desc"
        )
        assert listed.status_code == 200
        body = listed.json()
        rows = body["individual_appointments"]
        assert len(rows) == 100
        assert body["total_entries"] > 100
        starts = [row["starts_at"] for row in rows]
        assert starts == sorted(starts, reverse=True)
        assert all(s > "2020-01-01T00:00:00Z" for s in starts)
        assert body["links"]["self"].startswith(base)
        assert "next" in body["links"]

        patients = http.get(f"{base}/patients", params={"per_page": 3}).json()["patients"]
        ids = [p["id"] for p in patients]
        batch = http.get(f"{base}/patients?q[]=id:={','.join(ids)}")
        assert batch.status_code == 200
        assert sorted(p["id"] for p in batch.json()["patients"]) == sorted(ids)
        assert all(len(i) == 19 for i in ids)

        bad = http.get(f"{base}/individual_appointments?q[]=colour:=red")
        assert bad.status_code == 400
        assert "colour" in bad.json()["message"]

        assert http.get(f"{base}/patients", auth=("wrong-key-au1", "")).status_code == 401


def test_serve_runs_the_gateway_on_the_embedded_sandbox(cli):
    running = _start(cli, "serve", "--port", "0", "--sandbox-port", "0")
    endpoint = running.wait_for("GraphQL endpoint:")
    sandbox = running.wait_for("Upstream:").removeprefix("embedded sandbox at ").strip()
    assert running.wait_for("GraphiQL:").startswith(endpoint)
    root = endpoint.removesuffix("/graphql")
    wait_until_serving(root)
    with httpx.Client(timeout=10) as http:
        health = http.get(f"{root}/healthz")
        assert health.json()["status"] == "ok"

        result = http.post(endpoint, json={"query": "{ version }"}).json()
        assert result["data"]["version"]
        assert result["extensions"]["upstream"]["requests"] == 0

        page = http.get(endpoint, headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()

        # a GET operation carries its variables in the URL: no access log may print them
        marker = "Zoë-Secret-Note"
        got = http.get(
            endpoint,
            params={"query": "query ($n: String) { version }", "variables": f'{{"n": "{marker}"}}'},
        )
        assert got.status_code == 200

        # the embedded sandbox is a real server the developer can curl too
        stats = http.get(sandbox.removesuffix("/v1") + "/_sandbox/stats")
        assert stats.status_code == 200
    assert running.stop() == 0
    assert marker not in running.output()
    assert "/graphql" not in running.output().replace(endpoint, "")


def test_serve_refuses_a_bad_configuration_with_a_clear_message():
    done = refused_at_start("serve", "--auth", "service", "--host", "0.0.0.0")
    assert "not a loopback address" in done.stderr


def test_serve_refuses_more_than_one_worker_until_state_is_shared():
    # Two workers each kept their own idempotency keys: the same createAppointment and
    # key sent to both booked twice (12 of 39 keys in an attack). Refused at start.
    done = refused_at_start("serve", "--workers", "2", "--port", "0")
    assert "GATEWAY_WORKERS=2" in done.stderr
    assert "GATEWAY_REDIS_URL" in done.stderr
    assert "book twice" in done.stderr


def test_schema_command_prints_the_committed_sdl():
    done = subprocess.run([SCRIPT, "schema"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    assert done.stdout == (REPO / "schema.graphql").read_text()


def test_help_lists_every_environment_variable():
    done = subprocess.run([SCRIPT, "serve", "--help"], capture_output=True, text=True, timeout=30)
    for env in (
        "GATEWAY_UPSTREAM",
        "CLINIKO_API_KEY",
        "GATEWAY_AUTH",
        "GATEWAY_USER_AGENT",
        "GATEWAY_HOST",
        "GATEWAY_PORT",
    ):
        assert env in done.stdout
