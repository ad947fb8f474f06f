"""The GraphQL schema: Strawberry shapes only, built by ``build_schema()``."""

from appointments_gateway.schema.build import build_schema

__all__ = ["build_schema"]
