"""``/metrics`` and ``/readyz`` on a public interface take a token; loopback keeps them open.

``/metrics`` tells anyone who can reach it which operations run, how often and how they
fail; ``/readyz`` spends the service key's upstream budget.  On a public interface they
answer only ``Authorization: Bearer <token>`` with a GATEWAY_OPS_TOKENS token (or, in
service mode, a GATEWAY_TOKENS one).  ``/healthz`` says nothing and stays open.
"""

from __future__ import annotations

import hashlib

import httpx
import pytest
from starlette.applications import Starlette

from appointments_gateway.gateway import create_app
from appointments_gateway.sandbox import DEMO_KEY_A, SandboxConfig, create_sandbox_app
from appointments_gateway.settings import ConfigError, Settings
from tests.gateway.test_app import PROBE_SCHEMA, SANDBOX_URL
from tests.gateway.test_tokens import TOKEN_A

OPS_TOKEN = "operations-scraper-token-" + "o" * 24
PUBLIC = {"GATEWAY_HOST": "0.0.0.0", "GATEWAY_ALLOWED_HOSTS": "localhost"}
GUARDED = ("/metrics", "/readyz")


@pytest.fixture
def sandbox() -> Starlette:
    return create_sandbox_app(SandboxConfig(rate_limit_per_minute=0))


def app_for(sandbox: Starlette, **environ: str) -> Starlette:
    settings = Settings.load(environ={"GATEWAY_UPSTREAM": SANDBOX_URL, **environ})
    return create_app(
        settings, upstream_transport=httpx.ASGITransport(app=sandbox), schema=PROBE_SCHEMA
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthenticated(response: httpx.Response, words: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["x-request-id"]
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}
    assert words in error["message"]


@pytest.mark.parametrize("path", GUARDED)
async def test_a_public_forward_gateway_without_ops_tokens_opens_them_to_nobody(
    sandbox, path, serve
):
    async with serve(app_for(sandbox, GATEWAY_AUTH="forward", **PUBLIC)) as client:
        anonymous = await client.get(path)
        with_a_key = await client.get(path, headers=bearer(DEMO_KEY_A))
        health = await client.get("/healthz")
    assert_unauthenticated(anonymous, "GATEWAY_OPS_TOKENS")
    assert_unauthenticated(with_a_key, "GATEWAY_OPS_TOKENS")
    assert health.status_code == 200
    assert sandbox.state.sandbox.stats.total == 0  # no readiness probe went upstream


@pytest.mark.parametrize("path", GUARDED)
@pytest.mark.parametrize("auth", ["forward", "service"])
async def test_an_ops_token_opens_them_in_either_mode(sandbox, path, auth, serve):
    environ = {"GATEWAY_AUTH": auth, "GATEWAY_OPS_TOKENS": OPS_TOKEN, **PUBLIC}
    if auth == "service":
        environ |= {"CLINIKO_API_KEY": DEMO_KEY_A, "GATEWAY_TOKENS": TOKEN_A}
    async with serve(app_for(sandbox, **environ)) as client:
        missing = await client.get(path)
        wrong = await client.get(path, headers=bearer(OPS_TOKEN + "x"))
        basic = await client.get(path, auth=(OPS_TOKEN, ""))
        opened = await client.get(path, headers=bearer(OPS_TOKEN))
    for refused in (missing, wrong, basic):
        assert_unauthenticated(refused, "GATEWAY_OPS_TOKENS")
    assert opened.status_code == 200, opened.text
    assert OPS_TOKEN[:12] not in missing.text + wrong.text


@pytest.mark.parametrize("path", GUARDED)
async def test_a_gateway_token_opens_them_in_service_mode(sandbox, path, serve):
    environ = {"CLINIKO_API_KEY": DEMO_KEY_A, "GATEWAY_TOKENS": TOKEN_A, **PUBLIC}
    async with serve(app_for(sandbox, **environ)) as client:
        refused = await client.get(path)
        opened = await client.get(path, headers=bearer(TOKEN_A))
    assert_unauthenticated(refused, "GATEWAY_TOKENS")
    assert opened.status_code == 200


async def test_an_ops_token_does_not_open_graphql(sandbox, serve):
    environ = {
        "CLINIKO_API_KEY": DEMO_KEY_A,
        "GATEWAY_TOKENS": TOKEN_A,
        "GATEWAY_OPS_TOKENS": OPS_TOKEN,
        **PUBLIC,
    }
    async with serve(app_for(sandbox, **environ)) as client:
        response = await client.post(
            "/graphql", json={"query": "{ appointmentTotal }"}, headers=bearer(OPS_TOKEN)
        )
    assert response.status_code == 401
    assert sandbox.state.sandbox.stats.total == 0


@pytest.mark.parametrize("path", GUARDED)
async def test_loopback_keeps_them_open_even_with_ops_tokens(sandbox, path, serve):
    async with serve(
        app_for(sandbox, CLINIKO_API_KEY=DEMO_KEY_A, GATEWAY_OPS_TOKENS=OPS_TOKEN)
    ) as client:
        response = await client.get(path)
    assert response.status_code == 200


def test_ops_tokens_parse_like_gateway_tokens_and_are_kept_as_digests():
    digest = hashlib.sha256(b"another-long-random-ops-token").hexdigest()
    settings = Settings.load(
        environ={"GATEWAY_AUTH": "forward", "GATEWAY_OPS_TOKENS": f"{OPS_TOKEN},sha256:{digest}"}
    )
    assert settings.ops_tokens == (hashlib.sha256(OPS_TOKEN.encode()).hexdigest(), digest)
    assert OPS_TOKEN not in repr(settings)
    assert OPS_TOKEN not in str(settings.to_environ())
    assert Settings.load(environ=settings.to_environ()) == settings
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ={"GATEWAY_OPS_TOKENS": "short-ops-token"})
    assert str(caught.value).startswith("GATEWAY_OPS_TOKENS: entry 1 is shorter than 24")
    assert "short-ops" not in str(caught.value)
