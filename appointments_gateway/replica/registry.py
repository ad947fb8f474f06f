"""Every credential's replica in one process: when one starts, and when it goes.

**When a replica starts** (it pays off): once a credential's reads have spent
``start_after`` upstream requests within :data:`START_WINDOW_SECONDS`.  A replica's first
span costs a few requests and its upkeep about 20 a minute, so a key that makes one query,
or a few a day, never pays for one; a key that keeps reading (a front desk) pays for its
load within its first minutes and from then on spends its budget on changes, not reads.
In forward mode each caller's key has its own replica, loaded and kept from that key's own
budget (its sync runs on a session of that credential).  ``start_after=0`` starts one on
a credential's first read.

**When it goes**: after ``idle`` seconds without a read, and, beyond ``max_keys``
replicas, the least recently read one.  Its task is cancelled and its rows dropped with it;
nothing is written anywhere (with a shared state, a holder gives its lease up first).

**With a shared state** (``shared=``, Redis across instances and workers) each replica's
task is a :class:`~appointments_gateway.replica.shared.SharedSync` instead of a bare sync:
one process per credential holds a lease and syncs, the others apply its change feed
(``shared.py`` says how, and why nothing is lost when the lease changes hands).  Without
one (the default) every replica syncs itself, as a single process does.

**Watchers** (:meth:`Replicas.watch`) are told the appointments' events (``events.py``)
that the changes applied to a replica in this process (by its own sync or, through the
feed, another's), and this process's writes and reads, made: what live updates
(subscriptions, ``resolvers/live.py``) deliver.  Holder, follower, alone or
single process, each process's replica derives them as it applies rows, so each change
is told once per process, wherever it was first seen.

**Pins** (:meth:`Replicas.pin`): a credential with live subscribers keeps its replica
however long it goes without a read; it is neither dropped as idle nor evicted beyond
``max_keys`` (at most ``max_keys`` credentials can be pinned at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from appointments_gateway.state import SharedState
from appointments_gateway.upstream import Credential, UpstreamClient

from .events import AppointmentEvent
from .shared import FeedConfig, FeedStats, Role, SharedSync
from .store import APPOINTMENTS, Replica
from .sync import POLL_TOKENS, URGENT_QUEUE_SECONDS, SyncConfig, Syncer, SyncStats
from .view import ReadStats, ReplicaView

__all__ = ["START_WINDOW_SECONDS", "PinRefused", "Replicas", "Watcher"]

logger = logging.getLogger("appointments_gateway.replica")

#: The span over which a credential's upstream read requests count towards starting.
START_WINDOW_SECONDS = 300.0
#: Credentials whose recent reads are counted at once (a bound on that bookkeeping).
_MAX_COUNTED = 10_000
_REAP_EVERY = 30.0

#: Told ``(fingerprint, changes)`` for each batch of changes applied to a replica.
#: Told ``(fingerprint, events)`` for the appointments that changed in a replica.
Watcher = Callable[[str, Sequence[AppointmentEvent]], None]


class PinRefused(Exception):
    """``max_keys`` credentials are pinned already: no replica for another one."""


@dataclass(slots=True)
class _Running:
    replica: Replica
    syncer: Syncer
    task: asyncio.Task[None]
    #: With a shared state: what this process does for the credential.
    shared: SharedSync | None = None


class Replicas:
    """The replicas of this process, one per credential fingerprint.

    Args:
        upstream: the process's client; each sync gets a background session from it.
        config: how every replica is kept.
        max_keys: replicas kept at once (least recently read goes).
        idle: seconds without a read before a replica is dropped.
        start_after: upstream read requests within :data:`START_WINDOW_SECONDS` that
            start a credential's replica.
        clock: UNIX seconds.
        shared: the state shared with the other processes (one sync per credential
            among them); ``None``: each replica syncs itself.
        instance: a label for log lines (never a credential).
        feed: lease, feed and snapshot timings (with ``shared``).
    """

    def __init__(
        self,
        upstream: UpstreamClient,
        config: SyncConfig,
        *,
        max_keys: int = 50,
        idle: float = 900.0,
        start_after: int = 10,
        clock: Callable[[], float] = time.time,
        shared: SharedState | None = None,
        instance: str | None = None,
        feed: FeedConfig | None = None,
    ) -> None:
        self._upstream = upstream
        self.config = config
        self.max_keys = max_keys
        self.idle = idle
        self.start_after = start_after
        self._clock = clock
        self._running: OrderedDict[str, _Running] = OrderedDict()
        self._spent: OrderedDict[str, deque[tuple[float, int]]] = OrderedDict()
        self._reaper: asyncio.Task[None] | None = None
        self.sync_stats = SyncStats.empty()
        self.read_stats = ReadStats()
        self.started = 0
        self.dropped = 0
        self.shared = shared
        self.instance = instance
        self.feed_config = feed or FeedConfig()
        self.feed_stats = FeedStats()
        self._watchers: list[Watcher] = []
        #: Fingerprint → how many live subscriptions hold its replica.
        self._pins: dict[str, int] = {}

    # --- reads --------------------------------------------------------------------

    def view(self, credential: Credential) -> ReplicaView | None:
        """The credential's replica for one request, if it runs."""
        running = self._running.get(credential.fingerprint)
        if running is None:
            return None
        if running.task.done():
            self._drop(credential.fingerprint)
            return None
        self._running.move_to_end(credential.fingerprint)
        running.replica.touch()
        return ReplicaView(running.replica, running.syncer, self.config, self.read_stats)

    def note_reads(self, credential: Credential, requests: int) -> None:
        """A read of ``credential`` spent ``requests`` upstream; start its replica if due."""
        key = credential.fingerprint
        if key in self._running:
            return
        now = self._clock()
        spent = self._spent.get(key)
        if spent is None:
            spent = self._spent[key] = deque()
            while len(self._spent) > _MAX_COUNTED:
                self._spent.popitem(last=False)
        else:
            self._spent.move_to_end(key)
        if requests:
            spent.append((now, requests))
        while spent and spent[0][0] < now - START_WINDOW_SECONDS:
            spent.popleft()
        if sum(n for _, n in spent) >= self.start_after:
            del self._spent[key]
            self.start(credential)

    def start(self, credential: Credential) -> None:
        """Start the credential's replica now (no-op when it runs)."""
        key = credential.fingerprint
        if key in self._running:
            return
        replica = Replica(clock=self._clock)
        upstream = self._upstream
        syncer = Syncer(
            replica,
            # The polls wait in line for the sync's share (behind a load step, say),
            # never for the reads' budget.
            upstream.session(
                credential, background=True, background_share_wait=self.config.interval
            ),
            upstream.session(credential, background=True, background_keep=POLL_TOKENS),
            upstream.session(
                credential,
                background=True,
                background_keep=POLL_TOKENS,
                background_queue=URGENT_QUEUE_SECONDS,
            ),
            self.config,
            self.sync_stats,
            clock=self._clock,
        )
        syncer.on_events = functools.partial(self._events, key)
        shared: SharedSync | None = None
        if self.shared is None:
            task = asyncio.create_task(syncer.run(), name="replica-sync")
        else:
            shared = SharedSync(
                key,
                replica,
                syncer,
                self.shared,
                self.feed_config,
                self.feed_stats,
                instance=self.instance,
            )
            task = asyncio.create_task(shared.run(), name="replica-shared")
        self._running[key] = _Running(replica, syncer, task, shared)
        self.started += 1
        logger.info("replica started")
        while len(self._running) > self.max_keys:
            unpinned = [k for k in self._running if k not in self._pins]
            if not unpinned:
                break
            self._drop(unpinned[0])
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap(), name="replica-reaper")

    # --- changes ------------------------------------------------------------------

    def watch(self, watcher: Watcher) -> Callable[[], None]:
        """Tell ``watcher`` the appointments' events of every replica; returns its removal."""
        self._watchers.append(watcher)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._watchers.remove(watcher)

        return remove

    def _events(self, key: str, events: Sequence[AppointmentEvent]) -> None:
        for watcher in list(self._watchers):
            try:
                watcher(key, events)
            except Exception as failed:  # a watcher's bug must not stop the sync
                logger.error("replica event watcher failed (%s)", type(failed).__name__)

    def pin(self, credential: Credential) -> Callable[[], None]:
        """Start the credential's replica if need be and keep it while pinned.

        Returns the unpin (call it once).  Raises :class:`PinRefused` when ``max_keys``
        other credentials are pinned already.
        """
        key = credential.fingerprint
        if key not in self._pins and len(self._pins) >= self.max_keys:
            raise PinRefused
        self._pins[key] = self._pins.get(key, 0) + 1
        running = self._running.get(key)
        if running is not None and running.task.done():
            self._drop(key)
        self.start(credential)
        done = False

        def unpin() -> None:
            nonlocal done
            if done:
                return
            done = True
            left = self._pins.get(key, 0) - 1
            if left > 0:
                self._pins[key] = left
            else:
                self._pins.pop(key, None)
                replica = self._running.get(key)
                if replica is not None:
                    replica.replica.touch()  # idle from now on, not from its last read

        return unpin

    def pinned(self) -> int:
        """Credentials whose replicas live subscriptions hold."""
        return len(self._pins)

    def role(self, credential: Credential) -> Role | None:
        """What this process does for the credential (``None``: no replica, or no sharing)."""
        running = self._running.get(credential.fingerprint)
        return None if running is None or running.shared is None else running.shared.role

    def shared_sync(self, credential: Credential) -> SharedSync | None:
        """The credential's shared sync in this process, if it runs with a shared state."""
        running = self._running.get(credential.fingerprint)
        return None if running is None else running.shared

    def roles(self) -> dict[str, int]:
        """How many credentials this process holds, follows, syncs alone (with sharing)."""
        counts = {role.value: 0 for role in Role}
        for running in self._running.values():
            if running.shared is not None:
                counts[running.shared.role.value] += 1
        return counts

    # --- upkeep -------------------------------------------------------------------

    def replicas(self) -> Iterator[tuple[Replica, Syncer]]:
        for running in self._running.values():
            yield running.replica, running.syncer

    def lag_seconds(self) -> float:
        """How old the oldest replica's appointments are (0 with none)."""
        now = self._clock()
        return max(
            (now - (r.sync_instant(APPOINTMENTS) or now) for r, _ in self.replicas()), default=0.0
        )

    def drop_idle(self) -> None:
        cutoff = self._clock() - self.idle
        for key, run in list(self._running.items()):
            if run.replica.last_read < cutoff and key not in self._pins:
                self._drop(key)

    async def _reap(self) -> None:
        while self._running:
            await asyncio.sleep(min(_REAP_EVERY, self.idle))
            self.drop_idle()

    def _drop(self, key: str) -> None:
        running = self._running.pop(key, None)
        if running is None:
            return
        running.task.cancel()
        self.dropped += 1
        logger.info("replica dropped")

    async def aclose(self) -> None:
        """Stop every sync and drop every replica (the app is shutting down)."""
        tasks = [run.task for run in self._running.values()]
        if self._reaper is not None:
            tasks.append(self._reaper)
        for key in list(self._running):
            self._drop(key)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
