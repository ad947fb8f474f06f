"""``build_schema()``: the one place the schema and its extensions are assembled."""

from __future__ import annotations

import strawberry

from appointments_gateway.schema.extensions import UpstreamUsage
from appointments_gateway.schema.query import Query

__all__ = ["build_schema"]


def build_schema() -> strawberry.Schema:
    """A fresh schema; ``schema.graphql`` at the repo root is its exported SDL."""
    return strawberry.Schema(query=Query, extensions=[UpstreamUsage])
