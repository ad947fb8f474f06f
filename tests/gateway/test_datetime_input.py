"""``DateTime`` input takes exactly an ISO-8601 instant with an offset, nothing around it.

(The scalar lives in ``schema/scalars.py``; these tests sit here, beside the other hostile
input tests, and drive it both directly and through the HTTP view.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette

from appointments_gateway.sandbox import SandboxConfig, create_sandbox_app
from appointments_gateway.schema.scalars import parse_datetime
from tests.gateway.test_http_hygiene import gateway_app, upstream_requests


@pytest.fixture
def sandbox() -> Starlette:
    return create_sandbox_app(SandboxConfig(rate_limit_per_minute=0))


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-01-01T00:00:00Z", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T10:00:00+10:00", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2025-12-31T18:30:00-05:30", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T00:00:00.5Z", datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=0.5)),
        ("2026-01-01T00:00:00.123Z", datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)),
        ("2026-01-01T00:00:00.123456Z", datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
        # nanoseconds (Go's RFC3339Nano): below what Cliniko keeps, so truncated
        ("2026-01-01T00:00:00.123456789Z", datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_an_iso_8601_instant_with_an_offset_is_accepted(text, instant):
    assert parse_datetime(text) == instant


@pytest.mark.parametrize(
    "text",
    [
        # datetime.fromisoformat (3.11) stops reading at a NUL after the zone
        "2026-01-01T00:00:00Z\u0000junk",
        "2026-01-01T00:00:00Z\u0000",
        "2026-01-01T00:00:00Z\n",
        " 2026-01-01T00:00:00Z",
        # forms fromisoformat accepts that are no full instant, or not the usual one
        "2026-01-01\u000000:00:00Z",
        "2026-01-01 00:00:00Z",
        "20260101T000000Z",
        "2026-W01-1T00:00:00Z",
        "2026-01-01T00Z",
        "2026-01-01T00:00Z",
        "2026-01-01T00:00:00,5Z",
        "2026-01-01T00:00:00+0100",
        "2026-01-01T00:00:00+01",
        "2026-01-01T00:00:00.Z",
        "2026-01-01T00:00:00.1234567890Z",
        # digits that are not ASCII digits
        "２０２６-01-01T00:00:00Z",
        "2026-01-01T00:00:00Zjunk",
        "2026-13-01T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:00+24:00",
    ],
)
def test_anything_else_is_refused(text):
    with pytest.raises(ValueError, match=r"not ISO-8601|no time zone"):
        parse_datetime(text)


async def test_a_datetime_with_junk_after_it_is_bad_user_input_before_any_upstream_call(
    sandbox, serve
):
    document = (
        "query ($t: DateTime!) { appointments(first: 1, filter: {startsAt: {gte: $t}}) "
        "{ totalCount } }"
    )
    async with serve(gateway_app(sandbox)) as client:
        refused = await client.post(
            "/graphql",
            json={"query": document, "variables": {"t": "2026-01-01T00:00:00Z\u0000junk"}},
        )
        assert upstream_requests(sandbox) == 0
        accepted = await client.post(
            "/graphql", json={"query": document, "variables": {"t": "2026-01-01T00:00:00Z"}}
        )
    (error,) = refused.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "not ISO-8601" in error["message"]
    assert "errors" not in accepted.json()
    assert upstream_requests(sandbox) == 1
