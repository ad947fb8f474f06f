"""A log capture over the whole test run: no API key, gateway token, patient name or note.

One handler sits on the root logger for the whole session, at DEBUG, and the loggers the
gateway process writes through (ours, Strawberry's, Starlette's, uvicorn's) are lowered to
DEBUG so every record they can produce is produced; everything else reaches the handler at
the root's level (WARNING), as in the server. ``httpx``/``httpcore`` stay at WARNING, where
the server's log config (``observability.logs.log_config``) holds them because at INFO they
print every upstream URL; a test that lowers them itself (``caplog.set_level``) is still
checked. Each record is rendered as it could be printed (message with its args, the
exception and stack text, and any ``extra`` fields the JSON formatter would print) and
searched at once; only findings are kept, so the capture costs little (about a second).

What is searched for:

* the two demo API keys, with and without the ``-au1`` shard suffix, and as the
  base64 of a ``key:`` Basic-auth credential;
* every gateway token a test configures (``tests/gateway/test_tokens.py``,
  ``tests/gateway/test_ops_access.py``, ``tests/test_settings.py``);
* the first and last names of every demo patient of accounts A and B, as whole words and
  case-sensitively. Names shorter than four letters (``Ana``, ``Kai``, ``Kim``, ``Mei``,
  ``Olu``, ``Zoë``) are skipped: as words they occur in ordinary text and ids too often to
  mean a leak (``kim`` and ``Kai`` appear in base64 and in generated fuzz strings);
* every appointment note of the demo data, as a substring.

No test logs one of these on purpose: ``tests/schema/test_observability.py`` and
``tests/gateway/test_faults.py`` send markers and PHI *through* the gateway and check the
gateway does not log them, which is exactly what this capture checks too, so nothing is
whitelisted. A finding fails the session at teardown and names the logger, level, source
line and kind of value, with the value shortened so the report does not repeat it.

Subprocesses (``tests/e2e``) log to their own stderr, which ``tests/e2e/test_logs.py``
checks; this capture sees the pytest process only.

Also here, for every test module: ``serve``, an app served in-process with its lifespan
running.
"""

from __future__ import annotations

import base64
import logging
import re
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.types import ASGIApp

from appointments_gateway.sandbox import DEMO_KEY_A, DEMO_KEY_B, create_sandbox_app
from tests.redis_server import RedisServer

MIN_NAME_LETTERS = 4
# Loggers lowered to DEBUG for the session, and those held where the server holds them.
VERBOSE_LOGGERS = ("appointments_gateway", "strawberry", "starlette", "uvicorn")
SERVER_HELD_LOGGERS = ("httpx", "httpcore")
# Loggers the server's log config detaches from the root (``propagate: False``); the
# handler is attached to them as well, so a test that applies that config cannot blind
# the capture. A record then reaches the handler at most once either way.
DETACHABLE_LOGGERS = ("appointments_gateway", "strawberry", "uvicorn")
_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _shorten(value: str) -> str:
    return f"{value[:3]}… ({len(value)} chars)"


def _sensitive_values() -> dict[str, str]:
    """Every value that must never be logged, mapped to what kind of value it is."""
    from tests.gateway.test_ops_access import OPS_TOKEN
    from tests.gateway.test_tokens import TOKEN_A, TOKEN_B
    from tests.test_settings import TOKEN

    values: dict[str, str] = {}
    for key in (DEMO_KEY_A, DEMO_KEY_B):
        for form in (key, key.rsplit("-", 1)[0]):
            values[form] = "demo API key"
            values[base64.b64encode(f"{form}:".encode()).decode()] = "demo API key (Basic)"
    for token in (TOKEN_A, TOKEN_B, TOKEN, OPS_TOKEN):
        values[token] = "gateway token"
    store = create_sandbox_app().state.sandbox.store
    try:
        for first, last in store.conn.execute(
            "SELECT first_name, last_name FROM patients WHERE account IN ('a', 'b')"
        ):
            for name in (first, last):
                if name and sum(c.isalpha() for c in name) >= MIN_NAME_LETTERS:
                    values[name] = "patient name"
        for (note,) in store.conn.execute(
            "SELECT DISTINCT notes FROM appointments WHERE account IN ('a', 'b') AND notes != ''"
        ):
            if note:
                values[note] = "appointment note"
    finally:
        store.close()
    return values


class LeakCapture(logging.Handler):
    """Renders each record and keeps only those that contain a sensitive value."""

    def __init__(self, sensitive: dict[str, str]) -> None:
        super().__init__(logging.DEBUG)
        self.sensitive = sensitive
        self.findings: list[str] = []
        self.records = 0
        # A record of a logger the handler is attached to directly may propagate to the
        # root as well: check it once (weakly held, so no id is ever confused with another).
        self.seen: weakref.WeakSet[logging.LogRecord] = weakref.WeakSet()
        names = [v for v, kind in sensitive.items() if kind == "patient name"]
        others = [v for v, kind in sensitive.items() if kind != "patient name"]
        # Longest first, so a value that contains another is reported as itself.
        words = "|".join(re.escape(v) for v in sorted(names, key=len, reverse=True))
        plain = "|".join(re.escape(v) for v in sorted(others, key=len, reverse=True))
        self.pattern = re.compile(rf"(?<!\w)(?:{words})(?!\w)|{plain}")
        self.exceptions = logging.Formatter()

    def render(self, record: logging.LogRecord) -> str:
        parts = [record.getMessage()]
        if record.exc_info:
            parts.append(self.exceptions.formatException(record.exc_info))
        elif record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
        parts += [
            f"{key}={value!r}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD_ATTRS
        ]
        return "\n".join(parts)

    def emit(self, record: logging.LogRecord) -> None:
        if record in self.seen:
            return
        self.seen.add(record)
        self.records += 1
        try:
            text = self.render(record)
        except Exception as error:  # a record that cannot be rendered is a finding too
            text = f"<unrenderable: {type(error).__name__}>"
            self.findings.append(f"{record.name} {record.levelname}: {text}")
        for match in {m.group(0) for m in self.pattern.finditer(text)}:
            self.findings.append(
                f"{record.name} {record.levelname} at {record.pathname}:{record.lineno} "
                f"(msg template {str(record.msg)[:60]!r}): {self.sensitive[match]} "
                f"{_shorten(match)}"
            )


@pytest.fixture(scope="session", autouse=True)
def no_secrets_or_phi_in_any_log() -> Iterator[LeakCapture]:
    capture = LeakCapture(_sensitive_values())
    root = logging.getLogger()
    verbose = [logging.getLogger(name) for name in VERBOSE_LOGGERS]
    held = [logging.getLogger(name) for name in SERVER_HELD_LOGGERS]
    levels = [logger.level for logger in (*verbose, *held)]
    for logger in verbose:
        logger.setLevel(logging.DEBUG)
    for logger in held:
        logger.setLevel(logging.WARNING)
    attached = [root, *(logging.getLogger(name) for name in DETACHABLE_LOGGERS)]
    for logger in attached:
        logger.addHandler(capture)
    try:
        yield capture
        # Nothing may have detached the capture part-way through the run.
        assert all(capture in logger.handlers for logger in attached)
    finally:
        for logger in attached:
            logger.removeHandler(capture)
        for logger, level in zip((*verbose, *held), levels, strict=True):
            logger.setLevel(level)
    assert not capture.findings, (
        f"{len(capture.findings)} log records carry a secret or PHI:\n"
        + "\n".join(capture.findings[:20])
    )


class Serve(Protocol):
    """``async with serve(app) as client``: ``app`` with its lifespan running, and a client."""

    def __call__(
        self, app: ASGIApp, *, base_url: str = ...
    ) -> AbstractAsyncContextManager[httpx.AsyncClient]: ...


@asynccontextmanager
async def _serving(
    app: ASGIApp, *, base_url: str = "http://localhost"
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url=base_url
        ) as client,
    ):
        yield client


@pytest.fixture
def serve() -> Serve:
    """Serves an app in-process, lifespan included (``httpx.ASGITransport`` runs none).

    The app starts when the block is entered and stops when it is left, so a test can
    check what happens after shutdown.  ``http://localhost`` is a name every
    loopback-bound gateway answers (``gateway/middleware/hosts.py``).
    """
    return _serving


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real ``redis-server`` for the session (tests/redis_server.py); tests that take it
    away and give it back start their own."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()
