"""An upper bound on the upstream requests a GraphQL document will make, before it runs.

Every caller shares a budget of 200 Cliniko requests per minute per key, so a document
that would spend a large part of it is refused before it spends anything.  The bound
follows what the resolvers really do after batching (``resolvers/prefetch.py``,
``resolvers/children.py``, ``resolvers/pagination.py``), with each relation's lookups
from the relation table (``resolvers/relations.py``), taking the worst case wherever
the cost depends on data:

* a connection page of ``n`` rows: 1 request at offset 0, 2 with a cursor (a window
  at any offset needs at most two pages), ``ceil(n/100) + 1`` above 100 rows;
  ``totalCount`` alone: 1;
* the same connection under ``N`` parents: one combined list plus, in the worst case,
  every parent's own request (``1 + N * page``); ``repeats`` and cursor windows: per
  parent;
* a relation of ``M`` appointments selected beyond its id: ``ceil(M/100)`` batched
  lookups, times the relation's ``lookups`` (a practitioner's is 2: Cliniko lists
  inactive ones apart); selected for ids only: 0, except ``repeatedFrom``, which is
  always loaded, with what is selected below it;
* ``startsAtLocal``/``endsAtLocal``: the business lookup, as ``business`` beyond its id
  (once, whichever of the three are selected);
* a connection whose ``filter`` has a ``localDate``: one business lookup (the same
  business for every parent, so one however many parents);
* ``hasConflicts``: one per appointment;
* ``appointment``/``patient``/…: the type's lookups (``practitioner``: 2), ``node``: the
  most any type needs (2); ``nodes``: one per type present (at most six), plus the
  inactive-practitioner list;
* a mutation: its write plus the read-back;
* a subscription (``appointmentChanged``): per result, what its appointment selects (as
  one appointment's), plus a ``localDate``'s business lookup (made once, at the start).

The bound is computed on the AST with the operation's variables, so it costs microseconds
and makes no call.  It must never be below what an operation really costs: the test
helpers assert that for every operation the test suite runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    value_from_ast_untyped,
)

from appointments_gateway.resolvers.pagination import DEFAULT_FIRST, MAX_PAGE_SIZE, MAX_WINDOW
from appointments_gateway.resolvers.relations import RELATIONS
from appointments_gateway.schema.selection import ID_ONLY_FIELDS, LOCAL_TIME_FIELDS, ZONE_RELATION

__all__ = ["estimate_upstream_requests", "walk_upstream_requests"]

# All from the resolvers' relation table, so a relation added there is costed here.
_RELATIONS = {relation.name: relation for relation in RELATIONS}
#: Lookups by id of each node type, per 100 ids (practitioners: 2, active then inactive).
_LOOKUPS = {relation.type_name: relation.lookups for relation in RELATIONS}
#: The root fields that read one record by id are named for its type (``appointment``,
#: ``appointmentType``); a name here with no such field is never asked about, since
#: validation refuses the document first.
_ROOT_LOOKUPS = {name[0].lower() + name[1:]: lookups for name, lookups in _LOOKUPS.items()}
#: ``nodes``: one lookup per type present, plus every type's extra lookups.
_EXTRA_LOOKUPS = sum(lookups - 1 for lookups in _LOOKUPS.values())
_MUTATION_COST = 2  # the write and the read-back of the changed appointment


@dataclass(slots=True)
class _Walk:
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: Mapping[str, Any]
    #: Fields the walk has looked at (the property tests' measure of its work).
    visited: int = 0

    def fields(self, selection_set: SelectionSetNode | None) -> list[FieldNode]:
        """The fields of a selection set, fragments flattened (all type conditions).

        A fragment is collected once per set, however often it is spread there, as
        graphql-core's execution does: without that, fragments that spread the next one
        twice expand exponentially.  With it, the walk visits what the operation would
        execute, which admission has already bounded (``schema/shape.py``).
        """
        out: list[FieldNode] = []
        if selection_set is None:
            return out
        seen: set[str] = set()
        pending = [selection_set]
        while pending:
            for selection in pending.pop().selections:
                if isinstance(selection, FieldNode):
                    out.append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    pending.append(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if fragment is not None and name not in seen:
                        seen.add(name)
                        pending.append(fragment.selection_set)
        self.visited += len(out)
        return out

    def argument(self, field: FieldNode, name: str) -> Any:
        for argument in field.arguments or ():
            if argument.name.value == name:
                return value_from_ast_untyped(argument.value, dict(self.variables))
        return None

    # --- costs ----------------------------------------------------------------------

    def appointments(self, fields: list[FieldNode], count: int) -> int:
        """Requests below ``count`` appointment objects selecting ``fields``."""
        if count <= 0:
            return 0
        batches = math.ceil(count / MAX_PAGE_SIZE)
        total = 0
        zone_looked_up = False
        for field in fields:
            name = field.name.value
            relation = _RELATIONS.get(name)
            if relation is not None:
                below = self.fields(field.selection_set)
                if relation.is_appointment:
                    total += relation.lookups * batches + self.appointments(below, count)
                elif any(f.name.value not in ID_ONLY_FIELDS for f in below):
                    total += relation.lookups * batches + self.record(below, count)
                    zone_looked_up = zone_looked_up or name == ZONE_RELATION
            elif name == "hasConflicts":
                total += count
            elif name == "repeats":
                total += count * self.connection(field, parents=1)
        if not zone_looked_up and any(f.name.value in LOCAL_TIME_FIELDS for f in fields):
            total += _RELATIONS[ZONE_RELATION].lookups * batches
        return total

    def record(self, fields: list[FieldNode], count: int) -> int:
        """Requests below ``count`` patients, practitioners or businesses."""
        return sum(
            self.connection(field, parents=count)
            for field in fields
            if field.name.value == "appointments"
        )

    def window(self, field: FieldNode) -> tuple[int, bool]:
        """The rows a connection field asks for, and whether a cursor positions them."""
        first, last = self.argument(field, "first"), self.argument(field, "last")
        size = first if isinstance(first, int) else last if isinstance(last, int) else None
        size = DEFAULT_FIRST if size is None else size
        if not 1 <= size <= MAX_WINDOW:
            return 0, False  # refused before any request
        cursor = self.argument(field, "after") is not None or (
            self.argument(field, "before") is not None
        )
        return size, cursor or isinstance(last, int)

    def connection(self, field: FieldNode, *, parents: int) -> int:
        size, positioned = self.window(field)
        if size == 0 or parents <= 0:
            return 0
        below = self.fields(field.selection_set)
        names = {f.name.value for f in below}
        if names <= {"totalCount", "__typename"}:
            page = 1
        elif size <= MAX_PAGE_SIZE:
            page = 2 if positioned else 1
        else:
            page = math.ceil(size / MAX_PAGE_SIZE) + 1
        if parents == 1 or positioned or field.name.value == "repeats":
            requests = parents * page
        else:
            requests = 1 + parents * page  # the combined list, then every parent alone
        requests += self.local_day(field)
        nodes = [
            node for f in below if f.name.value == "nodes" for node in self.fields(f.selection_set)
        ] + [
            node
            for f in below
            if f.name.value == "edges"
            for edge in self.fields(f.selection_set)
            if edge.name.value == "node"
            for node in self.fields(edge.selection_set)
        ]
        return requests + self.appointments(nodes, parents * size)

    def local_day(self, field: FieldNode) -> int:
        """The business lookup a ``filter: {localDate}`` needs (its time zone)."""
        filter = self.argument(field, "filter")
        if isinstance(filter, dict) and filter.get("localDate") is not None:
            return _RELATIONS[ZONE_RELATION].lookups
        return 0

    def root(self, field: FieldNode) -> int:
        name = field.name.value
        below = self.fields(field.selection_set)
        if name == "appointments":
            return self.connection(field, parents=1)
        if name in _ROOT_LOOKUPS or name == "node":
            lookups = _ROOT_LOOKUPS[name] if name != "node" else max(_LOOKUPS.values())
            return lookups + self.appointments(below, 1) + self.record(below, 1)
        if name == "nodes":
            ids = self.argument(field, "ids")
            count = len(ids) if isinstance(ids, list) else 0
            lookups = min(count, len(_LOOKUPS)) + (_EXTRA_LOOKUPS if count else 0)
            return lookups + self.appointments(below, count) + self.record(below, count)
        return 0

    def mutation(self, field: FieldNode) -> int:
        return _MUTATION_COST + self.appointments(self._payload_appointment(field), 1)

    def subscription(self, field: FieldNode) -> int:
        return self.local_day(field) + self.appointments(self._payload_appointment(field), 1)

    def _payload_appointment(self, field: FieldNode) -> list[FieldNode]:
        """What a payload's ``appointment`` selects (a mutation's, a change's)."""
        return [
            node
            for f in self.fields(field.selection_set)
            if f.name.value == "appointment"
            for node in self.fields(f.selection_set)
        ]


def estimate_upstream_requests(
    document: DocumentNode,
    variables: Mapping[str, Any] | None = None,
    operation_name: str | None = None,
) -> int:
    """The most upstream requests executing ``document`` can make (see module docs)."""
    return walk_upstream_requests(document, variables, operation_name)[0]


def walk_upstream_requests(
    document: DocumentNode,
    variables: Mapping[str, Any] | None = None,
    operation_name: str | None = None,
) -> tuple[int, int]:
    """The bound, and the fields the walk looked at to find it.

    The walk follows the operation as it executes (a fragment once per selection set),
    so it looks at a small multiple of the selections admission has bounded
    (``schema/shape.py``); the property tests check that with the second number.
    """
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return 0, 0  # graphql-core refuses the document; nothing runs
    operation = operations[0]
    walk = _Walk(
        fragments={
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        },
        variables=_with_defaults(operation, variables or {}),
    )
    fields = walk.fields(operation.selection_set)
    if operation.operation is OperationType.MUTATION:
        return sum(walk.mutation(field) for field in fields), walk.visited
    if operation.operation is OperationType.SUBSCRIPTION:
        return sum(walk.subscription(field) for field in fields), walk.visited
    return sum(walk.root(field) for field in fields), walk.visited


def _with_defaults(
    operation: OperationDefinitionNode, variables: Mapping[str, Any]
) -> dict[str, Any]:
    values = dict(variables)
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name not in values and definition.default_value is not None:
            values[name] = value_from_ast_untyped(definition.default_value, {})
    return values
