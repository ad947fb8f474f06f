"""The errors a GraphQL client sees, each with one stable ``extensions.code``.

GatewayError                  (Exception)  message is safe to show; ``code`` per DESIGN.md §5
 ├── BadUserInput             BAD_USER_INPUT: an argument the gateway refuses
 ├── NotFound                 NOT_FOUND: no such record for this credential
 ├── Unauthenticated          UNAUTHENTICATED: the upstream refused the key
 ├── Forbidden                FORBIDDEN: the key's user may not see this
 ├── RateLimited              RATE_LIMITED: with ``retryAfterSeconds``
 ├── TimedOut                 UPSTREAM_TIMEOUT: Cliniko did not answer in time
 ├── Unavailable              UPSTREAM_UNAVAILABLE: 5xx, refused connection, unusable body
 ├── UnknownTimeZone          UNKNOWN_TIME_ZONE: a business's zone the gateway cannot use
 │                            (none, or not in its tz database), with ``timeZone``
 ├── TooManySubscriptions     TOO_MANY_SUBSCRIPTIONS: a live-update limit, with ``limit``
 ├── SlowConsumer             SLOW_CONSUMER: a subscriber fell ``queueSize`` events behind
 └── LiveUpdatesUnavailable   LIVE_UPDATES_UNAVAILABLE: no replica to follow (sync off, or
                              every replica slot held by other keys' subscriptions)

Each is named for what the client is told, without the ``Upstream`` prefix that marks the
upstream client's own tree (``UpstreamNotFound`` becomes ``NotFound``, ``UpstreamTimeout``
becomes ``TimedOut``), so an import says which layer's error it is.
``translate_upstream()`` is the one place an ``UpstreamError`` becomes one of these.
Anything else that escapes a resolver is a bug, and the schema masks it as
``INTERNAL_SERVER_ERROR``.  No message carries an upstream body, a key or PHI.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any, ClassVar

from appointments_gateway.upstream import (
    InvalidRequest,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnauthenticated,
    UpstreamUnavailable,
)

__all__ = [
    "BadUserInput",
    "Forbidden",
    "GatewayError",
    "LiveUpdatesUnavailable",
    "NotFound",
    "RateLimited",
    "SlowConsumer",
    "TimedOut",
    "TooManySubscriptions",
    "Unauthenticated",
    "Unavailable",
    "UnknownTimeZone",
    "translate_upstream",
]


class GatewayError(Exception):
    """An expected failure whose message and extensions go to the client as they are."""

    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions: dict[str, Any] = {"code": self.code, **extensions}


class BadUserInput(GatewayError):
    """An argument is malformed or out of range; the message says which and why."""

    code = "BAD_USER_INPUT"


class NotFound(GatewayError):
    """The record does not exist, or this credential cannot see it."""

    code = "NOT_FOUND"


class Unauthenticated(GatewayError):
    """Cliniko refused the API key."""

    code = "UNAUTHENTICATED"


class Forbidden(GatewayError):
    """The key's Cliniko user lacks permission for this record."""

    code = "FORBIDDEN"


class RateLimited(GatewayError):
    """The credential's upstream budget is spent; retry after ``retryAfterSeconds``."""

    code = "RATE_LIMITED"


class TimedOut(GatewayError):
    """Cliniko did not answer in time."""

    code = "UPSTREAM_TIMEOUT"


class Unavailable(GatewayError):
    """Cliniko failed (5xx), could not be reached, or answered with an unusable body."""

    code = "UPSTREAM_UNAVAILABLE"


class UnknownTimeZone(GatewayError):
    """A local time or local day needs a business's zone, and it has none the gateway knows.

    ``timeZone``: the business's ``time_zone_identifier`` (``null`` when it has none).
    Retrying does not help until the business's zone, or the gateway's tzdata, changes.
    """

    code = "UNKNOWN_TIME_ZONE"


class TooManySubscriptions(GatewayError):
    """A subscription over a limit (per connection, per credential); ``limit`` says which."""

    code = "TOO_MANY_SUBSCRIPTIONS"


class SlowConsumer(GatewayError):
    """A subscriber left ``queueSize`` events unread: it is dropped, not buffered for."""

    code = "SLOW_CONSUMER"


class LiveUpdatesUnavailable(GatewayError):
    """Live updates follow a replica, and none can run for this credential now."""

    code = "LIVE_UPDATES_UNAVAILABLE"


def gateway_error_for(exc: UpstreamError | InvalidRequest) -> GatewayError:
    """The client-facing error for an upstream failure."""
    if isinstance(exc, InvalidRequest):
        return BadUserInput(str(exc))
    if isinstance(exc, UpstreamNotFound):
        return NotFound("The record was not found.")
    if isinstance(exc, UpstreamUnauthenticated):
        return Unauthenticated("Cliniko did not accept the API key.")
    if isinstance(exc, UpstreamForbidden):
        return Forbidden("The API key's Cliniko user may not access this record.")
    if isinstance(exc, UpstreamRateLimited):
        seconds = exc.retry_after_seconds
        retry_after = max(1, math.ceil(seconds)) if seconds is not None else 60
        return RateLimited(
            "The upstream rate limit for this API key is used up; retry later.",
            retryAfterSeconds=retry_after,
        )
    if isinstance(exc, UpstreamTimeout):
        return TimedOut("Cliniko did not answer in time.")
    if isinstance(exc, UpstreamRejected):
        # A 400 for a request we built: our filter or sort was refused, not the user's.
        return Unavailable("Cliniko refused the request the gateway built.")
    if isinstance(exc, UpstreamUnavailable):
        return Unavailable("Cliniko is unavailable; try again shortly.")
    return Unavailable("Cliniko answered in a way the gateway could not use.")


@contextlib.contextmanager
def translate_upstream() -> Iterator[None]:
    """Re-raise upstream failures as the matching ``GatewayError``."""
    try:
        yield
    except (UpstreamError, InvalidRequest) as exc:
        raise gateway_error_for(exc) from exc
