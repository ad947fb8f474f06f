"""One sync per credential across processes: the lease, the change feed, snapshots, hand-over.

Two gateway processes are simulated in one: two ``Replicas``, each with its own upstream
client (and governor) and its own transport to the one sandbox, so the requests each sends
are counted apart, and both given the same ``shared_state`` (the conftest fixture: in
memory; parametrize it to run these over Redis).  Each process sees that state through a
:class:`Switchable`, which can make it unreachable (``SharedStateUnavailable``) or stall its
feed reads, per process.

Outside edits go through the sandbox's web-app door, as in the other replica tests, and
waits are for conditions (:func:`eventually`), bounded.  The lease here lasts 2 s and is
renewed every 0.4 s (5 s and 1.5 s by default), so a crashed holder's lease lapses sooner.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from appointments_gateway.replica import (
    APPOINTMENTS,
    CLOCK_SKEW_SECONDS,
    LINKS,
    AppointmentEvent,
    ChangeKind,
    FeedConfig,
    Replica,
    Replicas,
    Role,
    SharedSync,
    SyncConfig,
    Syncer,
)
from appointments_gateway.sandbox import DEMO_KEY_A
from appointments_gateway.state import InMemoryState, SharedState, SharedStateUnavailable
from appointments_gateway.upstream import Credential, Governor, UpstreamClient

from .conftest import (
    DELETION_CHECK_INTERVAL,
    LOAD_TIMEOUT,
    REFERENCE_INTERVAL,
    SANDBOX_ROOT,
    SANDBOX_URL,
    SLACK,
    SYNC_INTERVAL,
    Held,
    eventually,
    is_poll,
    is_span_read,
    make_sandbox,
)

A = Credential.from_api_key(DEMO_KEY_A, base_url=SANDBOX_URL)
SYNC = SyncConfig(
    interval=SYNC_INTERVAL,
    reference_interval=REFERENCE_INTERVAL,
    deletion_check_interval=DELETION_CHECK_INTERVAL,
)
#: A lease of 2 s (renewed every 0.4 s) outlasts the event loop's longest stalls on a busy
#: machine (a collection over two replicas and a sandbox in one process).
FEED = FeedConfig(lease_ttl=2.0, renew_every=0.4, follow_block=0.2, ask_again=0.5, probe_every=0.2)
#: How long request counts are taken over.
MEASURE = 2.0


class Switchable:
    """A :class:`SharedState` that can be made unreachable, or made to stall feed reads."""

    def __init__(self, inner: SharedState) -> None:
        self.inner = inner
        self.down = False
        self._flowing = asyncio.Event()
        self._flowing.set()

    def stall(self) -> None:
        """Reads of streams wait (the process falls behind the feed) until :meth:`flow`."""
        self._flowing.clear()

    def flow(self) -> None:
        self._flowing.set()

    def _check(self) -> None:
        if self.down:
            raise SharedStateUnavailable("down (test)", retry_after_seconds=0.1)

    async def take_tokens(
        self,
        bucket: str,
        *,
        rate_per_second: float,
        capacity: float,
        max_wait: float = 0.0,
        now: float | None = None,
    ) -> float:
        self._check()
        return await self.inner.take_tokens(
            bucket, rate_per_second=rate_per_second, capacity=capacity, max_wait=max_wait, now=now
        )

    async def pause(self, bucket: str, until: float) -> float:
        self._check()
        return await self.inner.pause(bucket, until)

    async def paused_until(self, bucket: str, *, now: float | None = None) -> float | None:
        self._check()
        return await self.inner.paused_until(bucket, now=now)

    async def get(self, key: str) -> bytes | None:
        self._check()
        return await self.inner.get(key)

    async def set(self, key: str, value: bytes, *, ttl: float) -> None:
        self._check()
        await self.inner.set(key, value, ttl=ttl)

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float) -> bool:
        self._check()
        return await self.inner.set_if_absent(key, value, ttl=ttl)

    async def compare_and_set(self, key: str, expected: bytes, value: bytes, *, ttl: float) -> bool:
        self._check()
        return await self.inner.compare_and_set(key, expected, value, ttl=ttl)

    async def compare_and_delete(self, key: str, expected: bytes) -> bool:
        self._check()
        return await self.inner.compare_and_delete(key, expected)

    async def delete(self, key: str) -> None:
        self._check()
        await self.inner.delete(key)

    async def append(self, stream: str, data: bytes, *, max_entries: int, ttl: float) -> str:
        self._check()
        return await self.inner.append(stream, data, max_entries=max_entries, ttl=ttl)

    async def read_after(
        self, stream: str, after: str, *, count: int = 100, block: float = 0.0
    ) -> list[tuple[str, bytes]]:
        self._check()
        await self._flowing.wait()
        self._check()
        return await self.inner.read_after(stream, after, count=count, block=block)


class Counted(httpx.AsyncBaseTransport):
    """A process's way to the sandbox, counting what it sends."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    def polls(self) -> int:
        return sum(1 for r in self.requests if is_poll(r))


@dataclass
class Process:
    """One simulated gateway process: its replicas, its transport, its view of the state."""

    name: str
    replicas: Replicas
    transport: Counted
    held: Held
    state: Switchable
    closed: bool = field(default=False)

    @property
    def shared(self) -> SharedSync:
        shared = self.replicas.shared_sync(A)
        assert shared is not None, f"{self.name} runs no replica of A"
        return shared

    @property
    def role(self) -> Role:
        return self.shared.role

    @property
    def replica(self) -> Replica:
        return self.shared.replica

    @property
    def syncer(self) -> Syncer:
        return self.shared.syncer

    async def close(self) -> None:
        self.closed = True
        await self.replicas.aclose()


@asynccontextmanager
async def process(
    name: str, sandbox: Starlette, shared: SharedState, *, feed: FeedConfig = FEED
) -> AsyncIterator[Process]:
    """A gateway process over ``sandbox`` sharing ``shared``, its replica of A started."""
    held = Held(sandbox)
    transport = Counted(held)
    state = Switchable(shared)
    async with UpstreamClient(
        user_agent="replica tests (tests@example.com)",
        transport=transport,
        # Its own governor (off: the sandbox has no rate limit), as every process has.
        governor=Governor(InMemoryState(), limit=0),
    ) as upstream:
        replicas = Replicas(upstream, SYNC, start_after=0, shared=state, instance=name, feed=feed)
        replicas.start(A)
        try:
            yield Process(name, replicas, transport, held, state)
        finally:
            await replicas.aclose()


@pytest.fixture
def sandbox() -> Starlette:
    return make_sandbox()


@pytest.fixture
async def web(sandbox: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The sandbox's web-app door (outside edits)."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox), base_url=SANDBOX_ROOT
    ) as client:
        yield client


# --- waiting ------------------------------------------------------------------------


async def settled(p: Process) -> None:
    """The window is loaded (or copied) and every row its appointments link to is held."""
    try:
        await asyncio.wait_for(p.syncer.loaded.wait(), LOAD_TIMEOUT)
    except TimeoutError:
        pytest.fail(f"{p.name}'s replica did not load within {LOAD_TIMEOUT:.0f} s")

    async def linked() -> bool | None:
        replica = p.replica
        for kind, attribute in LINKS.items():
            held = replica.records[kind]
            for row in replica.appointments.values():
                link = getattr(row, attribute)
                if link is not None and link not in held:
                    return None
        return True

    await eventually(linked, within=LOAD_TIMEOUT, what=f"{p.name}'s linked rows")


async def one_holder(*processes: Process, within: float = LOAD_TIMEOUT) -> Process:
    """Wait until one process holds the lease and every other follows with a base."""

    async def roles() -> Process | None:
        live = [p for p in processes if not p.closed]
        holders = [p for p in live if p.role is Role.HOLDER]
        followers = [p for p in live if p.role is Role.FOLLOWER and p.shared.on_feed]
        if len(holders) == 1 and len(followers) == len(live) - 1:
            return holders[0]
        return None

    holder, _ = await eventually(roles, within=within, what="one holder, the others following")
    for p in processes:
        if not p.closed:
            await settled(p)
    return holder


# --- the sandbox's rows -----------------------------------------------------------------


def booked(sandbox: Starlette, replica: Replica, *, skip: int = 0) -> dict[str, Any]:
    """A booked appointment of account A starting 1 to 5 days from now (inside the window)."""
    conn = sandbox.state.sandbox.store.conn
    now = datetime.now(UTC)
    rows = conn.execute(
        "SELECT * FROM appointments WHERE account = 'a' AND cancelled_at IS NULL "
        "AND archived_at IS NULL AND deleted_at IS NULL ORDER BY starts_at, id"
    )
    for row in rows:
        starts = datetime.fromisoformat(row["starts_at"].replace("Z", "+00:00"))
        if now + timedelta(days=1) <= starts < now + timedelta(days=5):
            if skip == 0:
                # Ids as the API (and so the replica) has them: strings.
                return {
                    k: str(v) if k.endswith("id") and v is not None else v
                    for k, v in dict(row).items()
                }
            skip -= 1
    raise AssertionError("no booked appointment in the next days")


async def edit_notes(web: httpx.AsyncClient, appointment_id: str, notes: str) -> float:
    """Change an appointment's notes in Cliniko's web app; the instant it was done."""
    response = await web.patch(
        f"/_sandbox/webapp/a/individual_appointments/{appointment_id}", json={"notes": notes}
    )
    assert response.status_code == 200, response.text
    return time.time()


async def visible(p: Process, appointment_id: str, notes: str, *, within: float) -> float:
    """Wait until a read of ``p`` answers the appointment with ``notes``; the seconds taken.

    Read as a request would: through the view, by id and in its day's list.
    """

    async def seen() -> bool | None:
        view = p.replicas.view(A)
        if view is None:
            return None
        known = view.known([appointment_id])
        if not known or known[0].notes != notes:
            return None
        day = known[0].starts_at
        listed = view.covering(day - timedelta(hours=12), day + timedelta(hours=12))
        if listed is None or notes not in [r.notes for r in listed if r.id == appointment_id]:
            return None
        return True

    _, took = await eventually(seen, within=within, what=f"the edit, read on {p.name}")
    return took


def same_rows(x: Process, y: Process) -> bool:
    """Whether two replicas hold the same rows, coverage and whole patients."""
    a, b = x.replica, y.replica
    return (
        a.appointments == b.appointments
        and a.records == b.records
        and a.coverage == b.coverage
        and set(a.complete_patients) == set(b.complete_patients)
    )


# --- the tests ----------------------------------------------------------------------


async def test_only_the_holder_polls_cliniko(sandbox: Starlette, shared_state: SharedState) -> None:
    """Two processes cost what one costs: the follower sends Cliniko nothing for the key."""
    async with process("x", sandbox, shared_state) as x:
        await one_holder(x)
        sent, polls = len(x.transport.requests), x.transport.polls()
        await asyncio.sleep(MEASURE)
        alone, alone_polls = len(x.transport.requests) - sent, x.transport.polls() - polls
        assert alone_polls >= MEASURE / SYNC_INTERVAL / 2, "the sync hardly polled"

        async with process("y", sandbox, shared_state) as y:
            assert await one_holder(x, y) is x
            assert y.transport.requests == [], "the follower read Cliniko"
            sent, polls = len(x.transport.requests), x.transport.polls()
            applied = y.replicas.feed_stats.entries_applied
            await asyncio.sleep(MEASURE)
            two = len(x.transport.requests) - sent
            two_polls = x.transport.polls() - polls
            assert y.transport.requests == [], "the follower read Cliniko"
            assert abs(two_polls - alone_polls) <= max(2, alone_polls // 4), (
                two_polls,
                alone_polls,
            )
            assert two <= alone + max(4, alone // 4), (two, alone)
            # Every poll reached the follower as an entry.
            assert y.replicas.feed_stats.entries_applied - applied >= two_polls - 1
            assert y.replicas.feed_stats.snapshots_loaded == 1
            assert x.replicas.feed_stats.lease_acquired == 1
            assert y.replicas.feed_stats.lease_acquired == 0


async def test_an_outside_edit_reaches_both_processes(
    sandbox: Starlette, shared_state: SharedState, web: httpx.AsyncClient
) -> None:
    async with (
        process("x", sandbox, shared_state) as x,
        process("y", sandbox, shared_state) as y,
    ):
        holder = await one_holder(x, y)
        follower = y if holder is x else x
        target = booked(sandbox, holder.replica)
        edited = await edit_notes(web, target["id"], "moved to the window seat")
        for p in (holder, follower):
            took = await visible(
                p, target["id"], "moved to the window seat", within=SYNC_INTERVAL + SLACK
            )
            assert took <= SYNC_INTERVAL + SLACK
        # The follower's freshness is the holder's poll, which started after the edit.
        synced = follower.replica.sync_instant(APPOINTMENTS)
        assert synced is not None
        assert synced > edited - SYNC_INTERVAL
        assert follower.transport.requests == []


@pytest.mark.parametrize("how", ["clean", "crash"])
async def test_hand_over_loses_no_change(
    sandbox: Starlette, shared_state: SharedState, web: httpx.AsyncClient, how: str
) -> None:
    """The holder goes mid-poll, with an edit it saw but never published: the survivor
    takes the lease (at once after a clean stop, within its TTL after a crash) and reads
    the edit."""
    async with (
        process("x", sandbox, shared_state) as x,
        process("y", sandbox, shared_state) as y,
    ):
        holder = await one_holder(x, y)
        survivor = y if holder is x else x
        target = booked(sandbox, holder.replica, skip=3)
        async with holder.held.holding(is_poll) as stuck:
            edited = await edit_notes(web, target["id"], "seen, never published")
            await asyncio.wait_for(stuck.wait(), 5.0)
            if how == "crash":
                # Stuck for longer than the polls' overlap: a new holder that polled from
                # "now less the overlap" would miss the edit; one that continues from the
                # last published poll does not.
                await asyncio.sleep(CLOCK_SKEW_SECONDS + 1.0)
                holder.state.down = True  # it never gets to say goodbye
            # The survivor's freshness is honest: no poll since the edit reached it.
            synced = survivor.replica.sync_instant(APPOINTMENTS)
            assert synced is not None
            assert synced < edited
            gone = time.monotonic()
            await holder.close()
        if how == "crash":
            assert survivor.role is Role.FOLLOWER  # the lease has not lapsed yet

        async def took_over() -> bool | None:
            return True if survivor.role is Role.HOLDER else None

        await eventually(took_over, within=FEED.lease_ttl + SLACK, what="the survivor's lease")
        took = time.monotonic() - gone
        stats = holder.replicas.feed_stats
        if how == "crash":
            assert stats.lease_released == 0
            # It waited for the lease to lapse.
            assert took >= FEED.lease_ttl - FEED.renew_every - 0.1, took
        else:
            assert stats.lease_released == 1
            assert took < FEED.lease_ttl, took
        assert survivor.replicas.feed_stats.lease_handovers == 1
        await visible(survivor, target["id"], "seen, never published", within=SYNC_INTERVAL + SLACK)
        # It continued from the feed's state: no reload of the window (a load is ~30 spans).
        spans = [r for r in survivor.transport.requests if is_span_read(r)]
        assert len(spans) < 5, len(spans)


async def test_a_late_follower_loads_a_snapshot_and_answers_the_same_lists(
    sandbox: Starlette, shared_state: SharedState, web: httpx.AsyncClient
) -> None:
    async with process("x", sandbox, shared_state) as x:
        await one_holder(x)
        # A patient read whole and an edit before the follower exists.
        target = booked(sandbox, x.replica)
        patient = target["patient_id"]
        x.syncer.want_patient(patient)
        await edit_notes(web, target["id"], "before the follower")
        await visible(x, target["id"], "before the follower", within=SYNC_INTERVAL + SLACK)

        async def patient_whole() -> bool | None:
            return True if x.replica.has_complete_patient(patient) else None

        await eventually(patient_whole, within=5.0, what="the patient read whole")

        async with process("y", sandbox, shared_state) as y:
            await one_holder(x, y)
            assert y.replicas.feed_stats.snapshots_loaded == 1
            assert x.replicas.feed_stats.snapshots_written >= 1
            assert y.transport.requests == []

            async def same() -> bool | None:
                return True if same_rows(x, y) else None

            await eventually(same, within=2.0, what="the same rows on both")
            assert y.replica.has_complete_patient(patient)
            x_view, y_view = x.replicas.view(A), y.replicas.view(A)
            assert x_view is not None
            assert y_view is not None
            now = datetime.now(UTC)
            for day in range(-3, 7):
                low = now + timedelta(days=day)
                listed = y_view.covering(low, low + timedelta(days=1))
                assert listed is not None, "the follower does not answer a day's list"
                assert listed == x_view.covering(low, low + timedelta(days=1))
            theirs, ours = x_view.of_patients([patient]), y_view.of_patients([patient])
            assert theirs is not None
            assert ours is not None
            assert sorted(ours, key=lambda r: r.id) == sorted(theirs, key=lambda r: r.id)
            for kind in ("businesses", "practitioners", "appointment_types"):
                ids = list(x.replica.records[kind])
                assert y_view.lookup(kind, ids) == x_view.lookup(kind, ids)

            # Freshness too: the follower's sync instants are the holder's.
            async def same_instant() -> bool | None:
                ours = y.replica.sync_instant(APPOINTMENTS)
                return True if ours == x.replica.sync_instant(APPOINTMENTS) else None

            await eventually(same_instant, within=2.0, what="the holder's sync instant")
            assert y_view.freshness() is not None


async def test_a_follower_behind_a_trimmed_feed_reloads(
    sandbox: Starlette, shared_state: SharedState, web: httpx.AsyncClient
) -> None:
    feed = dataclasses.replace(FEED, max_entries=3)
    async with process("x", sandbox, shared_state, feed=feed) as x:
        await one_holder(x)
        async with process("y", sandbox, shared_state, feed=feed) as y:
            await one_holder(x, y)
            loaded = y.replicas.feed_stats.snapshots_loaded
            gaps = y.replicas.feed_stats.gaps
            y.state.stall()

            def behind_by(n: int) -> Callable[[], Awaitable[bool | None]]:
                async def check() -> bool | None:
                    ours, theirs = y.shared.entry, x.shared.entry
                    assert ours is not None
                    assert theirs is not None
                    return True if theirs[1] >= ours[1] + n else None

                return check

            # Its read in flight has returned: it stands still now.
            await eventually(behind_by(2), within=5.0, what="the follower falling behind")
            target = booked(sandbox, x.replica, skip=5)
            await edit_notes(web, target["id"], "while the follower was away")
            # More entries than the feed keeps go by.
            await eventually(behind_by(8), within=5.0, what="the feed trimmed past the follower")
            assert y.replica.appointments[target["id"]].notes != "while the follower was away"
            y.state.flow()
            await visible(y, target["id"], "while the follower was away", within=5.0)
            assert y.replicas.feed_stats.gaps == gaps + 1
            assert y.replicas.feed_stats.snapshots_loaded == loaded + 1
            assert y.transport.requests == []

            async def same() -> bool | None:
                return True if same_rows(x, y) else None

            await eventually(same, within=2.0, what="the same rows after the gap")


async def test_without_the_shared_state_each_syncs_then_they_converge(
    sandbox: Starlette, shared_state: SharedState, web: httpx.AsyncClient
) -> None:
    async with (
        process("x", sandbox, shared_state) as x,
        process("y", sandbox, shared_state) as y,
    ):
        await one_holder(x, y)
        x.state.down = y.state.down = True

        async def alone() -> bool | None:
            return True if x.role is y.role is Role.ALONE else None

        await eventually(alone, within=2.0, what="both syncing alone")
        polls = x.transport.polls(), y.transport.polls()
        target = booked(sandbox, x.replica, skip=7)
        await edit_notes(web, target["id"], "while Redis was down")
        for p in (x, y):
            await visible(p, target["id"], "while Redis was down", within=SYNC_INTERVAL + SLACK)
        await asyncio.sleep(MEASURE / 2)
        # Both poll Cliniko themselves, and keep their replicas fresh.
        assert x.transport.polls() - polls[0] >= 2
        assert y.transport.polls() - polls[1] >= 2
        for p in (x, y):
            view = p.replicas.view(A)
            assert view is not None
            assert view.live()
        assert x.replicas.feed_stats.unavailable == 1
        assert y.replicas.feed_stats.unavailable == 1

        x.state.down = y.state.down = False
        holder = await one_holder(x, y, within=5.0)
        follower = y if holder is x else x
        sent = len(follower.transport.requests)
        target = booked(sandbox, x.replica, skip=8)
        await edit_notes(web, target["id"], "after Redis came back")
        for p in (holder, follower):
            await visible(p, target["id"], "after Redis came back", within=SYNC_INTERVAL + SLACK)
        await asyncio.sleep(MEASURE / 2)
        assert len(follower.transport.requests) == sent, "the follower still reads Cliniko"
        assert holder.role is Role.HOLDER
        assert follower.role is Role.FOLLOWER


async def test_a_holder_that_loses_its_lease_stops_polling_at_once(
    sandbox: Starlette, shared_state: SharedState
) -> None:
    """Another token in the lease (it lapsed, someone took it): the holder follows."""
    async with process("x", sandbox, shared_state) as x:
        await one_holder(x)
        lease = x.shared.keys.lease
        await shared_state.delete(lease)
        await shared_state.set(lease, b"someone else", ttl=FEED.lease_ttl)
        lost = time.monotonic()

        async def following() -> bool | None:
            return True if x.role is Role.FOLLOWER else None

        await eventually(following, within=FEED.renew_every + SLACK, what="the holder following")
        assert x.replicas.feed_stats.lease_lost == 1
        polls = x.transport.polls()
        await asyncio.sleep(0.5)
        assert x.transport.polls() == polls, "it still polls without the lease"

        # The intruder never renews: the lease lapses and x takes it back, from its state.
        async def holding() -> bool | None:
            return True if x.role is Role.HOLDER else None

        await eventually(holding, within=FEED.lease_ttl + SLACK, what="the lease taken back")
        assert time.monotonic() - lost >= FEED.lease_ttl - 0.1
        assert x.replicas.feed_stats.lease_acquired == 2
        assert x.replicas.feed_stats.lease_handovers == 1
        spans = [r for r in x.transport.requests if is_span_read(r)]
        before = len(spans)
        await asyncio.sleep(0.5)
        assert len([r for r in x.transport.requests if is_span_read(r)]) - before < 5


async def test_what_a_followers_reads_ask_of_the_sync_the_holder_does(
    sandbox: Starlette, shared_state: SharedState
) -> None:
    """A patient a follower's read wants whole is read by the holder, once, for both."""
    async with (
        process("x", sandbox, shared_state) as x,
        process("y", sandbox, shared_state) as y,
    ):
        holder = await one_holder(x, y)
        follower = y if holder is x else x
        patient = booked(sandbox, holder.replica, skip=4)["patient_id"]
        assert not follower.replica.has_complete_patient(patient)
        view = follower.replicas.view(A)
        assert view is not None
        view.want_whole(patient)

        async def whole() -> bool | None:
            return True if follower.replica.has_complete_patient(patient) else None

        await eventually(whole, within=SLACK + FEED.follow_block, what="the patient read whole")
        assert holder.replica.has_complete_patient(patient)
        assert follower.transport.requests == []
        reads = [
            r
            for r in holder.transport.requests
            if f"patient_id:={patient}" in r.url.params.get_list("q[]")
        ]
        assert len(reads) == 1


async def test_watchers_are_told_each_change_once_on_holder_and_follower(
    sandbox: Starlette, shared_state: SharedState, web: httpx.AsyncClient
) -> None:
    """Live updates' hook: each process derives the appointment's event, once, as it applies."""
    async with (
        process("x", sandbox, shared_state) as x,
        process("y", sandbox, shared_state) as y,
    ):
        await one_holder(x, y)
        await settled(x)
        await settled(y)
        told: dict[str, list[AppointmentEvent]] = {"x": [], "y": []}

        def watcher(name: str) -> Callable[[str, Sequence[AppointmentEvent]], None]:
            def seen(key: str, events: Sequence[AppointmentEvent]) -> None:
                told[name].extend(events)

            return seen

        for p in (x, y):
            p.replicas.watch(watcher(p.name))
        target = booked(sandbox, x.replica, skip=3)
        await edit_notes(web, target["id"], "told everywhere")
        for p in (x, y):
            await visible(p, target["id"], "told everywhere", within=SYNC_INTERVAL + SLACK)
        # A few more polls (and feed entries) re-read the same row: no second event.
        await asyncio.sleep(3 * SYNC_INTERVAL)
        for name in ("x", "y"):
            mine = [e for e in told[name] if e.row.id == target["id"]]
            assert [(e.kind, e.row.notes) for e in mine] == [
                (ChangeKind.UPDATED, "told everywhere")
            ], name
