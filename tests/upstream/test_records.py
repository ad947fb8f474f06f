from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from appointments_gateway.upstream import (
    AppointmentRecord,
    AppointmentTypeRecord,
    BusinessRecord,
    PatientCaseRecord,
    PatientRecord,
    PractitionerRecord,
    RepeatRuleRecord,
    UpstreamProtocolError,
    parse_page,
)

from .conftest import EXAMPLE_APPOINTMENT_JSON, example_appointment, link


def test_example_body_verbatim() -> None:
    record = AppointmentRecord.from_json(json.loads(EXAMPLE_APPOINTMENT_JSON))
    assert record == AppointmentRecord(
        id="1390726237298631770",
        created_at=datetime(2024, 4, 2, 20, 4, 46, tzinfo=UTC),
        updated_at=datetime(2024, 4, 3, 1, 10, 2, tzinfo=UTC),
        starts_at=datetime(2024, 4, 2, 14, 45, tzinfo=UTC),
        ends_at=datetime(2024, 4, 2, 15, 30, tzinfo=UTC),
        archived_at=None,
        deleted_at=None,
        cancelled_at=datetime(2024, 4, 2, 9, 0, tzinfo=UTC),
        cancellation_reason=50,
        cancellation_reason_description="Other",
        cancellation_note="Last minute cancellation",
        did_not_arrive=False,
        patient_arrived=False,
        email_reminder_sent=False,
        sms_reminder_sent=False,
        has_patient_appointment_notes=False,
        notes=None,
        online_booking_policy_accepted=None,
        booking_ip_address=None,
        patient_name="Test 1 Test 1",
        invoice_status=None,
        treatment_note_status=None,
        telehealth_url="https://my-clinic.au4.cliniko.com/appointments/1390726237298631770/connect",
        repeat_rule=None,
        has_repeats=False,
        repeated_from_id=None,
        patient_id="1390710863102485699",
        practitioner_id="1390053863163176768",
        business_id="1390053865344214699",
        appointment_type_id="1390053865100944805",
        patient_case_id="1390710999999999999",
    )
    assert record.starts_at.tzinfo is UTC


def test_every_schema_field_is_accounted_for() -> None:
    """34 upstream fields: 31 kept (7 links as ids or a flag); 3 URLs derivable from id dropped."""
    names = {f.name for f in dataclasses.fields(AppointmentRecord)}
    upstream = set(json.loads(EXAMPLE_APPOINTMENT_JSON)) | {"repeated_from"}
    assert len(upstream) == 34
    renamed = {
        "repeats": "has_repeats",
        "repeated_from": "repeated_from_id",
        "patient": "patient_id",
        "practitioner": "practitioner_id",
        "business": "business_id",
        "appointment_type": "appointment_type_id",
        "patient_case": "patient_case_id",
    }
    dropped = {"conflicts", "attendees", "links"}
    assert {renamed.get(k, k) for k in upstream - dropped} == names


def test_real_capture_quirks_missing_links_and_empty_description() -> None:
    data = example_appointment(
        cancelled_at=None,
        cancellation_reason=None,
        cancellation_reason_description="",
        cancellation_note=None,
        links={"self": "https://api.au4.cliniko.com/v1/bookings/1390726237298631770"},
    )
    del data["patient_case"], data["conflicts"]
    record = AppointmentRecord.from_json(data)
    assert record.cancellation_reason is None
    assert record.cancellation_reason_description is None
    assert record.patient_case_id is None
    assert record.repeated_from_id is None


@pytest.mark.parametrize(
    "value",
    [None, {}, {"links": None}, {"links": {}}, {"links": {"self": None}}, {"links": {"self": ""}}],
)
def test_every_link_may_be_null_or_empty(value: Any) -> None:
    keys = ["patient", "practitioner", "business", "appointment_type", "patient_case"]
    data = example_appointment(**{k: value for k in keys}, repeats=value, repeated_from=value)
    record = AppointmentRecord.from_json(data)
    assert record.patient_id is record.practitioner_id is record.business_id is None
    assert record.appointment_type_id is record.patient_case_id is record.repeated_from_id is None
    assert record.has_repeats is False


def test_every_link_may_be_absent() -> None:
    data = example_appointment()
    for key in ("patient", "practitioner", "business", "appointment_type", "patient_case"):
        del data[key]
    for key in ("repeats", "conflicts", "attendees", "links"):
        del data[key]
    record = AppointmentRecord.from_json(data)
    assert record.patient_id is None
    assert record.has_repeats is False


def test_series_origin_and_child() -> None:
    origin = AppointmentRecord.from_json(
        example_appointment(
            repeats=link("individual_appointments?q[]=repeated_from_id:=1390726237298631770"),
            repeat_rule={"repeat_type": "Daily", "number_of_repeats": 3, "repeating_interval": 3},
        )
    )
    assert origin.has_repeats is True
    assert origin.repeat_rule == RepeatRuleRecord("Daily", 3, 3)
    child = AppointmentRecord.from_json(
        example_appointment(repeated_from=link("individual_appointments/1390726237298631770"))
    )
    assert child.repeated_from_id == "1390726237298631770"
    assert child.has_repeats is False


def test_percent_encoded_list_link_counts_as_present() -> None:
    data = example_appointment(
        repeats=link("individual_appointments?q%5B%5D=repeated_from_id%3A%3D1390726237298631770")
    )
    assert AppointmentRecord.from_json(data).has_repeats is True


@pytest.mark.parametrize(
    "url",
    [
        "https://api.au4.cliniko.com/v1/patients/123/",
        "https://api.au4.cliniko.com/v1/patients/123?include=x",
        "https://api.au4.cliniko.com/v1/patients/123#frag",
    ],
)
def test_single_resource_links_in_unusual_forms(url: str) -> None:
    data = example_appointment(patient={"links": {"self": url}})
    assert AppointmentRecord.from_json(data).patient_id == "123"


@pytest.mark.parametrize("rule", [None, {}, {"repeat_type": None, "number_of_repeats": None}])
def test_empty_repeat_rule_is_none(rule: Any) -> None:
    assert AppointmentRecord.from_json(example_appointment(repeat_rule=rule)).repeat_rule is None


@pytest.mark.parametrize(("code", "description"), [(99, None), (31, "COVID-19 related")])
def test_unknown_and_legacy_cancellation_codes_are_kept(code: int, description: str | None) -> None:
    record = AppointmentRecord.from_json(
        example_appointment(cancellation_reason=code, cancellation_reason_description=description)
    )
    assert record.cancellation_reason == code
    assert record.cancellation_reason_description == description


def test_unknown_extra_fields_are_ignored() -> None:
    data = example_appointment(brand_new_field={"nested": [1, 2]}, another=None)
    assert AppointmentRecord.from_json(data).id == "1390726237298631770"


@pytest.mark.parametrize("big_id", ["9223372036854775807", "1390726237298631770"])
def test_19_digit_ids_are_preserved_exactly(big_id: str) -> None:
    data = example_appointment(id=big_id, patient=link(f"patients/{big_id}"))
    record = AppointmentRecord.from_json(data)
    assert record.id == big_id
    assert record.patient_id == big_id


def test_ids_survive_a_json_round_trip_without_float_coercion() -> None:
    raw = json.dumps(example_appointment(id=9223372036854775807))  # legacy: a JSON number
    assert AppointmentRecord.from_json(json.loads(raw)).id == "9223372036854775807"


def test_legacy_numeric_ids_become_strings() -> None:
    assert AppointmentRecord.from_json(example_appointment(id=1)).id == "1"
    assert PatientRecord.from_json({"id": 75335355, "first_name": "A"}).id == "75335355"


def test_offsets_are_converted_to_utc_and_naive_values_read_as_utc() -> None:
    record = AppointmentRecord.from_json(
        example_appointment(starts_at="2024-04-02T10:00:00+10:00", ends_at="2024-04-02T01:00:00")
    )
    assert record.starts_at == datetime(2024, 4, 2, 0, 0, tzinfo=UTC)
    assert record.starts_at.tzinfo is UTC
    assert record.ends_at == datetime(2024, 4, 2, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": None}, "id"),
        ({"id": 1.5}, "id"),
        ({"id": "12ab"}, "id"),
        ({"id": True}, "id"),
        ({"starts_at": None}, "starts_at"),
        ({"starts_at": "yesterday"}, "starts_at"),
        ({"did_not_arrive": "no"}, "did_not_arrive"),
        ({"did_not_arrive": 0}, "did_not_arrive"),
        ({"notes": 12}, "notes"),
        ({"cancellation_reason": 1.0}, "cancellation_reason"),
        ({"repeat_rule": []}, "repeat_rule"),
        ({"patient": "https://api.au4.cliniko.com/v1/patients/1"}, "patient"),
        ({"patient": link("patients/not-an-id")}, "patient"),
        ({"patient": {"links": {"self": 5}}}, "patient"),
    ],
)
def test_malformed_payloads_raise_protocol_errors_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(UpstreamProtocolError) as info:
        AppointmentRecord.from_json(example_appointment(**changes))
    assert repr(field) in str(info.value)


def test_missing_id_is_a_protocol_error_not_a_key_error() -> None:
    data = example_appointment()
    del data["id"]
    with pytest.raises(UpstreamProtocolError):
        AppointmentRecord.from_json(data)


@pytest.mark.parametrize("body", [None, [], "text", 1])
def test_non_object_records_are_protocol_errors(body: Any) -> None:
    with pytest.raises(UpstreamProtocolError):
        AppointmentRecord.from_json(body)


def test_protocol_error_messages_do_not_echo_values() -> None:
    with pytest.raises(UpstreamProtocolError) as info:
        PatientRecord.from_json({"id": "1", "date_of_birth": "1980-02-31-secret"})
    assert "secret" not in str(info.value)
    assert info.value.__cause__ is None


def test_reprs_leave_out_phi() -> None:
    patient = PatientRecord.from_json(
        {"id": "1", "first_name": "Jane", "last_name": "Citizen", "email": "jane@example.com"}
    )
    appointment = AppointmentRecord.from_json(example_appointment(notes="private"))
    assert "Jane" not in repr(patient)
    assert "jane@" not in repr(patient)
    assert "Test 1" not in repr(appointment)
    assert "private" not in repr(appointment)


def test_patient_record() -> None:
    record = PatientRecord.from_json(
        {
            "id": "1390710863102485699",
            "first_name": "Jane",
            "last_name": "Citizen",
            "preferred_first_name": None,
            "title": "Ms",
            "date_of_birth": "1980-02-29",
            "email": "jane@example.com",
            "time_zone": "Australia/Melbourne",
            "archived_at": None,
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-02T00:00:00Z",
            "appointments": link("patients/1390710863102485699/appointments"),
            "patient_phone_numbers": [{"number": "x", "phone_type": "Mobile"}],
        }
    )
    assert record.first_name == "Jane"
    assert record.date_of_birth == date(1980, 2, 29)
    assert record.time_zone == "Australia/Melbourne"
    assert record.updated_at == datetime(2024, 1, 2, tzinfo=UTC)


def test_practitioner_business_type_and_case_records() -> None:
    practitioner = PractitionerRecord.from_json(
        {
            "id": "5",
            "first_name": "Ann",
            "last_name": "Lee",
            "display_name": "Dr Ann Lee",
            "title": "Dr",
            "designation": "Physio",
            "active": True,
            "user": link("users/77"),
        }
    )
    assert (practitioner.display_name, practitioner.active, practitioner.user_id) == (
        "Dr Ann Lee",
        True,
        "77",
    )
    business = BusinessRecord.from_json(
        {
            "id": "6",
            "business_name": "Main St",
            "display_name": "Main Street Clinic",
            "time_zone": "Melbourne",
            "time_zone_identifier": "Australia/Melbourne",
            "appointment_type_ids": ["1", 2],
        }
    )
    assert business.time_zone_identifier == "Australia/Melbourne"
    assert business.appointment_type_ids == ("1", "2")
    appointment_type = AppointmentTypeRecord.from_json(
        {
            "id": "7",
            "name": "Initial",
            "category": "Physio",
            "color": "#00ff00",
            "duration_in_minutes": 45,
            "telehealth_enabled": False,
            "deposit_price": "10.50",
        }
    )
    assert appointment_type.duration_in_minutes == 45
    assert appointment_type.deposit_price == "10.50"
    case = PatientCaseRecord.from_json(
        {
            "id": "8",
            "name": "Knee",
            "notes": None,
            "issue_date": "2024-01-01",
            "expiry_date": None,
            "closed_at": "2024-06-01T00:00:00Z",
            "patient": link("patients/9"),
        }
    )
    assert case.issue_date == date(2024, 1, 1)
    assert case.closed_at == datetime(2024, 6, 1, tzinfo=UTC)
    assert case.patient_id == "9"


def test_page_envelope() -> None:
    body = {
        "patients": [{"id": "1"}, {"id": "2"}],
        "total_entries": 5,
        "links": {"self": "https://x/patients?page=1", "next": "https://x/patients?page=2"},
    }
    page = parse_page(body, "patients", PatientRecord.from_json, page=1, per_page=2)
    assert [p.id for p in page.items] == ["1", "2"]
    assert (page.total_entries, page.page, page.per_page, page.has_next) == (5, 1, 2, True)
    del body["links"]["next"]  # type: ignore[attr-defined]
    assert not parse_page(body, "patients", PatientRecord.from_json, page=3, per_page=2).has_next
    del body["links"]
    assert parse_page(body, "patients", PatientRecord.from_json, page=1, per_page=2).has_next


@pytest.mark.parametrize(
    "body",
    [[], {"total_entries": 1}, {"patients": {}, "total_entries": 1}, {"patients": []}],
)
def test_malformed_envelopes_are_protocol_errors(body: Any) -> None:
    with pytest.raises(UpstreamProtocolError):
        parse_page(body, "patients", PatientRecord.from_json, page=1, per_page=50)
