"""``make bench``: start the sandbox and the gateway, run the suite, print and save the table.

Two phases, each with its own sandbox (``appointments-gateway sandbox``, rate limit off)
and gateway (``appointments-gateway serve``), as users run them:

* **0 ms upstream latency**: upstream requests per operation (the sandbox's counter
  delta and the gateway's ``extensions.upstream.requests`` must agree, and the lower bound
  is derived from the returned data, see ``bench/ops.py``), then gateway CPU per
  operation: ``utime + stime`` of the gateway process from ``/proc/<pid>/stat`` before and
  after batches of sequential operations (median of the batches; nothing subtracted; the
  idle rate is measured and shown so its share can be judged).  The naive baseline runs
  here too, and the floor is measured on the calendar's own response.
* **50 ms upstream latency** (``--latency-ms``): latency p50/p95 of sequential operations
  next to the critical-path bound, operations per second at concurrency 1 and 32, and the
  gateway's peak RSS (``VmHWM``) after it all.

``--profile`` adds a third phase: the real schema served by ``bench.server`` under
cProfile at 0 ms, N calendars, and the top functions written to
``bench/results/profile-calendar.txt``.

Every gateway in those phases runs with ``GATEWAY_SYNC=off`` (``procs._gateway_env``), so
they keep measuring the upstream path once the per-key replica exists.  Last comes the
front-desk scenario (``bench/frontdesk.py``, ``MAKE_BENCH_PLAN``): receptionists and
outside edits on one key with the sandbox's 200/min limit on, sync on and off, its table
appended to the report (``--no-frontdesk`` leaves it out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import orjson

from appointments_gateway.sandbox import DEMO_KEY_A
from bench import frontdesk, procs
from bench.ops import Bound, Fixture, Operation, document, operations, upcoming_from

__all__ = ["main"]

RESULTS = Path(__file__).parent / "results"
CONCURRENCY = 32


class OperationFailed(Exception):
    """A GraphQL error, or an HTTP status other than 200."""


@dataclass
class Client:
    """Posts GraphQL requests to one endpoint, summing ``extensions.upstream.requests``."""

    http: httpx.AsyncClient
    url: str
    upstream_requests: int = 0

    async def send(self, doc: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(
            self.url,
            content=orjson.dumps({"query": doc, "variables": variables}),
            headers={"content-type": "application/json"},
        )
        body = orjson.loads(response.content)
        self.upstream_requests += body.get("extensions", {}).get("upstream", {}).get("requests", 0)
        errors = body.get("errors")
        if response.status_code != 200 or errors:
            codes = {e.get("extensions", {}).get("code") for e in errors or []}
            if "RATE_LIMITED" in codes:
                raise OperationFailed(
                    "RATE_LIMITED: the sandbox's limit is off, so the gateway's own upstream "
                    "budget throttled the benchmark; run the bench with that budget off."
                )
            raise OperationFailed(f"HTTP {response.status_code}: {str(errors)[:2000]}")
        data: dict[str, Any] = body["data"]
        return data


class Sandbox:
    """The sandbox's counters, read over HTTP."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._http = http
        self._origin = base_url.removesuffix("/v1")

    async def stats(self) -> dict[str, Any]:
        response = await self._http.get(f"{self._origin}/_sandbox/stats")
        stats: dict[str, Any] = response.json()
        return stats

    async def total(self) -> int:
        total: int = (await self.stats())["total_requests"]
        return total


@dataclass
class Row:
    op: Operation
    skipped: str = ""
    sandbox_requests: int = 0
    gateway_requests: int = 0
    bound: Bound | None = None
    cpu_ms: float = math.nan
    cpu_batches: list[float] = field(default_factory=list)
    p50_ms: float = math.nan
    p95_ms: float = math.nan
    ops_c1: float = math.nan
    ops_c32: float = math.nan
    c32_p50_ms: float = math.nan
    c32_p95_ms: float = math.nan
    c32_errors: int = 0
    c32_ops: int = 0
    responses: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Settings:
    latency_ms: float
    latency_samples: int
    walk_samples: int
    cpu_batches: int
    cpu_batch_seconds: float
    c32_rounds: int
    profile: bool
    profile_ops: int
    label: str = ""
    frontdesk: frontdesk.Plan | None = None


# -- measuring ------------------------------------------------------------------------


async def count(op: Operation, client: Client, sandbox: Sandbox, fx: Fixture, row: Row) -> None:
    """One run: the sandbox's delta and the gateway's own count must agree."""
    before = await sandbox.stats()
    client.upstream_requests = 0
    responses = await op.run(client.send, fx)
    after = await sandbox.stats()
    delta = after["total_requests"] - before["total_requests"]
    statuses = {
        k: v - before["by_status"].get(k, 0)
        for k, v in after["by_status"].items()
        if v != before["by_status"].get(k, 0)
    }
    if delta != client.upstream_requests:
        raise AssertionError(
            f"{op.name}: the sandbox counted {delta} requests, the gateway reported "
            f"{client.upstream_requests}."
        )
    if any(not status.startswith("2") for status in statuses):
        raise AssertionError(f"{op.name}: upstream answered {statuses}.")
    row.sandbox_requests, row.gateway_requests = delta, client.upstream_requests
    row.bound = op.bound(responses)
    row.responses = responses


async def cpu(
    op: Operation, client: Client, sandbox: Sandbox, fx: Fixture, pid: int, s: Settings
) -> list[float]:
    """Gateway CPU ms per operation in each batch of sequential operations."""
    for _ in range(3):
        await op.run(client.send, fx)
    start = time.perf_counter()
    for _ in range(3):
        await op.run(client.send, fx)
    wall = (time.perf_counter() - start) / 3
    per_batch = max(5, min(400, math.ceil(s.cpu_batch_seconds / wall)))
    results = []
    total_before = await sandbox.total()
    client.upstream_requests = 0
    for _ in range(s.cpu_batches):
        cpu_before = procs.cpu_seconds(pid)
        for _ in range(per_batch):
            await op.run(client.send, fx)
        results.append((procs.cpu_seconds(pid) - cpu_before) / per_batch * 1e3)
    delta = await sandbox.total() - total_before
    if delta != client.upstream_requests:
        raise AssertionError(f"{op.name}: sandbox {delta} != gateway {client.upstream_requests}")
    return results


async def latency(op: Operation, client: Client, fx: Fixture, samples: int) -> list[float]:
    for _ in range(2):
        await op.run(client.send, fx)
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        await op.run(client.send, fx)
        times.append(time.perf_counter() - start)
    return times


async def concurrent(
    op: Operation, client: Client, fx: Fixture, workers: int, rounds: int
) -> tuple[list[float], int, float]:
    """``workers`` clients each running ``rounds`` operations back to back."""
    times: list[float] = []
    errors = 0

    async def worker(n: int, record: bool) -> None:
        nonlocal errors
        for _ in range(n):
            start = time.perf_counter()
            try:
                await op.run(client.send, fx)
            except (OperationFailed, httpx.HTTPError):
                errors += 1
                continue
            if record:
                times.append(time.perf_counter() - start)

    await asyncio.gather(*(worker(1, False) for _ in range(workers)))  # warm-up
    errors = 0
    start = time.perf_counter()
    await asyncio.gather(*(worker(rounds, True) for _ in range(workers)))
    return times, errors, time.perf_counter() - start


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# -- the fixture ------------------------------------------------------------------------


async def build_fixture(client: Client, now: str) -> tuple[Fixture, list[str]]:
    """Pick ids from the demo data; returns the fixture and next3's combined list."""
    fx = Fixture(now=now)
    upcoming = await client.send(
        """query($from: DateTime!) { appointments(first: 500, filter: {startsAt: {gte: $from}})
        { nodes { id patientCase { id } repeatedFrom { id } repeatRule { repeatType }
          patient { id } practitioner { id active } business { id } appointmentType { id } } } }""",
        {"from": now},
    )
    nodes = upcoming["appointments"]["nodes"]
    # The detail screen opens the fullest appointment: a repeat in a patient case if
    # there is one, else one in a case, else the first.
    detail = max(nodes, key=lambda n: (n["patientCase"] is not None) + 2 * bool(n["repeatedFrom"]))
    fx.detail_id = detail["id"]
    first = nodes[0]
    fx.booking = {
        "patientId": first["patient"]["id"],
        "practitionerId": first["practitioner"]["id"],
        "businessId": first["business"]["id"],
        "appointmentTypeId": first["appointmentType"]["id"],
    }
    # The patient screen: the patient with the most past appointments among the first 100.
    past = await client.send(
        """query($now: DateTime!) { appointments(last: 500, filter: {startsAt: {lt: $now}})
        { nodes { patient { id } } } }""",
        {"now": now},
    )
    counts: dict[str, int] = {}
    for n in past["appointments"]["nodes"]:
        counts[n["patient"]["id"]] = counts.get(n["patient"]["id"], 0) + 1
    fx.patient_id = max(counts, key=lambda p: counts[p])
    # nodes: 10 appointments, 6 patients, 4 (active) practitioners from the calendar.
    patients = list(dict.fromkeys(n["patient"]["id"] for n in nodes))
    practitioners = list(
        dict.fromkeys(n["practitioner"]["id"] for n in nodes if n["practitioner"]["active"])
    )
    fx.node_ids = [n["id"] for n in nodes[:10]] + patients[:6] + practitioners[:4]
    # next_appointments: the 20 patients' upcoming rows merged in start order.
    parents = list(dict.fromkeys(n["patient"]["id"] for n in nodes[:20]))
    merged = await client.send(
        """query($from: DateTime!, $ids: [ID!]!) { appointments(first: 500,
        filter: {startsAt: {gte: $from}, patientIds: $ids}) { pageInfo { hasNextPage }
        nodes { patient { id } } } }""",
        {"from": now, "ids": parents},
    )
    if merged["appointments"]["pageInfo"]["hasNextPage"]:
        raise AssertionError("next_appointments: the patients have over 500 upcoming rows.")
    combined = [n["patient"]["id"] for n in merged["appointments"]["nodes"]]
    return fx, combined


async def has_mutation(client: Client, name: str) -> bool:
    data = await client.send("{ __schema { mutationType { fields { name } } } }", {})
    mutation = data["__schema"]["mutationType"]
    return mutation is not None and any(f["name"] == name for f in mutation["fields"])


# -- phases ---------------------------------------------------------------------------


def _http(connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(120.0),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Baselines:
    floor: dict[str, Any] = field(default_factory=dict)
    naive_requests: int = 0
    naive_gateway_requests: int = 0
    naive_cpu_ms: float = math.nan
    naive_p50_ms: float = math.nan
    naive_p95_ms: float = math.nan
    idle_cpu_ms_per_s: float = math.nan
    rss_mb: dict[str, float] = field(default_factory=dict)
    profile: str = ""
    replica_rows: int = 0
    replica_cpu_ms: float = math.nan
    replica_p50_ms: float = math.nan
    replica_idle_cpu_ms_per_s: float = math.nan
    replica_floor: dict[str, Any] = field(default_factory=dict)


async def phase_cpu(
    rows: dict[str, Row], base: Baselines, now: str, s: Settings, log_dir: Path
) -> None:
    log("phase 1: upstream latency 0 ms (requests, CPU, floor, naive)")
    with procs.sandbox(0, log_dir) as sandbox_proc:
        gw = procs.gateway(sandbox_proc.url, DEMO_KEY_A, log_dir, tag="0ms")
        naive = procs.bench_server("naive", sandbox_proc.url, DEMO_KEY_A, log_dir, tag="0ms")
        with gw, naive:
            async with _http(8) as http:
                client = Client(http, gw.url)
                sandbox = Sandbox(http, sandbox_proc.url)
                fx, combined = await build_fixture(client, now)
                ops = operations(combined)
                for op in ops:
                    rows[op.name] = Row(op)
                    if op.requires and not await has_mutation(client, op.requires):
                        note = f"skipped: the schema has no `{op.requires}` yet (issue 4)"
                        rows[op.name].skipped = note
                for row in rows.values():
                    if row.skipped:
                        continue
                    log(f"  count + cpu: {row.op.name}")
                    await count(row.op, client, sandbox, fx, row)
                    row.cpu_batches = await cpu(row.op, client, sandbox, fx, gw.pid, s)
                    row.cpu_ms = statistics.median(row.cpu_batches)
                    if row.op.name == "calendar":
                        # Before create_then_read adds rows (totalCount would differ).
                        await _naive_cpu(row, base, Client(http, naive.url), sandbox, fx, naive, s)
                cpu_before, start = procs.cpu_seconds(gw.pid), time.perf_counter()
                await asyncio.sleep(3)
                base.idle_cpu_ms_per_s = (
                    (procs.cpu_seconds(gw.pid) - cpu_before) / (time.perf_counter() - start) * 1e3
                )
                base.rss_mb["gateway, 0 ms phase"] = procs.peak_rss_mb(gw.pid)
    log("  floor: graphql-core over dicts")
    base.floor = _floor(rows["calendar"], fx)


async def _naive_cpu(
    calendar: Row,
    base: Baselines,
    client: Client,
    sandbox: Sandbox,
    fx: Fixture,
    naive: procs.Server,
    s: Settings,
) -> None:
    log("  naive baseline: calendar")
    naive_row = Row(calendar.op)
    await count(naive_row.op, client, sandbox, fx, naive_row)
    _same_data(calendar.responses, naive_row.responses, "naive")
    base.naive_requests = naive_row.sandbox_requests
    base.naive_gateway_requests = naive_row.gateway_requests
    base.naive_cpu_ms = statistics.median(
        await cpu(naive_row.op, client, sandbox, fx, naive.pid, s)
    )


def _same_data(a: list[dict[str, Any]], b: list[dict[str, Any]], what: str) -> None:
    option = orjson.OPT_SORT_KEYS
    if orjson.dumps(a, option=option) != orjson.dumps(b, option=option):
        raise AssertionError(f"The {what} baseline returned different data for the calendar.")


def _floor(calendar: Row, fx: Fixture) -> dict[str, Any]:
    return _floor_of(document("calendar"), {"from": fx.now}, calendar.responses[0])


def _floor_of(doc: str, variables: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"document": doc, "variables": variables, "data": data}, handle)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "bench.floor", handle.name],
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(handle.name)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


async def phase_replica(base: Baselines, now: str, s: Settings, log_dir: Path) -> None:
    """The calendar served by the replica (issue 11): CPU per operation against its floor.

    Its own sandbox (0 ms, no limit) and a gateway with ``GATEWAY_SYNC=on`` whose replica
    starts at the first read; measured once ``gateway_replica_loading`` is 0.  The
    document is ``calendar.graphql`` with ``lt: $to`` added, ``[from, to)``, where
    ``to`` is the 101st upcoming row's start, so it holds the same 100 rows as the
    calendar.  Every measured response must say ``freshness.source == "replica"`` and 0
    upstream requests.  The sync's own polls run meanwhile (the idle rate is shown).
    """
    log("phase 1b: the calendar served by the replica (0 ms, sync on)")
    env = {"GATEWAY_SYNC": "on", "GATEWAY_SYNC_START_AFTER": "0"}
    # The calendar's own selection over a bounded range: the floors compare like for like.
    doc = document("calendar").replace("$from: DateTime!)", "$from: DateTime!, $to: DateTime!)")
    doc = doc.replace("startsAt: { gte: $from }", "startsAt: { gte: $from, lt: $to }")
    if "$to: DateTime!" not in doc or "lt: $to" not in doc:
        raise AssertionError("calendar.graphql changed shape: add the upper bound by hand")
    with (
        procs.sandbox(0, log_dir, tag="replica") as sandbox_proc,
        procs.gateway(sandbox_proc.url, DEMO_KEY_A, log_dir, tag="replica", env=env) as gw,
    ):
        async with _http(8) as http:
            client = Client(http, gw.url)
            rows = await client.send(
                """query($from: DateTime!) { appointments(first: 101,
                filter: {startsAt: {gte: $from}}) { nodes { startsAt } } }""",
                {"from": now},
            )
            variables = {"from": now, "to": rows["appointments"]["nodes"][100]["startsAt"]}
            metrics_url = str(httpx.URL(gw.url).copy_with(path="/metrics"))
            deadline = time.monotonic() + 120
            while True:
                text = (await http.get(metrics_url)).text
                if "gateway_replica_keys 1.0" in text and "gateway_replica_loading 0.0" in text:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError("the replica did not load within 120 s")
                await asyncio.sleep(0.5)

            async def served() -> dict[str, Any]:
                response = await http.post(gw.url, json={"query": doc, "variables": variables})
                body: dict[str, Any] = response.json()
                extensions = body["extensions"]
                if body.get("errors") or extensions["freshness"]["source"] != "replica":
                    raise AssertionError(f"not served by the replica: {str(body)[:500]}")
                if extensions["upstream"]["requests"] != 0:
                    raise AssertionError("the replica's calendar sent upstream requests")
                data: dict[str, Any] = body["data"]
                return data

            data = await served()
            base.replica_rows = len(data["appointments"]["edges"])
            for _ in range(20):
                await served()
            batches = []
            for _ in range(s.cpu_batches):
                cpu_before = procs.cpu_seconds(gw.pid)
                for _ in range(100):
                    await served()
                batches.append((procs.cpu_seconds(gw.pid) - cpu_before) / 100 * 1e3)
            base.replica_cpu_ms = statistics.median(batches)
            latencies = []
            for _ in range(max(20, s.latency_samples)):
                started = time.perf_counter()
                await served()
                latencies.append((time.perf_counter() - started) * 1e3)
            base.replica_p50_ms = percentile(latencies, 0.5)
            cpu_before, started = procs.cpu_seconds(gw.pid), time.perf_counter()
            await asyncio.sleep(5)
            base.replica_idle_cpu_ms_per_s = (
                (procs.cpu_seconds(gw.pid) - cpu_before) / (time.perf_counter() - started) * 1e3
            )
            base.rss_mb["gateway with account A's replica"] = procs.peak_rss_mb(gw.pid)
    base.replica_floor = _floor_of(doc, variables, data)


async def phase_latency(
    rows: dict[str, Row], base: Baselines, now: str, s: Settings, log_dir: Path
) -> None:
    log(f"phase 2: upstream latency {s.latency_ms:g} ms (latency, throughput, RSS)")
    with procs.sandbox(s.latency_ms, log_dir) as sandbox_proc:
        gw = procs.gateway(sandbox_proc.url, DEMO_KEY_A, log_dir, tag=f"{s.latency_ms:g}ms")
        naive = procs.bench_server(
            "naive", sandbox_proc.url, DEMO_KEY_A, log_dir, tag=f"{s.latency_ms:g}ms"
        )
        with gw, naive:
            async with _http(CONCURRENCY * 2) as http:
                client = Client(http, gw.url)
                sandbox = Sandbox(http, sandbox_proc.url)
                fx, _ = await build_fixture(client, now)
                for row in rows.values():
                    if row.skipped:
                        continue
                    log(f"  latency + c{CONCURRENCY}: {row.op.name}")
                    samples = s.walk_samples if row.op.name == "walk" else s.latency_samples
                    total_before = await sandbox.total()
                    client.upstream_requests = 0
                    times = await latency(row.op, client, fx, samples)
                    row.p50_ms = statistics.median(times) * 1e3
                    row.p95_ms = percentile(times, 0.95) * 1e3
                    row.ops_c1 = len(times) / sum(times)
                    c_times, errors, wall = await concurrent(
                        row.op, client, fx, CONCURRENCY, s.c32_rounds
                    )
                    delta = await sandbox.total() - total_before
                    if delta != client.upstream_requests:
                        raise AssertionError(
                            f"{row.op.name}: sandbox {delta} != gateway {client.upstream_requests}"
                        )
                    row.c32_ops, row.c32_errors = len(c_times), errors
                    row.ops_c32 = len(c_times) / wall
                    if c_times:
                        row.c32_p50_ms = statistics.median(c_times) * 1e3
                        row.c32_p95_ms = percentile(c_times, 0.95) * 1e3
                base.rss_mb[f"gateway, {s.latency_ms:g} ms phase (after c{CONCURRENCY})"] = (
                    procs.peak_rss_mb(gw.pid)
                )
                log("  naive baseline: calendar latency")
                naive_times = await latency(
                    rows["calendar"].op, Client(http, naive.url), fx, max(5, s.latency_samples // 3)
                )
                base.naive_p50_ms = statistics.median(naive_times) * 1e3
                base.naive_p95_ms = percentile(naive_times, 0.95) * 1e3


async def phase_profile(base: Baselines, now: str, s: Settings, log_dir: Path) -> None:
    log("phase 3: cProfile of the gateway process serving calendars at 0 ms")
    out = log_dir / "gateway.prof"
    with procs.sandbox(0, log_dir) as sandbox_proc:
        with procs.bench_server(
            "gateway", sandbox_proc.url, DEMO_KEY_A, log_dir, tag="profile", profile=out
        ) as gw:
            async with _http(4) as http:
                client = Client(http, gw.url)
                fx, combined = await build_fixture(client, now)
                op = operations(combined)[0]
                for _ in range(s.profile_ops):
                    await op.run(client.send, fx)
    text = StringIO()
    stats = pstats.Stats(str(out), stream=text)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(45)
    base.profile = f"# cProfile, {s.profile_ops} calendars, gateway process\n" + text.getvalue()


# -- the report -----------------------------------------------------------------------


def _f(value: float, digits: int = 1) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def render(rows: dict[str, Row], base: Baselines, s: Settings, started: datetime) -> str:
    lat = f"{s.latency_ms:g} ms"
    lines = [
        "# Benchmark results",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; machine: {machine()}",
        f"- code measured: {s.label or _git_head()}; command: `make bench` (`python -m bench.run`)",
        f"- upstream: the sandbox, rate limit off; latency 0 ms for requests and CPU, {lat}"
        " for latency and throughput; one gateway worker (`appointments-gateway serve`)",
        "",
        "| operation | upstream requests (sandbox = gateway) | lower bound | rounds | "
        f"p50 / p95 ms at {lat} | critical path ms | CPU ms/op at 0 ms | ops/s c=1 | "
        f"ops/s c={CONCURRENCY} | c={CONCURRENCY} p50 / p95 ms (errors) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows.values():
        if row.skipped:
            lines.append(f"| {row.op.title} | {row.skipped} | | | | | | | | |")
            continue
        assert row.bound is not None
        same = "" if row.sandbox_requests == row.gateway_requests else " (DISAGREE)"
        lines.append(
            f"| {row.op.title} | {row.sandbox_requests}{same} | {row.bound.requests} | "
            f"{row.bound.rounds} | {_f(row.p50_ms)} / {_f(row.p95_ms)} | "
            f"{row.bound.rounds * s.latency_ms:g} | {_f(row.cpu_ms)} | {_f(row.ops_c1)} | "
            f"{_f(row.ops_c32)} | {_f(row.c32_p50_ms, 0)} / {_f(row.c32_p95_ms, 0)} "
            f"({row.c32_errors}) |"
        )
    cal = rows["calendar"]
    floor_ms = base.floor.get("median_ms", math.nan)
    ratio = cal.cpu_ms / floor_ms
    lines += [
        "",
        "## Baselines (same run)",
        "",
        f"| calendar | upstream requests | CPU ms/op | × floor | p50 / p95 ms at {lat} |",
        "|---|---:|---:|---:|---:|",
        f"| (a) floor: graphql-core `execute_sync`, dict sources, sync resolvers, pre-parsed "
        f"and pre-validated, {base.floor.get('fields', 0)} fields, output identical "
        f"| 0 | {_f(floor_ms, 2)} | 1.00 | – |",
        f"| gateway | {cal.sandbox_requests} | {_f(cal.cpu_ms)} | {_f(ratio, 2)} | "
        f"{_f(cal.p50_ms)} / {_f(cal.p95_ms)} |",
        f"| (b) naive: same types and plumbing, one GET per related object, no batching, "
        f"output identical | {base.naive_requests} | {_f(base.naive_cpu_ms)} | "
        f"{_f(base.naive_cpu_ms / floor_ms, 2)} | {_f(base.naive_p50_ms)} / "
        f"{_f(base.naive_p95_ms)} |",
        f"| (c) the same 100 rows served by the replica (the calendar with startsAt "
        f"`[from, to)`; its own floor {_f(base.replica_floor.get('median_ms', math.nan), 2)} "
        f"ms) | 0 | {_f(base.replica_cpu_ms)} | "
        f"{_f(base.replica_cpu_ms / base.replica_floor.get('median_ms', math.nan), 2)} | "
        f"{_f(base.replica_p50_ms)} (0 ms upstream) |",
        "",
        f"The replica's gateway idles at {_f(base.replica_idle_cpu_ms_per_s, 2)} ms CPU per "
        "second (its sync polls, included in (c)'s batches).",
        "",
        f"Batching saves {base.naive_requests - cal.sandbox_requests} of "
        f"{base.naive_requests} upstream requests on the calendar "
        f"({base.naive_requests / max(cal.sandbox_requests, 1):.0f}× fewer).",
        "",
        "## Targets",
        "",
    ]
    lines += _targets(rows, base, s, ratio)
    rss = "; ".join(f"{k}: {v:.0f} MB" for k, v in base.rss_mb.items())
    lines += [
        "",
        "## Method",
        "",
        "- Requests: one run per operation at 0 ms; the sandbox's `total_requests` delta and the "
        "sum of `extensions.upstream.requests` must be equal (checked again over every CPU, "
        "latency and concurrency batch), and every upstream status 2xx.",
        "- Lower bound and rounds: derived from the returned data by the rules in "
        "`bench/ops.py` (a page of ≤100 rows: 1; each related resource: ceil(distinct ids / "
        "100), +1 for inactive practitioners; hasConflicts: 1 each; dependent levels = rounds). "
        "Critical path = rounds × upstream latency.",
        f"- CPU: gateway process `utime+stime` (`/proc/<pid>/stat`, {procs.CLOCK_TICKS} ticks/s) "
        f"around {s.cpu_batches} batches of ≥{s.cpu_batch_seconds:g} s of sequential "
        "operations; median batch. It includes everything the process does: HTTP parsing, "
        "GraphQL, upstream HTTP client, JSON. Nothing is subtracted; the idle gateway burns "
        f"{_f(base.idle_cpu_ms_per_s, 2)} ms CPU per second.",
        f"- Latency: {s.latency_samples} sequential runs after 2 warm-ups "
        f"({s.walk_samples} for the walk), wall time at the client. ops/s c=1 = runs / their "
        f"summed time; c={CONCURRENCY}: {CONCURRENCY} clients × {s.c32_rounds} operations "
        f"after one warm-up each, ops/s = completed / wall time.",
        f"- Peak RSS (`VmHWM`): {rss}.",
        "- The floor runs in its own process on the calendar response the gateway returned "
        "(`bench/floor.py`); the naive baseline is `bench/naive.py` served by "
        "`bench/server.py` through `create_app(settings, schema=...)`.",
        "- 2 cores are shared by the client, the sandbox and the gateway: at concurrency 32 "
        "they compete for CPU.",
        "",
    ]
    return "\n".join(lines)


def _targets(rows: dict[str, Row], base: Baselines, s: Settings, ratio: float) -> list[str]:
    out = []
    over = [
        f"{r.op.name} {r.sandbox_requests} > {r.bound.requests}"
        for r in rows.values()
        if not r.skipped and r.bound is not None and r.sandbox_requests > r.bound.requests
    ]
    out.append(
        f"- Upstream requests = lower bound for every operation: "
        f"{'**met**' if not over else '**missed**: ' + ', '.join(over)}"
    )
    out.append(
        f"- Calendar CPU ≤ 1.3× floor: {ratio:.2f}× — "
        f"{'**met**' if ratio <= 1.3 else f'**missed** by {(ratio / 1.3 - 1) * 100:.0f}%'}"
    )
    cal = rows["calendar"]
    assert cal.bound is not None
    limit = cal.bound.rounds * s.latency_ms + 30
    out.append(
        f"- Calendar p50 ≤ critical path + 30 ms ({limit:g} ms): {cal.p50_ms:.1f} ms — "
        f"{'**met**' if cal.p50_ms <= limit else f'**missed** by {cal.p50_ms - limit:.1f} ms'}"
    )
    spread = cal.c32_p95_ms / cal.c32_p50_ms
    ok = cal.c32_errors == 0 and spread <= 4
    out.append(
        f"- Calendar at concurrency {CONCURRENCY}: {cal.c32_errors} errors, p95/p50 = "
        f"{spread:.2f} — {'**met**' if ok else '**missed**'}"
    )
    peak = max(base.rss_mb.values())
    out.append(f"- Peak RSS ≤ 250 MB: {peak:.0f} MB — {'**met**' if peak <= 250 else '**missed**'}")
    return out


def _git_head() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "appointments_gateway"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parent,
    ).stdout.strip()
    return out.stdout.strip() + (" + uncommitted changes in appointments_gateway/" if dirty else "")


# -- entry point ----------------------------------------------------------------------


async def run(s: Settings) -> tuple[str, str]:
    """Both phases (and the profile); returns the report and the profile text."""
    started = datetime.now(UTC)
    now = upcoming_from(started)
    rows: dict[str, Row] = {}
    base = Baselines()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        log_dir = Path(tmp)
        await phase_cpu(rows, base, now, s, log_dir)
        await phase_replica(base, now, s, log_dir)
        await phase_latency(rows, base, now, s, log_dir)
        if s.profile:
            await phase_profile(base, now, s, log_dir)
        desk = await frontdesk.run_plan(s.frontdesk, log_dir) if s.frontdesk else None
    report = render(rows, base, s, started)
    if desk is not None:
        report += "\n" + frontdesk.render(desk)
    return report, base.profile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--samples", type=int, default=25, help="sequential runs per operation")
    parser.add_argument("--cpu-batches", type=int, default=5)
    parser.add_argument("--cpu-batch-seconds", type=float, default=0.6)
    parser.add_argument("--c32-rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="also profile the calendar")
    parser.add_argument("--profile-ops", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="few samples: check it runs")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.md")
    parser.add_argument("--label", default="", help="what code is measured (default: git HEAD)")
    parser.add_argument("--no-frontdesk", action="store_true", help="skip the front-desk runs")
    args = parser.parse_args(argv)
    desk = frontdesk.MAKE_BENCH_PLAN
    if args.quick:  # one short run without sync: checks that it runs, measures nothing
        desk = frontdesk.Plan(runs=(("off", 10),), timing=frontdesk.QUICK_TIMING)
    s = Settings(
        latency_ms=args.latency_ms,
        latency_samples=5 if args.quick else args.samples,
        walk_samples=2 if args.quick else max(3, args.samples // 3),
        cpu_batches=2 if args.quick else args.cpu_batches,
        cpu_batch_seconds=0.2 if args.quick else args.cpu_batch_seconds,
        c32_rounds=1 if args.quick else args.c32_rounds,
        profile=args.profile,
        profile_ops=20 if args.quick else args.profile_ops,
        label=args.label,
        frontdesk=None if args.no_frontdesk else desk,
    )
    started = time.perf_counter()
    report, profile = asyncio.run(run(s))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    if profile:
        (args.out.parent / "profile-calendar.txt").write_text(profile)
    print(report)
    log(f"bench: {time.perf_counter() - started:.0f} s; written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
