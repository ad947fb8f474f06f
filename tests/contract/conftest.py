"""The real client (``appointments_gateway.upstream``) against the real sandbox, in process.

Nothing is mocked: ``UpstreamClient`` talks to ``create_sandbox_app()`` through
``httpx.ASGITransport``, so these tests catch the two halves disagreeing about URLs, filters,
bodies, status codes and payload shapes. Expected values come from the sandbox's own state
(``app.state.sandbox``: its SQLite store and request counters) or from the raw JSON it serves
to a plain httpx client, never from the client under test.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
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
from appointments_gateway.upstream import (
    ClinikoSession,
    Credential,
    RetryPolicy,
    UpstreamClient,
)

ANCHOR = datetime(2025, 3, 10, tzinfo=UTC)  # a Monday
USER_AGENT = "Contract Tests (tests@example.com)"
API = "http://sandbox.test/v1"


async def _no_sleep(seconds: float) -> None:
    return None


ZERO_DELAY_RETRY = RetryPolicy(max_retries=2, sleep=_no_sleep, rng=lambda: 0.0)
"""Two retries, no waiting: the fault tests stay fast and deterministic."""


def make_app(**overrides: Any) -> Starlette:
    """A fresh sandbox (own copy of the data) with the fixed anchor and no rate limit."""
    values: dict[str, Any] = {"anchor": ANCHOR, "rate_limit_per_minute": 0}
    values.update(overrides)
    return create_sandbox_app(SandboxConfig(**values))


def state_of(app: Starlette) -> SandboxState:
    state: SandboxState = app.state.sandbox
    return state


def rows(app: Starlette, sql: str, *params: object) -> list[sqlite3.Row]:
    """Query the sandbox's own store (to pick test data and compute expected answers)."""
    result: list[sqlite3.Row] = state_of(app).store.conn.execute(sql, params).fetchall()
    return result


def one(app: Starlette, sql: str, *params: object) -> sqlite3.Row:
    found = rows(app, sql, *params)
    assert found, f"the seeded data has no row for: {sql}"
    return found[0]


def scalar(app: Starlette, sql: str, *params: object) -> Any:
    return one(app, sql, *params)[0]


LIVE = "cancelled_at IS NULL AND archived_at IS NULL AND deleted_at IS NULL"
"""SQL: an appointment the API shows without any ``*`` filter."""


def ts(value: datetime | None) -> str | None:
    """A parsed datetime back in Cliniko's wire form (UTC, whole seconds, ``Z``)."""
    if value is None:
        return None
    assert value.tzinfo is not None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def link_id(payload: dict[str, Any], key: str) -> str | None:
    """The id at the end of a relation's ``links.self``, or None if the key is absent/null."""
    relation = payload.get(key)
    if relation is None:
        return None
    url: str = relation["links"]["self"]
    return url.rsplit("/", 1)[-1]


@asynccontextmanager
async def connect(
    app: Starlette, *, retry: RetryPolicy = ZERO_DELAY_RETRY
) -> AsyncIterator[UpstreamClient]:
    """The production client wired to ``app`` in process, without a rate governor.

    The sandboxes here have no rate limit either; the governor's contract with the
    sandbox's limit is tested in tests/schema/test_rate_limits.py.
    """
    async with UpstreamClient(
        user_agent=USER_AGENT,
        transport=httpx.ASGITransport(app=app),
        retry=retry,
        governor=None,
    ) as upstream:
        yield upstream


def session_for(upstream: UpstreamClient, key: str = DEMO_KEY_A) -> ClinikoSession:
    return upstream.session(Credential.from_api_key(key, base_url=API))


@pytest.fixture
def app() -> Starlette:
    return make_app()


@pytest.fixture
def sandbox(app: Starlette) -> SandboxState:
    return state_of(app)


@pytest.fixture
async def upstream(app: Starlette) -> AsyncIterator[UpstreamClient]:
    async with connect(app) as client:
        yield client


@pytest.fixture
def session(upstream: UpstreamClient) -> ClinikoSession:
    """Account A (the large demo clinic group)."""
    return session_for(upstream, DEMO_KEY_A)


@pytest.fixture
def session_b(upstream: UpstreamClient) -> ClinikoSession:
    """Account B (the small practice), same sandbox."""
    return session_for(upstream, DEMO_KEY_B)


@pytest.fixture
async def raw(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client on the same app, as account A, for the JSON the sandbox serves."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=API + "/", auth=(DEMO_KEY_A, "")
    ) as client:
        yield client


RawGet = Callable[..., Any]


@pytest.fixture
def raw_get(raw: httpx.AsyncClient) -> RawGet:
    """``await raw_get("individual_appointments/1", ("q[]", "cancelled_at:*"))`` -> JSON."""

    async def get(path: str, *params: tuple[str, str]) -> Any:
        response = await raw.get(path, params=list(params) or None)
        assert response.status_code == 200, response.text
        return response.json()

    return get


# --- record fidelity -------------------------------------------------------------------------

# AppointmentRecord fields that are plain copies of the JSON key of the same name.
_APPOINTMENT_PLAIN = (
    "cancellation_reason",
    "cancellation_note",
    "did_not_arrive",
    "patient_arrived",
    "email_reminder_sent",
    "sms_reminder_sent",
    "has_patient_appointment_notes",
    "notes",
    "online_booking_policy_accepted",
    "booking_ip_address",
    "patient_name",
    "invoice_status",
    "treatment_note_status",
    "telehealth_url",
)
_APPOINTMENT_TIMES = (
    "created_at",
    "updated_at",
    "starts_at",
    "ends_at",
    "archived_at",
    "deleted_at",
    "cancelled_at",
)
_APPOINTMENT_LINKS = {
    "repeated_from_id": "repeated_from",
    "patient_id": "patient",
    "practitioner_id": "practitioner",
    "business_id": "business",
    "appointment_type_id": "appointment_type",
    "patient_case_id": "patient_case",
}
APPOINTMENT_FIELDS_CHECKED = frozenset(
    {
        "id",
        "cancellation_reason_description",
        "repeat_rule",
        "has_repeats",
        *_APPOINTMENT_PLAIN,
        *_APPOINTMENT_TIMES,
        *_APPOINTMENT_LINKS,
    }
)
"""Every AppointmentRecord field :func:`assert_appointment_matches` compares (a test checks
this is all of them, so a new record field cannot slip past the fidelity tests)."""


def assert_appointment_matches(record: Any, payload: dict[str, Any]) -> None:
    """Every field of a parsed AppointmentRecord equals the JSON the sandbox served."""
    assert record.id == payload["id"]
    assert type(record.id) is str
    for name in _APPOINTMENT_TIMES:
        assert ts(getattr(record, name)) == payload[name], name
    for name in _APPOINTMENT_PLAIN:
        value = getattr(record, name)
        assert value == payload[name], name
        assert type(value) is type(payload[name]), name
    # "" (not cancelled) is read as None; a real description is kept verbatim.
    assert record.cancellation_reason_description == (
        payload["cancellation_reason_description"] or None
    )
    rule = payload["repeat_rule"]
    if rule == {}:
        assert record.repeat_rule is None
    else:
        assert record.repeat_rule is not None
        assert record.repeat_rule.repeat_type == rule["repeat_type"]
        assert record.repeat_rule.number_of_repeats == rule["number_of_repeats"]
        assert record.repeat_rule.repeating_interval == rule["repeating_interval"]
    assert record.has_repeats is (payload["repeats"] is not None)
    for name, key in _APPOINTMENT_LINKS.items():
        assert getattr(record, name) == link_id(payload, key), name
