"""``build_schema()``: the one place the schema and its extensions are assembled."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.extensions import DisableIntrospection, ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig

from appointments_gateway.schema.errors import GatewayErrors
from appointments_gateway.schema.extensions import UpstreamCostLimit, UpstreamUsage
from appointments_gateway.schema.mutations import Mutation
from appointments_gateway.schema.query import Query
from appointments_gateway.schema.scalars import DateTime
from appointments_gateway.schema.types import (
    Appointment,
    AppointmentType,
    Business,
    Patient,
    PatientCase,
    Practitioner,
)

__all__ = ["DEFAULT_MAX_UPSTREAM_REQUESTS", "build_schema"]


#: The default admission limit: a quarter of a key's 200 requests per minute.
DEFAULT_MAX_UPSTREAM_REQUESTS = 50


def build_schema(
    *, max_upstream_requests: int = DEFAULT_MAX_UPSTREAM_REQUESTS, introspection: bool = True
) -> strawberry.Schema:
    """A fresh schema; ``schema.graphql`` at the repo root is its exported SDL.

    Parsed and validated documents are cached (bounded): a screen sends the same
    document again and again, and parse + validate is ~2.5 ms of a heavy operation.
    Documents whose upstream cost bound exceeds ``max_upstream_requests`` are refused
    before they run (0 turns the check off; the bound is still reported).

    ``introspection=False`` refuses ``__schema`` and ``__type`` as a validation error (so
    before anything runs; ``__typename`` stays, clients need it): in production the
    schema's shape is no one's business but its clients', who have ``schema.graphql``.
    The rule comes before the validation cache so no cached result is made without it.
    """
    limit = max_upstream_requests if max_upstream_requests > 0 else 2**31
    no_introspection = [] if introspection else [DisableIntrospection]
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=[Appointment, Patient, Practitioner, Business, AppointmentType, PatientCase],
        config=StrawberryConfig(scalar_map={datetime: DateTime}),
        extensions=[
            *no_introspection,
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
            lambda: UpstreamCostLimit(max_requests=limit),
            GatewayErrors,
            UpstreamUsage,
        ],
    )
