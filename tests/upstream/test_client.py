from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from appointments_gateway import upstream
from appointments_gateway.upstream import (
    APPOINTMENT_LIST,
    PATIENT_LIST,
    Credential,
    InvalidRequest,
    RepeatRuleRecord,
    UnsafeUserAgent,
    UpstreamClient,
    UpstreamProtocolError,
    is_safe_user_agent,
)

from .conftest import (
    API_KEY,
    USER_AGENT,
    ClientFactory,
    Recorder,
    example_appointment,
    json_response,
    record_json,
)

APPOINTMENT_ID = "1390726237298631770"


def appointment_page(*ids: str, next_page: bool = False) -> dict[str, object]:
    links = {"self": "https://api.au4.cliniko.com/v1/individual_appointments?page=1"}
    if next_page:
        links["next"] = "https://api.au4.cliniko.com/v1/individual_appointments?page=2"
    return {
        "individual_appointments": [example_appointment(id=i) for i in ids],
        "total_entries": 250,
        "links": links,
    }


async def test_every_request_carries_auth_accept_and_user_agent(
    make_client: ClientFactory, credential: Credential
) -> None:
    recorder = Recorder(lambda r: json_response(200, example_appointment()))
    session = make_client(recorder).session(credential)
    await session.appointments.get(APPOINTMENT_ID)
    request = recorder.last
    expected = base64.b64encode(f"{API_KEY}:".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert base64.b64decode(expected) == b"MS0xLTEyMzQ1Njc4OTAtZDk4-au4:"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.method == "GET"
    assert (
        str(request.url)
        == f"https://api.au4.cliniko.com/v1/individual_appointments/{APPOINTMENT_ID}"
    )
    assert "Content-Type" not in request.headers


async def test_writes_send_json_with_content_type(
    make_client: ClientFactory, credential: Credential
) -> None:
    recorder = Recorder(lambda r: json_response(201, example_appointment()))
    session = make_client(recorder).session(credential)
    melbourne = timezone(timedelta(hours=10))
    record = await session.appointments.create(
        {
            "patient_id": "1390710863102485699",
            "practitioner_id": "1390053863163176768",
            "business_id": "1390053865344214699",
            "appointment_type_id": "1390053865100944805",
            "starts_at": datetime(2024, 4, 3, 0, 45, tzinfo=melbourne),
            "notes": "first visit",
            "repeat_rule": RepeatRuleRecord("Weekly", 4, 1),
        }
    )
    assert record.id == APPOINTMENT_ID
    request = recorder.last
    assert request.method == "POST"
    assert request.url.path == "/v1/individual_appointments"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "patient_id": "1390710863102485699",
        "practitioner_id": "1390053863163176768",
        "business_id": "1390053865344214699",
        "appointment_type_id": "1390053865100944805",
        "starts_at": "2024-04-02T14:45:00Z",
        "notes": "first visit",
        "repeat_rule": {"repeat_type": "Weekly", "number_of_repeats": 4, "repeating_interval": 1},
    }


async def test_update_sends_only_given_fields_and_null_ends_at(
    make_client: ClientFactory, credential: Credential
) -> None:
    recorder = Recorder(lambda r: json_response(200, example_appointment()))
    session = make_client(recorder).session(credential)
    await session.appointments.update(APPOINTMENT_ID, {"ends_at": None, "patient_case_id": "5"})
    assert recorder.last.method == "PATCH"
    assert recorder.last.url.path == f"/v1/individual_appointments/{APPOINTMENT_ID}"
    assert recorder.last.headers["Content-Type"] == "application/json"
    assert json.loads(recorder.last.content) == {"ends_at": None, "patient_case_id": "5"}


async def test_bad_write_bodies_are_refused_before_sending(
    make_client: ClientFactory, credential: Credential
) -> None:
    recorder = Recorder(lambda r: json_response(200, {}))
    session = make_client(recorder).session(credential)
    for fields in (
        {"starts_at": datetime(2024, 1, 1)},  # naive
        {"patient_id": "abc"},
        {"colour": "red"},
        {},
    ):
        with pytest.raises(InvalidRequest):
            await session.appointments.update(APPOINTMENT_ID, fields)  # type: ignore[arg-type]
    assert recorder.requests == []
    assert session.stats.requests == 0


async def test_archive_posts_to_archive_not_delete(
    make_client: ClientFactory, credential: Credential
) -> None:
    recorder = Recorder(lambda r: httpx.Response(204))
    session = make_client(recorder).session(credential)
    await session.appointments.archive(APPOINTMENT_ID)
    assert recorder.last.method == "POST"
    assert recorder.last.url.path == f"/v1/individual_appointments/{APPOINTMENT_ID}/archive"


async def test_cancel_patches_cancel_with_reason_note_and_repeats(
    make_client: ClientFactory, credential: Credential
) -> None:
    recorder = Recorder(lambda r: httpx.Response(204))
    session = make_client(recorder).session(credential)
    await session.appointments.cancel(APPOINTMENT_ID, reason=50, note="late", apply_to_repeats=True)
    assert recorder.last.method == "PATCH"
    assert recorder.last.url.path == f"/v1/individual_appointments/{APPOINTMENT_ID}/cancel"
    assert recorder.last.headers["Content-Type"] == "application/json"
    assert json.loads(recorder.last.content) == {
        "cancellation_reason": 50,
        "cancellation_note": "late",
        "apply_to_repeats": True,
    }
    await session.appointments.cancel(APPOINTMENT_ID, reason=10)
    assert json.loads(recorder.last.content) == {
        "cancellation_reason": 10,
        "apply_to_repeats": False,
    }


@pytest.mark.parametrize("reason", [31, 99, 0, True])
async def test_cancel_refuses_codes_cliniko_no_longer_accepts(
    make_client: ClientFactory, credential: Credential, reason: int
) -> None:
    recorder = Recorder(lambda r: httpx.Response(204))
    session = make_client(recorder).session(credential)
    with pytest.raises(InvalidRequest):
        await session.appointments.cancel(APPOINTMENT_ID, reason=reason)
    assert recorder.requests == []


@pytest.mark.parametrize("exist", [True, False])
async def test_conflicts(make_client: ClientFactory, credential: Credential, exist: bool) -> None:
    recorder = Recorder(lambda r: json_response(200, {"conflicts": {"exist": exist}}))
    session = make_client(recorder).session(credential)
    assert await session.appointments.has_conflicts(APPOINTMENT_ID) is exist
    assert recorder.last.url.path == f"/v1/individual_appointments/{APPOINTMENT_ID}/conflicts"


async def test_conflicts_with_unexpected_body(
    make_client: ClientFactory, credential: Credential
) -> None:
    session = make_client(lambda r: json_response(200, {"conflicts": {}})).session(credential)
    with pytest.raises(UpstreamProtocolError):
        await session.appointments.has_conflicts(APPOINTMENT_ID)


async def test_get_can_reveal_cancelled_and_archived(
    make_client: ClientFactory, credential: Credential
) -> None:
    recorder = Recorder(lambda r: json_response(200, example_appointment()))
    session = make_client(recorder).session(credential)
    await session.appointments.get(APPOINTMENT_ID, include_cancelled=True, include_archived=True)
    assert sorted(recorder.last.url.params.get_list("q[]")) == ["archived_at:*", "cancelled_at:*"]
    assert b"q%5B%5D=cancelled_at%3A%2A" in recorder.last.url.raw_path


async def test_list_sends_page_filters_and_sort(
    make_client: ClientFactory, credential: Credential
) -> None:
    recorder = Recorder(lambda r: json_response(200, appointment_page("1", "2", next_page=True)))
    session = make_client(recorder).session(credential)
    page = await session.appointments.list(
        page=2,
        per_page=100,
        filters=[
            APPOINTMENT_LIST.where("starts_at", ">=", datetime(2024, 4, 1, tzinfo=UTC)),
            APPOINTMENT_LIST.where("practitioner_id", "=", ["11", "12"]),
        ],
        sort=["starts_at:desc", "id"],
    )
    params = recorder.last.url.params
    assert params["page"] == "2"
    assert params["per_page"] == "100"
    assert params.get_list("q[]") == ["starts_at:>=2024-04-01T00:00:00Z", "practitioner_id:=11,12"]
    assert params["sort"] == "starts_at:desc,id"
    assert [r.id for r in page.items] == ["1", "2"]
    assert (page.page, page.per_page, page.total_entries, page.has_next) == (2, 100, 250, True)


@pytest.mark.parametrize(("page", "per_page"), [(0, 50), (1, 0), (1, 101), (1, True)])
async def test_page_bounds_are_validated(
    make_client: ClientFactory, credential: Credential, page: int, per_page: int
) -> None:
    recorder = Recorder(lambda r: json_response(200, appointment_page()))
    session = make_client(recorder).session(credential)
    with pytest.raises(InvalidRequest):
        await session.appointments.list(page=page, per_page=per_page)
    assert recorder.requests == []


async def test_filters_for_another_endpoint_are_refused(
    make_client: ClientFactory, credential: Credential
) -> None:
    recorder = Recorder(lambda r: json_response(200, appointment_page()))
    session = make_client(recorder).session(credential)
    with pytest.raises(InvalidRequest):
        await session.appointments.list(filters=[PATIENT_LIST.where("id", "=", "1")])
    with pytest.raises(InvalidRequest):
        await session.practitioners.get("1", include_archived=True)  # undocumented there
    assert recorder.requests == []


@pytest.mark.parametrize("bad_id", ["../patients/1", "1?x=1", "https://evil.test/1", ""])
async def test_ids_in_paths_are_validated_so_urls_never_leave_the_base(
    make_client: ClientFactory, credential: Credential, bad_id: str
) -> None:
    recorder = Recorder(lambda r: json_response(200, {}))
    session = make_client(recorder).session(credential)
    with pytest.raises(InvalidRequest):
        await session.patients.get(bad_id)
    assert recorder.requests == []


async def test_related_resources_list_and_get(
    make_client: ClientFactory, credential: Credential
) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/practitioners/inactive":
            return json_response(200, {"practitioners": [record_json("9")], "total_entries": 1})
        if path.count("/") == 3:  # /v1/<collection>/<id>
            return json_response(200, record_json(path.rsplit("/", 1)[1], name="x"))
        key = path.rsplit("/", 1)[1]
        return json_response(200, {key: [record_json("1")], "total_entries": 1, "links": {}})

    recorder = Recorder(respond)
    session = make_client(recorder).session(credential)
    for resource in (
        session.patients,
        session.practitioners,
        session.businesses,
        session.appointment_types,
        session.patient_cases,
    ):
        page = await resource.list()
        assert [r.id for r in page.items] == ["1"]
        assert (await resource.get("42")).id == "42"
    inactive = await session.practitioners.list(inactive=True)
    assert [r.id for r in inactive.items] == ["9"]
    paths = [r.url.path for r in recorder.requests]
    assert paths[:4] == [
        "/v1/patients",
        "/v1/patients/42",
        "/v1/practitioners",
        "/v1/practitioners/42",
    ]
    assert {r.url.params["per_page"] for r in recorder.requests if "page" in r.url.params} == {"50"}


async def test_links_in_responses_are_never_followed(
    make_client: ClientFactory, credential: Credential
) -> None:
    body = appointment_page("1", next_page=True)
    body["links"] = {"next": "https://evil.test/v1/individual_appointments?page=2"}
    recorder = Recorder(lambda r: json_response(200, body))
    session = make_client(recorder).session(credential)
    first = await session.appointments.list(page=1)
    await session.appointments.list(page=first.page + 1)
    assert {r.url.host for r in recorder.requests} == {"api.au4.cliniko.com"}


async def test_redirects_are_not_followed(
    make_client: ClientFactory, credential: Credential
) -> None:
    recorder = Recorder(
        lambda r: httpx.Response(302, headers={"Location": "https://evil.test/v1/patients/1"})
    )
    session = make_client(recorder).session(credential)
    with pytest.raises(UpstreamProtocolError):
        await session.patients.get("1")
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    "user_agent",
    ["python-httpx/0.28", "Gateway", "Gateway (ops)", "Gateway (ops@localhost)", "(a@b.co)"],
)
async def test_unsafe_user_agent_is_refused_for_real_cliniko(
    make_client: ClientFactory, user_agent: str
) -> None:
    assert not is_safe_user_agent(user_agent)
    recorder = Recorder(lambda r: json_response(200, {}))
    client = make_client(recorder, user_agent=user_agent)
    with pytest.raises(UnsafeUserAgent):
        client.session(Credential("abc-au1"))
    with pytest.raises(UnsafeUserAgent):
        client.session(Credential("abc-au1", base_url="https://api.au2.cliniko.com/v1"))
    # ...but the sandbox and proxies on other hosts are fine.
    sandbox = client.session(Credential("demo", base_url="http://127.0.0.1:8000/v1"))
    assert sandbox.credential.host == "127.0.0.1"


@pytest.mark.parametrize(
    "user_agent", [USER_AGENT, "Pipedream (support@pipedream.com)", "A B (a.b+c@d.example.org)"]
)
def test_safe_user_agents(user_agent: str) -> None:
    assert is_safe_user_agent(user_agent)


@pytest.mark.parametrize("user_agent", ["", "bad\nheader", "naïve (a@b.co)"])
def test_user_agent_must_be_a_valid_header(user_agent: str) -> None:
    with pytest.raises(UnsafeUserAgent):
        UpstreamClient(user_agent=user_agent, transport=httpx.MockTransport(lambda r: None))  # type: ignore[arg-type]


async def test_client_is_an_async_context_manager_sharing_one_pool(credential: Credential) -> None:
    recorder = Recorder(lambda r: json_response(200, example_appointment()))
    async with UpstreamClient(
        user_agent=USER_AGENT, transport=httpx.MockTransport(recorder)
    ) as client:
        one = client.session(credential)
        two = client.session(Credential("other-key-au4"))
        await one.appointments.get(APPOINTMENT_ID)
        await two.appointments.get(APPOINTMENT_ID)
        assert (one.stats.requests, two.stats.requests) == (1, 1)
        assert (
            recorder.requests[0].headers["Authorization"]
            != recorder.requests[1].headers["Authorization"]
        )
        assert API_KEY not in repr(one)


def _isort_style(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then CamelCase, then everything else."""
    if name.isupper():
        return (0, name)
    return (1 if name[0].isupper() else 2, name)


def test_public_names_are_exported_sorted() -> None:
    assert upstream.__all__ == sorted(upstream.__all__, key=_isort_style)
    public = {n for n in dir(upstream) if not n.startswith("_")}
    modules = {
        "client",
        "credentials",
        "errors",
        "filters",
        "governor",
        "records",
        "resources",
        "retry",
    }
    assert set(upstream.__all__) == public - modules - {"annotations"}


async def test_request_stats_count_every_sent_request_including_failures(
    make_client: ClientFactory, credential: Credential
) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/404"):
            return httpx.Response(404)
        return json_response(200, example_appointment())

    session = make_client(respond).session(credential)
    assert session.stats == upstream.RequestStats(0, 0, 0.0)
    await session.appointments.get("1")
    await session.appointments.get("2")
    with pytest.raises(upstream.UpstreamNotFound):
        await session.appointments.get("404")
    with pytest.raises(InvalidRequest):
        await session.appointments.get("nope")  # refused locally: not counted
    assert (session.stats.requests, session.stats.retries) == (3, 0)
    assert session.stats.seconds > 0
    other = make_client(respond).session(credential)
    assert other.stats.requests == 0  # stats are per session
