"""Schema extensions that add gateway facts to every response's ``extensions``."""

from __future__ import annotations

from typing import Any

from strawberry.extensions import SchemaExtension

from appointments_gateway.resolvers.context import Context

__all__ = ["UpstreamUsage"]


class UpstreamUsage(SchemaExtension):
    """Reports what an operation cost, where its data came from, and cursor drift.

    ``extensions.upstream``: the upstream requests it sent; ``extensions.freshness``:
    replica or upstream, and as of when (``Context.freshness``); ``extensions.pagination``:
    cursors whose anchor row had moved.

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
        results: dict[str, Any] = {"upstream": upstream, "freshness": context.freshness()}
        if context.drifted_pages:
            # Rows were inserted or removed before a cursor between two page requests.
            results["pagination"] = {"driftedPages": context.drifted_pages}
        return results
