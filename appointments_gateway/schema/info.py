"""The `Info` alias every resolver takes: typed access to the per-request `Context`."""

from __future__ import annotations

from typing import TypeAlias

import strawberry

from appointments_gateway.resolvers.context import Context

__all__ = ["Info"]

Info: TypeAlias = strawberry.Info[Context, None]
