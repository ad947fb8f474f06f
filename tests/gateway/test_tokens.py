"""Service mode with gateway tokens, over real HTTP: who may use the service key."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from starlette.applications import Starlette

from appointments_gateway.gateway import create_app
from appointments_gateway.gateway.auth import GatewayTokens
from appointments_gateway.sandbox import DEMO_KEY_A, SandboxConfig, create_sandbox_app
from appointments_gateway.settings import Settings
from tests.gateway.test_app import PROBE_SCHEMA, SANDBOX_URL

TOKEN_A = "first-gateway-token-" + "a" * 24
TOKEN_B = "second-gateway-token-" + "b" * 24
QUERY = {"query": "{ appointmentTotal }"}


@pytest.fixture
def sandbox() -> Starlette:
    return create_sandbox_app(SandboxConfig(rate_limit_per_minute=0))


def token_app(sandbox: Starlette, *, host: str = "0.0.0.0") -> Starlette:
    digest_b = hashlib.sha256(TOKEN_B.encode()).hexdigest()
    settings = Settings.load(
        environ={
            "GATEWAY_UPSTREAM": SANDBOX_URL,
            "CLINIKO_API_KEY": DEMO_KEY_A,
            "GATEWAY_HOST": host,
            "GATEWAY_ALLOWED_HOSTS": "localhost",
            # one plain-text token and one given only as its digest
            "GATEWAY_TOKENS": f"{TOKEN_A},sha256:{digest_b}",
        }
    )
    return create_app(
        settings, upstream_transport=httpx.ASGITransport(app=sandbox), schema=PROBE_SCHEMA
    )


@pytest.mark.parametrize("token", [TOKEN_A, TOKEN_B])
async def test_a_configured_token_uses_the_service_key(sandbox, token, serve):
    async with serve(token_app(sandbox)) as client:
        response = await client.post(
            "/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200
    assert response.json()["data"]["appointmentTotal"] > 0


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer ",
        "Bearer " + TOKEN_A[:-1],
        "Bearer " + TOKEN_A + "x",
        # the digest itself is not a token: a leaked configuration opens nothing
        "Bearer " + hashlib.sha256(TOKEN_A.encode()).hexdigest(),
        "Basic " + TOKEN_A,
        # a Cliniko key is not a gateway token either
        "Bearer " + DEMO_KEY_A,
    ],
)
async def test_anything_else_is_refused_before_any_upstream_call(sandbox, authorization, serve):
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with serve(token_app(sandbox)) as client:
        response = await client.post("/graphql", json=QUERY, headers=headers)
        page = await client.get("/graphql", headers={"Accept": "text/html", **headers})
    assert response.status_code == 401
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN_A[:12] not in response.text
    assert page.status_code == 200  # GraphiQL's page itself carries no data
    assert sandbox.state.sandbox.stats.total == 0


async def test_tokens_are_required_on_loopback_too_once_configured(sandbox, serve):
    async with serve(token_app(sandbox, host="127.0.0.1")) as client:
        refused = await client.post("/graphql", json=QUERY)
    assert refused.status_code == 401


async def test_a_loopback_dev_server_without_tokens_needs_none(sandbox, serve):
    settings = Settings(upstream=SANDBOX_URL, api_key=DEMO_KEY_A)
    app = create_app(
        settings, upstream_transport=httpx.ASGITransport(app=sandbox), schema=PROBE_SCHEMA
    )
    async with serve(app) as client:
        response = await client.post("/graphql", json=QUERY)
    assert response.status_code == 200


def test_the_token_check_compares_every_digest_and_shows_none():
    tokens = GatewayTokens([hashlib.sha256(t.encode()).hexdigest() for t in (TOKEN_A, TOKEN_B)])
    assert tokens.accepts(TOKEN_A)
    assert tokens.accepts(TOKEN_B)
    assert not tokens.accepts("")
    assert not tokens.accepts(TOKEN_A.upper())
    assert repr(tokens) == "GatewayTokens(<2 digests>)"
    with pytest.raises(ValueError, match="at least one"):
        GatewayTokens([])
