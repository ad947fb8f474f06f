"""Scale-out on Redis, end to end: two gateway instances of two workers each, one real Redis.

What issue 12 asks to be shown, with processes and TCP as in production: the sandbox runs
alone with Cliniko's 200 requests per minute per key (``--rate-limit 200``); Debian's
``redis-server`` runs on a free port; two ``appointments-gateway serve --workers 2``
instances share it (``GATEWAY_REDIS_URL``, ``GATEWAY_INSTANCES=2``) in service mode on
``DEMO_KEY_A``.  Clients alternate between the two instances' ports, and the kernel spreads
each instance's connections over its two workers.  Every check reads the sandbox's own
record of arrivals (``GET /_sandbox/arrivals``), not the gateways' word.

Phases (each with fresh gateways, on one sandbox whose arrivals are read per phase):

1. **burst**: 10 operations a second of one upstream request each (600 a minute, three
   times the budget), ``GATEWAY_SYNC=off``, for ``--burst-seconds``.  Shown: the most
   arrivals in any 60 s, 429s, and that every operation was ``OK`` or ``RATE_LIMITED``
   with ``retryAfterSeconds`` (no other error, no 5xx).
2. **pairs**: 50 pairs of ``createAppointment`` with one ``idempotencyKey`` each, the two
   of a pair sent at once to the two instances; a ``RATE_LIMITED`` answer is retried after
   its ``retryAfterSeconds`` with the same key, as a client would.  Shown: POSTs that
   reached the sandbox (must be 50) and distinct appointments.
3. **outage**: a steady load (2 reads a second, and a keyed create every 2 s with retries)
   while Redis is stopped by its PID for ``--outage-seconds`` and started again (empty).
   Shown: 5xx answers, the most arrivals in any 60 s, 429s, keyed creates refused with
   ``IDEMPOTENCY_KEY_UNAVAILABLE`` meanwhile, POSTs vs distinct keys booked (a double
   booking would be more POSTs than keys), and that keyed creates succeed again after.
4. **sync**: ``GATEWAY_SYNC=on``, ``GATEWAY_SYNC_START_AFTER=0``, a light read load, first
   with one instance of one worker, then with both instances (four processes).  Shown:
   upstream requests per minute of each (the sync's, as reads come from the replica) and
   how long an outside edit (the sandbox's web-app door) takes to show on each instance.

``python -m bench.scaleout`` prints a markdown report and writes it to
``bench/results/scaleout.md``.  About 8 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from appointments_gateway.sandbox import DEMO_KEY_A
from bench import procs
from tests.redis_server import RedisServer
from tests.upstream.test_governor import most_in_any_window

RESULTS = Path(__file__).parent / "results" / "scaleout.md"
LIMIT = 200
WINDOW = 60.0
POSTS = "POST /v1/individual_appointments"
LIST = "query Burst { appointments(first: 1) { totalCount } }"
CREATE = (
    "mutation Book($input: CreateAppointmentInput!) { createAppointment(input: $input) "
    "{ appointment { id } userErrors { code message } } }"
)
DETAIL = "query Detail($id: ID!) { appointment(id: $id) { id notes } }"


@dataclass
class Phase:
    name: str
    lines: list[str] = field(default_factory=list)
    ok: bool = True

    def check(self, label: str, value: object, passed: bool) -> None:
        self.lines.append(f"| {label} | {value} | {'yes' if passed else '**NO**'} |")
        self.ok = self.ok and passed


def _budget_held(phase: Phase, rig: Rig, arrivals: list[tuple[float, str, int, str]]) -> None:
    """Cliniko's limit over any 60 s of the whole run so far, and no 429 in this phase."""
    most = most_in_any_window([a[0] for a in rig.arrivals(rig.started)], WINDOW)
    phase.check("most upstream arrivals in any 60 s (whole run so far)", most, most <= LIMIT)
    refused = sum(1 for a in arrivals if a[2] == 429)
    phase.check("429s from the sandbox", refused, refused == 0)


def _no_5xx(phase: Phase, statuses: Counter[int]) -> None:
    failed = sum(n for status, n in statuses.items() if status >= 500)
    phase.check("5xx answers", failed, failed == 0)


class Rig:
    """The sandbox, Redis, and helpers to start instances and read arrivals."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.sandbox = procs.sandbox(50, log_dir, rate_limit=LIMIT, tag="scaleout")
        self.redis = RedisServer().start()
        self.base = self.sandbox.url.removesuffix("/v1")
        self.started = time.time()

    def instances(
        self, tag: str, *, count: int = 2, workers: int = 2, env: dict[str, str] | None = None
    ) -> list[procs.Server]:
        servers = []
        for n in range(count):
            servers.append(
                procs.gateway(
                    self.sandbox.url,
                    DEMO_KEY_A,
                    self.log_dir,
                    tag=f"{tag}-{n}",
                    env={
                        "GATEWAY_UPSTREAM_RATE_LIMIT": str(LIMIT),
                        "GATEWAY_REDIS_URL": self.redis.url,
                        # One deployment throughout: the key's budget is one, whatever runs.
                        "GATEWAY_REDIS_PREFIX": "bench",
                        "GATEWAY_WORKERS": str(workers),
                        "GATEWAY_INSTANCES": str(count),
                        "GATEWAY_SYNC": "off",
                        **(env or {}),
                    },
                )
            )
        return servers

    def arrivals(self, since: float) -> list[tuple[float, str, int, str]]:
        body = httpx.get(f"{self.base}/_sandbox/arrivals", params={"since": since}).json()
        return [(float(t), str(r), int(s), str(a)) for t, r, s, a in body["arrivals"]]

    def refs(self) -> dict[str, str]:
        """Ids a booking needs; every sandbox process seeds the same rows, so read them here."""
        from appointments_gateway.sandbox import create_sandbox_app
        from tests.schema.conftest import booking_refs

        return booking_refs(create_sandbox_app())

    def close(self) -> None:
        self.redis.close()
        self.sandbox.stop()


async def _post(client: httpx.AsyncClient, url: str, query: str, variables: Any = None) -> Any:
    # ``url`` is the endpoint ``serve`` printed (``.../graphql``).
    response = await client.post(
        url, json={"query": query, "variables": variables or {}}, timeout=60
    )
    return response.status_code, response.json() if response.content else {}


def _code(body: dict[str, Any]) -> str:
    errors = body.get("errors") or []
    if not errors:
        return "OK"
    return str(errors[0].get("extensions", {}).get("code", "NO_CODE"))


async def _paced(
    seconds: float, per_second: float, action: Callable[[int], Coroutine[Any, Any, None]]
) -> None:
    tasks: list[asyncio.Task[None]] = []
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < seconds:
        tasks.append(asyncio.create_task(action(n)))
        n += 1
        await asyncio.sleep(max(0.0, started + n / per_second - time.monotonic()))
    await asyncio.gather(*tasks)


async def burst(rig: Rig, seconds: float) -> Phase:
    phase = Phase("burst: 600 upstream calls a minute wanted, one key")
    servers = rig.instances("burst")
    try:
        since = time.time()
        codes: Counter[str] = Counter()
        statuses: Counter[int] = Counter()
        missing_retry = 0
        async with httpx.AsyncClient() as client:

            async def one(n: int) -> None:
                nonlocal missing_retry
                status, body = await _post(client, servers[n % 2].url, LIST)
                statuses[status] += 1
                code = _code(body)
                codes[code] += 1
                if code == "RATE_LIMITED" and not body["errors"][0]["extensions"].get(
                    "retryAfterSeconds"
                ):
                    missing_retry += 1

            await _paced(seconds, 10.0, one)
        arrivals = rig.arrivals(since)
        times = [a[0] for a in arrivals]
        phase.lines.append(
            f"{sum(codes.values())} operations in {seconds:g} s over 2 instances × 2 workers: "
            f"{dict(codes)}; HTTP statuses {dict(statuses)}."
        )
        _budget_held(phase, rig, arrivals)
        phase.check(
            "answers other than OK / RATE_LIMITED",
            sum(n for c, n in codes.items() if c not in ("OK", "RATE_LIMITED")),
            set(codes) <= {"OK", "RATE_LIMITED"},
        )
        phase.check("RATE_LIMITED without retryAfterSeconds", missing_retry, missing_retry == 0)
        _no_5xx(phase, statuses)
        # The whole budget was used: a divided one would have let through about half.
        per_minute = len(times) / (max(times) - min(times)) * 60 if len(times) > 1 else 0
        phase.lines.append(f"Upstream requests per minute over the phase: {per_minute:.0f}.")
    finally:
        for server in servers:
            server.stop()
    return phase


async def _book(
    client: httpx.AsyncClient, url: str, refs: dict[str, str], slot: datetime, key: str
) -> tuple[str, str | None]:
    """Book with retries after RATE_LIMITED or IDEMPOTENCY_KEY_UNAVAILABLE; (outcome, id)."""
    variables = {
        "input": {
            **refs,
            "startsAt": slot.isoformat().replace("+00:00", "Z"),
            "idempotencyKey": key,
        }
    }
    for _ in range(60):
        status, body = await _post(client, url, CREATE, variables)
        if status >= 500:
            return f"HTTP {status}", None
        if _code(body) == "RATE_LIMITED":
            await asyncio.sleep(float(body["errors"][0]["extensions"]["retryAfterSeconds"]))
            continue
        if _code(body) != "OK":
            return _code(body), None
        payload = body["data"]["createAppointment"]
        if payload["userErrors"]:
            code = payload["userErrors"][0]["code"]
            if code == "IDEMPOTENCY_KEY_UNAVAILABLE":
                await asyncio.sleep(1.0)
                continue
            return code, None
        return "OK", payload["appointment"]["id"]
    return "GAVE_UP", None


async def pairs(rig: Rig) -> Phase:
    phase = Phase("pairs: 50 idempotent creates, each sent to both instances at once")
    servers = rig.instances("pairs")
    refs = rig.refs()
    base = datetime(2031, 1, 6, 8, tzinfo=UTC)
    try:
        since = time.time()
        async with httpx.AsyncClient() as client:

            async def pair(n: int) -> tuple[tuple[str, str | None], tuple[str, str | None]]:
                key = f"bench-pair-{n}-{time.time_ns()}"
                slot = base + timedelta(hours=n)
                first, second = await asyncio.gather(
                    _book(client, servers[0].url, refs, slot, key),
                    _book(client, servers[1].url, refs, slot, key),
                )
                return first, second

            results = await asyncio.gather(*(pair(n) for n in range(50)))
        posts = [a for a in rig.arrivals(since) if a[1] == POSTS]
        ids = {first[1] for first, _ in results}
        outcomes = Counter(outcome for both in results for outcome, _ in both)
        phase.lines.append(f"Answers (after retries of RATE_LIMITED): {dict(outcomes)}.")
        phase.check("POSTs that reached the sandbox", len(posts), len(posts) == 50)
        phase.check(
            "pairs whose two answers name one appointment",
            sum(1 for f, s in results if f[1] is not None and f[1] == s[1]),
            all(f[1] is not None and f[1] == s[1] for f, s in results),
        )
        phase.check("distinct appointments", len(ids), len(ids) == 50)
    finally:
        for server in servers:
            server.stop()
    return phase


async def outage(rig: Rig, seconds: float) -> Phase:
    phase = Phase(f"outage: Redis stopped for {seconds:g} s under load, then started empty")
    servers = rig.instances("outage")
    refs = rig.refs()
    base = datetime(2031, 6, 2, 8, tzinfo=UTC)
    try:
        since = time.time()
        statuses: Counter[int] = Counter()
        outcomes: Counter[str] = Counter()
        booked: dict[str, str] = {}
        unavailable = 0
        after_ok = 0
        restarted_at = 0.0
        async with httpx.AsyncClient() as client:

            async def read(n: int) -> None:
                status, body = await _post(client, servers[n % 2].url, LIST)
                statuses[status] += 1
                outcomes[_code(body)] += 1

            async def create(n: int) -> None:
                nonlocal unavailable, after_ok
                key = f"bench-outage-{n}-{time.time_ns()}"
                variables = {
                    "input": {
                        **refs,
                        "startsAt": (base + timedelta(hours=n)).isoformat().replace("+00:00", "Z"),
                        "idempotencyKey": key,
                    }
                }
                # First try by hand, to see the refusal; then with retries.
                status, body = await _post(client, servers[n % 2].url, CREATE, variables)
                statuses[status] += 1
                payload = (body.get("data") or {}).get("createAppointment") or {}
                if any(
                    e["code"] == "IDEMPOTENCY_KEY_UNAVAILABLE"
                    for e in payload.get("userErrors", [])
                ):
                    unavailable += 1
                outcome, appointment = await _book(
                    client, servers[(n + 1) % 2].url, refs, base + timedelta(hours=n), key
                )
                outcomes[f"create {outcome}"] += 1
                if appointment is not None:
                    booked[key] = appointment
                    if restarted_at and time.monotonic() > restarted_at:
                        after_ok += 1

            async def steer() -> None:
                nonlocal restarted_at
                await asyncio.sleep(20)
                rig.redis.stop()
                await asyncio.sleep(seconds)
                rig.redis.start()
                restarted_at = time.monotonic()

            await asyncio.gather(
                _paced(40 + seconds, 2.0, read),
                _paced(30 + seconds, 0.5, create),
                steer(),
            )
        arrivals = rig.arrivals(since)
        posts = [a for a in arrivals if a[1] == POSTS and a[2] == 201]
        phase.lines.append(f"Outcomes: {dict(outcomes)}; HTTP statuses {dict(statuses)}.")
        _no_5xx(phase, statuses)
        _budget_held(phase, rig, arrivals)
        phase.check(
            "keyed creates refused while Redis was away (nothing sent)",
            unavailable,
            unavailable > 0,
        )
        phase.check(
            "created appointments vs keys booked (double booking: more)",
            f"{len(posts)} vs {len(booked)}",
            len(posts) == len(booked),
        )
        phase.check(
            "distinct appointments",
            len(set(booked.values())),
            len(set(booked.values())) == len(booked),
        )
        phase.check("keyed creates booked after the restart", after_ok, after_ok > 0)
    finally:
        for server in servers:
            server.stop()
    return phase


async def _sync_rate(
    rig: Rig, servers: list[procs.Server], minutes: float
) -> tuple[float, list[float]]:
    """Upstream requests per minute with a light read load; then an edit's delay per instance."""
    async with httpx.AsyncClient() as client:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=today.weekday())  # this week's Monday: demo data
        calendar = (
            "query Day($from: DateTime!, $to: DateTime!) { appointments(first: 100, "
            "filter: {startsAt: {gte: $from, lt: $to}}) { nodes { id notes } } }"
        )
        variables = {
            "from": start.isoformat().replace("+00:00", "Z"),
            "to": (start + timedelta(days=7)).isoformat().replace("+00:00", "Z"),
        }
        # Warm-up: until every instance answers from its replica.
        deadline = time.monotonic() + 240
        for server in servers:
            while time.monotonic() < deadline:
                _, body = await _post(client, server.url, calendar, variables)
                if body.get("extensions", {}).get("freshness", {}).get("source") == "replica":
                    break
                await asyncio.sleep(2)
        since = time.time()

        async def read(n: int) -> None:
            await _post(client, servers[n % len(servers)].url, calendar, variables)

        await _paced(minutes * 60, 1.0, read)
        arrivals = [a for a in rig.arrivals(since) if a[0] <= since + minutes * 60]
        per_minute = len(arrivals) / minutes
        # An outside edit, seen through each instance.
        _, body = await _post(client, servers[0].url, calendar, variables)
        target = body["data"]["appointments"]["nodes"][0]["id"]
        token = f"edit-{time.time_ns()}"
        from appointments_gateway.resolvers.ids import parse_global_id

        raw = parse_global_id(target)[1]
        edited = time.monotonic()
        response = await client.patch(
            f"{rig.base}/_sandbox/webapp/a/individual_appointments/{raw}", json={"notes": token}
        )
        response.raise_for_status()
        delays: list[float] = []
        for server in servers:
            while time.monotonic() - edited < 60:
                _, body = await _post(client, server.url, DETAIL, {"id": target})
                if (body.get("data") or {}).get("appointment", {}).get("notes") == token:
                    break
                await asyncio.sleep(0.1)
            delays.append(time.monotonic() - edited)
    return per_minute, delays


async def sync(rig: Rig, minutes: float) -> Phase:
    phase = Phase("sync: one replica sync per key, whatever the number of instances")
    env = {"GATEWAY_SYNC": "on", "GATEWAY_SYNC_START_AFTER": "0"}
    one = rig.instances("sync-one", count=1, workers=1, env=env)
    try:
        alone, _ = await _sync_rate(rig, one, minutes)
    finally:
        for server in one:
            server.stop()
    both = rig.instances("sync-both", env=env)
    try:
        shared, shared_delays = await _sync_rate(rig, both, minutes)
    finally:
        for server in both:
            server.stop()
    phase.lines.append(
        f"Upstream requests per minute, reads from the replica: one instance of one worker "
        f"{alone:.1f}; two instances of two workers {shared:.1f}."
    )
    phase.check(
        "two instances × two workers vs one process (± one hand-over: 5/min)",
        f"{shared:.1f} vs {alone:.1f}",
        shared <= alone + 5,
    )
    delays = ", ".join(f"{d:.1f} s" for d in shared_delays)
    phase.check(
        "outside edit visible on each instance (bound: interval 5 s + 1 s)",
        delays,
        all(d <= 6.0 for d in shared_delays),
    )
    return phase


def render(phases: list[Phase]) -> str:
    lines = [
        "## Scale-out on Redis (bench/scaleout.py)",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Sandbox at Cliniko's {LIMIT}/min per key, "
        "50 ms latency; Debian's redis-server; gateways in service mode on one key.",
    ]
    for phase in phases:
        lines += ["", f"### {phase.name}", ""]
        text = [line for line in phase.lines if not line.startswith("|")]
        rows = [line for line in phase.lines if line.startswith("|")]
        lines += text
        lines += ["", "| measure | value | as required |", "|---|---|---|", *rows]
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace) -> list[Phase]:
    log_dir = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    rig = Rig(log_dir)
    phases: list[Phase] = []
    try:
        for name in args.phases.split(","):
            if name == "burst":
                phases.append(await burst(rig, args.burst_seconds))
            elif name == "pairs":
                phases.append(await pairs(rig))
            elif name == "outage":
                phases.append(await outage(rig, args.outage_seconds))
            elif name == "sync":
                phases.append(await sync(rig, args.sync_minutes))
            print(render(phases[-1:]), flush=True)
    finally:
        rig.close()
        print(f"logs: {log_dir}", file=sys.stderr)
    return phases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__)
    parser.add_argument("--phases", default="burst,pairs,outage,sync")
    parser.add_argument("--burst-seconds", type=float, default=90.0)
    parser.add_argument("--outage-seconds", type=float, default=20.0)
    parser.add_argument("--sync-minutes", type=float, default=2.0)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    phases = asyncio.run(run(args))
    report = render(phases)
    if not args.no_write:
        RESULTS.write_text(report)
    print(json.dumps({p.name: p.ok for p in phases}, indent=1))
    return 0 if all(p.ok for p in phases) else 1


if __name__ == "__main__":
    raise SystemExit(main())
