"""The root ``Query`` type.

Until the read side lands this only reports the gateway's version; the appointments
fields of DESIGN.md §4 are added here, kept thin, with their logic in ``resolvers/``.
"""

from __future__ import annotations

import strawberry

from appointments_gateway import __version__

__all__ = ["Query"]


@strawberry.type(description="The entry points for reading appointments and related records.")
class Query:
    @strawberry.field(description="The version of the gateway serving this request.")
    def version(self) -> str:
        return __version__
