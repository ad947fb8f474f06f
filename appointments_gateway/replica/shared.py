"""One sync per credential across every process that shares a state (DESIGN.md §8).

Each gateway process (every worker of every instance) that reads a credential often runs
a replica of it (``registry.py``).  Alone, each would poll Cliniko for it: N processes,
N syncs of the key's 200 requests a minute.  With a shared state (Redis) one process
syncs the key and the others copy what it does; :class:`SharedSync` is the task that
decides which, for one credential in one process.

**The lease** (``replica:lease:{fingerprint}``, a value with a TTL of
:attr:`FeedConfig.lease_ttl`, 5 s): a process takes it with ``set_if_absent`` and a
random token, renews it every :attr:`FeedConfig.renew_every` (1.5 s, so two renewals can
fail before it lapses) with ``compare_and_set`` (only while the token is still its own),
and gives it up on shutdown with ``compare_and_delete``.  The **holder** runs the
:class:`~appointments_gateway.replica.sync.Syncer` as a single process does.  The others,
**followers**, send Cliniko nothing for the key.  A holder whose renewal finds another
token stops its sync at once and follows.  The token is also the holder's *epoch*: it
names whose entries a follower is reading.

**The change feed** (``replica:feed:{fingerprint}``, a stream of about
:attr:`FeedConfig.max_entries` entries that expires :attr:`FeedConfig.stream_ttl` after
its last append): every change the holder's sync applies to its replica (a value of
``changes.py``: a poll's rows with its start and next cursor, a load step's span, linked
rows, a reference feed, a patient read whole, a deletion check's span, a trim) is also
appended, in the order applied, a batch per entry.  An entry is JSON::

    {"e": epoch, "s": seq, "c": [change, ...]}         (seq 0 adds "f": [epoch, seq] | null)

``seq`` counts the holder's entries from 0; a follower applies entry ``s`` only after
``s - 1`` of the same epoch, with the same :meth:`Syncer.apply` the holder used
(``mirrored``), so its replica holds the same rows, the same coverage and the same sync
instants, and its sync's cursors are the holder's.  Its reads therefore answer the same
lists with the same freshness; when the feed goes silent (the holder died and no one has
taken over yet) its sync instants age and ``view.py`` sends reads upstream, as it does
for a starved single process.  A new holder's first entry (seq 0) says which entry its
state continues (``"f"``): a follower standing exactly there goes on without a pause.

**A gap** is any other entry: a seq that skips (the stream was trimmed past a slow
follower, or the holder lost a batch to an unreachable store), a new epoch that does not
continue from the follower's entry, or an entry that cannot be applied.  A stale holder's
late entries (an epoch the follower has moved past) are skipped.  A gap, like joining,
asks for a snapshot.

**Snapshots**: a follower without a base appends ``[["snapshot", ""]]`` to the asks stream
``replica:asks:{fingerprint}`` (30 s TTL) and watches ``replica:snapshot-head:{fp}``.  The
holder writes its whole replica and its sync's position to ``replica:snapshot:{fp}`` (then
the head: epoch, seq, entry id) at a moment when every change it applied has been
appended, so the snapshot is exactly its state after entry ``id``.  Both expire after
:attr:`FeedConfig.snapshot_ttl` (60 s).  The follower loads it (``Replica.restore``,
``Syncer.adopt``) only if it is the current holder's and the entry after ``id`` continues
it, then reads the feed after ``id``.  Writing one costs the holder no upstream request;
several joining followers share one.  The same asks stream carries what reads on a
follower ask of the sync: a patient read whole (``want_patient``) and a poll at once after
a series write (``poll_soon``); the holder does them as if its own reads had asked.

**Hand-over, and why no change is lost.**  A holder that stops cleanly appends its last
changes and a ``Bye``, then deletes the lease; followers that read the ``Bye`` try the
lease at once.  A holder that dies just stops renewing; the lease lapses within its TTL and
a follower (checking every :attr:`FeedConfig.follow_block`) takes it.  The new holder first
reads every entry still in the feed, then starts its sync from the position those entries
left: each appointment poll's entry carries the poll's start ``S`` and the next cursor
``S - CLOCK_SKEW_SECONDS``, applied in the same step as the poll's rows.  So the follower's
cursor always matches the rows it holds: its first poll as holder asks for every change
stamped since the old holder's last *published* poll started (less the skew overlap),
which includes every change that poll could not have seen and everything the old holder
saw later but never published.  Reference feeds carry their cursors the same way; a load
step the old holder did not publish left the coverage where the follower has it, so the
new holder loads that span itself; a lost deletion check is found by the next one.

**When the shared state is unreachable** (any call raises ``SharedStateUnavailable``) the
process syncs the key itself, as a single process does (budget safety is the governor's
business), whatever its role was, and tries the state again every
:attr:`FeedConfig.probe_every`.  When it answers, the process deletes a lease it may still
hold, then takes the lease or follows, like a process that just started (its replica then
differs from any feed, so as a follower it loads a snapshot, and as the holder its first
entry continues nothing, so its followers load one).  Reads go on throughout.

Keys hold the credential's fingerprint only, never a key or a patient; values hold rows
(health data) and every one expires.  Nothing here logs a row or a fingerprint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from appointments_gateway.state import SharedState, SharedStateUnavailable

from .changes import (
    Bye,
    Change,
    decode_changes,
    decode_rows,
    dumps,
    encode_changes,
    encode_rows,
    loads,
)
from .store import APPOINTMENTS, Replica
from .sync import Syncer, SyncPosition

__all__ = ["FeedConfig", "FeedStats", "Role", "SharedSync", "feed_keys"]

logger = logging.getLogger("appointments_gateway.replica")

#: Asks kept in a credential's asks stream, and how long it lives after the last one.
_ASKS_KEPT: Final = 200
_ASKS_TTL: Final = 30.0
#: Epochs a follower remembers having moved past (their late entries are skipped).
_RETIRED_KEPT: Final = 16
#: How often a follower waiting for a snapshot looks at its head.
_SNAPSHOT_LOOK: Final = 0.05
#: How long a clean shutdown may spend on its last entries and the lease.
_LEAVE_TIMEOUT: Final = 2.0


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """Lease, feed and snapshot timings (see the module docstring)."""

    lease_ttl: float = 5.0
    renew_every: float = 1.5
    max_entries: int = 500
    stream_ttl: float = 300.0
    snapshot_ttl: float = 60.0
    #: A follower waiting for a snapshot asks again after this long.
    ask_again: float = 2.0
    #: While the shared state is unreachable, it is tried again this often (at least).
    probe_every: float = 1.0
    #: A follower waits this long for an entry, and checks the lease as often.
    follow_block: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.renew_every < self.lease_ttl:
            raise ValueError("renew_every must be above 0 and below lease_ttl")
        if self.max_entries < 1:
            raise ValueError("max_entries must be at least 1")


@dataclass(slots=True)
class FeedStats:
    """Counters of one process's shared syncs, read by the metrics when scraped.

    ``lease_acquired``: leases taken; ``lease_handovers``: of those, taken by a process
    that had followed another holder; ``lease_lost``: renewals that found another
    holder; ``lease_released``: leases given up on shutdown; ``entries_published`` /
    ``entries_applied``: feed entries appended as holder / applied as follower;
    ``gaps``: entries a follower could not continue with; ``snapshots_written`` /
    ``snapshots_loaded`` / ``snapshots_asked``; ``unavailable``: times the shared state
    could not be reached and the process synced alone.
    """

    lease_acquired: int = 0
    lease_handovers: int = 0
    lease_lost: int = 0
    lease_released: int = 0
    entries_published: int = 0
    entries_applied: int = 0
    gaps: int = 0
    snapshots_written: int = 0
    snapshots_loaded: int = 0
    snapshots_asked: int = 0
    unavailable: int = 0


class Role(StrEnum):
    """What a process does for one credential."""

    STARTING = "starting"
    HOLDER = "holder"
    FOLLOWER = "follower"
    #: The shared state is unreachable: syncing alone.
    ALONE = "alone"


@dataclass(frozen=True, slots=True)
class _Position:
    """The last entry applied (follower) or appended (holder)."""

    epoch: str
    seq: int
    entry_id: str


@dataclass(frozen=True, slots=True)
class FeedKeys:
    lease: str
    feed: str
    asks: str
    snapshot: str
    head: str


def feed_keys(fingerprint: str) -> FeedKeys:
    """The shared-state keys of one credential (its fingerprint only)."""
    return FeedKeys(
        lease=f"replica:lease:{fingerprint}",
        feed=f"replica:feed:{fingerprint}",
        asks=f"replica:asks:{fingerprint}",
        snapshot=f"replica:snapshot:{fingerprint}",
        head=f"replica:snapshot-head:{fingerprint}",
    )


class SharedSync:
    """One credential's sync in one process, with a shared state; see the module docstring.

    Args:
        fingerprint: the credential's fingerprint (keys are derived from it).
        replica: this process's replica of the credential.
        syncer: its sync (run here while holding the lease or alone).
        shared: the state every process shares.
        config: lease, feed and snapshot timings.
        stats: process-wide counters.
        instance: a label for log lines.
    """

    def __init__(
        self,
        fingerprint: str,
        replica: Replica,
        syncer: Syncer,
        shared: SharedState,
        config: FeedConfig,
        stats: FeedStats,
        *,
        instance: str | None = None,
    ) -> None:
        self.keys = feed_keys(fingerprint)
        self.replica = replica
        self.syncer = syncer
        self._shared = shared
        self.config = config
        self.stats = stats
        self._log = {"instance": instance} if instance else {}
        self.role = Role.STARTING
        self._sync: asyncio.Task[None] | None = None
        #: Our lease token (and epoch) while we may hold the lease.
        self._token: str | None = None
        self._seq = 0
        #: The last entry applied or appended; ``None``: no base (a snapshot is needed).
        self._position: _Position | None = None
        self._retired: deque[str] = deque(maxlen=_RETIRED_KEPT)
        self._journal: list[Change] = []
        self._journaled = asyncio.Event()
        self._snapshot_wanted = False
        #: A snapshot head found unusable (not loaded again).
        self._refused: tuple[str, int] | None = None
        self._asked = -math.inf

    @property
    def on_feed(self) -> bool:
        """Whether the replica stands at an entry of the feed (holder, or based follower).

        ``False`` while a follower waits for a snapshot, and while alone.
        """
        return self._position is not None and self.role in (Role.HOLDER, Role.FOLLOWER)

    @property
    def entry(self) -> tuple[str, int] | None:
        """``(epoch, seq)`` of the last entry applied or appended (``None``: no base)."""
        position = self._position
        return None if position is None else (position.epoch, position.seq)

    # --- the loop -----------------------------------------------------------------

    async def run(self) -> None:
        """Hold, follow or sync alone until cancelled or until the sync itself ends."""
        try:
            while True:
                try:
                    if await self._acquire():
                        if await self._hold():
                            return
                    else:
                        await self._follow()
                except SharedStateUnavailable as down:
                    if await self._alone(down):
                        return
        finally:
            await self._leave()

    async def _acquire(self) -> bool:
        token = secrets.token_hex(16)
        if await self._shared.set_if_absent(
            self.keys.lease, token.encode(), ttl=self.config.lease_ttl
        ):
            self._token = token
            return True
        return False

    # --- holding ------------------------------------------------------------------

    async def _hold(self) -> bool:
        """Sync and publish while the lease is ours; whether the sync ended by itself."""
        token = self._token
        assert token is not None
        self.stats.lease_acquired += 1
        previous = self._position
        if previous is not None:
            self.stats.lease_handovers += 1
            self._retired.append(previous.epoch)
        logger.info("replica lease taken", extra=self._log)
        self.role = Role.HOLDER
        self._seq = 0
        self._journal = []
        self._snapshot_wanted = False
        self._replay_asks()
        self.syncer.journal = self._journal_change
        # The first entry says which entry this state continues (followers standing
        # exactly there go on; the others load a snapshot).
        first = await self._append(
            token, [], first=True, continues=None if previous is None else previous
        )
        sync = self._start_sync()
        publisher = asyncio.create_task(self._publish(token), name="replica-publish")
        asks = asyncio.create_task(self._serve_asks(first), name="replica-asks")
        try:
            while True:
                done, _ = await asyncio.wait(
                    {sync, publisher, asks},
                    timeout=self.config.renew_every,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in done & {publisher, asks}:
                    task.result()  # raises what ended it (the state is unreachable)
                if sync in done:
                    self._sync = None
                    sync.result()
                    return True  # the upstream refused the credential
                held = await self._shared.compare_and_set(
                    self.keys.lease, token.encode(), token.encode(), ttl=self.config.lease_ttl
                )
                if not held:
                    self.stats.lease_lost += 1
                    logger.warning("replica lease lost: following", extra=self._log)
                    self._token = None
                    self.syncer.journal = None
                    await self._stop_sync()
                    if self._journal:
                        self._position = None  # we hold changes no one published
                    self._journal = []
                    return False
        finally:
            for task in (publisher, asks):
                task.cancel()
            await asyncio.wait({publisher, asks})
            for task in (publisher, asks):
                if not task.cancelled():
                    task.exception()  # retrieved (re-raised above when it mattered)

    def _journal_change(self, change: Change) -> None:
        self._journal.append(change)
        self._journaled.set()

    async def _publish(self, token: str) -> None:
        """Append the journal as it fills; write a snapshot when one is asked for."""
        while True:
            await self._journaled.wait()
            self._journaled.clear()
            await self._flush(token)
            if self._snapshot_wanted and not self._journal:
                await self._write_snapshot()

    async def _flush(self, token: str) -> None:
        while self._journal:
            batch, self._journal = self._journal, []
            await self._append(token, batch)

    async def _append(
        self,
        token: str,
        changes: Sequence[Change],
        *,
        first: bool = False,
        continues: _Position | None = None,
    ) -> str:
        entry: dict[str, Any] = {"e": token, "s": self._seq, "c": encode_changes(changes)}
        if first:
            entry["f"] = None if continues is None else [continues.epoch, continues.seq]
        seq = self._seq
        self._seq += 1
        entry_id = await self._shared.append(
            self.keys.feed,
            dumps(entry),
            max_entries=self.config.max_entries,
            ttl=self.config.stream_ttl,
        )
        self._position = _Position(token, seq, entry_id)
        self.stats.entries_published += 1
        return entry_id

    async def _write_snapshot(self) -> None:
        """The replica as of the last entry appended (nothing is left unpublished)."""
        position = self._position
        assert position is not None
        assert not self._journal
        self._snapshot_wanted = False
        head = dumps({"e": position.epoch, "s": position.seq, "id": position.entry_id})
        body = dumps({"head": loads(head), "state": snapshot_state(self.replica, self.syncer)})
        ttl = self.config.snapshot_ttl
        await self._shared.set(self.keys.snapshot, body, ttl=ttl)
        await self._shared.set(self.keys.head, head, ttl=ttl)
        self.stats.snapshots_written += 1

    async def _serve_asks(self, after: str) -> None:
        """Do what followers' reads ask of the sync (asks appended after ``after``)."""
        while True:
            found = await self._shared.read_after(self.keys.asks, after, count=100, block=1.0)
            for entry_id, data in found:
                after = entry_id
                for what, value in _asks(data):
                    if what == "snapshot":
                        self._snapshot_wanted = True
                        self._journaled.set()
                    elif what == "poll":
                        self.syncer.poll_soon()
                    elif what == "patient":
                        self.syncer.want_patient(value)

    # --- following ----------------------------------------------------------------

    async def _follow(self) -> None:
        """Apply the holder's entries until the lease is free (then try to take it)."""
        self.role = Role.FOLLOWER
        self.syncer.journal = None
        await self._stop_sync()
        if self.syncer.asks is None:
            self.syncer.asks = []
        holder: str | None = None
        checked = -math.inf
        leaving = False
        while True:
            wait = _SNAPSHOT_LOOK if leaving else self.config.follow_block
            if time.monotonic() - checked >= wait:
                value = await self._shared.get(self.keys.lease)
                checked = time.monotonic()
                if value is None:
                    await self._catch_up()
                    return
                if value.decode() != holder:
                    holder, leaving = value.decode(), False
            if self._position is None:
                if not await self._join(holder):
                    await asyncio.sleep(_SNAPSHOT_LOOK)
                continue
            await self._forward_asks()
            found = await self._shared.read_after(
                self.keys.feed, self._position.entry_id, count=100, block=wait
            )
            if self._apply_entries(found):
                leaving = True
                checked = -math.inf

    async def _catch_up(self) -> None:
        """Apply every entry still in the feed (before taking the lease over)."""
        while self._position is not None:
            found = await self._shared.read_after(self.keys.feed, self._position.entry_id)
            if not found:
                return
            self._apply_entries(found)

    def _apply_entries(self, found: Sequence[tuple[str, bytes]]) -> bool:
        """Apply entries in order, until a gap; whether one said ``Bye``."""
        bye = False
        for entry_id, data in found:
            position = self._position
            if position is None:
                break
            entry = loads(data)
            epoch, seq = entry["e"], entry["s"]
            follows = epoch == position.epoch and seq == position.seq + 1
            continues = seq == 0 and entry.get("f") == [position.epoch, position.seq]
            if not (follows or continues):
                if epoch in self._retired or (epoch == position.epoch and seq <= position.seq):
                    # A stale holder's late entry, or one seen already: skip it.
                    self._position = _Position(position.epoch, position.seq, entry_id)
                    continue
                self._gap()
                break
            try:
                changes = decode_changes(entry["c"])
                for change in changes:
                    self.syncer.apply(change, mirrored=True)
            except (ValueError, TypeError, KeyError) as failed:
                logger.warning(
                    "replica feed entry not applied (%s): reloading",
                    type(failed).__name__,
                    extra=self._log,
                )
                self._gap()
                break
            if continues and epoch != position.epoch:
                self._retired.append(position.epoch)
            self._position = _Position(epoch, seq, entry_id)
            self.stats.entries_applied += 1
            bye = bye or any(isinstance(c, Bye) for c in changes)
        return bye

    def _gap(self) -> None:
        self.stats.gaps += 1
        self._position = None
        logger.info("replica feed gap: loading a snapshot", extra=self._log)

    async def _join(self, holder: str | None) -> bool:
        """Load the holder's snapshot if there is a usable one, else ask; whether loaded."""
        raw = await self._shared.get(self.keys.head)
        head = None if raw is None else loads(raw)
        if head is not None and head["e"] == holder and (head["e"], head["s"]) != self._refused:
            if not await self._continues(head):
                self._refused = (head["e"], head["s"])
            else:
                body = await self._shared.get(self.keys.snapshot)
                snapshot = None if body is None else loads(body)
                # Another head than the body's: a newer snapshot is being written.
                if snapshot is not None and snapshot["head"] == head:
                    self._restore(snapshot["state"])
                    self._position = _Position(head["e"], head["s"], head["id"])
                    self.stats.snapshots_loaded += 1
                    logger.info("replica snapshot loaded", extra=self._log)
                    return True
        if time.monotonic() - self._asked >= self.config.ask_again:
            self._asked = time.monotonic()
            self.stats.snapshots_asked += 1
            await self._ask([("snapshot", "")])
        return False

    async def _continues(self, head: dict[str, Any]) -> bool:
        """Whether the feed goes on from the snapshot's entry (nothing trimmed between)."""
        after = await self._shared.read_after(self.keys.feed, head["id"], count=1)
        if not after:
            return True
        entry = loads(after[0][1])
        return bool(
            (entry["e"] == head["e"] and entry["s"] == head["s"] + 1)
            or (entry["s"] == 0 and entry.get("f") == [head["e"], head["s"]])
        )

    def _restore(self, state: dict[str, Any]) -> None:
        now = self.replica.now()
        coverage = state["coverage"]
        self.replica.restore(
            appointments=decode_rows(APPOINTMENTS, state["appointments"]),
            records={kind: decode_rows(kind, rows) for kind, rows in state["records"].items()},
            tombstones=state["tombstones"],
            coverage=None
            if coverage is None
            else (datetime.fromisoformat(coverage[0]), datetime.fromisoformat(coverage[1])),
            complete_patients=[(p, now - age) for p, age in state["complete"]],
            synced_at=state["synced"],
        )
        self.syncer.adopt(SyncPosition.from_json(state["position"]))

    async def _forward_asks(self) -> None:
        asks = self.syncer.asks
        if asks:
            self.syncer.asks = []
            await self._ask(asks)

    async def _ask(self, asks: Sequence[tuple[str, str]]) -> None:
        await self._shared.append(
            self.keys.asks, dumps([list(a) for a in asks]), max_entries=_ASKS_KEPT, ttl=_ASKS_TTL
        )

    def _replay_asks(self) -> None:
        """Asks not yet forwarded are this process's own now."""
        asks, self.syncer.asks = self.syncer.asks or [], None
        for what, value in asks:
            if what == "patient":
                self.syncer.want_patient(value)
            elif what == "poll":
                self.syncer.poll_soon()

    # --- alone --------------------------------------------------------------------

    async def _alone(self, down: SharedStateUnavailable) -> bool:
        """Sync alone until the shared state answers; whether the sync ended by itself."""
        self.stats.unavailable += 1
        logger.warning("shared state unreachable: the replica syncs alone", extra=self._log)
        self.role = Role.ALONE
        self._replay_asks()
        self.syncer.journal = None
        self._journal = []
        stale, self._token = self._token, None
        # Our own sync changes the replica from here on: it continues no feed entry.
        self._position = None
        sync = self._start_sync()
        wait = down.retry_after_seconds
        while True:
            await asyncio.wait({sync}, timeout=max(0.05, min(wait, self.config.probe_every)))
            if sync.done():
                self._sync = None
                sync.result()
                return True
            try:
                if stale is not None:
                    await self._shared.compare_and_delete(self.keys.lease, stale.encode())
                else:
                    await self._shared.get(self.keys.lease)
            except SharedStateUnavailable as again:
                wait = again.retry_after_seconds
                continue
            logger.info("shared state reachable again: rejoining", extra=self._log)
            return False

    # --- helpers ------------------------------------------------------------------

    def _start_sync(self) -> asyncio.Task[None]:
        if self._sync is None or self._sync.done():
            self._sync = asyncio.create_task(self.syncer.run(), name="replica-sync")
        return self._sync

    async def _stop_sync(self) -> None:
        task, self._sync = self._sync, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled() and task.exception() is not None:
            logger.warning("replica sync failed", extra=self._log)

    async def _leave(self) -> None:
        """Stop syncing; as holder, publish the last changes, say ``Bye``, free the lease."""
        await self._stop_sync()
        self.syncer.journal = None
        token, self._token = self._token, None
        if token is None or self.role is not Role.HOLDER:
            return
        with contextlib.suppress(SharedStateUnavailable, TimeoutError):
            async with asyncio.timeout(_LEAVE_TIMEOUT):
                await self._flush(token)
                await self._append(token, [Bye()])
                if await self._shared.compare_and_delete(self.keys.lease, token.encode()):
                    self.stats.lease_released += 1
                    logger.info("replica lease released", extra=self._log)


def snapshot_state(replica: Replica, syncer: Syncer) -> dict[str, Any]:
    """A replica's rows and facts and its sync's position, JSON-ready (a snapshot body)."""
    now = replica.now()
    coverage = replica.coverage
    return {
        "appointments": encode_rows(replica.appointments.values()),
        "records": {kind: encode_rows(rows.values()) for kind, rows in replica.records.items()},
        "tombstones": list(replica.tombstones),
        "coverage": None if coverage is None else [coverage[0], coverage[1]],
        "complete": [[p, now - at] for p, at in replica.complete_patients.items()],
        "synced": dict(replica.synced_at),
        "position": syncer.position().to_json(),
    }


def _asks(data: bytes) -> list[tuple[str, str]]:
    try:
        return [(str(what), str(value)) for what, value in loads(data)]
    except (ValueError, TypeError):
        return []
