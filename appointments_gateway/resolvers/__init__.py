"""Use cases between the GraphQL schema and the upstream client."""

from appointments_gateway.resolvers.context import Context

__all__ = ["Context"]
