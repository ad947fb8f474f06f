"""OpenTelemetry spans: one per GraphQL operation, one per upstream HTTP attempt.

Off unless ``GATEWAY_TRACING`` is on.  The gateway uses only the OpenTelemetry *API*;
where spans go is the deployment's choice (run under ``opentelemetry-instrument`` with
an exporter, or install a ``TracerProvider``); with none configured they are no-ops.

Spans carry what metrics carry and nothing more: the HTTP method, the route *template*
(``/patients``, never a path with an id or a query string with filter values), the
status or the transport error's class name.  No operation names (client-chosen strings),
no variables, no keys.  Upstream spans are built after the attempt from its measured
duration, through the same cheap hook as the metrics, and are children of the operation
span because dataloader tasks inherit the operation's context.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.trace import (
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    TracerProvider,
    get_tracer_provider,
)

from appointments_gateway.upstream.client import AttemptObserver

__all__ = ["Tracing", "chain_observers"]

_INSTRUMENTATION = "appointments_gateway"


class Tracing:
    """The gateway's spans, from one tracer of ``provider`` (the global one by default)."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.tracer: Tracer = (provider or get_tracer_provider()).get_tracer(_INSTRUMENTATION)

    @contextmanager
    def operation(self) -> Iterator[None]:
        """The span of one GraphQL operation; upstream spans started inside are its children."""
        with self.tracer.start_as_current_span("graphql.operation", kind=SpanKind.SERVER):
            yield

    def upstream_attempt(self, method: str, route: str, outcome: int | str, seconds: float) -> None:
        """An :data:`AttemptObserver`: records one finished upstream attempt as a span."""
        end = time.time_ns()
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "url.template": route,
            "server.kind": "cliniko",
        }
        failed = True
        if isinstance(outcome, int):
            attributes["http.response.status_code"] = outcome
            failed = outcome >= 400
        else:
            attributes["error.type"] = outcome
        span = self.tracer.start_span(
            f"{method} {route}",
            kind=SpanKind.CLIENT,
            start_time=end - int(seconds * 1e9),
            attributes=attributes,
        )
        if failed:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=end)


def chain_observers(*observers: AttemptObserver | None) -> AttemptObserver | None:
    """One observer calling each given one in turn (``None`` when none is given)."""
    present = [observer for observer in observers if observer is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]

    def observe(method: str, route: str, outcome: int | str, seconds: float) -> None:
        for observer in present:
            observer(method, route, outcome, seconds)

    return observe
