"""How late the event loop runs what is due: the measure of "no request blocks a worker".

One coroutine per worker sleeps :data:`INTERVAL_SECONDS` again and again and records how
much later than asked it woke.  A loop that always gets back to its queue promptly shows
a lag of a millisecond or less; anything synchronous that holds it (a slow validation, a
large JSON encode, a blocking call by mistake) shows up as lag of that length, in
``gateway_event_loop_lag_seconds``, whichever request caused it.  An operator alerts on
its high buckets; the hostile-input tests read the same figure.

Ten wake-ups a second cost a few microseconds each.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

__all__ = ["INTERVAL_SECONDS", "LoopLagMonitor"]

INTERVAL_SECONDS = 0.1


class LoopLagMonitor:
    """Samples the running loop's lag and hands each sample to ``observe``.

    Args:
        observe: called with each sample, in seconds (the metrics histogram).
        interval: seconds between samples.
    """

    def __init__(
        self, observe: Callable[[float], None], *, interval: float = INTERVAL_SECONDS
    ) -> None:
        self._observe = observe
        self._interval = interval
        #: The largest lag seen so far, in seconds.
        self.worst = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + self._interval
            await asyncio.sleep(self._interval)
            lag = max(0.0, loop.time() - asked)
            self.worst = max(self.worst, lag)
            self._observe(lag)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[LoopLagMonitor]:
        """Sample for as long as the block runs (the app's lifespan)."""
        task = asyncio.create_task(self.run(), name="loop-lag-monitor")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
