"""The Host check against DNS rebinding, over real HTTP into the app.

A page at ``http://attacker.example:8000`` whose name now resolves to 127.0.0.1 reaches a
developer's loopback gateway with ``Host: attacker.example:8000``; it must get a JSON 400
and no data, before any upstream call.  (``tests/e2e/test_cli.py`` repeats the attack
against the real server over TCP.)
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from appointments_gateway.gateway import create_app
from appointments_gateway.gateway.middleware import hosts
from appointments_gateway.sandbox import DEMO_KEY_A, SandboxConfig, create_sandbox_app
from appointments_gateway.settings import Settings
from tests.gateway.test_app import SANDBOX_URL

#: The operation of the issue: names and emails of patients.
PATIENTS = {
    "query": "{ appointments(first: 1) { nodes { patient { firstName lastName email } } } }"
}


@pytest.fixture
def sandbox() -> Starlette:
    return create_sandbox_app(SandboxConfig(rate_limit_per_minute=0))


def gateway(sandbox: Starlette, **settings: Any) -> Starlette:
    return create_app(
        Settings(upstream=SANDBOX_URL, api_key=DEMO_KEY_A, **settings),
        upstream_transport=httpx.ASGITransport(app=sandbox),
    )


async def post_as(client: httpx.AsyncClient, host: str | None) -> httpx.Response:
    """POST the patients query with exactly this Host header (``None``: none at all)."""
    request = client.build_request("POST", "/graphql", json=PATIENTS)
    del request.headers["host"]
    if host is not None:
        request.headers["host"] = host
    return await client.send(request)


def assert_host_refused(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    body = response.json()
    assert "data" not in body
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert "GATEWAY_ALLOWED_HOSTS" in error["message"]


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example:8000",
        "attacker.example",
        "localhost.attacker.example",
        "127.0.0.1.attacker.example:8000",
        "[::2]:8000",
        "",
        None,
        "localhost:8000:8000",
    ],
)
async def test_a_loopback_gateway_refuses_any_other_host_before_any_upstream_call(
    sandbox, host, serve
):
    async with serve(gateway(sandbox)) as client:
        refused = await post_as(client, host)
        assert sandbox.state.sandbox.stats.total == 0
        # the positive control: the same request by a loopback name reads the patient
        accepted = await post_as(client, "127.0.0.1:8000")
    assert_host_refused(refused)
    assert accepted.json()["data"]["appointments"]["nodes"][0]["patient"]["lastName"]


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:8000", "LOCALHOST:8000", "127.0.0.1", "127.0.0.1:8000", "[::1]:8000"],
)
async def test_a_loopback_gateway_answers_its_loopback_names(sandbox, host, serve):
    async with serve(gateway(sandbox)) as client:
        response = await post_as(client, host)
    assert response.status_code == 200, response.text
    assert "errors" not in response.json()


async def test_a_loopback_gateway_answers_the_names_it_is_given_too(sandbox, serve):
    names = ("gateway.dev.example", "*.preview.example")
    async with serve(gateway(sandbox, allowed_hosts=names)) as client:
        named = await post_as(client, "gateway.dev.example:8000")
        wildcard = await post_as(client, "pr-12.preview.example")
        loopback = await post_as(client, "localhost:8000")
        # the wildcard is for sub-domains only, as Starlette matches it
        bare = await post_as(client, "preview.example")
        other = await post_as(client, "gateway.dev.example.attacker.example")
    assert [r.status_code for r in (named, wildcard, loopback)] == [200, 200, 200]
    assert_host_refused(bare)
    assert_host_refused(other)


async def test_a_public_gateway_answers_only_the_listed_names(sandbox, serve):
    app = gateway(sandbox, host="0.0.0.0", auth="forward", allowed_hosts=("gateway.example.com",))
    async with serve(app) as client:
        listed = await post_as(client, "gateway.example.com")
        loopback = await post_as(client, "127.0.0.1:8000")
        localhost = await post_as(client, "localhost")
    assert listed.status_code == 401  # through the host check, on to the missing key
    assert_host_refused(loopback)
    assert_host_refused(localhost)
    assert sandbox.state.sandbox.stats.total == 0


@pytest.mark.parametrize("path", sorted(hosts.EXEMPT_PATHS))
async def test_probes_and_metrics_answer_whatever_the_host(sandbox, path, serve):
    """Orchestrators ask by pod IP; none of these returns patient data."""
    async with serve(gateway(sandbox)) as client:
        response = await client.get(path, headers={"Host": "10.1.2.3:8000"})
    assert response.status_code == 200, response.text


async def test_graphiql_and_unknown_paths_are_checked_too(sandbox, serve):
    async with serve(gateway(sandbox)) as client:
        page = await client.get(
            "/graphql", headers={"Host": "attacker.example", "Accept": "text/html"}
        )
        nowhere = await client.get("/nope", headers={"Host": "attacker.example"})
    assert_host_refused(page)
    assert_host_refused(nowhere)


def test_a_bare_star_never_reaches_the_middleware():
    with pytest.raises(ValueError, match="any Host header"):
        hosts.TrustedHosts(create_sandbox_app(), allowed_hosts=("localhost", "*"))
