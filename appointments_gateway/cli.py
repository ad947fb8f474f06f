"""The ``appointments-gateway`` command: ``serve``, ``sandbox`` and ``schema``.

``serve`` binds its socket before it prints anything, so the URL it prints is the one that
answers (also with ``--port 0``).  With ``--upstream sandbox`` it first starts the embedded
sandbox in a background thread of the process, and the gateway talks to the demo data over
real HTTP, exactly as it would talk to Cliniko.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import uvicorn

from appointments_gateway import __version__
from appointments_gateway.observability.logs import log_config
from appointments_gateway.settings import (
    SANDBOX_SETTINGS,
    SETTINGS,
    ConfigError,
    SandboxSettings,
    Setting,
    Settings,
)

__all__ = ["EmbeddedSandbox", "build_parser", "main"]

_GATEWAY_APP = "appointments_gateway.gateway.app:create_app_from_environ"


def _add_settings(parser: argparse.ArgumentParser, table: tuple[Setting, ...]) -> None:
    for setting in table:
        parser.add_argument(
            setting.flag,
            dest=setting.name,
            default=None,
            metavar="VALUE" if setting.secret else setting.name.upper(),
            help=f"{setting.help} [env {setting.env}]",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="appointments-gateway",
        description="A GraphQL gateway in front of Cliniko's appointments REST API.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the GraphQL gateway (GraphiQL at /graphql)",
        description="Run the GraphQL gateway. Flags override environment variables.",
    )
    _add_settings(serve, SETTINGS)

    sandbox = commands.add_parser(
        "sandbox",
        help="run the embedded stand-in for the Cliniko REST API on its own",
        description="Run the sandbox REST API with demo data. Flags override environment "
        "variables.",
    )
    _add_settings(sandbox, SANDBOX_SETTINGS)

    commands.add_parser("schema", help="print the GraphQL schema (SDL)")
    return parser


def _overrides(args: argparse.Namespace, table: tuple[Setting, ...]) -> dict[str, str | None]:
    return {setting.name: getattr(args, setting.name) for setting in table}


@dataclass
class EmbeddedSandbox:
    """The sandbox served by uvicorn on a thread of this process, for ``serve``."""

    server: uvicorn.Server
    thread: threading.Thread
    base_url: str

    @classmethod
    def start(cls, settings: SandboxSettings) -> EmbeddedSandbox:
        server, sock, base_url = _sandbox_server(settings)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="sandbox", daemon=True
        )
        thread.start()
        return cls(server, thread, base_url)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _serve(args: argparse.Namespace) -> int:
    settings = Settings.load(overrides=_overrides(args, SETTINGS))
    from appointments_gateway.sandbox import DEMO_KEY_A, DEMO_KEY_B

    sandbox: EmbeddedSandbox | None = None
    if settings.uses_sandbox:
        sandbox = EmbeddedSandbox.start(
            SandboxSettings(host="127.0.0.1", port=settings.sandbox_port)
        )
    try:
        worker_env = settings.to_environ()
        if sandbox is not None:
            # Workers talk to the embedded sandbox like to any upstream: by URL.
            worker_env["GATEWAY_UPSTREAM"] = sandbox.base_url
            if settings.auth == "service" and not settings.api_key:
                worker_env["CLINIKO_API_KEY"] = DEMO_KEY_A
            worker_env.setdefault("GATEWAY_USER_AGENT", settings.effective_user_agent)
        os.environ.update(worker_env)

        sock = uvicorn.Config(_GATEWAY_APP, host=settings.host, port=settings.port).bind_socket()
        port = sock.getsockname()[1]
        base = f"http://{_url_host(settings.host)}:{port}"
        print(f"appointments-gateway {__version__}", flush=True)
        print(f"GraphQL endpoint: {base}/graphql", flush=True)
        if settings.graphiql:
            print(f"GraphiQL:         {base}/graphql (open it in a browser)", flush=True)
        print(f"Health:           {base}/healthz", flush=True)
        if sandbox is not None:
            print(f"Upstream:         embedded sandbox at {sandbox.base_url}", flush=True)
            print(f"Demo API keys:    {DEMO_KEY_A} (default), {DEMO_KEY_B}", flush=True)
        else:
            print(f"Upstream:         {settings.upstream}", flush=True)
        print(f"Auth mode:        {settings.auth}", flush=True)

        config = uvicorn.Config(
            _GATEWAY_APP,
            factory=True,
            host=settings.host,
            port=port,
            log_level=settings.log_level,
            # One JSON object per line, exceptions without their messages (observability/logs.py).
            log_config=log_config(settings.log_level),
            proxy_headers=False,
            # uvicorn's access log prints the full URL, and a GET operation carries its
            # variables (names, notes) in the query string: health data must not reach logs.
            access_log=False,
            # SIGTERM stops the server within a bounded time: operations still running
            # then end by their own deadline (plus the view's grace), and whatever has
            # not ended a second later is cancelled.
            timeout_graceful_shutdown=math.ceil(settings.operation_timeout) + 1,
        )
        # One process: Settings refuses more workers until state is shared (Redis).
        server = uvicorn.Server(config)
        server.run(sockets=[sock])
        if not server.started:
            return 1
    finally:
        if sandbox is not None:
            sandbox.stop()
    return 0


def _sandbox_server(settings: SandboxSettings) -> tuple[uvicorn.Server, socket.socket, str]:
    from appointments_gateway.sandbox import SandboxConfig, create_sandbox_app

    app = create_sandbox_app(
        SandboxConfig(
            latency_ms=settings.latency_ms,
            rate_limit_per_minute=settings.rate_limit,
            fault_rate=settings.fault_rate,
            seed=settings.seed,
            db_path=settings.db,
        )
    )
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level="warning", access_log=False
    )
    sock = config.bind_socket()
    port = sock.getsockname()[1]
    return uvicorn.Server(config), sock, f"http://{_url_host(settings.host)}:{port}/v1"


def _sandbox(args: argparse.Namespace) -> int:
    from appointments_gateway.sandbox import DEMO_KEY_A, DEMO_KEY_B

    settings = SandboxSettings.load(overrides=_overrides(args, SANDBOX_SETTINGS))
    server, sock, base_url = _sandbox_server(settings)
    print(f"Sandbox Cliniko API: {base_url}", flush=True)
    print(f"Demo API keys:       {DEMO_KEY_A} (account A), {DEMO_KEY_B} (account B)", flush=True)
    print(
        f"Knobs:               latency {settings.latency_ms:g} ms, rate limit "
        f"{settings.rate_limit or 'off'}/min per key, fault rate {settings.fault_rate:g}",
        flush=True,
    )
    print(f"Counters:            {base_url.removesuffix('/v1')}/_sandbox/stats", flush=True)
    server.run(sockets=[sock])
    return 0


def _schema() -> int:
    from appointments_gateway.schema import build_schema

    sys.stdout.write(build_schema().as_str() + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "sandbox":
            return _sandbox(args)
        return _schema()
    except ConfigError as exc:
        print(f"appointments-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
