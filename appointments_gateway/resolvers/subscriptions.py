"""The ``appointmentChanged`` subscription's stream: a subscriber's events, one by one.

The schema's field (``schema/subscription.py``) iterates :func:`appointment_changes` and
builds each payload's appointment through the context's loaders, as a query would: from
the replica, at no upstream request when it is warm.  Before each result the context is
renewed (``Context.renew``): new loaders, a new session and replica view, so a payload
never shows what an earlier one loaded, and its ``extensions`` tell its own cost.

The subscriber is registered before the first event can arrive and removed in
``finally``, however the stream ends: the client completed it, left (the transport
cancels the operation's task), fell behind (``SLOW_CONSUMER``) or the server stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from appointments_gateway.replica import AppointmentEvent
from appointments_gateway.resolvers.context import Context
from appointments_gateway.resolvers.criteria import AppointmentCriteria
from appointments_gateway.resolvers.errors import LiveUpdatesUnavailable
from appointments_gateway.resolvers.local_time import local_day

__all__ = ["appointment_changes"]


async def appointment_changes(
    context: Context, criteria: AppointmentCriteria
) -> AsyncIterator[AppointmentEvent]:
    """Every change of the credential's appointments that concerns ``criteria``."""
    live = context.live
    if live is None:
        raise LiveUpdatesUnavailable(
            "Live updates follow the replica, and this gateway runs without one (GATEWAY_SYNC=off)."
        )
    # A local day becomes its startsAt bounds once (the business's zone, one lookup).
    criteria = await local_day(context.loaders, criteria)
    subscriber = live.subscribe(context.upstream.credential, criteria)
    try:
        while True:
            event = await subscriber.next()
            context.renew()
            live.stats.delivered += 1
            yield event
    finally:
        live.unsubscribe(subscriber)
