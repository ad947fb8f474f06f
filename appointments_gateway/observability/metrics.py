"""Prometheus metrics: one registry per app, or one view over every uvicorn worker.

``PROMETHEUS_MULTIPROC_DIR`` picks the mode when an app is built; it is prometheus-client's
own switch, and the library reads it once, at import, to choose where values live.

**In process** (unset: tests, benchmarks, ``serve`` with one worker).  One
``CollectorRegistry`` per app, because tests build many apps in one process and a global
registry refuses a second metric of one name.  The governor's and the replicas' figures are
read by collectors at scrape time, so granting a token or syncing a row costs nothing extra.

**Multiprocess** (set: ``serve --workers N`` points it at a directory of its own, cli.py).
Every value is written to mmap files in the directory, one file per metric type and worker
pid, and ``/metrics``, whichever worker answers it, merges all of them into a fresh registry
with ``MultiProcessCollector``: one scrape sees every worker.  The library merges files only,
so a collector reading live objects would report the answering worker alone.  Each figure of
the governor and the replicas (the ``_Figure`` tables below) is therefore mirrored into a
real Counter or Gauge by :meth:`GatewayMetrics.flush`, which :meth:`GatewayMetrics.running`
calls once a second in every worker and a scrape calls in the answering worker first.
Other workers' figures may thus be up to :data:`FLUSH_SECONDS` old; everything counted
where it happens (operations, responses, upstream attempts, histograms) is exact.

- Counters are incremented by what their source gained since the last flush, so the sum
  over workers is right, and a worker that ended keeps its last total in the scrape: a
  total never goes down, which ``rate()`` would read as a counter reset.
- Gauges that add up over workers (replica keys, loading, bytes, rows) are ``livesum``;
  those that describe the worst replica (lag, sync interval) are ``livemax``.  ``live``,
  because a worker that ended holds no replica: the supervisor deletes its gauge files
  (``mark_process_dead``, cli.py) and it stops counting.

The files cannot grow without bound: each holds one entry per label set, and every label
set is bounded (below).  New files come only with new worker pids (a worker restarted), and
the directory lives for one run of ``serve``, which empties or removes it.

Every label value comes from a bounded set: operation names taken from parsed documents
(``anonymous`` when unnamed, ``other`` past :data:`MAX_OPERATION_NAMES` or beyond 64
characters), operation types, outcomes, error codes (``extensions.code``), HTTP status
codes, upstream route templates such as ``/patients/{id}`` (never a filled-in id),
exception class names, loader names, replica row kinds and sync purposes.  None carries
a key, an id or a person's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from appointments_gateway.observability.requests import OperationRecord
from appointments_gateway.replica import KINDS, Replica, Replicas, Syncer
from appointments_gateway.resolvers.live import LiveUpdates
from appointments_gateway.upstream import Governor
from appointments_gateway.upstream.governor import GovernorStats

__all__ = ["FLUSH_SECONDS", "MAX_OPERATION_NAMES", "MULTIPROC_DIR_ENV", "GatewayMetrics"]

#: Distinct operation names one process labels by; later ones are counted as ``other``.
MAX_OPERATION_NAMES = 200
#: prometheus-client's switch to multiprocess mode: the directory of the value files.
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: How often each worker copies its governor and replica figures into the files.
FLUSH_SECONDS = 1.0
_MAX_NAME_LENGTH = 64
_CODE = re.compile(r"[A-Z][A-Z_]{0,39}", re.ASCII)

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_REQUEST_COUNTS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89)
_BATCH_SIZES = (1, 2, 5, 10, 25, 50, 100, 250, 500)
_LAG_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _multiproc_dir() -> str | None:
    """The value files' directory, or ``None`` in process.

    The variable must have been set before prometheus-client was imported (as for a
    worker uvicorn spawns): set later, the values would stay in memory and every scrape
    would read empty files, so that refuses to start instead.
    """
    path = os.environ.get(MULTIPROC_DIR_ENV) or None
    if path is not None and not getattr(values.ValueClass, "_multiprocess", False):
        raise RuntimeError(
            f"{MULTIPROC_DIR_ENV} was set after prometheus_client was imported; set it "
            "in the environment the process starts with"
        )
    return path


class GatewayMetrics:
    """The gateway's metrics; ``render`` is what ``GET /metrics`` serves.

    Args:
        governor: the upstream budget whose counters are exported (read at scrape
            time, or flushed in multiprocess mode, so granting a token costs nothing
            extra); ``None`` exports none.
    """

    def __init__(self, governor: Governor | None = None) -> None:
        # Kept in multiprocess mode too, though never rendered there: it still refuses
        # a metric name registered twice.
        self.registry = CollectorRegistry()
        registry = self.registry
        self.multiproc_dir = _multiproc_dir()
        #: Multiprocess mode: the flushes of the figures' mirrors.
        self._flushes: list[Callable[[], None]] = []
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
            self._export(_GOVERNOR_FIGURES, lambda: governor.stats)

    def watch_replicas(self, replicas: Replicas) -> None:
        """Export the replicas' memory, lag, sync requests, hits and misses (DESIGN.md §8)."""
        governor = self._governor
        figures = _REPLICA_FIGURES + ((_SYNC_REFUSALS,) if governor is not None else ())
        self._export(
            figures,
            lambda: _ReplicaState(
                replicas, list(replicas.replicas()), governor.stats if governor else None
            ),
        )

    def watch_live(self, live: LiveUpdates) -> None:
        """Export the live subscriptions: active, events delivered, subscribers dropped."""
        self._export(_LIVE_FIGURES, lambda: live)

    def _export(self, figures: tuple[_Figure[S], ...], read: Callable[[], S]) -> None:
        if self.multiproc_dir is None:
            self.registry.register(_FigureCollector(figures, read))
        else:
            self._flushes.append(_Mirror(figures, read, self.registry).flush)

    #: The media type of :meth:`render`'s text.
    content_type = CONTENT_TYPE_LATEST

    def render(self) -> bytes:
        """The metrics in Prometheus' text exposition format (every worker's, if several)."""
        if self.multiproc_dir is None:
            return generate_latest(self.registry)
        # This worker's figures as of now; the others' as of their last flush.
        self.flush()
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiproc_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def flush(self) -> None:
        """Copy the governor's and the replicas' figures into the value files.

        Nothing to do in process, where collectors read them at scrape time.
        """
        for flush in self._flushes:
            flush()

    @contextlib.asynccontextmanager
    async def running(self, interval: float = FLUSH_SECONDS) -> AsyncIterator[None]:
        """Flush every ``interval`` seconds while inside, and once more on the way out.

        For the app's lifespan: in multiprocess mode a scrape reads this worker's figures
        from its files, and only this worker can write them.  The last flush leaves a
        stopping worker's final counts behind.  Nothing runs in process.
        """
        if self.multiproc_dir is None:
            yield
            return
        task = asyncio.create_task(self._flush_every(interval), name="metrics-flush")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.flush()

    async def _flush_every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.flush()

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


# --- figures kept by other objects ---------------------------------------------------

S = TypeVar("S")
#: One sample of a figure: its label values and its value.
_Sample = tuple[tuple[str, ...], float]


@dataclass(frozen=True)
class _Figure(Generic[S]):
    """A metric whose value another object keeps (the governor, the replicas).

    One table of these drives both modes, so a figure cannot be exported in one and
    forgotten in the other.

    Attributes:
        read: the samples, from a snapshot of the object taken once per scrape or flush.
        mode: how workers' values combine in multiprocess mode (gauges only; see the
            module docstring for why ``live``).
    """

    name: str
    documentation: str
    type: Literal["counter", "gauge"]
    read: Callable[[S], Iterable[_Sample]]
    labels: tuple[str, ...] = ()
    mode: Literal["livesum", "livemax"] = "livesum"


def _one(value: float) -> tuple[_Sample]:
    return (((), value),)


_GOVERNOR_FIGURES: tuple[_Figure[GovernorStats], ...] = (
    _Figure(
        "gateway_governor_grants",
        "Upstream attempts the budget let through.",
        "counter",
        lambda stats: _one(stats.granted),
    ),
    _Figure(
        "gateway_governor_waits",
        "Upstream attempts that waited for the key's budget (granted or refused).",
        "counter",
        lambda stats: _one(stats.waits),
    ),
    _Figure(
        "gateway_governor_wait_seconds",
        "Total time upstream attempts waited for the budget.",
        "counter",
        lambda stats: _one(stats.waited_seconds),
    ),
    _Figure(
        "gateway_governor_refusals",
        "Upstream attempts refused with RATE_LIMITED (budget exhausted).",
        "counter",
        lambda stats: _one(stats.refused),
    ),
    _Figure(
        "gateway_governor_upstream_429s",
        "429 answers from the upstream despite the budget.",
        "counter",
        lambda stats: _one(stats.upstream_429s),
    ),
    _Figure(
        "gateway_governor_retries_after_429",
        "Idempotent reads sent again after a 429's pause.",
        "counter",
        lambda stats: _one(stats.retried_after_429),
    ),
)


@dataclass(frozen=True)
class _ReplicaState:
    """The replicas as one scrape or flush sees them: a single pass, no rows copied."""

    replicas: Replicas
    held: list[tuple[Replica, Syncer]]
    governor: GovernorStats | None


def _rows(state: _ReplicaState) -> Iterator[_Sample]:
    counts = [dict(replica.counts()) for replica, _ in state.held]
    for kind in KINDS:
        yield (kind,), sum(count.get(kind, 0) for count in counts)


_REPLICA_FIGURES: tuple[_Figure[_ReplicaState], ...] = (
    _Figure(
        "gateway_replica_keys",
        "Credentials with a replica, counted once per worker process that holds one.",
        "gauge",
        lambda state: _one(len(state.held)),
    ),
    _Figure(
        "gateway_replica_loading",
        "Replicas still loading their window (reads they do not hold go upstream).",
        "gauge",
        lambda state: _one(sum(1 for _, syncer in state.held if not syncer.loaded.is_set())),
    ),
    _Figure(
        "gateway_replica_bytes",
        "Estimated memory of the replicas' rows (objects and field values), in bytes.",
        "gauge",
        lambda state: _one(sum(replica.bytes for replica, _ in state.held)),
    ),
    _Figure(
        "gateway_replica_rows", "Rows held by the replicas, by kind.", "gauge", _rows, ("kind",)
    ),
    _Figure(
        "gateway_replica_lag_seconds",
        "Age of the oldest replica's appointments: seconds since its last complete poll.",
        "gauge",
        lambda state: _one(state.replicas.lag_seconds()),
        mode="livemax",
    ),
    _Figure(
        "gateway_replica_sync_interval_seconds",
        "The longest current interval between two appointment polls (it stretches while "
        "a key's budget is under pressure).",
        "gauge",
        lambda state: _one(max((s.current_interval for _, s in state.held), default=0.0)),
        mode="livemax",
    ),
    _Figure(
        "gateway_replica_sync_requests",
        "Upstream requests the sync sent, by purpose (load, appointments, reference, "
        "linked, patient, deletions).",
        "counter",
        lambda state: [
            ((purpose,), count)
            for purpose, count in sorted(state.replicas.sync_stats.requests.items())
        ],
        ("purpose",),
    ),
    _Figure(
        "gateway_replica_sync_failures",
        "Sync steps that failed upstream (timeout, 5xx, 429): the sync backed off.",
        "counter",
        lambda state: _one(state.replicas.sync_stats.failures),
    ),
    _Figure(
        "gateway_replica_reads",
        "Rows and lists answered from a replica (hit) or upstream (miss).",
        "counter",
        lambda state: [
            (("hit",), state.replicas.read_stats.hits),
            (("miss",), state.replicas.read_stats.misses),
        ],
        ("outcome",),
    ),
    _Figure(
        "gateway_replica_starts",
        "Replicas started.",
        "counter",
        lambda state: _one(state.replicas.started),
    ),
    _Figure(
        "gateway_replica_drops",
        "Replicas dropped (idle, or beyond GATEWAY_SYNC_MAX_KEYS).",
        "counter",
        lambda state: _one(state.replicas.dropped),
    ),
)

_LIVE_FIGURES: tuple[_Figure[LiveUpdates], ...] = (
    _Figure(
        "gateway_subscriptions_active",
        "Live subscriptions (appointmentChanged) registered now, over every transport.",
        "gauge",
        lambda live: _one(live.active()),
    ),
    _Figure(
        "gateway_subscription_keys",
        "API keys with at least one live subscription (their replicas are pinned).",
        "gauge",
        lambda live: _one(live.keys()),
    ),
    _Figure(
        "gateway_subscription_events_delivered",
        "Appointment changes delivered to live subscribers (one per subscriber).",
        "counter",
        lambda live: _one(live.stats.delivered),
    ),
    _Figure(
        "gateway_subscriptions_dropped_slow",
        "Live subscribers ended with SLOW_CONSUMER: their queue was full.",
        "counter",
        lambda live: _one(live.stats.dropped_slow),
    ),
    _Figure(
        "gateway_subscriptions_refused",
        "Subscriptions refused: GATEWAY_SUBSCRIPTIONS_PER_KEY reached, or no replica slot.",
        "counter",
        lambda live: _one(live.stats.refused),
    ),
)

#: Exported only with a governor, which keeps the count.
_SYNC_REFUSALS: _Figure[_ReplicaState] = _Figure(
    "gateway_replica_sync_refusals",
    "Sync requests refused because reads needed the budget (the sync waited).",
    "counter",
    lambda state: _one(state.governor.background_refused) if state.governor else (),
)


class _FigureCollector(Collector, Generic[S]):
    """In process: the figures read when scraped, so keeping them costs nothing."""

    def __init__(self, figures: tuple[_Figure[S], ...], read: Callable[[], S]) -> None:
        self._figures = figures
        self._read = read

    def collect(self) -> Iterator[Metric]:
        state = self._read()
        for figure in self._figures:
            family: Metric
            if figure.type == "counter":
                family = CounterMetricFamily(
                    figure.name, figure.documentation, labels=figure.labels
                )
            else:
                family = GaugeMetricFamily(figure.name, figure.documentation, labels=figure.labels)
            for labels, value in figure.read(state):
                family.add_metric(list(labels), value)
            yield family


class _Mirror(Generic[S]):
    """Multiprocess mode: the figures copied into real metrics, whose values go to files.

    Counters move by the source's gain since the last flush, never set: a value file
    holds this worker's total, and the scrape adds the workers' totals up.
    """

    def __init__(
        self, figures: tuple[_Figure[S], ...], read: Callable[[], S], registry: CollectorRegistry
    ) -> None:
        self._figures = figures
        self._read = read
        self._metrics: dict[str, Counter | Gauge] = {
            figure.name: (
                Counter(figure.name, figure.documentation, figure.labels, registry=registry)
                if figure.type == "counter"
                else Gauge(
                    figure.name,
                    figure.documentation,
                    figure.labels,
                    registry=registry,
                    multiprocess_mode=figure.mode,
                )
            )
            for figure in figures
        }
        #: What each counter's source held at the last flush, by name and label values.
        self._flushed: dict[tuple[str, tuple[str, ...]], float] = {}

    def flush(self) -> None:
        state = self._read()
        for figure in self._figures:
            metric = self._metrics[figure.name]
            for labels, value in figure.read(state):
                target = metric.labels(*labels) if labels else metric
                if isinstance(target, Gauge):
                    target.set(value)
                    continue
                key = (figure.name, labels)
                gained = value - self._flushed.get(key, 0.0)
                if gained > 0:
                    target.inc(gained)
                    self._flushed[key] = value
