"""``GET /healthz``: the process is up and serving; it makes no upstream call."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from appointments_gateway import __version__

__all__ = ["healthz"]


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "version": __version__})
