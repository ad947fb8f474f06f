"""One frozen ``Settings`` object for the gateway, read from the environment and CLI flags.

Every setting has exactly one environment variable and one flag; the table in ``SETTINGS``
is the single source of truth for both, so ``--help``, README and the parser cannot drift
apart.  Flags win over the environment, the environment wins over the defaults.

Values are validated here, at start-up, with messages that quote the offending value: a
gateway that starts with a bad configuration fails later, on a user's request, with a far
less helpful error.  The API key is never part of any message or ``repr``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import httpx

from appointments_gateway.upstream import (
    Credential,
    InvalidApiKey,
    InvalidBaseUrl,
    is_cliniko_host,
    is_safe_user_agent,
)

if TYPE_CHECKING:
    from appointments_gateway.gateway.trusted import TrustedDocuments

__all__ = [
    "MIN_TOKEN_CHARS",
    "SANDBOX_SETTINGS",
    "SETTINGS",
    "ConfigError",
    "SafeReason",
    "SandboxSettings",
    "Setting",
    "Settings",
    "is_loopback",
]

AuthMode = Literal["service", "forward"]

#: The upstream spelled ``sandbox`` runs the embedded stand-in; ``cliniko`` routes each
#: key to ``https://api.{shard}.cliniko.com/v1``; anything else must be an http(s) base URL.
UPSTREAM_SANDBOX = "sandbox"
UPSTREAM_CLINIKO = "cliniko"

#: The user agent used against the embedded sandbox when none is configured.  Real
#: Cliniko requires ``Name (email)``; the upstream client refuses to talk to it without one.
SANDBOX_USER_AGENT = "appointments-gateway sandbox (dev@localhost)"


#: 256 KiB: the largest operation a client of this schema sends is a few KiB; a body
#: far beyond that is a mistake or an attack, and is refused before it is read.
DEFAULT_MAX_REQUEST_BYTES = 256 * 1024


class ConfigError(ValueError):
    """A setting has a value the gateway cannot run with; the message names the setting."""


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _parse_port(raw: str) -> int:
    port = int(raw)
    if not 0 <= port <= 65535:
        raise ValueError(f"a port is 0..65535, got {port}")
    return port


def _parse_positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(f"expected a whole number of at least 1, got {value}")
    return value


def _parse_non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(f"expected a whole number of at least 0, got {value}")
    return value


def _parse_positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError(f"expected a number above 0, got {raw!r}")
    return value


def _parse_non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError(f"expected a number of at least 0, got {raw!r}")
    return value


def _parse_rate_limit(raw: str) -> int:
    value = int(raw)
    if value < 0 or value == 1:
        raise ValueError(f"expected 0 (off) or a whole number of at least 2, got {value}")
    return value


def _parse_fraction(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"expected a fraction between 0 and 1, got {raw!r}")
    return value


def _parse_auth(raw: str) -> str:
    if raw not in ("service", "forward"):
        raise ValueError(f"expected 'service' or 'forward', got {raw!r}")
    return raw


def _parse_upstream(raw: str) -> str:
    if raw in (UPSTREAM_SANDBOX, UPSTREAM_CLINIKO):
        return raw
    if raw.startswith(("http://", "https://")) and len(raw) > len("https://"):
        return raw.rstrip("/")
    raise ValueError(f"expected 'sandbox', 'cliniko' or an http(s) base URL, got {raw!r}")


def _parse_log_level(raw: str) -> str:
    lowered = raw.lower()
    if lowered not in ("critical", "error", "warning", "info", "debug"):
        raise ValueError(f"expected critical, error, warning, info or debug, got {raw!r}")
    return lowered


def _parse_text(raw: str) -> str:
    return raw


def _parse_redis_url(raw: str) -> str:
    """``redis://`` or ``rediss://`` (TLS), optionally with ``user:password@``; no other."""
    if not raw.startswith(("redis://", "rediss://")) or len(raw) <= len("rediss://"):
        raise SafeReason("expected a redis:// or rediss:// URL, such as redis://127.0.0.1:6379/0")
    return raw


def _parse_redis_prefix(raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", raw):
        raise ValueError(f"expected 1 to 32 letters, digits, '_', '.' or '-', got {raw!r}")
    return raw


def _parse_origins(raw: str) -> tuple[str, ...]:
    """A comma-separated list of exact origins, ``scheme://host[:port]``.

    ``*`` is refused: in service mode any web page a developer opened could then read
    patient data through a gateway on their machine, with the gateway's own key.
    """
    origins = tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    for origin in origins:
        if origin == "*":
            raise ValueError("'*' is not allowed; list each origin, such as https://app.example")
        url = httpx.URL(origin)
        if url.scheme not in ("http", "https") or not url.host or url.path not in ("", "/"):
            raise ValueError(f"expected origins such as https://app.example:8443, got {origin!r}")
        if url.query or url.fragment:
            raise ValueError(f"an origin has no query or fragment, got {origin!r}")
    return origins


#: A host name as a Host header carries it, optionally a ``*.`` wildcard of one
#: (Starlette's TrustedHostMiddleware allows no other wildcard): ASCII labels of letters,
#: digits, ``-`` and ``_`` (container names), no port, no trailing dot.
_HOST_NAME = re.compile(
    r"(?:\*\.)?[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*",
    re.ASCII,
)


def _parse_trusted_documents(raw: str) -> TrustedDocuments:
    """The manifest at path ``raw``, read and checked now (``gateway/trusted.py``)."""
    from appointments_gateway.gateway.trusted import TrustedDocuments

    return TrustedDocuments.load(raw)


def _parse_hosts(raw: str) -> tuple[str, ...]:
    """Comma-separated host names or IP addresses the gateway may be addressed by.

    ``*.example.com`` matches every sub-domain of ``example.com``; ``*`` alone is
    refused, like ``*`` in GATEWAY_CORS_ORIGINS: any web page could then reach the
    gateway under a name of its own (DNS rebinding).  IPv6 addresses are kept in
    brackets, the form a Host header carries them in.
    """
    hosts: list[str] = []
    for part in raw.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name == "*":
            raise ValueError(
                "'*' is not allowed: any web page could then reach the gateway under a "
                "name of its own (DNS rebinding); list each name, such as "
                "gateway.example.com or *.example.com"
            )
        try:
            address = ipaddress.ip_address(name.removeprefix("[").removesuffix("]"))
        except ValueError:
            if not _HOST_NAME.fullmatch(name):
                raise ValueError(
                    "expected host names such as gateway.example.com or *.example.com "
                    f"(no scheme, port or path), got {part.strip()!r}"
                ) from None
            hosts.append(name)
        else:
            hosts.append(f"[{address.compressed}]" if address.version == 6 else str(address))
    return tuple(dict.fromkeys(hosts))


class SafeReason(ValueError):
    """A parse failure whose message never quotes the value, so even a secret may show it."""


#: Plain-text gateway tokens shorter than this are refused: they are compared as SHA-256
#: digests, which only protects tokens too random to guess (24 URL-safe characters carry
#: 144 bits; ``python -c "import secrets; print(secrets.token_urlsafe(32))"`` makes one).
MIN_TOKEN_CHARS = 24
_DIGEST = re.compile(r"sha256:([0-9a-fA-F]{64})")


def _parse_tokens(raw: str) -> tuple[str, ...]:
    """Comma-separated tokens, each plain text or ``sha256:<hex digest>``; kept as digests.

    Pre-hashed entries let operators keep no usable token in the configuration at all;
    plain ones are hashed here, so the settings object never holds a token either.
    """
    digests: list[str] = []
    for position, entry in enumerate(raw.split(","), start=1):
        token = entry.strip()
        if not token:
            continue
        if match := _DIGEST.fullmatch(token):
            digests.append(match.group(1).lower())
        elif token.lower().startswith("sha256:"):
            raise SafeReason(f"entry {position} is not 'sha256:' and 64 hex digits")
        elif len(token) < MIN_TOKEN_CHARS or not token.isprintable():
            raise SafeReason(
                f"entry {position} is shorter than {MIN_TOKEN_CHARS} characters (or not "
                "printable); use long random tokens"
            )
        else:
            digests.append(hashlib.sha256(token.encode("utf-8")).hexdigest())
    if not digests:
        raise SafeReason("no tokens given")
    return tuple(dict.fromkeys(digests))


def _render_tokens(digests: tuple[str, ...]) -> str:
    return ",".join(f"sha256:{d}" for d in digests)


@dataclass(frozen=True, slots=True)
class Setting:
    """One configurable value: its field name, flag, environment variable and parser.

    Attributes:
        name: the attribute on the settings object.
        env: the environment variable that sets it.
        help: the sentence shown by ``--help`` and README.
        parse: turns the raw string into the value, raising ``ValueError`` with a reason.
        secret: the value is never echoed back, not even in an error message (only a
            ``SafeReason``, which never quotes it).
        render: turns the value back into the raw string (``Settings.to_environ``);
            ``str`` when not given.
    """

    name: str
    env: str
    help: str
    parse: Callable[[str], Any]
    secret: bool = False
    render: Callable[[Any], str] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "upstream",
        "GATEWAY_UPSTREAM",
        "where appointments come from: 'sandbox' (embedded demo API), 'cliniko' (route by "
        "the key's shard), or a base URL such as http://127.0.0.1:8911/v1",
        _parse_upstream,
    ),
    Setting(
        "api_key",
        "CLINIKO_API_KEY",
        "the Cliniko API key used in service auth mode (defaults to the sandbox's demo key "
        "on the sandbox); prefer the environment variable: flags show up in process lists",
        _parse_text,
        secret=True,
    ),
    Setting(
        "auth",
        "GATEWAY_AUTH",
        "'service': the gateway uses its one configured key; 'forward': each caller sends "
        "its own key as HTTP Basic (key as user name) or Bearer",
        _parse_auth,
    ),
    Setting(
        "gateway_tokens",
        "GATEWAY_TOKENS",
        "service mode: comma-separated tokens callers must send as 'Authorization: Bearer "
        "<token>', each plain text (at least 24 characters) or 'sha256:<hex digest>'; "
        "required to listen on a non-loopback interface",
        _parse_tokens,
        secret=True,
        render=_render_tokens,
    ),
    Setting(
        "ops_tokens",
        "GATEWAY_OPS_TOKENS",
        "comma-separated tokens, as for GATEWAY_TOKENS, that open /metrics and /readyz "
        "('Authorization: Bearer <token>') on a non-loopback interface, in either auth "
        "mode; in service mode GATEWAY_TOKENS open them too",
        _parse_tokens,
        secret=True,
        render=_render_tokens,
    ),
    Setting(
        "user_agent",
        "GATEWAY_USER_AGENT",
        "User-Agent sent upstream, 'Name (email)'; required for real Cliniko",
        _parse_text,
    ),
    Setting("host", "GATEWAY_HOST", "interface the gateway listens on", _parse_text),
    Setting(
        "allowed_hosts",
        "GATEWAY_ALLOWED_HOSTS",
        "comma-separated host names (or *.example.com) requests may address the gateway "
        "by in their Host header; others get 400. On loopback localhost, 127.0.0.1 and "
        "[::1] are always allowed; required on any other interface",
        _parse_hosts,
        render=",".join,
    ),
    Setting("port", "GATEWAY_PORT", "TCP port the gateway listens on (0: any free)", _parse_port),
    Setting(
        "workers",
        "GATEWAY_WORKERS",
        "worker processes; more than 1 needs GATEWAY_REDIS_URL, where every worker "
        "shares one rate budget and one idempotency store",
        _parse_positive_int,
    ),
    Setting(
        "redis_url",
        "GATEWAY_REDIS_URL",
        "redis:// or rediss:// URL of the Redis that every worker and instance shares "
        "(rate budget, idempotency keys, one replica sync per key); unset: in-memory, one "
        "process. It may hold a password: prefer the environment variable",
        _parse_redis_url,
        secret=True,
    ),
    Setting(
        "redis_prefix",
        "GATEWAY_REDIS_PREFIX",
        "prefix of every Redis key the gateway writes, so deployments can share a Redis",
        _parse_redis_prefix,
    ),
    Setting(
        "instances",
        "GATEWAY_INSTANCES",
        "gateway instances (machines or containers) sharing GATEWAY_REDIS_URL; only sizes "
        "each process's conservative share of the budget while Redis is unreachable",
        _parse_positive_int,
    ),
    Setting(
        "upstream_timeout",
        "GATEWAY_UPSTREAM_TIMEOUT",
        "seconds one upstream HTTP call may take before it fails with UPSTREAM_TIMEOUT",
        _parse_positive_float,
    ),
    Setting(
        "operation_timeout",
        "GATEWAY_OPERATION_TIMEOUT",
        "seconds one GraphQL operation may take in all; upstream calls past it are cut "
        "short and the operation answers UPSTREAM_TIMEOUT (with the data it has)",
        _parse_positive_float,
    ),
    Setting(
        "upstream_rate_limit",
        "GATEWAY_UPSTREAM_RATE_LIMIT",
        "upstream requests per minute per API key that the gateway allows itself (Cliniko: "
        "200; 0: off); lower it when other apps or replicas use the same keys",
        _parse_rate_limit,
    ),
    Setting(
        "upstream_max_wait",
        "GATEWAY_UPSTREAM_MAX_WAIT",
        "seconds one upstream call may wait for the key's rate budget before the operation "
        "fails with RATE_LIMITED and retryAfterSeconds (0: never wait)",
        _parse_non_negative_float,
    ),
    Setting(
        "max_upstream_requests",
        "GATEWAY_MAX_UPSTREAM_REQUESTS",
        "refuse an operation whose upstream cost bound exceeds this many requests, with "
        "QUERY_TOO_COMPLEX, before it runs (0: no limit)",
        _parse_non_negative_int,
    ),
    Setting(
        "max_depth",
        "GATEWAY_MAX_DEPTH",
        "refuse documents nested deeper than this (QUERY_TOO_COMPLEX)",
        _parse_positive_int,
    ),
    Setting(
        "max_aliases",
        "GATEWAY_MAX_ALIASES",
        "refuse documents with more aliases than this, counting a fragment's each time it "
        "is spread (QUERY_TOO_COMPLEX)",
        _parse_positive_int,
    ),
    Setting(
        "max_selections",
        "GATEWAY_MAX_SELECTIONS",
        "refuse documents selecting more fields than this, counting a fragment's each "
        "time it is spread (QUERY_TOO_COMPLEX)",
        _parse_positive_int,
    ),
    Setting(
        "max_tokens",
        "GATEWAY_MAX_TOKENS",
        "stop parsing documents longer than this many tokens (QUERY_TOO_COMPLEX)",
        _parse_positive_int,
    ),
    Setting(
        "max_analysis_ms",
        "GATEWAY_MAX_ANALYSIS_MS",
        "milliseconds parsing and validating one document may take before it is refused "
        "(QUERY_TOO_COMPLEX); the worker serves nothing else meanwhile",
        _parse_positive_int,
    ),
    Setting(
        "graphiql",
        "GATEWAY_GRAPHIQL",
        "serve GraphiQL at GET /graphql in a browser (true/false)",
        _parse_bool,
    ),
    Setting(
        "introspection",
        "GATEWAY_INTROSPECTION",
        "answer introspection queries (__schema, __type); turn off in production, with "
        "--graphiql, which needs it (true/false)",
        _parse_bool,
    ),
    Setting(
        "max_request_bytes",
        "GATEWAY_MAX_REQUEST_BYTES",
        "largest request body accepted, in bytes; a larger one gets 413 before it is read",
        _parse_positive_int,
    ),
    Setting(
        "cors_origins",
        "GATEWAY_CORS_ORIGINS",
        "comma-separated origins whose browser pages may call the gateway (CORS), such "
        "as https://app.example; empty: none, and no CORS headers",
        _parse_origins,
        render=",".join,
    ),
    Setting(
        "apq",
        "GATEWAY_APQ",
        "automatic persisted queries (Apollo's protocol): a client sends a document's "
        "SHA-256 instead of its text once the gateway has seen it (true/false)",
        _parse_bool,
    ),
    Setting(
        "apq_ttl",
        "GATEWAY_APQ_TTL",
        "seconds an automatically persisted document is kept after its last use",
        _parse_positive_float,
    ),
    Setting(
        "trusted_documents",
        "GATEWAY_TRUSTED_DOCUMENTS",
        "path of a JSON manifest of trusted documents, id -> document (graphql-codegen's "
        "persisted-documents.json, Relay's persisted queries, or Apollo's persisted query "
        "manifest), checked at start-up; clients send an id instead of the document",
        _parse_trusted_documents,
        render=lambda documents: documents.path,
    ),
    Setting(
        "trusted_only",
        "GATEWAY_TRUSTED_ONLY",
        "run only the documents of GATEWAY_TRUSTED_DOCUMENTS; any other is refused with "
        "PERSISTED_QUERY_NOT_TRUSTED before it is parsed (true/false)",
        _parse_bool,
    ),
    Setting(
        "sandbox_port",
        "GATEWAY_SANDBOX_PORT",
        "port of the embedded sandbox when --upstream is 'sandbox' (0: any free)",
        _parse_port,
    ),
    Setting(
        "tracing",
        "GATEWAY_TRACING",
        "emit OpenTelemetry spans (one per operation, one per upstream call) to the "
        "configured TracerProvider, e.g. under opentelemetry-instrument (true/false)",
        _parse_bool,
    ),
    Setting(
        "sync",
        "GATEWAY_SYNC",
        "serve reads from a per-key replica kept fresh by polling the upstream (DESIGN.md "
        "§8); off: every read goes upstream (on/off)",
        _parse_bool,
    ),
    Setting(
        "sync_interval",
        "GATEWAY_SYNC_INTERVAL",
        "seconds between two polls of a replica's appointments (stretched while the key's "
        "budget is under pressure)",
        _parse_positive_float,
    ),
    Setting(
        "sync_reference_interval",
        "GATEWAY_SYNC_REFERENCE_INTERVAL",
        "seconds between two polls of businesses, practitioners, appointment types, "
        "patients and patient cases",
        _parse_positive_float,
    ),
    Setting(
        "sync_deletion_check_interval",
        "GATEWAY_SYNC_DELETION_CHECK_INTERVAL",
        "seconds between two checks for appointments deleted without a trace (a count of "
        "the window, one request)",
        _parse_positive_float,
    ),
    Setting(
        "sync_days_back",
        "GATEWAY_SYNC_DAYS_BACK",
        "days before now whose appointments a replica holds",
        _parse_non_negative_int,
    ),
    Setting(
        "sync_days_ahead",
        "GATEWAY_SYNC_DAYS_AHEAD",
        "days after now whose appointments a replica holds",
        _parse_positive_int,
    ),
    Setting(
        "sync_budget_share",
        "GATEWAY_SYNC_BUDGET_SHARE",
        "the largest share of a key's upstream budget its replica's sync may spend (0..1); "
        "sync only ever takes what reads leave",
        _parse_fraction,
    ),
    Setting(
        "sync_max_staleness",
        "GATEWAY_SYNC_MAX_STALENESS",
        "seconds a replica may lag before reads go upstream again",
        _parse_positive_float,
    ),
    Setting(
        "sync_idle",
        "GATEWAY_SYNC_IDLE",
        "seconds without a read after which a key's replica is dropped",
        _parse_positive_float,
    ),
    Setting(
        "sync_max_keys",
        "GATEWAY_SYNC_MAX_KEYS",
        "replicas kept in this process at once; the least recently read one goes",
        _parse_positive_int,
    ),
    Setting(
        "sync_start_after",
        "GATEWAY_SYNC_START_AFTER",
        "upstream requests a key's reads spend within 5 minutes before its replica starts "
        "(0: at its first read)",
        _parse_non_negative_int,
    ),
    Setting(
        "subscriptions_per_connection",
        "GATEWAY_SUBSCRIPTIONS_PER_CONNECTION",
        "live subscriptions one WebSocket connection may run at once; one more gets "
        "TOO_MANY_SUBSCRIPTIONS",
        _parse_positive_int,
    ),
    Setting(
        "subscriptions_per_key",
        "GATEWAY_SUBSCRIPTIONS_PER_KEY",
        "live subscriptions one API key may hold in one gateway process, over every "
        "connection; one more gets TOO_MANY_SUBSCRIPTIONS",
        _parse_positive_int,
    ),
    Setting(
        "subscription_queue",
        "GATEWAY_SUBSCRIPTION_QUEUE",
        "changes a subscriber may leave unread; one more ends its subscription with "
        "SLOW_CONSUMER instead of buffering without bound",
        _parse_positive_int,
    ),
    Setting(
        "ws_init_timeout",
        "GATEWAY_WS_INIT_TIMEOUT",
        "seconds a WebSocket may take to send connection_init before it is closed (4408)",
        _parse_positive_float,
    ),
    Setting(
        "ws_ping_interval",
        "GATEWAY_WS_PING_INTERVAL",
        "seconds between two graphql-transport-ws pings the gateway sends (0: none)",
        _parse_non_negative_float,
    ),
    Setting(
        "ws_pong_timeout",
        "GATEWAY_WS_PONG_TIMEOUT",
        "seconds a WebSocket client may take to answer a ping with pong before it is closed (4408)",
        _parse_positive_float,
    ),
    Setting(
        "log_level",
        "GATEWAY_LOG_LEVEL",
        "critical, error, warning, info or debug",
        _parse_log_level,
    ),
)

SANDBOX_SETTINGS: tuple[Setting, ...] = (
    Setting("host", "SANDBOX_HOST", "interface the sandbox listens on", _parse_text),
    Setting("port", "SANDBOX_PORT", "TCP port the sandbox listens on (0: any free)", _parse_port),
    Setting(
        "latency_ms",
        "SANDBOX_LATENCY_MS",
        "milliseconds added to every /v1 request, to imitate a distant upstream",
        _parse_non_negative_float,
    ),
    Setting(
        "rate_limit",
        "SANDBOX_RATE_LIMIT",
        "requests per minute per API key before 429 (Cliniko: 200; 0: off)",
        _parse_non_negative_int,
    ),
    Setting(
        "fault_rate",
        "SANDBOX_FAULT_RATE",
        "fraction of /v1 requests answered with 503 (0..1)",
        _parse_fraction,
    ),
    Setting("seed", "SANDBOX_SEED", "seed of the deterministic demo data", int),
    Setting(
        "db",
        "SANDBOX_DB",
        "SQLite file to keep the data in (seeded when empty); unset: in memory",
        _parse_text,
    ),
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _resolve(
    table: tuple[Setting, ...],
    defaults: Mapping[str, Any],
    environ: Mapping[str, str],
    overrides: Mapping[str, str | None],
) -> dict[str, Any]:
    values = dict(defaults)
    for setting in table:
        raw = overrides.get(setting.name)
        source = setting.flag
        if raw is None:
            raw = environ.get(setting.env)
            source = setting.env
        if raw is None or raw == "":
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            safe = not setting.secret or isinstance(exc, SafeReason)
            reason = str(exc) if safe else "the value is not valid"
            raise ConfigError(f"{source}: {reason}") from None
    return values


@dataclass(frozen=True, slots=True)
class Settings:
    """The gateway's configuration, validated.

    Build it with ``Settings.load(environ, overrides)``; construct it directly in tests.
    """

    upstream: str = UPSTREAM_SANDBOX
    api_key: str | None = field(default=None, repr=False)
    auth: AuthMode = "service"
    #: SHA-256 hex digests of the gateway tokens (service mode); never the tokens.
    gateway_tokens: tuple[str, ...] = field(default=(), repr=False)
    #: SHA-256 hex digests of the tokens that open /metrics and /readyz off loopback.
    ops_tokens: tuple[str, ...] = field(default=(), repr=False)
    user_agent: str | None = None
    host: str = "127.0.0.1"
    #: Names besides loopback's own that the Host header may carry (gateway/middleware/hosts.py).
    allowed_hosts: tuple[str, ...] = ()
    port: int = 8000
    workers: int = 1
    redis_url: str | None = field(default=None, repr=False)
    redis_prefix: str = "gw"
    instances: int = 1
    upstream_timeout: float = 10.0
    operation_timeout: float = 30.0
    upstream_rate_limit: int = 200
    upstream_max_wait: float = 5.0
    max_upstream_requests: int = 50
    max_depth: int = 12
    max_aliases: int = 30
    max_selections: int = 1000
    max_tokens: int = 5000
    max_analysis_ms: int = 30
    graphiql: bool = True
    introspection: bool = True
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    cors_origins: tuple[str, ...] = ()
    apq: bool = True
    apq_ttl: float = 86400.0
    #: The checked manifest (``gateway/trusted.py``); ``None``: no trusted documents.
    trusted_documents: TrustedDocuments | None = None
    trusted_only: bool = False
    sandbox_port: int = 8911
    tracing: bool = False
    log_level: str = "info"
    sync: bool = True
    sync_interval: float = 5.0
    sync_reference_interval: float = 60.0
    sync_deletion_check_interval: float = 60.0
    sync_days_back: int = 30
    sync_days_ahead: int = 120
    sync_budget_share: float = 0.2
    sync_max_staleness: float = 30.0
    sync_idle: float = 900.0
    sync_max_keys: int = 50
    sync_start_after: int = 10
    subscriptions_per_connection: int = 20
    subscriptions_per_key: int = 1000
    subscription_queue: int = 100
    ws_init_timeout: float = 10.0
    ws_ping_interval: float = 15.0
    ws_pong_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.auth == "service" and self.upstream != UPSTREAM_SANDBOX and not self.api_key:
            raise ConfigError(
                "CLINIKO_API_KEY is required in service auth mode unless the upstream is "
                "the sandbox (or use GATEWAY_AUTH=forward so each caller sends its own key)"
            )
        if self.auth == "forward" and self.gateway_tokens:
            raise ConfigError(
                "GATEWAY_TOKENS applies to service auth mode only: in forward mode the "
                "Authorization header carries each caller's own Cliniko key"
            )
        if self.auth == "service" and not self.gateway_tokens and not self.is_loopback:
            raise ConfigError(
                f"GATEWAY_HOST={self.host!r} is not a loopback address: in service auth mode "
                "anyone who reaches the port would use the service key; set GATEWAY_TOKENS "
                "so callers must present a token, bind to 127.0.0.1, or use "
                "GATEWAY_AUTH=forward"
            )
        if "*" in self.allowed_hosts:
            raise ConfigError("GATEWAY_ALLOWED_HOSTS: '*' is not allowed; list each name")
        if not self.allowed_hosts and not self.is_loopback:
            raise ConfigError(
                f"GATEWAY_HOST={self.host!r} is not a loopback address: set "
                "GATEWAY_ALLOWED_HOSTS to the names clients reach the gateway by (such as "
                "gateway.example.com), so that requests naming any other host in their "
                "Host header are refused (DNS rebinding)"
            )
        if self.trusted_only and self.trusted_documents is None:
            raise ConfigError(
                "GATEWAY_TRUSTED_ONLY=true needs GATEWAY_TRUSTED_DOCUMENTS, the manifest of "
                "the documents to run (such as graphql-codegen's persisted-documents.json); "
                "without it every operation would be refused"
            )
        if self.workers > 1 and not self.redis_url:
            # In-memory state (state.py) is per process: two workers behind one port
            # would each hold half the truth.
            raise ConfigError(
                f"GATEWAY_WORKERS={self.workers} needs GATEWAY_REDIS_URL: without a shared "
                "store each worker would keep its own idempotency keys and rate budget, so a "
                "retried createAppointment could book twice and the workers together could "
                "exceed Cliniko's limit; set GATEWAY_REDIS_URL or run one worker"
            )
        if self.talks_to_cliniko and not (self.user_agent and is_safe_user_agent(self.user_agent)):
            raise ConfigError(
                "GATEWAY_USER_AGENT must be 'Name (email@domain)' for real Cliniko, which "
                "may block requests without one"
            )
        if self.auth == "service" and self.api_key and not self.uses_sandbox:
            base_url = None if self.upstream == UPSTREAM_CLINIKO else self.upstream
            try:
                Credential.from_api_key(self.api_key, base_url=base_url)
            except InvalidApiKey:
                raise ConfigError(
                    "CLINIKO_API_KEY does not end in a valid shard suffix (such as '-au1')"
                ) from None
            except InvalidBaseUrl as exc:
                raise ConfigError(f"GATEWAY_UPSTREAM: {exc}") from None

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, str | None] | None = None,
    ) -> Settings:
        """Read settings from ``environ`` (default ``os.environ``) with flag ``overrides``."""
        values = _resolve(
            SETTINGS,
            {f.name: f.default for f in dataclasses.fields(cls)},
            os.environ if environ is None else environ,
            overrides or {},
        )
        return cls(**values)

    def to_environ(self) -> dict[str, str]:
        """The environment that makes ``Settings.load`` rebuild exactly these settings.

        Worker processes started by uvicorn get their configuration this way.
        """
        env: dict[str, str] = {}
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            if value is None or value == ():
                continue
            if setting.render is not None:
                env[setting.env] = setting.render(value)
            else:
                env[setting.env] = (
                    ("true" if value else "false") if isinstance(value, bool) else str(value)
                )
        return env

    @property
    def is_loopback(self) -> bool:
        """Whether the gateway listens on a loopback interface only (a dev machine)."""
        return is_loopback(self.host)

    @property
    def uses_sandbox(self) -> bool:
        return self.upstream == UPSTREAM_SANDBOX

    @property
    def talks_to_cliniko(self) -> bool:
        """Whether upstream calls go to the real service (by name or by a URL on its host)."""
        if self.upstream == UPSTREAM_CLINIKO:
            return True
        return not self.uses_sandbox and is_cliniko_host(httpx.URL(self.upstream).host)

    @property
    def effective_user_agent(self) -> str:
        return self.user_agent or SANDBOX_USER_AGENT


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    """How ``appointments-gateway sandbox`` runs the stand-in API."""

    host: str = "127.0.0.1"
    port: int = 8911
    latency_ms: float = 0.0
    rate_limit: int = 200
    fault_rate: float = 0.0
    seed: int = 1
    db: str | None = None

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, str | None] | None = None,
    ) -> SandboxSettings:
        values = _resolve(
            SANDBOX_SETTINGS,
            {f.name: f.default for f in dataclasses.fields(cls)},
            os.environ if environ is None else environ,
            overrides or {},
        )
        return cls(**values)
