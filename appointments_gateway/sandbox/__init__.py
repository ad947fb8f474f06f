"""An embedded, faithful stand-in for Cliniko's appointments REST API.

Written from the upstream contract (``UPSTREAM.md`` and the vendored OpenAPI YAML) and importing
nothing else from this package, so a bug in our client cannot hide behind a matching bug here.
Serve it with ``create_sandbox_app()``; use ``DEMO_KEY_A`` / ``DEMO_KEY_B`` as the Basic-auth
username (empty password).

Decisions where Cliniko is silent (each documented in its module):

* ``per_page`` outside 1..100 (and ``page`` < 1) is a 400, not clamped (:mod:`.filters`).
* ``repeat_rule.number_of_repeats`` counts the additional appointments: origin + N
  (:mod:`.writes`).
* ``apply_to_repeats`` cancels the appointment and every later live one of its series
  (:mod:`.writes`).
* The rate limit is a fixed 60-second window per key, opened by the key's first request
  (:mod:`.knobs`).
* A GET by id of a cancelled/archived/deleted row (appointments, and archived related rows) is
  404 unless the request carries a filter on that column, e.g. ``q[]=archived_at:*``
  (:mod:`.app`).

Changes made "in Cliniko's web app" (outside the API, seen by a client only through
``updated_at`` or a count) go through ``/_sandbox/webapp/{a|b}/...`` (:mod:`.webapp`).

Not imitated: see the "Not imitated" paragraphs of :mod:`.app`, :mod:`.filters`,
:mod:`.payloads`, :mod:`.knobs`, :mod:`.accounts`, :mod:`.writes` and :mod:`.webapp`.
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
