"""The shape of a GraphQL document as it would execute: depth, aliases, selections.

Measured before validation, in one pass that is linear in the document's size, whatever
its fragments do.  A limit that re-expands a fragment at every spread is itself the
denial of service it guards against: ten lines of fragments that each spread the next
one twice expand to 2^22 selections, and a walk that follows them froze a worker for
half a minute (Strawberry's depth and alias limiters and our own cost walk did).  Here
each fragment is measured **once** and its summary reused at every spread, so the walk
visits every node of the document once; what it reports is what execution would do.

What is reported, per document (every operation in it):

* ``depth``: the most fields enclosing any field, as Strawberry's ``QueryDepthLimiter``
  counts (``{ a { b } }`` is 1), with introspection fields (``__schema``, ``__type``)
  not looked into, as there;
* ``aliases``: aliased fields as they execute: an alias inside a fragment spread three
  times counts three times, so aliases cannot be multiplied through fragments;
* ``selections``: field selections as they execute, counted the same way.  This is the
  bound that makes every later walk (validation, the upstream cost bound) cheap: a
  document over it is refused before anything else looks at it.

Counting follows execution where it matters: a fragment spread twice in one selection
set executes once (graphql-core's field collection skips a fragment it has already
collected there), so it counts once.  Where execution would deduplicate across levels
(a fragment that spreads another which the same set also spreads), the count is the
larger, conservative one.  Counts saturate at :data:`SATURATED` so arithmetic stays
small however large the expansion.

Unknown fragments and fragment cycles are invalid documents that validation reports;
here they count as empty, so the walk always ends.  Selection sets nested deeper than
``max_nesting`` (fields and fragment spreads along one path, the depth limit plus
:data:`NESTING_ALLOWANCE`) stop the walk with ``too_deep``: no document a client writes
comes near it, long fragment chains cost graphql-core's validation time quadratic in
their length, and the walk's recursion stays far from Python's limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionNode,
)

__all__ = ["NESTING_ALLOWANCE", "SATURATED", "Shape", "measure"]

#: Counts stop growing here: far above any limit, small enough to stay a machine int.
SATURATED = 1 << 40

#: Selection sets and fragment spreads nested along one path before the walk gives up,
#: beyond the depth limit: GraphiQL's introspection query nests 12 (its ``TypeRef``
#: fragment is 9 fields deep), a screen's query with its fragments well under 20.
#: A chain of 99 fragments, accepted with a bound of 100, took graphql-core 37 ms.
NESTING_ALLOWANCE = 20


@dataclass(frozen=True, slots=True)
class Shape:
    """What a document would execute, measured without expanding it."""

    depth: int = 0
    aliases: int = 0
    selections: int = 0
    #: The document nests selection sets or fragments deeper than ``max_nesting``; the
    #: other figures are then incomplete and the document must be refused.
    too_deep: bool = False
    #: Selection nodes the walk looked at: never more than the document holds (the
    #: property tests' proof that the walk is linear).
    visited: int = 0


_EMPTY = Shape()
#: What a fragment counts as while it is being measured (a cycle: invalid, and empty).
_IN_PROGRESS = Shape()


class _TooDeep(Exception):
    pass


class _Measure:
    """One walk over one document; ``fragments`` holds each fragment's summary once."""

    def __init__(self, document: DocumentNode, max_nesting: int) -> None:
        self.max_nesting = max_nesting
        self.definitions = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.fragments: dict[str, Shape] = {}
        self.visited = 0

    def fragment(self, name: str, nesting: int) -> Shape:
        known = self.fragments.get(name)
        if known is not None:
            return known
        definition = self.definitions.get(name)
        if definition is None:
            return _EMPTY  # validation reports the unknown fragment
        self.fragments[name] = _IN_PROGRESS
        shape = self.selection_set(definition.selection_set.selections, nesting + 1)
        self.fragments[name] = shape
        return shape

    def selection_set(self, selections: Iterable[SelectionNode], nesting: int) -> Shape:
        """The summary of one selection set: its fields and everything below them."""
        if nesting > self.max_nesting:
            raise _TooDeep
        depth = aliases = count = 0
        spread: set[str] = set()  # fragments already collected into this set
        pending: list[Iterable[SelectionNode]] = [selections]
        while pending:
            for selection in pending.pop():
                self.visited += 1
                if isinstance(selection, FieldNode):
                    count += 1
                    if selection.alias is not None:
                        aliases += 1
                    below = selection.selection_set
                    if below is None:
                        continue
                    inner = self.selection_set(below.selections, nesting + 1)
                    aliases += inner.aliases
                    count += inner.selections
                    if not selection.name.value.startswith("__"):
                        depth = max(depth, 1 + inner.depth)
                elif isinstance(selection, InlineFragmentNode):
                    # Same level as the set itself: its fields merge into the set.
                    pending.append(selection.selection_set.selections)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    if name in spread:
                        continue  # collected once per set, as execution does
                    spread.add(name)
                    inner = self.fragment(name, nesting)
                    depth = max(depth, inner.depth)
                    aliases += inner.aliases
                    count += inner.selections
            aliases = min(aliases, SATURATED)
            count = min(count, SATURATED)
        return Shape(depth=depth, aliases=aliases, selections=count)


def measure(document: DocumentNode, *, max_nesting: int) -> Shape:
    """The document's shape: every operation in it, each fragment measured once."""
    walk = _Measure(document, max_nesting)
    depth = aliases = count = 0
    try:
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                shape = walk.selection_set(definition.selection_set.selections, 0)
                depth = max(depth, shape.depth)
                aliases = min(aliases + shape.aliases, SATURATED)
                count = min(count + shape.selections, SATURATED)
    except _TooDeep:
        return Shape(depth, aliases, count, too_deep=True, visited=walk.visited)
    return Shape(depth, aliases, count, visited=walk.visited)
