"""The upstream budget governor: at most N requests per key in any 60 seconds, waits bounded.

Cliniko allows 200 requests per minute per *user* (UPSTREAM.md §3.4), and every caller
that shares a key shares that budget. A 429 costs a round trip, fails the operation and
may count towards Cliniko's "fair use" blocking, so the gateway spends the budget itself:
every HTTP attempt (retries included) first takes a token from its credential's bucket.
A caller waits for a token at most ``max_wait`` seconds (and never past its operation's
deadline); if the token is further away the request fails at once with
:class:`RateBudgetExhausted`, an :class:`UpstreamRateLimited` whose
``retry_after_seconds`` says when to come back, so clients see ``RATE_LIMITED`` with
``retryAfterSeconds`` instead of hanging.

**The bucket, and why it never exceeds N in any window.** Cliniko does not document its
window (fixed and aligned to the minute, fixed and opened by the first request as the
sandbox does, or sliding), so the only safe promise is the strongest: *no 60-second
interval, wherever it starts, contains more than N of our requests*. A token bucket of
capacity ``C`` refilled at ``r`` per second (stored as GCRA, see :mod:`appointments_gateway.state`)
lets at most ``C + r·W`` requests out in any closed interval of length ``W``:

    The i-th grant's theoretical arrival time ``tat_i`` grows by exactly ``T = 1/r`` per
    grant, and grant i is sent at ``s_i`` with ``tat_i - tau <= s_i <= tat_i`` where
    ``tau = (C-1)·T``. So for grants ``i < j``: ``s_j - s_i >= (j-i)·T - tau``. If both lie
    in an interval of length ``W``, then ``(j-i)·T - tau <= W``, i.e. ``j - i <= r·W + C - 1``,
    and the interval holds at most ``j - i + 1 <= C + r·W`` grants.

A bucket at the full rate ``r = N/60`` would therefore allow ``C + N`` per minute, more
than N for any ``C >= 1``; and a rate that keeps ``C + r·60 <= N`` must give up part of the
budget for bursts. The gateway also needs a *margin* ``m``: Cliniko counts a request when it
*arrives*, and arrivals trail our grants by a varying delay (event loop, connection pool,
network), so grants in ``[t, t+60+m]`` can all arrive within one 60-second window when
that delay varies by up to ``m``; the same margin absorbs a clock that lags Cliniko's.
Hence::

    r = (N - C) / (60 + m)   so that   C + r·(60 + m) = N

Defaults ``N = 200``, ``C = 20`` (a tenth of the budget), ``m = 1 s`` give a burst of 20
requests at once (an operation of up to 20 upstream calls never waits on an idle key; the
admission limit per operation is about that size), then one request every 0.34 s, i.e.
177 a minute sustained, 88% of the budget. A sliding-window log (N timestamps per key)
would keep the whole budget and allow a burst of 200, but after such a burst every caller
of the key would wait a full minute, far beyond any sensible ``max_wait``; the bucket
spreads the budget evenly so a waiting caller is served within a fraction of a second.

**429s.** If Cliniko answers 429 anyway (another application uses the same user's key,
replicas with separate in-memory budgets, a delay beyond the margin), the credential is
paused until ``X-RateLimit-Reset`` plus the margin (the reset is whole seconds and our
clock may lag), or a whole window when the answer carries no reset. While paused every
request for that key waits or fails fast like any other. The client (``UpstreamClient``)
retries an idempotent read that got the 429 **once**, after the pause, if the pause ends
within what the read may still wait. Writes are not retried: a 429 is most likely refused
before processing, but nothing in Cliniko's documentation promises that, and the retry
rule is about duplicates (see :mod:`.retry`); a create carries an idempotency key, so the
caller can retry it safely after ``retryAfterSeconds``.

The budget lives in a :class:`~appointments_gateway.state.SharedState` under the
credential's fingerprint (never the key), so replicas can share it through Redis; with the
default :class:`~appointments_gateway.state.InMemoryState` each process keeps its own, and
the per-process limit must be divided by the number of processes serving one key.

**Background requests** (the replica's sync, DESIGN.md §8) take what interactive reads
leave: :meth:`Governor.acquire_background` never waits and never queues.  It takes a token
from a second bucket per key, sized by the proof above so that it lets out at most
``background_share`` of the limit in any window, and then one from the key's own bucket only
while that bucket holds more than ``background_reserve`` tokens (taken as GCRA with the
capacity lowered by the reserve, so the same atomic step works in Redis).  Under pressure the
key's bucket stays below the reserve, the background caller is refused at once, and its
interval stretches.  So a burst of up to ``background_reserve`` interactive calls always finds
its tokens, and sync never takes a token from a bucket that reads have drawn down: what sync
spends comes out of budget that would otherwise have gone unused.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from appointments_gateway.state import InMemoryState, SharedState

from .errors import UpstreamRateLimited

__all__ = [
    "DEFAULT_MARGIN_SECONDS",
    "DEFAULT_MAX_WAIT_SECONDS",
    "DEFAULT_RATE_LIMIT",
    "BackgroundShareSpent",
    "Governor",
    "GovernorStats",
    "RateBudgetExhausted",
]

DEFAULT_RATE_LIMIT = 200
"""Cliniko's documented limit: requests per minute per user (UPSTREAM.md §3.4)."""
DEFAULT_MAX_WAIT_SECONDS = 5.0
"""How long one upstream call may wait for the budget before ``RATE_LIMITED``."""
DEFAULT_MARGIN_SECONDS = 1.0
"""Slack for arrival jitter and clock offset; see the module docstring."""
WINDOW_SECONDS = 60.0
"""Cliniko's limit is per minute."""


class RateBudgetExhausted(UpstreamRateLimited):
    """Refused by the gateway's own governor: nothing was sent to Cliniko.

    ``status_code`` is 429 because that is what it stands for; ``retry_after_seconds``
    is when a token (or the end of a pause) is due for this key.
    """


class BackgroundShareSpent(RateBudgetExhausted):
    """A background request refused because background work spent its own share.

    Unlike a plain refusal of a background request, this says nothing about reads: the
    key's budget may be idle.  The replica's sync tells them apart to stretch its
    interval only when reads need the budget.
    """


@dataclass(slots=True)
class GovernorStats:
    """Counters for operators, kept on the governor (metrics come later).

    Attributes:
        granted: attempts let through.
        waits: attempts that had to wait before being let through or refused.
        waited_seconds: total time those attempts waited.
        refused: attempts refused with :class:`RateBudgetExhausted`.
        upstream_429s: 429 answers from Cliniko despite the budget.
        retried_after_429: idempotent reads sent again after a 429's pause.
        background_granted: background (sync) attempts let through.
        background_refused: background attempts refused (they never wait).
    """

    granted: int = 0
    waits: int = 0
    waited_seconds: float = 0.0
    refused: int = 0
    upstream_429s: int = 0
    retried_after_429: int = 0
    background_granted: int = 0
    background_refused: int = 0


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class Governor:
    """A token bucket per upstream credential in front of every upstream HTTP attempt.

    Args:
        state: where buckets and pauses live; a fresh :class:`InMemoryState` by default.
        limit: the upstream's limit, requests per ``window`` per key; 0 turns the
            governor off (every attempt goes straight through).
        window: the length of the upstream's window in seconds (Cliniko: 60). Tests
            shrink it, with the sandbox's, to see many windows in a few seconds.
        burst: the bucket's capacity, ``1 <= burst < limit``; a tenth of ``limit``
            by default.
        margin: seconds of slack for arrival jitter and clock offset.
        max_wait: how long one upstream call may wait in total, in seconds.
        clock: UNIX seconds; the same timeline as ``X-RateLimit-Reset``.
        sleep: awaited to wait; injectable, with ``clock``, for tests on a fake timeline.
    """

    __slots__ = (
        "_clock",
        "_sleep",
        "_state",
        "background_capacity",
        "background_rate",
        "background_reserve",
        "burst",
        "limit",
        "margin",
        "max_wait",
        "rate_per_second",
        "stats",
        "window",
    )

    def __init__(
        self,
        state: SharedState | None = None,
        *,
        limit: int = DEFAULT_RATE_LIMIT,
        window: float = WINDOW_SECONDS,
        burst: int | None = None,
        margin: float = DEFAULT_MARGIN_SECONDS,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = _sleep,
        background_share: float = 0.2,
    ) -> None:
        if limit < 0 or limit == 1:
            raise ValueError(
                f"limit must be 0 (off) or at least 2 requests per window, got {limit}."
            )
        if not (math.isfinite(window) and window > 0):
            raise ValueError(f"window must be a number of seconds above 0, got {window}.")
        if not (math.isfinite(margin) and margin >= 0):
            raise ValueError(f"margin must be a number of seconds of at least 0, got {margin}.")
        if not (math.isfinite(max_wait) and max_wait >= 0):
            raise ValueError(f"max_wait must be a number of seconds of at least 0, got {max_wait}.")
        if burst is None:
            burst = max(1, limit // 10)
        if limit and not 1 <= burst < limit:
            raise ValueError(f"burst must be at least 1 and below limit ({limit}), got {burst}.")
        self._state: SharedState = InMemoryState(clock=clock) if state is None else state
        self._clock = clock
        self._sleep = sleep
        self.limit = limit
        self.window = window
        self.burst = burst
        self.margin = margin
        self.max_wait = max_wait
        self.rate_per_second = (limit - burst) / (window + margin) if limit else 0.0
        if not (math.isfinite(background_share) and 0.0 <= background_share <= 1.0):
            raise ValueError(f"background_share must be within 0..1, got {background_share}.")
        # The background bucket obeys the same bound as the key's: capacity plus what
        # refills in a window and its margin is the share of the limit, never more.
        share = background_share * limit
        self.background_capacity = max(1.0, min(burst / 2, share / 4))
        #: Background requests per second at most (0: no background requests at all).
        self.background_rate = (
            max(0.0, share - self.background_capacity) / (window + margin) if limit else 0.0
        )
        #: Tokens of the key's bucket that background requests never take.
        self.background_reserve = burst // 2
        self.stats = GovernorStats()

    def __repr__(self) -> str:
        return (
            f"Governor(limit={self.limit}, window={self.window:g}, burst={self.burst}, "
            f"margin={self.margin:g}, max_wait={self.max_wait:g})"
        )

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def now(self) -> float:
        """The governor's clock, in UNIX seconds."""
        return self._clock()

    async def acquire(
        self, key: str, *, max_wait: float | None = None, method: str = "", route: str = ""
    ) -> float:
        """Wait until ``key`` may send one request; return the seconds waited.

        Args:
            key: the credential's fingerprint (never the API key itself).
            max_wait: the most this attempt may wait; ``None`` is the governor's own.
            method: for the error message only.
            route: the route template, for the error message only.

        Raises:
            RateBudgetExhausted: the token, or the end of the key's pause, is further
                away than ``max_wait``; nothing was taken from the budget.
        """
        if not self.enabled:
            return 0.0
        allowance = self.max_wait if max_wait is None else max(0.0, max_wait)
        bucket = _bucket(key)
        started = self._clock()
        while True:
            now = self._clock()
            left = allowance - (now - started)
            until = await self._state.paused_until(bucket, now=now)
            if until is not None:
                pause = until - now
                if pause > left:
                    self._refuse(now - started, pause, method, route)
                await self._sleep(pause)
                continue
            wait = await self._state.take_tokens(
                bucket,
                rate_per_second=self.rate_per_second,
                capacity=self.burst,
                max_wait=max(0.0, left),
                now=now,
            )
            if wait > max(0.0, left):
                self._refuse(now - started, wait, method, route)
            if wait > 0:
                await self._sleep(wait)
                if await self._state.paused_until(bucket, now=self._clock()) is not None:
                    # A 429 paused the key while we slept: give the reserved token up
                    # (sending less never hurts) and queue again behind the pause.
                    continue
            waited = self._clock() - started
            self.stats.granted += 1
            if waited > 0:
                self.stats.waits += 1
                self.stats.waited_seconds += waited
            return waited

    async def acquire_background(
        self,
        key: str,
        *,
        keep: int = 0,
        queue: float = 0.0,
        share_wait: float = 0.0,
        method: str = "",
        route: str = "",
    ) -> float:
        """Take a token for a background request, or raise; return the seconds waited.

        ``keep``: background tokens this request must leave for more urgent background
        work (the replica's bulk loading keeps some for its freshness polls).
        ``queue``: 0 (the default) never waits and takes only what reads leave (module
        doc).  Above 0, the request waits its turn in the key's queue like a read, for
        at most ``queue`` seconds, still within the background share: for a replica
        that cannot otherwise load or stay fresh while reads use the whole budget
        (``replica/sync.py`` says when).  Its caller sends one such request at a time.
        ``share_wait``: how long it may wait for the background share itself (in line
        with other background requests, never with reads); 0: only a token there now.

        Raises:
            RateBudgetExhausted: the background share is spent, the key's bucket is down
                to its reserve for interactive reads (or its queue is longer than
                ``queue``), or the key is paused after a 429.
        """
        if not self.enabled:
            return 0.0
        if self.background_rate <= 0:
            self._refuse_background(self.window, method, route)
        bucket = _bucket(key)
        started = now = self._clock()
        until = await self._state.paused_until(bucket, now=now)
        if until is not None:
            if until - now > queue:
                self._refuse_background(until - now, method, route)
            await self._sleep(until - now)
            now = self._clock()
        wait = await self._state.take_tokens(
            f"{bucket}:background",
            rate_per_second=self.background_rate,
            # A small bucket keeps at most half of itself for the more urgent work.
            capacity=max(1.0, self.background_capacity - min(keep, self.background_capacity / 2)),
            max_wait=share_wait,
            now=now,
        )
        if wait > share_wait:
            self._refuse_background(wait, method, route, share=True)
        if wait > 0:
            await self._sleep(wait)
            now = self._clock()
        if queue:
            # In line with the reads: the key's full capacity, waiting at most ``queue``.
            wait = await self._state.take_tokens(
                bucket,
                rate_per_second=self.rate_per_second,
                capacity=self.burst,
                max_wait=queue,
                now=now,
            )
            if wait > queue:
                self._refuse_background(wait, method, route)
        else:
            wait = await self._state.take_tokens(
                bucket,
                rate_per_second=self.rate_per_second,
                capacity=max(1.0, self.burst - self.background_reserve),
                now=now,
            )
            if wait > 0:
                # The background token is lost: that only ever sends less.
                self._refuse_background(wait, method, route)
        if wait > 0:
            await self._sleep(wait)
        self.stats.background_granted += 1
        return self._clock() - started

    def _refuse_background(
        self, retry_after: float, method: str, route: str, *, share: bool = False
    ) -> None:
        self.stats.background_refused += 1
        error = BackgroundShareSpent if share else RateBudgetExhausted
        raise self._refusal(error, "no background budget now", retry_after, method, route)

    async def rate_limited(self, key: str, error: UpstreamRateLimited) -> float:
        """Record a 429 from Cliniko: pause ``key``; return the instant the pause ends.

        The pause runs to ``X-RateLimit-Reset`` (or ``Retry-After``) plus the margin, at
        least the margin from now, and a whole window when the answer said nothing.
        """
        self.stats.upstream_429s += 1
        now = self._clock()
        if error.reset_at is not None:
            until = error.reset_at.timestamp() + self.margin
        elif error.retry_after_seconds is not None:
            until = now + error.retry_after_seconds + self.margin
        else:
            until = now + self.window
        return await self._state.pause(_bucket(key), max(until, now + self.margin))

    def _refuse(self, waited: float, retry_after: float, method: str, route: str) -> None:
        self.stats.refused += 1
        if waited > 0:
            self.stats.waits += 1
            self.stats.waited_seconds += waited
        raise self._refusal(
            RateBudgetExhausted,
            "the upstream request budget for this API key is used up",
            retry_after,
            method,
            route,
        )

    def _refusal(
        self,
        error: type[RateBudgetExhausted],
        message: str,
        retry_after: float,
        method: str,
        route: str,
    ) -> RateBudgetExhausted:
        what = f"{method} {route}: " if method or route else ""
        return error(
            f"{what}{message}",
            status_code=429,
            reset_at=datetime.fromtimestamp(self._clock() + retry_after, UTC),
            retry_after_seconds=retry_after,
            method=method,
            route=route,
        )


def _bucket(key: str) -> str:
    return f"upstream:{key}"
