"""The suite: each operation's documents, variables, and its upstream lower bound.

An operation is what one screen or job does; it may send several GraphQL requests
(the walk sends 10, create-then-read 2).  Its *lower bound* is derived from the data it
returned, by these rules (Cliniko's API: lists of at most 100 rows per page; a list
filtered ``q[]=id:=a,b,…`` fetches up to 100 records of one resource in one request;
``/practitioners`` lists active practitioners only, inactive ones need
``/practitioners/inactive``; conflicts have no batch form):

* a page of at most 100 rows: 1 request (a 50-row page aligned on 50: 1);
* each related resource with at least one linked record whose selection needs more than
  its id: ceil(distinct ids / 100) requests, +1 for practitioners when one is inactive;
  a relation selected only for ``id`` needs no request (the link is in the row);
* a record by id: 1; ``hasConflicts``: 1 per appointment; a connection under a record:
  1 when it has rows; under N parents in one query: the fewest of one combined list's
  pages (enough pages to hold every parent's window) or one request per parent.

*Rounds* are the levels of that plan which must wait for an earlier answer (the list,
then everything it links to, in parallel): the critical-path bound is rounds x upstream
latency.  Both bounds are what ideal batching could do; neither is read from the gateway.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

__all__ = ["OPERATIONS", "Bound", "Fixture", "Operation", "Sender", "document"]

OPERATIONS_DIR = Path(__file__).parent / "operations"
PAGE = 100


def document(name: str) -> str:
    return (OPERATIONS_DIR / f"{name}.graphql").read_text()


class Sender(Protocol):
    """Sends one GraphQL request; returns ``data`` (raises on any GraphQL error)."""

    def __call__(self, doc: str, variables: dict[str, Any]) -> Awaitable[dict[str, Any]]: ...


@dataclass(frozen=True)
class Bound:
    requests: int
    rounds: int


@dataclass
class Fixture:
    """Ids and instants the operations use, picked from the demo data before measuring."""

    now: str
    detail_id: str = ""
    patient_id: str = ""
    node_ids: list[str] = field(default_factory=list)
    #: For create-then-read: global ids of a patient, practitioner, business and type.
    booking: dict[str, str] = field(default_factory=dict)
    creates: int = 0


@dataclass(frozen=True)
class Operation:
    name: str
    title: str
    run: Callable[[Sender, Fixture], Awaitable[list[dict[str, Any]]]]
    bound: Callable[[list[dict[str, Any]]], Bound]
    requires: str | None = None  # a Mutation field the schema must have
    note: str = ""


def _pages(rows: int, per_page: int = PAGE) -> int:
    return max(1, math.ceil(rows / per_page))


def _relation_calls(nodes: Iterable[dict[str, Any]], relation: str) -> int:
    """Requests ideal batching needs for ``relation`` over ``nodes``."""
    linked = [n[relation] for n in nodes if n.get(relation) is not None]
    if not linked or set(linked[0]) <= {"id", "clinikoId", "__typename"}:
        return 0
    calls = _pages(len({r["id"] for r in linked}))
    if relation == "practitioner" and any(r.get("active") is False for r in linked):
        calls += 1
    return calls


def _nodes(connection: dict[str, Any]) -> list[dict[str, Any]]:
    if "edges" in connection:
        return [edge["node"] for edge in connection["edges"]]
    nodes: list[dict[str, Any]] = connection["nodes"]
    return nodes


def _list_with_relations(
    nodes: Sequence[dict[str, Any]], relations: Sequence[str], *, rows: int
) -> Bound:
    related = sum(_relation_calls(nodes, r) for r in relations)
    return Bound(requests=_pages(rows) + related, rounds=2 if related else 1)


# -- the calendar, ids-only -------------------------------------------------------------

_FOUR = ("patient", "practitioner", "business", "appointmentType")


async def _calendar(send: Sender, fx: Fixture) -> list[dict[str, Any]]:
    return [await send(document("calendar"), {"from": fx.now})]


def _calendar_bound(responses: list[dict[str, Any]]) -> Bound:
    nodes = _nodes(responses[0]["appointments"])
    return _list_with_relations(nodes, _FOUR, rows=len(nodes))


async def _ids_only(send: Sender, fx: Fixture) -> list[dict[str, Any]]:
    return [await send(document("ids_only"), {"from": fx.now})]


def _ids_only_bound(responses: list[dict[str, Any]]) -> Bound:
    return Bound(requests=_pages(len(_nodes(responses[0]["appointments"]))), rounds=1)


# -- the detail screen ------------------------------------------------------------------


async def _detail(send: Sender, fx: Fixture) -> list[dict[str, Any]]:
    return [await send(document("appointment_detail"), {"id": fx.detail_id})]


def _detail_bound(responses: list[dict[str, Any]]) -> Bound:
    a = responses[0]["appointment"]
    relations = (*_FOUR, "patientCase", "repeatedFrom")
    second = sum(_relation_calls([a], r) for r in relations)
    second += 1  # hasConflicts
    second += 1 if a["repeats"]["totalCount"] > 0 else 0
    return Bound(requests=1 + second, rounds=2)


# -- the patient screen -----------------------------------------------------------------


async def _patient(send: Sender, fx: Fixture) -> list[dict[str, Any]]:
    return [await send(document("patient_screen"), {"id": fx.patient_id, "now": fx.now})]


def _patient_bound(responses: list[dict[str, Any]]) -> Bound:
    patient = responses[0]["patient"]
    nodes = _nodes(patient["appointments"])
    related = sum(_relation_calls(nodes, r) for r in ("practitioner", "appointmentType"))
    # The patient and its appointment list both need only the id the client sent, so
    # they can go in the same round; the lookups wait for the list.
    return Bound(requests=1 + 1 + related, rounds=2 if related else 1)


# -- 20 appointments, each with its patient's next 3 -----------------------------------


async def _next3(send: Sender, fx: Fixture) -> list[dict[str, Any]]:
    return [await send(document("next_appointments"), {"from": fx.now})]


def next3_children_bound(combined: Sequence[str], parents: Sequence[str], first: int) -> int:
    """Fewest requests that give every parent its first ``first`` rows.

    ``combined`` is the parents' rows merged in the requested order, as parent ids: one
    combined list call serves all parents once it has fetched enough 100-row pages to
    hold each parent's window; the alternative is one request per parent.
    """
    wanted = {p: min(first, combined.count(p)) for p in set(parents)}
    seen: dict[str, int] = dict.fromkeys(wanted, 0)
    pages_needed = 1
    for position, parent in enumerate(combined):
        if all(seen[p] >= n for p, n in wanted.items()):
            break
        if parent in seen:
            seen[parent] += 1
        pages_needed = position // PAGE + 1
    return min(pages_needed, len(wanted))


def _next3_bound_with(combined: Sequence[str]) -> Callable[[list[dict[str, Any]]], Bound]:
    def bound(responses: list[dict[str, Any]]) -> Bound:
        nodes = _nodes(responses[0]["appointments"])
        parents = [n["patient"]["id"] for n in nodes if n["patient"] is not None]
        children = next3_children_bound(combined, parents, 3)
        patients = _pages(len(set(parents))) if parents else 0
        # list, patients, children; a combined children list of several pages learns
        # how many from its first page (total_entries), then fetches the rest at once.
        combined_pages = 1 < children < len(set(parents))
        return Bound(
            requests=_pages(len(nodes)) + patients + children, rounds=4 if combined_pages else 3
        )

    return bound


# -- nodes, the walk, create-then-read ---------------------------------------------------


async def _nodes_op(send: Sender, fx: Fixture) -> list[dict[str, Any]]:
    return [await send(document("nodes"), {"ids": fx.node_ids})]


def _nodes_bound(responses: list[dict[str, Any]]) -> Bound:
    found = [n for n in responses[0]["nodes"] if n is not None]
    by_type: dict[str, int] = {}
    for n in found:
        by_type[n["__typename"]] = by_type.get(n["__typename"], 0) + 1
    requests = sum(_pages(count) for count in by_type.values())
    if any(n["__typename"] == "Practitioner" and n.get("active") is False for n in found):
        requests += 1
    return Bound(requests=requests, rounds=1)


WALK_ROWS = 500
WALK_PAGE = 50


async def _walk(send: Sender, fx: Fixture) -> list[dict[str, Any]]:
    doc = document("walk_page")
    responses: list[dict[str, Any]] = []
    after: str | None = None
    for _ in range(WALK_ROWS // WALK_PAGE):
        data = await send(doc, {"from": fx.now, "after": after})
        responses.append(data)
        info = data["appointments"]["pageInfo"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    return responses


def _walk_bound(responses: list[dict[str, Any]]) -> Bound:
    rows = sum(len(_nodes(r["appointments"])) for r in responses)
    if rows != WALK_ROWS:
        raise AssertionError(f"The walk saw {rows} appointments, not {WALK_ROWS}.")
    # One list request per GraphQL page (a 50-row window aligned on 50 is one page of 50);
    # each page needs the previous one's cursor, so every page is its own round.
    return Bound(requests=len(responses), rounds=len(responses))


async def _create_then_read(send: Sender, fx: Fixture) -> list[dict[str, Any]]:
    fx.creates += 1
    # Far in the future (a year out, one slot per run) so the other operations' pages,
    # which start at "now", never see the bookings this operation makes.
    starts = datetime.fromisoformat(fx.now) + timedelta(days=365, minutes=15 * fx.creates)
    created = await send(
        document("create_appointment"),
        {
            "input": {
                **fx.booking,
                "startsAt": starts.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "notes": "benchmark booking",
            }
        },
    )
    payload = created["createAppointment"]
    if payload["userErrors"]:
        raise AssertionError(f"createAppointment refused the booking: {payload['userErrors']}")
    read = await send(document("read_appointment"), {"id": payload["appointment"]["id"]})
    return [created, read]


def _create_then_read_bound(responses: list[dict[str, Any]]) -> Bound:
    # The POST answers with the new row, so its relations need one lookup each (in
    # parallel); the read is another request for the row, then its relations again.
    created = responses[0]["createAppointment"]["appointment"]
    read = responses[1]["appointment"]
    lookups = sum(_relation_calls([created], r) for r in ("patient", "practitioner"))
    lookups += sum(_relation_calls([read], r) for r in ("patient", "practitioner"))
    return Bound(requests=2 + lookups, rounds=4)


def operations(next3_combined: Sequence[str]) -> list[Operation]:
    """The suite, in the order of the table."""
    return [
        Operation(
            "calendar",
            "calendar: 100 appointments + patient, practitioner, business, type",
            _calendar,
            _calendar_bound,
        ),
        Operation(
            "appointment_detail",
            "appointment detail: every field, relations, repeats, hasConflicts",
            _detail,
            _detail_bound,
        ),
        Operation(
            "patient_screen",
            "patient + last 10 appointments with practitioner and type",
            _patient,
            _patient_bound,
        ),
        Operation(
            "next_appointments",
            "20 appointments, each with its patient's next 3",
            _next3,
            _next3_bound_with(next3_combined),
        ),
        Operation("nodes", "nodes: 20 ids of 3 types", _nodes_op, _nodes_bound),
        Operation(
            "walk",
            "walk 500 appointments, first: 50 (10 requests)",
            _walk,
            _walk_bound,
        ),
        Operation("ids_only", "ids only: 100 appointment ids", _ids_only, _ids_only_bound),
        Operation(
            "create_then_read",
            "createAppointment, then read it back (2 requests)",
            _create_then_read,
            _create_then_read_bound,
            requires="createAppointment",
        ),
    ]


#: Kept for ``from bench.ops import OPERATIONS`` in docs: the names, in table order.
OPERATIONS = tuple(op.name for op in operations([]))


def upcoming_from(now: datetime) -> str:
    """``now`` rounded down to the minute, as the DateTime the operations send."""
    return now.astimezone(UTC).replace(second=0, microsecond=0).isoformat().replace("+00:00", "Z")
