"""The per-request ``Context`` every resolver receives.

A new one is built for every GraphQL request: it holds the upstream session bound to the
caller's credential and that request's dataloaders, so request counts, loaders and
anything cached in them can never be shared between two callers (a shared cache would
leak one clinic's patients to another).  The one process-wide thing it carries is the
idempotency store, whose keys are scoped by credential fingerprint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from starlette.requests import HTTPConnection

from appointments_gateway.replica import ReplicaView
from appointments_gateway.resolvers.idempotency import Idempotency
from appointments_gateway.resolvers.live import LiveUpdates
from appointments_gateway.resolvers.loaders import Loaders
from appointments_gateway.resolvers.pagination import Slice
from appointments_gateway.upstream import AppointmentRecord, ClinikoSession

__all__ = ["Context"]


@dataclass(slots=True)
class Context:
    """What a resolver may use: the HTTP request, the upstream session and its loaders."""

    request: HTTPConnection
    upstream: ClinikoSession
    loaders: Loaders
    #: Process-wide (built in the app's lifespan): idempotency keys of creates.
    idempotency: Idempotency
    #: Cursors whose anchor row had moved (rows inserted or removed between two page
    #: requests), reported in ``extensions.pagination`` so clients can tell.
    drifted_pages: list[dict[str, object]] = field(default_factory=list)
    #: The admission check's upper bound on this operation's upstream requests.
    estimated_requests: int | None = None
    #: The credential's replica (DESIGN.md §8), asked before the upstream; ``None`` when
    #: it runs no replica, or the request said ``Cache-Control: no-cache``.
    local: ReplicaView | None = None
    #: When the operation began (UNIX seconds): what an upstream answer is current as of.
    started_at: float = field(default_factory=time.time)
    #: Live updates (``live.py``): the process's fan-out; ``None`` without replicas.
    live: LiveUpdates | None = None
    #: For an operation that outlives its request (a subscription): a fresh upstream
    #: session and replica view, for each result (:meth:`renew`).
    renewal: Callable[[], tuple[ClinikoSession, ReplicaView | None]] | None = None

    @classmethod
    def for_session(
        cls,
        request: HTTPConnection,
        session: ClinikoSession,
        *,
        idempotency: Idempotency,
        local: ReplicaView | None = None,
        live: LiveUpdates | None = None,
        renewal: Callable[[], tuple[ClinikoSession, ReplicaView | None]] | None = None,
    ) -> Context:
        return cls(
            request=request,
            upstream=session,
            loaders=Loaders(session, local),
            idempotency=idempotency,
            local=local,
            live=live,
            renewal=renewal,
        )

    def renew(self) -> None:
        """Start afresh for the next result of a long-lived operation (a subscription).

        A new upstream session (its own deadline and request count), a new replica view
        (its own freshness) and new loaders, so nothing one result loaded (a patient as
        it was an hour ago) is served to the next, and each result's ``extensions`` tell
        its own cost.  Without ``renewal`` (an ordinary request) nothing changes.
        """
        if self.renewal is None:
            return
        session, local = self.renewal()
        self.upstream = session
        self.local = local
        self.loaders = Loaders(session, local)
        self.drifted_pages = []
        self.started_at = time.time()

    def freshness(self) -> dict[str, str]:
        """``extensions.freshness``: where the data came from, and as of when.

        ``source``: ``replica`` (no upstream request), ``upstream`` (no replica row),
        ``mixed``, or ``none`` (nothing was read: ``__typename``, a refused write).
        ``asOf``: every change made before this instant is in the answer; for replica
        rows the oldest sync instant they rely on, else the start of the operation.
        """
        relied = self.local.freshness() if self.local is not None else None
        requested = self.upstream.stats.requests > 0
        if relied is None:
            source, instant = ("upstream" if requested else "none"), self.started_at
        elif requested:
            source, instant = "mixed", min(relied, self.started_at)
        else:
            source, instant = "replica", relied
        stamp = datetime.fromtimestamp(instant, UTC).isoformat(timespec="milliseconds")
        return {"source": source, "asOf": stamp.replace("+00:00", "Z")}

    def note_page(self, window: Slice[AppointmentRecord]) -> None:
        """Remember a page whose cursor anchor had moved or vanished."""
        status = window.anchor_status
        if status in ("moved", "lost"):
            self.drifted_pages.append({"anchor": status, "drift": window.drift})
