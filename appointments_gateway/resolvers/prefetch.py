"""The calendar's batching: each relation a batch of appointments selects, in one call.

A calendar of 100 appointments with their patients, practitioners, businesses and types
costs 5 upstream requests instead of 401 because of this module (PERFORMANCE.md §9).
Whatever produces a batch of appointments (a connection page, a node lookup, a
mutation's payload) hands the rows here with what the query selects below them
(:class:`Wanted`, read off the query by ``schema/selection.py``), and :func:`prefetch`
loads each selected relation for *all* of them at once: one ``get_many`` per relation,
so one ``q[]=id:=…`` list call per 100 distinct ids, every relation concurrently.

* A relation selected only for ``id``/``clinikoId`` is answered from the link in the row:
  no call at all (:attr:`Wanted.links`).
* An appointment relation (``repeatedFrom``) is prefetched in turn, with what the query
  selects below it, so its own relations are batched as well.
* ``hasConflicts`` has no batch form upstream; its per-appointment calls are started in
  the same round as the lookups.
* A relation whose lookup fails with a ``GatewayError`` fails that field only; the other
  relations and the appointments themselves are unaffected.

The result (:class:`Prefetched`) holds records, not GraphQL objects: ``schema/types.py``
builds the objects from it, so a relation field is a sync read of what is already here.
A relation the look-ahead did not foresee still resolves, through
:func:`load_related` (the same loaders, so still batched per tick).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from appointments_gateway.resolvers.errors import GatewayError, NotFound
from appointments_gateway.resolvers.loaders import Loaders
from appointments_gateway.resolvers.relations import RELATIONS, Relation
from appointments_gateway.upstream import AppointmentRecord

__all__ = ["NOTHING", "Prefetched", "Wanted", "load_related", "missing_link", "prefetch"]


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a query selects on some appointments that costs fetching.

    ``rows``: the relations whose records are selected beyond their id, each with what is
    selected below it when its records are appointments (``None`` otherwise: what is
    below a patient, say, resolves on its own).  ``links``: relations selected for their
    id only.  ``conflicts``: ``hasConflicts`` is selected.
    """

    rows: Mapping[str, Wanted | None] = field(default_factory=dict)
    links: frozenset[str] = frozenset()
    conflicts: bool = False


#: Nothing beyond the appointments' own fields.
NOTHING = Wanted()


@dataclass(slots=True)
class Prefetched:
    """A batch of appointments and the related records the query selected, per relation.

    ``rows``: relation → ``{id: record}`` (an id the upstream lacks is absent).
    ``nested``: for an appointment relation, the linked appointments, prefetched in turn.
    ``links``: relations to answer from the link alone.  ``errors``: relations whose
    lookup failed.  ``loaders``: for relations nobody foresaw.
    """

    records: Sequence[AppointmentRecord]
    loaders: Loaders
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    nested: dict[str, Prefetched] = field(default_factory=dict)
    links: frozenset[str] = frozenset()
    errors: dict[str, GatewayError] = field(default_factory=dict)


async def prefetch(
    loaders: Loaders, records: Sequence[AppointmentRecord], wanted: Wanted
) -> Prefetched:
    """``records`` with every relation ``wanted`` selects loaded in one batch each."""
    if wanted.conflicts:
        # Start the /conflicts calls now, in the same round as the relation lookups;
        # each hasConflicts field then awaits its own cached future.
        for record in records:
            loaders.conflicts.load(record.id)
    prefetched = Prefetched(records, loaders, links=wanted.links)
    pending: list[tuple[Relation, Awaitable[dict[str, Any]]]] = []
    for relation in RELATIONS:
        if relation.name not in wanted.rows:
            continue
        ids = sorted({i for r in records if (i := getattr(r, relation.attribute)) is not None})
        if ids:
            pending.append((relation, _keyed(ids, loaders.of(relation).get_many(ids))))
    if not pending:
        return prefetched
    outcomes = await asyncio.gather(*(job for _, job in pending), return_exceptions=True)
    for (relation, _), outcome in zip(pending, outcomes, strict=True):
        if isinstance(outcome, GatewayError):
            prefetched.errors[relation.name] = outcome
        elif isinstance(outcome, BaseException):
            raise outcome
        elif relation.is_appointment:
            below = wanted.rows[relation.name] or NOTHING
            prefetched.nested[relation.name] = await prefetch(
                loaders, list(outcome.values()), below
            )
        else:
            prefetched.rows[relation.name] = outcome
    return prefetched


async def _keyed(ids: list[str], loading: Awaitable[list[Any]]) -> dict[str, Any]:
    rows = await loading
    return {i: row for i, row in zip(ids, rows, strict=True) if row is not None}


_BY_NAME = {relation.name: relation for relation in RELATIONS}


async def load_related(loaders: Loaders, relation: str, raw_id: str) -> Any:
    """The record ``relation`` links to, for a field the look-ahead did not foresee."""
    record = await loaders.of(_BY_NAME[relation]).get(raw_id)
    if record is None:
        raise missing_link(relation)
    return record


def missing_link(relation: str) -> NotFound:
    """The error of a relation whose record the upstream does not have."""
    return NotFound(f"The linked {relation} was not found.")
