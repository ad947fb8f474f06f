"""Prometheus metrics, in one ``CollectorRegistry`` per app.

Why a registry per app and not the library's global one: tests (and benchmarks) build
many apps in one process, and a global registry refuses a second metric of one name.
With several workers each process has its own registry, so a scrape of the shared port
sees one worker's counters; run one worker per container (and scale containers) when
the numbers matter, or aggregate by instance.

Every label value comes from a bounded set: operation names taken from parsed documents
(``anonymous`` when unnamed, ``other`` past :data:`MAX_OPERATION_NAMES` or beyond 64
characters), operation types, outcomes, error codes (``extensions.code``), HTTP status
codes, upstream route templates such as ``/patients/{id}`` (never a filled-in id),
exception class names and loader names.  None carries a key, an id or a person's name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from appointments_gateway.observability.requests import OperationRecord
from appointments_gateway.replica import KINDS, Replicas
from appointments_gateway.upstream import Governor

__all__ = ["MAX_OPERATION_NAMES", "GatewayMetrics"]

#: Distinct operation names one process labels by; later ones are counted as ``other``.
MAX_OPERATION_NAMES = 200
_MAX_NAME_LENGTH = 64
_CODE = re.compile(r"[A-Z][A-Z_]{0,39}", re.ASCII)

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_REQUEST_COUNTS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89)
_BATCH_SIZES = (1, 2, 5, 10, 25, 50, 100, 250, 500)
_LAG_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class GatewayMetrics:
    """The gateway's metrics; ``render`` is what ``GET /metrics`` serves.

    Args:
        governor: the upstream budget whose counters are exported (read at scrape
            time, so granting a token costs nothing extra); ``None`` exports none.
    """

    def __init__(self, governor: Governor | None = None) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self._names: set[str] = set()
        self.operations = Counter(
            "gateway_operations",
            "GraphQL operations executed, by operation name, type and outcome.",
            ["operation", "type", "outcome"],
            registry=registry,
        )
        self.operation_seconds = Histogram(
            "gateway_operation_duration_seconds",
            "Time from the start of parsing to the result, by operation name and type.",
            ["operation", "type"],
            buckets=_SECONDS,
            registry=registry,
        )
        self.operation_upstream_requests = Histogram(
            "gateway_operation_upstream_requests",
            "Upstream HTTP requests one operation sent (retries included).",
            ["operation", "type"],
            buckets=_REQUEST_COUNTS,
            registry=registry,
        )
        self.errors = Counter(
            "gateway_operation_errors",
            "Errors returned in GraphQL responses, by extensions.code.",
            ["code"],
            registry=registry,
        )
        self.graphql_responses = Counter(
            "gateway_graphql_responses",
            "HTTP responses of the GraphQL endpoint, by status (refusals included).",
            ["status"],
            registry=registry,
        )
        self.upstream_requests = Counter(
            "gateway_upstream_requests",
            "Upstream HTTP attempts by method, route template and status (or the "
            "transport error's class when no response came).",
            ["method", "route", "status"],
            registry=registry,
        )
        self.upstream_seconds = Histogram(
            "gateway_upstream_request_duration_seconds",
            "Time of one upstream HTTP attempt, by method and route template.",
            ["method", "route"],
            buckets=_SECONDS,
            registry=registry,
        )
        self.loader_batch_size = Histogram(
            "gateway_dataloader_batch_size",
            "Keys per dataloader batch, by loader.",
            ["loader"],
            buckets=_BATCH_SIZES,
            registry=registry,
        )
        self.loop_lag = Histogram(
            "gateway_event_loop_lag_seconds",
            "How much later than due the event loop woke a sleeper (sampled 10 times a "
            "second): time it spent on work that did not yield, e.g. a slow validation.",
            buckets=_LAG_SECONDS,
            registry=registry,
        )
        self._governor = governor
        if governor is not None:
            registry.register(_GovernorCollector(governor))

    def watch_replicas(self, replicas: Replicas) -> None:
        """Export the replicas' memory, lag, sync requests, hits and misses (DESIGN.md §8)."""
        self.registry.register(_ReplicaCollector(replicas, self._governor))

    #: The media type of :meth:`render`'s text.
    content_type = CONTENT_TYPE_LATEST

    def render(self) -> bytes:
        """The registry in Prometheus' text exposition format."""
        return generate_latest(self.registry)

    def operation_label(self, name: str | None) -> str:
        """A bounded label for an operation name."""
        if name is None:
            return "anonymous"
        if name in self._names:
            return name
        if len(name) > _MAX_NAME_LENGTH or len(self._names) >= MAX_OPERATION_NAMES:
            return "other"
        self._names.add(name)
        return name

    def operation(self, record: OperationRecord) -> None:
        name = self.operation_label(record.name)
        kind = record.type or "invalid"
        self.operations.labels(name, kind, record.outcome).inc()
        self.operation_seconds.labels(name, kind).observe(record.duration_seconds)
        self.operation_upstream_requests.labels(name, kind).observe(record.upstream_requests)
        for code in record.error_codes:
            self.errors.labels(code if _CODE.fullmatch(code) else "OTHER").inc()
        for loader, size in record.batches:
            self.loader_batch_size.labels(loader).observe(size)

    def graphql_response(self, status: int) -> None:
        self.graphql_responses.labels(str(status)).inc()

    def upstream_attempt(self, method: str, route: str, status: int | str, seconds: float) -> None:
        """Called by the upstream client once per HTTP attempt (``route`` is a template)."""
        self.upstream_requests.labels(method, route, str(status)).inc()
        self.upstream_seconds.labels(method, route).observe(seconds)


class _GovernorCollector(Collector):
    """The governor's own counters (``GovernorStats``), read when scraped."""

    def __init__(self, governor: Governor) -> None:
        self._governor = governor

    def collect(self) -> Iterator[Metric]:
        stats = self._governor.stats
        for name, documentation, value in (
            ("gateway_governor_grants", "Upstream attempts the budget let through.", stats.granted),
            (
                "gateway_governor_waits",
                "Upstream attempts that waited for the key's budget (granted or refused).",
                stats.waits,
            ),
            (
                "gateway_governor_wait_seconds",
                "Total time upstream attempts waited for the budget.",
                stats.waited_seconds,
            ),
            (
                "gateway_governor_refusals",
                "Upstream attempts refused with RATE_LIMITED (budget exhausted).",
                stats.refused,
            ),
            (
                "gateway_governor_upstream_429s",
                "429 answers from the upstream despite the budget.",
                stats.upstream_429s,
            ),
            (
                "gateway_governor_retries_after_429",
                "Idempotent reads sent again after a 429's pause.",
                stats.retried_after_429,
            ),
        ):
            yield CounterMetricFamily(name, documentation, value=value)


class _ReplicaCollector(Collector):
    """The replicas' state, read when scraped (one pass over the replicas, no rows)."""

    def __init__(self, replicas: Replicas, governor: Governor | None) -> None:
        self._replicas = replicas
        self._governor = governor

    def collect(self) -> Iterator[Metric]:
        replicas = self._replicas
        held = list(replicas.replicas())
        yield GaugeMetricFamily(
            "gateway_replica_keys", "Credentials with a replica in this process.", len(held)
        )
        yield GaugeMetricFamily(
            "gateway_replica_loading",
            "Replicas still loading their window (reads they do not hold go upstream).",
            sum(1 for _, syncer in held if not syncer.loaded.is_set()),
        )
        yield GaugeMetricFamily(
            "gateway_replica_bytes",
            "Estimated memory of the replicas' rows (objects and field values), in bytes.",
            sum(replica.bytes for replica, _ in held),
        )
        rows = GaugeMetricFamily(
            "gateway_replica_rows", "Rows held by the replicas, by kind.", labels=["kind"]
        )
        for kind in KINDS:
            rows.add_metric([kind], sum(dict(replica.counts()).get(kind, 0) for replica, _ in held))
        yield rows
        yield GaugeMetricFamily(
            "gateway_replica_lag_seconds",
            "Age of the oldest replica's appointments: seconds since its last complete poll.",
            replicas.lag_seconds(),
        )
        yield GaugeMetricFamily(
            "gateway_replica_sync_interval_seconds",
            "The longest current interval between two appointment polls (it stretches while "
            "a key's budget is under pressure).",
            max((syncer.current_interval for _, syncer in held), default=0.0),
        )
        requests = CounterMetricFamily(
            "gateway_replica_sync_requests",
            "Upstream requests the sync sent, by purpose (load, appointments, reference, "
            "linked, patient, deletions).",
            labels=["purpose"],
        )
        for purpose, count in sorted(replicas.sync_stats.requests.items()):
            requests.add_metric([purpose], count)
        yield requests
        yield CounterMetricFamily(
            "gateway_replica_sync_failures",
            "Sync steps that failed upstream (timeout, 5xx, 429): the sync backed off.",
            value=replicas.sync_stats.failures,
        )
        if self._governor is not None:
            yield CounterMetricFamily(
                "gateway_replica_sync_refusals",
                "Sync requests refused because reads needed the budget (the sync waited).",
                value=self._governor.stats.background_refused,
            )
        reads = CounterMetricFamily(
            "gateway_replica_reads",
            "Rows and lists answered from a replica (hit) or upstream (miss).",
            labels=["outcome"],
        )
        reads.add_metric(["hit"], replicas.read_stats.hits)
        reads.add_metric(["miss"], replicas.read_stats.misses)
        yield reads
        yield CounterMetricFamily(
            "gateway_replica_starts", "Replicas started.", value=replicas.started
        )
        yield CounterMetricFamily(
            "gateway_replica_drops",
            "Replicas dropped (idle, or beyond GATEWAY_SYNC_MAX_KEYS).",
            value=replicas.dropped,
        )
