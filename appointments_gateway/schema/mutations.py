"""The root ``Mutation`` type and its payloads: thin fields over ``resolvers/writes.py``.

Every mutation takes one ``input`` and answers a payload ``{ appointment, userErrors }``
(DESIGN.md §4). Problems with the input (including Cliniko's 422s) are ``userErrors``
with the path of the input field; failures that are not the input's fault are GraphQL
errors with a code (DESIGN.md §5). The payload's appointment is built with every
relation its selection asks for loaded in one batch, like a query's.
"""

from __future__ import annotations

from typing import Annotated

import strawberry

from appointments_gateway.resolvers import writes
from appointments_gateway.resolvers.prefetch import prefetch
from appointments_gateway.resolvers.user_errors import UserErrorCode
from appointments_gateway.resolvers.writes import WriteResult
from appointments_gateway.schema.info import Info
from appointments_gateway.schema.mutation_inputs import (
    ArchiveAppointmentInput,
    CancelAppointmentInput,
    CreateAppointmentInput,
    UpdateAppointmentInput,
    create_changes,
    reason_code,
    update_changes,
)
from appointments_gateway.schema.selection import appointment_wants, fields_named, sub_selections
from appointments_gateway.schema.types import Appointment, build_appointments

__all__ = [
    "ArchiveAppointmentPayload",
    "CancelAppointmentPayload",
    "CreateAppointmentPayload",
    "Mutation",
    "UpdateAppointmentPayload",
    "UserError",
]

_CODES = ", ".join(f"`{code.value}`" for code in UserErrorCode)


@strawberry.type(
    description="A problem with the mutation's input. Nothing was changed when a payload has any."
)
class UserError:
    field: list[str] | None = strawberry.field(
        description='The path of the input field at fault, e.g. `["input", "startsAt"]`; '
        '`["input"]` when it is the input as a whole.'
    )
    message: str = strawberry.field(description="What is wrong, for a person to read.")
    code: str = strawberry.field(description=f"A stable code to branch on: one of {_CODES}.")


@strawberry.type(description="What every mutation answers (never in the schema itself).")
class _Payload:
    appointment: Appointment | None = strawberry.field(
        description="The appointment as Cliniko now has it; null when there are `userErrors`."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Problems with the input; empty on success."
    )


@strawberry.type(description="The result of `createAppointment`.")
class CreateAppointmentPayload(_Payload):
    pass


@strawberry.type(description="The result of `updateAppointment`.")
class UpdateAppointmentPayload(_Payload):
    pass


@strawberry.type(description="The result of `cancelAppointment`.")
class CancelAppointmentPayload(_Payload):
    pass


@strawberry.type(description="The result of `archiveAppointment`.")
class ArchiveAppointmentPayload(_Payload):
    pass


async def _parts(
    info: Info, result: WriteResult, payload_type: str
) -> tuple[Appointment | None, list[UserError]]:
    """The payload's appointment, built for what the query selects under it, and errors."""
    errors = [
        UserError(
            field=list(error.field) if error.field is not None else None,
            message=error.message,
            code=error.code.value,
        )
        for error in result.user_errors
    ]
    if result.record is None:
        return None, errors
    below = sub_selections(info.selected_fields)
    selections = sub_selections(fields_named(below, "appointment", frozenset({payload_type})))
    wanted = appointment_wants(selections)
    prefetched = await prefetch(info.context.loaders, [result.record], wanted)
    (appointment,) = build_appointments(prefetched)
    return appointment, errors


@strawberry.type(description="The entry points for booking and changing appointments.")
class Mutation:
    @strawberry.mutation(
        description="Book an appointment, and its repeats when `repeatRule` is given. Never "
        "retried by the gateway once sent; pass `idempotencyKey` to retry safely."
    )
    async def create_appointment(
        self,
        info: Info,
        input: Annotated[
            CreateAppointmentInput,
            strawberry.argument(description="The appointment to book."),
        ],
    ) -> CreateAppointmentPayload:
        result = await writes.create_appointment(
            info.context, create_changes(input), idempotency_key=input.idempotency_key
        )
        appointment, errors = await _parts(info, result, "CreateAppointmentPayload")
        return CreateAppointmentPayload(appointment=appointment, user_errors=errors)

    @strawberry.mutation(
        description="Change an appointment; only the fields given in `input` are sent."
    )
    async def update_appointment(
        self,
        info: Info,
        input: Annotated[
            UpdateAppointmentInput,
            strawberry.argument(description="The appointment and the fields to change."),
        ],
    ) -> UpdateAppointmentPayload:
        result = await writes.update_appointment(info.context, input.id, update_changes(input))
        appointment, errors = await _parts(info, result, "UpdateAppointmentPayload")
        return UpdateAppointmentPayload(appointment=appointment, user_errors=errors)

    @strawberry.mutation(
        description="Cancel an appointment (optionally the rest of its series); the payload "
        "shows it cancelled, with its `cancellation`."
    )
    async def cancel_appointment(
        self,
        info: Info,
        input: Annotated[
            CancelAppointmentInput,
            strawberry.argument(description="The appointment, the reason and a note."),
        ],
    ) -> CancelAppointmentPayload:
        result = await writes.cancel_appointment(
            info.context,
            input.id,
            reason=reason_code(input.reason),
            reason_name=input.reason.name,
            note=input.note,
            apply_to_repeats=input.apply_to_repeats,
        )
        appointment, errors = await _parts(info, result, "CancelAppointmentPayload")
        return CancelAppointmentPayload(appointment=appointment, user_errors=errors)

    @strawberry.mutation(
        description="Archive an appointment (Cliniko's delete); the payload shows it ARCHIVED."
    )
    async def archive_appointment(
        self,
        info: Info,
        input: Annotated[
            ArchiveAppointmentInput,
            strawberry.argument(description="The appointment to archive."),
        ],
    ) -> ArchiveAppointmentPayload:
        result = await writes.archive_appointment(info.context, input.id)
        appointment, errors = await _parts(info, result, "ArchiveAppointmentPayload")
        return ArchiveAppointmentPayload(appointment=appointment, user_errors=errors)
