"""Every read of the appointments list: the one place list rows come from upstream.

Two callers need list rows, and both come here:

* a connection page (the root ``appointments``, ``repeats``, and any parent's
  ``appointments`` that is not served from a combined list): :func:`appointments_page`
  turns the Relay window into the fewest page requests (``pagination.py``);
* the combined list of many parents (``children.py``): :func:`combined_rows` reads it
  whole when it is short enough, else its first page.

Both ask the credential's replica first (DESIGN.md §8, ``local.py``): a list it holds
whole is paginated in memory by the same ``paginate``, so the answer is the one the
upstream would give, at no request.  Rows by id come through the loaders instead
(``loaders.py``, which ask the replica too).
"""

from __future__ import annotations

import asyncio
import math

from appointments_gateway.replica import BY_START, ReplicaView, whole_patient
from appointments_gateway.resolvers.criteria import AppointmentCriteria
from appointments_gateway.resolvers.errors import BadUserInput, translate_upstream
from appointments_gateway.resolvers.local import InMemoryList, matching_rows
from appointments_gateway.resolvers.pagination import (
    MAX_PAGE_SIZE,
    ConnectionArgs,
    Fetch,
    Fetched,
    PageRequest,
    PaginationError,
    Slice,
    paginate,
)
from appointments_gateway.upstream import AppointmentRecord, ClinikoSession

__all__ = ["appointments_page", "combined_rows", "record_id"]


async def appointments_page(
    session: ClinikoSession,
    criteria: AppointmentCriteria,
    args: ConnectionArgs,
    *,
    scope: str,
    need_items: bool = True,
    has_rows: bool = True,
    local: ReplicaView | None = None,
) -> Slice[AppointmentRecord]:
    """The window ``args`` of the appointments matching ``criteria``.

    ``has_rows=False`` says the caller knows the list is empty (a series' first
    appointment whose row says it has no repeats): the page is answered with no call.
    ``local``: the credential's replica, asked first.
    """
    rows = None if local is None or not has_rows else matching_rows(local, criteria)
    if rows is None and local is not None and has_rows:
        rows = await _read_patient_whole(session, local, criteria)
    if rows is not None:
        return await _paginate(args, scope, InMemoryList(rows), need_items)
    filters = criteria.filters()

    async def fetch(request: PageRequest) -> Fetched[AppointmentRecord]:
        if not has_rows or criteria.matches_nothing:
            return Fetched(items=(), total_entries=0)
        with translate_upstream():
            page = await session.appointments.list(
                page=request.page,
                per_page=request.per_page,
                filters=filters,
                sort=criteria.sort(reverse=request.reverse),
            )
        return Fetched(items=page.items, total_entries=page.total_entries)

    return await _paginate(args, scope, fetch, need_items)


async def _paginate(
    args: ConnectionArgs, scope: str, fetch: Fetch[AppointmentRecord], need_items: bool
) -> Slice[AppointmentRecord]:
    try:
        return await paginate(
            **args._asdict(), scope=scope, fetch=fetch, key=record_id, need_items=need_items
        )
    except PaginationError as exc:
        raise BadUserInput(str(exc)) from None


async def _read_patient_whole(
    session: ClinikoSession, local: ReplicaView, criteria: AppointmentCriteria
) -> list[AppointmentRecord] | None:
    """One patient's list the replica lacks (a patient screen): read it whole, then answer.

    Every appointment of the patient, hidden ones included, in one page of 100: the
    request the page would have cost anyway, and the patient's next screens are local.
    A patient with more than 100 appointments is left to the sync, which reads every
    page in the background (this request is then spent for nothing, once).
    """
    patients = criteria.patient_ids
    if patients is None or len(patients) != 1 or not local.live():
        return None
    with translate_upstream():
        page = await session.appointments.list(
            page=1, per_page=MAX_PAGE_SIZE, filters=whole_patient(patients[0]), sort=BY_START
        )
    if page.total_entries > len(page.items):
        local.want_whole(patients[0])
        return None
    local.read_whole(patients[0], page.items)
    return matching_rows(local, criteria)


def record_id(record: AppointmentRecord) -> str:
    """What a cursor anchors on: the row's id."""
    return record.id


async def combined_rows(
    session: ClinikoSession,
    criteria: AppointmentCriteria,
    *,
    max_pages: int,
    local: ReplicaView | None = None,
) -> tuple[list[AppointmentRecord], bool]:
    """The rows of ``criteria`` in order, and whether that is all of them.

    All of them when the replica (``local``) holds them, or when they fit in
    ``max_pages`` pages (the rest fetched concurrently once the first page tells how
    many there are); else the first page.
    """
    if criteria.matches_nothing:
        return [], True
    rows = None if local is None else matching_rows(local, criteria)
    if rows is not None:
        return rows, True
    filters = criteria.filters()
    sort = criteria.sort()
    appointments = session.appointments
    with translate_upstream():
        first = await appointments.list(page=1, per_page=MAX_PAGE_SIZE, filters=filters, sort=sort)
        rows = list(first.items)
        pages = math.ceil(first.total_entries / MAX_PAGE_SIZE)
        if pages > max_pages:
            return rows, False
        rest = await asyncio.gather(
            *(
                appointments.list(page=p, per_page=MAX_PAGE_SIZE, filters=filters, sort=sort)
                for p in range(2, pages + 1)
            )
        )
    for page in rest:
        rows.extend(page.items)
    return rows, True
