"""Multiprocess mode of ``/metrics`` (observability/metrics.py), with workers simulated.

prometheus-client picks where values live once, at import, from ``PROMETHEUS_MULTIPROC_DIR``;
its own tests switch by replacing ``values.ValueClass`` with ``MultiProcessValue`` for a
given pid, and so do these: every app built while a pid is set writes that pid's files, as
one worker would.  Two pids, two apps, one directory: what two workers leave for a scrape.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest
from prometheus_client import values
from prometheus_client.parser import text_string_to_metric_families

from appointments_gateway.cli import MetricsDir
from appointments_gateway.observability import GatewayMetrics
from appointments_gateway.observability.metrics import MULTIPROC_DIR_ENV
from appointments_gateway.observability.requests import OperationRecord
from appointments_gateway.replica import Replicas, SyncStats
from appointments_gateway.replica.view import ReadStats
from appointments_gateway.upstream import Governor

Worker = Callable[[int], None]


@pytest.fixture
def worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Worker]:
    """``worker(pid)``: apps built from now on write as the worker ``pid`` would."""
    monkeypatch.setenv(MULTIPROC_DIR_ENV, str(tmp_path))

    def become(pid: int) -> None:
        value_class = values.MultiProcessValue(lambda: pid)  # type: ignore[no-untyped-call]
        monkeypatch.setattr(values, "ValueClass", value_class)

    yield become
    values.close_all_multiprocess_files()  # type: ignore[no-untyped-call]


def scrape(metrics: GatewayMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(metrics: GatewayMetrics, name: str, **labels: str) -> float:
    samples = scrape(metrics)
    key = (name, frozenset(labels.items()))
    assert key in samples, f"{name}{labels} is not exported: {sorted(samples)}"
    return samples[key]


def probe(metrics: GatewayMetrics, times: int) -> None:
    for _ in range(times):
        metrics.operation(OperationRecord("Probe", "query", 0.01, 0, [], "ok"))


PROBES = {"operation": "Probe", "type": "query", "outcome": "ok"}


def test_operations_of_two_workers_are_summed_in_either_workers_scrape(worker: Worker):
    worker(101)
    first = GatewayMetrics()
    probe(first, 2)
    worker(202)
    second = GatewayMetrics()
    probe(second, 3)

    assert value(second, "gateway_operations_total", **PROBES) == 5
    assert value(first, "gateway_operations_total", **PROBES) == 5
    assert (
        value(first, "gateway_operation_duration_seconds_count", operation="Probe", type="query")
        == 5
    )


def test_governor_counters_add_up_over_workers_by_what_each_gained(worker: Worker):
    worker(101)
    first_governor = Governor()
    first = GatewayMetrics(first_governor)
    worker(202)
    second_governor = Governor()
    second = GatewayMetrics(second_governor)

    first_governor.stats.granted = 3
    first_governor.stats.waited_seconds = 0.5
    first.flush()
    second_governor.stats.granted = 4
    second_governor.stats.waited_seconds = 0.25
    # the scraping worker flushes its own figures first
    assert value(second, "gateway_governor_grants_total") == 7
    assert value(second, "gateway_governor_wait_seconds_total") == 0.75

    first_governor.stats.granted = 5
    first.flush()
    first.flush()  # a flush without news adds nothing
    assert value(second, "gateway_governor_grants_total") == 9
    assert value(second, "gateway_governor_refusals_total") == 0


async def test_running_flushes_while_inside_and_once_on_the_way_out(worker: Worker):
    worker(101)
    governor = Governor()
    flushing = GatewayMetrics(governor)
    worker(202)
    scraper = GatewayMetrics()

    async with flushing.running(interval=0.01):
        governor.stats.granted = 2
        for _ in range(100):
            if value(scraper, "gateway_governor_grants_total") == 2:
                break
            await asyncio.sleep(0.01)
        assert value(scraper, "gateway_governor_grants_total") == 2
        governor.stats.granted = 6
        governor.stats.refused = 1
    assert value(scraper, "gateway_governor_grants_total") == 6
    assert value(scraper, "gateway_governor_refusals_total") == 1
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "metrics-flush"]


async def test_in_process_running_starts_nothing_and_collectors_read_at_scrape_time():
    governor = Governor()
    metrics = GatewayMetrics(governor)
    async with metrics.running(interval=0.01):
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "metrics-flush"]
    governor.stats.granted = 4
    assert value(metrics, "gateway_governor_grants_total") == 4


# --- replica figures: gauges that add up, gauges that take the worst, dead workers ----


@dataclass
class FakeReplica:
    rows: dict[str, int]
    bytes: int

    def counts(self) -> Iterator[tuple[str, int]]:
        return iter(self.rows.items())


@dataclass
class FakeSyncer:
    current_interval: float
    loaded: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class FakeReplicas:
    """What the metrics read of ``Replicas``, set by hand."""

    held: list[tuple[FakeReplica, FakeSyncer]]
    lag: float
    sync_stats: SyncStats = field(default_factory=SyncStats.empty)
    read_stats: ReadStats = field(default_factory=ReadStats)
    started: int = 0
    dropped: int = 0

    def replicas(self) -> Iterator[tuple[FakeReplica, FakeSyncer]]:
        return iter(self.held)

    def lag_seconds(self) -> float:
        return self.lag


def watch(metrics: GatewayMetrics, held: list[tuple[FakeReplica, FakeSyncer]], lag: float) -> None:
    """``metrics`` watches replicas holding ``held``: each started once, 10 polls each."""
    fake = FakeReplicas(held, lag, started=len(held))
    fake.sync_stats.requests["appointments"] = 10 * len(held)
    fake.read_stats.hits = 7
    metrics.watch_replicas(cast("Replicas", fake))


def test_replica_gauges_sum_or_take_the_worst_and_a_dead_worker_stops_counting(
    worker: Worker, tmp_path: Path
):
    worker(101)
    first = GatewayMetrics(Governor())
    watch(first, [(FakeReplica({"appointments": 40}, 1000), FakeSyncer(5.0))], lag=6.0)
    first.flush()
    worker(202)
    second = GatewayMetrics(Governor())
    watch(
        second,
        [
            (FakeReplica({"appointments": 10}, 300), FakeSyncer(5.0)),
            (FakeReplica({"appointments": 20}, 200), FakeSyncer(20.0)),
        ],
        lag=2.0,
    )

    assert value(second, "gateway_replica_keys") == 3
    assert value(second, "gateway_replica_loading") == 3
    assert value(second, "gateway_replica_bytes") == 1500
    assert value(second, "gateway_replica_rows", kind="appointments") == 70
    assert value(second, "gateway_replica_rows", kind="patients") == 0
    assert value(second, "gateway_replica_lag_seconds") == 6.0
    assert value(second, "gateway_replica_sync_interval_seconds") == 20.0
    assert value(second, "gateway_replica_sync_requests_total", purpose="appointments") == 30
    assert value(second, "gateway_replica_reads_total", outcome="hit") == 14
    assert value(second, "gateway_replica_starts_total") == 3
    assert value(second, "gateway_replica_sync_refusals_total") == 0

    # the supervisor saw worker 101 end (cli.py): its replicas are gone, its counts are not
    MetricsDir(str(tmp_path), ours=False).forget_dead(live={202})
    assert not list(tmp_path.glob("gauge_*_101.db"))
    assert list(tmp_path.glob("counter_101.db"))
    assert value(second, "gateway_replica_keys") == 2
    assert value(second, "gateway_replica_bytes") == 500
    assert value(second, "gateway_replica_lag_seconds") == 2.0
    assert value(second, "gateway_replica_starts_total") == 3
    assert value(second, "gateway_replica_reads_total", outcome="hit") == 14


def test_a_directory_set_after_the_library_was_imported_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # values would stay in this process's memory and every scrape would read empty files
    monkeypatch.setenv(MULTIPROC_DIR_ENV, str(tmp_path))
    with pytest.raises(RuntimeError, match="PROMETHEUS_MULTIPROC_DIR"):
        GatewayMetrics()


# --- serve's directory (cli.py) -----------------------------------------------------


def test_serve_makes_a_directory_for_several_workers_and_removes_it(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.delenv(MULTIPROC_DIR_ENV, raising=False)
    assert MetricsDir.prepare(workers=1) is None
    made = MetricsDir.prepare(workers=2)
    assert made is not None
    assert made.ours
    try:
        assert Path(made.path).is_dir()
        assert not list(Path(made.path).iterdir())
        assert made.path in made.describe()
        # exported, so the spawned workers inherit it
        assert os.environ[MULTIPROC_DIR_ENV] == made.path
    finally:
        made.close()
    assert not Path(made.path).exists()
    assert MULTIPROC_DIR_ENV not in os.environ


def test_serve_clears_old_value_files_from_the_operators_directory_and_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_7.db").write_bytes(b"an earlier run")
    (given / "gauge_livesum_7.db").write_bytes(b"an earlier run")
    (given / "notes.txt").write_text("not ours")
    monkeypatch.setenv(MULTIPROC_DIR_ENV, str(given))

    chosen = MetricsDir.prepare(workers=1)  # one worker writes files too: clear them as well
    assert chosen is not None
    assert not chosen.ours
    assert "as set" in chosen.describe()
    assert sorted(p.name for p in given.iterdir()) == ["notes.txt"]
    chosen.close()
    assert given.is_dir()
