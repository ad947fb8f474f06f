"""Relay connections over the sandbox: walks, windows, filters, ordering and their cost."""

from __future__ import annotations

from typing import Any

from tests.schema.conftest import Gateway

PAGE = """
query Page($first: Int, $after: String, $last: Int, $before: String, $filter: AppointmentFilter,
           $order: [AppointmentOrder!]) {
  appointments(first: $first, after: $after, last: $last, before: $before, filter: $filter,
               orderBy: $order) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { clinikoId startsAt status } }
  }
}
"""


async def _rest_all(gw: Gateway, params: list[tuple[str, str]]) -> tuple[list[str], int]:
    ids: list[str] = []
    page = 1
    while True:
        body = (
            await gw.rest.get(
                "individual_appointments",
                params=[*params, ("per_page", "100"), ("page", str(page))],
            )
        ).json()
        ids += [row["id"] for row in body["individual_appointments"]]
        if "next" not in body["links"]:
            return ids, body["total_entries"]
        page += 1


async def _page(gw: Gateway, **variables: Any) -> dict[str, Any]:
    body = await gw.query(PAGE, variables)
    assert "errors" not in body, body["errors"]
    connection: dict[str, Any] = body["data"]["appointments"]
    connection["requests"] = body["extensions"]["upstream"]["requests"]
    return connection


async def test_walking_forward_with_first_37_returns_every_row_once_in_order(gw: Gateway):
    expected, total = await _rest_all(gw, [("sort", "starts_at,id")])
    seen: list[str] = []
    after = None
    while True:
        connection = await _page(gw, first=37, after=after)
        assert connection["totalCount"] == total
        assert connection["requests"] <= 2
        seen += [edge["node"]["clinikoId"] for edge in connection["edges"]]
        assert connection["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert seen == expected
    assert len(seen) == total > 4000


async def test_walking_backward_with_last_and_before_returns_every_row_once(gw: Gateway):
    expected, total = await _rest_all(gw, [("sort", "starts_at,id")])
    seen: list[str] = []
    before = None
    while True:
        connection = await _page(gw, last=37, before=before)
        assert connection["totalCount"] == total
        assert connection["requests"] <= 2
        seen = [edge["node"]["clinikoId"] for edge in connection["edges"]] + seen
        if not connection["pageInfo"]["hasPreviousPage"]:
            break
        before = connection["pageInfo"]["startCursor"]
    assert seen == expected


async def test_last_without_before_costs_one_request(gw: Gateway):
    expected, total = await _rest_all(gw, [("sort", "starts_at,id")])
    connection = await _page(gw, last=10)
    assert connection["requests"] == 1
    assert [e["node"]["clinikoId"] for e in connection["edges"]] == expected[-10:]
    assert connection["pageInfo"]["hasNextPage"] is False
    assert connection["pageInfo"]["hasPreviousPage"] is True
    assert connection["totalCount"] == total


async def test_a_window_at_any_offset_costs_one_request_when_one_page_covers_it(gw: Gateway):
    first = await _page(gw, first=30)
    second = await _page(gw, first=30, after=first["pageInfo"]["endCursor"])
    # offset 30..59 (with its anchor row 29): a page of 30 starting at 30 covers it
    assert second["requests"] == 1
    big = await _page(gw, first=250)
    assert len(big["edges"]) == 250
    assert big["requests"] == 3


async def test_total_count_alone_costs_one_tiny_request(gw: Gateway):
    body = await gw.query("{ appointments { totalCount } }")
    _, total = await _rest_all(gw, [])
    assert body["data"]["appointments"]["totalCount"] == total
    assert body["extensions"]["upstream"]["requests"] == 1


async def test_out_of_range_arguments_are_bad_user_input_before_any_call(gw: Gateway):
    cases: list[dict[str, Any]] = [
        {"first": 0},
        {"first": 10000},
        {"last": -1},
        {"first": 5, "last": 5},
        {"after": "not-a-cursor", "first": 3},
        {
            "first": 5,
            "filter": {"startsAt": {"gte": "2025-03-10T00:00:00Z", "lt": "2025-03-01T00:00:00Z"}},
        },
        {
            "first": 5,
            "filter": {"startsAt": {"gt": "2025-03-10T00:00:00Z", "gte": "2025-03-01T00:00:00Z"}},
        },
        {"first": 5, "filter": {"patientIds": ["1"] * 101}},
    ]
    for variables in cases:
        body = await gw.query(PAGE, variables)
        assert body["data"] is None or body["data"]["appointments"] is None, variables
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", variables
        assert body["extensions"]["upstream"]["requests"] == 0, variables


async def test_a_cursor_from_another_filter_or_order_is_refused(gw: Gateway):
    connection = await _page(gw, first=5)
    cursor = connection["pageInfo"]["endCursor"]
    for variables in (
        {"first": 5, "after": cursor, "filter": {"didNotArrive": True}},
        {"first": 5, "after": cursor, "order": [{"field": "CREATED_AT"}]},
    ):
        body = await gw.query(PAGE, variables)
        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "different filter or order" in error["message"]


async def test_filters_map_onto_the_upstream_exactly(gw: Gateway):
    listed = await gw.query(
        """{ appointments(first: 40, filter: {startsAt: {gte: "2025-03-10T00:00:00Z"}}) {
              nodes { patient { clinikoId } practitioner { clinikoId } } } }"""
    )
    nodes = listed["data"]["appointments"]["nodes"]
    patients = sorted({n["patient"]["clinikoId"] for n in nodes})[:3]
    practitioner = nodes[0]["practitioner"]["clinikoId"]
    expected, total = await _rest_all(
        gw,
        [
            ("q[]", f"patient_id:={','.join(patients)}"),
            ("q[]", f"practitioner_id:={practitioner}"),
            ("q[]", "starts_at:>=2025-03-01T00:00:00Z"),
            ("q[]", "starts_at:<2025-06-01T00:00:00Z"),
            ("sort", "starts_at:desc,id:desc"),
        ],
    )
    connection = await _page(
        gw,
        first=100,
        filter={
            "patientIds": patients,
            "practitionerIds": [practitioner],
            "startsAt": {"gte": "2025-03-01T00:00:00Z", "lt": "2025-06-01T00:00:00+00:00"},
        },
        order=[{"field": "STARTS_AT", "direction": "DESC"}],
    )
    assert [e["node"]["clinikoId"] for e in connection["edges"]] == expected
    assert connection["totalCount"] == total


async def test_cancelled_and_archived_inclusion(gw: Gateway):
    default = await _page(gw, first=1)
    only_cancelled = await gw.query(
        """{ appointments(first: 100, filter: {cancelled: ONLY}) {
              totalCount nodes { status cancelledAt
                cancellation { reason reasonCode description note cancelledAt } } } }"""
    )
    connection = only_cancelled["data"]["appointments"]
    assert connection["totalCount"] > 0
    for node in connection["nodes"]:
        assert node["status"] in ("CANCELLED", "ARCHIVED", "DELETED")
        assert node["cancellation"]["cancelledAt"] == node["cancelledAt"]
    assert {n["cancellation"]["reason"] for n in connection["nodes"]} >= {"SICK", "OTHER"}
    included = await _page(gw, first=1, filter={"cancelled": "INCLUDE"})
    _, cancelled_total = await _rest_all(gw, [("q[]", "cancelled_at:?")])
    assert included["totalCount"] == default["totalCount"] + cancelled_total
    archived = await _page(gw, first=5, filter={"archived": "ONLY"})
    assert archived["totalCount"] > 0
    assert {e["node"]["status"] for e in archived["edges"]} <= {"ARCHIVED", "DELETED"}


async def test_an_empty_id_list_matches_nothing_without_a_call(gw: Gateway):
    connection = await _page(gw, first=5, filter={"patientIds": []})
    assert connection["totalCount"] == 0
    assert connection["edges"] == []
    assert connection["requests"] == 0


async def test_legacy_covid_cancellations_read_as_covid_19_related(gw: Gateway):
    legacy: list[dict[str, Any]] = []
    page = 1
    while not legacy:
        body = (
            await gw.rest.get(
                "individual_appointments",
                params=[("q[]", "cancelled_at:?"), ("per_page", "100"), ("page", str(page))],
            )
        ).json()
        legacy = [r for r in body["individual_appointments"] if r["cancellation_reason"] == 31]
        assert body["individual_appointments"], "the demo data has legacy code-31 rows"
        page += 1
    result = await gw.query(
        "query ($id: ID!) { appointment(id: $id) { status cancellation { reason reasonCode description } } }",
        {"id": legacy[0]["id"]},
    )
    assert result["data"]["appointment"] == {
        "status": "CANCELLED",
        "cancellation": {
            "reason": "COVID_19_RELATED",
            "reasonCode": 31,
            "description": "COVID-19 related",
        },
    }


async def test_rows_inserted_before_the_cursor_cause_no_duplicate_and_are_reported(gw: Gateway):
    first = await _page(gw, first=10)
    seen = [e["node"]["clinikoId"] for e in first["edges"]]
    template = (await gw.rest.get(f"individual_appointments/{seen[0]}")).json()

    def link(name: str) -> str:
        return str(template[name]["links"]["self"]).rsplit("/", 1)[1]

    for minute in range(3):  # three rows that sort before every existing one
        created = await gw.rest.post(
            "individual_appointments",
            json={
                "starts_at": f"2000-01-01T09:0{minute}:00Z",
                "patient_id": link("patient"),
                "practitioner_id": link("practitioner"),
                "business_id": link("business"),
                "appointment_type_id": link("appointment_type"),
            },
        )
        assert created.status_code == 201
    body = await gw.query(PAGE, {"first": 10, "after": first["pageInfo"]["endCursor"]})
    second = body["data"]["appointments"]
    expected, total = await _rest_all(gw, [("sort", "starts_at,id")])
    assert second["totalCount"] == total == first["totalCount"] + 3
    second_ids = [e["node"]["clinikoId"] for e in second["edges"]]
    assert not set(second_ids) & set(seen)
    # the page continues right after the last row the client saw
    assert second_ids == expected[expected.index(seen[-1]) + 1 :][: len(second_ids)]
    assert body["extensions"]["pagination"] == {"driftedPages": [{"anchor": "moved", "drift": 3}]}


async def test_a_cancellation_code_the_gateway_does_not_know_reads_as_unknown(gw: Gateway):
    # Cliniko may add a reason code later: imitate that in the sandbox's own storage.
    cancelled = await _page(gw, first=1, filter={"cancelled": "ONLY"})
    target = cancelled["edges"][0]["node"]["clinikoId"]
    gw.sandbox.state.sandbox.store.update_appointments([int(target)], {"cancellation_reason": 70})
    body = await gw.query(
        """query ($id: ID!) { appointment(id: $id) { status cancellation { reason reasonCode } } }""",
        {"id": target},
    )
    assert "errors" not in body
    assert body["data"]["appointment"] == {
        "status": "CANCELLED",
        "cancellation": {"reason": "UNKNOWN", "reasonCode": 70},
    }
