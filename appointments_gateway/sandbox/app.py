"""The sandbox Starlette app: Cliniko's appointment endpoints, served from seeded SQLite.

``create_sandbox_app()`` sets the database up in the factory (no lifespan needed), so
``httpx.ASGITransport(app=create_sandbox_app())`` works directly. The live state is on
``app.state.sandbox`` (:class:`SandboxState`).

Served under ``/v1`` (Basic auth, one account per key):

* ``/individual_appointments``: list, get, create (201 + ``Location``), update (PATCH),
  ``/{id}/cancel`` (PATCH, 204), ``/{id}/archive`` (POST, 204), DELETE (deprecated; archives,
  204), ``/{id}/conflicts``.
* ``/patients``, ``/practitioners`` (+ ``/practitioners/inactive``), ``/businesses``,
  ``/appointment_types``, ``/patient_cases``: list and get.

Hidden rows: lists leave out cancelled, archived and deleted appointments (archived
patients/types/cases/businesses) unless a ``q[]`` names that column with any operator. A GET by
id follows the same rule with the filters that endpoint documents, so a cancelled appointment
needs ``?q[]=cancelled_at:*`` and an archived patient ``?q[]=archived_at:*``, else 404 (the get
endpoints accept exactly these filters, which only makes sense if the rows are hidden).
``GET /practitioners`` lists active practitioners only and ``/practitioners/inactive`` the rest,
as Cliniko splits them; ``GET /practitioners/{id}`` answers for both.

Writes on an archived or deleted appointment answer 404, except archive itself, which is
idempotent (204, nothing changes). Cancelled appointments can still be updated and cancelled.

Every write stamps ``updated_at`` with the current whole second on each row it changes
(create, update, cancel, every appointment an ``apply_to_repeats`` cancel reaches, archive by
either route), so ``q[]=updated_at:>=T`` with ``sort=updated_at`` (``id`` breaks ties) finds
each change; ``total_entries`` is an exact count of the filtered rows.

Outside ``/v1`` (no auth; never counted, rate limited, slowed or faulted, see :mod:`.knobs`):

* ``GET /_sandbox/stats``, ``GET /_sandbox/arrivals?since=`` (each request's arrival
  time, route and status, for checks over any 60 s) and ``POST /_sandbox/reset[?data=true]``.
* ``/_sandbox/webapp/{a|b}/...``: Cliniko's web app, for changes staff make outside the API
  (appointments: create, edit incl. ``did_not_arrive``/``patient_arrived``, cancel, archive,
  soft and hard delete; names of patients, practitioners, businesses and appointment types).
  See :mod:`.webapp`.

Not imitated: every other Cliniko endpoint (attendees, bookings, invoices, group appointments,
writes to related resources through the API, ``/patient_cases/active``, the old
``/individual_appointments/cancelled`` and ``/deleted``, the nested links such as
``/patients/{id}/appointments``), 403s, HTML error pages, the undocumented ``search`` parameter
on ``/patients``, checks on ``User-Agent``/``Accept``/TLS, shard routing by host (any host is
served), snowflake-like ids (new ids are the table's maximum + 1), sub-second ``updated_at``
(two writes in one second share it), Rails leaving ``updated_at`` alone when a save changes
nothing (an API PATCH always stamps it), and Cliniko's exact error wording.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .accounts import DemoAccount
from .config import SandboxConfig
from .filters import parse_filters, parse_page, parse_sort
from .knobs import ACCOUNT_SCOPE_KEY, FaultInjector, KnobsMiddleware, RateLimiter, Stats
from .payloads import appointment_payload
from .plumbing import (
    Handler,
    answering_refusals,
    api_base,
    json_error,
    path_id,
    read_body,
    row_payload,
)
from .resources import INACTIVE_PRACTITIONERS, RESOURCES, Resource
from .store import Store, open_database, reseed
from .timefmt import now_utc
from .webapp import webapp_routes
from .writes import (
    build_update,
    commit_archive,
    commit_cancel,
    commit_create,
    is_writable,
    parse_cancel,
)

__all__ = ["SandboxState", "create_sandbox_app"]

_APPOINTMENTS = RESOURCES["individual_appointments"]


@dataclass
class SandboxState:
    """Everything one sandbox app holds; exposed as ``app.state.sandbox``.

    Attributes:
        config: The config the app was built with.
        store: The SQLite store (``store.count_appointments("a")`` and friends for tests).
        stats: The request counters.
        limiter: The per-key rate limiter.
        faults: The seeded fault injector.
    """

    config: SandboxConfig
    store: Store
    stats: Stats = field(default_factory=Stats)
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(0))
    faults: FaultInjector = field(default_factory=lambda: FaultInjector(0.0, 1))

    def count_appointments(self, account: str | None = None, *, live_only: bool = False) -> int:
        """Appointment rows, in all or in account ``"a"``/``"b"``."""
        return self.store.count_appointments(account, live_only=live_only)

    def reset(self, *, data: bool = False) -> None:
        """Zero the counters, rate windows and fault sequence; with ``data``, reseed the rows."""
        self.stats.reset()
        self.limiter.reset()
        self.faults.reset()
        if data:
            reseed(self.store.conn, self.config.seed, self.config.resolved_anchor())


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _account(request: Request) -> DemoAccount:
    account: DemoAccount = request.scope["state"][ACCOUNT_SCOPE_KEY]
    return account


def _page_url(request: Request, page: int) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
    params.append(("page", str(page)))
    return f"{request.url.scheme}://{request.url.netloc}{request.url.path}?{urlencode(params)}"


_bad_request = answering_refusals(422)  # Cliniko answers validation with 422


def _list_endpoint(resource: Resource) -> Handler:
    @_bad_request
    async def list_rows(request: Request) -> Response:
        query = request.query_params
        where = parse_filters(query.getlist("q[]"), resource.list_filters, resource)
        order_by = parse_sort(query.get("sort"), query.get("order"), resource)
        page = parse_page(query.get("page"), query.get("per_page"))
        rows, total = _state(request).store.list_rows(
            resource, _account(request).label, where, order_by, page
        )
        base = api_base(request)
        links = {"self": _page_url(request, page.number)}
        if page.number * page.size < total:
            links["next"] = _page_url(request, page.number + 1)
        if page.number > 1:
            links["previous"] = _page_url(request, page.number - 1)
        return JSONResponse(
            {
                resource.name: [row_payload(resource.table, row, base) for row in rows],
                "total_entries": total,
                "links": links,
            }
        )

    return list_rows


def _get_endpoint(resource: Resource) -> Handler:
    @_bad_request
    async def get_row(request: Request) -> Response:
        where = parse_filters(request.query_params.getlist("q[]"), resource.get_filters, resource)
        row_id = path_id(request)
        row = None
        if row_id is not None:
            row = _state(request).store.get_row(resource, _account(request).label, row_id, where)
        if row is None:
            return json_error(
                404, f"No {resource.name} record with id {request.path_params['id']}."
            )
        return JSONResponse(row_payload(resource.table, row, api_base(request)))

    return get_row


def _appointment_in_path(request: Request) -> sqlite3.Row | None:
    """The caller's appointment named in the path, hidden or not; ``None`` if there is none."""
    row_id = path_id(request)
    if row_id is None:
        return None
    return _state(request).store.find("appointments", _account(request).label, row_id)


def _not_found(request: Request) -> JSONResponse:
    return json_error(
        404, f"No individual_appointments record with id {request.path_params['id']}."
    )


@_bad_request
async def create_appointment(request: Request) -> Response:
    body = await read_body(request)
    store = _state(request).store
    origin_id = commit_create(store, _account(request).label, body, now_utc())
    created = store.find("appointments", _account(request).label, origin_id)
    assert created is not None
    payload = appointment_payload(created, api_base(request))
    return JSONResponse(payload, status_code=201, headers={"Location": payload["links"]["self"]})


@_bad_request
async def update_appointment(request: Request) -> Response:
    current = _appointment_in_path(request)
    if current is None or not is_writable(current):
        return _not_found(request)
    body = await read_body(request)
    store = _state(request).store
    changes = build_update(body, store, current, now_utc())
    store.update_appointments([current["id"]], changes)
    updated = store.find("appointments", current["account"], current["id"])
    assert updated is not None
    return JSONResponse(appointment_payload(updated, api_base(request)))


@_bad_request
async def cancel_appointment(request: Request) -> Response:
    current = _appointment_in_path(request)
    if current is None or not is_writable(current):
        return _not_found(request)
    cancel = parse_cancel(await read_body(request))
    commit_cancel(_state(request).store, current, cancel, now_utc())
    return Response(status_code=204)


async def archive_appointment(request: Request) -> Response:
    row = _appointment_in_path(request)
    if row is None or row["deleted_at"] is not None:
        return _not_found(request)
    commit_archive(_state(request).store, row, now_utc())
    return Response(status_code=204)


async def appointment_conflicts(request: Request) -> Response:
    row_id = path_id(request)
    store = _state(request).store
    row = store.find("appointments", _account(request).label, row_id) if row_id else None
    if row is None:
        return _not_found(request)
    return JSONResponse({"conflicts": {"exist": store.has_conflicts(row)}})


async def sandbox_stats(request: Request) -> Response:
    state = _state(request)
    body = state.stats.as_json()
    body["appointments"] = {account: state.count_appointments(account) for account in ("a", "b")}
    return JSONResponse(body)


async def sandbox_arrivals(request: Request) -> Response:
    """``GET /_sandbox/arrivals?since=<unix seconds>``: each request's arrival, route, status."""
    try:
        since = float(request.query_params.get("since", "0"))
    except ValueError:
        return JSONResponse({"message": "since must be a number of UNIX seconds"}, 400)
    arrivals = [list(a) for a in _state(request).stats.arrivals if a[0] >= since]
    return JSONResponse({"arrivals": arrivals})


async def sandbox_reset(request: Request) -> Response:
    data = request.query_params.get("data", "false").lower() in ("1", "true", "yes")
    _state(request).reset(data=data)
    return JSONResponse({"reset": ["stats", "data"] if data else ["stats"]})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"message": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def _routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route("/v1/individual_appointments", _list_endpoint(_APPOINTMENTS), methods=["GET"]),
        Route("/v1/individual_appointments", create_appointment, methods=["POST"]),
        Route("/v1/individual_appointments/{id}", _get_endpoint(_APPOINTMENTS), methods=["GET"]),
        Route("/v1/individual_appointments/{id}", update_appointment, methods=["PATCH"]),
        Route("/v1/individual_appointments/{id}", archive_appointment, methods=["DELETE"]),
        Route("/v1/individual_appointments/{id}/cancel", cancel_appointment, methods=["PATCH"]),
        Route("/v1/individual_appointments/{id}/archive", archive_appointment, methods=["POST"]),
        Route("/v1/individual_appointments/{id}/conflicts", appointment_conflicts, methods=["GET"]),
        Route(
            "/v1/practitioners/inactive",
            _list_endpoint(INACTIVE_PRACTITIONERS),
            methods=["GET"],
        ),
    ]
    for name in ("patients", "practitioners", "businesses", "appointment_types", "patient_cases"):
        resource = RESOURCES[name]
        routes.append(Route(f"/v1/{name}", _list_endpoint(resource), methods=["GET"]))
        get_resource = resource
        if name == "practitioners":  # get by id answers for active and inactive alike
            get_resource = Resource(name, resource.table, {}, {}, ())
        routes.append(Route(f"/v1/{name}/{{id}}", _get_endpoint(get_resource), methods=["GET"]))
    routes.append(Route("/_sandbox/stats", sandbox_stats, methods=["GET"]))
    routes.append(Route("/_sandbox/arrivals", sandbox_arrivals, methods=["GET"]))
    routes.append(Route("/_sandbox/reset", sandbox_reset, methods=["POST"]))
    routes.extend(webapp_routes())
    return routes


def create_sandbox_app(config: SandboxConfig | None = None) -> Starlette:
    """Build a sandbox app with its own copy of the seeded data.

    Args:
        config: Knobs and data options; ``SandboxConfig()`` when omitted.

    Returns:
        A Starlette app, usable without running its lifespan.
    """
    config = config or SandboxConfig()
    conn = open_database(config.seed, config.resolved_anchor(), config.db_path)
    state = SandboxState(
        config=config,
        store=Store(conn),
        limiter=RateLimiter(config.rate_limit_per_minute),
        faults=FaultInjector(config.fault_rate, config.seed),
    )
    routes = _routes()
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                KnobsMiddleware,
                config=config,
                stats=state.stats,
                limiter=state.limiter,
                faults=state.faults,
                routes=routes,
            )
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.sandbox = state
    return app
