"""Errors raised by the Cliniko REST client, and their translation from httpx.

Two separate trees. The first is what can go wrong *talking* to Cliniko; the
second is what we refuse before a single byte is sent.

UpstreamError                      (Exception)
 ├── UpstreamProtocolError          a 2xx/3xx we cannot use: malformed or unexpected body
 ├── UpstreamUnavailable            5xx, connection refused/reset, DNS
 │    └── UpstreamTimeout           connect/read/write/pool timeout
 └── UpstreamStatusError            any other non-2xx answer; carries ``status_code``
      ├── UpstreamRejected          400: bad request, e.g. a filter the API refused
      │    └── UpstreamValidationError   422: carries ``field_errors``
      ├── UpstreamUnauthenticated   401: missing or wrong API key
      ├── UpstreamForbidden         403: the key's user lacks permission
      ├── UpstreamNotFound          404 (often an HTML page, never parsed)
      ├── UpstreamConflict          409
      └── UpstreamRateLimited       429: carries ``reset_at`` and ``retry_after_seconds``

UpstreamUsageError                 (ValueError)
 ├── InvalidApiKey                  too long, odd characters, or a suffix that is no shard
 ├── InvalidBaseUrl                 not an absolute http(s) URL, or plain http to Cliniko
 ├── UnsafeUserAgent                Cliniko requires ``Name (email@domain)``
 └── InvalidRequest                 undocumented filter/sort, bad id, bad page size or body

Messages never contain the upstream body, the API key or PHI: only the method,
the route *template* (``/patients/{id}``, not the path with the id) and the
status. Error bodies are not assumed to be JSON; the only body we read is the
422 ``errors`` map, which is kept on the exception, not in its message.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType

import httpx

__all__ = [
    "InvalidApiKey",
    "InvalidBaseUrl",
    "InvalidRequest",
    "UnsafeUserAgent",
    "UpstreamConflict",
    "UpstreamError",
    "UpstreamForbidden",
    "UpstreamNotFound",
    "UpstreamProtocolError",
    "UpstreamRateLimited",
    "UpstreamRejected",
    "UpstreamStatusError",
    "UpstreamTimeout",
    "UpstreamUnauthenticated",
    "UpstreamUnavailable",
    "UpstreamUsageError",
    "UpstreamValidationError",
    "error_for_response",
    "translate_errors",
]


class UpstreamError(Exception):
    """Base class for every failure of a call to Cliniko.

    ``method`` and ``route`` say which call failed; ``route`` is the template
    (``/individual_appointments/{id}``) so ids never reach logs by accident.
    """

    def __init__(self, message: str, *, method: str = "", route: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.route = route


class UpstreamProtocolError(UpstreamError):
    """Cliniko answered, but not with something we can use.

    A 200 whose body is not JSON, a record without an ``id``, a field of the
    wrong type, or an unexpected redirect. Retrying will not help.
    """


class UpstreamUnavailable(UpstreamError):
    """Cliniko could not be reached or answered with a server error (5xx).

    ``status_code`` is set for 5xx answers and ``None`` for network failures.
    Idempotent reads have already been retried when this is raised.
    """

    def __init__(
        self, message: str, *, method: str = "", route: str = "", status_code: int | None = None
    ) -> None:
        super().__init__(message, method=method, route=route)
        self.status_code = status_code


class UpstreamTimeout(UpstreamUnavailable):
    """A connect, read, write or connection-pool timeout.

    For a write this is ambiguous: the request may have been applied.
    """


class UpstreamStatusError(UpstreamError):
    """Cliniko answered with a 4xx status that has no more specific class.

    ``request_id`` echoes Cliniko's ``X-Request-Id`` header when present, for
    support tickets.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        method: str = "",
        route: str = "",
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, method=method, route=route)
        self.status_code = status_code
        self.request_id = request_id


class UpstreamRejected(UpstreamStatusError):
    """400: the request was malformed, typically a filter the API refused."""


class UpstreamValidationError(UpstreamRejected):
    """422: a write failed validation.

    ``field_errors`` maps the upstream field name to its message. The spec
    sends one string per field; Rails-style lists of strings are joined with
    ``"; "``. It is empty when the body was not the documented shape.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        field_errors: Mapping[str, str],
        method: str = "",
        route: str = "",
        request_id: str | None = None,
    ) -> None:
        super().__init__(
            message, status_code=status_code, method=method, route=route, request_id=request_id
        )
        self.field_errors: Mapping[str, str] = MappingProxyType(dict(field_errors))


class UpstreamUnauthenticated(UpstreamStatusError):
    """401: the API key is missing, wrong or revoked."""


class UpstreamForbidden(UpstreamStatusError):
    """403: the key's Cliniko user may not do this (keys carry user permissions)."""


class UpstreamNotFound(UpstreamStatusError):
    """404: no such record, or it is cancelled/archived and hidden by default."""


class UpstreamConflict(UpstreamStatusError):
    """409: the write conflicts with the record's current state."""


class UpstreamRateLimited(UpstreamStatusError):
    """429: the per-user budget (200 requests per minute) is spent.

    ``reset_at`` comes from ``X-RateLimit-Reset`` (UNIX seconds), falling back
    to ``Retry-After``; both are ``None`` if neither header is usable. Not
    retried by this client: the rate governor owns waiting.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        reset_at: datetime | None,
        retry_after_seconds: float | None,
        method: str = "",
        route: str = "",
        request_id: str | None = None,
    ) -> None:
        super().__init__(
            message, status_code=status_code, method=method, route=route, request_id=request_id
        )
        self.reset_at = reset_at
        self.retry_after_seconds = retry_after_seconds


class UpstreamUsageError(ValueError):
    """Refused before any request was sent: the call or configuration is wrong."""


class InvalidApiKey(UpstreamUsageError):
    """The API key is empty, too long, has unusable characters, or its suffix is no shard."""


class InvalidBaseUrl(UpstreamUsageError):
    """The explicit base URL is unusable, or would send the key to Cliniko in clear text."""


class UnsafeUserAgent(UpstreamUsageError):
    """Cliniko blocks clients without a ``Name (email@domain)`` User-Agent."""


class InvalidRequest(UpstreamUsageError):
    """An argument the endpoint does not document: filter, operator, sort, id, page, body."""


_STATUS_CLASSES: Mapping[int, type[UpstreamStatusError]] = {
    400: UpstreamRejected,
    401: UpstreamUnauthenticated,
    403: UpstreamForbidden,
    404: UpstreamNotFound,
    409: UpstreamConflict,
}


def error_for_response(
    response: httpx.Response, *, method: str, route: str, now: float | None = None
) -> UpstreamError:
    """Build the error for a non-2xx response; the caller raises it.

    ``now`` (UNIX seconds) is injectable so rate-limit arithmetic is testable.
    """
    status = response.status_code
    message = f"{method} {route} failed: upstream answered {status}"
    request_id = response.headers.get("x-request-id")
    if status >= 500:
        return UpstreamUnavailable(message, method=method, route=route, status_code=status)
    if status < 400:
        # Redirects are never followed: they could lead the key to another host.
        return UpstreamProtocolError(
            f"{method} {route}: unexpected status {status}", method=method, route=route
        )
    if status == 422:
        return UpstreamValidationError(
            message,
            status_code=status,
            field_errors=_field_errors(response.content),
            method=method,
            route=route,
            request_id=request_id,
        )
    if status == 429:
        reset_at, retry_after = _rate_limit_reset(
            response.headers, time.time() if now is None else now
        )
        return UpstreamRateLimited(
            message,
            status_code=status,
            reset_at=reset_at,
            retry_after_seconds=retry_after,
            method=method,
            route=route,
            request_id=request_id,
        )
    cls = _STATUS_CLASSES.get(status, UpstreamStatusError)
    return cls(message, status_code=status, method=method, route=route, request_id=request_id)


def _field_errors(content: bytes) -> dict[str, str]:
    """Read ``{"errors": {field: message | [messages]}}``; anything else gives ``{}``."""
    try:
        body = json.loads(content)
    except ValueError:
        return {}
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, dict):
        return {}
    result: dict[str, str] = {}
    for field, value in errors.items():
        if isinstance(value, str):
            result[str(field)] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            result[str(field)] = "; ".join(value)
    return result


def _rate_limit_reset(headers: httpx.Headers, now: float) -> tuple[datetime | None, float | None]:
    reset = headers.get("x-ratelimit-reset")
    if reset is not None:
        try:
            reset_ts = float(reset.strip())
        except ValueError:
            pass
        else:
            return datetime.fromtimestamp(reset_ts, UTC), max(0.0, reset_ts - now)
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        value = retry_after.strip()
        seconds: float | None
        if value.isascii() and value.isdigit():
            seconds = float(value)
        else:
            try:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - now
            except (TypeError, ValueError):
                seconds = None
        if seconds is not None:
            seconds = max(0.0, seconds)
            return datetime.fromtimestamp(now + seconds, UTC), seconds
    return None, None


@contextlib.contextmanager
def translate_errors(method: str, route: str) -> Iterator[None]:
    """Re-raise any httpx exception inside the block as the matching ``UpstreamError``.

    The most specific class wins, and the original is kept as ``__cause__``
    (httpx messages hold the URL, which holds ids but never the key).
    """
    try:
        yield
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(
            f"{method} {route} timed out ({type(exc).__name__})", method=method, route=route
        ) from exc
    except httpx.DecodingError as exc:
        raise UpstreamProtocolError(
            f"{method} {route}: undecodable response body", method=method, route=route
        ) from exc
    except httpx.TransportError as exc:
        # Connect/read/write errors, and the server hanging up mid-response.
        raise UpstreamUnavailable(
            f"{method} {route} failed: {type(exc).__name__}", method=method, route=route
        ) from exc
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
        raise UpstreamError(
            f"{method} {route} failed: {type(exc).__name__}", method=method, route=route
        ) from exc
