"""The per-request ``Context`` every resolver receives.

A new one is built for every GraphQL request: it holds the upstream session bound to the
caller's credential and that request's dataloaders, so request counts, loaders and
anything cached in them can never be shared between two callers (a shared cache would
leak one clinic's patients to another).  The one process-wide thing it carries is the
idempotency store, whose keys are scoped by credential fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from appointments_gateway.resolvers.idempotency import Idempotency
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

    @classmethod
    def for_session(
        cls, request: HTTPConnection, session: ClinikoSession, *, idempotency: Idempotency
    ) -> Context:
        return cls(
            request=request, upstream=session, loaders=Loaders(session), idempotency=idempotency
        )

    def note_page(self, window: Slice[AppointmentRecord]) -> None:
        """Remember a page whose cursor anchor had moved or vanished."""
        status = window.anchor_status
        if status in ("moved", "lost"):
            self.drifted_pages.append({"anchor": status, "drift": window.drift})
