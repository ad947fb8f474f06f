from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from appointments_gateway.gateway import create_app
from appointments_gateway.settings import Settings


@pytest.fixture
async def gateway() -> AsyncIterator[httpx.AsyncClient]:
    """The gateway in service mode over the in-process sandbox, lifespan running."""
    app = create_app(Settings())
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://localhost"
        ) as client,
    ):
        yield client
