"""Errors and URLs through the whole stack: auth, isolation, rate limit, faults, routes."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from appointments_gateway.sandbox import DEMO_KEY_A
from appointments_gateway.upstream import (
    APPOINTMENT_LIST,
    NO_RETRY,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamUnauthenticated,
    UpstreamUnavailable,
)

from .conftest import (
    ANCHOR,
    LIVE,
    ZERO_DELAY_RETRY,
    connect,
    make_app,
    one,
    scalar,
    session_for,
    state_of,
)


async def test_wrong_key_is_unauthenticated(sandbox, upstream):
    session = session_for(upstream, "not-a-sandbox-key-au1")
    with pytest.raises(UpstreamUnauthenticated) as caught:
        await session.appointments.list()
    assert caught.value.status_code == 401
    assert (caught.value.method, caught.value.route) == ("GET", "/individual_appointments")
    assert session.stats.requests == 1
    assert session.stats.retries == 0
    assert sandbox.stats.by_account == {"unauthenticated": 1}


async def test_key_without_its_shard_suffix_still_opens_the_account(sandbox, upstream):
    session = session_for(upstream, DEMO_KEY_A.rsplit("-", 1)[0])
    page = await session.appointments.list(per_page=1)
    assert page.total_entries == sandbox.count_appointments("a", live_only=True)


async def test_accounts_are_isolated(app, sandbox, session, session_b):
    a_id = str(scalar(app, f"SELECT id FROM appointments WHERE account='a' AND {LIVE}"))
    assert (await session.appointments.get(a_id)).id == a_id
    with pytest.raises(UpstreamNotFound):
        await session_b.appointments.get(a_id)
    with pytest.raises(UpstreamNotFound):
        await session_b.appointments.get(a_id, include_cancelled=True, include_archived=True)
    assert await session_b.appointments.by_ids([a_id]) == {}
    a_patient = str(scalar(app, "SELECT id FROM patients WHERE account='a'"))
    with pytest.raises(UpstreamNotFound):
        await session_b.patients.get(a_patient)

    page = await session_b.appointments.list(per_page=100)
    assert page.total_entries == sandbox.count_appointments("b", live_only=True)
    assert sandbox.stats.by_account["b"] == session_b.stats.requests == 5


async def test_rate_limit_raises_with_reset_time():
    app = make_app(rate_limit_per_minute=3)
    sandbox = state_of(app)
    async with connect(app) as upstream:
        session = session_for(upstream)
        for _ in range(3):
            await session.appointments.list(per_page=1)
        before = time.time()
        with pytest.raises(UpstreamRateLimited) as caught:
            await session.appointments.list(per_page=1)
    error = caught.value
    assert error.status_code == 429
    assert error.retry_after_seconds is not None
    assert error.reset_at is not None
    # The sandbox's window is 60 s; X-RateLimit-Reset is whole seconds rounded up, so the wait
    # a client computes from it may exceed 60 by less than one second.
    assert 0 < error.retry_after_seconds <= 61
    now = datetime.now(UTC)
    assert now < error.reset_at <= now + timedelta(seconds=61)
    assert error.reset_at.timestamp() == pytest.approx(before + error.retry_after_seconds, abs=1)
    assert session.stats.requests == 4
    assert session.stats.retries == 0
    assert sandbox.stats.by_status == {"200": 3, "429": 1}


async def test_faults_get_is_retried_then_unavailable():
    app = make_app(fault_rate=1.0)
    sandbox = state_of(app)
    async with connect(app, retry=ZERO_DELAY_RETRY) as upstream:
        session = session_for(upstream)
        with pytest.raises(UpstreamUnavailable) as caught:
            await session.appointments.get("1406000000001000943")
    assert caught.value.status_code == 503
    assert session.stats.requests == 1 + ZERO_DELAY_RETRY.max_retries == 3
    assert session.stats.retries == ZERO_DELAY_RETRY.max_retries
    assert sandbox.stats.total == 3
    assert sandbox.stats.by_status == {"503": 3}


async def test_faults_post_is_sent_exactly_once():
    app = make_app(fault_rate=1.0)
    sandbox = state_of(app)
    row = one(app, f"SELECT * FROM appointments WHERE account='a' AND {LIVE}")
    before = sandbox.count_appointments()
    async with connect(app, retry=ZERO_DELAY_RETRY) as upstream:
        session = session_for(upstream)
        with pytest.raises(UpstreamUnavailable) as caught:
            await session.appointments.create(
                {
                    "patient_id": str(row["patient_id"]),
                    "practitioner_id": str(row["practitioner_id"]),
                    "business_id": str(row["business_id"]),
                    "appointment_type_id": str(row["appointment_type_id"]),
                    "starts_at": ANCHOR + timedelta(weeks=52),
                }
            )
        with pytest.raises(UpstreamUnavailable):
            await session.appointments.cancel(str(row["id"]), reason=50)
    assert caught.value.status_code == 503
    assert session.stats.requests == 2
    assert session.stats.retries == 0
    assert sandbox.stats.by_route == {
        "POST /v1/individual_appointments": 1,
        "PATCH /v1/individual_appointments/{id}/cancel": 1,
    }
    assert sandbox.count_appointments() == before


async def test_no_retry_policy_sends_a_failing_get_once():
    app = make_app(fault_rate=1.0)
    async with connect(app, retry=NO_RETRY) as upstream:
        session = session_for(upstream)
        with pytest.raises(UpstreamUnavailable):
            await session.patients.list()
    assert session.stats.requests == 1 == state_of(app).stats.total


async def test_every_client_method_hits_the_route_it_should(app, sandbox, session):
    row = one(app, f"SELECT * FROM appointments WHERE account='a' AND {LIVE} ORDER BY id")
    id_ = str(row["id"])
    fields = {
        "patient_id": str(row["patient_id"]),
        "practitioner_id": str(row["practitioner_id"]),
        "business_id": str(row["business_id"]),
        "appointment_type_id": str(row["appointment_type_id"]),
    }
    inactive = str(scalar(app, "SELECT id FROM practitioners WHERE account='a' AND active=0"))
    case = str(scalar(app, "SELECT id FROM patient_cases WHERE account='a'"))

    await session.appointments.list(filters=[APPOINTMENT_LIST.where("id", "=", id_)])
    await session.appointments.get(id_)
    await session.appointments.by_ids([id_])
    created = await session.appointments.create(
        {**fields, "starts_at": ANCHOR + timedelta(weeks=52)}
    )
    await session.appointments.update(created.id, {"notes": "x"})
    await session.appointments.has_conflicts(created.id)
    await session.appointments.cancel(created.id, reason=50)
    await session.appointments.archive(id_)
    await session.patients.get(fields["patient_id"])
    await session.patients.list()
    await session.practitioners.get(fields["practitioner_id"])
    await session.practitioners.list(inactive=True)
    await session.practitioners.by_ids([inactive])
    await session.businesses.by_ids([fields["business_id"]])
    await session.appointment_types.get(fields["appointment_type_id"])
    await session.patient_cases.get(case)

    assert sandbox.stats.by_route == Counter(
        {
            "GET /v1/individual_appointments": 2,
            "GET /v1/individual_appointments/{id}": 1,
            "POST /v1/individual_appointments": 1,
            "PATCH /v1/individual_appointments/{id}": 1,
            "GET /v1/individual_appointments/{id}/conflicts": 1,
            "PATCH /v1/individual_appointments/{id}/cancel": 1,
            "POST /v1/individual_appointments/{id}/archive": 1,
            "GET /v1/patients/{id}": 1,
            "GET /v1/patients": 1,
            "GET /v1/practitioners/{id}": 1,
            "GET /v1/practitioners/inactive": 2,
            "GET /v1/practitioners": 1,
            "GET /v1/businesses": 1,
            "GET /v1/appointment_types/{id}": 1,
            "GET /v1/patient_cases/{id}": 1,
        }
    )
    assert sandbox.stats.by_status == {"200": 14, "201": 1, "204": 2}
    assert session.stats.requests == sandbox.stats.total == 17
    assert session.stats.retries == 0
