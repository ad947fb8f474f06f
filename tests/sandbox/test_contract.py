"""Sandbox responses validated against the vendored Cliniko OpenAPI contract (SPEC25).

The OpenAPI 3.0 schemas are converted to JSON Schema (2020-12): ``$ref`` resolved within the
document, ``nullable: true`` turned into a ``"null"`` type, boolean ``exclusiveMinimum`` /
``exclusiveMaximum`` turned into numbers. On top of that the conversion is *stricter* than the
spec: objects get ``additionalProperties: false``, so the sandbox cannot emit a key the spec
does not document, and every documented key must be present unless listed in
``ALLOWED_MISSING`` below.

Documented quirks, allowed explicitly (UPSTREAM.md sections 1.2 and 1.3):

* ``cancellation_reason_description`` is ``""`` on appointments that are not cancelled (real
  payloads do this; the spec enum leaves ``""`` out).
* Link keys for relations a row does not have are left out, as in real payloads.
* The spec's email patterns are written in upper case only (Cliniko matches them
  case-insensitively); they are checked case-insensitively here.

jsonschema checks ``date``, ``email`` and ``ipv4`` formats itself; ``date-time`` (Cliniko's
``...Z`` form), ``int64`` ids and link URLs are checked by hand in :func:`check_entity`.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from .conftest import API

SPEC = Path(__file__).resolve().parents[2] / "spec" / "cliniko-openapi-2025-08.yaml"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
ID = re.compile(r"^[1-9]\d{18}$")

RESOURCES = {
    "individual_appointments": "IndividualAppointment",
    "patients": "Patient",
    "practitioners": "Practitioner",
    "businesses": "Business",
    "appointment_types": "AppointmentType",
    "patient_cases": "PatientCase",
}

# Keys a payload may leave out (UPSTREAM.md 1.3: real payloads omit links to nothing).
ALLOWED_MISSING: dict[str, set[str]] = {
    # Present only when the appointment has a case / is a repeat.
    "IndividualAppointment": {"patient_case", "repeated_from"},
    # Relations the demo data never has.
    "Patient": {"concession_type", "referring_doctor", "merged_with_patient", "latest_booking"},
    "PatientCase": {"contact"},
    # Deprecated links and a template the demo data never has.
    "AppointmentType": {"billable_item", "product", "treatment_note_template"},
    "Practitioner": set(),
    "Business": set(),
}

# Lists with hidden rows included, so every kind of row gets validated.
SHOW_ALL = {
    "individual_appointments": ["cancelled_at:*", "archived_at:*", "deleted_at:*"],
    "patients": ["archived_at:*"],
    "practitioners": [],
    "businesses": ["archived_at:*", "deleted_at:*"],
    "appointment_types": ["archived_at:*"],
    "patient_cases": ["archived_at:*"],
}


@functools.cache
def spec() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC.open(encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.load(handle, Loader=loader)
    return document


def resolve(pointer: str) -> Any:
    node: Any = spec()
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def to_json_schema(node: Any, seen: tuple[str, ...] = ()) -> Any:
    """OpenAPI 3.0 schema -> strict JSON Schema (see the module docstring)."""
    if isinstance(node, list):
        return [to_json_schema(item, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        if ref in seen:  # pragma: no cover - the schemas used here are not recursive
            return {}
        return to_json_schema(resolve(ref), (*seen, ref))
    out = {k: to_json_schema(v, seen) for k, v in node.items() if not k.startswith("x-")}
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if out.get(exclusive) is True:
            out[exclusive] = out.pop(bound)
        elif out.get(exclusive) is False:
            del out[exclusive]
    if out.pop("nullable", False):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if "pattern" in out and out["pattern"].startswith("^[A-Z0-9!#$%&"):
        out["pattern"] = "(?i)" + out["pattern"]  # allowance: email patterns, case-insensitive
    if out.get("type") in ("object", ["object", "null"]) and "properties" in out:
        out.setdefault("additionalProperties", False)  # stricter than the spec, on purpose
    return out


def with_allowances(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    if name == "IndividualAppointment":
        # Allowance: real payloads send "" when the appointment is not cancelled.
        schema["properties"]["cancellation_reason_description"]["enum"].append("")
    return schema


def entity_schema(name: str) -> dict[str, Any]:
    return with_allowances(name, to_json_schema(spec()["components"]["schemas"][name]))


def response_schema(path: str, method: str = "get", status: str = "200") -> dict[str, Any]:
    response = spec()["paths"][path][method]["responses"][status]
    if "$ref" in response:
        response = resolve(response["$ref"])
    schema: dict[str, Any] = to_json_schema(response["content"]["application/json"]["schema"])
    return schema


def list_schema(resource: str) -> dict[str, Any]:
    schema = response_schema(f"/{resource}")
    schema["properties"][resource]["items"] = entity_schema(RESOURCES[resource])
    return schema


def validate(instance: Any, schema: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def check_entity(name: str, payload: dict[str, Any]) -> None:
    """Key set, id and timestamp formats, beyond what the JSON Schema says."""
    documented = set(spec()["components"]["schemas"][name]["properties"])
    missing = documented - set(payload)
    assert missing <= ALLOWED_MISSING[name], f"{name} lacks {sorted(missing)}"
    assert ID.match(payload["id"])
    for key, value in payload.items():
        if key.endswith("_at") and value is not None:
            assert TIMESTAMP.match(value), (key, value)
        if isinstance(value, dict) and "links" in value:
            assert value["links"]["self"].startswith(f"{API}/"), (key, value)
    assert payload["links"]["self"].startswith(f"{API}/")


def test_conversion_handles_nullable_refs_and_exclusive_bounds() -> None:
    schema = entity_schema("IndividualAppointment")
    assert schema["properties"]["archived_at"]["type"] == ["string", "null"]
    rule = schema["properties"]["repeat_rule"]
    assert rule["properties"]["number_of_repeats"]["exclusiveMinimum"] == 0
    assert rule["type"] == ["object", "null"]
    phones = entity_schema("Patient")["properties"]["patient_phone_numbers"]
    assert "$ref" not in str(phones)
    with pytest.raises(AssertionError):  # the conversion really rejects bad payloads
        validate({"id": 5}, schema)
    with pytest.raises(AssertionError):
        validate({"undocumented": True}, schema)
    with pytest.raises(AssertionError):
        validate({"repeat_rule": {"number_of_repeats": 0}}, schema)


@pytest.mark.parametrize("resource", list(RESOURCES))
async def test_lists_match_the_contract(client: httpx.AsyncClient, resource: str) -> None:
    params: dict[str, Any] = {"per_page": 100, "q[]": SHOW_ALL[resource]}
    body = (await client.get(f"/v1/{resource}", params=params)).json()
    validate(body, list_schema(resource))
    assert body[resource]
    for payload in body[resource]:
        check_entity(RESOURCES[resource], payload)


@pytest.mark.parametrize("resource", list(RESOURCES))
async def test_gets_match_the_contract(client: httpx.AsyncClient, resource: str) -> None:
    params: dict[str, Any] = {"per_page": 5, "q[]": SHOW_ALL[resource]}
    listed = (await client.get(f"/v1/{resource}", params=params)).json()[resource]
    schema = entity_schema(RESOURCES[resource])
    get_filters = {"q[]": [f for f in SHOW_ALL[resource] if not f.startswith("created")]}
    for row in listed:
        response = await client.get(row["links"]["self"], params=get_filters)
        assert response.status_code == 200
        validate(response.json(), schema)
        assert response.json() == row


async def test_every_kind_of_appointment_matches_the_contract(client: httpx.AsyncClient) -> None:
    schema = list_schema("individual_appointments")
    kinds = {
        "cancelled": ["cancelled_at:?"],
        "archived": ["archived_at:?"],
        "deleted": ["deleted_at:?"],
        "repeat children": ["repeated_from_id:?"],
        "did not arrive": ["did_not_arrive:=true"],
        "future": ["starts_at:>2025-03-20T00:00:00Z"],
    }
    seen_keys: set[str] = set()
    for kind, filters in kinds.items():
        body = (
            await client.get(
                "/v1/individual_appointments", params={"per_page": 100, "q[]": filters}
            )
        ).json()
        assert body["individual_appointments"], kind
        validate(body, schema)
        for payload in body["individual_appointments"]:
            check_entity("IndividualAppointment", payload)
            seen_keys |= set(payload)
    assert {"patient_case", "repeated_from"} <= seen_keys  # the optional keys do appear


async def test_written_appointments_and_errors_match_the_contract(
    client: httpx.AsyncClient,
) -> None:
    case = (await client.get("/v1/patient_cases", params={"per_page": 1})).json()["patient_cases"][
        0
    ]
    refs = {
        name: (await client.get(f"/v1/{plural}", params={"per_page": 1})).json()[plural][0]["id"]
        for name, plural in (
            ("practitioner_id", "practitioners"),
            ("appointment_type_id", "appointment_types"),
            ("business_id", "businesses"),
        )
    }
    body = {
        **refs,
        "patient_id": case["patient"]["links"]["self"].rsplit("/", 1)[-1],
        "patient_case_id": case["id"],
        "starts_at": "2030-02-04T00:00:00Z",
        "repeat_rule": {"repeat_type": "Daily", "repeating_interval": 1, "number_of_repeats": 1},
    }
    created = await client.post("/v1/individual_appointments", json=body)
    assert created.status_code == 201
    validate(created.json(), entity_schema("IndividualAppointment"))
    check_entity("IndividualAppointment", created.json())
    url = created.json()["links"]["self"]
    updated = await client.patch(url, json={"notes": "Contract check"})
    validate(updated.json(), entity_schema("IndividualAppointment"))
    conflicts = (await client.get(f"{url}/conflicts")).json()
    validate(conflicts, response_schema("/individual_appointments/{id}/conflicts"))
    invalid = await client.post("/v1/individual_appointments", json={"starts_at": "soon"})
    assert invalid.status_code == 422
    validate(invalid.json(), response_schema("/individual_appointments", "post", "422"))
    cancel = await client.patch(f"{url}/cancel", json={"cancellation_reason": 10})
    assert cancel.status_code == 204
    cancelled = await client.get(url, params={"q[]": "cancelled_at:*"})
    validate(cancelled.json(), entity_schema("IndividualAppointment"))
    assert cancelled.json()["cancellation_reason_description"] == "Feeling Better"
