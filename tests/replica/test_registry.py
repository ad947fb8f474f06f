"""The process's replicas are bounded: when one starts, when one goes, and nothing left over.

``Replicas`` runs on a fake clock here (idleness and the five-minute start window are
minutes long), over a real upstream client talking to a real sandbox: a started replica
really syncs, so dropping it really has a task to cancel.  The sandbox accepts each demo
key with and without its ``-au1`` suffix, which gives four credentials (four
fingerprints) over two accounts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from appointments_gateway.replica import START_WINDOW_SECONDS, Replicas, SyncConfig
from appointments_gateway.sandbox import DEMO_KEY_A, DEMO_KEY_B
from appointments_gateway.upstream import Credential, UpstreamClient
from tests.conftest import Serve

from .conftest import SANDBOX_URL, make_sandbox, open_replicated

A, B = (Credential.from_api_key(k, base_url=SANDBOX_URL) for k in (DEMO_KEY_A, DEMO_KEY_B))
A_SHORT = Credential.from_api_key(DEMO_KEY_A.removesuffix("-au1"), base_url=SANDBOX_URL)
B_SHORT = Credential.from_api_key(DEMO_KEY_B.removesuffix("-au1"), base_url=SANDBOX_URL)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def sync_tasks() -> set[asyncio.Task[object]]:
    """The replica tasks alive on this loop (their names are ``replica-…``)."""
    return {t for t in asyncio.all_tasks() if t.get_name().startswith("replica-") and not t.done()}


@asynccontextmanager
async def registry(clock: Callable[[], float], **options: Any) -> AsyncIterator[Replicas]:
    """``Replicas`` over a fresh sandbox; closed (every task ended) when the block ends."""
    sandbox = make_sandbox()
    async with UpstreamClient(
        user_agent="replica tests (tests@example.com)",
        transport=httpx.ASGITransport(app=sandbox),
        governor=None,
    ) as upstream:
        replicas = Replicas(upstream, SyncConfig(), clock=clock, **options)
        try:
            yield replicas
        finally:
            await replicas.aclose()


def held(replicas: Replicas, *credentials: Credential) -> list[bool]:
    """Whether each credential has a replica (asking marks it read, as a request would)."""
    return [replicas.view(c) is not None for c in credentials]


async def test_one_cheap_query_starts_no_replica() -> None:
    async with registry(Clock(), start_after=10) as replicas:
        replicas.note_reads(A, 1)
        assert list(replicas.replicas()) == []
        assert replicas.started == 0
        assert replicas.view(A) is None
        assert sync_tasks() == set()


async def test_a_replica_starts_once_its_reads_spent_start_after_within_five_minutes() -> None:
    clock = Clock()
    async with registry(clock, start_after=10) as replicas:
        replicas.note_reads(A, 4)
        clock.now += 100
        replicas.note_reads(A, 5)
        replicas.note_reads(A, 0)  # a read served without a request costs nothing
        assert replicas.started == 0
        clock.now += START_WINDOW_SECONDS - 50  # the first 4 are now older than the window
        replicas.note_reads(A, 4)
        assert replicas.started == 0, "requests older than five minutes still counted"
        replicas.note_reads(B, 9)  # another key's spending is its own
        assert replicas.started == 0
        replicas.note_reads(A, 1)
        assert replicas.started == 1
        assert held(replicas, A, B) == [True, False]
        replicas.note_reads(A, 50)  # a running replica is not started again
        assert replicas.started == 1
        assert len(sync_tasks()) == 2  # its sync and the reaper


async def test_idle_replicas_are_dropped() -> None:
    clock = Clock()
    async with registry(clock, idle=60.0, start_after=0) as replicas:
        replicas.start(A)
        replicas.start(B)
        clock.now += 30
        assert held(replicas, A) == [True]  # A is read; B is not
        clock.now += 40
        replicas.drop_idle()
        assert held(replicas, A, B) == [True, False]
        assert replicas.dropped == 1
        clock.now += 61
        replicas.drop_idle()
        assert list(replicas.replicas()) == []
        assert replicas.dropped == 2


async def test_beyond_max_keys_the_least_recently_read_goes() -> None:
    clock = Clock()
    async with registry(clock, max_keys=3, start_after=0) as replicas:
        for credential in (A, B, A_SHORT):
            replicas.start(credential)
            clock.now += 1
        assert held(replicas, A) == [True]  # A read last: B is now the least recent
        replicas.start(B_SHORT)
        assert len(list(replicas.replicas())) == 3
        assert held(replicas, A, A_SHORT, B_SHORT, B) == [True, True, True, False]
        assert replicas.dropped == 1


async def test_after_aclose_no_task_is_left() -> None:
    clock = Clock()
    async with registry(clock, start_after=0) as replicas:
        before = sync_tasks()
        replicas.start(A)
        replicas.start(B)
        started = sync_tasks() - before
        assert len(started) == 3  # two syncs and the reaper
        # Let them work: a sync in the middle of a request must end cleanly too.
        for _, syncer in list(replicas.replicas()):
            await asyncio.wait_for(syncer.loaded.wait(), 20)
        await replicas.aclose()
        assert all(task.done() for task in started)
        assert sync_tasks() == before
        assert list(replicas.replicas()) == []


async def test_a_gateway_whose_key_makes_one_query_runs_no_replica(serve: Serve) -> None:
    """End to end, with the default start rule: a cheap query starts nothing."""
    async with open_replicated(serve, start=False, sync_start_after=10) as gw:
        answer = await gw.query("{ appointments(first: 5) { totalCount } }")
        assert not answer.errors, answer.errors
        assert 0 < answer.requests < 10
        assert answer.source == "upstream"
        assert list(gw.replicas.replicas()) == []
        metrics = (await gw.http.get("/metrics")).text
        assert "gateway_replica_keys 0.0" in metrics
    assert sync_tasks() == set()
