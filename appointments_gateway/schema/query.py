"""The root ``Query`` type: thin fields over ``resolvers/connections.py`` and ``nodes.py``."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry.types.base import get_object_definition

from appointments_gateway import __version__
from appointments_gateway.resolvers import connections
from appointments_gateway.resolvers.errors import BadUserInput, NotFound
from appointments_gateway.resolvers.ids import parse_global_id, parse_id
from appointments_gateway.resolvers.nodes import load_nodes, not_found
from appointments_gateway.resolvers.pagination import ConnectionArgs
from appointments_gateway.resolvers.prefetch import NOTHING
from appointments_gateway.resolvers.relations import APPOINTMENT
from appointments_gateway.schema.arguments import After, Before, First, Last, LookupId
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


def _lookup_field(cls: type[Any], description: str) -> Any:
    """A root field that reads one record of ``cls``'s type by its id (global or raw).

    One resolver for the five lookups; a record the upstream lacks is ``null`` with
    ``NOT_FOUND``.
    """
    type_name = get_object_definition(cls, strict=True).name

    async def resolve(info: Info, id: LookupId) -> Any:
        return await _lookup(info, type_name, parse_id(id, type_name))

    return strawberry.field(resolver=resolve, description=description, graphql_type=cls | None)


def _version() -> str:
    return __version__


async def _node(
    info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="A global id.")]
) -> Node | None:
    type_name, raw_id = parse_global_id(id)
    result: Node = await _lookup(info, type_name, raw_id)
    return result


async def _nodes(
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


async def _appointments(
    info: Info,
    first: First = None,
    after: After = None,
    last: Last = None,
    before: Before = None,
    filter: Annotated[
        AppointmentFilter | None, strawberry.argument(description="Which appointments.")
    ] = None,
    order_by: Annotated[
        list[AppointmentOrder] | None,
        strawberry.argument(description="Sort order; default `startsAt` ascending."),
    ] = None,
) -> AppointmentConnection:
    criteria = to_criteria(filter, order_by)
    wants = connection_wants(info.selected_fields)
    args = ConnectionArgs(first, after, last, before)
    return AppointmentConnection.of_page(
        await connections.appointments(info.context, criteria, wants, args)
    )


@strawberry.type(description="The entry points for reading appointments and related records.")
class Query:
    # Every field is an attribute, in the order the SDL lists them (Strawberry puts
    # annotated fields before decorated methods).
    version: str = strawberry.field(
        resolver=_version, description="The version of the gateway serving this request."
    )
    node: Node | None = strawberry.field(
        resolver=_node, description="Any object by its global id (Relay)."
    )
    nodes: list[Node | None] = strawberry.field(
        resolver=_nodes,
        description=f"Objects by global id, in the order given (at most {MAX_NODES}); one "
        "batched upstream call per type. A missing object is null with a NOT_FOUND error.",
    )
    appointment: Appointment | None = _lookup_field(
        Appointment, "One appointment, including cancelled and archived ones."
    )
    appointments: AppointmentConnection = strawberry.field(
        resolver=_appointments,
        description="Appointments matching a filter, in pages (Relay). Cancelled and archived "
        "ones are left out unless the filter asks for them.",
    )
    patient: Patient | None = _lookup_field(Patient, "One patient, including archived ones.")
    practitioner: Practitioner | None = _lookup_field(
        Practitioner, "One practitioner, active or not."
    )
    business: Business | None = _lookup_field(Business, "One business (clinic location).")
    appointment_type: AppointmentType | None = _lookup_field(
        AppointmentType, "One appointment type."
    )


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
