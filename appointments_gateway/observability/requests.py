"""The request id, and the one log line (plus metrics) per GraphQL operation.

``ObservabilityMiddleware`` wraps every HTTP request: it takes the caller's
``X-Request-Id`` when it is a plain token (so a client or a proxy can correlate its own
logs with ours) or makes a new one, echoes it in the response, and keeps it in a context
variable for the rest of the request: the error masking puts it in a masked error's
``extensions.requestId`` and the unexpected-error log line carries it.

The schema's ``OperationObserver`` appends an :class:`OperationRecord` per executed
operation to the request's :class:`RequestRecord`; when the response has been sent the
middleware writes one line per operation, with the HTTP status only it knows, and counts
the operation in the metrics.  Why the split: the status is decided after execution (by
Strawberry's view and other middleware), and an extension cannot see it.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appointments_gateway.observability.logs import FIELDS

if TYPE_CHECKING:
    from appointments_gateway.observability.metrics import GatewayMetrics

__all__ = [
    "REQUEST_ID_HEADER",
    "ObservabilityMiddleware",
    "OperationRecord",
    "RequestRecord",
    "current_request",
    "current_request_id",
]

REQUEST_ID_HEADER = "X-Request-Id"
_HEADER_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")

#: An incoming id is kept only if it is a plain token: 8 to 64 letters, digits, ``.``,
#: ``_`` or ``-`` (a UUID, a ULID, a W3C trace id, a proxy's hex id).  Anything else
#: (spaces, quotes, newlines, a 10 KB header) is replaced, so a request id can neither
#: forge a log line nor bloat one.
_INCOMING = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{7,63}", re.ASCII)

logger = logging.getLogger("appointments_gateway.operations")


@dataclass(slots=True)
class OperationRecord:
    """What the log line and the metrics say about one operation, and nothing else."""

    #: The name of the executed operation in the parsed document; ``None`` if unnamed.
    name: str | None
    #: ``query``, ``mutation`` or ``subscription``; ``None`` if the document is invalid.
    type: str | None
    duration_seconds: float
    upstream_requests: int
    #: ``extensions.code`` of each error returned, sorted, each once.
    error_codes: list[str]
    #: ``ok`` (no errors), ``partial`` (errors and data) or ``error`` (errors, no data).
    outcome: str
    #: ``(loader, keys)`` per dataloader batch the operation sent.
    batches: list[tuple[str, int]] = field(default_factory=list)


@dataclass(slots=True)
class RequestRecord:
    """One HTTP request as the observability code sees it."""

    request_id: str
    operations: list[OperationRecord] = field(default_factory=list)


_current: ContextVar[RequestRecord | None] = ContextVar("gateway_request", default=None)


def current_request() -> RequestRecord | None:
    """The request being served by this task, if it came through the middleware."""
    return _current.get()


def current_request_id() -> str | None:
    record = _current.get()
    return record.request_id if record is not None else None


def request_id_from(scope: Scope) -> str:
    """The caller's ``X-Request-Id`` if it is a plain token, else a fresh one."""
    for key, value in scope.get("headers", ()):
        if key == _HEADER_KEY:
            candidate: str = value.decode("latin-1")
            if _INCOMING.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class ObservabilityMiddleware:
    """Request ids for every HTTP request; log lines and metrics for GraphQL ones.

    Args:
        app: the wrapped ASGI app.
        metrics: where operations are counted; ``None`` counts nothing.
        graphql_path: requests to this path get log lines (probes and scrapes do not).
    """

    def __init__(
        self, app: ASGIApp, *, metrics: GatewayMetrics | None, graphql_path: str = "/graphql"
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.graphql_path = graphql_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = RequestRecord(request_id_from(scope))
        status = 500  # what the server answers if the app raises before it responds

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = record.request_id
            await send(message)

        started = time.perf_counter()
        token = _current.set(record)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _current.reset(token)
            if scope["path"] == self.graphql_path:
                self._finish(record, status, time.perf_counter() - started)

    def _finish(self, record: RequestRecord, status: int, seconds: float) -> None:
        metrics = self.metrics
        if metrics is not None:
            metrics.graphql_response(status)
        if not record.operations:
            # Refused before any operation ran (credentials, body, JSON): one line so
            # the operator sees the refusal; the GraphiQL page (a 200) needs none.
            if status >= 400:
                _log(record.request_id, None, None, seconds, 0, [], status)
            return
        for operation in record.operations:
            _log(
                record.request_id,
                operation.name,
                operation.type,
                operation.duration_seconds,
                operation.upstream_requests,
                operation.error_codes,
                status,
            )
            if metrics is not None:
                metrics.operation(operation)


def _log(
    request_id: str,
    name: str | None,
    kind: str | None,
    seconds: float,
    upstream_requests: int,
    error_codes: list[str],
    status: int,
) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {
        "request_id": request_id,
        "operation_name": name,
        "operation_type": kind,
        "duration_ms": round(seconds * 1000, 1),
        "upstream_requests": upstream_requests,
        "error_codes": error_codes,
        "http_status": status,
    }
    logger.info("graphql operation", extra={FIELDS: fields})
