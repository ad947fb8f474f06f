"""The local-day filter and local times from a warm replica: same answers, no request.

The sandbox is laid out around now, as in ``tests/replica/``; the businesses move to
Sydney and London and the change days' appointments are booked *before* the gateway
starts, so the replica's first load holds them.  Its window reaches back past 2026-03-28
(``sync_days_back``), so every change day's bounds lie inside it, and the replica answers
the ``startsAt`` range the day becomes.  Each question is asked twice (``both``): as a
normal read, which the replica must answer at no upstream request, and with
``Cache-Control: no-cache``, the upstream path; their ``data`` must be identical.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.conftest import Serve
from tests.replica.conftest import Replicated, iso, make_sandbox, open_replicated
from tests.schema.test_local_time import (
    CHANGE_DAYS,
    LOCAL_DAY,
    SYDNEY,
    ChangeDay,
    book_change_days,
    dst_door,
)

#: The earliest day the window must hold (the day before London's 2026-03-29).
EARLIEST = date(2026, 3, 28)


@dataclass
class Warm:
    gw: Replicated
    business: dict[str, str]
    inside: dict[str, dict[str, str]]


@pytest.fixture
async def warm(serve: Serve) -> AsyncIterator[Warm]:
    sandbox = make_sandbox()
    async with dst_door(sandbox) as door:
        inside = await book_change_days(door)
    days_back = (datetime.now(UTC).date() - EARLIEST).days + 2
    async with open_replicated(serve, sandbox, sync_days_back=max(days_back, 30)) as gw:
        yield Warm(gw, door.business, inside)


async def test_every_change_day_from_the_replica_equals_the_upstream(warm: Warm) -> None:
    for case in CHANGE_DAYS:
        variables = {"day": case.day, "business": warm.business[case.zone]}
        local, upstream = await warm.gw.both(LOCAL_DAY, variables)
        assert local.errors == []
        assert local.source == "replica", local.body["extensions"]
        # The business (its zone) and the day's rows: both from the replica.
        assert local.requests == 0
        assert upstream.requests == 2
        nodes = local.data["appointments"]["nodes"]
        assert {n["clinikoId"] for n in nodes} == set(warm.inside[case.day]), case
        assert all(n["startsAtLocal"].startswith(case.day + "T") for n in nodes)


@pytest.mark.parametrize("case", [CHANGE_DAYS[0], CHANGE_DAYS[3]], ids=lambda c: c.day)
async def test_a_local_day_with_a_starts_at_range_from_the_replica(
    warm: Warm, case: ChangeDay
) -> None:
    document = """query Part($day: Date!, $business: ID!, $from: DateTime!) {
      appointments(filter: {localDate: $day, businessId: $business, startsAt: {gte: $from}}) {
        totalCount nodes { clinikoId startsAtLocal }
      }
    }"""
    end = datetime.fromisoformat(case.end.replace("Z", "+00:00"))
    variables = {
        "day": case.day,
        "business": warm.business[case.zone],
        "from": iso(end - timedelta(hours=1)),
    }
    local, _ = await warm.gw.both(document, variables)
    assert local.requests == 0
    assert local.source == "replica"
    assert local.data["appointments"]["totalCount"] == 3  # 23:00, 23:30 and 23:59:59


async def test_local_times_of_a_page_cost_nothing_on_a_warm_key(warm: Warm) -> None:
    now = datetime.now(UTC)
    window = {"gte": iso(now - timedelta(days=14)), "lt": iso(now + timedelta(days=14))}
    counts = {}
    for selection in ("business { timeZoneIdentifier }", "startsAtLocal endsAtLocal"):
        document = f"""query Page($business: ID!, $window: DateTimeFilter!) {{
          appointments(first: 100, filter: {{businessIds: [$business], startsAt: $window}}) {{
            nodes {{ clinikoId startsAt {selection} }}
          }}
        }}"""
        local, upstream = await warm.gw.both(
            document, {"business": warm.business[SYDNEY], "window": window}
        )
        assert len(local.data["appointments"]["nodes"]) == 100
        assert local.source == "replica"
        counts[selection] = (local.requests, upstream.requests)
    assert counts == {
        "business { timeZoneIdentifier }": (0, 2),
        "startsAtLocal endsAtLocal": (0, 2),
    }
