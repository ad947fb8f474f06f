"""The process-wide HTTP client and the per-request, per-credential session.

Why two objects: connection pooling and TLS set-up want **one** long-lived
``httpx.AsyncClient`` per process (building one costs ~20 ms of CA parsing),
while the gateway's "forward" mode has every caller bring their own Cliniko
key. So :class:`UpstreamClient` owns the pool and the retry policy and lives
in the app's lifespan, and :meth:`UpstreamClient.session` hands out a cheap
:class:`ClinikoSession` per GraphQL operation that holds the credential and
counts what that operation cost upstream (:class:`RequestStats`)::

    async with UpstreamClient(user_agent="Clinic Gateway (ops@example.com)") as upstream:
        session = upstream.session(Credential(api_key))
        page = await session.appointments.list(per_page=100, sort=["starts_at:desc"])
        patients = await session.patients.by_ids(r.patient_id for r in page.items if r.patient_id)
        session.stats.requests  # -> 2

Every URL is the credential's API root plus a route template filled with
validated ids: ``links`` URLs in responses are never followed, and redirects
are not either, so the key only ever travels to its own shard's host.
"""

from __future__ import annotations

import asyncio
import enum
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal, Self

import httpx
import orjson

from .credentials import Credential
from .errors import (
    UnsafeUserAgent,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamTimeout,
    error_for_response,
    translate_errors,
)
from .governor import Governor
from .records import (
    AppointmentTypeRecord,
    BusinessRecord,
    PatientCaseRecord,
    PatientRecord,
)
from .resources import (
    APPOINTMENT_TYPES,
    APPOINTMENTS,
    BUSINESSES,
    PATIENT_CASES,
    PATIENTS,
    PRACTITIONERS,
    AppointmentsResource,
    PractitionersResource,
    Resource,
)
from .retry import IDEMPOTENT_METHODS, RetryPolicy

__all__ = [
    "DEFAULT_GOVERNOR",
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "AttemptObserver",
    "ClinikoSession",
    "RequestStats",
    "UpstreamClient",
    "is_safe_user_agent",
]

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0, pool=5.0)
"""10 s to read/write, 5 s to connect, 5 s waiting for a pooled connection.

The pool wait is deliberate: if it fires we are the bottleneck, and the error
(UpstreamTimeout) is better than queueing forever.
"""
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
"""httpx's defaults, spelt out. The per-key rate governor, not the pool, is the throttle."""

AttemptObserver = Callable[[str, str, "int | str", float], None]
"""Told of every HTTP attempt: method, route template, status (or the transport error's
class name when no response came) and seconds.  It runs on the hot path: keep it cheap."""


class _Default(enum.Enum):
    GOVERNOR = enum.auto()


DEFAULT_GOVERNOR: Final = _Default.GOVERNOR
"""``UpstreamClient(governor=...)`` left out: a fresh governor at Cliniko's 200/min.

A sentinel rather than ``None`` because ``None`` means "no governor at all".
"""

# "Name (email@domain.tld)": what Cliniko asks for, or it "may block" the client.
_USER_AGENT = re.compile(r"\S.*\s\([^\s()@]+@[^\s()@]+\.[^\s()@.]+\)", re.ASCII)


def is_safe_user_agent(user_agent: str) -> bool:
    """True if ``user_agent`` looks like ``Name (email@domain)``, as Cliniko requires."""
    return _USER_AGENT.fullmatch(user_agent) is not None


@dataclass(slots=True)
class RequestStats:
    """What one session cost upstream, for ``extensions.upstream`` and metrics.

    ``requests`` counts HTTP requests that may have reached Cliniko, retries
    included; attempts that provably never left this machine (connection
    refused, connect or pool timeout) are not counted, since they cost no
    rate-limit budget. ``retries`` counts repeated attempts of any kind.
    ``seconds`` is wall time spent waiting on HTTP attempts, excluding backoff
    sleeps; concurrent requests each add their own time.
    """

    requests: int = 0
    retries: int = 0
    seconds: float = 0.0


_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class UpstreamClient:
    """The one process-wide connection pool to Cliniko; use it as an async context manager.

    Args:
        user_agent: ``Name (email@domain)``. Required by Cliniko; sessions for a
            real ``*.cliniko.com`` host are refused without it.
        timeout: httpx timeouts, or one number of seconds for all of them;
            see :data:`DEFAULT_TIMEOUT`.
        transport: an httpx transport, for tests (``MockTransport``) and the
            in-process sandbox (``ASGITransport``).
        retry: when and how to retry; see :mod:`.retry`.
        limits: connection-pool limits.
        governor: the per-key budget every attempt goes through (see :mod:`.governor`);
            by default a new one at 200 requests per minute in memory; ``None`` (or a
            governor with limit 0) sends without one.
        observer: called after every HTTP attempt, for metrics (see
            :data:`AttemptObserver`); it only ever sees route templates, never ids.
    """

    __slots__ = ("_http", "_observer", "_retry", "_safe_user_agent", "governor", "user_agent")

    def __init__(
        self,
        *,
        user_agent: str,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008  (frozen, so sharing is safe)
        limits: httpx.Limits = DEFAULT_LIMITS,
        governor: Governor | Literal[_Default.GOVERNOR] | None = DEFAULT_GOVERNOR,
        observer: AttemptObserver | None = None,
    ) -> None:
        if not user_agent or not user_agent.isprintable() or not user_agent.isascii():
            raise UnsafeUserAgent("The User-Agent must be non-empty printable ASCII.")
        self.user_agent = user_agent
        self._safe_user_agent = is_safe_user_agent(user_agent)
        self._retry = retry
        self._observer = observer
        if governor is DEFAULT_GOVERNOR:
            governor = Governor()
        self.governor = governor if governor is not None and governor.enabled else None
        self._http = httpx.AsyncClient(
            headers={"Accept": "application/json", "User-Agent": user_agent},
            timeout=timeout,
            transport=transport,
            limits=limits,
            follow_redirects=False,
        )

    async def __aenter__(self) -> Self:
        await self._http.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Close the pool; the client cannot be reopened (httpx forbids it)."""
        await self._http.aclose()

    def session(
        self,
        credential: Credential,
        *,
        background: bool = False,
        background_keep: int = 0,
        background_queue: float = 0.0,
        background_share_wait: float = 0.0,
    ) -> ClinikoSession:
        """A light session for one credential, typically one GraphQL operation.

        ``background``: its calls take only budget that interactive reads leave, and never
        wait for it (``Governor.acquire_background``, with ``background_keep`` as
        ``keep``, ``background_queue`` as ``queue``, ``background_share_wait`` as
        ``share_wait``); the replica's sync uses them.

        Raises:
            UnsafeUserAgent: the credential points at real Cliniko and the
                User-Agent is not ``Name (email@domain)``.
        """
        if not self._safe_user_agent and credential.is_cliniko:
            raise UnsafeUserAgent(
                "Cliniko requires a User-Agent of the form 'Name (email@domain)'; "
                "refusing to call a cliniko.com host without one."
            )
        return ClinikoSession(
            self,
            credential,
            background=background,
            background_keep=background_keep,
            background_queue=background_queue,
            background_share_wait=background_share_wait,
        )

    async def probe(self, url: str) -> int:
        """One unauthenticated GET, for readiness: the status, whatever it is.

        No credential, so no governor (it spends nobody's budget) and no retries (a
        readiness check answers now).  Raises ``httpx.HTTPError`` when no response came.
        """
        started = time.perf_counter()
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as exc:
            if self._observer is not None:
                self._observer("GET", "(probe)", type(exc).__name__, time.perf_counter() - started)
            raise
        if self._observer is not None:
            self._observer("GET", "(probe)", response.status_code, time.perf_counter() - started)
        return response.status_code

    async def _send(
        self,
        request: httpx.Request,
        method: str,
        route: str,
        stats: RequestStats,
        *,
        key: str,
        deadline: float | None = None,
        background: bool = False,
        background_keep: int = 0,
        background_queue: float = 0.0,
        background_share_wait: float = 0.0,
    ) -> httpx.Response:
        """Send with retries (see :mod:`.retry`); return a 2xx or raise an UpstreamError.

        Every attempt first passes the governor under ``key`` (the credential's
        fingerprint); all of them together wait at most the governor's ``max_wait``,
        and never past ``deadline`` (a ``time.monotonic()`` instant). An idempotent read
        answered 429 is sent once more after the key's pause, if it may wait that long.
        """
        policy = self._retry
        governor = self.governor
        observer = self._observer
        attempt = 0
        waited = 0.0
        retried_after_429 = False
        with translate_errors(method, route):
            while True:
                if governor is not None and background:
                    waited += await governor.acquire_background(
                        key,
                        keep=background_keep,
                        queue=background_queue,
                        share_wait=background_share_wait,
                        method=method,
                        route=route,
                    )
                elif governor is not None:
                    waited += await governor.acquire(
                        key,
                        max_wait=_allowance(governor, waited, deadline),
                        method=method,
                        route=route,
                    )
                started = time.perf_counter()
                try:
                    response = await self._http.send(request)
                except httpx.HTTPError as exc:
                    elapsed = time.perf_counter() - started
                    stats.seconds += elapsed
                    if observer is not None:
                        observer(method, route, type(exc).__name__, elapsed)
                    if not isinstance(exc, _NEVER_SENT):
                        stats.requests += 1
                    if attempt >= policy.max_retries or not policy.retries_exception(method, exc):
                        raise
                else:
                    elapsed = time.perf_counter() - started
                    stats.seconds += elapsed
                    if observer is not None:
                        observer(method, route, response.status_code, elapsed)
                    stats.requests += 1
                    if response.is_success:
                        return response
                    if response.status_code == 429 and governor is not None:
                        error = error_for_response(response, method=method, route=route)
                        assert isinstance(error, UpstreamRateLimited)
                        until = await governor.rate_limited(key, error)
                        if (
                            method in IDEMPOTENT_METHODS
                            and not background
                            and not retried_after_429
                            and until - governor.now() <= _allowance(governor, waited, deadline)
                        ):
                            # The next acquire() waits out the pause; no backoff on top.
                            retried_after_429 = True
                            governor.stats.retried_after_429 += 1
                            stats.retries += 1
                            continue
                        raise error
                    if attempt >= policy.max_retries or not policy.retries_status(
                        method, response.status_code
                    ):
                        raise error_for_response(response, method=method, route=route)
                await policy.sleep(policy.delay(attempt))
                attempt += 1
                stats.retries += 1


def _allowance(governor: Governor, waited: float, deadline: float | None) -> float:
    """What one call may still wait for the budget: its share left, within the deadline."""
    allowance = governor.max_wait - waited
    if deadline is not None:
        allowance = min(allowance, deadline - time.monotonic())
    return max(0.0, allowance)


class ClinikoSession:
    """Calls to Cliniko as one credential, with a per-session :class:`RequestStats`.

    Cheap to create (one per GraphQL operation); it owns no connections.
    Resources: ``appointments``, ``patients``, ``practitioners``,
    ``businesses``, ``appointment_types``, ``patient_cases``.

    **Deadline and cancellation.** With ``deadline`` set, a call that would start after
    it fails at once with :class:`UpstreamTimeout`, and one in flight (governor wait,
    HTTP attempts, retries and their backoff together) is cut short when it passes.
    :meth:`cancel` ends the operation's calls: those in flight are cancelled and new
    ones refused.  Calls are tracked here, not by the operation's task, because
    dataloaders send theirs from tasks of their own, which cancelling the operation's
    task would leave running and spending the key's budget for nobody.
    """

    __slots__ = (
        "_cancelled",
        "_in_flight",
        "_upstream",
        "appointment_types",
        "appointments",
        "background",
        "background_keep",
        "background_queue",
        "background_share_wait",
        "businesses",
        "credential",
        "deadline",
        "patient_cases",
        "patients",
        "practitioners",
        "stats",
    )

    def __init__(
        self,
        upstream: UpstreamClient,
        credential: Credential,
        *,
        background: bool = False,
        background_keep: int = 0,
        background_queue: float = 0.0,
        background_share_wait: float = 0.0,
    ) -> None:
        self._upstream = upstream
        self.credential = credential
        #: Calls take only budget interactive reads leave, and never wait for it.
        self.background = background
        self.background_keep = background_keep
        self.background_queue = background_queue
        self.background_share_wait = background_share_wait
        self.stats = RequestStats()
        #: A ``time.monotonic()`` instant past which no request waits for the rate
        #: budget (the operation's deadline); ``None``: only the governor's max_wait.
        self.deadline: float | None = None
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._cancelled = False
        self.appointments = AppointmentsResource(self, APPOINTMENTS)
        self.patients: Resource[PatientRecord] = Resource(self, PATIENTS)
        self.practitioners = PractitionersResource(self, PRACTITIONERS)
        self.businesses: Resource[BusinessRecord] = Resource(self, BUSINESSES)
        self.appointment_types: Resource[AppointmentTypeRecord] = Resource(self, APPOINTMENT_TYPES)
        self.patient_cases: Resource[PatientCaseRecord] = Resource(self, PATIENT_CASES)

    def __repr__(self) -> str:
        return f"ClinikoSession({self.credential!r}, stats={self.stats!r})"

    def cancel(self) -> None:
        """Cancel every call in flight and refuse new ones: the operation is over.

        Safe to call more than once, and from one of the calls' own tasks (that one is
        left alone: it is already unwinding or finishing).
        """
        self._cancelled = True
        current = asyncio.current_task()
        for task in self._in_flight:
            if task is not current:
                task.cancel()

    async def request(
        self,
        method: str,
        route: str,
        path: str | None = None,
        *,
        params: Sequence[tuple[str, str]] = (),
        json: Mapping[str, object] | None = None,
    ) -> Any:
        """Send one request and return its decoded JSON body (``None`` if empty).

        The low-level door the resources use; prefer them. ``route`` is the
        template (``/patients/{id}``) used in errors, ``path`` the filled-in
        path (defaults to ``route``), always relative to the credential's API root.
        """
        if self._cancelled:
            raise UpstreamTimeout(
                f"{method} {route}: the operation has ended", method=method, route=route
            )
        deadline = self.deadline
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise UpstreamTimeout(
                f"{method} {route}: the operation's deadline passed before the call",
                method=method,
                route=route,
            )
        url = self.credential.api_root + (route if path is None else path)
        with translate_errors(method, route):
            request = self._upstream._http.build_request(
                method,
                url,
                params=list(params) or None,
                json=json,
                headers={"Authorization": self.credential.authorization},
            )
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        try:
            async with asyncio.timeout(remaining) as scope:
                response = await self._upstream._send(
                    request,
                    method,
                    route,
                    self.stats,
                    key=self.credential.fingerprint,
                    deadline=deadline,
                    background=self.background,
                    background_keep=self.background_keep,
                    background_queue=self.background_queue,
                    background_share_wait=self.background_share_wait,
                )
        except TimeoutError:
            if not scope.expired():
                raise
            raise UpstreamTimeout(
                f"{method} {route}: cut short at the operation's deadline",
                method=method,
                route=route,
            ) from None
        finally:
            self._in_flight.discard(task)
        return _decode(response, method, route)


def _decode(response: httpx.Response, method: str, route: str) -> Any:
    content = response.content
    if response.status_code == 204 or not content.strip():
        return None
    try:
        return orjson.loads(content)
    except ValueError:
        raise UpstreamProtocolError(
            f"{method} {route}: the response body is not JSON", method=method, route=route
        ) from None
