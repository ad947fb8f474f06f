"""The shape walk: what it reports, and that its work is linear in the document.

The work is counted, not timed (``Shape.visited``, and the cost walk's own count), so
the property holds on any machine: whatever fragments a document spreads, the shape walk
looks at each selection node once, and the cost walk, which admission only runs under
the selection limit, looks at a small multiple of the selections it executes.
``python -m bench.attacks`` prints the timings.
"""

from __future__ import annotations

import pytest
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    parse,
    specified_rules,
    validate,
)
from graphql.language import Visitor, visit
from hypothesis import given, settings
from hypothesis import strategies as st
from strawberry.extensions import QueryDepthLimiter

from appointments_gateway.schema import build_schema
from appointments_gateway.schema.build import DEFAULT_MAX_SELECTIONS
from appointments_gateway.schema.cost import walk_upstream_requests
from appointments_gateway.schema.shape import Shape, measure
from bench.attacks import alias_fanout, chain, fanout, wide

SCHEMA = build_schema()
NESTING = 32


def shape(document: str) -> Shape:
    return measure(parse(document), max_nesting=NESTING)


def selection_nodes(document: str) -> int:
    """Fields, fragment spreads and inline fragments written in the document."""

    class Count(Visitor):
        nodes = 0

        def enter(self, node: object, *_: object) -> None:
            if isinstance(node, FieldNode | FragmentSpreadNode | InlineFragmentNode):
                Count.nodes += 1

    visit(parse(document), Count())
    return Count.nodes


def strawberry_depth(document: str) -> int:
    """The depth Strawberry's own limiter reports (what admission used before)."""
    depths: dict[str, int] = {}
    limiter = QueryDepthLimiter(max_depth=1000, callback=depths.update)
    validate(SCHEMA._schema, parse(document), [*specified_rules, *limiter.validation_rules])
    return max(depths.values(), default=0)


@pytest.mark.parametrize(
    "document",
    [
        "{ version }",
        "{ appointments { nodes { id } } }",
        "{ appointments { nodes { patient { appointments { nodes { practitioner { id } } } } } } }",
        "{ a: appointments { nodes { id } } b: appointments { edges { node { repeatedFrom { id } } } } }",
        "{ __schema { types { fields { type { ofType { ofType { name } } } } } } }",
        "{ appointments { nodes { ...A } } } fragment A on Appointment { patient { id } ...B }"
        " fragment B on Appointment { repeatedFrom { repeatedFrom { id } } }",
        "query Q { appointments { nodes { ... on Appointment { business { id } } } } }"
        " query R { version }",
    ],
)
def test_depth_is_the_one_strawberry_counted(document: str):
    assert shape(document).depth == strawberry_depth(document)


def test_aliases_and_selections_count_every_spread_as_execution_does():
    document = (
        "{ appointments { nodes { ...A } } x: appointment(id: 1) { ...A ...A } }"
        " fragment A on Appointment { one: id two: id }"
    )
    # A executes twice (once in each object; spreading it twice in one set is once).
    measured = shape(document)
    assert measured.aliases == 1 + 2 * 2
    assert measured.selections == 3 + 2 * 2  # appointments, nodes, x; A's two fields twice


def test_the_fan_out_that_froze_a_worker_is_one_selection():
    measured = shape(fanout(22))
    assert (measured.selections, measured.depth, measured.aliases) == (1, 0, 0)
    assert measured.visited <= selection_nodes(fanout(22))


def test_aliases_multiplied_through_fragments_are_counted_not_expanded():
    measured = shape(alias_fanout(8))
    assert measured.aliases == 2**9 - 2
    assert measured.visited <= selection_nodes(alias_fanout(8))


def test_counts_saturate_instead_of_growing_without_bound():
    # 2^31 aliases if expanded; the walk stays linear and the count stays an int.
    measured = measure(parse(alias_fanout(30)), max_nesting=100)
    assert measured.aliases > DEFAULT_MAX_SELECTIONS
    assert measured.visited <= selection_nodes(alias_fanout(30))


def test_cycles_and_unknown_fragments_end_the_walk():
    cyclic = shape("{ ...A } fragment A on Query { version ...B } fragment B on Query { ...A }")
    assert cyclic.selections == 1
    assert shape("{ ...Missing version }").selections == 1


def test_nesting_beyond_the_bound_is_reported():
    assert not shape(chain(NESTING - 2)).too_deep
    assert shape(chain(NESTING + 1)).too_deep
    assert shape("{ " + "a { " * 40 + "b" + " }" * 41).too_deep


@st.composite
def fragment_documents(draw: st.DrawFn) -> str:
    """Documents made of fragments on Query that spread earlier ones, any number of times.

    Fan-outs, chains, diamonds and wide sets all arise; every document stays under the
    gateway's token limit like a real attack must.
    """
    count = draw(st.integers(1, 40))
    fragments = []
    for i in range(count):
        spreads = draw(st.lists(st.integers(0, max(i - 1, 0)), max_size=4)) if i else []
        fields = draw(
            st.lists(st.sampled_from(["version", "__typename", "v: version"]), max_size=3)
        )
        inline = draw(st.booleans())
        body = " ".join(fields + [f"...F{j}" for j in spreads]) or "__typename"
        if inline:
            body = f"... on Query {{ {body} }}"
        fragments.append(f"fragment F{i} on Query {{ {body} }}")
    roots = draw(st.lists(st.integers(0, count - 1), min_size=1, max_size=3))
    query = "{ " + " ".join(f"...F{j}" for j in roots) + " }"
    return query + "\n" + "\n".join(fragments)


@settings(max_examples=300, deadline=None)
@given(fragment_documents())
def test_the_walks_are_linear_in_the_document(document: str):
    parsed = parse(document)
    measured = measure(parsed, max_nesting=NESTING)
    assert measured.visited <= selection_nodes(document)
    if not measured.too_deep and measured.selections <= DEFAULT_MAX_SELECTIONS:
        # What admission lets through to the cost walk: a constant multiple of the
        # selections the operation executes, never of what its fragments would expand to.
        _, visited = walk_upstream_requests(parsed)
        assert visited <= 2 * measured.selections


@settings(max_examples=100, deadline=None)
@given(fragment_documents())
def test_a_valid_document_has_the_depth_strawberry_counted(document: str):
    parsed = parse(document)
    if validate(SCHEMA._schema, parsed):
        return  # invalid (a cycle, say): depth is moot, validation refuses it
    if measure(parsed, max_nesting=NESTING).selections > 2_000:
        return  # Strawberry's limiter would expand it; that is the bug being fixed
    assert shape(document).depth == strawberry_depth(document)


def test_a_wide_document_is_counted_once_per_field():
    measured = shape(wide(2000))
    assert measured.selections == 2000
    assert measured.visited == 2000
