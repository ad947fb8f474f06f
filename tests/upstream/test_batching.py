from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from appointments_gateway.upstream import (
    MAX_BATCH_QUERY_CHARS,
    PATIENT_LIST,
    Credential,
    InvalidRequest,
    UpstreamClient,
    UpstreamNotFound,
    chunk_ids,
)

from .conftest import ClientFactory, Recorder, example_appointment, json_response, record_json

BIG = "9223372036854775807"


def ids_of(request: httpx.Request) -> list[str]:
    (id_filter,) = [q for q in request.url.params.get_list("q[]") if q.startswith("id:=")]
    return id_filter.removeprefix("id:=").split(",")


def echo(list_key: str, *, known: set[str] | None = None) -> Any:
    """Answer a batch with one record per requested id (only ``known`` ones if given)."""

    def respond(request: httpx.Request) -> httpx.Response:
        rows = [record_json(i) for i in ids_of(request) if known is None or i in known]
        return json_response(200, {list_key: rows, "total_entries": len(rows), "links": {}})

    return respond


async def test_batch_wire_format(make_client: ClientFactory, credential: Credential) -> None:
    recorder = Recorder(echo("patients"))
    session = make_client(recorder).session(credential)
    found = await session.patients.by_ids(["3", "1", "2"])
    assert set(found) == {"1", "2", "3"}
    (request,) = recorder.requests
    assert request.method == "GET"
    assert request.url.path == "/v1/patients"
    assert request.url.params.get_list("q[]") == ["id:=3,1,2"]
    assert request.url.params["per_page"] == "100"
    assert request.url.params["page"] == "1"
    assert b"q%5B%5D=id%3A%3D3%2C1%2C2" in request.url.raw_path


async def test_batch_dedupes_and_drops_missing_ids(
    make_client: ClientFactory, credential: Credential
) -> None:
    recorder = Recorder(echo("patients", known={"1", "3"}))
    session = make_client(recorder).session(credential)
    found = await session.patients.by_ids(["1", "2", "1", "3", "3"])
    assert found.keys() == {"1", "3"}
    assert found["1"].id == "1"
    assert ids_of(recorder.last) == ["1", "2", "3"]


async def test_batch_ignores_rows_that_were_not_asked_for(
    make_client: ClientFactory, credential: Credential
) -> None:
    body = {"patients": [record_json("1"), record_json("99")], "total_entries": 2}
    session = make_client(lambda r: json_response(200, body)).session(credential)
    assert set(await session.patients.by_ids(["1"])) == {"1"}


async def test_empty_batch_sends_nothing(
    make_client: ClientFactory, credential: Credential
) -> None:
    recorder = Recorder(echo("patients"))
    session = make_client(recorder).session(credential)
    assert await session.patients.by_ids([]) == {}
    assert recorder.requests == []
    assert session.stats.requests == 0


async def test_batch_chunks_at_100_ids_concurrently_and_merges(
    make_client: ClientFactory, credential: Credential
) -> None:
    in_flight = 0
    peak = 0

    class Concurrent(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.requests: list[httpx.Request] = []

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal in_flight, peak
            self.requests.append(request)
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            return echo("appointment_types")(request)  # type: ignore[no-any-return]

    transport = Concurrent()
    async with UpstreamClient(user_agent="T (t@example.com)", transport=transport) as client:
        session = client.session(credential)
        ids = [str(10**18 + n) for n in range(250)]
        found = await session.appointment_types.by_ids(ids)
    assert set(found) == set(ids)
    assert [len(ids_of(r)) for r in transport.requests] == [100, 100, 50]
    assert sorted(i for r in transport.requests for i in ids_of(r)) == sorted(ids)
    assert peak == 3
    assert session.stats.requests == 3


def test_chunking_respects_the_url_budget() -> None:
    ids = [BIG] * 100
    # 19-digit ids cost 22 chars each once the comma is encoded: 100 fit in the default budget.
    assert [len(c) for c in chunk_ids(ids)] == [100]
    assert [len(c) for c in chunk_ids(ids, max_query_chars=1_000)] == [44, 44, 12]
    for chunk in chunk_ids(ids, max_query_chars=1_000):
        encoded = len("q%5B%5D=id%3A%3D") + len("%2C".join(chunk))
        assert encoded <= 1_000
    assert [len(c) for c in chunk_ids(ids, max_query_chars=1_000, reserved_chars=500)] == [
        22, 22, 22, 22, 12,
    ]  # fmt: skip
    assert chunk_ids(["1", "2", "3"], max_ids=2) == [["1", "2"], ["3"]]
    assert chunk_ids([]) == []


async def test_batch_of_100_max_length_ids_fits_one_request(
    make_client: ClientFactory, credential: Credential
) -> None:
    recorder = Recorder(echo("patients"))
    session = make_client(recorder).session(credential)
    ids = [str(9223372036854775807 - n) for n in range(100)]
    await session.patients.by_ids(ids)
    (request,) = recorder.requests
    assert len(request.url.query) < MAX_BATCH_QUERY_CHARS
    assert ids_of(request) == ids


async def test_batch_with_extra_filters(make_client: ClientFactory, credential: Credential) -> None:
    recorder = Recorder(echo("patients"))
    session = make_client(recorder).session(credential)
    await session.patients.by_ids(
        ["1"], include_archived=True, filters=[PATIENT_LIST.where("first_name", "~", "an")]
    )
    assert recorder.last.url.params.get_list("q[]") == ["id:=1", "first_name:~an", "archived_at:*"]


async def test_appointments_batch_can_include_hidden_rows(
    make_client: ClientFactory, credential: Credential
) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        rows = [example_appointment(id=i) for i in ids_of(request)]
        return json_response(200, {"individual_appointments": rows, "total_entries": len(rows)})

    recorder = Recorder(respond)
    session = make_client(recorder).session(credential)
    found = await session.appointments.by_ids([BIG, "1390726237298631770"], include_cancelled=True)
    assert set(found) == {BIG, "1390726237298631770"}
    assert recorder.last.url.path == "/v1/individual_appointments"
    assert recorder.last.url.params.get_list("q[]") == [
        f"id:={BIG},1390726237298631770",
        "cancelled_at:*",
    ]


async def test_practitioners_batch_falls_back_to_the_inactive_list(
    make_client: ClientFactory, credential: Credential
) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        known = {"1"} if request.url.path == "/v1/practitioners" else {"2"}
        return echo("practitioners", known=known)(request)  # type: ignore[no-any-return]

    recorder = Recorder(respond)
    session = make_client(recorder).session(credential)
    found = await session.practitioners.by_ids(["1", "2", "3"])
    assert set(found) == {"1", "2"}
    assert [(r.url.path, ids_of(r)) for r in recorder.requests] == [
        ("/v1/practitioners", ["1", "2", "3"]),
        ("/v1/practitioners/inactive", ["2", "3"]),
    ]
    recorder.requests.clear()
    await session.practitioners.by_ids(["1"])
    assert len(recorder.requests) == 1  # no fallback when nothing is missing


@pytest.mark.parametrize("ids", ["123", ["1", "x"], [1.0]])
async def test_batch_validates_ids_before_sending(
    make_client: ClientFactory, credential: Credential, ids: Any
) -> None:
    recorder = Recorder(echo("patients"))
    session = make_client(recorder).session(credential)
    with pytest.raises(InvalidRequest):
        await session.patients.by_ids(ids)
    assert recorder.requests == []


async def test_a_failed_chunk_fails_the_batch(
    make_client: ClientFactory, credential: Credential
) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        if ids_of(request)[0] == "100":
            return httpx.Response(404)
        return echo("patients")(request)  # type: ignore[no-any-return]

    session = make_client(respond).session(credential)
    with pytest.raises(UpstreamNotFound):
        await session.patients.by_ids([str(n) for n in range(100, 300)])


ABOVE_INT64 = "9223372036854775808"


async def test_batch_drops_ids_above_int64_without_sending_them(
    make_client: ClientFactory, credential: Credential
) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        rows = [example_appointment(id=i) for i in ids_of(request)]
        return json_response(200, {"individual_appointments": rows, "total_entries": len(rows)})

    recorder = Recorder(respond)
    session = make_client(recorder).session(credential)
    found = await session.appointments.by_ids(["1", ABOVE_INT64, "9999999999999999999", BIG])
    assert set(found) == {"1", BIG}
    assert ids_of(recorder.last) == ["1", BIG]
    assert len(recorder.requests) == 1


async def test_batch_of_only_ids_above_int64_sends_nothing(
    make_client: ClientFactory, credential: Credential
) -> None:
    recorder = Recorder(echo("patients"))
    session = make_client(recorder).session(credential)
    assert await session.patients.by_ids([ABOVE_INT64, str(2**64)]) == {}
    assert recorder.requests == []


async def test_practitioners_batch_drops_ids_above_int64_from_both_lists(
    make_client: ClientFactory, credential: Credential
) -> None:
    recorder = Recorder(echo("practitioners", known=set()))
    session = make_client(recorder).session(credential)
    assert await session.practitioners.by_ids(["1", ABOVE_INT64]) == {}
    assert [(r.url.path, ids_of(r)) for r in recorder.requests] == [
        ("/v1/practitioners", ["1"]),
        ("/v1/practitioners/inactive", ["1"]),
    ]


@pytest.mark.parametrize("ids", [["1", "007"], ["1", ""], [ABOVE_INT64, "x"]])
async def test_batch_still_refuses_malformed_ids(
    make_client: ClientFactory, credential: Credential, ids: list[str]
) -> None:
    recorder = Recorder(echo("patients"))
    session = make_client(recorder).session(credential)
    with pytest.raises(InvalidRequest):
        await session.patients.by_ids(ids)
    assert recorder.requests == []


async def test_get_of_an_id_above_int64_is_refused_before_sending(
    make_client: ClientFactory, credential: Credential
) -> None:
    recorder = Recorder(echo("patients"))
    session = make_client(recorder).session(credential)
    with pytest.raises(InvalidRequest):
        await session.appointments.get(ABOVE_INT64)
    with pytest.raises(InvalidRequest):
        await session.patients.get(ABOVE_INT64)
    assert recorder.requests == []
