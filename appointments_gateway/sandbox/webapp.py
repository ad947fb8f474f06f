"""Cliniko's web app: the changes clinic staff make that the API only learns of by polling.

A client that keeps a replica fresh with ``q[]=updated_at:>=T`` sees a change it did not make
only through the changed row's ``updated_at``, and a row removed outright only through a count
that no longer adds up. Tests and benchmarks need to make such *outside edits*; this door makes
them on the same rows, through the same write code (:mod:`.writes`) as the API, so the API then
serves what Cliniko would.

It sits outside ``/v1``, like ``/_sandbox/stats``: no auth, and the knobs middleware never sees
it, so it is not counted in ``/_sandbox/stats``, not rate limited, not slowed by ``latency_ms``
and never a fault. The account is the label in the path (``a`` or ``b``); an unknown label, an
unknown id and another account's id are JSON 404s. Bad input is a 400 ``{"message": ...}``
(validation adds the API's ``"errors"`` map, with the API's words); unknown body fields are
refused, not ignored as the API does, so a typo in a test fails loudly.

Routes, each under ``/_sandbox/webapp/{account}``:

* ``POST /individual_appointments``: create (201), with the API's create body and rules,
  ``repeat_rule`` included.
* ``PATCH /individual_appointments/{id}``: any field of the API's update body, plus the
  web-app-only ``did_not_arrive`` and ``patient_arrived`` (booleans, set independently).
  Works on cancelled appointments; archived and deleted ones are 404, as in the API.
* ``POST /individual_appointments/{id}/cancel``: the body is optional; ``cancellation_reason``
  defaults to 50 (Other), ``cancellation_note`` and ``apply_to_repeats`` work as in the API.
* ``POST /individual_appointments/{id}/archive``: idempotent, as in the API.
* ``DELETE /individual_appointments/{id}``: a soft delete (204): ``deleted_at`` and
  ``updated_at`` become now; the row leaves every list unless ``q[]=deleted_at:*``, and its GET
  is 404 unless the GET names ``deleted_at``. With ``?hard=true`` the row (soft-deleted or not)
  is removed from the database instead: no ``updated_at`` changes anywhere, so only
  ``total_entries`` reveals it, the deletion an ``updated_at`` poll cannot see.
* ``PATCH /patients/{id}`` (``first_name``, ``last_name``, ``preferred_first_name``,
  ``email``), ``/practitioners/{id}`` (``first_name``, ``last_name``, ``display_name``),
  ``/businesses/{id}`` (``business_name``, ``time_zone``, ``time_zone_identifier``: any
  non-blank text, not checked against the IANA list) and ``/appointment_types/{id}``
  (``name``), for archived and inactive rows too. ``label`` follows the name, as the demo
  data builds it.

Every change answers the changed row as the API's GET serialises it (deletes answer 204) and
stamps ``updated_at`` with the current whole second on each row it changes, and only on those:
an appointment's ``patient_name`` is a snapshot (UPSTREAM.md 1.2), so renaming a patient leaves
the patient's appointments alone.

Not imitated: the web app's pages, logins and permissions; edits of other fields or of patient
cases; unarchiving; Cliniko's series editing.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .accounts import DEMO_ACCOUNTS
from .filters import QueryError
from .plumbing import (
    Handler,
    answering_refusals,
    api_base,
    json_error,
    path_id,
    read_body,
    row_payload,
    store_of,
)
from .resources import RESOURCES
from .timefmt import format_ts, now_utc
from .writes import (
    BODY_FIELDS,
    CANCEL_FIELDS,
    ValidationFailed,
    build_update,
    commit_archive,
    commit_cancel,
    commit_create,
    commit_delete,
    is_writable,
    parse_cancel,
)

__all__ = ["EDITABLE", "Editable", "webapp_routes"]

PREFIX = "/_sandbox/webapp/{account}"
DEFAULT_CANCELLATION_REASON = 50  # "Other"
WEB_ONLY_FLAGS = ("did_not_arrive", "patient_arrived")
_LABELS = tuple(account.label for account in DEMO_ACCOUNTS)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_APPOINTMENTS = "individual_appointments"

AccountHandler = Callable[[Request, str], Awaitable[Response]]


def _door(handler: AccountHandler) -> Handler:
    """Resolve the account label in the path (404 if unknown); answer refusals with 400."""

    @answering_refusals(400)
    async def wrapped(request: Request) -> Response:
        label = request.path_params["account"]
        if label not in _LABELS:
            return json_error(
                404, f"No sandbox account {label!r}; the accounts are {', '.join(_LABELS)}."
            )
        return await handler(request, label)

    return wrapped


def _refuse_unknown(body: Mapping[str, Any], known: Mapping[str, Any] | frozenset[str]) -> None:
    unknown = {name: "is not a field the web app sets here" for name in body if name not in known}
    if unknown:
        raise ValidationFailed(unknown)


def _nothing_to_change(known: Mapping[str, Any] | frozenset[str]) -> QueryError:
    return QueryError(f"Nothing to change: send at least one of {', '.join(sorted(known))}.")


def _not_found(request: Request, resource: str) -> JSONResponse:
    return json_error(404, f"No {resource} record with id {request.path_params['id']}.")


def _answer(
    request: Request, table: str, account: str, row_id: int, status: int = 200
) -> JSONResponse:
    row = store_of(request).find(table, account, row_id)
    assert row is not None
    return JSONResponse(row_payload(table, row, api_base(request)), status_code=status)


def _appointment(request: Request, account: str) -> sqlite3.Row | None:
    row_id = path_id(request)
    return None if row_id is None else store_of(request).find("appointments", account, row_id)


# --- appointments --------------------------------------------------------------------------


@_door
async def create_appointment(request: Request, account: str) -> Response:
    body = await read_body(request)
    _refuse_unknown(body, BODY_FIELDS)
    origin_id = commit_create(store_of(request), account, body, now_utc())
    return _answer(request, "appointments", account, origin_id, status=201)


@_door
async def update_appointment(request: Request, account: str) -> Response:
    current = _appointment(request, account)
    if current is None or not is_writable(current):
        return _not_found(request, _APPOINTMENTS)
    body = await read_body(request)
    known = BODY_FIELDS | set(WEB_ONLY_FLAGS)
    _refuse_unknown(body, known)
    if not body:
        raise _nothing_to_change(known)
    errors: dict[str, str] = {}
    flags: dict[str, bool] = {}
    for name in WEB_ONLY_FLAGS:
        if name in body:
            if isinstance(body[name], bool):
                flags[name] = body[name]
            else:
                errors[name] = "must be true or false"
    store = store_of(request)
    api_body = {name: value for name, value in body.items() if name not in WEB_ONLY_FLAGS}
    changes: dict[str, Any] = {}
    try:
        changes = build_update(api_body, store, current, now_utc())
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    store.update_appointments([current["id"]], {**changes, **flags})
    return _answer(request, "appointments", account, current["id"])


@_door
async def cancel_appointment(request: Request, account: str) -> Response:
    current = _appointment(request, account)
    if current is None or not is_writable(current):
        return _not_found(request, _APPOINTMENTS)
    body = await read_body(request)
    _refuse_unknown(body, CANCEL_FIELDS)
    cancel = parse_cancel({"cancellation_reason": DEFAULT_CANCELLATION_REASON, **body})
    commit_cancel(store_of(request), current, cancel, now_utc())
    return _answer(request, "appointments", account, current["id"])


@_door
async def archive_appointment(request: Request, account: str) -> Response:
    row = _appointment(request, account)
    if row is None or row["deleted_at"] is not None:
        return _not_found(request, _APPOINTMENTS)
    commit_archive(store_of(request), row, now_utc())
    return _answer(request, "appointments", account, row["id"])


@_door
async def delete_appointment(request: Request, account: str) -> Response:
    raw = request.query_params.get("hard", "false")
    if raw not in ("true", "false"):
        raise QueryError(f"hard must be true or false, got {raw!r}.")
    hard = raw == "true"
    row = _appointment(request, account)
    if row is None or (row["deleted_at"] is not None and not hard):
        return _not_found(request, _APPOINTMENTS)
    commit_delete(store_of(request), row, now_utc(), hard=hard)
    return Response(status_code=204)


# --- related rows --------------------------------------------------------------------------


@dataclass(frozen=True)
class Editable:
    """What staff may change on one related resource through this door.

    Attributes:
        fields: Payload field name to whether it may be set to ``null``; values are strings.
        derived: Fields recomputed from the merged payload document (e.g. ``label``).
    """

    fields: Mapping[str, bool]
    derived: Callable[[Mapping[str, Any]], dict[str, Any]]


def _label_from_name(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {"label": f"{doc['first_name']} {doc['last_name']}"}


def _label_from_business_name(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {"label": doc["business_name"]}


def _nothing_derived(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {}


EDITABLE: dict[str, Editable] = {
    "patients": Editable(
        {"first_name": False, "last_name": False, "preferred_first_name": True, "email": True},
        _label_from_name,
    ),
    "practitioners": Editable(
        {"first_name": False, "last_name": False, "display_name": False}, _label_from_name
    ),
    # The time zone, as staff change it in Cliniko's settings.  Neither field is checked
    # against a list: a test can so serve a zone a gateway's tz database lacks, as Cliniko
    # would once it knows a zone newer than the gateway's tzdata.
    "businesses": Editable(
        {"business_name": False, "time_zone": False, "time_zone_identifier": False},
        _label_from_business_name,
    ),
    "appointment_types": Editable({"name": False}, _nothing_derived),
}
"""The related resources this door edits, by API resource name."""


def _validated(body: Mapping[str, Any], editable: Editable) -> dict[str, Any]:
    errors: dict[str, str] = {}
    for name, value in body.items():
        nullable = editable.fields[name]
        if value is None:
            if not nullable:
                errors[name] = "can't be blank"
        elif not isinstance(value, str):
            errors[name] = "must be a string"
        elif not nullable and not value.strip():
            errors[name] = "can't be blank"
        elif name == "email" and not _EMAIL.match(value):
            errors[name] = "is not an email address"
    if errors:
        raise ValidationFailed(errors)
    return dict(body)


def _edit_endpoint(name: str, editable: Editable) -> Handler:
    table = RESOURCES[name].table

    @_door
    async def edit(request: Request, account: str) -> Response:
        row_id = path_id(request)
        store = store_of(request)
        row = None if row_id is None else store.find(table, account, row_id)
        if row is None:
            return _not_found(request, name)
        body = await read_body(request)
        _refuse_unknown(body, editable.fields)
        if not body:
            raise _nothing_to_change(editable.fields)
        changes = _validated(body, editable)
        changes.update(editable.derived({**json.loads(row["doc"]), **changes}))
        changes["updated_at"] = format_ts(now_utc())
        store.update_related(table, row["id"], changes)
        return _answer(request, table, account, row["id"])

    return edit


def webapp_routes() -> list[BaseRoute]:
    """The web-app door's routes, to serve beside the API's."""
    appointments = f"{PREFIX}/{_APPOINTMENTS}"
    routes: list[BaseRoute] = [
        Route(appointments, create_appointment, methods=["POST"]),
        Route(f"{appointments}/{{id}}", update_appointment, methods=["PATCH"]),
        Route(f"{appointments}/{{id}}", delete_appointment, methods=["DELETE"]),
        Route(f"{appointments}/{{id}}/cancel", cancel_appointment, methods=["POST"]),
        Route(f"{appointments}/{{id}}/archive", archive_appointment, methods=["POST"]),
    ]
    for name, editable in EDITABLE.items():
        edit = _edit_endpoint(name, editable)
        routes.append(Route(f"{PREFIX}/{name}/{{id}}", edit, methods=["PATCH"]))
    return routes
