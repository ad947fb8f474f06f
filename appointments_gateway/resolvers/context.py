"""The per-request ``Context`` every resolver receives.

A new one is built for every GraphQL request: it holds the upstream session bound to the
caller's credential, so request counts, loaders and anything cached in them can never be
shared between two callers (a shared cache would leak one clinic's patients to another).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from appointments_gateway.upstream import ClinikoSession

__all__ = ["Context"]


@dataclass(slots=True)
class Context:
    """What a resolver may use: the HTTP request and this caller's upstream session."""

    request: HTTPConnection
    upstream: ClinikoSession
