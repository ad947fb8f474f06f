"""Operator-facing facts about the gateway: request ids, JSON log lines, Prometheus metrics.

Everything here is built so health data cannot leak into it: log lines and metric labels
are assembled from a fixed set of fields (request id, operation name taken from the parsed
document, counts, codes, statuses, route templates), never from bodies, variables, record
values, exception messages or credentials.
"""

from appointments_gateway.observability.logs import JsonFormatter, log_config
from appointments_gateway.observability.metrics import GatewayMetrics
from appointments_gateway.observability.requests import (
    REQUEST_ID_HEADER,
    ObservabilityMiddleware,
    OperationRecord,
    RequestRecord,
    current_request,
    current_request_id,
)

__all__ = [
    "REQUEST_ID_HEADER",
    "GatewayMetrics",
    "JsonFormatter",
    "ObservabilityMiddleware",
    "OperationRecord",
    "RequestRecord",
    "current_request",
    "current_request_id",
    "log_config",
]
