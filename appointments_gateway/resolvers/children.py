"""Appointments under many parents at once (``patients { appointments(first: 3) }``).

Each ``Patient.appointments`` field asks this loader for its own page; the ids asked
in one tick are served together:

1. Parents that ask the same question (same filter, order and ``first``, no cursor)
   share ONE list call, ``q[]=patient_id:=a,b,c`` (up to 100 parents), sorted as asked.
   Filtering a sorted list by parent keeps each parent's rows in order, so when the
   combined result is complete each parent's page, ``totalCount`` and ``hasNextPage``
   are exact, and its cursors are the same ones a single-parent request would issue.
2. The combined result is completed (its other pages fetched concurrently) when it
   needs no more pages than there are parents (falling back would cost at least that
   many requests) and at most ``MAX_COMBINED_PAGES``.
3. When it is not complete, its first page is still the start of every parent's own
   list: a parent with more than ``first`` rows in it is served from it (its page and
   ``hasNextPage`` are exact) unless the query selects ``totalCount``, which only a
   complete list or the parent's own request can tell.
4. Every other parent, and windows with a cursor or ``last`` (offsets are per parent),
   get their own paginated request.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from aiodataloader import DataLoader

from appointments_gateway.replica import ReplicaView
from appointments_gateway.resolvers.criteria import AppointmentCriteria
from appointments_gateway.resolvers.errors import GatewayError
from appointments_gateway.resolvers.lists import appointments_page, combined_rows, record_id
from appointments_gateway.resolvers.pagination import (
    DEFAULT_FIRST,
    MAX_WINDOW,
    ConnectionArgs,
    Slice,
    first_slice,
    scope_key,
)
from appointments_gateway.upstream import AppointmentRecord, ClinikoSession

__all__ = ["MAX_COMBINED_PAGES", "ChildrenKey", "ChildrenLoader"]

#: The most pages of one combined list fetched to complete it (latency and memory bound).
MAX_COMBINED_PAGES = 10
_MAX_PARENTS_PER_CALL = 100


@dataclass(frozen=True, slots=True)
class ChildrenKey:
    """One parent's request: its id, the filter/order without the parent, the window."""

    column: str  # patient_id, practitioner_id or business_id
    parent_id: str
    criteria: AppointmentCriteria
    args: ConnectionArgs
    need_items: bool = True
    need_total: bool = True

    @property
    def combinable(self) -> bool:
        args = self.args
        if args.after is not None or args.before is not None or args.last is not None:
            return False
        return args.first is None or 1 <= args.first <= MAX_WINDOW

    def parent_criteria(self) -> AppointmentCriteria:
        return self.criteria.with_parent(self.column, [self.parent_id])

    def scope(self) -> str:
        return scope_key(*self.parent_criteria().scope(self.column, self.parent_id))


_Outcome = Slice[AppointmentRecord] | GatewayError


class ChildrenLoader(DataLoader[ChildrenKey, Slice[AppointmentRecord]]):
    """Per-request loader of per-parent appointment pages; see the module docstring."""

    def __init__(self, session: ClinikoSession, local: ReplicaView | None = None) -> None:
        super().__init__()
        self._session = session
        self._local = local

    async def batch_load_fn(self, keys: list[ChildrenKey]) -> list[Slice[AppointmentRecord]]:
        outcomes: dict[ChildrenKey, _Outcome] = {}
        groups: dict[tuple[object, ...], list[ChildrenKey]] = defaultdict(list)
        singles: list[ChildrenKey] = []
        for key in dict.fromkeys(keys):
            if key.combinable:
                group = (key.column, key.criteria, key.args, key.need_items, key.need_total)
                groups[group].append(key)
            else:
                singles.append(key)
        jobs = [self._single(key, outcomes) for key in singles]
        for members in groups.values():
            if len(members) == 1:
                jobs.append(self._single(members[0], outcomes))
                continue
            for start in range(0, len(members), _MAX_PARENTS_PER_CALL):
                jobs.append(
                    self._combined(members[start : start + _MAX_PARENTS_PER_CALL], outcomes)
                )
        await asyncio.gather(*jobs)
        # aiodataloader rejects just the keys whose value is an exception.
        return cast("list[Slice[AppointmentRecord]]", [outcomes[key] for key in keys])

    async def _single(self, key: ChildrenKey, outcomes: dict[ChildrenKey, _Outcome]) -> None:
        try:
            outcomes[key] = await appointments_page(
                self._session,
                key.parent_criteria(),
                key.args,
                scope=key.scope(),
                need_items=key.need_items,
                local=self._local,
            )
        except GatewayError as exc:
            outcomes[key] = exc

    async def _combined(
        self, keys: Sequence[ChildrenKey], outcomes: dict[ChildrenKey, _Outcome]
    ) -> None:
        head = keys[0]
        n = head.args.first if head.args.first is not None else DEFAULT_FIRST
        try:
            combined = head.criteria.with_parent(head.column, [k.parent_id for k in keys])
            rows, complete = await combined_rows(
                self._session,
                combined,
                max_pages=min(len(keys), MAX_COMBINED_PAGES),
                local=self._local,
            )
        except GatewayError as exc:
            for key in keys:
                outcomes[key] = exc
            return
        by_parent: dict[str, list[AppointmentRecord]] = defaultdict(list)
        for row in rows:
            parent = getattr(row, head.column)
            if parent is not None:
                by_parent[parent].append(row)
        fallback: list[ChildrenKey] = []
        for key in keys:
            own = by_parent.get(key.parent_id, [])
            if not complete and (key.need_total or len(own) <= n):
                fallback.append(key)
                continue
            # Its list starts with its own first rows (all of them when complete, else
            # more than n): the page a single-parent request would get.
            outcomes[key] = first_slice(
                own, n, scope=key.scope(), key=record_id, need_items=key.need_items
            )
        await asyncio.gather(*(self._single(key, outcomes) for key in fallback))
