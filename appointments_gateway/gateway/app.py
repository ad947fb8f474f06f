"""The ASGI app factory.

One ``UpstreamClient`` (one pooled ``httpx.AsyncClient``) lives for the whole process,
opened and closed by the Starlette lifespan; every request borrows it through
``request.state``.  Creating a client per request would cost ~20 ms and lose keep-alive.

With ``upstream="sandbox"`` and no transport given, the app talks to an in-process
sandbox through ``httpx.ASGITransport``: the same HTTP requests, no socket.  The CLI
instead runs the sandbox on a port and hands the app its URL.
"""

from __future__ import annotations

import gc
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

import httpx
import strawberry
from opentelemetry.trace import TracerProvider
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from appointments_gateway.gateway.auth import GatewayTokens
from appointments_gateway.gateway.graphiql import STATIC_PREFIX, GraphiQLAssets
from appointments_gateway.gateway.graphql import GatewayGraphQL
from appointments_gateway.gateway.health import healthz
from appointments_gateway.gateway.middleware import http_hygiene
from appointments_gateway.gateway.middleware.errors import http_exception
from appointments_gateway.gateway.ops_access import OpsAccess
from appointments_gateway.gateway.over_ws import SocketOptions
from appointments_gateway.gateway.persisted import PersistedDocuments
from appointments_gateway.gateway.readiness import Readiness
from appointments_gateway.gateway.sse import EventStreamDispatch
from appointments_gateway.observability import GatewayMetrics, ObservabilityMiddleware
from appointments_gateway.observability.logs import hide_websocket_frames
from appointments_gateway.observability.loop_lag import LoopLagMonitor
from appointments_gateway.observability.tracing import Tracing, chain_observers
from appointments_gateway.redis_state import RedisState
from appointments_gateway.replica import Replicas, SyncConfig
from appointments_gateway.resolvers.idempotency import DEFAULT_IN_FLIGHT_SECONDS, Idempotency
from appointments_gateway.resolvers.live import LiveLimits, LiveUpdates
from appointments_gateway.schema import build_schema
from appointments_gateway.settings import UPSTREAM_CLINIKO, Settings
from appointments_gateway.state import InMemoryState, SharedState
from appointments_gateway.state_fallback import FallbackState
from appointments_gateway.upstream import Credential, Governor, UpstreamClient
from appointments_gateway.upstream.governor import DEFAULT_MARGIN_SECONDS, WINDOW_SECONDS

__all__ = ["State", "create_app", "create_app_from_environ"]

#: The base URL of the in-process sandbox; the host is never resolved.
IN_PROCESS_SANDBOX_URL = "http://sandbox.in-process/v1"


class State(TypedDict):
    """What the lifespan hands every request through ``request.state``."""

    upstream: UpstreamClient
    #: Idempotency keys of creates: per process, or in Redis for all (DESIGN.md §7).
    idempotency: Idempotency
    #: Per-credential replicas (DESIGN.md §8); ``None`` with ``GATEWAY_SYNC=off``.
    replicas: Replicas | None
    #: Live updates: the replicas' changes fanned out to subscribers; ``None`` without.
    live: LiveUpdates | None


def create_app(
    settings: Settings,
    *,
    upstream_transport: httpx.AsyncBaseTransport | None = None,
    schema: strawberry.Schema | None = None,
    governor: Governor | None = None,
    freeze_gc: bool = False,
    tracer_provider: TracerProvider | None = None,
) -> Starlette:
    """Assemble the gateway.

    Args:
        settings: the validated configuration.
        upstream_transport: replaces the network for upstream calls (tests, in-process
            sandbox).  ``None`` uses real HTTP, or the in-process sandbox when the
            upstream is ``"sandbox"``.
        schema: the schema to serve; ``build_schema()`` unless a test or benchmark
            needs another one behind the same plumbing.
        governor: the per-key upstream budget; by default one built from the settings
            (``upstream_rate_limit``, ``upstream_max_wait``), on the shared state: with
            Redis the whole limit is shared by every worker and instance, undivided.
        tracer_provider: where spans go when ``settings.tracing`` is on (the global
            OpenTelemetry provider by default).
        freeze_gc: after start-up, exclude every object alive then from garbage
            collection (``gc.freeze``); for server processes, not for tests that build
            many apps in one process.
    """
    # Live updates' sockets carry keys and patient data: never in a debug log line.
    hide_websocket_frames()
    base_url: str | None
    api_key = settings.api_key
    if settings.uses_sandbox:
        from appointments_gateway.sandbox import DEMO_KEY_A, create_sandbox_app

        base_url = IN_PROCESS_SANDBOX_URL
        api_key = api_key or DEMO_KEY_A
        if upstream_transport is None:
            upstream_transport = httpx.ASGITransport(app=create_sandbox_app())
    elif settings.upstream == UPSTREAM_CLINIKO:
        base_url = None
    else:
        base_url = settings.upstream

    service_credential = None
    if settings.auth == "service":
        assert api_key is not None  # Settings refuses service mode without a key
        service_credential = Credential.from_api_key(api_key, base_url=base_url)

    # One shared-state store (DESIGN.md §7): rate buckets and idempotency keys alike; in
    # memory for one process, or Redis for every worker and instance of a deployment.
    state = _shared_state(settings)
    tracing = Tracing(tracer_provider) if settings.tracing else None
    graphql_app = GatewayGraphQL(
        schema
        or build_schema(
            max_upstream_requests=settings.max_upstream_requests,
            introspection=settings.introspection,
            max_depth=settings.max_depth,
            max_aliases=settings.max_aliases,
            max_tokens=settings.max_tokens,
            max_selections=settings.max_selections,
            max_analysis_ms=settings.max_analysis_ms,
        ),
        service_credential=service_credential,
        forward_base_url=base_url,
        graphiql=settings.graphiql,
        tokens=GatewayTokens(settings.gateway_tokens) if settings.gateway_tokens else None,
        operation_timeout=settings.operation_timeout,
        tracing=tracing,
        persisted=PersistedDocuments.from_settings(settings, state),
        sockets=SocketOptions(
            per_connection=settings.subscriptions_per_connection,
            init_timeout=settings.ws_init_timeout,
            ping_interval=settings.ws_ping_interval,
            pong_timeout=settings.ws_pong_timeout,
        ),
        origins=settings.cors_origins,
    )

    shared = state if isinstance(state, FallbackState) else None
    if governor is None:
        governor = Governor(
            state,
            limit=settings.upstream_rate_limit,
            max_wait=settings.upstream_max_wait,
            background_share=settings.sync_budget_share,
        )
    # One registry per app (tests build many apps), or with several workers the shared
    # metric files of every worker (prometheus-client's multiprocess mode; metrics.py).
    metrics = GatewayMetrics(governor)
    readiness = Readiness(
        service_credential=service_credential, forward_base_url=base_url, shared=shared
    )
    # /metrics and /readyz take a token off loopback (gateway/ops_access.py).
    ops = OpsAccess.from_settings(settings)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        async with (
            UpstreamClient(
                user_agent=settings.effective_user_agent,
                timeout=settings.upstream_timeout,
                transport=upstream_transport,
                governor=governor,
                observer=chain_observers(
                    metrics.upstream_attempt, tracing.upstream_attempt if tracing else None
                ),
            ) as upstream,
            # gateway_event_loop_lag_seconds: proof that no request holds the worker.
            LoopLagMonitor(metrics.loop_lag.observe).running(),
            # Several workers: this worker's governor and replica figures reach the
            # shared metric files once a second (observability/metrics.py).
            metrics.running(),
        ):
            # A waiter gives up on an in-flight create only after it surely ended: a POST
            # takes at most its timeout per attempt, and connect failures are retried.
            # A POST may also wait up to max_wait for the governor before it is sent.
            in_flight = max(
                DEFAULT_IN_FLIGHT_SECONDS,
                4 * settings.upstream_timeout + settings.upstream_max_wait,
            )
            idempotency = Idempotency(state, in_flight_seconds=in_flight)
            replicas = _replicas(settings, upstream, shared)
            live = (
                None
                if replicas is None
                else LiveUpdates(
                    replicas,
                    LiveLimits(
                        per_key=settings.subscriptions_per_key, queue=settings.subscription_queue
                    ),
                )
            )
            # Also on app.state, for tests and operators' tooling in process.
            app.state.replicas = replicas
            app.state.live = live
            if replicas is not None:
                metrics.watch_replicas(replicas)
            if live is not None:
                metrics.watch_live(live)
            if freeze_gc:
                # Everything built so far (schema, modules, the client) lives as long as
                # the process; moving it out of the collector's sight saves ~2 ms of GC
                # per heavy operation (the benchmark's A/B).
                gc.collect()
                gc.freeze()
            try:
                yield {
                    "upstream": upstream,
                    "idempotency": idempotency,
                    "replicas": replicas,
                    "live": live,
                }
            finally:
                if live is not None:
                    live.close()
                if replicas is not None:
                    await replicas.aclose()
                if shared is not None:
                    await shared.aclose()

    return Starlette(
        routes=[
            # Accept: text/event-stream goes to GraphQL over SSE (gateway/sse.py).
            Route("/graphql", EventStreamDispatch(graphql_app), methods=["GET", "POST"]),
            # Live updates over graphql-transport-ws (gateway/over_ws.py): Route matches
            # HTTP only.
            WebSocketRoute("/graphql", graphql_app),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", ops.guard(readiness.endpoint), methods=["GET"]),
            Route("/metrics", ops.guard(metrics_endpoint), methods=["GET"]),
            # GraphiQL's own assets, read once here; no route at all with GraphiQL off.
            *(
                [Route(STATIC_PREFIX + "{name}", GraphiQLAssets.load().endpoint, methods=["GET"])]
                if settings.graphiql
                else []
            ),
        ],
        # Outermost, so refusals of the hygiene middleware get a request id and a line too.
        middleware=[Middleware(ObservabilityMiddleware, metrics=metrics), *http_hygiene(settings)],
        # The router's 404 and 405 as GraphQL-shaped JSON, not Starlette's plain text.
        exception_handlers={HTTPException: http_exception},
        lifespan=lifespan,
    )


def create_app_from_environ() -> Starlette:
    """The factory uvicorn workers call: settings come from the environment."""
    return create_app(Settings.load(), freeze_gc=True)


def _shared_state(settings: Settings) -> SharedState:
    """In memory for one process; with ``GATEWAY_REDIS_URL``, Redis behind its fallback."""
    if settings.redis_url is None:
        return InMemoryState()
    return FallbackState(
        RedisState(settings.redis_url, prefix=settings.redis_prefix),
        processes=settings.workers * settings.instances,
        horizon=WINDOW_SECONDS + DEFAULT_MARGIN_SECONDS,
    )


def _replicas(
    settings: Settings, upstream: UpstreamClient, shared: SharedState | None
) -> Replicas | None:
    """The process's replicas (DESIGN.md §8), or ``None`` with ``GATEWAY_SYNC=off``.

    With a shared state (Redis) one process per credential syncs and the others follow
    its change feed (``replica/shared.py``).
    """
    if not settings.sync:
        return None
    config = SyncConfig(
        interval=settings.sync_interval,
        reference_interval=settings.sync_reference_interval,
        deletion_check_interval=settings.sync_deletion_check_interval,
        days_back=settings.sync_days_back,
        days_ahead=settings.sync_days_ahead,
        max_staleness=settings.sync_max_staleness,
    )
    return Replicas(
        upstream,
        config,
        max_keys=settings.sync_max_keys,
        idle=settings.sync_idle,
        start_after=settings.sync_start_after,
        shared=shared,
        instance=f"{socket.gethostname()}:{os.getpid()}",
    )
