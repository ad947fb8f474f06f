"""DNS rebinding against the real server: the issue's curl, over TCP on loopback."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import Running, refused_at_start, serve_on_sandbox

pytestmark = pytest.mark.e2e

PATIENTS = "{ appointments(first: 1) { nodes { patient { firstName lastName email } } } }"


def test_a_page_under_another_name_cannot_read_patients_through_a_loopback_gateway(
    cli: list[Running],
):
    _, endpoint, root = serve_on_sandbox(cli)
    port = endpoint.split(":")[-1].split("/")[0]
    with httpx.Client(timeout=10) as http:
        # curl -G http://127.0.0.1:PORT/graphql -H 'Host: attacker.example:PORT' ...
        attack = http.get(
            endpoint, params={"query": PATIENTS}, headers={"Host": f"attacker.example:{port}"}
        )
        own = http.get(endpoint, params={"query": PATIENTS})
        ipv6 = http.get(endpoint, params={"query": PATIENTS}, headers={"Host": f"[::1]:{port}"})
        probe = http.get(f"{root}/healthz", headers={"Host": f"10.1.2.3:{port}"})
    assert attack.status_code == 400
    assert attack.headers["x-request-id"]
    assert "data" not in attack.json()
    assert attack.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert own.json()["data"]["appointments"]["nodes"][0]["patient"]["lastName"]
    assert ipv6.status_code == 200
    assert probe.status_code == 200


def test_serve_on_a_public_interface_needs_its_host_names():
    done = refused_at_start("serve", "--auth", "forward", "--host", "0.0.0.0", "--port", "0")
    assert "GATEWAY_ALLOWED_HOSTS" in done.stderr
