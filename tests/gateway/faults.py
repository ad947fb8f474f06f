"""Upstream transports that misbehave on purpose: hang, or answer garbage, on one route."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette


class Hanging(httpx.AsyncBaseTransport):
    """The sandbox, except requests to ``path`` that never get an answer.

    A fake transport is below httpx's own timeouts (httpcore enforces them), so only the
    gateway's deadline can end such a call; ``cancelled`` counts the calls it ended.
    """

    def __init__(self, app: Starlette, path: str) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self.path = path
        self.started = asyncio.Event()
        self.calls = 0
        self.cancelled = 0
        self.hanging = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.hanging and request.url.path == self.path:
            self.calls += 1
            self.started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return await self._inner.handle_async_request(request)


class Garbage(httpx.AsyncBaseTransport):
    """The sandbox, except requests to ``path`` answered 200 with ``body`` while ``broken``."""

    def __init__(self, app: Starlette, path: str, body: bytes) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self.path = path
        self.body = body
        self.broken = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.broken and request.url.path == self.path:
            return httpx.Response(
                200, content=self.body, headers={"Content-Type": "application/json"}
            )
        return await self._inner.handle_async_request(request)
