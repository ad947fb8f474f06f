"""The connection and id arguments several fields share, each described once.

``appointments`` at the root, on ``Patient``/``Practitioner``/``Business`` and
``Appointment.repeats`` take the same window arguments, and every lookup takes the same
``id``; an alias here is the argument's type and its description together, so a field
declares ``first: First = None`` and the SDL says the same thing everywhere.
"""

from __future__ import annotations

from typing import Annotated, TypeAlias

import strawberry

from appointments_gateway.schema.inputs import AppointmentFilter, AppointmentOrder

__all__ = ["After", "Before", "First", "Last", "LookupId", "ParentFilter", "ParentOrder"]

First: TypeAlias = Annotated[
    int | None, strawberry.argument(description="Return the first N items (1–500) after `after`.")
]
After: TypeAlias = Annotated[
    str | None, strawberry.argument(description="Return items after this cursor.")
]
Last: TypeAlias = Annotated[
    int | None,
    strawberry.argument(description="Return the last N items (1–500) before `before`."),
]
Before: TypeAlias = Annotated[
    str | None, strawberry.argument(description="Return items before this cursor.")
]
#: A parent's ``appointments`` (the root field words its own two more briefly).
ParentFilter: TypeAlias = Annotated[
    AppointmentFilter | None, strawberry.argument(description="Which appointments to return.")
]
ParentOrder: TypeAlias = Annotated[
    list[AppointmentOrder] | None,
    strawberry.argument(
        description="Sort order; ties are broken by id. Default: `startsAt` ascending."
    ),
]
#: ``appointment(id:)``, ``patient(id:)``, …: either form of id.
LookupId: TypeAlias = Annotated[
    strawberry.ID, strawberry.argument(description="A global id, or the raw Cliniko id.")
]
