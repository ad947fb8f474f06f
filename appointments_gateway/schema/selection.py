"""What a query selected below a field, so a list resolver can fetch related rows once.

Per-item ``async`` resolvers cost ~18 µs each (graphql-core makes every awaitable a
task; PERFORMANCE.md §3), so list resolvers look ahead instead: they read which
relations the query selects under the nodes, as a ``Wanted`` (``connection_wants``,
``appointment_wants``), and ``resolvers/prefetch.py`` loads each one for the whole page
in one batch.  This module is the only one that reads Strawberry's selections; the
resolvers see plain facts.  Fragments are flattened; a fragment for another type is
ignored.  The look-ahead may over-fetch (it does not evaluate ``@skip``/``@include``) but
never under-fetches: a relation it missed still resolves, through its loader.

``startsAtLocal``/``endsAtLocal`` need the business's time zone, so selecting either
wants the ``business`` relation's rows, as ``business { timeZoneIdentifier }`` would:
one batch for the page, shared with the ``business`` field if that is selected too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from appointments_gateway.resolvers.connections import ConnectionWants
from appointments_gateway.resolvers.prefetch import Wanted
from appointments_gateway.resolvers.relations import APPOINTMENT, RELATIONS

__all__ = [
    "ID_ONLY_FIELDS",
    "LOCAL_TIME_FIELDS",
    "ZONE_RELATION",
    "appointment_wants",
    "connection_wants",
    "field_names",
    "fields_named",
    "needs_more_than_id",
    "sub_selections",
]

#: Fields a related object can answer from the link in the parent row alone.
ID_ONLY_FIELDS = frozenset({"id", "clinikoId", "__typename"})
#: Appointment fields at the business's clock: they need the business's record.
LOCAL_TIME_FIELDS = frozenset({"startsAtLocal", "endsAtLocal"})
#: The relation whose record holds an appointment's time zone (the business).
ZONE_RELATION = next(r.name for r in RELATIONS if r.type_name == "Business")

#: Fragments on these type names apply to an appointment, a connection, an edge.
APPOINTMENT_TYPES = frozenset({APPOINTMENT, "Node"})
_CONNECTION = frozenset({"AppointmentConnection"})
_EDGE = frozenset({"AppointmentEdge"})
#: Each relation, with the type names whose fragments apply to its object.
_RELATIONS = [(relation, frozenset({relation.type_name, "Node"})) for relation in RELATIONS]


def _flatten(selections: Iterable[Selection], type_names: frozenset[str]) -> list[SelectedField]:
    out: list[SelectedField] = []
    for selection in selections:
        if isinstance(selection, SelectedField):
            out.append(selection)
        elif isinstance(selection, (InlineFragment, FragmentSpread)):
            condition = selection.type_condition
            if condition is None or condition in type_names:
                out.extend(_flatten(selection.selections, type_names))
    return out


def fields_named(
    selections: Iterable[Selection], name: str, type_names: frozenset[str]
) -> list[SelectedField]:
    """Every selection of field ``name`` (under any alias) on an object of ``type_names``."""
    return [field for field in _flatten(selections, type_names) if field.name == name]


def sub_selections(fields: Sequence[Selection]) -> list[Selection]:
    """The union of what the given selections of one field select below it."""
    out: list[Selection] = []
    for field in fields:
        out.extend(field.selections)
    return out


def needs_more_than_id(selections: Iterable[Selection], type_names: frozenset[str]) -> bool:
    """Whether an object's selection asks for anything beyond what its link gives."""
    return any(field.name not in ID_ONLY_FIELDS for field in _flatten(selections, type_names))


def field_names(selections: Iterable[Selection], type_names: frozenset[str]) -> set[str]:
    """The names of the fields selected directly on an object of ``type_names``."""
    return {field.name for field in _flatten(selections, type_names)}


def appointment_wants(selections: Sequence[Selection]) -> Wanted:
    """What ``selections`` (made on appointments) select that costs fetching."""
    by_name: dict[str, list[SelectedField]] = defaultdict(list)
    for field in _flatten(selections, APPOINTMENT_TYPES):
        by_name[field.name].append(field)
    rows: dict[str, Wanted | None] = {}
    links: set[str] = set()
    for relation, type_names in _RELATIONS:
        fields = by_name.get(relation.name)
        if not fields:
            continue
        below = sub_selections(fields)
        if relation.is_appointment:
            rows[relation.name] = appointment_wants(below)
        elif needs_more_than_id(below, type_names):
            rows[relation.name] = None
        else:
            links.add(relation.name)
    if not LOCAL_TIME_FIELDS.isdisjoint(by_name):
        rows.setdefault(ZONE_RELATION, None)
        links.discard(ZONE_RELATION)
    return Wanted(rows=rows, links=frozenset(links), conflicts="hasConflicts" in by_name)


def connection_wants(selected: Sequence[Selection]) -> ConnectionWants:
    """What the selections of a connection field select on it and on its appointments.

    Only ``totalCount`` selected: no rows are needed, one ``per_page=1`` request tells it.
    """
    below = _flatten(sub_selections(selected), _CONNECTION)
    names = {field.name for field in below}
    nodes = sub_selections([field for field in below if field.name == "nodes"])
    edges = sub_selections([field for field in below if field.name == "edges"])
    nodes += sub_selections(fields_named(edges, "node", _EDGE))
    return ConnectionWants(
        nodes=appointment_wants(nodes),
        rows=bool(names - {"totalCount", "__typename"}),
        total="totalCount" in names,
    )
