"""q[] filters: every documented operator per type, hidden rows, and the 400s."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from .conftest import (
    ANCHOR,
    SYNC_POLLS,
    changed_since,
    fetch_all,
    link_id,
    state_of,
    total_entries,
)

ALL_HIDDEN = ("cancelled_at:*", "archived_at:*", "deleted_at:*")
APPOINTMENTS = "/v1/individual_appointments"


async def rows(client: httpx.AsyncClient, path: str, *filters: str) -> list[dict[str, Any]]:
    return await fetch_all(client, path, {"q[]": list(filters)})


async def busiest_practitioner(client: httpx.AsyncClient) -> str:
    body = (await client.get("/v1/practitioners", params={"per_page": 1})).json()
    practitioner_id: str = body["practitioners"][0]["id"]
    return practitioner_id


def is_hidden(appointment: dict[str, Any]) -> bool:
    return any(appointment[k] is not None for k in ("cancelled_at", "archived_at", "deleted_at"))


# --- numeric -----------------------------------------------------------------------------


async def test_numeric_equals_takes_a_comma_list_of_ids(client: httpx.AsyncClient) -> None:
    sample = (await client.get(APPOINTMENTS, params={"per_page": 5})).json()
    wanted = [a["id"] for a in sample["individual_appointments"]][::2]
    found = await rows(client, APPOINTMENTS, f"id:={','.join(wanted)}")
    assert sorted(a["id"] for a in found) == sorted(wanted)
    single = await rows(client, APPOINTMENTS, f"id:={wanted[0]}")
    assert [a["id"] for a in single] == [wanted[0]]


async def test_numeric_id_lists_batch_related_resources(client: httpx.AsyncClient) -> None:
    patients = (await client.get("/v1/patients", params={"per_page": 30})).json()["patients"]
    wanted = sorted(p["id"] for p in patients)
    found = await rows(client, "/v1/patients", f"id:={','.join(wanted)}")
    assert sorted(p["id"] for p in found) == wanted


async def test_numeric_comparisons_match_python(client: httpx.AsyncClient) -> None:
    practitioner = await busiest_practitioner(client)
    base = await rows(client, APPOINTMENTS, f"practitioner_id:={practitioner}")
    assert len(base) > 60
    ids = sorted(int(a["id"]) for a in base)
    pivot = ids[len(ids) // 2]
    expectations = {
        ">": [i for i in ids if i > pivot],
        ">=": [i for i in ids if i >= pivot],
        "<": [i for i in ids if i < pivot],
        "<=": [i for i in ids if i <= pivot],
        "!=": [i for i in ids if i != pivot],
    }
    for symbol, expected in expectations.items():
        found = await rows(
            client, APPOINTMENTS, f"practitioner_id:={practitioner}", f"id:{symbol}{pivot}"
        )
        assert sorted(int(a["id"]) for a in found) == expected, symbol


async def test_numeric_not_equals_excludes_one_patient(client: httpx.AsyncClient) -> None:
    practitioner = await busiest_practitioner(client)
    base = await rows(client, APPOINTMENTS, f"practitioner_id:={practitioner}")
    patient = link_id(base[0]["patient"])
    found = await rows(
        client, APPOINTMENTS, f"practitioner_id:={practitioner}", f"patient_id:!={patient}"
    )
    assert found
    assert all(link_id(a["patient"]) != patient for a in found)
    assert len(found) == sum(link_id(a["patient"]) != patient for a in base)


async def test_numeric_present_and_absent_on_repeated_from_id(client: httpx.AsyncClient) -> None:
    children = await rows(client, APPOINTMENTS, "repeated_from_id:?")
    assert children
    assert all("repeated_from" in a and a["repeats"] is None for a in children)
    practitioner = await busiest_practitioner(client)
    not_children = await rows(
        client, APPOINTMENTS, f"practitioner_id:={practitioner}", "repeated_from_id:!?"
    )
    assert not_children
    assert all("repeated_from" not in a for a in not_children)


# --- date-time ---------------------------------------------------------------------------


async def test_datetime_range_operators(client: httpx.AsyncClient) -> None:
    practitioner = await busiest_practitioner(client)
    base = await rows(client, APPOINTMENTS, f"practitioner_id:={practitioner}")
    starts = sorted(a["starts_at"] for a in base)
    pivot = starts[len(starts) // 3]
    cases: dict[str, Callable[[str, str], bool]] = {
        ">": operator.gt,
        ">=": operator.ge,
        "<": operator.lt,
        "<=": operator.le,
    }
    for symbol, keep in cases.items():
        found = await rows(
            client, APPOINTMENTS, f"practitioner_id:={practitioner}", f"starts_at:{symbol}{pivot}"
        )
        assert sorted(a["starts_at"] for a in found) == [s for s in starts if keep(s, pivot)], (
            symbol
        )


async def test_datetime_offsets_are_converted_to_utc(client: httpx.AsyncClient) -> None:
    utc = await rows(client, "/v1/patients", "created_at:>=2023-01-01T00:00:00Z")
    offset = await rows(client, "/v1/patients", "created_at:>=2023-01-01T10:00:00+10:00")
    assert utc
    assert [p["id"] for p in utc] == [p["id"] for p in offset]


async def test_datetime_fractional_seconds_compare_exactly(client: httpx.AsyncClient) -> None:
    first = (await client.get(APPOINTMENTS, params={"per_page": 1})).json()
    appointment = first["individual_appointments"][0]
    starts = appointment["starts_at"]  # e.g. 2025-01-01T00:00:00Z
    half = starts[:-1] + ".5Z"
    expected = {">=": 0, ">": 0, "<": 1, "<=": 1}
    for symbol, count in expected.items():
        found = await rows(
            client, APPOINTMENTS, f"id:={appointment['id']}", f"starts_at:{symbol}{half}"
        )
        assert len(found) == count, symbol
    exact = await rows(client, APPOINTMENTS, f"id:={appointment['id']}", f"starts_at:>={starts}")
    assert len(exact) == 1


async def test_cancelled_rows_are_hidden_until_a_filter_names_cancelled_at(
    client: httpx.AsyncClient,
) -> None:
    practitioner = await busiest_practitioner(client)
    default = await rows(client, APPOINTMENTS, f"practitioner_id:={practitioner}")
    assert not any(is_hidden(a) for a in default)
    with_cancelled = await rows(
        client, APPOINTMENTS, f"practitioner_id:={practitioner}", "cancelled_at:*"
    )
    cancelled = [a for a in with_cancelled if a["cancelled_at"] is not None]
    assert cancelled
    assert all(a["archived_at"] is None for a in with_cancelled)  # archived stay hidden
    assert len(with_cancelled) == len(default) + len(cancelled)
    only = await rows(client, APPOINTMENTS, f"practitioner_id:={practitioner}", "cancelled_at:?")
    assert sorted(a["id"] for a in only) == sorted(a["id"] for a in cancelled)
    recent = await rows(
        client,
        APPOINTMENTS,
        f"practitioner_id:={practitioner}",
        "cancelled_at:>2025-03-01T00:00:00Z",
    )
    assert {a["id"] for a in recent} == {
        a["id"] for a in cancelled if a["cancelled_at"] > "2025-03-01T00:00:00Z"
    }
    absent = await rows(client, APPOINTMENTS, f"practitioner_id:={practitioner}", "cancelled_at:!?")
    assert sorted(a["id"] for a in absent) == sorted(a["id"] for a in default)


async def test_archived_and_deleted_rows_need_their_own_filters(
    client: httpx.AsyncClient,
) -> None:
    archived = await rows(client, APPOINTMENTS, "archived_at:?")
    assert archived
    assert all(a["archived_at"] and a["deleted_at"] is None for a in archived)
    deleted = await rows(client, APPOINTMENTS, "deleted_at:?")
    assert len(deleted) == 2
    everything = (await client.get(APPOINTMENTS, params={"q[]": list(ALL_HIDDEN)})).json()
    default = (await client.get(APPOINTMENTS)).json()
    assert everything["total_entries"] > default["total_entries"]


async def test_deleted_at_star_reveals_deleted_rows_and_all_three_list_every_row(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    deleted = await rows(client, APPOINTMENTS, "deleted_at:?")
    assert deleted
    deleted_ids = {a["id"] for a in deleted}
    shown = {a["id"] for a in await rows(client, APPOINTMENTS, "deleted_at:*")}
    assert deleted_ids <= shown
    assert not deleted_ids & {a["id"] for a in await rows(client, APPOINTMENTS)}
    assert not deleted_ids & {
        a["id"] for a in await rows(client, APPOINTMENTS, "cancelled_at:*", "archived_at:*")
    }
    everything = await rows(client, APPOINTMENTS, *ALL_HIDDEN)
    assert len(everything) == len({a["id"] for a in everything})
    assert len(everything) == state_of(app).count_appointments("a")
    assert await total_entries(client, APPOINTMENTS, *ALL_HIDDEN) == len(everything)


async def test_get_by_id_of_a_deleted_appointment_is_404_unless_deleted_at_is_named(
    client: httpx.AsyncClient,
) -> None:
    deleted_id = (await rows(client, APPOINTMENTS, "deleted_at:?"))[0]["id"]
    for filters in ([], ["cancelled_at:*"], ["archived_at:*"], ["cancelled_at:*", "archived_at:*"]):
        response = await client.get(f"{APPOINTMENTS}/{deleted_id}", params={"q[]": filters})
        assert response.status_code == 404, filters
    # SPEC25 documents deleted_at on the get endpoint, so naming it is the way to see the row.
    shown = await client.get(f"{APPOINTMENTS}/{deleted_id}", params={"q[]": "deleted_at:*"})
    assert shown.status_code == 200
    assert shown.json()["deleted_at"] is not None


@pytest.mark.parametrize("path", SYNC_POLLS)
@pytest.mark.parametrize("op", [">=", ">"])
async def test_updated_at_polls_work_on_every_list(
    client: httpx.AsyncClient, path: str, op: str
) -> None:
    everything = await rows(client, path, *SYNC_POLLS[path])
    stamps = sorted({r["updated_at"] for r in everything})
    since = stamps[len(stamps) // 2]
    compare = operator.ge if op == ">=" else operator.gt
    expected = [r for r in everything if compare(r["updated_at"], since)]
    found = await changed_since(client, path, since, op=op)
    assert sorted(r["id"] for r in found) == sorted(r["id"] for r in expected)
    assert [(r["updated_at"], int(r["id"])) for r in found] == sorted(
        (r["updated_at"], int(r["id"])) for r in found
    )
    if op == ">=":
        assert found
    filters = (f"updated_at:{op}{since}", *SYNC_POLLS[path])
    assert await total_entries(client, path, *filters) == len(expected)


@pytest.mark.parametrize(
    ("path", "filters"),
    [
        (APPOINTMENTS, ()),
        (APPOINTMENTS, ALL_HIDDEN),
        (APPOINTMENTS, ("cancelled_at:?",)),
        (APPOINTMENTS, ("did_not_arrive:=true", "cancelled_at:*")),
        (APPOINTMENTS, ("starts_at:>=2025-03-10T00:00:00Z", "archived_at:*")),
        (APPOINTMENTS, ("updated_at:>=2025-03-01T00:00:00Z", *ALL_HIDDEN)),
        (APPOINTMENTS, ("id:=1",)),
        ("/v1/patients", ("archived_at:*",)),
        ("/v1/patients", ("last_name:~an",)),
        ("/v1/practitioners/inactive", ()),
        ("/v1/patient_cases", ("closed_at:?", "archived_at:*")),
    ],
)
async def test_total_entries_is_exact_for_filtered_lists(
    client: httpx.AsyncClient, path: str, filters: tuple[str, ...]
) -> None:
    assert await total_entries(client, path, *filters) == len(await rows(client, path, *filters))


async def test_get_by_id_of_a_cancelled_appointment_needs_the_filter(
    client: httpx.AsyncClient,
) -> None:
    cancelled = (await client.get(APPOINTMENTS, params={"q[]": "cancelled_at:?"})).json()
    appointment_id = cancelled["individual_appointments"][0]["id"]
    assert (await client.get(f"{APPOINTMENTS}/{appointment_id}")).status_code == 404
    shown = await client.get(f"{APPOINTMENTS}/{appointment_id}", params={"q[]": "cancelled_at:*"})
    assert shown.status_code == 200
    assert shown.json()["id"] == appointment_id
    refused = await client.get(f"{APPOINTMENTS}/{appointment_id}", params={"q[]": "starts_at:*"})
    assert refused.status_code == 400  # the get endpoint documents only three filters


async def test_archived_related_rows_are_hidden_from_lists_and_gets(
    client: httpx.AsyncClient,
) -> None:
    default = await rows(client, "/v1/patients")
    archived = await rows(client, "/v1/patients", "archived_at:?")
    assert len(archived) == 8
    assert not {p["id"] for p in archived} & {p["id"] for p in default}
    patient_id = archived[0]["id"]
    assert (await client.get(f"/v1/patients/{patient_id}")).status_code == 404
    shown = await client.get(f"/v1/patients/{patient_id}", params={"q[]": "archived_at:*"})
    assert shown.status_code == 200
    assert shown.json()["archived_at"] is not None
    types = await rows(client, "/v1/appointment_types", "archived_at:*")
    assert len(types) == len(await rows(client, "/v1/appointment_types")) + 1


async def test_practitioners_split_into_active_and_inactive(client: httpx.AsyncClient) -> None:
    active = await rows(client, "/v1/practitioners")
    inactive = await fetch_all(client, "/v1/practitioners/inactive")
    assert len(active) == 28
    assert len(inactive) == 2
    assert all(p["active"] for p in active)
    assert not any(p["active"] for p in inactive)
    got = await client.get(f"/v1/practitioners/{inactive[0]['id']}")
    assert got.status_code == 200
    assert got.json()["active"] is False
    nobody = await rows(client, "/v1/practitioners", "active:=false")
    assert nobody == []


# --- boolean, string, date, array ----------------------------------------------------------


async def test_boolean_equals_and_not_equals(client: httpx.AsyncClient) -> None:
    practitioner = await busiest_practitioner(client)
    base = await rows(client, APPOINTMENTS, f"practitioner_id:={practitioner}")
    dna = await rows(
        client, APPOINTMENTS, f"practitioner_id:={practitioner}", "did_not_arrive:=true"
    )
    not_dna = await rows(
        client, APPOINTMENTS, f"practitioner_id:={practitioner}", "did_not_arrive:!=true"
    )
    assert dna
    assert all(a["did_not_arrive"] is True for a in dna)
    assert all(a["did_not_arrive"] is False for a in not_dna)
    assert len(dna) + len(not_dna) == len(base)


async def test_string_operators(client: httpx.AsyncClient) -> None:
    exact = await rows(client, "/v1/patients", "first_name:=Zoë")
    assert exact
    assert all(p["first_name"] == "Zoë" for p in exact)
    others = await rows(client, "/v1/patients", "first_name:!=Zoë")
    assert len(exact) + len(others) == len(await rows(client, "/v1/patients"))
    contains = await rows(client, "/v1/patients", "last_name:~guy")
    assert contains
    assert all("guy" in p["last_name"].lower() for p in contains)
    assert any(p["last_name"] == "Nguyễn" for p in contains)
    pattern = await rows(client, "/v1/patients", "email:~~patient1%.a@example.com")
    assert pattern
    assert all(
        p["email"].startswith("patient1") and p["email"].endswith(".a@example.com") for p in pattern
    )
    literal_percent = await rows(client, "/v1/patients", "email:~%")
    assert literal_percent == []  # "~" escapes LIKE wildcards
    present = await rows(client, "/v1/patients", "preferred_first_name:?")
    absent = await rows(client, "/v1/patients", "preferred_first_name:!?")
    assert present
    assert all(p["preferred_first_name"] for p in present)
    assert all(p["preferred_first_name"] is None for p in absent)
    assert len(present) + len(absent) == len(others) + len(exact)


async def test_date_operators_and_wildcards(client: httpx.AsyncClient) -> None:
    patients = await rows(client, "/v1/patients")
    births = sorted(p["date_of_birth"] for p in patients)
    pivot = births[len(births) // 2]
    cases: dict[str, Callable[[str, str], bool]] = {
        "=": operator.eq,
        ">": operator.gt,
        ">=": operator.ge,
        "<": operator.lt,
        "<=": operator.le,
    }
    for symbol, keep in cases.items():
        found = await rows(client, "/v1/patients", f"date_of_birth:{symbol}{pivot}")
        assert sorted(p["date_of_birth"] for p in found) == [d for d in births if keep(d, pivot)]
    may = await rows(client, "/v1/patients", "date_of_birth:=****-05-**")
    assert sorted(p["date_of_birth"] for p in may) == [d for d in births if d[5:7] == "05"]
    cases_with_expiry = await rows(client, "/v1/patient_cases", "expiry_date:?")
    assert len(cases_with_expiry) == len(await rows(client, "/v1/patient_cases"))
    assert await rows(client, "/v1/patient_cases", "expiry_date:!?") == []


async def test_array_contains(client: httpx.AsyncClient) -> None:
    types = await rows(client, "/v1/appointment_types")
    businesses = await rows(client, "/v1/businesses", f"appointment_type_ids:~{types[0]['id']}")
    assert len(businesses) == 3
    archived_type = (await rows(client, "/v1/appointment_types", "archived_at:?"))[0]["id"]
    assert await rows(client, "/v1/businesses", f"appointment_type_ids:~{archived_type}") == []


async def test_repeated_filters_are_anded(client: httpx.AsyncClient) -> None:
    practitioner = await busiest_practitioner(client)
    since = ANCHOR.strftime("%Y-%m-%dT%H:%M:%SZ")
    found = await rows(
        client, APPOINTMENTS, f"practitioner_id:={practitioner}", f"starts_at:>={since}"
    )
    assert found
    assert all(
        link_id(a["practitioner"]) == practitioner and a["starts_at"] >= since for a in found
    )


async def test_percent_encoded_brackets_are_the_same_parameter(client: httpx.AsyncClient) -> None:
    plain = (await client.get(APPOINTMENTS, params={"q[]": "did_not_arrive:=true"})).json()
    encoded = (await client.get(f"{APPOINTMENTS}?q%5B%5D=did_not_arrive%3A%3Dtrue")).json()
    assert plain["total_entries"] == encoded["total_entries"] > 0
    unfiltered = (await client.get(APPOINTMENTS)).json()["total_entries"]
    assert encoded["total_entries"] < unfiltered


# --- 400s ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "q", "message"),
    [
        (APPOINTMENTS, "patient_case_id:=1", "patient_case_id is not filterable"),
        (APPOINTMENTS, "recall_at:>2024-01-01T00:00:00Z", "recall_at is not filterable"),
        (APPOINTMENTS, "patient_id:=abc", "Filter value for patient_id must be a number"),
        (APPOINTMENTS, "id:=1,x", "Filter value for id must be a number"),
        (APPOINTMENTS, "id:>1,2", "Filter value for id must be a number"),
        (
            APPOINTMENTS,
            "starts_at:>yesterday",
            "Filter value for starts_at must be a UTC date-time",
        ),
        (APPOINTMENTS, "starts_at:>2024-01-01T00:00:00", "must be a UTC date-time"),
        (APPOINTMENTS, "starts_at:>2024-01-01", "must be a UTC date-time"),
        (APPOINTMENTS, "starts_at:=2024-01-01T00:00:00Z", "Operator '=' is not supported"),
        (APPOINTMENTS, "did_not_arrive:>true", "Operator '>' is not supported"),
        (APPOINTMENTS, "did_not_arrive:=yes", "must be true or false"),
        (APPOINTMENTS, "cancelled_at:*now", "takes no value"),
        (APPOINTMENTS, "starts_at", "expected <field>:<operator><value>"),
        (APPOINTMENTS, "id:#1", "is not supported"),
        ("/v1/patients", "first_name:>A", "Operator '>' is not supported"),
        ("/v1/patients", "date_of_birth:=1990-13-01", "must be a date"),
        ("/v1/patients", "date_of_birth:*", "Operator '*' is not supported"),
        ("/v1/businesses", "appointment_type_ids:=1", "Operator '=' is not supported"),
        ("/v1/practitioners", "archived_at:*", "archived_at is not filterable"),
    ],
)
async def test_bad_filters_are_400_with_a_message(
    client: httpx.AsyncClient, path: str, q: str, message: str
) -> None:
    response = await client.get(path, params={"q[]": q})
    assert response.status_code == 400
    assert message in response.json()["message"]


async def test_sql_metacharacters_in_values_are_just_data(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/patients", params={"q[]": "last_name:=x' OR '1'='1"})
    assert response.status_code == 200
    assert response.json()["total_entries"] == 0
