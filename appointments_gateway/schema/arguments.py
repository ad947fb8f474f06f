"""The connection and id arguments several fields share, each described once.

``appointments`` at the root, on ``Patient``/``Practitioner``/``Business`` and
``Appointment.repeats`` take the same window arguments, and every lookup takes the same
``id``; an alias here is the argument's type and its description together, so a field
declares ``first: First = None`` and the SDL says the same thing everywhere.  (``filter``
and ``orderBy`` are worded differently at the root and on a parent, so each field
describes its own.)
"""

from __future__ import annotations

from typing import Annotated, TypeAlias

import strawberry

__all__ = ["After", "Before", "First", "Last", "LookupId"]

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
#: ``appointment(id:)``, ``patient(id:)``, …: either form of id.
LookupId: TypeAlias = Annotated[
    strawberry.ID, strawberry.argument(description="A global id, or the raw Cliniko id.")
]
