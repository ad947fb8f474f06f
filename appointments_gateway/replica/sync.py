"""Keeping one replica fresh: the initial load, the ``updated_at`` polls, deletion checks.

One task per replica (:meth:`Syncer.run`) takes, step by step, the most urgent piece of
work that is due (:meth:`Syncer._round` gives the order):

1. **Poll appointments** every ``interval`` seconds: ``q[]=updated_at:>=T`` with
   ``cancelled_at:*``, ``archived_at:*`` and ``deleted_at:*`` (hidden rows are the point),
   sorted by ``updated_at`` then id, every page.  ``T`` is this poll's predecessor's start
   minus :data:`CLOCK_SKEW_SECONDS`: Cliniko stamps whole seconds, and its clock may lag
   ours, so each poll fetches the last few seconds again (one page; rows equal to those
   held change nothing).  Each row is applied as :meth:`Replica.apply_appointment` says:
   an edit, cancellation or archive replaces the row (cancelled and archived rows stay,
   hidden by default), a soft deletion (``deleted_at``) leaves a tombstone, a move out of
   the window drops the row and a move into it adds it: the poll is not restricted to
   the window.
2. **Reference data**: businesses, active and inactive practitioners and appointment
   types read whole once, then, like patients and patient cases (applied to those held),
   polled by ``updated_at`` every ``reference_interval``: one feed per list
   (:class:`_Feed`), one request per step.
3. **Linked rows**: the patients, patient cases (and any reference row) the held
   appointments link to but the replica lacks, by id, 100 per request.
4. **Load** the window nearest to now first, one request per step: a page of 100 rows
   sorted away from the coverage, which then grows to the last row's start
   (:meth:`Syncer._extend`): every step is one answer, never half applied.  It starts
   half a day back, so every time zone's "today" comes early.
5. **Patients read whole** on request (``want_patient``): every appointment of a patient
   whose appointments a read asked for, so the next such read is local.
6. **Deletion check** every ``deletion_check_interval``: the coverage's row count
   upstream (one ``per_page=1`` request) against the replica's.  A deletion that the
   ``updated_at`` poll cannot see (a row removed outright) makes them differ; the span is
   then halved, counting each half, until a span of at most a page differs, which is read
   again whole (:meth:`Replica.replace_span`).

Every request goes through a *background* session (``Governor.acquire_background``),
within the sync's share of the key's budget.  Normally it takes only what interactive
reads leave and never waits: a refused poll stretches the appointments' interval
(doubling, up to :data:`MAX_STRETCH`), and each poll that gets through halves it again.

Two kinds of request instead wait their turn in the key's queue like a read (one at a
time, at most :data:`URGENT_QUEUE_SECONDS`): the **load** (with its linked rows), and a
**poll** when the last one is older than half of ``max_staleness``.  Without that, a key
whose reads use the whole budget (a front desk of a hundred, all reading upstream while
the replica is empty) would never load the replica that ends the pressure, and a loaded
replica under sustained pressure would go stale and send every read upstream again.
The price is one read's slot per such request, only while the pressure lasts.

**Every change a step makes is a value** (``changes.py``) applied by :meth:`Syncer.apply`,
and handed to :attr:`Syncer.journal` when one is set: with a shared state (``shared.py``)
the process that holds the credential's lease publishes it, and the others apply the same
value with the same method (``mirrored``), so their replicas and their sync positions (the
feeds' cursors) follow the holder's.  While another process syncs, what reads ask of this
sync (a patient read whole, a poll at once) goes to it through :attr:`Syncer.asks`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, Protocol, TypeVar

from appointments_gateway.upstream import (
    APPOINTMENT_LIST,
    APPOINTMENT_TYPE_LIST,
    BUSINESS_LIST,
    PATIENT_CASE_LIST,
    PATIENT_LIST,
    PRACTITIONER_LIST,
    AppointmentRecord,
    BackgroundShareSpent,
    ClinikoSession,
    Filter,
    FilterSpec,
    Page,
    RateBudgetExhausted,
    UpstreamError,
    UpstreamForbidden,
    UpstreamUnauthenticated,
)

from .changes import (
    Bye,
    Change,
    Coverage,
    FeedLoaded,
    Linked,
    PatientRead,
    Polled,
    Span,
    Trim,
    WindowLoaded,
)
from .events import AppointmentEvent
from .store import (
    APPOINTMENTS,
    CLOCK_SKEW_SECONDS,
    LINKED_KINDS,
    LINKS,
    REFERENCE_KINDS,
    Replica,
)

__all__ = [
    "BY_START",
    "CLOCK_SKEW_SECONDS",
    "SyncConfig",
    "SyncPosition",
    "SyncStats",
    "Syncer",
    "whole_patient",
]

logger = logging.getLogger("appointments_gateway.replica")

#: The appointments' interval grows at most to this many times its setting under pressure.
MAX_STRETCH = 12
#: Pages one poll reads at most; the next poll continues from the newest row seen.
MAX_POLL_PAGES = 10
_PER_PAGE = 100
_HOUR = timedelta(hours=1)
_HALF_DAY = timedelta(hours=12)
#: While the coverage is this short, linked rows are fetched span by span (today first).
_EARLY_SPAN = timedelta(days=3)
#: Background tokens bulk work (reference data, deletion checks, patients) leaves for the
#: appointments' polls, which keep the replica fresh.
POLL_TOKENS = 2
#: How long a load step or a nearly stale poll waits in the key's queue at most.
URGENT_QUEUE_SECONDS = 10.0

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """How one replica is kept (settings ``GATEWAY_SYNC_*``)."""

    interval: float = 5.0
    reference_interval: float = 60.0
    deletion_check_interval: float = 60.0
    days_back: int = 30
    days_ahead: int = 120
    #: Reads are answered from the replica only while its sync is at most this old.
    max_staleness: float = 30.0


@dataclass(slots=True)
class SyncStats:
    """Counters of one process's syncs, read by the metrics when scraped."""

    requests: dict[str, int]
    failures: int = 0
    deletions_found: int = 0

    @classmethod
    def empty(cls) -> SyncStats:
        return cls(requests={})

    def count(self, what: str, n: int = 1) -> None:
        self.requests[what] = self.requests.get(what, 0) + n


@dataclass(frozen=True, slots=True)
class SyncPosition:
    """Where a sync stands (:meth:`Syncer.position`), beside its replica's rows.

    ``since``: each feed's next ``updated_at`` cursor (UNIX seconds); ``feeds``: each
    feed's last whole poll; ``loaded_feeds``: reference feeds read whole once;
    ``loaded``: the window is loaded.
    """

    since: dict[str, float]
    feeds: dict[str, float]
    loaded_feeds: tuple[str, ...]
    loaded: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "feeds": self.feeds,
            "loaded_feeds": list(self.loaded_feeds),
            "loaded": self.loaded,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SyncPosition:
        return cls(
            since={str(k): float(v) for k, v in data["since"].items()},
            feeds={str(k): float(v) for k, v in data["feeds"].items()},
            loaded_feeds=tuple(data["loaded_feeds"]),
            loaded=bool(data["loaded"]),
        )


#: The order spans and patients are read in (the id tie-breaker keeps pages stable).
BY_START: Final = ("starts_at:asc", "id:asc")


def whole_patient(patient_id: str) -> list[Filter]:
    """Every appointment of one patient, cancelled and archived ones too."""
    return [
        APPOINTMENT_LIST.where("patient_id", "=", patient_id),
        APPOINTMENT_LIST.where("cancelled_at", "*"),
        APPOINTMENT_LIST.where("archived_at", "*"),
    ]


class _Lister(Protocol, Generic[R]):
    def __call__(
        self, *, page: int, per_page: int, filters: Sequence[Filter], sort: Sequence[str]
    ) -> Awaitable[Page[R]]: ...


@dataclass(frozen=True, slots=True)
class _Feed:
    """One list the sync polls by ``updated_at``: its own cursor, due time and instant."""

    name: str
    kind: str
    lister: _Lister[Any]
    spec: FilterSpec
    hidden: tuple[str, ...] = ()


class Syncer:
    """The task that keeps one replica fresh; see the module docstring.

    Args:
        replica: what it fills.
        session: a background session of the replica's credential, for the polls.
        bulk: one that leaves :data:`POLL_TOKENS` to them, for everything else.
        urgent: one that waits its turn with the reads (``background_queue``), for the
            load and for a poll about to go stale (see the module docstring).
        config: intervals and window.
        stats: process-wide counters.
        clock: UNIX seconds.
    """

    def __init__(
        self,
        replica: Replica,
        session: ClinikoSession,
        bulk: ClinikoSession,
        urgent: ClinikoSession,
        config: SyncConfig,
        stats: SyncStats,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.replica = replica
        self._session = session
        self._bulk = bulk
        self._urgent = urgent
        self.config = config
        self.stats = stats
        self._clock = clock
        started = clock()
        self._since: dict[str, float] = {}
        self._due: dict[str, float] = {}
        self._stretch = 1
        self._wake = asyncio.Event()
        self._patients: dict[str, None] = {}
        #: The current poll was refused at least once (its interval stretched once).
        self._poll_refused = False
        #: Linked ids the upstream does not return: not asked again and again.
        self._unknown: dict[str, set[str]] = {}
        #: The replica's version when linked rows were last found complete.
        self._linked_version = -1
        self._loaded_feeds: set[str] = set()
        self._feed = self._feeds(bulk)
        self._urgent_feed = self._feeds(urgent)
        #: Steps refused by the budget, held until their token is due.
        self._held: dict[str, float] = {}
        self._feed_synced = {name: started for name in self._feed}
        #: Set once the whole window is loaded (tests and benchmarks wait for it).
        self.loaded = asyncio.Event()
        #: Seconds the appointments' poll waits now (the interval, stretched under pressure).
        self.current_interval = config.interval
        #: Given every change this sync applies, after it is applied (``shared.py``).
        self.journal: Callable[[Change], None] | None = None
        #: Given the appointments' events (``events.py``) of every change applied here,
        #: whoever made it, and of the writes and reads that changed rows (live updates).
        self.on_events: Callable[[list[AppointmentEvent]], None] | None = None
        #: While another process syncs this credential (``shared.py``): what reads ask
        #: of the sync, ``("patient", id)`` or ``("poll", "")``, for it to forward.
        self.asks: list[tuple[str, str]] | None = None
        #: When a write last asked for a poll (a mirrored poll that started before it
        #: does not clear ``appointments_dirty``).
        self._poll_asked = 0.0
        # Every row fetched from now on reflects every change before ``started``.
        for kind in (APPOINTMENTS, *REFERENCE_KINDS, *LINKED_KINDS):
            replica.mark_synced(kind, started)
        for name in (APPOINTMENTS, *self._feed):
            self._since[name] = started - CLOCK_SKEW_SECONDS

    # --- asked by reads -----------------------------------------------------------

    def want_patient(self, patient_id: str) -> None:
        """A read asked for a patient's appointments: read them whole soon."""
        if self.asks is not None:
            if len(self.asks) < 100:
                self.asks.append(("patient", patient_id))
            return
        if len(self._patients) < 100:
            self._patients[patient_id] = None
            self._wake.set()

    def poll_soon(self) -> None:
        """A write changed rows its answer does not show: poll at once."""
        self._poll_asked = self._clock()
        if self.asks is not None and len(self.asks) < 100:
            self.asks.append(("poll", ""))
        self._due[APPOINTMENTS] = 0.0
        self._wake.set()

    # --- changes ------------------------------------------------------------------

    def _change(self, change: Change) -> None:
        self.apply(change)
        if self.journal is not None:
            self.journal(change)

    def apply(self, change: Change, *, mirrored: bool = False) -> None:
        """Apply one change to the replica and to this sync's position (its cursors).

        ``mirrored``: another process's sync made it (``shared.py``).  Its cursors are
        then taken as they are, not merged with this one's: they are where that sync
        stands, which is where this one continues should it take over.  And a poll that
        started before a write here asked for one does not clear ``appointments_dirty``.
        """
        replica = self.replica
        match change:
            case Polled(feed, kind, rows, whole, started, since):
                if kind == APPOINTMENTS:
                    for row in rows:
                        replica.apply_appointment(row)
                    if whole:
                        if not mirrored or started >= self._poll_asked:
                            replica.appointments_dirty = False
                        replica.mark_synced(APPOINTMENTS, started)
                else:
                    only_held = kind in LINKED_KINDS
                    for row in rows:
                        replica.apply_record(kind, row, only_held=only_held)
                    if whole:
                        self._synced(feed, kind, started)
                self._since[feed] = since if mirrored else max(self._since[feed], since)
            case FeedLoaded(feed, kind, rows, started):
                for row in rows:
                    replica.apply_record(kind, row)
                self._synced(feed, kind, started)
                self._loaded_feeds.add(feed)
            case Linked(kind, rows):
                for row in rows:
                    replica.apply_record(kind, row)
            case Coverage(low, high):
                replica.extend_coverage(low, high)
            case Span(low, high, rows, extend):
                if extend:
                    replica.extend_coverage(low, high)
                replica.replace_span(low, high, rows)
            case Trim(low):
                replica.trim_coverage(low)
            case PatientRead(patient_id, rows):
                replica.complete_patient(patient_id, rows)
            case WindowLoaded():
                self.loaded.set()
            case Bye():
                pass
        self.emit()

    def emit(self) -> None:
        """Hand the replica's events noted since the last call to :attr:`on_events`."""
        events = self.replica.take_events()
        if events and self.on_events is not None:
            self.on_events(events)

    def position(self) -> SyncPosition:
        """Where this sync stands: what a process taking it over continues from."""
        return SyncPosition(
            since=dict(self._since),
            feeds=dict(self._feed_synced),
            loaded_feeds=tuple(sorted(self._loaded_feeds)),
            loaded=self.loaded.is_set(),
        )

    def adopt(self, position: SyncPosition) -> None:
        """Stand where another process's sync stood (with its replica's rows, restored)."""
        self._since.update((k, v) for k, v in position.since.items() if k in self._since)
        self._feed_synced.update(
            (k, v) for k, v in position.feeds.items() if k in self._feed_synced
        )
        self._loaded_feeds = {f for f in position.loaded_feeds if f in self._feed}
        if position.loaded:
            self.loaded.set()
        else:
            self.loaded.clear()
        self._linked_version = -1

    # --- the loop -----------------------------------------------------------------

    async def run(self) -> None:
        """Sync until cancelled, or until the credential is refused (401/403)."""
        while True:
            try:
                worked = await self._round()
            except (UpstreamUnauthenticated, UpstreamForbidden):
                logger.warning("replica sync stopped: the upstream refused the credential")
                return
            except UpstreamError:
                # An upstream fault (timeout, 5xx, a 429 that paused the key): back off.
                self.stats.failures += 1
                self._stretched()
                await asyncio.sleep(self.current_interval)
                continue
            if worked:
                continue
            waits = [*self._due.values(), *self._held.values()]
            pause = max(0.05, min(waits, default=1.0) - self._clock())
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=min(pause, 1.0))
            except TimeoutError:
                pass

    def _stretched(self) -> None:
        self._stretch = min(MAX_STRETCH, self._stretch * 2)
        self.current_interval = self.config.interval * self._stretch

    async def _round(self) -> bool:
        """Do the most urgent step that is due and gets budget; whether one did.

        Steps in order: the appointments' poll, the reference data's first load, the
        feeds' polls, linked rows, the next span of the window, patients read whole, the
        deletion check.  A step refused by the budget is held until its token is due and
        the next one is tried, so one starved step never blocks the others; a refused
        poll also stretches the interval.  The nearest days' linked rows come before the
        next span, so today's calendar is whole before the far window is loaded.
        """
        now = self._clock()
        loading = not self.loaded.is_set()
        for name, step in self._steps(now, loading):
            if self._held.get(name, 0.0) > now:
                continue
            try:
                if await step():
                    self._held.pop(name, None)
                    return True
            except RateBudgetExhausted as refused:
                self._held[name] = now + max(0.2, refused.retry_after_seconds or 0.0)
                pressure = not isinstance(refused, BackgroundShareSpent)
                if name == APPOINTMENTS and pressure and not self._poll_refused:
                    self._poll_refused = True
                    self._stretched()
        return False

    def _steps(
        self, now: float, loading: bool
    ) -> Iterator[tuple[str, Callable[[], Awaitable[bool]]]]:
        if self._due.get(APPOINTMENTS, 0.0) <= now:
            yield APPOINTMENTS, self._poll_step
        for feed in self._urgent_feed.values():
            if feed.kind in REFERENCE_KINDS and feed.name not in self._loaded_feeds:
                yield f"load:{feed.name}", functools.partial(self._load_step, feed)
        for feed in self._feed.values():
            if self._due.get(feed.name, 0.0) <= now:
                yield feed.name, functools.partial(self._feed_step, feed)
        yield "linked", functools.partial(self._fetch_linked, loading=loading)
        if loading:
            yield "extend", self._extend
        if self._patients:
            yield "patients", self._patient_step
        if not loading:
            # The window moves with the clock: an hour's worth is due every hour.
            yield "slide", self._extend
        if self._due.get("deletions", 0.0) <= now:
            yield "deletions", self._deletions_step

    async def _poll_step(self) -> bool:
        await self._poll_appointments()
        # Under pressure each refused poll doubles the interval once; a poll that got
        # through at its first try halves it again, so it recovers step by step.
        if not self._poll_refused:
            self._stretch = max(1, self._stretch // 2)
        self._poll_refused = False
        self.current_interval = self.config.interval * self._stretch
        self._due[APPOINTMENTS] = self._clock() + self.current_interval
        return True

    async def _load_step(self, feed: _Feed) -> bool:
        await self._load_feed(feed)
        self._due[feed.name] = self._clock() + self.config.reference_interval
        return True

    async def _feed_step(self, feed: _Feed) -> bool:
        if feed.kind in REFERENCE_KINDS and feed.name not in self._loaded_feeds:
            return False  # its first load comes first
        await self._poll_feed(feed)
        self._due[feed.name] = self._clock() + self.config.reference_interval
        return True

    async def _patient_step(self) -> bool:
        patient_id = next(iter(self._patients))
        await self._read_patient(patient_id)
        del self._patients[patient_id]
        return True

    async def _deletions_step(self) -> bool:
        if self.replica.coverage is None:
            return False
        await self._check_deletions()
        self._due["deletions"] = self._clock() + self.config.deletion_check_interval
        return True

    # --- appointments -------------------------------------------------------------

    async def _poll_appointments(self) -> None:
        started = self._clock()
        synced = self.replica.sync_instant(APPOINTMENTS) or started
        stale_soon = started - synced > self.config.max_staleness / 2
        session = self._urgent if stale_soon else self._session
        rows, whole, since = await self._changed(
            "appointments",
            APPOINTMENTS,
            session.appointments.list,
            APPOINTMENT_LIST,
            hidden=("cancelled_at", "archived_at", "deleted_at"),
            started=started,
        )
        self._change(Polled(APPOINTMENTS, APPOINTMENTS, tuple(rows), whole, started, since))

    def _window(self) -> tuple[datetime, datetime, datetime]:
        """Now, and the window's two ends (whole hours, so bounds are whole seconds)."""
        now = datetime.fromtimestamp(self._clock(), UTC).replace(minute=0, second=0, microsecond=0)
        config = self.config
        return now, now - timedelta(days=config.days_back), now + timedelta(days=config.days_ahead)

    async def _extend(self) -> bool:
        """Load the next rows of the window, on the side nearer to now; whether any were due.

        One request per step, of one page (100 rows) sorted away from the coverage: the
        coverage grows up to the last row's start (exclusive), or to the window's edge
        when the page holds every row before it.  A step is one answer, so it is never
        half applied, and a refused step loses nothing.
        """
        replica = self.replica
        now, far_back, far_ahead = self._window()
        if replica.coverage is None:
            # The first step starts half a day back: every time zone's "today" early.
            self._change(Coverage(now - _HALF_DAY, now - _HALF_DAY))
        assert replica.coverage is not None
        lo, hi = replica.coverage
        if lo < far_back - _HOUR:
            self._change(Trim(far_back))
            lo = far_back
        ahead_due, back_due = hi < far_ahead, lo > far_back
        if not ahead_due and not back_due:
            if not self.loaded.is_set():
                self._change(WindowLoaded())
            return False
        forward = ahead_due and (not back_due or hi - now <= now - lo)
        low, high = (hi, far_ahead) if forward else (far_back, lo)
        sort = BY_START if forward else ["starts_at:desc", "id:desc"]
        session = self._bulk if self.loaded.is_set() else self._urgent
        page = await session.appointments.list(
            page=1, per_page=_PER_PAGE, filters=self._span_filters(low, high), sort=sort
        )
        self.stats.count("load")
        rows = list(page.items)
        if page.total_entries > len(rows) and rows:
            # Cut at the last row's start: every row before it is in this page.
            edge = rows[-1].starts_at
            if forward:
                high = edge
                rows = [r for r in rows if r.starts_at < edge]
            else:
                low = edge + timedelta(seconds=1)
                rows = [r for r in rows if r.starts_at >= low]
            if high <= low:
                # 100 rows start in the same second: load that second alone, whole.
                low, high = edge, edge + timedelta(seconds=1)
                rows = await self._span_rows(low, high, "load")
        # Covered and filled in one step (one change), so no read sees the span covered
        # but empty.
        self._change(Span(low, high, tuple(rows), extend=True))
        return True

    def _span_filters(self, low: datetime, high: datetime) -> list[Filter]:
        return [
            APPOINTMENT_LIST.where("starts_at", ">=", low),
            APPOINTMENT_LIST.where("starts_at", "<", high),
            APPOINTMENT_LIST.where("cancelled_at", "*"),
            APPOINTMENT_LIST.where("archived_at", "*"),
        ]

    async def _span_rows(self, low: datetime, high: datetime, what: str) -> list[AppointmentRecord]:
        return await self._all_pages(
            what,
            self._bulk.appointments.list,
            self._span_filters(low, high),
            BY_START,
        )

    async def _read_patient(self, patient_id: str) -> None:
        rows = await self._all_pages(
            "patient", self._bulk.appointments.list, whole_patient(patient_id), BY_START
        )
        self._change(PatientRead(patient_id, tuple(rows)))

    async def _check_deletions(self) -> None:
        coverage = self.replica.coverage
        if coverage is None:
            return
        await self._reconcile(*coverage, depth=0)

    async def _reconcile(self, low: datetime, high: datetime, *, depth: int) -> None:
        held = [r for r in self.replica.starting_between(low, high) if r.starts_at < high]
        upstream = await self._count(low, high)
        if upstream == len(held):
            return
        if len(held) <= _PER_PAGE or high - low <= _HOUR or depth >= 12:
            rows = await self._span_rows(low, high, "deletions")
            before = len(self.replica.appointments)
            self._change(Span(low, high, tuple(rows), extend=False))
            self.stats.deletions_found += max(0, before - len(self.replica.appointments))
            return
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        await self._reconcile(low, middle, depth=depth + 1)
        await self._reconcile(middle, high, depth=depth + 1)

    async def _count(self, low: datetime, high: datetime) -> int:
        filters = self._span_filters(low, high)
        page = await self._bulk.appointments.list(page=1, per_page=1, filters=filters)
        self.stats.count("deletions")
        return page.total_entries

    # --- reference and linked rows ------------------------------------------------

    def _feeds(self, s: ClinikoSession) -> dict[str, _Feed]:
        async def inactive(
            *, page: int, per_page: int, filters: Sequence[Filter], sort: Sequence[str]
        ) -> Page[Any]:
            return await s.practitioners.list(
                page=page, per_page=per_page, filters=filters, sort=sort, inactive=True
            )

        archived = ("archived_at",)
        feeds = (
            _Feed("businesses", "businesses", s.businesses.list, BUSINESS_LIST, archived),
            # Practitioners are never archived, only inactive: two lists, two feeds.
            _Feed("practitioners", "practitioners", s.practitioners.list, PRACTITIONER_LIST),
            _Feed("practitioners_inactive", "practitioners", inactive, PRACTITIONER_LIST),
            _Feed(
                "appointment_types",
                "appointment_types",
                s.appointment_types.list,
                APPOINTMENT_TYPE_LIST,
                archived,
            ),
            _Feed("patients", "patients", s.patients.list, PATIENT_LIST, archived),
            _Feed(
                "patient_cases", "patient_cases", s.patient_cases.list, PATIENT_CASE_LIST, archived
            ),
        )
        return {feed.name: feed for feed in feeds}

    async def _load_feed(self, feed: _Feed) -> None:
        """Every row of a reference feed (all its pages)."""
        started = self._clock()
        filters = [feed.spec.where(column, "*") for column in feed.hidden]
        rows = await self._all_pages("reference", feed.lister, filters, ["id:asc"])
        self._change(FeedLoaded(feed.name, feed.kind, tuple(rows), started))

    async def _poll_feed(self, feed: _Feed) -> None:
        started = self._clock()
        rows, whole, since = await self._changed(
            "reference", feed.name, feed.lister, feed.spec, hidden=feed.hidden, started=started
        )
        self._change(Polled(feed.name, feed.kind, tuple(rows), whole, started, since))

    def _synced(self, feed: str, kind: str, instant: float) -> None:
        """A feed is current as of ``instant``; its kind as of its oldest feed."""
        self._feed_synced[feed] = instant
        self.replica.mark_synced(
            kind,
            min(self._feed_synced[f.name] for f in self._feed.values() if f.kind == kind),
        )

    async def _fetch_linked(self, *, loading: bool) -> bool:
        """Fetch one kind's rows that held appointments link to and the replica lacks.

        While the window loads, only a full request's worth (100 ids), or the rows that
        the first days (today's calendar, loaded first) link to: the rest wait for the
        end of the load, so it costs a request per 100 rows, not one per span.
        """
        replica = self.replica
        if replica.version == self._linked_version:
            return False  # nothing changed since the last look found nothing to fetch
        s = self._urgent if loading else self._bulk
        wanted: dict[str, set[str]] = {}
        for kind, attribute in LINKS.items():
            rows = replica.records[kind]
            missing = {
                i
                for r in replica.appointments.values()
                if (i := getattr(r, attribute)) is not None and i not in rows
            } - self._unknown.get(kind, set())
            if missing:
                wanted[kind] = missing
        coverage = replica.coverage
        early = coverage is not None and coverage[1] - coverage[0] <= _EARLY_SPAN
        if loading and not early:
            wanted = {k: ids for k, ids in wanted.items() if len(ids) >= _PER_PAGE}
        if not wanted:
            if not loading:
                self._linked_version = replica.version
            return False
        kind, ids = next(iter(wanted.items()))
        chunk = sorted(ids)[:_PER_PAGE]
        fetchers: dict[str, Callable[[list[str]], Awaitable[dict[str, Any]]]] = {
            "patients": lambda i: s.patients.by_ids(i, include_archived=True),
            "patient_cases": lambda i: s.patient_cases.by_ids(i, include_archived=True),
            "practitioners": s.practitioners.by_ids,
            "businesses": lambda i: s.businesses.by_ids(i, include_archived=True),
            "appointment_types": lambda i: s.appointment_types.by_ids(i, include_archived=True),
        }
        found = await fetchers[kind](chunk)
        self.stats.count("linked")
        self._change(Linked(kind, tuple(found.values())))
        # Ids the upstream does not have (or hides) are not asked again and again.
        self._unknown.setdefault(kind, set()).update(i for i in chunk if i not in found)
        return True

    # --- paging helpers -----------------------------------------------------------

    async def _changed(
        self,
        what: str,
        feed: str,
        lister: _Lister[R],
        spec: FilterSpec,
        *,
        hidden: Sequence[str],
        started: float,
    ) -> tuple[list[R], bool, float]:
        """Rows changed since the feed's last poll (oldest first), whether all, next cursor.

        "All" unless cut at :data:`MAX_POLL_PAGES`.  The next cursor (where the next poll
        starts) is applied with the rows, by :meth:`apply`.

        The next poll starts :data:`CLOCK_SKEW_SECONDS` before this one did, so it asks
        for an overlap of a few seconds (one page, the rows equal to those held); when
        this one stopped at :data:`MAX_POLL_PAGES`, it continues from the newest row.
        """
        since = datetime.fromtimestamp(self._since[feed], UTC).replace(microsecond=0)
        filters = [spec.where("updated_at", ">=", since), *(spec.where(c, "*") for c in hidden)]
        rows = await self._all_pages(
            what, lister, filters, ["updated_at:asc", "id:asc"], max_pages=MAX_POLL_PAGES
        )
        whole = len(rows) < MAX_POLL_PAGES * _PER_PAGE
        if whole:
            next_since = started - CLOCK_SKEW_SECONDS
        else:
            newest: datetime = getattr(rows[-1], "updated_at", None) or since
            next_since = newest.timestamp() - 1.0
        return rows, whole, max(self._since[feed], next_since)

    async def _all_pages(
        self,
        what: str,
        lister: _Lister[R],
        filters: Sequence[Filter],
        sort: Sequence[str],
        *,
        max_pages: int | None = None,
    ) -> list[R]:
        first = await lister(page=1, per_page=_PER_PAGE, filters=filters, sort=sort)
        self.stats.count(what)
        rows = list(first.items)
        pages = math.ceil(first.total_entries / _PER_PAGE)
        if max_pages is not None:
            pages = min(pages, max_pages)
        for number in range(2, pages + 1):
            page = await lister(page=number, per_page=_PER_PAGE, filters=filters, sort=sort)
            self.stats.count(what)
            rows.extend(page.items)
        return rows
