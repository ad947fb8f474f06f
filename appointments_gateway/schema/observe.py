"""``OperationObserver``: records each operation's facts for its log line and metrics.

One sync ``on_operation`` hook, no per-field hooks (an async per-field hook makes a
heavy operation ~4x slower).  It must be the first extension in the schema's list:
hooks exit in reverse order, so its exit runs after ``GatewayErrors`` has masked the
errors and given each its ``extensions.code``.

The name recorded is that of the operation node the document selects, read from the
parsed document: the request's ``operationName`` is only used to pick it, so a string a
client sends that names no operation (it could be anything) is never recorded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from graphql import get_operation_ast
from strawberry.extensions import SchemaExtension

from appointments_gateway.observability import OperationRecord, current_request
from appointments_gateway.resolvers.context import Context

__all__ = ["OperationObserver"]


class OperationObserver(SchemaExtension):
    """Appends an ``OperationRecord`` to the current request (if it has one)."""

    def on_operation(self) -> Iterator[None]:
        request = current_request()
        started = time.perf_counter()
        yield
        if request is None:
            return
        context = self.execution_context
        name: str | None = None
        kind: str | None = None
        document = context.graphql_document
        if document is not None:
            node = get_operation_ast(document, context.operation_name)
            if node is not None:
                kind = node.operation.value
                name = node.name.value if node.name is not None else None
        result = context.result
        errors = (result.errors if result is not None else None) or []
        codes = sorted(
            {
                str(code)
                for error in errors
                if (code := (error.extensions or {}).get("code")) is not None
            }
        )
        if not errors:
            outcome = "ok"
        elif result is not None and result.data is not None:
            outcome = "partial"
        else:
            outcome = "error"
        upstream_requests = 0
        batches: list[tuple[str, int]] = []
        gateway_context = context.context
        if isinstance(gateway_context, Context):
            upstream_requests = gateway_context.upstream.stats.requests
            batches = list(gateway_context.loaders.batch_sizes())
        request.operations.append(
            OperationRecord(
                name=name,
                type=kind,
                duration_seconds=time.perf_counter() - started,
                upstream_requests=upstream_requests,
                error_codes=codes,
                outcome=outcome,
                batches=batches,
            )
        )
