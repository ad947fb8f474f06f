"""Baseline (b): the gateway's schema with NO batching, to show what batching saves.

Same object types, same pagination, same extensions (parser/validation caches, error
masking, ``extensions.upstream``) and the same HTTP plumbing as the real gateway; the one
difference is how an appointment's related objects are fetched.  Here every
``patient``/``practitioner``/``business``/``appointmentType``/``patientCase``/
``repeatedFrom`` field of every appointment sends its own ``GET /{collection}/{id}``: no
dataloader, no de-duplication, no list-level prefetch.  That is the "N+1" design a
straightforward resolver-per-field gateway ends up with: the calendar costs
1 + 100 x 4 = 401 upstream requests instead of 5.

Only the root ``appointments`` connection exists; the benchmark runs the calendar on it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from datetime import datetime
from typing import Any

import strawberry
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig

from appointments_gateway.resolvers.errors import NotFound, translate_upstream
from appointments_gateway.resolvers.lists import appointments_page
from appointments_gateway.resolvers.pagination import ConnectionArgs, scope_key
from appointments_gateway.resolvers.relations import RELATIONS
from appointments_gateway.schema.errors import GatewayErrors
from appointments_gateway.schema.extensions import UpstreamUsage
from appointments_gateway.schema.info import Info
from appointments_gateway.schema.inputs import AppointmentFilter, AppointmentOrder, to_criteria
from appointments_gateway.schema.scalars import DateTime
from appointments_gateway.schema.types import (
    RELATED_TYPES,
    Appointment,
    AppointmentConnection,
    AppointmentType,
    Business,
    Patient,
    PatientCase,
    Practitioner,
)
from appointments_gateway.upstream import ClinikoSession

__all__ = ["NaiveRelated", "build_naive_schema"]


class NaiveRelated:
    """Answers each relation field with its own upstream GET, every time it is asked."""

    __slots__ = ("_fetchers", "_session")

    def __init__(self, session: ClinikoSession) -> None:
        self._session = session
        self._fetchers: dict[str, Callable[[str], Awaitable[Any]]] = {
            "patient": lambda i: _built(
                session.patients.get(i, include_archived=True), Patient.from_record
            ),
            "practitioner": lambda i: _built(
                session.practitioners.get(i), Practitioner.from_record
            ),
            "business": lambda i: _built(
                session.businesses.get(i, include_archived=True), Business.from_record
            ),
            "appointmentType": lambda i: _built(
                session.appointment_types.get(i, include_archived=True),
                AppointmentType.from_record,
            ),
            "patientCase": lambda i: _built(
                session.patient_cases.get(i, include_archived=True), PatientCase.from_record
            ),
            "repeatedFrom": lambda i: _built(
                session.appointments.get(i, include_archived=True, include_cancelled=True),
                lambda r: Appointment.from_record(r, self),
            ),
        }

    def value(self, relation: str, raw_id: str | None) -> Any:
        if raw_id is None:
            return None
        return _Lazy(self._fetchers.get(relation) or self._unlisted(relation), raw_id)

    def _unlisted(self, relation: str) -> Callable[[str], Awaitable[Any]]:
        """A relation added to the table since: one by-id call per object all the same."""
        row = next(r for r in RELATIONS if r.name == relation)
        fetch = row.fetch(self._session)

        async def one(raw_id: str) -> Any:
            with translate_upstream():
                record = (await fetch([raw_id])).get(raw_id)
            if record is None:
                raise NotFound("The linked record was not found.")
            if row.is_appointment:
                return Appointment.from_record(record, self)
            return RELATED_TYPES[relation].from_record(record)

        return one


class _Lazy:
    """A GET that starts only when the field is read: one per field read, no batching."""

    __slots__ = ("_fetch", "_raw_id")

    def __init__(self, fetch: Callable[[str], Awaitable[Any]], raw_id: str) -> None:
        self._fetch = fetch
        self._raw_id = raw_id

    def __await__(self) -> Generator[Any, None, Any]:
        return self._fetch(self._raw_id).__await__()


async def _built(fetch: Awaitable[Any], build: Callable[[Any], Any]) -> Any:
    with translate_upstream():
        record = await fetch
    if record is None:  # pragma: no cover - get raises UpstreamNotFound instead
        raise NotFound("The linked record was not found.")
    return build(record)


@strawberry.type(description="The naive baseline's entry point: one unbatched connection.")
class NaiveQuery:
    @strawberry.field(description="Appointments; related objects are fetched one by one.")
    async def appointments(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: AppointmentFilter | None = None,
        order_by: list[AppointmentOrder] | None = None,
    ) -> AppointmentConnection:
        session = info.context.upstream
        criteria = to_criteria(filter, order_by)
        window = await appointments_page(
            session,
            criteria,
            ConnectionArgs(first, after, last, before),
            scope=scope_key(*criteria.scope("appointments")),
        )
        related = NaiveRelated(session)
        nodes = [Appointment.from_record(edge.node, related) for edge in window.edges]
        return AppointmentConnection.of(window, nodes)


def build_naive_schema() -> strawberry.Schema:
    """The naive schema, with the real schema's config and extensions."""
    return strawberry.Schema(
        query=NaiveQuery,
        types=[Appointment, Patient, Practitioner, Business, AppointmentType, PatientCase],
        config=StrawberryConfig(scalar_map={datetime: DateTime}),
        extensions=[
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
            GatewayErrors,
            UpstreamUsage,
        ],
    )
