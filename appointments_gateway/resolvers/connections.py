"""Appointment connections: which page of which list, and its rows' relations.

Three fields answer with a page of appointments, and each comes here:

* the root ``appointments(filter, orderBy, …)``: :func:`appointments`;
* ``Patient``/``Practitioner``/``Business.appointments``: :func:`of_parent`, through the
  children loader, so the same field under many parents shares one combined list call
  where it can (``children.py``);
* ``Appointment.repeats``: :func:`repeats`, with no call at all when the row says the
  appointment starts no series.

The page itself comes from ``lists.py`` (cursors and page requests: ``pagination.py``).
Its rows are remembered by the appointments loader, so a later lookup of one of them by
id costs nothing, and their selected relations are prefetched in one batch each
(``prefetch.py``).  Cursor drift is noted on the context for ``extensions.pagination``.
A filter's ``localDate`` becomes ``startsAt`` bounds here, before the page is planned
(``local_time.py``), so cursors are scoped by the bounds the page really used.
"""

from __future__ import annotations

from dataclasses import dataclass

from appointments_gateway.resolvers.children import ChildrenKey
from appointments_gateway.resolvers.context import Context
from appointments_gateway.resolvers.criteria import AppointmentCriteria, OrderKey
from appointments_gateway.resolvers.lists import appointments_page
from appointments_gateway.resolvers.loaders import Loaders
from appointments_gateway.resolvers.local_time import local_day
from appointments_gateway.resolvers.pagination import ConnectionArgs, Slice, scope_key
from appointments_gateway.resolvers.prefetch import Prefetched, Wanted, prefetch
from appointments_gateway.upstream import AppointmentRecord

__all__ = ["ConnectionWants", "Page", "appointments", "of_parent", "repeats"]


@dataclass(frozen=True, slots=True)
class ConnectionWants:
    """What a query selects on a connection that costs fetching.

    ``nodes``: what is selected on its appointments (``nodes`` and ``edges.node``).
    ``rows``: anything but ``totalCount`` is selected, so the rows themselves are needed
    (``totalCount`` alone costs one ``per_page=1`` request).  ``total``: ``totalCount``
    is selected.
    """

    nodes: Wanted
    rows: bool
    total: bool


@dataclass(frozen=True, slots=True)
class Page:
    """One connection page: the window, and its rows with their relations prefetched."""

    window: Slice[AppointmentRecord]
    prefetched: Prefetched


async def appointments(
    context: Context, criteria: AppointmentCriteria, wants: ConnectionWants, args: ConnectionArgs
) -> Page:
    """The root ``appointments`` field: one page of the appointments matching ``criteria``."""
    criteria = await local_day(context.loaders, criteria)
    return await _page(context, criteria, wants, args, ("appointments",))


async def repeats(
    context: Context, record: AppointmentRecord, wants: ConnectionWants, args: ConnectionArgs
) -> Page:
    """The repeats of a series' first appointment; no call when the row says it has none."""
    criteria = AppointmentCriteria(repeated_from_id=record.id, order=(OrderKey("starts_at"),))
    scope = ("repeats", record.id)
    return await _page(context, criteria, wants, args, scope, has_rows=record.has_repeats)


async def of_parent(
    context: Context,
    column: str,
    parent_id: str,
    criteria: AppointmentCriteria,
    wants: ConnectionWants,
    args: ConnectionArgs,
) -> Page:
    """The appointments of one patient, practitioner or business (``column``: its id's).

    Goes through the children loader, so the same field under many parents is served
    by one combined list call where it can be (``children.py``).  A local day is resolved
    first: every parent asks the loader for the same business, so that costs one lookup.
    """
    criteria = await local_day(context.loaders, criteria)
    window = await context.loaders.children.load(
        ChildrenKey(
            column, parent_id, criteria, args, need_items=wants.rows, need_total=wants.total
        )
    )
    context.note_page(window)
    return await _with_relations(context.loaders, window, wants.nodes)


async def _page(
    context: Context,
    criteria: AppointmentCriteria,
    wants: ConnectionWants,
    args: ConnectionArgs,
    scope: tuple[object, ...],
    *,
    has_rows: bool = True,
) -> Page:
    window = await appointments_page(
        context.upstream,
        criteria,
        args,
        scope=scope_key(*criteria.scope(*scope)),
        need_items=wants.rows,
        has_rows=has_rows,
        local=context.local,
    )
    context.note_page(window)
    return await _with_relations(context.loaders, window, wants.nodes)


async def _with_relations(
    loaders: Loaders, window: Slice[AppointmentRecord], wanted: Wanted
) -> Page:
    records = [edge.node for edge in window.edges]
    for record in records:
        loaders.appointments.remember(record.id, record)
    if not records:
        return Page(window, Prefetched(records, loaders))
    return Page(window, await prefetch(loaders, records, wanted))
