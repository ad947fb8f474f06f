from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from appointments_gateway.upstream import Credential, Governor, RetryPolicy, UpstreamClient

USER_AGENT = "Appointments Gateway Tests (dev@example.com)"
API_KEY = "MS0xLTEyMzQ1Njc4OTAtZDk4-au4"

# UPSTREAM.md §1.4, verbatim.
EXAMPLE_APPOINTMENT_JSON = """
{
  "id": "1390726237298631770",
  "created_at": "2024-04-02T20:04:46Z",
  "updated_at": "2024-04-03T01:10:02Z",
  "starts_at": "2024-04-02T14:45:00Z",
  "ends_at": "2024-04-02T15:30:00Z",
  "archived_at": null,
  "deleted_at": null,
  "cancelled_at": "2024-04-02T09:00:00Z",
  "cancellation_reason": 50,
  "cancellation_reason_description": "Other",
  "cancellation_note": "Last minute cancellation",
  "did_not_arrive": false,
  "patient_arrived": false,
  "email_reminder_sent": false,
  "sms_reminder_sent": false,
  "has_patient_appointment_notes": false,
  "notes": null,
  "online_booking_policy_accepted": null,
  "booking_ip_address": null,
  "patient_name": "Test 1 Test 1",
  "invoice_status": null,
  "treatment_note_status": null,
  "telehealth_url": "https://my-clinic.au4.cliniko.com/appointments/1390726237298631770/connect",
  "repeat_rule": {},
  "repeats": null,
  "conflicts":        {"links": {"self": "https://api.au4.cliniko.com/v1/individual_appointments/1390726237298631770/conflicts"}},
  "appointment_type": {"links": {"self": "https://api.au4.cliniko.com/v1/appointment_types/1390053865100944805"}},
  "business":         {"links": {"self": "https://api.au4.cliniko.com/v1/businesses/1390053865344214699"}},
  "practitioner":     {"links": {"self": "https://api.au4.cliniko.com/v1/practitioners/1390053863163176768"}},
  "patient":          {"links": {"self": "https://api.au4.cliniko.com/v1/patients/1390710863102485699"}},
  "patient_case":     {"links": {"self": "https://api.au4.cliniko.com/v1/patient_cases/1390710999999999999"}},
  "attendees":        {"links": {"self": "https://api.au4.cliniko.com/v1/individual_appointments/1390726237298631770/attendees"}},
  "links": {"self": "https://api.au4.cliniko.com/v1/individual_appointments/1390726237298631770"}
}
"""


def example_appointment(**changes: Any) -> dict[str, Any]:
    """The §1.4 example as a fresh dict, with some top-level keys replaced."""
    data: dict[str, Any] = copy.deepcopy(json.loads(EXAMPLE_APPOINTMENT_JSON))
    data.update(changes)
    return data


def link(path: str) -> dict[str, Any]:
    return {"links": {"self": f"https://api.au4.cliniko.com/v1/{path}"}}


def record_json(id_: str, **fields: Any) -> dict[str, Any]:
    """A minimal related-resource object (patients, practitioners, ...)."""
    return {"id": id_, "created_at": "2024-01-01T00:00:00Z", **fields}


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


class Recorder:
    """A MockTransport handler that records every request and answers from a script."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response]) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


class NoSleep:
    """An injected ``sleep`` that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def credential() -> Credential:
    return Credential(API_KEY)


@pytest.fixture
def no_sleep() -> NoSleep:
    return NoSleep()


ClientFactory = Callable[..., UpstreamClient]


@pytest.fixture
async def make_client(no_sleep: NoSleep) -> AsyncIterator[ClientFactory]:
    """Build UpstreamClients on MockTransports; all are closed after the test."""
    clients: list[UpstreamClient] = []

    def factory(
        handler: Callable[[httpx.Request], httpx.Response],
        *,
        user_agent: str = USER_AGENT,
        retry: RetryPolicy | None = None,
        governor: Governor | None = None,
    ) -> UpstreamClient:
        # No governor unless a test asks for one: these tests are about one request's
        # fate, and tests/upstream/test_governor.py covers the budget on a fake clock.
        client = UpstreamClient(
            user_agent=user_agent,
            transport=httpx.MockTransport(handler),
            retry=retry or RetryPolicy(sleep=no_sleep, rng=lambda: 0.5),
            governor=governor,
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()
