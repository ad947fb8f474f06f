"""The root ``Query`` type: thin fields over ``resolvers/connections.py`` and ``nodes.py``."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from appointments_gateway import __version__
from appointments_gateway.resolvers import connections
from appointments_gateway.resolvers.errors import BadUserInput, NotFound
from appointments_gateway.resolvers.ids import parse_global_id, parse_id
from appointments_gateway.resolvers.nodes import load_nodes, not_found
from appointments_gateway.resolvers.prefetch import NOTHING
from appointments_gateway.resolvers.relations import APPOINTMENT
from appointments_gateway.schema.info import Info
from appointments_gateway.schema.inputs import AppointmentFilter, AppointmentOrder, to_criteria
from appointments_gateway.schema.selection import (
    appointment_wants,
    connection_wants,
    sub_selections,
)
from appointments_gateway.schema.types import (
    Appointment,
    AppointmentConnection,
    AppointmentType,
    Business,
    Node,
    Patient,
    Practitioner,
    node_objects,
)

__all__ = ["Query"]

#: ``nodes(ids:)`` takes at most this many ids per call.
MAX_NODES = 100

_ID = strawberry.argument(description="A global id, or the raw Cliniko id.")


@strawberry.type(description="The entry points for reading appointments and related records.")
class Query:
    @strawberry.field(description="The version of the gateway serving this request.")
    def version(self) -> str:
        return __version__

    @strawberry.field(description="Any object by its global id (Relay).")
    async def node(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global id.")],
    ) -> Node | None:
        type_name, raw_id = parse_global_id(id)
        result: Node = await _lookup(info, type_name, raw_id)
        return result

    @strawberry.field(
        description=f"Objects by global id, in the order given (at most {MAX_NODES}); one "
        "batched upstream call per type. A missing object is null with a NOT_FOUND error."
    )
    async def nodes(
        self,
        info: Info,
        ids: Annotated[list[strawberry.ID], strawberry.argument(description="Global ids.")],
    ) -> list[Node | None]:
        if len(ids) > MAX_NODES:
            raise BadUserInput(f"nodes: at most {MAX_NODES} ids per call, got {len(ids)}.")
        asked = [parse_global_id(value) for value in ids]
        found = await _objects(info, asked)
        result: list[Any] = [
            obj if obj is not None else _raise(not_found(type_name, raw_id))
            for obj, (type_name, raw_id) in zip(found, asked, strict=True)
        ]
        return result

    @strawberry.field(description="One appointment, including cancelled and archived ones.")
    async def appointment(
        self, info: Info, id: Annotated[strawberry.ID, _ID]
    ) -> Appointment | None:
        result: Appointment = await _lookup(info, "Appointment", parse_id(id, "Appointment"))
        return result

    @strawberry.field(
        description="Appointments matching a filter, in pages (Relay). Cancelled and archived "
        "ones are left out unless the filter asks for them."
    )
    async def appointments(
        self,
        info: Info,
        first: Annotated[
            int | None,
            strawberry.argument(description="Return the first N items (1–500) after `after`."),
        ] = None,
        after: Annotated[
            str | None, strawberry.argument(description="Return items after this cursor.")
        ] = None,
        last: Annotated[
            int | None,
            strawberry.argument(description="Return the last N items (1–500) before `before`."),
        ] = None,
        before: Annotated[
            str | None, strawberry.argument(description="Return items before this cursor.")
        ] = None,
        filter: Annotated[
            AppointmentFilter | None, strawberry.argument(description="Which appointments.")
        ] = None,
        order_by: Annotated[
            list[AppointmentOrder] | None,
            strawberry.argument(description="Sort order; default `startsAt` ascending."),
        ] = None,
    ) -> AppointmentConnection:
        page = await connections.appointments(
            info.context,
            to_criteria(filter, order_by),
            connection_wants(info.selected_fields),
            first=first,
            after=after,
            last=last,
            before=before,
        )
        return AppointmentConnection.of_page(page)

    @strawberry.field(description="One patient, including archived ones.")
    async def patient(self, info: Info, id: Annotated[strawberry.ID, _ID]) -> Patient | None:
        result: Patient = await _lookup(info, "Patient", parse_id(id, "Patient"))
        return result

    @strawberry.field(description="One practitioner, active or not.")
    async def practitioner(
        self, info: Info, id: Annotated[strawberry.ID, _ID]
    ) -> Practitioner | None:
        result: Practitioner = await _lookup(info, "Practitioner", parse_id(id, "Practitioner"))
        return result

    @strawberry.field(description="One business (clinic location).")
    async def business(self, info: Info, id: Annotated[strawberry.ID, _ID]) -> Business | None:
        result: Business = await _lookup(info, "Business", parse_id(id, "Business"))
        return result

    @strawberry.field(description="One appointment type.")
    async def appointment_type(
        self, info: Info, id: Annotated[strawberry.ID, _ID]
    ) -> AppointmentType | None:
        result: AppointmentType = await _lookup(
            info, "AppointmentType", parse_id(id, "AppointmentType")
        )
        return result


async def _objects(info: Info, asked: list[tuple[str, str]]) -> list[Any]:
    """The objects of ``asked`` (``(type name, raw id)``), ``None`` where missing."""
    wanted = NOTHING
    if any(type_name == APPOINTMENT for type_name, _ in asked):
        wanted = appointment_wants(sub_selections(info.selected_fields))
    return node_objects(await load_nodes(info.context.loaders, asked, wanted))


async def _lookup(info: Info, type_name: str, raw_id: str) -> Any:
    """One record by its raw id, as its GraphQL object; ``NotFound`` when missing."""
    (result,) = await _objects(info, [(type_name, raw_id)])
    if result is None:
        raise not_found(type_name, raw_id)
    return result


async def _raise(error: NotFound) -> None:
    """A ``nodes`` item that fails alone: null, with its ``NOT_FOUND`` error."""
    raise error
