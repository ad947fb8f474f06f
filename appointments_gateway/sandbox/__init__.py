"""An embedded, faithful stand-in for Cliniko's appointments REST API.

Written from the upstream contract (``UPSTREAM.md`` and the vendored OpenAPI YAML) and importing
nothing else from ``appointments_gateway``, so a bug in our client cannot hide behind a
matching bug here. Serve it with ``create_sandbox_app()``; use ``DEMO_KEY_A`` / ``DEMO_KEY_B``
as the Basic-auth username.
"""

from __future__ import annotations

from .accounts import DEMO_ACCOUNTS, DEMO_KEY_A, DEMO_KEY_B, DemoAccount
from .app import SandboxState, create_sandbox_app
from .config import SandboxConfig
from .knobs import Stats

__all__ = [
    "DEMO_ACCOUNTS",
    "DEMO_KEY_A",
    "DEMO_KEY_B",
    "DemoAccount",
    "SandboxConfig",
    "SandboxState",
    "Stats",
    "create_sandbox_app",
]
