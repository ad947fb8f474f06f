"""Rows to Cliniko's JSON shapes (SPEC25 schemas), with Cliniko's real-payload quirks.

Quirks imitated on purpose (UPSTREAM.md section 1): ids are JSON strings; timestamps are UTC
with ``Z`` and whole seconds; relations are ``{"links": {"self": url}}`` and nothing else;
``repeat_rule`` is ``{}`` for a non-repeating appointment; ``cancellation_reason_description`` is
``""`` when not cancelled; the ``patient_case`` key is left out when there is no case and
``repeated_from`` when the appointment is not a repeat; ``repeats`` is a list link on a series
origin and ``null`` elsewhere; ``telehealth_url`` is always filled.

Every URL starts from the request's own base URL (scheme, host, root path), the way Cliniko
links to the shard host the request came in on. ``telehealth_url`` points at
``<base>/appointments/<id>/connect``, which the sandbox does not serve (it is a web-app link).

Not imitated: link keys for relations the demo data never has (a patient's ``concession_type``,
``referring_doctor``, ``merged_with_patient``, ``latest_booking``; a case's ``contact``; an
appointment type's deprecated ``billable_item``/``product`` and ``treatment_note_template``) are
left out, which UPSTREAM.md 1.3 says real payloads also do.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .seed import cancellation_description

__all__ = ["appointment_payload", "related_payload"]

JSON = dict[str, Any]

_APPOINTMENT_BOOLEANS = (
    "did_not_arrive",
    "patient_arrived",
    "email_reminder_sent",
    "sms_reminder_sent",
    "has_patient_appointment_notes",
    "online_booking_policy_accepted",
)
_APPOINTMENT_PLAIN = (
    "created_at",
    "updated_at",
    "starts_at",
    "ends_at",
    "archived_at",
    "deleted_at",
    "cancelled_at",
    "cancellation_reason",
    "cancellation_note",
    "notes",
    "booking_ip_address",
    "patient_name",
    "invoice_status",
    "treatment_note_status",
)


def _link(url: str) -> JSON:
    return {"links": {"self": url}}


def _bool(value: object) -> bool | None:
    return None if value is None else bool(value)


def appointment_payload(row: sqlite3.Row, base: str) -> JSON:
    """An ``IndividualAppointment`` object.

    Args:
        row: A row of the ``appointments`` table.
        base: The API root for links, e.g. ``http://sandbox.test/v1``.
    """
    row_id = str(row["id"])
    own = f"{base}/individual_appointments/{row_id}"
    body: JSON = {"id": row_id}
    for name in _APPOINTMENT_PLAIN:
        body[name] = row[name]
    for name in _APPOINTMENT_BOOLEANS:
        body[name] = _bool(row[name])
    body["cancellation_reason_description"] = cancellation_description(row["cancellation_reason"])
    web_root = base.rsplit("/v1", 1)[0]
    body["telehealth_url"] = f"{web_root}/appointments/{row_id}/connect"
    if row["repeat_type"] is None:
        body["repeat_rule"] = {}
    else:
        body["repeat_rule"] = {
            "repeat_type": row["repeat_type"],
            "repeating_interval": row["repeating_interval"],
            "number_of_repeats": row["number_of_repeats"],
        }
    is_origin = row["repeat_type"] is not None and row["repeated_from_id"] is None
    body["repeats"] = (
        _link(f"{base}/individual_appointments?q[]=repeated_from_id:={row_id}")
        if is_origin
        else None
    )
    if row["repeated_from_id"] is not None:
        body["repeated_from"] = _link(f"{base}/individual_appointments/{row['repeated_from_id']}")
    body["conflicts"] = _link(f"{own}/conflicts")
    body["appointment_type"] = _link(f"{base}/appointment_types/{row['appointment_type_id']}")
    body["business"] = _link(f"{base}/businesses/{row['business_id']}")
    body["practitioner"] = _link(f"{base}/practitioners/{row['practitioner_id']}")
    body["patient"] = _link(f"{base}/patients/{row['patient_id']}")
    if row["patient_case_id"] is not None:
        body["patient_case"] = _link(f"{base}/patient_cases/{row['patient_case_id']}")
    body["attendees"] = _link(f"{own}/attendees")
    body["links"] = {"self": own}
    return body


def related_payload(table: str, row: sqlite3.Row, base: str) -> JSON:
    """A ``Patient``, ``Practitioner``, ``Business``, ``AppointmentType`` or ``PatientCase``."""
    row_id = str(row["id"])
    body: JSON = {"id": row_id, **json.loads(row["doc"])}
    links = _RELATED_LINKS[table](row, base, row_id)
    body.update({name: _link(url) for name, url in links.items() if name != "self"})
    body["links"] = {"self": links["self"]}
    return body


def _patient_links(row: sqlite3.Row, base: str, row_id: str) -> dict[str, str]:
    own = f"{base}/patients/{row_id}"
    return {
        "self": own,
        "appointments": f"{own}/appointments",
        "attendees": f"{base}/attendees?q%5B%5D=patient_id%3A%3D{row_id}",
        "invoices": f"{own}/invoices",
        "medical_alerts": f"{own}/medical_alerts",
        "patient_attachments": f"{own}/patient_attachments",
        "relationships": f"{base}/relationships?q%5B%5D=patient_id%3A%3D{row_id}",
    }


def _practitioner_links(row: sqlite3.Row, base: str, row_id: str) -> dict[str, str]:
    own = f"{base}/practitioners/{row_id}"
    return {
        "self": own,
        "user": f"{base}/users/{row['user_id']}",
        "appointment_types": f"{own}/appointment_types",
        "default_appointment_type": (
            f"{base}/appointment_types/{row['default_appointment_type_id']}"
        ),
        "appointments": f"{own}/appointments",
        "invoices": f"{own}/invoices",
        "practitioner_reference_numbers": f"{own}/practitioner_reference_numbers",
    }


def _business_links(row: sqlite3.Row, base: str, row_id: str) -> dict[str, str]:
    own = f"{base}/businesses/{row_id}"
    return {
        "self": own,
        "practitioners": f"{own}/practitioners",
        "appointments": f"{own}/appointments",
    }


def _appointment_type_links(row: sqlite3.Row, base: str, row_id: str) -> dict[str, str]:
    own = f"{base}/appointment_types/{row_id}"
    query = f"q%5B%5D=appointment_type_id%3A%3D{row_id}"
    return {
        "self": own,
        "practitioners": f"{own}/practitioners",
        "appointment_type_billable_items": f"{base}/appointment_type_billable_items?{query}",
        "appointment_type_products": f"{base}/appointment_type_products?{query}",
    }


def _patient_case_links(row: sqlite3.Row, base: str, row_id: str) -> dict[str, str]:
    own = f"{base}/patient_cases/{row_id}"
    return {
        "self": own,
        "patient": f"{base}/patients/{row['patient_id']}",
        "attendees": f"{own}/attendees",
        "bookings": f"{own}/bookings",
        "invoices": f"{own}/invoices",
        "patient_attachments": f"{own}/patient_attachments",
    }


_RELATED_LINKS = {
    "patients": _patient_links,
    "practitioners": _practitioner_links,
    "businesses": _business_links,
    "appointment_types": _appointment_type_links,
    "patient_cases": _patient_case_links,
}
