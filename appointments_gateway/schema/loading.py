"""How the schema's resolvers fetch: connections, lookups, and related rows per page.

The central idea (PERFORMANCE.md §9): a resolver that produces appointments looks at
what the query selects below them, loads each selected relation for *all* of them at
once (one ``load_many`` per relation, so one ``q[]=id:=…`` call each), and builds the
objects with those rows attached.  The ``patient``/``practitioner``/… fields are then
sync lookups.  A relation selected only for ``id``/``clinikoId`` is answered from the
link in the appointment row: no call at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from strawberry.types.nodes import Selection

from appointments_gateway.resolvers.children import ChildrenKey
from appointments_gateway.resolvers.criteria import AppointmentCriteria, OrderKey
from appointments_gateway.resolvers.errors import GatewayError, NotFound
from appointments_gateway.resolvers.ids import parse_global_id
from appointments_gateway.resolvers.lists import appointments_page
from appointments_gateway.resolvers.loaders import Loaders, RecordLoader
from appointments_gateway.resolvers.pagination import Slice, scope_key
from appointments_gateway.resolvers.relations import RELATIONS as RELATION_TABLE
from appointments_gateway.schema.info import Info
from appointments_gateway.schema.inputs import AppointmentFilter, AppointmentOrder, to_criteria
from appointments_gateway.schema.selection import (
    field_names,
    fields_named,
    needs_more_than_id,
    sub_selections,
)
from appointments_gateway.schema.types import (
    RELATED_TYPES,
    Appointment,
    AppointmentConnection,
    AppointmentEdge,
    PageInfo,
    stub,
)
from appointments_gateway.upstream import AppointmentRecord

__all__ = [
    "RELATIONS",
    "Related",
    "appointment_connection",
    "connection_of",
    "lookup",
    "nodes_by_global_id",
    "parent_connection",
    "prepare_appointments",
    "repeats_connection",
]

_APPOINTMENT = frozenset({"Appointment", "Node"})
_CONNECTION = frozenset({"AppointmentConnection"})
_EDGE = frozenset({"AppointmentEdge"})


@dataclass(frozen=True, slots=True)
class _Relation:
    attribute: str  # the id attribute on AppointmentRecord
    loader: str  # the attribute on Loaders
    type_names: frozenset[str]  # fragments that apply to the related object
    build: Callable[[Any], Any]


RELATIONS: dict[str, _Relation] = {
    relation.name: _Relation(
        relation.attribute,
        relation.loader,
        frozenset({relation.type_name, "Node"}),
        (lambda r: r) if relation.is_appointment else RELATED_TYPES[relation.name].from_record,
    )
    for relation in RELATION_TABLE
}

#: node(id) and the root lookups: GraphQL type → (loader attribute, builder).
NODE_LOADERS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    relation.type_name: (relation.loader, RELATIONS[relation.name].build)
    for relation in RELATION_TABLE
}


class Related:
    """The related objects prefetched for one batch of appointments.

    ``value()`` gives what a relation attribute of an appointment holds: the prebuilt
    object, an id-only stub, ``None``, the error loading it raised (graphql-core raises
    an Exception value on that field only, so it nulls the field, not the list), or,
    for a relation the look-ahead did not foresee, an awaitable that loads it.
    """

    __slots__ = ("built", "errors", "loaders", "stubs")

    def __init__(self, loaders: Loaders) -> None:
        self.loaders = loaders
        self.built: dict[str, dict[str, Any]] = {}
        self.stubs: set[str] = set()
        self.errors: dict[str, GatewayError] = {}

    def value(self, relation: str, raw_id: str | None) -> Any:
        if raw_id is None:
            return None
        built = self.built.get(relation)
        if built is not None:
            found = built.get(raw_id)
            return found if found is not None else _missing_link(relation)
        error = self.errors.get(relation)
        if error is not None:
            return error
        if relation in self.stubs:
            return stub(relation, raw_id)
        return _Deferred(self, relation, raw_id)

    async def load(self, relation: str, raw_id: str) -> Any:
        spec = RELATIONS[relation]
        loader: RecordLoader[Any] = self.loaders.records[spec.loader]
        record = await loader.get(raw_id)
        if record is None:
            raise _missing_link(relation)
        if relation == "repeatedFrom":
            return Appointment.from_record(record, Related(self.loaders))
        return spec.build(record)


def _missing_link(relation: str) -> NotFound:
    return NotFound(f"The linked {relation} was not found.")


class _Deferred:
    """A relation load that starts only if the field is read (awaitable more than once)."""

    __slots__ = ("_raw_id", "_related", "_relation")

    def __init__(self, related: Related, relation: str, raw_id: str) -> None:
        self._related = related
        self._relation = relation
        self._raw_id = raw_id

    def __await__(self) -> Generator[Any, None, Any]:
        return self._related.load(self._relation, self._raw_id).__await__()


async def prepare_appointments(
    loaders: Loaders, records: Sequence[AppointmentRecord], selections: Sequence[Selection]
) -> list[Appointment]:
    """Build appointments with every relation the selection asks for loaded in one batch."""
    related = Related(loaders)
    if fields_named(selections, "hasConflicts", _APPOINTMENT):
        # Start the /conflicts calls now, in the same round as the relation lookups;
        # each hasConflicts field then awaits its own cached future.
        for record in records:
            loaders.conflicts.load(record.id)
    pending: list[tuple[str, list[Selection], Awaitable[dict[str, Any]]]] = []
    for relation, spec in RELATIONS.items():
        fields = fields_named(selections, relation, _APPOINTMENT)
        if not fields:
            continue
        ids = sorted({i for r in records if (i := getattr(r, spec.attribute)) is not None})
        below = sub_selections(fields)
        if not ids:
            related.built[relation] = {}
        elif relation != "repeatedFrom" and not needs_more_than_id(below, spec.type_names):
            related.stubs.add(relation)
        else:
            loader: RecordLoader[Any] = loaders.records[spec.loader]
            pending.append((relation, below, _keyed(ids, loader.get_many(ids))))
    if pending:
        outcomes = await asyncio.gather(*(job for _, _, job in pending), return_exceptions=True)
        for (relation, below, _), outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, GatewayError):
                related.errors[relation] = outcome
            elif isinstance(outcome, BaseException):
                raise outcome
            elif relation == "repeatedFrom":
                parents = await prepare_appointments(loaders, list(outcome.values()), below)
                related.built[relation] = {p.record.id: p for p in parents}
            else:
                build = RELATIONS[relation].build
                related.built[relation] = {i: build(r) for i, r in outcome.items()}
    return [Appointment.from_record(record, related) for record in records]


async def _keyed(ids: list[str], loading: Awaitable[list[Any]]) -> dict[str, Any]:
    rows = await loading
    return {i: row for i, row in zip(ids, rows, strict=True) if row is not None}


def _node_selections(selected: Sequence[Selection]) -> tuple[list[Selection], bool]:
    """What the query selects on the nodes of a connection, and whether it needs rows.

    Only ``totalCount`` selected: one ``per_page=1`` request tells it.
    """
    below = sub_selections(selected)
    nodes = sub_selections(fields_named(below, "nodes", _CONNECTION))
    edges = sub_selections(fields_named(below, "edges", _CONNECTION))
    nodes += sub_selections(fields_named(edges, "node", _EDGE))
    needs_rows = bool(field_names(below, _CONNECTION) - {"totalCount", "__typename"})
    return nodes, needs_rows


async def appointment_connection(
    info: Info,
    criteria: AppointmentCriteria,
    *,
    scope: tuple[object, ...],
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    has_rows: bool = True,
) -> AppointmentConnection:
    """One page of appointments matching ``criteria``, with what is selected below it."""
    context = info.context
    node_selections, needs_rows = _node_selections(info.selected_fields)
    window = await appointments_page(
        context.upstream,
        criteria,
        scope=scope_key(*criteria.scope(*scope)),
        first=first,
        after=after,
        last=last,
        before=before,
        need_items=needs_rows,
        has_rows=has_rows,
    )
    context.note_page(window)
    return await _connection(context.loaders, window, node_selections)


async def _connection(
    loaders: Loaders, window: Slice[AppointmentRecord], node_selections: Sequence[Selection]
) -> AppointmentConnection:
    records = [edge.node for edge in window.edges]
    for record in records:
        loaders.appointments.remember(record.id, record)
    nodes = await prepare_appointments(loaders, records, node_selections) if records else []
    return connection_of(window, nodes)


def connection_of(
    window: Slice[AppointmentRecord], nodes: list[Appointment]
) -> AppointmentConnection:
    """The connection object for a page whose nodes are built (in the page's order)."""
    edges = [
        AppointmentEdge(cursor=edge.cursor, node=node)
        for edge, node in zip(window.edges, nodes, strict=True)
    ]
    return AppointmentConnection(
        edges=edges,
        nodes=nodes,
        page_info=PageInfo(
            has_next_page=window.has_next_page,
            has_previous_page=window.has_previous_page,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=window.total_count,
    )


async def parent_connection(
    info: Info,
    column: str,
    parent_id: str,
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    filter: AppointmentFilter | None,
    order_by: Sequence[AppointmentOrder] | None,
) -> AppointmentConnection:
    """The appointments of one patient, practitioner or business.

    Goes through the children loader, so the same field under many parents is served
    by one combined list call where it can be (``resolvers/children.py``).
    """
    context = info.context
    selected = info.selected_fields  # converted from the AST on every access: once here
    node_selections, needs_rows = _node_selections(selected)
    needs_total = "totalCount" in field_names(sub_selections(selected), _CONNECTION)
    window = await context.loaders.children.load(
        ChildrenKey(
            column=column,
            parent_id=parent_id,
            criteria=to_criteria(filter, order_by),
            first=first,
            after=after,
            last=last,
            before=before,
            need_items=needs_rows,
            need_total=needs_total,
        )
    )
    context.note_page(window)
    return await _connection(context.loaders, window, node_selections)


async def repeats_connection(
    info: Info,
    record: AppointmentRecord,
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> AppointmentConnection:
    """The repeats of a series' first appointment; no call when the row says it has none."""
    criteria = AppointmentCriteria(repeated_from_id=record.id, order=(OrderKey("starts_at"),))
    return await appointment_connection(
        info,
        criteria,
        scope=("repeats", record.id),
        first=first,
        after=after,
        last=last,
        before=before,
        has_rows=record.has_repeats,
    )


async def lookup(info: Info, type_name: str, raw_id: str) -> Any:
    """One record by its raw id, as its GraphQL object; ``NotFound`` when missing."""
    found = await _load_nodes(info, [(type_name, raw_id)])
    result = found[0]
    if result is None:
        raise NotFound(f"No {type_name} with id {raw_id} was found.")
    return result


async def nodes_by_global_id(info: Info, global_ids: Sequence[str]) -> list[Any]:
    """Objects for ``nodes(ids:)``: one batched call per type; a missing one nulls its item."""
    parsed = [parse_global_id(value) for value in global_ids]
    found = await _load_nodes(info, parsed)
    return [
        obj if obj is not None else _missing(type_name, raw_id)
        for obj, (type_name, raw_id) in zip(found, parsed, strict=True)
    ]


async def _missing(type_name: str, raw_id: str) -> None:
    raise NotFound(f"No {type_name} with id {raw_id} was found.")


async def _load_nodes(info: Info, wanted: Iterable[tuple[str, str]]) -> list[Any]:
    loaders = info.context.loaders
    wanted = list(wanted)
    loads = []
    for type_name, raw_id in wanted:
        loader: RecordLoader[Any] = loaders.records[NODE_LOADERS[type_name][0]]
        loads.append(loader.get(raw_id))
    records = await asyncio.gather(*loads)
    appointments = [
        r for (t, _), r in zip(wanted, records, strict=True) if t == "Appointment" and r
    ]
    prepared: dict[str, Appointment] = {}
    if appointments:
        selections = sub_selections(info.selected_fields)
        built = await prepare_appointments(loaders, appointments, selections)
        prepared = {a.record.id: a for a in built}
    out: list[Any] = []
    for (type_name, _), record in zip(wanted, records, strict=True):
        if record is None:
            out.append(None)
        elif type_name == "Appointment":
            out.append(prepared[record.id])
        else:
            out.append(NODE_LOADERS[type_name][1](record))
    return out
