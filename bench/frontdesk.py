"""The front-desk scenario: N receptionists on one API key, outside edits, 200/min upstream.

Why it exists: every read through the gateway spends one of Cliniko's 200 requests per
minute per key, so a clinic's front desk (a dozen screens, each reopening every few
seconds) runs out of budget long before it runs out of CPU. The suite in ``bench/run.py``
measures one operation at a time with the rate limit off; this measures what the front
desk sees with the limit on, with the per-key replica on (``GATEWAY_SYNC=on``) and off.

One run per (sync mode, receptionist count), each with a fresh sandbox (Cliniko's
200/min per key, 50 ms latency; the sandbox's rate window opens with its first request)
and a fresh gateway in service mode on ``DEMO_KEY_A`` (its own budget at 200/min, as
Cliniko's): runs share neither a replica nor a budget, so a later run never starts warm.

In each run:

* **Receptionists**: N async clients; each opens a screen at a random instant in the
  first 15 s, then every U(10, 20) s after the previous one *opened* (or as soon as it
  finished, when it took longer): 70% day calendar (``frontdesk_calendar``: one
  Brisbane day, ``first: 100``), 20% appointment detail (``frontdesk_detail``), 10%
  patient screen (``frontdesk_patient``). Ids and days come from a fixture read once
  through a sandbox and gateway of their own (rate limit off), so the runs' budgets are
  spent on screens only; the sandbox's data is the same in every process (seed and the
  week's Monday).
* **Editor**: every U(10, 20) s, the same first offset, sets ``notes`` of a random
  appointment of the calendar days to a unique token through the sandbox's web-app door
  (``PATCH /_sandbox/webapp/a/individual_appointments/{id}``: outside ``/v1``, so no
  budget and no counter), as a colleague in Cliniko's web app would.
* **Watcher**: after each edit, polls the detail document for that appointment every
  250 ms (start to start) for at most 30 s; staleness = the instant the first response
  showing the token arrived - the instant the PATCH returned. Its reads are not screens.

Warm-up: 30 s unmeasured; with sync on, until a receptionist's screen came back with
``extensions.freshness.source == "replica"`` too (at most 60 s), since a replica that is
still loading serves from upstream. Then ``--seconds`` (default 60) are measured: screens
*opened* in the window count (in-flight ones are awaited), edits *made* in it count (their
watchers finish after it), and the upstream rate is the sandbox's ``total_requests``
delta over the window, per minute.

``python -m bench.frontdesk [--receptionists 10,20,100] [--seconds N] [--sync on|off|both]``
prints the markdown table; ``make bench`` runs ``MAKE_BENCH_PLAN`` and writes the same
section into ``bench/results/latest.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson

from appointments_gateway.sandbox import DEMO_KEY_A
from bench import procs
from bench.ops import document

__all__ = [
    "MAKE_BENCH_PLAN",
    "QUICK_TIMING",
    "Plan",
    "Report",
    "Timing",
    "main",
    "render",
    "run_plan",
]

Sync = Literal["on", "off"]

LATENCY_MS = 50
#: Cliniko's documented budget, per key per minute: the sandbox enforces it and the
#: gateway is told it explicitly (its default, but the scenario depends on it).
RATE_LIMIT = 200
#: ``DEMO_KEY_A``'s account label, as the web-app door names it.
ACCOUNT = "a"
#: The demo clinics are in Brisbane (+10), Darwin (+9:30) and Perth (+8), none with
#: daylight saving: a Brisbane day holds each clinic's whole business day of that date.
CLINIC_DAY = timezone(timedelta(hours=10))
CALENDAR_DAYS = 3
DOCS = {kind: document(f"frontdesk_{kind}") for kind in ("calendar", "detail", "patient")}
#: Screen mix: (kind, cumulative share).
MIX = (("calendar", 0.7), ("detail", 0.9), ("patient", 1.0))


@dataclass(frozen=True)
class Timing:
    """How long each part lasts, in seconds; the defaults are the scenario's."""

    warmup: float = 30.0
    #: With sync on, the replica's initial load of account A under the 20% share takes
    #: about two minutes; the steady state is what is measured.
    warmup_max: float = 360.0
    measure: float = 60.0
    first_within: float = 15.0
    every: tuple[float, float] = (10.0, 20.0)
    poll: float = 0.25
    watch_max: float = 30.0


@dataclass(frozen=True)
class Plan:
    """Which runs, in order: (sync mode, receptionists)."""

    runs: tuple[tuple[Sync, int], ...]
    timing: Timing = Timing()
    seed: int = 1


#: ``python -m bench.run --quick`` (``make bench ARGS=--quick``): checks that it runs, no more.
QUICK_TIMING = Timing(warmup=5.0, warmup_max=10.0, measure=15.0)

#: ``make bench``: sync on and off at every count the issue names (10, 20, 100), 60 s
#: measured each.  Sync off runs take about 100 s; sync on runs wait for the replica's
#: initial load first (about 160 s for account A under Cliniko's budget), about 230 s.
MAKE_BENCH_PLAN = Plan(
    runs=(("on", 10), ("on", 20), ("on", 100), ("off", 10), ("off", 20), ("off", 100))
)


# -- the fixture ----------------------------------------------------------------------


@dataclass(frozen=True)
class Appointment:
    id: str  # global id, as clients send it
    cliniko_id: str  # as the web-app door names it
    patient_id: str | None


@dataclass(frozen=True)
class Day:
    day: date
    start: str
    end: str
    appointments: tuple[Appointment, ...]


@dataclass(frozen=True)
class Fixture:
    """The calendar days and the ids screens open, read before any run."""

    days: tuple[Day, ...]
    week: date  # the sandbox data's anchor week; a new week means new data

    @property
    def appointments(self) -> list[Appointment]:
        return [a for d in self.days for a in d.appointments]

    @property
    def patients(self) -> list[str]:
        return list(dict.fromkeys(a.patient_id for a in self.appointments if a.patient_id))


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _monday(now: datetime) -> date:
    today = now.astimezone(UTC).date()
    return today - timedelta(days=today.weekday())


def _day_bounds(day: date) -> tuple[str, str]:
    start = datetime(day.year, day.month, day.day, tzinfo=CLINIC_DAY)
    return _iso(start), _iso(start + timedelta(days=1))


#: The calendar's rows (same filter and page), with what the editor needs: Cliniko's id.
_FIXTURE_DAY = """query($from: DateTime!, $to: DateTime!) {
  appointments(first: 100, filter: {startsAt: {gte: $from, lt: $to}}) {
    nodes { id clinikoId patient { id } } } }"""


async def build_fixture(http: httpx.AsyncClient, url: str, now: datetime) -> Fixture:
    """The busiest ``CALENDAR_DAYS`` weekdays within 3 days of today (Brisbane), and ids.

    "Today" is the machine's: the sandbox lays its data around Monday of the current
    week (8 weeks back, 4 ahead), so the days near today are always populated.
    """
    today = now.astimezone(CLINIC_DAY).date()
    candidates = [
        today + timedelta(days=d) for d in range(-3, 4) if (today + timedelta(days=d)).weekday() < 5
    ]
    days: list[Day] = []
    for day in candidates:
        start, end = _day_bounds(day)
        answer = await post(http, url, _FIXTURE_DAY, {"from": start, "to": end})
        if not answer.ok or answer.data is None:
            raise RuntimeError(f"The fixture's calendar for {day} failed: {answer.code}")
        nodes = answer.data["appointments"]["nodes"]
        appointments = tuple(
            Appointment(n["id"], n["clinikoId"], (n["patient"] or {}).get("id")) for n in nodes
        )
        days.append(Day(day, start, end, appointments))
    busiest = sorted(days, key=lambda d: (-len(d.appointments), abs((d.day - today).days)))
    chosen = tuple(sorted(busiest[:CALENDAR_DAYS], key=lambda d: d.day))
    if not all(d.appointments for d in chosen):
        raise RuntimeError(f"The sandbox has empty days near {today}: {chosen}")
    return Fixture(chosen, _monday(now))


# -- talking to the gateway -------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One GraphQL response as the bench sees it."""

    code: str  # "ok", an extensions.code such as RATE_LIMITED, "HTTP 502", or an exception
    sent: float  # time.monotonic()
    received: float
    source: str  # extensions.freshness.source, or "absent"
    upstream: int  # extensions.upstream.requests
    data: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.code == "ok"

    @property
    def seconds(self) -> float:
        return self.received - self.sent


async def post(http: httpx.AsyncClient, url: str, doc: str, variables: dict[str, Any]) -> Answer:
    """Send one operation; any error makes it not ok (a screen with holes is not shown)."""
    sent = time.monotonic()
    try:
        response = await http.post(
            url,
            content=orjson.dumps({"query": doc, "variables": variables}),
            headers={"content-type": "application/json"},
        )
        body = orjson.loads(response.content)
    except (httpx.HTTPError, orjson.JSONDecodeError) as exc:
        return Answer(type(exc).__name__, sent, time.monotonic(), "absent", 0, None)
    received = time.monotonic()
    extensions = body.get("extensions") or {}
    source = (extensions.get("freshness") or {}).get("source") or "absent"
    upstream = (extensions.get("upstream") or {}).get("requests", 0)
    codes = [(e.get("extensions") or {}).get("code", "no code") for e in body.get("errors") or []]
    if "RATE_LIMITED" in codes:
        code = "RATE_LIMITED"
    elif codes:
        code = codes[0]
    elif response.status_code != 200:
        code = f"HTTP {response.status_code}"
    else:
        code = "ok"
    return Answer(code, sent, received, source, upstream, body.get("data"))


# -- one run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Screen:
    kind: str
    answer: Answer


@dataclass
class Edit:
    appointment: Appointment
    token: str
    made: float  # when the PATCH returned
    seen: float | None = None  # when the first response showing the token arrived
    polls: int = 0
    poll_codes: Counter[str] = field(default_factory=Counter)

    @property
    def staleness(self) -> float | None:
        return None if self.seen is None else self.seen - self.made


@dataclass
class Result:
    """What one run measured; only the measured window's screens and edits are kept."""

    sync: Sync
    receptionists: int
    warmup: float = math.nan
    warmup_note: str = ""
    measured: float = math.nan
    screens: list[Screen] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    edit_failures: Counter[str] = field(default_factory=Counter)
    upstream: int = 0  # sandbox total_requests delta over the window
    upstream_429: int = 0
    screen_upstream: int = 0  # extensions.upstream.requests of measured screens
    watcher_upstream: int = 0  # ... of watcher polls sent in the window
    freshness_seen: bool = False
    replica_metrics: list[str] = field(default_factory=list)
    wall: float = math.nan

    def ok(self, kind: str | None = None) -> list[Answer]:
        return [s.answer for s in self.screens if s.answer.ok and kind in (None, s.kind)]

    @property
    def per_minute(self) -> float:
        return self.upstream / self.measured * 60


class Scenario:
    """Receptionists, editor and watchers against one gateway; see the module docstring."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        gateway_url: str,
        sandbox_origin: str,
        fx: Fixture,
        result: Result,
        timing: Timing,
        seed: int,
    ) -> None:
        self.http = http
        self.url = gateway_url
        self.origin = sandbox_origin
        self.fx = fx
        self.result = result
        self.t = timing
        self.seed = f"{seed}:{result.receptionists}"  # equal schedules for sync on and off
        self.stopped = asyncio.Event()
        self.start = time.monotonic()
        self.window = (math.inf, math.inf)  # measured [from, until); set after warm-up
        self.watchers: set[asyncio.Task[None]] = set()
        self.watched: set[str] = set()
        self.first_replica: float | None = None
        self.answers = 0

    def measured(self, instant: float) -> bool:
        return self.window[0] <= instant < self.window[1]

    async def _wait_until(self, when: float) -> bool:
        """Sleep until ``when``; False if the run stopped first."""
        try:
            await asyncio.wait_for(self.stopped.wait(), max(0.0, when - time.monotonic()))
        except TimeoutError:
            return not self.stopped.is_set()
        return False

    def _note(self, answer: Answer) -> None:
        self.answers += 1
        if answer.source != "absent":
            self.result.freshness_seen = True
        if answer.ok and answer.source == "replica" and self.first_replica is None:
            self.first_replica = answer.received

    async def receptionist(self, n: int) -> None:
        rng = random.Random(f"{self.seed}:receptionist:{n}")
        next_at = self.start + rng.uniform(0, self.t.first_within)
        while await self._wait_until(next_at):
            if time.monotonic() >= self.window[1]:
                return
            draw = rng.random()
            kind = next(k for k, share in MIX if draw < share)
            if kind == "calendar":
                day = rng.choice(self.fx.days)
                variables = {"from": day.start, "to": day.end}
            elif kind == "detail":
                variables = {"id": rng.choice(self.fx.appointments).id}
            else:
                variables = {"id": rng.choice(self.fx.patients)}
            answer = await post(self.http, self.url, DOCS[kind], variables)
            self._note(answer)
            if self.measured(answer.sent):
                self.result.screens.append(Screen(kind, answer))
                self.result.screen_upstream += answer.upstream
            next_at += rng.uniform(*self.t.every)

    async def editor(self) -> None:
        rng = random.Random(f"{self.seed}:editor")
        next_at = self.start + rng.uniform(0, self.t.first_within)
        made = 0
        while await self._wait_until(next_at):
            if time.monotonic() >= self.window[1]:
                return
            next_at += rng.uniform(*self.t.every)
            free = [a for a in self.fx.appointments if a.id not in self.watched]
            appointment = rng.choice(free)
            made += 1
            token = f"front desk edit {made} {rng.getrandbits(48):012x}"
            url = (
                f"{self.origin}/_sandbox/webapp/{ACCOUNT}/individual_appointments/"
                f"{appointment.cliniko_id}"
            )
            try:
                response = await self.http.patch(url, json={"notes": token})
            except httpx.HTTPError as exc:
                self.result.edit_failures[type(exc).__name__] += 1
                continue
            if response.status_code != 200:
                self.result.edit_failures[f"HTTP {response.status_code}"] += 1
                if response.status_code in (404, 405) and not self.result.edits:
                    return  # no web-app door in this sandbox: nothing to watch
                continue
            edit = Edit(appointment, token, time.monotonic())
            if self.measured(edit.made):
                self.result.edits.append(edit)
            self.watched.add(appointment.id)
            task = asyncio.create_task(self.watch(edit))
            self.watchers.add(task)
            task.add_done_callback(self.watchers.discard)

    async def watch(self, edit: Edit) -> None:
        try:
            poll_at = edit.made
            while time.monotonic() < edit.made + self.t.watch_max:
                answer = await post(
                    self.http, self.url, DOCS["detail"], {"id": edit.appointment.id}
                )
                edit.polls += 1
                if self.measured(answer.sent):
                    self.result.watcher_upstream += answer.upstream
                if not answer.ok or answer.data is None:
                    edit.poll_codes[answer.code] += 1
                elif (answer.data["appointment"] or {}).get("notes") == edit.token:
                    if answer.received - edit.made <= self.t.watch_max:
                        edit.seen = answer.received
                    return
                poll_at += self.t.poll
                await asyncio.sleep(max(0.0, poll_at - time.monotonic()))
        finally:
            self.watched.discard(edit.appointment.id)

    async def warm_up(self, sync: Sync) -> None:
        """Fixed ``warmup`` s; with sync on, also until the replica has loaded its window.

        "After warm-up" means the steady state: the initial load (about two minutes of
        the key's sync share for account A) is over, ``gateway_replica_loading`` is 0.
        """
        await asyncio.sleep(max(0.0, self.start + self.t.warmup - time.monotonic()))
        note = f"fixed {self.t.warmup:g} s"
        if sync == "on":
            while True:
                if self.answers >= 10 and not self.result.freshness_seen:
                    note += "; no extensions.freshness in any response: no replica to wait for"
                    break
                if time.monotonic() - self.start >= self.t.warmup_max:
                    note = f"replica not loaded within {self.t.warmup_max:g} s"
                    break
                if self.first_replica is not None and await self._replica_loaded():
                    at = self.first_replica - self.start
                    loaded = time.monotonic() - self.start
                    note = f"first replica screen at {at:.0f} s, window loaded at {loaded:.0f} s"
                    break
                await asyncio.sleep(1.0)
        self.result.warmup = time.monotonic() - self.start
        self.result.warmup_note = note

    async def _replica_loaded(self) -> bool:
        samples = dict(line.rsplit(" ", 1) for line in await _replica_metrics(self.http, self.url))
        return (
            float(samples.get("gateway_replica_keys", "0")) >= 1
            and float(samples.get("gateway_replica_loading", "1")) == 0
        )


async def _sandbox_stats(http: httpx.AsyncClient, origin: str) -> dict[str, Any]:
    stats: dict[str, Any] = (await http.get(f"{origin}/_sandbox/stats")).json()
    return stats


async def _replica_metrics(http: httpx.AsyncClient, gateway_url: str) -> list[str]:
    """The ``gateway_replica_*`` samples on ``/metrics`` (none before the replica lands)."""
    response = await http.get(str(httpx.URL(gateway_url).copy_with(path="/metrics")))
    return [line for line in response.text.splitlines() if line.startswith("gateway_replica_")]


async def run_one(
    sync: Sync, receptionists: int, fx: Fixture, timing: Timing, seed: int, log_dir: Path
) -> Result:
    """One run with a fresh sandbox and gateway; see the module docstring."""
    result = Result(sync, receptionists)
    began = time.monotonic()
    tag = f"frontdesk-sync-{sync}-{receptionists}"
    env = {"GATEWAY_SYNC": sync, "GATEWAY_UPSTREAM_RATE_LIMIT": str(RATE_LIMIT)}
    with (
        procs.sandbox(LATENCY_MS, log_dir, rate_limit=RATE_LIMIT, tag=tag) as sandbox,
        procs.gateway(sandbox.url, DEMO_KEY_A, log_dir, tag=tag, env=env) as gateway,
    ):
        origin = sandbox.url.removesuffix("/v1")
        limits = httpx.Limits(max_connections=receptionists + 40)
        async with httpx.AsyncClient(timeout=httpx.Timeout(60.0), limits=limits) as http:
            scenario = Scenario(http, gateway.url, origin, fx, result, timing, seed)
            tasks = [asyncio.create_task(scenario.receptionist(n)) for n in range(receptionists)]
            tasks.append(asyncio.create_task(scenario.editor()))
            await scenario.warm_up(sync)
            before = await _sandbox_stats(http, origin)
            start = time.monotonic()
            scenario.window = (start, start + timing.measure)
            await asyncio.sleep(timing.measure)
            after = await _sandbox_stats(http, origin)
            result.measured = time.monotonic() - start
            scenario.stopped.set()
            await asyncio.gather(*tasks)
            await asyncio.gather(*list(scenario.watchers))
            result.upstream = after["total_requests"] - before["total_requests"]
            result.upstream_429 = after["by_status"].get("429", 0) - before["by_status"].get(
                "429", 0
            )
            result.replica_metrics = await _replica_metrics(http, gateway.url)
    result.wall = time.monotonic() - began
    return result


@dataclass
class Report:
    plan: Plan
    days: list[str] = field(default_factory=list)  # the calendar days, as the report says
    results: list[Result] = field(default_factory=list)


async def run_plan(plan: Plan, log_dir: Path) -> Report:
    """Every run of ``plan``, after reading the fixture from a sandbox of its own."""
    fx = await _fixture(log_dir)
    report = Report(plan, [f"{d.day:%a %d %b} ({len(d.appointments)})" for d in fx.days])
    for sync, receptionists in plan.runs:
        if fx.week != _monday(datetime.now(UTC)):
            fx = await _fixture(log_dir)  # the sandbox re-seeds around the new week
        _log(
            f"front desk: sync {sync}, {receptionists} receptionists "
            f"(warm-up {plan.timing.warmup:g} s+, {plan.timing.measure:g} s measured)"
        )
        result = await run_one(sync, receptionists, fx, plan.timing, plan.seed, log_dir)
        _log(f"  {_row(result)}  [{result.wall:.0f} s]")
        report.results.append(result)
    return report


async def _fixture(log_dir: Path) -> Fixture:
    with (
        procs.sandbox(0, log_dir, tag="frontdesk-fixture") as sandbox,
        procs.gateway(sandbox.url, DEMO_KEY_A, log_dir, tag="frontdesk-fixture") as gateway,
    ):
        async with httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as http:
            return await build_fixture(http, gateway.url, datetime.now(UTC))


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the report -----------------------------------------------------------------------


def _pct(values: Sequence[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _ms(answers: Sequence[Answer], p: float) -> str:
    value = _pct([a.seconds for a in answers], p) * 1e3
    return "–" if math.isnan(value) else f"{value:.0f}"


def _staleness(r: Result) -> tuple[list[float], int]:
    seen = [s for e in r.edits if (s := e.staleness) is not None]
    return seen, len(r.edits) - len(seen)


def _row(r: Result) -> str:
    total = len(r.screens)
    limited = sum(1 for s in r.screens if s.answer.code == "RATE_LIMITED")
    other = Counter(
        s.answer.code for s in r.screens if not s.answer.ok and s.answer.code != "RATE_LIMITED"
    )
    ok = r.ok()
    share = f"{limited / total * 100:.0f}%" if total else "–"
    others = str(sum(other.values()))
    if other:
        others += " (" + ", ".join(f"{c} {n}" for c, n in other.most_common(3)) + ")"
    seen, unseen = _staleness(r)
    if r.edits:
        stale = f"{_pct(seen, 0.5):.2f} / {max(seen):.2f}" if seen else "– / –"
        stale += f" ({unseen} of {len(r.edits)} unseen)"
    elif r.edit_failures:
        stale = "no edits: " + ", ".join(f"{c} ×{n}" for c, n in r.edit_failures.items())
    else:
        stale = "no edits"
    sources = Counter(a.source for a in ok)
    mix = ", ".join(f"{s} {n / len(ok) * 100:.0f}%" for s, n in sources.most_common()) or "–"
    return (
        f"| {r.sync} | {r.receptionists} | {len(ok)} of {total} | {limited} ({share}) | "
        f"{others} | {_ms(ok, 0.5)} / {_ms(ok, 0.95)} | {_ms(r.ok('calendar'), 0.5)} | "
        f"{r.per_minute:.0f} ({r.upstream_429}) | {stale} | {mix} | {r.warmup:.0f} |"
    )


def _targets(results: Sequence[Result]) -> list[str]:
    """The team's targets (sync on), judged on the sync-on runs as measured."""
    on = [r for r in results if r.sync == "on"]
    if not on:
        return ["- No sync-on run: the targets are about sync on."]
    lines = []
    if not any(r.freshness_seen for r in on):
        lines.append(
            "- Sync on was asked for, but no response carried `extensions.freshness`: this "
            "gateway has no replica yet (`GATEWAY_SYNC` is ignored), so the sync-on rows "
            "measure the upstream path too."
        )

    def verdict(good: bool) -> str:
        return "**met**" if good else "**missed**"

    biggest = max(on, key=lambda r: r.receptionists)
    limited = sum(1 for s in biggest.screens if s.answer.code == "RATE_LIMITED")
    lines.append(
        f"- 0 RATE_LIMITED at 100 receptionists: {limited} at {biggest.receptionists} — "
        f"{verdict(limited == 0 and biggest.receptionists >= 100)}"
    )
    rates = [f"{r.per_minute:.0f}" for r in on]
    flat = all(r.per_minute <= 30 for r in on)
    lines.append(
        f"- Upstream ≤ 30/min after warm-up, not growing with N: {', '.join(rates)} at "
        f"N = {', '.join(str(r.receptionists) for r in on)} — {verdict(flat)}"
    )
    seen = [s for r in on for s in _staleness(r)[0]]
    unseen = sum(_staleness(r)[1] for r in on)
    if seen:
        p50, worst = _pct(seen, 0.5), max(seen)
        good = p50 <= 6 and worst <= 15 and unseen == 0
        lines.append(
            f"- Staleness p50 ≤ 6 s, max ≤ 15 s (all runs' edits): {p50:.1f} s / {worst:.1f} s, "
            f"{unseen} never seen — {verdict(good)}"
        )
    else:
        lines.append("- Staleness p50 ≤ 6 s, max ≤ 15 s: no edit was measured")
    calendars = [f"{_ms(r.ok('calendar'), 0.5)} ms at N = {r.receptionists}" for r in on]
    worst_p50 = max((_pct([a.seconds for a in r.ok("calendar")], 0.5) for r in on), default=0)
    lines.append(
        f"- Calendar p50 ≤ 25 ms: {', '.join(calendars)} — "
        f"{verdict(not math.isnan(worst_p50) and worst_p50 * 1e3 <= 25)}"
    )
    return lines


def render(report: Report) -> str:
    """The markdown section: main table, per-screen latency, upstream split, targets."""
    t = report.plan.timing
    results = report.results
    lines = [
        "## Front desk: receptionists and outside edits on one key (200/min upstream)",
        "",
        f"- sandbox: rate limit {RATE_LIMIT}/min per key, latency {LATENCY_MS} ms, fresh per "
        f"run; gateway: `appointments-gateway serve`, service mode, `DEMO_KEY_A`, "
        f"`GATEWAY_UPSTREAM_RATE_LIMIT={RATE_LIMIT}`, `GATEWAY_SYNC` as in the row, fresh "
        "per run",
        f"- per run: warm-up {t.warmup:g} s (sync on: until a screen came from the replica "
        "and gateway_replica_loading was 0, "
        f"at most {t.warmup_max:g} s), then {t.measure:g} s measured; screens every "
        f"U({t.every[0]:g}, {t.every[1]:g}) s per receptionist (70% day calendar, 20% "
        f"detail, 10% patient); an outside edit every U({t.every[0]:g}, {t.every[1]:g}) s, "
        f"watched every {t.poll * 1e3:g} ms for at most {t.watch_max:g} s",
    ]
    lines.append(f"- calendar days (Brisbane, appointments): {', '.join(report.days)}")
    lines += [
        "",
        "| sync | receptionists | screens ok | RATE_LIMITED | other errors | p50 / p95 ms "
        "(ok) | calendar p50 ms | upstream req/min (429s) | staleness p50 / max s | "
        "freshness.source (ok) | warm-up s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
        "| *target (sync on)* | *100* | | *0* | | | *≤ 25* | *≤ 30, flat in N* | "
        "*≤ 6 / ≤ 15, none unseen* | | |",
    ]
    lines += [_row(r) for r in results]
    lines += [
        "",
        "| sync | receptionists | calendar p50 / p95 ms (n) | detail (n) | patient (n) | "
        "upstream/min: screens + watcher + rest | watcher polls (errors) | warm-up |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        per = []
        for kind in ("calendar", "detail", "patient"):
            ok = r.ok(kind)
            per.append(f"{_ms(ok, 0.5)} / {_ms(ok, 0.95)} ({len(ok)})")
        minute = 60 / r.measured
        rest = r.upstream - r.screen_upstream - r.watcher_upstream
        polls = sum(e.polls for e in r.edits)
        errors = sum(sum(e.poll_codes.values()) for e in r.edits)
        lines.append(
            f"| {r.sync} | {r.receptionists} | {' | '.join(per)} | "
            f"{r.screen_upstream * minute:.0f} + {r.watcher_upstream * minute:.0f} + "
            f"{rest * minute:.0f} | {polls} ({errors}) | {r.warmup_note} |"
        )
    lines += ["", "### Targets (sync on; reported, not tuned for)", "", *_targets(results)]
    # Sync off exports the series too, all zero; shown only if something is not.
    metrics = [
        (r, r.replica_metrics)
        for r in results
        if r.replica_metrics
        and (r.sync == "on" or any(float(m.rsplit(" ", 1)[1]) for m in r.replica_metrics))
    ]
    lines += ["", "### `gateway_replica_*` on `/metrics` at the end of each run", ""]
    if not metrics:
        lines.append("None exported by this gateway.")
    for r, samples in metrics:
        lines += [f"- sync {r.sync}, {r.receptionists}:", "", "```", *samples[:40], "```", ""]
    lines += [
        "",
        "### Method (front desk)",
        "",
        "- Screens: those *opened* in the measured window (in-flight ones are awaited). ok = "
        "HTTP 200 without any error; RATE_LIMITED = any error with that code (partial data "
        "included); other errors = any other code, HTTP status or transport error. "
        "Latency = client wall time from send to parsed body.",
        "- Upstream req/min: the sandbox's `total_requests` delta between the window's two "
        "ends (`/_sandbox/stats`), per minute; 429s from the same counters. The split sums "
        "`extensions.upstream.requests` of the window's screens and of the watcher's polls "
        "sent in it; the rest is what no operation reported (replica sync, requests of "
        "operations straddling the window's edges).",
        "- Staleness: the watcher reads the edited appointment with the detail document "
        f"every {t.poll * 1e3:g} ms (start to start); staleness = arrival of the first "
        "response whose `notes` equal the edit's token - the return of the PATCH (web-app "
        "door: no latency, no budget). Edits *made* in the window count; unseen = not "
        f"visible within {t.watch_max:g} s. With about one edit per 15 s, each run has "
        "only a handful of edits: p50 and max are over those.",
        "- freshness.source: `extensions.freshness.source` of the ok screens; `absent` = "
        "the response carried none.",
        "- Fixture: the busiest 3 weekdays within 3 days of today (Brisbane days, which "
        "hold all three clinics' hours), read once through a sandbox and gateway of their "
        "own (rate limit off); details and patient screens open random appointments and "
        "patients of those days. Schedules are seeded: the same N sends the same screens "
        "at the same instants with sync on and off.",
        "",
    ]
    return "\n".join(lines)


# -- entry point ----------------------------------------------------------------------


async def _standalone(plan: Plan) -> str:
    with tempfile.TemporaryDirectory(prefix="bench-frontdesk-") as tmp:
        return render(await run_plan(plan, Path(tmp)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.frontdesk", description=__doc__)
    parser.add_argument(
        "--receptionists", default="10,20,100", help="comma-separated counts (default 10,20,100)"
    )
    parser.add_argument("--seconds", type=float, default=60, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=30, help="fixed warm-up seconds")
    parser.add_argument("--sync", choices=["on", "off", "both"], default="both")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.receptionists.split(",") if n.strip()]
    modes: list[Sync] = ["on", "off"] if args.sync == "both" else [args.sync]
    plan = Plan(
        runs=tuple((mode, n) for mode in modes for n in counts),
        timing=Timing(warmup=args.warmup, warmup_max=max(360.0, args.warmup), measure=args.seconds),
        seed=args.seed,
    )
    started = time.perf_counter()
    print(asyncio.run(_standalone(plan)))
    _log(f"front desk: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
