"""JSON log lines, and a rendering of exceptions that carries code locations only.

Why not a structlog-style dependency: the gateway logs a handful of fixed-shape events,
and a dozen lines on top of ``logging`` do it with the stdlib handlers uvicorn already
configures.  ``log_config`` is handed to uvicorn so its own start-up lines, ours and any
library's warnings come out as one JSON object per line.

**Exceptions never print their message.**  An unexpected exception raised while
resolving a field may say ``KeyError('Jane Citizen')`` or repeat a record in a
``ValueError``; Python tracebacks also end with that message.  So wherever an exception
reaches a log line, through our own ``describe_exception`` or through any library's
``logger.exception`` (``exc_info``), it is rendered as its type and the frames'
file, line and function: enough to find the bug, nothing the exception carried.  The
operator finds the failing request by its request id and reproduces it.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

import orjson

__all__ = [
    "JsonFormatter",
    "WebSocketFrames",
    "describe_exception",
    "hide_websocket_frames",
    "log_config",
]

#: The attribute of a ``LogRecord`` (set with ``extra={"fields": {...}}``) whose items
#: become top-level keys of the JSON line.
FIELDS = "fields"

#: At most this many exceptions of a ``__cause__``/``__context__`` chain are described.
_MAX_CHAIN = 4


def describe_exception(exc: BaseException) -> dict[str, Any]:
    """An exception as its type and code locations, never its message or arguments.

    The chain of causes is followed (a few links) because the interesting exception is
    often the one a library wrapped.
    """
    chain: list[dict[str, Any]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(chain) < _MAX_CHAIN:
        seen.add(id(current))
        kind = type(current)
        chain.append(
            {
                "type": f"{kind.__module__}.{kind.__qualname__}",
                "frames": [
                    f"{frame.filename}:{frame.lineno} in {frame.name}"
                    for frame in traceback.extract_tb(current.__traceback__)
                ],
            }
        )
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return {**chain[0], "causes": chain[1:]} if len(chain) > 1 else chain[0]


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the record's fields.

    ``exc_info`` is rendered by :func:`describe_exception` (no message); ``stack_info``
    is dropped.  Values that JSON cannot carry are written with ``str``.
    """

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info and record.exc_info[1] is not None:
            payload["exception"] = describe_exception(record.exc_info[1])
        return orjson.dumps(payload, default=str).decode()


def _timestamp(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


class WebSocketFrames(logging.Filter):
    """Drops the ``websockets`` library's frame dumps (uvicorn logs them at DEBUG).

    A live-update socket's ``connection_init`` frame carries the caller's Cliniko key (or
    gateway token) and its ``next`` frames carry patients' names: at ``debug`` uvicorn's
    WebSocket protocol would print both, whole.  The rest of its debug lines (connection
    opened, closed) stay.
    """

    _FRAME_TEMPLATES = frozenset({"< %s", "> %s"})

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg in self._FRAME_TEMPLATES)


def hide_websocket_frames() -> None:
    """Put :class:`WebSocketFrames` on the loggers the WebSocket protocol writes to (once)."""
    for name in ("uvicorn.error", "websockets"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, WebSocketFrames) for f in logger.filters):
            logger.addFilter(WebSocketFrames())


def log_config(level: str) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` uvicorn applies in every worker.

    * Ours, uvicorn's and Strawberry's loggers write JSON lines to stderr at ``level``
      (stdout keeps the start-up banner the CLI prints).
    * uvicorn's access log has no handler: it prints the whole URL, and a GET operation
      carries its variables in the query string.
    * httpx and httpcore are held at WARNING: at INFO httpx logs every upstream URL,
      and upstream URLs carry ids and search filters.
    * Everything else reaches the root handler at WARNING, as JSON too.
    """
    upper = level.upper()
    json_handler = ["json"]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "filters": {"ws_frames": {"()": f"{__name__}.WebSocketFrames"}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": json_handler, "level": upper, "propagate": False},
            # No WebSocket frame dumps at debug: they hold keys and patients' names.
            "uvicorn.error": {"level": upper, "filters": ["ws_frames"]},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "appointments_gateway": {"handlers": json_handler, "level": upper, "propagate": False},
            "strawberry": {"handlers": json_handler, "level": upper, "propagate": False},
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
        "root": {"handlers": json_handler, "level": "WARNING"},
    }
