"""Schema extensions that add gateway facts to every response's ``extensions``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, validate
from strawberry.extensions import SchemaExtension

from appointments_gateway.resolvers.context import Context
from appointments_gateway.schema.cost import estimate_upstream_requests

__all__ = ["UpstreamCostLimit", "UpstreamUsage"]


class UpstreamUsage(SchemaExtension):
    """Reports ``extensions.upstream`` (what the operation cost) and cursor drift.

    Clients see how many of the caller's 200 requests per minute an operation used, and
    benchmarks compare the figure with the sandbox's own counters.  The numbers come from
    the request's upstream session, which counts every HTTP request actually sent,
    retries included.  Only a sync hook is used: async per-operation hooks cost little,
    but this needs none.
    """

    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        if not isinstance(context, Context):
            return {}
        stats = context.upstream.stats
        upstream: dict[str, Any] = {
            "requests": stats.requests,
            "milliseconds": round(stats.seconds * 1000, 1),
        }
        if context.estimated_requests is not None:
            upstream["estimate"] = context.estimated_requests
        results: dict[str, Any] = {"upstream": upstream}
        if context.drifted_pages:
            # Rows were inserted or removed before a cursor between two page requests.
            results["pagination"] = {"driftedPages": context.drifted_pages}
        return results


class UpstreamCostLimit(SchemaExtension):
    """Refuses a valid document whose upstream cost bound exceeds ``max_requests``.

    The bound (``schema/cost.py``) is computed after validation and before execution,
    so a refused operation makes no upstream call; the client gets ``QUERY_TOO_COMPLEX``
    with the estimate and the limit, and can split its query.  Accepted operations
    report the bound in ``extensions.upstream.estimate``.
    """

    def __init__(self, *, max_requests: int) -> None:
        super().__init__()
        self.max_requests = max_requests

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            if context.pre_execution_errors is None:
                # Validate here (ValidationCache, listed before this, usually has):
                # a bound is only meaningful for a valid document.
                context.pre_execution_errors = validate(
                    context.schema._schema, document, context.validation_rules
                )
            if not context.pre_execution_errors:
                estimate = estimate_upstream_requests(
                    document, context.variables, context.operation_name
                )
                if isinstance(context.context, Context):
                    context.context.estimated_requests = estimate
                if estimate > self.max_requests:
                    context.pre_execution_errors = [
                        GraphQLError(
                            f"This operation could need {estimate} upstream requests; the "
                            f"limit is {self.max_requests}. Ask for fewer rows or fewer "
                            "nested fields, or split it into several operations.",
                            extensions={
                                "code": "QUERY_TOO_COMPLEX",
                                "estimatedUpstreamRequests": estimate,
                                "maxUpstreamRequests": self.max_requests,
                            },
                        )
                    ]
        yield
