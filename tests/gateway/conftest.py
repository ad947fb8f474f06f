from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from appointments_gateway.gateway import create_app
from appointments_gateway.settings import Settings
from tests.conftest import Serve


@pytest.fixture
async def gateway(serve: Serve) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway in service mode over the in-process sandbox, lifespan running."""
    async with serve(create_app(Settings())) as client:
        yield client
