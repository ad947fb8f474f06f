"""The gateway with a running replica, over a sandbox laid out around *now*.

Every test in this package runs the real gateway app and the real sandbox app in process
(``httpx.ASGITransport``): the replica loads from the sandbox as it would from Cliniko,
outside edits go through the sandbox's web-app door (``/_sandbox/webapp/a``), and nothing
is mocked.

Why the data is laid out around now (``SandboxConfig(anchor=None)``: this week's Monday):
a replica holds the appointments from ``sync_days_back`` before *now* to
``sync_days_ahead`` after it, so the schema tests' fixed 2025 anchor would leave every
demo appointment outside its window.  The default window (30 days back, 120 ahead) is
kept: with no rate limit it loads account A's ~2,600 appointments in well under a second
(measured ~0.35 s), so there is nothing to gain from shrinking it, and the tests exercise
the window operators get.

Why the intervals are short: a freshness test waits for a poll, and the package must
run in well under two minutes.  Polls are cheap here (no rate limit, no latency).

Waiting is always for a condition (:func:`eventually`), bounded, with a message that says
what did not happen; never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from starlette.applications import Starlette

from appointments_gateway.gateway import create_app
from appointments_gateway.redis_state import RedisState
from appointments_gateway.replica import APPOINTMENTS, LINKS, Replica, Replicas, Syncer
from appointments_gateway.sandbox import DEMO_KEY_A, SandboxConfig, create_sandbox_app
from appointments_gateway.settings import Settings
from appointments_gateway.state import InMemoryState, SharedState
from tests.conftest import Serve
from tests.schema.conftest import TEST_MAX_ANALYSIS_MS

_REDIS_PREFIXES = itertools.count()

SANDBOX_URL = "http://sandbox.test/v1"
SANDBOX_ROOT = "http://sandbox.test"
#: Seconds between two polls of the replica's appointments.
SYNC_INTERVAL = 0.2
#: Seconds between two polls of the reference and linked kinds (patients among them).
REFERENCE_INTERVAL = 0.5
#: Seconds between two deletion checks (a count of the coverage).
DELETION_CHECK_INTERVAL = 0.5
#: The slack the issue's bound allows on top of an interval (poll latency and the like).
SLACK = 1.0
#: How long a test that only needs a poll (and does not time it) waits for one.
POLL_WAIT = 5.0
#: How long the replica may take to load and settle before a test gives up on it.
LOAD_TIMEOUT = 20.0


T = TypeVar("T")


def parse_time(text: str) -> datetime:
    """A sandbox or GraphQL time (``…Z``) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso(value: datetime) -> str:
    """An aware datetime as GraphQL ``DateTime`` input (UTC, ``Z``)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def day_around(start: str) -> dict[str, str]:
    """A ``startsAt`` range of a day centred on ``start``, both bounds given."""
    at = parse_time(start)
    return {"gte": iso(at - timedelta(hours=12)), "lt": iso(at + timedelta(hours=12))}


def make_sandbox() -> Starlette:
    """A fresh sandbox whose data lies around this week's Monday, with no rate limit."""
    return create_sandbox_app(SandboxConfig(rate_limit_per_minute=0))


def replica_settings(**overrides: Any) -> Settings:
    """Sync on, starting at a key's first read, with the short intervals above."""
    values: dict[str, Any] = {
        "upstream": SANDBOX_URL,
        "api_key": DEMO_KEY_A,
        "upstream_rate_limit": 0,
        "sync": True,
        "sync_start_after": 0,
        "sync_interval": SYNC_INTERVAL,
        "sync_reference_interval": REFERENCE_INTERVAL,
        "sync_deletion_check_interval": DELETION_CHECK_INTERVAL,
        # Not these tests' subject; 30 ms of wall time refused documents on a busy machine.
        "max_analysis_ms": TEST_MAX_ANALYSIS_MS,
    }
    values.update(overrides)
    return Settings(**values)


def basic(key: str) -> dict[str, str]:
    """The ``Authorization`` header a forward-mode caller sends: its key, no password."""
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    *,
    within: float,
    what: str,
    step: float = 0.02,
) -> tuple[T, float]:
    """The first non-``None`` value of ``check()``, and the seconds it took to appear.

    ``check`` is awaited until it answers, at most ``within`` seconds (plus one last try);
    then the test fails saying ``what`` did not happen.
    """
    started = time.monotonic()
    while True:
        value = await check()
        elapsed = time.monotonic() - started
        if value is not None:
            return value, elapsed
        if elapsed > within:
            pytest.fail(f"{what}: not within {within:.1f} s")
        await asyncio.sleep(step)


@dataclass(frozen=True)
class Answer:
    """One GraphQL response, with the parts the replica tests look at."""

    body: dict[str, Any]

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = self.body.get("errors") or []
        return errors

    @property
    def requests(self) -> int:
        requests: int = self.body["extensions"]["upstream"]["requests"]
        return requests

    @property
    def source(self) -> str:
        source: str = self.body["extensions"]["freshness"]["source"]
        return source

    @property
    def codes(self) -> list[str | None]:
        return [(e.get("extensions") or {}).get("code") for e in self.errors]


@dataclass
class Replicated:
    """The gateway (with a replica), its sandbox, and clients for both.

    ``http`` talks to the gateway, ``web`` to the sandbox's web-app door (outside edits,
    no credentials), ``rest`` to the sandbox's API as account A (ground truth that costs
    nothing the gateway counts).
    """

    app: Starlette
    sandbox: Starlette
    http: httpx.AsyncClient
    web: httpx.AsyncClient
    rest: httpx.AsyncClient
    headers: dict[str, str] = field(default_factory=dict)
    account: str = "a"
    #: What a test keeps across the examples of a property that share this gateway
    #: (left out of the repr: Hypothesis prints the fixture with a failing example).
    memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def replicas(self) -> Replicas:
        replicas: Replicas | None = self.app.state.replicas
        assert replicas is not None, "the gateway runs no replicas (sync off?)"
        return replicas

    @property
    def replica(self) -> Replica:
        return self.running()[0]

    @property
    def syncer(self) -> Syncer:
        return self.running()[1]

    def running(self) -> tuple[Replica, Syncer]:
        """The one replica of a service-mode gateway."""
        running = list(self.replicas.replicas())
        assert len(running) == 1, f"expected one replica, found {len(running)}"
        return running[0]

    async def query(
        self,
        document: str,
        variables: dict[str, Any] | None = None,
        *,
        fresh: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """Run an operation; ``fresh`` sends ``Cache-Control: no-cache`` (the upstream path)."""
        sent = {**self.headers, **(headers or {})}
        if fresh:
            sent["Cache-Control"] = "no-cache"
        response = await self.http.post(
            "/graphql", json={"query": document, "variables": variables or {}}, headers=sent
        )
        assert response.status_code == 200, response.text
        answer = Answer(response.json())
        upstream = answer.body["extensions"]["upstream"]
        # The admission bound holds whichever path answers (the replica's reads of a
        # patient whole included).
        if "estimate" in upstream:
            assert upstream["estimate"] >= upstream["requests"], (document, upstream)
        return answer

    async def both(
        self, document: str, variables: dict[str, Any] | None = None
    ) -> tuple[Answer, Answer]:
        """The operation as a normal read, then through the upstream path; same ``data``."""
        local = await self.query(document, variables)
        upstream = await self.query(document, variables, fresh=True)
        assert upstream.source in ("upstream", "none"), upstream.body["extensions"]
        assert local.errors == upstream.errors, (local.errors, upstream.errors)
        assert local.data == upstream.data, document
        return local, upstream

    async def polled_after(self, instant: float, *, within: float = POLL_WAIT) -> float:
        """Wait until a poll of the appointments that started after ``instant`` completed.

        An edit finished at ``instant`` (``time.time()``) is in every such poll's answer.
        Returns the poll's start.  ``within`` is generous: tests that wait for a poll to
        read what it brought are not timing it (the freshness tests bound that).
        """

        async def polled() -> float | None:
            synced = self.replica.sync_instant(APPOINTMENTS)
            return synced if synced is not None and synced > instant else None

        synced, _ = await eventually(polled, within=within, what="a poll of the appointments")
        return synced

    async def settled(self) -> None:
        """Wait until the window is loaded and every row its appointments link to is held."""
        syncer = self.syncer
        try:
            await asyncio.wait_for(syncer.loaded.wait(), LOAD_TIMEOUT)
        except TimeoutError:
            pytest.fail(f"the replica did not load within {LOAD_TIMEOUT:.0f} s")
        replica = syncer.replica

        async def linked() -> bool | None:
            for kind, attribute in LINKS.items():
                held = replica.records[kind]
                for row in replica.appointments.values():
                    link = getattr(row, attribute)
                    if link is not None and link not in held:
                        return None
            return True

        await eventually(linked, within=LOAD_TIMEOUT, what="the replica's linked rows")

    # --- the sandbox's rows ---------------------------------------------------------------

    def rows(self, where: str = "1", *params: object, window: bool = True) -> list[dict[str, Any]]:
        """The account's appointments matching an SQL condition, by start then id.

        ``window``: only those starting inside the replica's coverage, a day clear of its
        ends (so a day's range around each is inside too).
        """
        conn = self.sandbox.state.sandbox.store.conn
        found = [
            dict(row)
            for row in conn.execute(
                f"SELECT * FROM appointments WHERE account = ? AND ({where}) "
                "ORDER BY starts_at, id",
                (self.account, *params),
            )
        ]
        if not window:
            return found
        coverage = self.replica.coverage
        assert coverage is not None
        lo, hi = coverage[0] + timedelta(days=1), coverage[1] - timedelta(days=1)
        return [row for row in found if lo <= parse_time(row["starts_at"]) < hi]

    def live(self, *, days: float = 1.0, skip: int = 0) -> dict[str, Any]:
        """A booked appointment (not cancelled, archived or deleted) in the window.

        It starts ``days`` from now at the earliest (so a day's range around it is well
        inside the coverage); ``skip``: take the one that many rows later.
        """
        earliest = datetime.now(UTC) + timedelta(days=days)
        for row in self.rows("cancelled_at IS NULL AND archived_at IS NULL AND deleted_at IS NULL"):
            if parse_time(row["starts_at"]) >= earliest:
                if skip == 0:
                    return row
                skip -= 1
        raise AssertionError("no booked appointment in the window")

    # --- the web-app door ---------------------------------------------------------------

    async def edit(self, method: str, path: str, body: dict[str, Any] | None = None) -> float:
        """One outside edit through the web-app door; the instant it was done.

        ``path`` is under ``/_sandbox/webapp/<account>/``.
        """
        response = await self.web.request(
            method, f"/_sandbox/webapp/{self.account}/{path}", json=body
        )
        assert response.status_code in (200, 201, 204), response.text
        return time.time()

    async def edit_json(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Like :meth:`edit`, answering the changed row."""
        response = await self.web.request(
            method, f"/_sandbox/webapp/{self.account}/{path}", json=body
        )
        assert response.status_code in (200, 201), response.text
        row: dict[str, Any] = response.json()
        return row


def is_poll(request: httpx.Request) -> bool:
    """The replica's poll of the appointments: ``q[]=updated_at:>=…``."""
    return request.url.path.endswith("/individual_appointments") and any(
        value.startswith("updated_at:") for value in request.url.params.get_list("q[]")
    )


def is_span_read(request: httpx.Request) -> bool:
    """A read of a span of the window, whole pages of it: a load step or a deletion check.

    The sync reads spans as ``starts_at:>=``/``starts_at:<`` with cancelled and archived
    rows, 100 a page, sorted by start (a count asks ``per_page=1``).
    """
    queries = request.url.params.get_list("q[]")
    return (
        request.url.path.endswith("/individual_appointments")
        and request.url.params.get("per_page") == "100"
        and {"cancelled_at:*", "archived_at:*"} <= set(queries)
        and any(q.startswith("starts_at:>=") for q in queries)
        and request.url.params.get("sort", "").startswith("starts_at:")
    )


def is_patient_read(request: httpx.Request) -> bool:
    """A patient's appointments read whole: ``q[]=patient_id:=…`` with hidden rows."""
    queries = request.url.params.get_list("q[]")
    return (
        request.url.path.endswith("/individual_appointments")
        and any(q.startswith("patient_id:=") for q in queries)
        and {"cancelled_at:*", "archived_at:*"} <= set(queries)
    )


class Held(httpx.AsyncBaseTransport):
    """The sandbox, except that answers to chosen requests are held in flight.

    Inside :meth:`holding`, a matching request is answered by the sandbox at once (so the
    answer reflects the data as it was then) and handed back only when the block ends:
    what a slow network does to a request in flight.  The answers are the sandbox's own;
    only their timing is chosen, so a race between the sync and a write can be made to
    happen every run instead of once in a thousand.
    """

    def __init__(self, app: Starlette) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._holds: list[tuple[Callable[[httpx.Request], bool], asyncio.Event, asyncio.Event]]
        self._holds = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        for matches, held, release in list(self._holds):
            if matches(request) and not release.is_set():
                await response.aread()
                held.set()
                await release.wait()
        return response

    @asynccontextmanager
    async def holding(
        self, matches: Callable[[httpx.Request], bool] = is_poll
    ) -> AsyncIterator[asyncio.Event]:
        """Hold the answers of matching requests until the block ends.

        Yields an event set once an answer is being held.
        """
        hold = (matches, asyncio.Event(), asyncio.Event())
        self._holds.append(hold)
        try:
            yield hold[1]
        finally:
            hold[2].set()
            self._holds.remove(hold)


@asynccontextmanager
async def open_replicated(
    serve: Serve,
    sandbox: Starlette | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    headers: dict[str, str] | None = None,
    key: str = DEMO_KEY_A,
    account: str = "a",
    start: bool = True,
    **settings: Any,
) -> AsyncIterator[Replicated]:
    """The gateway over ``sandbox`` (a fresh one by default), lifespan running.

    ``start``: make a first read, which starts the replica (``sync_start_after=0``), and
    wait until it has settled.  ``transport``: the gateway's way to ``sandbox``.
    """
    sandbox = sandbox or make_sandbox()
    app = create_app(
        replica_settings(**settings),
        upstream_transport=transport or httpx.ASGITransport(app=sandbox),
    )
    async with (
        serve(app) as http,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox), base_url=SANDBOX_ROOT) as web,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sandbox),
            base_url=SANDBOX_URL + "/",
            auth=(key, ""),
        ) as rest,
    ):
        gateway = Replicated(
            app=app,
            sandbox=sandbox,
            http=http,
            web=web,
            rest=rest,
            headers=dict(headers or {}),
            account=account,
        )
        if start:
            first = await gateway.query("{ version }")
            assert first.data == {"version": first.data["version"]}
            await gateway.settled()
        yield gateway


@pytest.fixture
async def gw(serve: Serve) -> AsyncIterator[Replicated]:
    """The gateway with account A's replica loaded (service mode)."""
    async with open_replicated(serve) as gateway:
        yield gateway


@pytest.fixture(params=["memory", "redis"])
async def shared_state(request: pytest.FixtureRequest) -> AsyncIterator[SharedState]:
    """The state several gateway processes share (``test_shared_sync.py``).

    Each test runs twice: in memory (one object standing for the store), and in a real
    ``redis-server`` through ``RedisState`` with a prefix of its own.
    """
    if request.param == "memory":
        yield InMemoryState()
        return
    server = request.getfixturevalue("redis_server")
    state = RedisState(server.url, prefix=f"replica{next(_REDIS_PREFIXES)}")
    yield state
    await state.aclose()
