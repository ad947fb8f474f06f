"""Local time: ``startsAtLocal``/``endsAtLocal`` and the ``localDate`` filter (issue 13, B).

Two demo businesses of account A are moved to zones with daylight saving through the
sandbox's web-app door (``Australia/Sydney`` and ``Europe/London``; the seed's zones have
none, and its ids stay as they are), appointments are booked on both sides of local
midnight on each zone's 2026 change days, and the filter must return exactly the
appointments of the local day.  The days' UTC bounds below are literals, checked against
``zoneinfo`` by the first test, not computed by the code under test.

These tests run with the replica off (``conftest.py``), so every answer is the upstream
path's; ``test_local_time_replica.py`` asks the same questions of a warm replica.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.applications import Starlette

from appointments_gateway.resolvers.local_time import day_bounds
from appointments_gateway.schema import build_schema
from appointments_gateway.schema.scalars import RFC_3339
from tests.conftest import Serve
from tests.schema.conftest import Gateway, open_gateway

SANDBOX_ROOT = "http://sandbox.test"
SYDNEY = "Australia/Sydney"
LONDON = "Europe/London"


@dataclass(frozen=True)
class ChangeDay:
    zone: str
    day: str
    start: str  # the local day's first instant, UTC
    end: str  # the next local day's first instant, UTC
    hours: int


#: The 2026 daylight-saving days of both zones, with their exact UTC bounds.
CHANGE_DAYS = [
    ChangeDay(SYDNEY, "2026-04-05", "2026-04-04T13:00:00Z", "2026-04-05T14:00:00Z", 25),
    ChangeDay(SYDNEY, "2026-10-04", "2026-10-03T14:00:00Z", "2026-10-04T13:00:00Z", 23),
    ChangeDay(LONDON, "2026-03-29", "2026-03-29T00:00:00Z", "2026-03-29T23:00:00Z", 23),
    ChangeDay(LONDON, "2026-10-25", "2026-10-24T23:00:00Z", "2026-10-26T00:00:00Z", 25),
]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def booking_instants(case: ChangeDay) -> dict[str, bool]:
    """Start instants around the day's edges and its change, each with "inside the day".

    Each edge has a second on both sides, and the instants a naive bound gets wrong: a
    24-hour day from local midnight ends an hour early on a 25-hour day (so misses 23:30)
    and an hour late on a 23-hour one (so takes the next day's 00:30).
    """
    start, end = utc(case.start), utc(case.end)
    instants = {
        start - timedelta(hours=1): False,
        start - timedelta(seconds=1): False,
        start: True,
        start + timedelta(seconds=1): True,
        start + timedelta(hours=12): True,
        end - timedelta(minutes=30): True,
        end - timedelta(seconds=1): True,
        end: False,
        end + timedelta(minutes=30): False,
        start + timedelta(hours=24): case.hours > 24,
    }
    return {iso(at): inside for at, inside in instants.items()}


# --- the rule itself ------------------------------------------------------------------------


@pytest.mark.parametrize("case", CHANGE_DAYS, ids=lambda c: f"{c.zone}-{c.day}")
def test_the_change_days_bounds_are_local_midnights(case: ChangeDay) -> None:
    zone = ZoneInfo(case.zone)
    start, end = day_bounds(date.fromisoformat(case.day), zone)
    assert (iso(start), iso(end)) == (case.start, case.end)
    assert end - start == timedelta(hours=case.hours)
    day = date.fromisoformat(case.day)
    assert start.astimezone(zone).replace(tzinfo=None) == datetime(day.year, day.month, day.day)
    assert (start - timedelta(seconds=1)).astimezone(zone).date() < day
    assert (end - timedelta(seconds=1)).astimezone(zone).date() == day
    assert end.astimezone(zone).date() > day


#: Zones whose clocks change at midnight (the day starts at the jump, or at the first of
#: two midnights), by half an hour, or skipped a whole day; with years that show it.
ODD_ZONES = [
    ("America/Santiago", 2026),  # 24:00 → 01:00 in September
    ("America/Havana", 2026),  # 00:00 → 01:00 in March, 01:00 → 00:00 in November
    ("Asia/Beirut", 2026),  # 00:00 → 01:00 in March, back to 23:00 in October
    ("America/Sao_Paulo", 2018),  # 00:00 → 01:00, and 00:00 → 23:00 the day before
    ("Australia/Lord_Howe", 2026),  # half an hour
    ("Pacific/Apia", 2011),  # 2011-12-30 never happened
    (SYDNEY, 2026),
    (LONDON, 2026),
]


@pytest.mark.parametrize(("name", "year"), ODD_ZONES)
def test_every_day_of_a_year_starts_at_its_first_local_instant(name: str, year: int) -> None:
    """The days tile time, and each starts at the first second whose local date is it."""
    zone = ZoneInfo(name)
    day = date(year, 1, 1)
    previous_end = None
    while day.year == year:
        try:
            start, end = day_bounds(day, zone)
        except ValueError:
            assert name == "Pacific/Apia"
            assert day == date(2011, 12, 30)
            day += timedelta(days=1)
            continue
        if previous_end is not None:
            assert start == previous_end, day
        assert start.astimezone(zone).date() == day, day
        assert (start - timedelta(seconds=1)).astimezone(zone).date() < day, day
        assert (end - timedelta(seconds=1)).astimezone(zone).date() == day, day
        assert timedelta(hours=22) <= end - start <= timedelta(hours=26), day
        previous_end = end
        day += timedelta(days=1)


def test_the_custom_scalars_are_described_and_specified() -> None:
    schema = build_schema()._schema
    for name in ("Date", "DateTime"):
        scalar: Any = schema.type_map[name]
        assert scalar.specified_by_url == RFC_3339, name
        assert "string" in scalar.description, name
    sdl = build_schema().as_str()
    assert f'scalar Date @specifiedBy(url: "{RFC_3339}")' in sdl
    assert f'scalar DateTime @specifiedBy(url: "{RFC_3339}")' in sdl


# --- through the gateway --------------------------------------------------------------------


@dataclass
class Door:
    """The sandbox's web-app door, and the businesses moved to zones with DST."""

    web: httpx.AsyncClient
    business: dict[str, str]  # zone → business id
    other: str  # a business left in its own zone (Darwin)
    refs: dict[str, str]

    async def book(self, business_id: str, starts_at: str, minutes: int = 30) -> str:
        ends_at = iso(utc(starts_at) + timedelta(minutes=minutes))
        body = {**self.refs, "business_id": business_id, "starts_at": starts_at}
        response = await self.web.post(
            "/_sandbox/webapp/a/individual_appointments", json={**body, "ends_at": ends_at}
        )
        assert response.status_code == 201, response.text
        appointment_id: str = response.json()["id"]
        return appointment_id


@dataclass
class Clinic(Door):
    """The door, and the gateway over the same sandbox (replica off)."""

    gw: Gateway


async def move(web: httpx.AsyncClient, business_id: str, zone: str) -> None:
    label = zone.split("/")[-1]
    response = await web.patch(
        f"/_sandbox/webapp/a/businesses/{business_id}",
        json={"time_zone": label, "time_zone_identifier": zone},
    )
    assert response.status_code == 200, response.text


def account_a_refs(sandbox: Starlette) -> tuple[list[str], dict[str, str]]:
    """Account A's business ids (seed order) and a patient, practitioner and type to book."""
    conn = sandbox.state.sandbox.store.conn

    def first(sql: str) -> str:
        return str(conn.execute(sql).fetchone()["id"])

    businesses = [
        str(row["id"])
        for row in conn.execute("SELECT id FROM businesses WHERE account = 'a' ORDER BY id")
    ]
    refs = {
        "patient_id": first(
            "SELECT id FROM patients WHERE account = 'a' AND archived_at IS NULL ORDER BY id"
        ),
        "practitioner_id": first(
            "SELECT id FROM practitioners WHERE account = 'a' AND active = 1 ORDER BY id"
        ),
        "appointment_type_id": first(
            "SELECT id FROM appointment_types WHERE account = 'a' AND archived_at IS NULL "
            "ORDER BY id"
        ),
    }
    return businesses, refs


@asynccontextmanager
async def dst_door(sandbox: Starlette) -> AsyncIterator[Door]:
    """Brisbane's clinic moved to Sydney, Perth's to London; Darwin's stays."""
    businesses, refs = account_a_refs(sandbox)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox), base_url=SANDBOX_ROOT
    ) as web:
        await move(web, businesses[0], SYDNEY)
        await move(web, businesses[1], LONDON)
        yield Door(web, {SYDNEY: businesses[0], LONDON: businesses[1]}, businesses[2], refs)


@pytest.fixture
async def clinic(gw: Gateway, sandbox: Starlette) -> AsyncIterator[Clinic]:
    async with dst_door(sandbox) as door:
        yield Clinic(door.web, door.business, door.other, door.refs, gw)


async def book_change_days(door: Door) -> dict[str, dict[str, str]]:
    """Every change day's bookings; those inside each day (id → start), by day."""
    inside: dict[str, dict[str, str]] = {}
    for case in CHANGE_DAYS:
        business = door.business[case.zone]
        inside[case.day] = {}
        for starts_at, is_inside in booking_instants(case).items():
            booked = await door.book(business, starts_at)
            if is_inside:
                inside[case.day][booked] = starts_at
        # At another business, inside the day's bounds: businessId leaves it out.
        await door.book(door.other, iso(utc(case.start) + timedelta(hours=2)))
    return inside


LOCAL_DAY = """
query Day($day: Date!, $business: ID!) {
  appointments(first: 100, filter: {localDate: $day, businessId: $business}) {
    totalCount
    nodes { clinikoId startsAt startsAtLocal endsAtLocal }
  }
}
"""


@pytest.mark.parametrize("case", CHANGE_DAYS, ids=lambda c: f"{c.zone}-{c.day}")
async def test_a_local_day_returns_exactly_its_appointments(
    clinic: Clinic, case: ChangeDay
) -> None:
    inside = await book_change_days(clinic)
    business = clinic.business[case.zone]
    body = await clinic.gw.query(LOCAL_DAY, {"day": case.day, "business": business})
    assert "errors" not in body, body
    page = body["data"]["appointments"]
    nodes = page["nodes"]
    assert {n["clinikoId"] for n in nodes} == set(inside[case.day])
    assert page["totalCount"] == len(inside[case.day]) == (6 if case.hours == 25 else 5)
    starts = [utc(n["startsAt"]) for n in nodes]
    assert starts == sorted(starts)
    assert min(starts) == utc(case.start)
    assert max(starts) == utc(case.end) - timedelta(seconds=1)
    assert all(n["startsAtLocal"].startswith(case.day + "T") for n in nodes)
    assert nodes[0]["startsAtLocal"][10:19] == "T00:00:00"
    assert nodes[-1]["startsAtLocal"][10:19] == "T23:59:59"
    # One lookup of the business (its zone), one page of appointments.
    assert body["extensions"]["upstream"]["requests"] == 2


@pytest.mark.parametrize("case", CHANGE_DAYS, ids=lambda c: f"{c.zone}-{c.day}")
async def test_the_filter_sends_the_days_exact_bounds_upstream(
    serve: Serve, sandbox: Starlette, case: ChangeDay
) -> None:
    sent: list[httpx.Request] = []
    inner = httpx.ASGITransport(app=sandbox)

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return await inner.handle_async_request(request)

    async with open_gateway(serve, sandbox, Recording()) as gw, dst_door(sandbox) as door:
        business = door.business[case.zone]
        body = await gw.query(LOCAL_DAY, {"day": case.day, "business": business})
        assert "errors" not in body, body
    (listed,) = [r for r in sent if r.url.path.endswith("/individual_appointments")]
    assert listed.url.params.get_list("q[]") == [
        f"starts_at:>={case.start}",
        f"starts_at:<{case.end}",
        f"business_id:={business}",
    ]


async def test_local_times_carry_the_offset_in_force_on_both_sides_of_a_change(
    clinic: Clinic,
) -> None:
    sydney, london = clinic.business[SYDNEY], clinic.business[LONDON]
    # Sydney goes back from 03:00 +11 to 02:00 +10 at 2026-04-04T16:00Z; London forward
    # from 01:00 +00 to 02:00 +01 at 2026-03-29T01:00Z.
    across = {
        await clinic.book(sydney, "2026-04-04T15:30:00Z", 60): (
            "2026-04-05T02:30:00+11:00",
            "2026-04-05T02:30:00+10:00",
        ),
        await clinic.book(sydney, "2026-10-03T15:30:00Z", 60): (
            "2026-10-04T01:30:00+10:00",
            "2026-10-04T03:30:00+11:00",
        ),
        await clinic.book(london, "2026-03-29T00:30:00Z", 60): (
            "2026-03-29T00:30:00+00:00",
            "2026-03-29T02:30:00+01:00",
        ),
        await clinic.book(london, "2026-10-25T00:30:00Z", 60): (
            "2026-10-25T01:30:00+01:00",
            "2026-10-25T01:30:00+00:00",
        ),
    }
    body = await clinic.gw.query(
        """query Local($ids: [ID!]) {
          appointments(filter: {ids: $ids}) { nodes { clinikoId startsAtLocal endsAtLocal } }
        }""",
        {"ids": list(across)},
    )
    assert "errors" not in body, body
    got = {
        n["clinikoId"]: (n["startsAtLocal"], n["endsAtLocal"])
        for n in body["data"]["appointments"]["nodes"]
    }
    assert got == across
    # The page, and the two businesses in one batched lookup.
    assert body["extensions"]["upstream"]["requests"] == 2


SELECTIONS = {
    "plain": "clinikoId startsAt",
    "zone": "clinikoId startsAt business { timeZoneIdentifier }",
    "local": "clinikoId startsAt startsAtLocal endsAtLocal",
    "both": "clinikoId startsAt startsAtLocal business { id timeZoneIdentifier }",
    "local and id": "clinikoId startsAt startsAtLocal business { id }",
}


async def test_local_times_cost_what_the_business_zone_costs(clinic: Clinic) -> None:
    """100 appointments of one business: the zone costs one lookup, however it is asked."""
    business = clinic.business[SYDNEY]
    requests: dict[str, int] = {}
    for name, selection in SELECTIONS.items():
        body = await clinic.gw.query(
            f"""query Page($business: ID!) {{
              appointments(first: 100, filter: {{businessIds: [$business]}}) {{
                nodes {{ {selection} }}
              }}
            }}""",
            {"business": business},
        )
        assert "errors" not in body, body
        nodes = body["data"]["appointments"]["nodes"]
        assert len(nodes) == 100
        requests[name] = body["extensions"]["upstream"]["requests"]
        assert body["extensions"]["upstream"]["estimate"] == requests[name], name
        if "startsAtLocal" in selection:
            for node in nodes:
                local = datetime.fromisoformat(node["startsAtLocal"])
                assert local == utc(node["startsAt"])
                assert local.utcoffset() in (timedelta(hours=10), timedelta(hours=11))
    assert requests == {
        "plain": 1,
        "zone": 2,
        "local": 2,
        "both": 2,
        "local and id": 2,
    }


async def test_local_times_of_a_single_appointment(clinic: Clinic) -> None:
    booked = await clinic.book(clinic.business[LONDON], "2026-07-01T08:00:00Z")
    body = await clinic.gw.query(
        """query One($id: ID!) {
          appointment(id: $id) { startsAtLocal endsAtLocal repeatedFrom { startsAtLocal } }
        }""",
        {"id": booked},
    )
    assert body["data"]["appointment"] == {
        "startsAtLocal": "2026-07-01T09:00:00+01:00",
        "endsAtLocal": "2026-07-01T09:30:00+01:00",
        "repeatedFrom": None,
    }
    # The appointment, then its business.
    assert body["extensions"]["upstream"]["requests"] == 2


async def test_a_zone_the_gateway_does_not_know_is_a_field_error(clinic: Clinic) -> None:
    business = clinic.business[LONDON]
    booked = await clinic.book(business, "2026-07-01T08:00:00Z")
    response = await clinic.web.patch(
        f"/_sandbox/webapp/a/businesses/{business}",
        json={"time_zone_identifier": "Mars/Olympus"},
    )
    assert response.status_code == 200
    body = await clinic.gw.query(
        """query One($id: ID!) {
          appointment(id: $id) { clinikoId startsAt startsAtLocal endsAtLocal }
        }""",
        {"id": booked},
    )
    appointment = body["data"]["appointment"]
    assert appointment["clinikoId"] == booked
    assert appointment["startsAt"] == "2026-07-01T08:00:00Z"
    assert appointment["startsAtLocal"] is None
    assert appointment["endsAtLocal"] is None
    codes = {(tuple(e["path"]), e["extensions"]["code"]) for e in body["errors"]}
    assert codes == {
        (("appointment", "startsAtLocal"), "UNKNOWN_TIME_ZONE"),
        (("appointment", "endsAtLocal"), "UNKNOWN_TIME_ZONE"),
    }
    assert body["errors"][0]["extensions"]["timeZone"] == "Mars/Olympus"
    assert "Mars/Olympus" in body["errors"][0]["message"]

    day = await clinic.gw.query(LOCAL_DAY, {"day": "2026-07-01", "business": business})
    assert day["data"] is None
    (error,) = day["errors"]
    assert error["extensions"]["code"] == "UNKNOWN_TIME_ZONE"
    assert error["path"] == ["appointments"]


async def test_a_local_day_needs_a_business(clinic: Clinic) -> None:
    body = await clinic.gw.query(
        '{ appointments(filter: {localDate: "2026-04-05"}) { totalCount } }'
    )
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == (
        "filter.localDate needs filter.businessId: the business whose time zone defines the day."
    )
    assert body["extensions"]["upstream"]["requests"] == 0


async def test_an_unknown_business_is_not_found(clinic: Clinic) -> None:
    body = await clinic.gw.query(
        LOCAL_DAY, {"day": "2026-04-05", "business": "1401999999999999999"}
    )
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["message"] == "filter.businessId: no such business."


@pytest.mark.parametrize(
    "value",
    ["2026-4-5", "20260405", "2026-W14-7", "2026-02-30", "2026-04-05T00:00:00Z", "", "٢٠٢٦-04-05"],
)
async def test_local_date_must_be_a_calendar_day(clinic: Clinic, value: str) -> None:
    body = await clinic.gw.query(LOCAL_DAY, {"day": value, "business": clinic.other})
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "YYYY-MM-DD" in error["message"]
    assert body["extensions"]["upstream"]["requests"] == 0


async def test_a_local_day_intersects_a_starts_at_range(clinic: Clinic) -> None:
    inside = await book_change_days(clinic)
    case = CHANGE_DAYS[0]  # Sydney's 25-hour day
    business = clinic.business[case.zone]
    document = """query Part($day: Date!, $business: ID!, $range: DateTimeFilter) {
      appointments(first: 100, filter: {localDate: $day, businessId: $business, startsAt: $range}) {
        nodes { clinikoId startsAt }
      }
    }"""

    async def ids(range_: dict[str, str]) -> set[str]:
        body = await clinic.gw.query(
            document, {"day": case.day, "business": business, "range": range_}
        )
        assert "errors" not in body, body
        return {n["clinikoId"] for n in body["data"]["appointments"]["nodes"]}

    start, end = utc(case.start), utc(case.end)
    # A range wider than the day on both sides: the day.
    wide = {"gte": iso(start - timedelta(days=2)), "lte": iso(end + timedelta(days=2))}
    assert await ids(wide) == set(inside[case.day])
    # A range inside the day, strict at both ends: the range.
    strict = {"gt": iso(start), "lt": iso(end - timedelta(seconds=1))}
    edges = {case.start, iso(end - timedelta(seconds=1))}
    assert await ids(strict) == {i for i, at in inside[case.day].items() if at not in edges}
    # Overlapping the day's end: from the range's start to the day's end.
    late = {"gte": iso(end - timedelta(hours=1)), "lt": iso(end + timedelta(days=1))}
    assert await ids(late) == {
        i for i, at in inside[case.day].items() if utc(at) >= end - timedelta(hours=1)
    }
    # Disjoint from the day: refused, as an empty range is.
    body = await clinic.gw.query(
        document,
        {"day": case.day, "business": business, "range": {"gte": case.end}},
    )
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == (
        "filter.startsAt does not overlap filter.localDate: the local day is "
        f"[{case.start}, {case.end})."
    )


async def test_business_id_narrows_business_ids(clinic: Clinic) -> None:
    sydney, london = clinic.business[SYDNEY], clinic.business[LONDON]
    document = """query Both($one: ID!, $list: [ID!]) {
      appointments(filter: {businessId: $one, businessIds: $list}) {
        totalCount nodes { business { clinikoId } }
      }
    }"""
    both = await clinic.gw.query(document, {"one": sydney, "list": [sydney, london]})
    page = both["data"]["appointments"]
    assert page["totalCount"] > 0
    assert {n["business"]["clinikoId"] for n in page["nodes"]} == {sydney}
    alone = await clinic.gw.query(document, {"one": sydney, "list": None})
    assert alone["data"] == both["data"]
    neither = await clinic.gw.query(document, {"one": sydney, "list": [london]})
    assert neither["data"]["appointments"] == {"totalCount": 0, "nodes": []}
    assert neither["extensions"]["upstream"]["requests"] == 0


async def test_a_local_day_under_many_parents_looks_the_business_up_once(
    clinic: Clinic,
) -> None:
    inside = await book_change_days(clinic)
    case = CHANGE_DAYS[3]  # London's 25-hour day
    business = clinic.business[case.zone]
    conn = clinic.gw.sandbox.state.sandbox.store.conn
    others = [
        str(row["id"])
        for row in conn.execute(
            "SELECT id FROM practitioners WHERE account = 'a' AND active = 1 AND id != ? "
            "ORDER BY id LIMIT 2",
            (int(clinic.refs["practitioner_id"]),),
        )
    ]
    body = await clinic.gw.query(
        """query Parents($day: Date!, $business: ID!, $p0: ID!, $p1: ID!, $p2: ID!) {
          p0: practitioner(id: $p0) { ...day }
          p1: practitioner(id: $p1) { ...day }
          p2: practitioner(id: $p2) { ...day }
          business(id: $business) {
            appointments(first: 10, filter: {localDate: $day, businessId: $business}) {
              totalCount
            }
          }
        }
        fragment day on Practitioner {
          appointments(first: 10, filter: {localDate: $day, businessId: $business}) {
            nodes { clinikoId startsAtLocal }
          }
        }""",
        {
            "day": case.day,
            "business": business,
            "p0": clinic.refs["practitioner_id"],
            "p1": others[0],
            "p2": others[1],
        },
    )
    assert "errors" not in body, body
    data = body["data"]
    assert data["business"]["appointments"]["totalCount"] == 6
    booked = data["p0"]["appointments"]["nodes"]
    assert {n["clinikoId"] for n in booked} == set(inside[case.day])
    assert all(n["startsAtLocal"].startswith(case.day + "T") for n in booked)
    assert data["p1"]["appointments"]["nodes"] == data["p2"]["appointments"]["nodes"] == []
    # business(id:), both filters' zone and the nodes' local times: one business lookup.
    assert clinic.gw.routes()["GET /v1/businesses"] == 1
