"""The upstream-cost bound: checked here on known shapes; the suite's gw.query helper also
checks it against the real count of every operation the tests run."""

import pytest
from graphql import parse

from appointments_gateway.schema.cost import estimate_upstream_requests


def cost(document: str, **variables: object) -> int:
    return estimate_upstream_requests(parse(document), variables)


def test_calendar_is_bounded_by_one_page_and_its_lookups():
    document = """{ appointments(first: 100) { edges { node {
        patient { firstName } practitioner { displayName } business { businessName }
        appointmentType { name } } } } }"""
    # 1 page, patients, businesses, types, and practitioners (active + inactive list)
    assert cost(document) == 1 + 1 + 1 + 1 + 2


def test_id_only_relations_and_total_count_cost_what_they_really_cost():
    assert cost("{ appointments(first: 50) { nodes { patient { id clinikoId } } } }") == 1
    assert cost("{ appointments { totalCount } }") == 1


@pytest.mark.parametrize(
    ("arguments", "pages"),
    [
        ("first: 10", 1),
        ('first: 10, after: "x"', 2),
        ("last: 10", 2),
        ("first: 250", 4),
        ("first: 0", 0),
        ("first: 10000", 0),
    ],
)
def test_page_windows(arguments: str, pages: int):
    assert cost(f"{{ appointments({arguments}) {{ nodes {{ id }} }} }}") == pages


def test_variables_and_their_defaults_are_read():
    document = "query ($n: Int = 250) { appointments(first: $n) { nodes { id } } }"
    assert cost(document) == 4
    assert cost(document, n=20) == 1


def test_nested_connections_count_the_combined_list_and_every_fallback():
    document = """{ appointments(first: 20) { nodes {
        patient { appointments(first: 3) { nodes { practitioner { displayName } } } } } } }"""
    # page, patients, combined list + 20 fallbacks, practitioners for 60 nodes (2 lists)
    assert cost(document) == 1 + 1 + (1 + 20) + 2


def test_conflicts_repeats_and_fragments_are_counted():
    document = """
    query { appointments(first: 10) { nodes { ...Deep } } }
    fragment Deep on Appointment {
      hasConflicts
      repeats(first: 5) { totalCount }
      repeatedFrom { business { businessName } }
    }"""
    # page + 10 conflicts + 10 repeats counts + repeatedFrom batch + its businesses
    assert cost(document) == 1 + 10 + 10 + 1 + 1


def test_nodes_and_lookups():
    ids = ["a"] * 20
    assert cost("query ($ids: [ID!]!) { nodes(ids: $ids) { id } }", ids=ids) == 6 + 1
    assert cost('{ appointment(id: "1") { patient { firstName } } }') == 1 + 1
    assert cost('{ practitioner(id: "1") { displayName } }') == 2
