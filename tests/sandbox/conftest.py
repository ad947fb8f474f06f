from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from appointments_gateway.sandbox import (
    DEMO_KEY_A,
    DEMO_KEY_B,
    SandboxConfig,
    SandboxState,
    create_sandbox_app,
)

ANCHOR = datetime(2025, 3, 10, tzinfo=UTC)  # a Monday
BASE_URL = "http://sandbox.test"
API = f"{BASE_URL}/v1"

START = "2030-01-07T01:00:00Z"  # a free slot for new appointments

# Each list a replica polls, with the filters that lift its hidden-row rules. Practitioners have
# no hidden rows (and document no archived_at filter): they are split by /inactive instead.
SYNC_POLLS: dict[str, tuple[str, ...]] = {
    "/v1/individual_appointments": ("cancelled_at:*", "archived_at:*", "deleted_at:*"),
    "/v1/patients": ("archived_at:*",),
    "/v1/practitioners": (),
    "/v1/practitioners/inactive": (),
    "/v1/businesses": ("archived_at:*", "deleted_at:*"),
    "/v1/appointment_types": ("archived_at:*",),
    "/v1/patient_cases": ("archived_at:*",),
}


def config(**overrides: Any) -> SandboxConfig:
    """A config with the fixed anchor and the rate limit off unless a test turns it on."""
    values: dict[str, Any] = {"anchor": ANCHOR, "rate_limit_per_minute": 0}
    values.update(overrides)
    return SandboxConfig(**values)


def client_for(app: Starlette, key: str | None = DEMO_KEY_A) -> httpx.AsyncClient:
    auth = (key, "") if key is not None else None
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL, auth=auth)


def state_of(app: Starlette) -> SandboxState:
    state: SandboxState = app.state.sandbox
    return state


@pytest.fixture
def app() -> Starlette:
    return create_sandbox_app(config())


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


@pytest.fixture
async def client_b(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, DEMO_KEY_B) as c:
        yield c


ListFetcher = Callable[..., Any]


async def fetch_all(
    client: httpx.AsyncClient, path: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every row of a list endpoint, following links.next."""
    resource = path.split("?")[0].split("/")[2]  # /v1/<resource>[/inactive]
    response = await client.get(path, params={**(params or {}), "per_page": 100})
    assert response.status_code == 200, response.text
    body = response.json()
    rows: list[dict[str, Any]] = list(body[resource])
    while "next" in body["links"]:
        response = await client.get(body["links"]["next"])
        assert response.status_code == 200, response.text
        body = response.json()
        rows.extend(body[resource])
    return rows


def link_id(obj: dict[str, Any]) -> str:
    """The id at the end of a relation's links.self."""
    url: str = obj["links"]["self"]
    return url.rsplit("/", 1)[-1]


def now_second() -> str:
    """The current whole second in Cliniko's format: what a write made now stamps.

    Every seeded ``updated_at`` is at or before ``ANCHOR``, long before the wall clock, so
    rows a test changes are exactly the rows a poll from this instant finds.
    """
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def changed_since(
    client: httpx.AsyncClient, path: str, since: str, *, op: str = ">="
) -> list[dict[str, Any]]:
    """Every row a replica's poll of ``path`` from ``since`` finds, in the poll's order."""
    params = {"q[]": [f"updated_at:{op}{since}", *SYNC_POLLS[path]], "sort": "updated_at,id"}
    return await fetch_all(client, path, params)


async def total_entries(client: httpx.AsyncClient, path: str, *filters: str) -> int:
    """``total_entries`` of a ``per_page=1`` request: how a replica counts rows."""
    response = await client.get(path, params={"q[]": list(filters), "per_page": 1})
    assert response.status_code == 200, response.text
    total: int = response.json()["total_entries"]
    return total


async def references(client: httpx.AsyncClient) -> dict[str, Any]:
    """Valid ids of account A: a patient case with its patient, and the rest."""
    case = (await client.get("/v1/patient_cases", params={"per_page": 1})).json()["patient_cases"][
        0
    ]
    practitioner = (await client.get("/v1/practitioners", params={"per_page": 1})).json()
    types = (await client.get("/v1/appointment_types", params={"per_page": 1})).json()
    business = (await client.get("/v1/businesses", params={"per_page": 1})).json()
    appointment_type = types["appointment_types"][0]
    return {
        "patient_id": link_id(case["patient"]),
        "practitioner_id": practitioner["practitioners"][0]["id"],
        "appointment_type_id": appointment_type["id"],
        "business_id": business["businesses"][0]["id"],
        "case_id": case["id"],
        "duration": appointment_type["duration_in_minutes"],
    }


def body_for(refs: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A create body from ``references()``, starting at ``START`` unless overridden."""
    body = {
        "patient_id": refs["patient_id"],
        "practitioner_id": refs["practitioner_id"],
        "appointment_type_id": refs["appointment_type_id"],
        "business_id": refs["business_id"],
        "starts_at": START,
    }
    body.update(overrides)
    return body


async def get_any(client: httpx.AsyncClient, appointment_id: str) -> dict[str, Any]:
    """An appointment through the API, whatever its state (hidden rows included)."""
    response = await client.get(
        f"/v1/individual_appointments/{appointment_id}",
        params={"q[]": ["cancelled_at:*", "archived_at:*", "deleted_at:*"]},
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found
