"""A read answered from the replica is the upstream path's answer, byte for byte in ``data``.

Each property runs a generated document twice against one gateway: as a normal read (the
replica answers when the read is wholly inside it) and with ``Cache-Control: no-cache``
(the upstream path, as with sync off).  ``data`` must be identical: rows, their order with
the id tie-breaker, ``totalCount``, cursors and ``pageInfo``, and every related row.
Where the read is inside the replica (a ``startsAt`` range with both bounds inside its
coverage, or ids it all holds, or patients it holds whole) the normal read must also cost
no upstream request and say ``freshness.source == "replica"``; a read that is not inside
must still be identical (it reads through).

Filters are drawn from the sandbox's real rows (``strategies.py``), windows walk with the
cursors they return, and the last property makes random outside edits through the web-app
door before each read, waiting for a poll (not a fixed time) so the replica has seen them.

Examples are derandomised: the data lies around this week's Monday, so a week's runs are
reproducible, and the next week's runs explore other rows.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from .conftest import Answer, Replicated, eventually
from .strategies import (
    SHORT_SPANS,
    SPANS,
    Catalog,
    Row,
    bounds,
    demo_catalog,
    filters,
    inside,
    instants,
    iso,
    orders,
    parse,
)

PROPERTY = settings(
    deadline=None,
    derandomize=True,
    database=None,
    # One gateway (and one loaded replica) serves every example of a test: loading one
    # per example would cost more than the examples.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ROW = """
fragment Row on Appointment {
  id clinikoId startsAt endsAt createdAt updatedAt status notes patientName
  didNotArrive patientArrived cancelledAt archivedAt deletedAt
  cancellation { reasonCode description note cancelledAt }
  repeatRule { repeatType repeatingInterval numberOfRepeats }
  patient { id firstName lastName archivedAt }
  practitioner { id displayName active }
  business { id businessName }
  appointmentType { id name durationInMinutes }
  patientCase { id name }
}
"""
LIST = (
    """
query List($first: Int, $after: String, $last: Int, $before: String,
           $filter: AppointmentFilter, $orderBy: [AppointmentOrder!]) {
  appointments(first: $first, after: $after, last: $last, before: $before,
               filter: $filter, orderBy: $orderBy) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { ...Row } }
  }
}
"""
    + ROW
)
PRACTITIONERS_BELOW = """
query Nested($first: Int, $filter: AppointmentFilter, $innerFirst: Int,
             $inner: AppointmentFilter, $innerOrder: [AppointmentOrder!]) {
  appointments(first: $first, filter: $filter) {
    totalCount
    edges { cursor node {
      id startsAt
      practitioner {
        id displayName
        appointments(first: $innerFirst, filter: $inner, orderBy: $innerOrder) {
          totalCount
          pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
          edges { cursor node { id startsAt endsAt status notes patient { id lastName } } }
        }
      }
      business {
        id
        appointments(first: $innerFirst, filter: $inner, orderBy: $innerOrder) {
          totalCount
          pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
          edges { cursor node { id startsAt practitioner { id } } }
        }
      }
    } }
  }
}
"""
PATIENTS_BELOW = """
query Nested($first: Int, $filter: AppointmentFilter, $innerFirst: Int,
             $inner: AppointmentFilter, $innerOrder: [AppointmentOrder!]) {
  appointments(first: $first, filter: $filter) {
    totalCount
    edges { cursor node {
      id startsAt
      patient {
        id firstName
        appointments(first: $innerFirst, filter: $inner, orderBy: $innerOrder) {
          totalCount
          pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
          edges { cursor node { id startsAt status cancelledAt practitioner { id } } }
        }
      }
    } }
  }
}
"""
PATIENT_READ = "query($id: ID!) { patient(id: $id) { appointments(first: 1) { totalCount } } }"


def live(gw: Replicated, *, again: bool = False) -> Catalog:
    """The gateway's sandbox rows inside its replica's coverage: what a hit is judged by.

    Read once per gateway; ``again`` after the test has edited them.
    """
    if again or "live" not in gw.memo:
        coverage = gw.replica.coverage
        assert coverage is not None
        gw.memo["live"] = Catalog.read(gw.sandbox, coverage)
    catalog: Catalog = gw.memo["live"]
    return catalog


def expect_hit(catalog: Catalog, filter_: dict[str, Any]) -> bool:
    """Whether the replica must answer this filter itself (``local.py``'s candidates).

    A ``startsAt`` range inside the coverage, or ids all held (rows of the coverage, as
    the ``live`` catalog has them).  Patients read whole are the nested tests' business.
    """
    low, high = bounds(filter_.get("startsAt"))
    held = {row.id for row in catalog.rows}
    return inside(catalog, low, high) or ("ids" in filter_ and set(filter_["ids"]) <= held)


def check_source(answer: Answer, hit: bool, document: str) -> None:
    if hit:
        assert answer.source == "replica", (answer.body["extensions"], document)
        assert answer.requests == 0, (answer.body["extensions"], document)


async def same(
    gw: Replicated, document: str, variables: dict[str, Any], *, hit: bool
) -> dict[str, Any]:
    """Run both paths; identical ``data``; the replica's when ``hit``; the normal answer."""
    note(f"variables: {variables}")
    local, upstream = await gw.both(document, variables)
    assert upstream.requests > 0 or upstream.data is None or upstream.errors
    check_source(local, hit, document)
    # Shown by --hypothesis-show-statistics: how many examples were served locally, and
    # how many found rows at all (an empty answer proves little).
    event(f"source: {local.source}, predicted hit: {hit}")
    edges = ((local.data or {}).get("appointments") or {}).get("edges")
    if edges is not None:
        event("rows: some" if edges else "rows: none")
    data: dict[str, Any] = local.data
    return data


async def walk(
    gw: Replicated, variables: dict[str, Any], *, forward: bool, hit: bool, most: int
) -> int:
    """Walk the whole list page by page with the returned cursors; the pages walked."""
    cursor: str | None = None
    for page in range(1, most + 1):
        window = {"after": cursor} if forward else {"before": cursor}
        data = await same(gw, LIST, {**variables, **window}, hit=hit)
        info = data["appointments"]["pageInfo"]
        more = info["hasNextPage"] if forward else info["hasPreviousPage"]
        if not more:
            return page
        cursor = info["endCursor"] if forward else info["startCursor"]
        assert cursor is not None
    raise AssertionError(f"the walk did not reach the end in {most} pages")


@st.composite
def windows(draw: st.DrawFn) -> dict[str, int]:
    kind = draw(st.sampled_from(("first", "last", "neither")))
    return {} if kind == "neither" else {kind: draw(st.integers(1, 60))}


@st.composite
def page_reads(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly ranges the replica can serve; the rest read through, and must match too."""
    catalog = demo_catalog()
    shape = draw(st.sampled_from(("inside", "inside", "inside", "any", "no range")))
    filter_ = draw(filters(catalog, starts=shape != "no range", both=shape == "inside", extra=0.45))
    return {"filter": filter_, "orderBy": draw(orders()), **draw(windows())}


@settings(PROPERTY, max_examples=45)
@given(variables=page_reads())
async def test_a_page_is_the_upstream_page(gw: Replicated, variables: dict[str, Any]) -> None:
    """Filters, orders, ``first`` and ``last``: the replica's page is the upstream's."""
    await same(gw, LIST, variables, hit=expect_hit(live(gw), variables["filter"]))


@settings(PROPERTY, max_examples=25)
@given(
    filter_=filters(demo_catalog(), both=True, spans=SHORT_SPANS, extra=0.2),
    order=orders(),
    pages=st.integers(1, 5),
    forward=st.booleans(),
)
async def test_walking_with_cursors_reads_the_upstream_pages(
    gw: Replicated,
    filter_: dict[str, Any],
    order: list[dict[str, str]] | None,
    pages: int,
    forward: bool,
) -> None:
    """``first``+``after`` to the end, or ``last``+``before`` back to the start."""
    hit = expect_hit(live(gw), filter_)
    first = await same(gw, LIST, {"filter": filter_, "orderBy": order, "first": 1}, hit=hit)
    total = first["appointments"]["totalCount"]
    size = max(1, math.ceil(total / pages))
    note(f"total={total} size={size} forward={forward}")
    key = "first" if forward else "last"
    walked = await walk(
        gw,
        {"filter": filter_, "orderBy": order, key: size},
        forward=forward,
        hit=hit,
        most=pages + 1,
    )
    assert walked == max(1, math.ceil(total / size))


@st.composite
def practitioner_reads(draw: st.DrawFn) -> dict[str, Any]:
    catalog = demo_catalog()
    inner = draw(filters(catalog, both=True, extra=0.5))
    for name in ("practitionerIds", "businessIds", "ids"):
        inner.pop(name, None)  # the parent narrows it; ids would make it trivially small
    return {
        "first": draw(st.integers(1, 8)),
        "filter": draw(filters(catalog, both=True, spans=SHORT_SPANS, extra=0.3)),
        "innerFirst": draw(st.integers(1, 12)),
        "inner": inner,
        "innerOrder": draw(orders()),
    }


@settings(PROPERTY, max_examples=20)
@given(variables=practitioner_reads())
async def test_practitioners_appointments_below_a_page(
    gw: Replicated, variables: dict[str, Any]
) -> None:
    """``practitioner { appointments(first: n, filter: {startsAt: …}) }`` under a page.

    Several parents ask the same question, so the gateway combines them into one list
    (``children.py``): from the replica when the inner range is inside it.  The page's
    businesses ask it too.
    """
    catalog = live(gw)
    hit = expect_hit(catalog, variables["filter"]) and expect_hit(catalog, variables["inner"])
    await same(gw, PRACTITIONERS_BELOW, variables, hit=hit)


async def read_whole(gw: Replicated, patients: list[str]) -> None:
    """Have the replica hold these patients' appointments whole (it reads them on demand)."""
    replica = gw.replica
    wanted = [p for p in patients if p not in replica.complete_patients]
    if not wanted:
        return
    for patient in wanted:
        asked = await gw.query(PATIENT_READ, {"id": patient})
        assert not asked.errors, asked.errors

    async def whole() -> bool | None:
        return True if all(p in replica.complete_patients for p in patients) else None

    await eventually(whole, within=5.0, what="the replica reading the patients whole")


@st.composite
def patient_reads(draw: st.DrawFn) -> dict[str, Any]:
    """A page of a few patients' appointments around one of them, each with its own list."""
    catalog = demo_catalog()
    rows = draw(st.lists(st.sampled_from(catalog.rows), min_size=1, max_size=4))
    outer = draw(filters(catalog, near=rows[0], extra=0))
    outer["patientIds"] = sorted({row.patient_id for row in rows})
    inner = draw(filters(catalog, starts=False, extra=0.5))
    for name in ("patientIds", "ids"):
        inner.pop(name, None)
    return {
        "first": draw(st.integers(1, 10)),
        "filter": outer,
        "innerFirst": draw(st.sampled_from((1, 5, 20))),
        "inner": inner,
        "innerOrder": draw(orders()),
    }


@settings(PROPERTY, max_examples=20)
@given(variables=patient_reads())
async def test_patients_appointments_below_a_page(
    gw: Replicated, variables: dict[str, Any]
) -> None:
    """``patient { appointments(first: 5) }`` once those patients were read whole.

    A patient's appointments reach beyond the window (the replica reads them all), so the
    inner list has no ``startsAt`` range: the replica serves it from the patients it holds
    whole, with any other filter and order, and the outer page too (its patients are
    held whole, whatever its range).
    """
    await read_whole(gw, variables["filter"]["patientIds"])
    await same(gw, PATIENTS_BELOW, variables, hit=True)


# --- after outside edits ---------------------------------------------------------------


EDITS = ("notes", "starts_at", "practitioner", "cancel", "archive", "create", "delete")


def whole_second(value: datetime) -> str:
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


Edit = tuple[Row, str, str, dict[str, Any] | None]


@st.composite
def edits(draw: st.DrawFn, catalog: Catalog) -> Edit:
    """One outside edit: the row it is about, ``(method, path, body)`` under the door."""
    kind = draw(st.sampled_from(EDITS))
    target = draw(st.sampled_from(catalog.writable))
    row = next(r for r in catalog.rows if r.id == target)
    path = f"individual_appointments/{target}"
    if kind == "notes":
        return row, "PATCH", path, {"notes": draw(st.text(max_size=20))}
    if kind == "starts_at":
        lo, hi = catalog.coverage
        when = draw(
            st.one_of(
                instants(catalog),
                st.sampled_from((hi + timedelta(days=3), lo - timedelta(days=3))),
            )
        )
        return row, "PATCH", path, {"starts_at": whole_second(when)}
    if kind == "practitioner":
        body = {"practitioner_id": draw(st.sampled_from(catalog.practitioners))}
        return row, "PATCH", path, body
    if kind == "cancel":
        return row, "POST", f"{path}/cancel", {"cancellation_note": "Rang to cancel"}
    if kind == "archive":
        return row, "POST", f"{path}/archive", None
    if kind == "delete":
        return row, "DELETE", path, None
    body = {
        "patient_id": row.patient_id,
        "practitioner_id": draw(st.sampled_from(catalog.practitioners)),
        "appointment_type_id": row.appointment_type_id,
        "business_id": row.business_id,
        "starts_at": whole_second(draw(instants(catalog))),
        "notes": "Booked at the front desk",
    }
    return row, "POST", "individual_appointments", body


@st.composite
def edit_reads(
    draw: st.DrawFn,
) -> tuple[list[Edit], tuple[str, timedelta, str, timedelta] | None, dict[str, Any]]:
    """Up to three edits, then a read: around the last edited row half of the time.

    Where the edited row will start is known only once the edits are made, so the range
    around it is drawn as offsets (``around``) and placed then.
    """
    catalog = demo_catalog()
    changes = draw(st.lists(edits(catalog), min_size=1, max_size=3))
    around = None
    if draw(st.booleans()):
        around = (
            draw(st.sampled_from(("gt", "gte"))),
            draw(st.sampled_from(SPANS)),
            draw(st.sampled_from(("lt", "lte"))),
            draw(st.sampled_from(SPANS)),
        )
    filter_ = draw(filters(catalog, starts=around is None, both=draw(st.booleans()), extra=0.4))
    window = {draw(st.sampled_from(("first", "last"))): draw(st.integers(1, 40))}
    return changes, around, {"filter": filter_, "orderBy": draw(orders()), **window}


@settings(PROPERTY, max_examples=25)
@given(plan=edit_reads())
async def test_after_outside_edits_the_replica_still_answers_as_upstream(
    gw: Replicated,
    plan: tuple[list[Edit], tuple[str, timedelta, str, timedelta] | None, dict[str, Any]],
) -> None:
    """Random web-app edits, a poll, then a read: still the upstream path's answer.

    Notes, start times (inside the window and out of it), practitioners, cancellations,
    archives, creations and soft deletions.  Edits of one example apply to the state the
    earlier examples left (a row archived or deleted by then is refused by the web app,
    and skipped).
    """
    changes, around, variables = plan
    near: Row | None = None
    done = None
    for row, method, path, body in changes:
        note(f"edit: {method} {path} {body}")
        response = await gw.web.request(method, f"/_sandbox/webapp/a/{path}", json=body)
        if response.status_code == 404:
            continue  # archived or deleted by an earlier edit: the web app refuses
        assert response.status_code in (200, 201, 204), response.text
        done = datetime.now(UTC).timestamp()
        near = row
        if response.status_code != 204:
            answered = response.json()
            near = replace(row, id=str(answered["id"]), starts_at=parse(answered["starts_at"]))
    if done is not None:
        await gw.polled_after(done)
    if around is not None:
        anchor = (near or changes[-1][0]).starts_at
        low, below, high, above = around
        starts = {low: iso(anchor - below), high: iso(anchor + above)}
        variables = {**variables, "filter": {**variables["filter"], "startsAt": starts}}
    catalog = live(gw, again=True)
    await same(gw, LIST, variables, hit=expect_hit(catalog, variables["filter"]))
    current = next((r for r in catalog.rows if near is not None and r.id == near.id), None)
    if current is not None:
        # The edited row by id: from the replica, as the upstream has it.
        by_id = f"query($id: ID!) {{ appointment(id: $id) {{ ...Row }} }} {ROW}"
        await same(gw, by_id, {"id": current.id}, hit=True)
