"""The root ``Subscription`` type: live updates of appointments (``resolvers/live.py``).

``appointmentChanged(filter:)`` takes the ``appointments`` query's filter (``localDate``
included) and delivers every created, updated, cancelled, archived or deleted appointment
that matches it, or matched it before the change.  Each payload's appointment is built
for what the subscription selects under it, its relations prefetched in one batch each
through fresh loaders: from the replica, at no upstream request when it is warm.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from appointments_gateway.resolvers.prefetch import prefetch
from appointments_gateway.resolvers.subscriptions import appointment_changes
from appointments_gateway.schema.enums import AppointmentChangeKind, change_kind_of
from appointments_gateway.schema.info import Info
from appointments_gateway.schema.inputs import AppointmentFilter, to_criteria
from appointments_gateway.schema.selection import appointment_wants, fields_named, sub_selections
from appointments_gateway.schema.types import Appointment, build_appointments

__all__ = ["AppointmentChange", "Subscription"]


@strawberry.type(description="One appointment's change, as `appointmentChanged` delivers it.")
class AppointmentChange:
    kind: AppointmentChangeKind = strawberry.field(description="How it changed.")
    appointment: Appointment | None = strawberry.field(
        description="The appointment as it is now; for `DELETED`, the last version the "
        "gateway knew (its `id` is what to remove). Never null today."
    )


@strawberry.type(description="Live updates, over graphql-transport-ws (WebSocket) or SSE.")
class Subscription:
    @strawberry.subscription(
        description="Every appointment created, updated, cancelled, archived or deleted that "
        "matches `filter` now or matched it before the change (so a calendar hears of those "
        "that leave it too). Changes arrive within a poll of the gateway's replica "
        "(GATEWAY_SYNC_INTERVAL), at no upstream cost; nothing is sent for past changes. A "
        "subscriber that falls GATEWAY_SUBSCRIPTION_QUEUE events behind is ended with "
        "SLOW_CONSUMER."
    )
    async def appointment_changed(
        self,
        info: Info,
        filter: Annotated[
            AppointmentFilter | None,
            strawberry.argument(
                description="Which appointments, as for `appointments` (cancelled and "
                "archived ones left out by default: their cancellation or archiving is "
                "still told, since they matched before)."
            ),
        ] = None,
    ) -> AsyncGenerator[AppointmentChange, None]:
        criteria = to_criteria(filter, None)
        below = sub_selections(info.selected_fields)
        selections = sub_selections(
            fields_named(below, "appointment", frozenset({"AppointmentChange"}))
        )
        wanted = appointment_wants(selections)
        context = info.context
        async for event in appointment_changes(context, criteria):
            prefetched = await prefetch(context.loaders, [event.row], wanted)
            (appointment,) = build_appointments(prefetched)
            yield AppointmentChange(kind=change_kind_of(event.kind), appointment=appointment)
