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
    Catalog,
    Row,
    bounds,
    filters,
    inside,
    instants,
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


def catalog_of(gw: Replicated, *, now: bool = False) -> Catalog:
    """The rows filters are drawn from: as they were at the first example.

    Hypothesis requires that the same choices draw the same structure, so what examples
    draw from must not change between them (lengths of lists sampled from, above all);
    ``now``: as they are now, for predicates that draw nothing.  The coverage only grows
    at its upper end within two hours, so the first example's is still inside it.
    """
    coverage = gw.replica.coverage
    assert coverage is not None
    if now:
        return Catalog.read(gw.sandbox, coverage)
    if "catalog" not in gw.memo:
        gw.memo["catalog"] = Catalog.read(gw.sandbox, coverage)
    catalog: Catalog = gw.memo["catalog"]
    return catalog


def expect_hit(catalog: Catalog, filter_: dict[str, Any]) -> bool:
    """Whether the replica must answer this filter itself (``local.py``'s candidates).

    A ``startsAt`` range inside the coverage, or ids all held (rows of the coverage, as
    ``catalog`` has them now).  Patients read whole are the nested tests' business.
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


@settings(PROPERTY, max_examples=45)
@given(data=st.data())
async def test_a_page_is_the_upstream_page(gw: Replicated, data: st.DataObject) -> None:
    """Filters, orders, ``first`` and ``last``: the replica's page is the upstream's."""
    catalog = catalog_of(gw)
    # Mostly ranges the replica can serve; the rest read through, and must match too.
    shape = data.draw(st.sampled_from(("inside", "inside", "inside", "any", "no range")))
    filter_ = data.draw(filters(catalog, starts=shape != "no range", both=shape == "inside"))
    window = data.draw(
        st.sampled_from(("first", "last", "neither")).flatmap(
            lambda kind: (
                st.just({}) if kind == "neither" else st.integers(1, 60).map(lambda n: {kind: n})
            )
        )
    )
    variables = {"filter": filter_, "orderBy": data.draw(orders()), **window}
    await same(gw, LIST, variables, hit=expect_hit(catalog, filter_))


@settings(PROPERTY, max_examples=25)
@given(data=st.data())
async def test_walking_with_cursors_reads_the_upstream_pages(
    gw: Replicated, data: st.DataObject
) -> None:
    """``first``+``after`` to the end, and ``last``+``before`` back to the start."""
    catalog = catalog_of(gw)
    filter_ = data.draw(filters(catalog, both=True, spans=SHORT_SPANS, extra=0.3))
    order = data.draw(orders())
    hit = expect_hit(catalog, filter_)
    first = await same(gw, LIST, {"filter": filter_, "orderBy": order, "first": 1}, hit=hit)
    total = first["appointments"]["totalCount"]
    pages = data.draw(st.integers(1, 5))
    size = max(1, math.ceil(total / pages))
    forward = data.draw(st.booleans())
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


@settings(PROPERTY, max_examples=20)
@given(data=st.data())
async def test_practitioners_appointments_below_a_page(gw: Replicated, data: st.DataObject) -> None:
    """``practitioner { appointments(first: n, filter: {startsAt: …}) }`` under a page.

    Several parents ask the same question, so the gateway combines them into one list
    (``children.py``): from the replica when the inner range is inside it.
    """
    catalog = catalog_of(gw)
    outer = data.draw(filters(catalog, both=True, spans=SHORT_SPANS, extra=0.3))
    inner = data.draw(filters(catalog, both=True, extra=0.5))
    for name in ("practitionerIds", "ids"):
        inner.pop(name, None)  # the parent narrows it; ids would make it trivially small
    variables = {
        "first": data.draw(st.integers(1, 8)),
        "filter": outer,
        "innerFirst": data.draw(st.integers(1, 12)),
        "inner": inner,
        "innerOrder": data.draw(orders()),
    }
    hit = expect_hit(catalog, outer) and expect_hit(catalog, inner)
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


@settings(PROPERTY, max_examples=20)
@given(data=st.data())
async def test_patients_appointments_below_a_page(gw: Replicated, data: st.DataObject) -> None:
    """``patient { appointments(first: 5) }`` once those patients were read whole.

    A patient's appointments reach beyond the window (the replica reads them all), so the
    inner list has no ``startsAt`` range: the replica serves it from the patients it holds
    whole, with any other filter and order.
    """
    catalog = catalog_of(gw)
    rows = data.draw(st.lists(st.sampled_from(catalog.rows), min_size=1, max_size=4))
    patients = sorted({row.patient_id for row in rows})
    await read_whole(gw, patients)
    # The outer page: those patients, around one of their appointments.
    outer = data.draw(filters(catalog, near=rows[0], extra=0))
    outer["patientIds"] = patients
    inner = data.draw(filters(catalog, starts=False, extra=0.5))
    for name in ("patientIds", "ids"):
        inner.pop(name, None)
    variables = {
        "first": data.draw(st.integers(1, 10)),
        "filter": outer,
        "innerFirst": data.draw(st.sampled_from((1, 5, 20))),
        "inner": inner,
        "innerOrder": data.draw(orders()),
    }
    await same(gw, PATIENTS_BELOW, variables, hit=expect_hit(catalog, outer))


# --- after outside edits ---------------------------------------------------------------


EDITS = ("notes", "starts_at", "practitioner", "cancel", "archive", "create", "delete")


def whole_second(value: datetime) -> str:
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@st.composite
def edits(draw: st.DrawFn, catalog: Catalog) -> tuple[Row, str, str, dict[str, Any] | None]:
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


@settings(PROPERTY, max_examples=25)
@given(data=st.data())
async def test_after_outside_edits_the_replica_still_answers_as_upstream(
    gw: Replicated, data: st.DataObject
) -> None:
    """Random web-app edits, a poll, then a read: still the upstream path's answer.

    Notes, start times (inside the window and out of it), practitioners, cancellations,
    archives, creations and soft deletions; the read is drawn around the last edited row
    half of the time, so it sees the change.
    """
    catalog = catalog_of(gw)
    near: Row | None = None
    done = None
    drawn = data.draw(st.lists(edits(catalog), min_size=1, max_size=3))
    for row, method, path, body in drawn:
        note(f"edit: {method} {path} {body}")
        response = await gw.web.request(method, f"/_sandbox/webapp/a/{path}", json=body)
        if response.status_code == 404:
            continue  # an earlier edit archived or deleted the row: the web app refuses
        assert response.status_code in (200, 201, 204), response.text
        done = datetime.now(UTC).timestamp()
        near = row
        if response.status_code != 204:
            answered = response.json()
            near = replace(row, id=str(answered["id"]), starts_at=parse(answered["starts_at"]))
    if done is not None:
        await gw.polled_after(done)
    now = catalog_of(gw, now=True)
    # The read is drawn around the last edited row (its new start) half of the time.
    filter_ = data.draw(filters(catalog, both=data.draw(st.booleans()), near=near or drawn[-1][0]))
    window = {data.draw(st.sampled_from(("first", "last"))): data.draw(st.integers(1, 40))}
    variables = {"filter": filter_, "orderBy": data.draw(orders()), **window}
    await same(gw, LIST, variables, hit=expect_hit(now, filter_))
    current = next((r for r in now.rows if near is not None and r.id == near.id), None)
    if current is not None:
        # The edited row by id: from the replica, as the upstream has it.
        by_id = f"query($id: ID!) {{ appointment(id: $id) {{ ...Row }} }} {ROW}"
        await same(gw, by_id, {"id": current.id}, hit=True)
