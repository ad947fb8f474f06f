"""Live updates: each replica's appointment events, fanned out to the subscribers of its key.

Cliniko has no webhooks, but the replica (DESIGN.md §8) learns of every change within a
poll, and derives what happened to each appointment as it applies the rows
(``replica/events.py``).  :class:`LiveUpdates` turns that into subscriptions at no
upstream cost: one watcher on the process's :class:`~appointments_gateway.replica.Replicas`
hands each batch of events to the subscribers of the credential it belongs to (keyed by
fingerprint, so a subscriber never sees another key's changes), and each subscriber
whose filter matches gets the event in its own queue.

**Matching**: an event goes to a subscriber when the row matches its filter now *or*
matched it before the change (the previous version, when known): a calendar must hear
that an appointment left it (cancelled, moved to another day, deleted), not only about
those that stay.  A deleted row is matched as if it were not deleted; a row cancelled or
archived whose previous version the replica never held (outside its window) is matched
as it was but for that stamp.

**Bounds**: each subscriber's queue holds at most ``queue`` events.  A subscriber whose
queue is full when an event arrives (its client reads slower than changes come) is
dropped at once: unregistered, its queue no longer fed, and its stream ends with
``SLOW_CONSUMER`` when it next reads, rather than the gateway buffering for it without
bound.  At most ``per_key`` subscriptions per credential in this process
(``TOO_MANY_SUBSCRIPTIONS``).

**The replica**: a subscription pins its key's replica (``Replicas.pin``): started if it
was not running, and kept, however long no read comes, until its last subscriber leaves.
A subscriber that leaves (its client went, or completed the subscription) is removed at
once; nothing is queued for it after that, and nothing of it stays behind.

Everything here is one step on the event loop (the watcher runs inside the replica's
apply), so the counts are exact and no lock is needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from appointments_gateway.replica import AppointmentEvent, ChangeKind, PinRefused, Replicas
from appointments_gateway.resolvers.criteria import AppointmentCriteria
from appointments_gateway.resolvers.errors import (
    LiveUpdatesUnavailable,
    SlowConsumer,
    TooManySubscriptions,
)
from appointments_gateway.resolvers.local import matches
from appointments_gateway.upstream import Credential

__all__ = ["LiveLimits", "LiveStats", "LiveUpdates", "Subscriber"]


@dataclass(frozen=True, slots=True)
class LiveLimits:
    """Settings ``GATEWAY_SUBSCRIPTIONS_PER_KEY`` and ``GATEWAY_SUBSCRIPTION_QUEUE``."""

    per_key: int = 1000
    queue: int = 100


@dataclass(slots=True)
class LiveStats:
    """Counters for ``/metrics``: events delivered, subscribers dropped, refusals."""

    delivered: int = 0
    dropped_slow: int = 0
    refused: int = 0


class Subscriber:
    """One subscription's place in the fan-out: its key, its filter, its bounded queue."""

    __slots__ = ("criteria", "dropped", "fingerprint", "queue")

    def __init__(self, fingerprint: str, criteria: AppointmentCriteria, size: int) -> None:
        self.fingerprint = fingerprint
        self.criteria = criteria
        self.queue: asyncio.Queue[AppointmentEvent] = asyncio.Queue(maxsize=size)
        #: Set when its queue overflowed: the stream ends with ``SLOW_CONSUMER``.
        self.dropped = False

    def wants(self, event: AppointmentEvent) -> bool:
        """Whether the event concerns this subscriber's filter (see the module docstring)."""
        kind = event.kind
        deleted = kind is ChangeKind.DELETED
        criteria = self.criteria
        if matches(criteria, event.row, deleted=deleted):
            return True
        before = event.before
        if before is None and kind is ChangeKind.CANCELLED:
            # Not held before (outside the replica's window): as it was but for this.
            before = replace(event.row, cancelled_at=None)
        elif before is None and kind is ChangeKind.ARCHIVED:
            before = replace(event.row, archived_at=None)
        return before is not None and matches(criteria, before, deleted=deleted)

    async def next(self) -> AppointmentEvent:
        """The next event; ``SlowConsumer`` once dropped."""
        if self.dropped:
            raise self.slow()
        return await self.queue.get()

    def slow(self) -> SlowConsumer:
        size = self.queue.maxsize
        return SlowConsumer(
            f"This subscription fell {size} events behind and was ended; subscribe again "
            "(and read faster, or narrow the filter).",
            queueSize=size,
        )


class LiveUpdates:
    """The process's fan-out of replica events to subscribers (see the module docstring).

    Args:
        replicas: the process's replicas; one watcher is registered on them.
        limits: per key and per queue.
    """

    def __init__(self, replicas: Replicas, limits: LiveLimits | None = None) -> None:
        self._replicas = replicas
        self.limits = limits or LiveLimits()
        self.stats = LiveStats()
        self._by_key: dict[str, set[Subscriber]] = {}
        self._unpins: dict[Subscriber, Callable[[], None]] = {}
        self._unwatch = replicas.watch(self._fan_out)

    def subscribe(self, credential: Credential, criteria: AppointmentCriteria) -> Subscriber:
        """Register a subscriber of ``credential``'s changes matching ``criteria``."""
        key = credential.fingerprint
        subscribers = self._by_key.get(key)
        limit = self.limits.per_key
        if subscribers is not None and len(subscribers) >= limit:
            self.stats.refused += 1
            raise TooManySubscriptions(
                f"This API key has {limit} live subscriptions on this gateway process "
                "already (GATEWAY_SUBSCRIPTIONS_PER_KEY); end one first.",
                limit="perKey",
                max=limit,
            )
        try:
            unpin = self._replicas.pin(credential)
        except PinRefused:
            self.stats.refused += 1
            raise LiveUpdatesUnavailable(
                "This gateway process follows as many API keys live as it keeps replicas "
                "(GATEWAY_SYNC_MAX_KEYS); try again later."
            ) from None
        subscriber = Subscriber(key, criteria, self.limits.queue)
        self._by_key.setdefault(key, set()).add(subscriber)
        self._unpins[subscriber] = unpin
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Remove a subscriber (idempotent): nothing more is queued for it."""
        subscribers = self._by_key.get(subscriber.fingerprint)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._by_key[subscriber.fingerprint]
        unpin = self._unpins.pop(subscriber, None)
        if unpin is not None:
            unpin()

    def active(self) -> int:
        """Subscriptions registered now."""
        return sum(len(subscribers) for subscribers in self._by_key.values())

    def keys(self) -> int:
        """Credentials with at least one subscriber."""
        return len(self._by_key)

    def close(self) -> None:
        """Stop watching the replicas (the app is shutting down)."""
        self._unwatch()

    def _fan_out(self, key: str, events: Sequence[AppointmentEvent]) -> None:
        subscribers = self._by_key.get(key)
        if not subscribers:
            return
        for subscriber in list(subscribers):
            for event in events:
                if subscriber.dropped or not subscriber.wants(event):
                    continue
                try:
                    subscriber.queue.put_nowait(event)
                except asyncio.QueueFull:
                    subscriber.dropped = True
                    self.stats.dropped_slow += 1
                    self.unsubscribe(subscriber)
                    break
