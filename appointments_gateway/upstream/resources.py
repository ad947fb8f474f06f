"""One generic helper per REST resource: list, get, batch-by-ids; plus appointment writes.

Every Cliniko resource the gateway nests has the same read surface
(``GET /things``, ``GET /things/{id}``, ``q[]=id:=a,b,c``), so one generic
:class:`Resource` serves them all, configured by an :class:`Endpoint`. Only
individual appointments (writes, cancel, conflicts) and practitioners (active
and inactive lists) need more.

Batching (``by_ids``) is what keeps N+1 fan-out inside the 200/min budget: ids
are de-duplicated, split into chunks of at most 100 ids whose encoded query
stays under :data:`MAX_BATCH_QUERY_CHARS`, fetched concurrently with
``per_page=100``, and merged into ``{id: record}``; unknown ids are absent.
Ids above int64 max cannot exist upstream (and one would turn the whole batch
into a 400), so they are dropped before anything is sent; a single ``get``
of one raises :class:`InvalidRequest`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypedDict, TypeVar
from urllib.parse import urlencode

from . import filters as f
from .errors import InvalidRequest, UpstreamProtocolError
from .filters import Filter, FilterSpec, format_datetime, validate_batch_id, validate_id
from .records import (
    AppointmentRecord,
    AppointmentTypeRecord,
    BusinessRecord,
    Page,
    PatientCaseRecord,
    PatientRecord,
    PractitionerRecord,
    RepeatRuleRecord,
    parse_page,
)

if TYPE_CHECKING:
    from .client import ClinikoSession

__all__ = [
    "ACCEPTED_CANCELLATION_REASONS",
    "APPOINTMENTS",
    "APPOINTMENT_TYPES",
    "BUSINESSES",
    "DEFAULT_PER_PAGE",
    "MAX_BATCH_QUERY_CHARS",
    "MAX_PER_PAGE",
    "PATIENTS",
    "PATIENT_CASES",
    "PRACTITIONERS",
    "AppointmentFields",
    "AppointmentsResource",
    "Endpoint",
    "PractitionersResource",
    "Resource",
    "chunk_ids",
]


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


R = TypeVar("R", bound=_Identified)
T = TypeVar("T")

MAX_PER_PAGE = 100
"""Cliniko's ``per_page`` maximum, and so the most ids one batch can return."""
DEFAULT_PER_PAGE = 50
"""Cliniko's own default, sent explicitly so ``Page.per_page`` is never a guess."""
MAX_BATCH_QUERY_CHARS = 3_500
"""Cap on a batch's encoded query string; well under common 8 KB URL limits of proxies."""
ACCEPTED_CANCELLATION_REASONS = frozenset({10, 20, 30, 40, 50, 60})
"""Codes the cancel endpoint accepts (SPEC25). 31, COVID-19, is output-only since 2025."""

_ID_SEPARATOR_CHARS = 3  # "," is sent percent-encoded as "%2C"
_ID_FILTER_CHARS = len("q%5B%5D=id%3A%3D")


@dataclass(frozen=True, slots=True)
class Endpoint(Generic[R]):
    """Where a resource lives and how its JSON and filters look."""

    collection: str
    """The list route, e.g. ``/patients``; single records are ``{collection}/{id}``."""
    list_key: str
    parse: Callable[[Any], R]
    list_filters: FilterSpec
    get_filters: FilterSpec


APPOINTMENTS = Endpoint(
    "/individual_appointments",
    "individual_appointments",
    AppointmentRecord.from_json,
    f.APPOINTMENT_LIST,
    f.APPOINTMENT_GET,
)
PATIENTS = Endpoint("/patients", "patients", PatientRecord.from_json, f.PATIENT_LIST, f.PATIENT_GET)
PRACTITIONERS = Endpoint(
    "/practitioners",
    "practitioners",
    PractitionerRecord.from_json,
    f.PRACTITIONER_LIST,
    f.PRACTITIONER_GET,
)
BUSINESSES = Endpoint(
    "/businesses", "businesses", BusinessRecord.from_json, f.BUSINESS_LIST, f.BUSINESS_GET
)
APPOINTMENT_TYPES = Endpoint(
    "/appointment_types",
    "appointment_types",
    AppointmentTypeRecord.from_json,
    f.APPOINTMENT_TYPE_LIST,
    f.APPOINTMENT_TYPE_GET,
)
PATIENT_CASES = Endpoint(
    "/patient_cases",
    "patient_cases",
    PatientCaseRecord.from_json,
    f.PATIENT_CASE_LIST,
    f.PATIENT_CASE_GET,
)


def chunk_ids(
    ids: Sequence[str],
    *,
    max_ids: int = MAX_PER_PAGE,
    max_query_chars: int = MAX_BATCH_QUERY_CHARS,
    reserved_chars: int = 0,
) -> list[list[str]]:
    """Split ids so each chunk has at most ``max_ids`` and fits the query-string budget.

    ``reserved_chars`` is the length of the rest of the query (other filters,
    ``per_page``). Ids are counted as sent: digits plus an encoded comma.
    """
    budget = max_query_chars - reserved_chars - _ID_FILTER_CHARS
    chunks: list[list[str]] = []
    current: list[str] = []
    used = 0
    for id_ in ids:
        cost = len(id_) + (_ID_SEPARATOR_CHARS if current else 0)
        if current and (len(current) >= max_ids or used + cost > budget):
            chunks.append(current)
            current, used, cost = [], 0, len(id_)
        current.append(id_)
        used += cost
    if current:
        chunks.append(current)
    return chunks


async def _gather(coros: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run concurrently; on the first failure cancel the rest (no orphan requests)."""
    if len(coros) == 1:
        return [await coros[0]]
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


def _page_params(page: int, per_page: int) -> list[tuple[str, str]]:
    if type(page) is not int or page < 1:
        raise InvalidRequest("page must be an integer of at least 1.")
    if type(per_page) is not int or not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidRequest(f"per_page must be an integer from 1 to {MAX_PER_PAGE}.")
    return [("page", str(page)), ("per_page", str(per_page))]


class Resource(Generic[R]):
    """Reads of one resource through one session (and so one credential)."""

    __slots__ = ("_endpoint", "_session")

    def __init__(self, session: ClinikoSession, endpoint: Endpoint[R]) -> None:
        self._session = session
        self._endpoint = endpoint

    async def list(
        self,
        *,
        page: int = 1,
        per_page: int = DEFAULT_PER_PAGE,
        filters: Sequence[Filter] = (),
        sort: Sequence[str] = (),
    ) -> Page[R]:
        """One page of ``GET {collection}``, filtered and sorted by documented keys only."""
        return await self._list(self._endpoint.collection, page, per_page, filters, sort)

    async def get(
        self, id: str, *, include_archived: bool = False, filters: Sequence[Filter] = ()
    ) -> R:
        """``GET {collection}/{id}``; archived records need ``include_archived``.

        Raises:
            UpstreamNotFound: no such record, or it is hidden (archived, cancelled).
        """
        spec = self._endpoint.get_filters
        extra = [spec.where("archived_at", "*")] if include_archived else []
        return await self._get(validate_id(id), [*filters, *extra])

    async def by_ids(
        self, ids: Iterable[str], *, include_archived: bool = False, filters: Sequence[Filter] = ()
    ) -> dict[str, R]:
        """Fetch many records by id in as few requests as the limits allow.

        Returns ``{id: record}``; ids Cliniko does not return (unknown, hidden,
        or above int64 max and so never sent) are simply absent.

        Raises:
            InvalidRequest: an id is malformed (not digits, leading zeros).
        """
        spec = self._endpoint.list_filters
        extra = [spec.where("archived_at", "*")] if include_archived else []
        return await self._by_ids(self._endpoint.collection, ids, [*filters, *extra])

    async def _get(self, id: str, filters: Sequence[Filter]) -> R:
        endpoint = self._endpoint
        params = [("q[]", q) for q in endpoint.get_filters.check(filters)]
        route = f"{endpoint.collection}/{{id}}"
        data = await self._session.request(
            "GET", route, f"{endpoint.collection}/{id}", params=params
        )
        return _parse(endpoint.parse, data, "GET", route)

    async def _list(
        self,
        collection: str,
        page: int,
        per_page: int,
        filters: Sequence[Filter],
        sort: Sequence[str],
    ) -> Page[R]:
        spec = self._endpoint.list_filters
        params = _page_params(page, per_page)
        params.extend(("q[]", q) for q in spec.check(filters))
        if sort:
            params.append(("sort", spec.sort(sort)))
        data = await self._session.request("GET", collection, params=params)
        endpoint = self._endpoint
        try:
            return parse_page(data, endpoint.list_key, endpoint.parse, page=page, per_page=per_page)
        except UpstreamProtocolError as exc:
            raise _with_route(exc, "GET", collection) from None

    async def _by_ids(
        self, collection: str, ids: Iterable[str], filters: Sequence[Filter]
    ) -> dict[str, R]:
        wanted = _batch_ids(ids)
        if not wanted:
            return {}
        spec = self._endpoint.list_filters
        extra = spec.check(filters)  # validate once, before anything is sent
        reserved = len(
            urlencode([("page", 1), ("per_page", MAX_PER_PAGE), *(("q[]", q) for q in extra)])
        )
        pages = await _gather(
            [
                self._list(
                    collection, 1, MAX_PER_PAGE, [spec.where("id", "=", chunk), *filters], ()
                )
                for chunk in chunk_ids(wanted, reserved_chars=reserved)
            ]
        )
        # Key by each record's own id, and keep only what was asked for.
        wanted_set = set(wanted)
        return {rec.id: rec for page in pages for rec in page.items if rec.id in wanted_set}


def _batch_ids(ids: Iterable[str]) -> list[str]:
    """Validated, de-duplicated ids in order, without those above int64 max."""
    if isinstance(ids, str):
        raise InvalidRequest("by_ids takes an iterable of ids, not one string.")
    valid = (validate_batch_id(i) for i in ids)
    return list(dict.fromkeys(i for i in valid if i is not None))


def _with_route(exc: UpstreamProtocolError, method: str, route: str) -> UpstreamProtocolError:
    return UpstreamProtocolError(f"{method} {route}: {exc}", method=method, route=route)


def _parse(parse: Callable[[Any], T], data: Any, method: str, route: str) -> T:
    try:
        return parse(data)
    except UpstreamProtocolError as exc:
        raise _with_route(exc, method, route) from None


class PractitionersResource(Resource[PractitionerRecord]):
    """Practitioners: ``GET /practitioners`` lists only active ones.

    ``by_ids`` therefore asks ``/practitioners/inactive`` for the ids the
    active list did not return, so an old appointment still finds a
    practitioner who has since left (one extra request, only when needed).
    """

    __slots__ = ()

    _INACTIVE = "/practitioners/inactive"

    async def list(
        self,
        *,
        page: int = 1,
        per_page: int = DEFAULT_PER_PAGE,
        filters: Sequence[Filter] = (),
        sort: Sequence[str] = (),
        inactive: bool = False,
    ) -> Page[PractitionerRecord]:
        """One page of active practitioners, or of inactive ones."""
        collection = self._INACTIVE if inactive else self._endpoint.collection
        return await self._list(collection, page, per_page, filters, sort)

    async def by_ids(
        self, ids: Iterable[str], *, include_archived: bool = False, filters: Sequence[Filter] = ()
    ) -> dict[str, PractitionerRecord]:
        """Active practitioners first, then the inactive list for any ids still missing."""
        wanted = _batch_ids(ids)
        found = await super().by_ids(wanted, include_archived=include_archived, filters=filters)
        missing = [i for i in wanted if i not in found]
        if missing:
            found.update(await self._by_ids(self._INACTIVE, missing, filters))
        return found


class AppointmentFields(TypedDict, total=False):
    """Writable fields of an individual appointment (create and update bodies).

    On update only the keys present are sent; ``ends_at=None`` asks Cliniko to
    recompute the end from the appointment type's duration.
    """

    patient_id: str
    practitioner_id: str
    business_id: str
    appointment_type_id: str
    patient_case_id: str | None
    starts_at: datetime
    ends_at: datetime | None
    notes: str | None
    repeat_rule: RepeatRuleRecord | None


_ID_FIELDS = frozenset(
    {"patient_id", "practitioner_id", "business_id", "appointment_type_id", "patient_case_id"}
)


def _appointment_body(fields: Mapping[str, object]) -> dict[str, object]:
    body: dict[str, object] = {}
    for key, value in fields.items():
        if value is None and key in ("patient_case_id", "ends_at", "notes", "repeat_rule"):
            body[key] = None
        elif key in _ID_FIELDS:
            body[key] = validate_id(value)
        elif key in ("starts_at", "ends_at") and isinstance(value, datetime):
            body[key] = format_datetime(value)
        elif key == "notes" and isinstance(value, str):
            body[key] = value
        elif key == "repeat_rule" and isinstance(value, RepeatRuleRecord):
            body[key] = {
                "repeat_type": value.repeat_type,
                "number_of_repeats": value.number_of_repeats,
                "repeating_interval": value.repeating_interval,
            }
        else:
            raise InvalidRequest(f"Appointment field {key!r} is unknown or has the wrong type.")
    return body


class AppointmentsResource(Resource[AppointmentRecord]):
    """Individual appointments: reads that can reveal hidden rows, writes, cancel, conflicts.

    Cancelled and archived appointments are hidden unless asked for with the
    ``*`` ("any value") operator, which the ``include_*`` flags add.
    """

    __slots__ = ()

    async def get(
        self,
        id: str,
        *,
        include_archived: bool = False,
        filters: Sequence[Filter] = (),
        include_cancelled: bool = False,
    ) -> AppointmentRecord:
        """``GET /individual_appointments/{id}``, optionally also when cancelled/archived."""
        spec = self._endpoint.get_filters
        extra = [spec.where("cancelled_at", "*")] if include_cancelled else []
        return await super().get(id, include_archived=include_archived, filters=[*filters, *extra])

    async def by_ids(
        self,
        ids: Iterable[str],
        *,
        include_archived: bool = False,
        filters: Sequence[Filter] = (),
        include_cancelled: bool = False,
    ) -> dict[str, AppointmentRecord]:
        """Batch by id, optionally also returning cancelled/archived appointments."""
        spec = self._endpoint.list_filters
        extra = [spec.where("cancelled_at", "*")] if include_cancelled else []
        return await super().by_ids(
            ids, include_archived=include_archived, filters=[*filters, *extra]
        )

    async def create(self, fields: AppointmentFields) -> AppointmentRecord:
        """``POST /individual_appointments`` (201). Never retried once it may have been sent.

        Raises:
            UpstreamValidationError: 422, with ``field_errors`` per upstream field.
        """
        route = self._endpoint.collection
        data = await self._session.request("POST", route, json=_appointment_body(fields))
        return _parse(AppointmentRecord.from_json, data, "POST", route)

    async def update(self, id: str, fields: AppointmentFields) -> AppointmentRecord:
        """``PATCH /individual_appointments/{id}`` (200) with only the given fields."""
        if not fields:
            raise InvalidRequest("An appointment update needs at least one field.")
        route = f"{self._endpoint.collection}/{{id}}"
        path = f"{self._endpoint.collection}/{validate_id(id)}"
        data = await self._session.request("PATCH", route, path, json=_appointment_body(fields))
        return _parse(AppointmentRecord.from_json, data, "PATCH", route)

    async def archive(self, id: str) -> None:
        """``POST /individual_appointments/{id}/archive`` (204); not the deprecated DELETE."""
        path = f"{self._endpoint.collection}/{validate_id(id)}/archive"
        await self._session.request("POST", f"{self._endpoint.collection}/{{id}}/archive", path)

    async def cancel(
        self, id: str, *, reason: int, note: str | None = None, apply_to_repeats: bool = False
    ) -> None:
        """``PATCH /individual_appointments/{id}/cancel`` (204).

        The response has no body: re-fetch with ``include_cancelled=True``.

        Raises:
            InvalidRequest: ``reason`` is not an accepted code (31 is output-only).
        """
        if type(reason) is not int or reason not in ACCEPTED_CANCELLATION_REASONS:
            raise InvalidRequest("The cancellation reason is not a code Cliniko accepts.")
        if note is not None and not isinstance(note, str):
            raise InvalidRequest("The cancellation note must be a string.")
        body: dict[str, object] = {
            "cancellation_reason": reason,
            "apply_to_repeats": bool(apply_to_repeats),
        }
        if note is not None:
            body["cancellation_note"] = note
        path = f"{self._endpoint.collection}/{validate_id(id)}/cancel"
        route = f"{self._endpoint.collection}/{{id}}/cancel"
        await self._session.request("PATCH", route, path, json=body)

    async def has_conflicts(self, id: str) -> bool:
        """``GET /individual_appointments/{id}/conflicts``: does it clash with a booking?"""
        route = f"{self._endpoint.collection}/{{id}}/conflicts"
        path = f"{self._endpoint.collection}/{validate_id(id)}/conflicts"
        data = await self._session.request("GET", route, path)
        try:
            exist = data["conflicts"]["exist"]
        except (KeyError, TypeError):
            exist = None
        if type(exist) is not bool:
            raise UpstreamProtocolError(
                f"GET {route}: no boolean conflicts.exist", method="GET", route=route
            )
        return exist
