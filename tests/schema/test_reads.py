"""The read API over real HTTP against the sandbox: shapes, ids, errors and upstream cost."""

from __future__ import annotations

import base64

from tests.schema.conftest import Gateway

#: Upcoming appointments from the sandbox's anchor week on, as a calendar screen asks.
#: (The past holds appointments of inactive practitioners, which Cliniko lists at a
#: separate endpoint: one more request when a page contains one.)
CALENDAR = """
query Calendar($first: Int!) {
  appointments(first: $first, filter: {startsAt: {gte: "2025-03-10T00:00:00Z"}}) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges {
      cursor
      node {
        id clinikoId startsAt endsAt status patientName notes
        patient { id firstName lastName dateOfBirth }
        practitioner { displayName designation }
        business { businessName timeZoneIdentifier }
        appointmentType { name color durationInMinutes }
      }
    }
  }
}
"""


async def test_calendar_of_100_costs_one_list_and_four_batched_lookups(gw: Gateway):
    body = await gw.query(CALENDAR, {"first": 100})
    assert "errors" not in body
    edges = body["data"]["appointments"]["edges"]
    assert len(edges) == 100
    assert body["extensions"]["upstream"]["requests"] == 5
    routes = gw.routes()
    assert routes == {
        "GET /v1/individual_appointments": 1,
        "GET /v1/patients": 1,
        "GET /v1/practitioners": 1,
        "GET /v1/businesses": 1,
        "GET /v1/appointment_types": 1,
    }
    for edge in edges:
        node = edge["node"]
        assert node["patient"]["firstName"]
        assert node["practitioner"]["displayName"]
        assert node["business"]["businessName"]
        assert node["appointmentType"]["durationInMinutes"] > 0


async def test_nested_objects_match_the_upstream_rows(gw: Gateway):
    body = await gw.query(CALENDAR, {"first": 20})
    for edge in body["data"]["appointments"]["edges"]:
        node = edge["node"]
        raw = (await gw.rest.get(f"individual_appointments/{node['clinikoId']}")).json()
        patient_id = raw["patient"]["links"]["self"].rsplit("/", 1)[1]
        patient = (await gw.rest.get(f"patients/{patient_id}")).json()
        assert node["patient"]["firstName"] == patient["first_name"]
        assert node["patient"]["lastName"] == patient["last_name"]
        assert node["startsAt"] == raw["starts_at"]
        assert node["patientName"] == raw["patient_name"]
        assert base64.b64decode(node["patient"]["id"]).decode() == f"Patient:{patient_id}"


async def test_ids_only_relations_cost_no_lookup(gw: Gateway):
    body = await gw.query(
        """{ appointments(first: 50) { nodes {
              clinikoId patient { id clinikoId } practitioner { clinikoId __typename }
              business { id } appointmentType { clinikoId } } } }"""
    )
    assert "errors" not in body
    assert body["extensions"]["upstream"]["requests"] == 1
    node = body["data"]["appointments"]["nodes"][0]
    raw = (await gw.rest.get(f"individual_appointments/{node['clinikoId']}")).json()
    assert node["patient"]["clinikoId"] == raw["patient"]["links"]["self"].rsplit("/", 1)[1]
    assert node["practitioner"]["__typename"] == "Practitioner"


async def test_appointment_by_id_with_patient_ids_costs_one_call(gw: Gateway):
    listed = await gw.query("{ appointments(first: 1) { nodes { id clinikoId } } }")
    appointment = listed["data"]["appointments"]["nodes"][0]
    for given in (appointment["id"], appointment["clinikoId"]):
        body = await gw.query(
            "query ($id: ID!) { appointment(id: $id) { clinikoId patientName patient { id clinikoId } } }",
            {"id": given},
        )
        assert body["data"]["appointment"]["clinikoId"] == appointment["clinikoId"]
        assert body["extensions"]["upstream"]["requests"] == 1


async def test_node_with_twenty_mixed_ids_costs_at_most_three_calls(gw: Gateway):
    listed = await gw.query(
        """{ appointments(first: 10, filter: {startsAt: {gte: "2025-03-10T00:00:00Z"}}) {
              nodes { id patient { id } practitioner { id } } } }"""
    )
    nodes = listed["data"]["appointments"]["nodes"]
    ids = [n["id"] for n in nodes[:8]]
    ids += list(dict.fromkeys(n["patient"]["id"] for n in nodes))[:7]
    ids += list(dict.fromkeys(n["practitioner"]["id"] for n in nodes))[:5]
    ids = ids[:20]
    body = await gw.query(
        """query ($ids: [ID!]!) { nodes(ids: $ids) {
              __typename id
              ... on Appointment { startsAt }
              ... on Patient { firstName }
              ... on Practitioner { displayName } } }""",
        {"ids": ids},
    )
    assert "errors" not in body
    assert [n["id"] for n in body["data"]["nodes"]] == ids
    assert body["extensions"]["upstream"]["requests"] <= 3
    kinds = {n["__typename"] for n in body["data"]["nodes"]}
    assert kinds == {"Appointment", "Patient", "Practitioner"}


async def test_a_missing_record_is_null_with_not_found_on_its_path(gw: Gateway):
    body = await gw.query("""{ appointment(id: "1000000000000000001") { id } version }""")
    assert body["data"] == {"appointment": None, "version": body["data"]["version"]}
    [error] = body["errors"]
    assert error["path"] == ["appointment"]
    assert error["extensions"]["code"] == "NOT_FOUND"


async def test_nodes_keeps_found_items_and_nulls_missing_ones(gw: Gateway):
    listed = await gw.query("{ appointments(first: 1) { nodes { id } } }")
    real = listed["data"]["appointments"]["nodes"][0]["id"]
    missing = base64.b64encode(b"Patient:1000000000000000001").decode()
    body = await gw.query(
        "query ($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [real, missing]}
    )
    assert body["data"]["nodes"] == [{"id": real}, None]
    [error] = body["errors"]
    assert error["path"] == ["nodes", 1]
    assert error["extensions"]["code"] == "NOT_FOUND"


async def test_malformed_ids_are_bad_user_input_without_upstream_calls(gw: Gateway):
    wrong_type = base64.b64encode(b"Patient:123").decode()
    for document in (
        '{ appointment(id: "abc") { id } }',
        '{ node(id: "123") { id } }',
        '{ node(id: "bm90LWEtbm9kZQ==") { id } }',
        f'{{ appointment(id: "{wrong_type}") {{ id }} }}',
        '{ appointments(filter: {patientIds: ["x1"]}) { totalCount } }',
        '{ appointment(id: "99999999999999999999") { id } }',
    ):
        body = await gw.query(document)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", document
        assert body["extensions"]["upstream"]["requests"] == 0, document


async def test_nineteen_digit_ids_survive_every_round_trip(gw: Gateway):
    listed = await gw.query(
        "{ appointments(first: 3) { nodes { clinikoId patient { clinikoId } } } }"
    )
    for node in listed["data"]["appointments"]["nodes"]:
        cid = node["clinikoId"]
        assert len(cid) == 19
        assert int(cid) > 2**53
        body = await gw.query(
            """query ($id: ID!, $patient: ID!) {
                 appointment(id: $id) { clinikoId id }
                 patient(id: $patient) { clinikoId }
                 appointments(filter: {ids: [$id], patientIds: [$patient]}) {
                   nodes { clinikoId patient { clinikoId } } } }""",
            {"id": cid, "patient": node["patient"]["clinikoId"]},
        )
        data = body["data"]
        assert data["appointment"]["clinikoId"] == cid
        assert base64.b64decode(data["appointment"]["id"]).decode() == f"Appointment:{cid}"
        assert data["patient"]["clinikoId"] == node["patient"]["clinikoId"]
        assert data["appointments"]["nodes"] == [node]


async def test_has_conflicts_is_only_fetched_when_selected(gw: Gateway):
    plain = await gw.query("{ appointments(first: 10) { nodes { id } } }")
    assert plain["extensions"]["upstream"]["requests"] == 1
    body = await gw.query("{ appointments(first: 10) { nodes { clinikoId hasConflicts } } }")
    assert body["extensions"]["upstream"]["requests"] == 11
    conflicts = gw.routes()["GET /v1/individual_appointments/{id}/conflicts"]
    assert conflicts == 10
    for node in body["data"]["appointments"]["nodes"][:3]:
        raw = (await gw.rest.get(f"individual_appointments/{node['clinikoId']}/conflicts")).json()
        assert node["hasConflicts"] is raw["conflicts"]["exist"]


async def test_a_refused_datetime_is_bad_user_input_not_an_internal_error(gw: Gateway):
    for document, variables in (
        ('{ appointments(filter: {startsAt: {gte: "soon"}}) { totalCount } }', None),
        (
            "query($d: DateTime!) { appointments(filter: {startsAt: {gte: $d}}) { totalCount } }",
            {"d": "2025-03-10T09:00:00"},  # no time zone
        ),
    ):
        body = await gw.query(document, variables)
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", document
        assert "DateTime" in error["message"]
        assert gw.sandbox_requests == 0
