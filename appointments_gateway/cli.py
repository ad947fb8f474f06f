"""The ``appointments-gateway`` command: ``serve``, ``sandbox`` and ``schema``.

``serve`` binds its socket before it prints anything, so the URL it prints is the one that
answers (also with ``--port 0``).  With ``--upstream sandbox`` it first starts the embedded
sandbox in a background thread of the process, and the gateway talks to the demo data over
real HTTP, exactly as it would talk to Cliniko.

With ``--workers N`` (N > 1, which needs Redis for the state the workers share) uvicorn's
own supervisor runs N worker processes on that one socket, and the sandbox stays in this
process.  So that one ``/metrics`` scrape counts every worker, ``PROMETHEUS_MULTIPROC_DIR``
names a directory made for this run (observability/metrics.py), which the workers inherit
and which goes when ``serve`` ends; a directory the operator set is used instead, emptied
of old value files first, as prometheus-client requires, and kept.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import uvicorn
from prometheus_client.multiprocess import mark_process_dead
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from appointments_gateway import __version__
from appointments_gateway.observability.logs import log_config
from appointments_gateway.observability.metrics import MULTIPROC_DIR_ENV
from appointments_gateway.settings import (
    SANDBOX_SETTINGS,
    SETTINGS,
    ConfigError,
    SandboxSettings,
    Setting,
    Settings,
)

__all__ = ["EmbeddedSandbox", "MetricsDir", "build_parser", "main"]

_GATEWAY_APP = "appointments_gateway.gateway.app:create_app_from_environ"
#: uvicorn's own default backlog.
_BACKLOG = 2048


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


@dataclass
class MetricsDir:
    """The directory of the workers' metric files for one run of ``serve``.

    prometheus-client sums every ``*.db`` file it finds there, so files of an earlier run
    would be counted as this run's: a directory made here is new and removed at exit; one
    the operator named is emptied of value files before any worker starts.
    """

    path: str
    #: Made by this run (then removed at exit), rather than named by the operator.
    ours: bool

    @classmethod
    def prepare(cls, workers: int) -> MetricsDir | None:
        """The directory for this run, exported for the workers; ``None`` if not needed."""
        given = os.environ.get(MULTIPROC_DIR_ENV)
        if given:
            os.makedirs(given, exist_ok=True)
            for stale in glob.glob(os.path.join(glob.escape(given), "*.db")):
                os.remove(stale)
            return cls(given, ours=False)
        if workers == 1:
            return None
        path = tempfile.mkdtemp(prefix="appointments-gateway-metrics-")
        # Set before any worker is spawned: prometheus-client reads it once, at import.
        os.environ[MULTIPROC_DIR_ENV] = path
        return cls(path, ours=True)

    def describe(self) -> str:
        if self.ours:
            return f"{self.path} (PROMETHEUS_MULTIPROC_DIR, removed at exit)"
        return f"{self.path} (PROMETHEUS_MULTIPROC_DIR as set; old *.db files cleared)"

    def forget_dead(self, live: set[int]) -> None:
        """``mark_process_dead`` for every pid with live-gauge files that is not in ``live``.

        A worker that ended holds no replica, so its ``live*`` gauges must stop counting;
        its counters stay, so totals never go down.
        """
        for pid in self._gauge_pids() - live:
            mark_process_dead(pid, self.path)  # type: ignore[no-untyped-call]

    def _gauge_pids(self) -> set[int]:
        pids: set[int] = set()
        for name in os.listdir(self.path):
            found = _LIVE_GAUGE_FILE.fullmatch(name)
            if found:
                pids.add(int(found[1]))
        return pids

    def close(self) -> None:
        if self.ours:
            shutil.rmtree(self.path, ignore_errors=True)
            os.environ.pop(MULTIPROC_DIR_ENV, None)
        else:
            self.forget_dead(live=set())


#: prometheus-client's file of one worker's ``live*`` gauges (``gauge_livesum_4242.db``).
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


class _Supervisor(Multiprocess):
    """uvicorn's worker supervisor, also telling prometheus-client which workers ended.

    uvicorn offers no hook for a worker's exit.  After each of its checks (every half
    second: it restarts a worker that died) the live-gauge files of every pid that is no
    longer a worker are deleted.  Going by files rather than by exit events also covers
    the workers SIGHUP and SIGTTOU retire and a replacement that never became ready.
    """

    def __init__(
        self, config: uvicorn.Config, sockets: list[socket.socket], metrics: MetricsDir | None
    ) -> None:
        super().__init__(config, sockets)
        self._metrics = metrics

    def keep_subprocess_alive(self) -> None:
        super().keep_subprocess_alive()
        if self._metrics is not None:
            self._metrics.forget_dead({p.pid for p in self.processes if p.pid is not None})

    @property
    def failed_to_start(self) -> bool:
        """A worker failed before serving, so uvicorn stopped them all."""
        return any(p.exitcode == STARTUP_FAILURE for p in self.processes)


def _serve(args: argparse.Namespace) -> int:
    settings = Settings.load(overrides=_overrides(args, SETTINGS))
    from appointments_gateway.sandbox import DEMO_KEY_A, DEMO_KEY_B

    sandbox: EmbeddedSandbox | None = None
    metrics: MetricsDir | None = None
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
        metrics = MetricsDir.prepare(settings.workers)

        sock = uvicorn.Config(_GATEWAY_APP, host=settings.host, port=settings.port).bind_socket()
        # Listening before the URL is printed: a client that connects at once waits in the
        # backlog until the server accepts, instead of being refused.
        sock.listen(_BACKLOG)
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
        print(f"Workers:          {settings.workers}", flush=True)
        if metrics is not None:
            print(f"Metric files:     {metrics.describe()}", flush=True)

        config = uvicorn.Config(
            _GATEWAY_APP,
            factory=True,
            host=settings.host,
            port=port,
            workers=settings.workers,
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
        if settings.workers > 1:
            # Workers are spawned (fresh interpreters): each builds the app from the
            # environment above, and the kernel hands each connection to one of them.
            supervisor = _Supervisor(config, [sock], metrics)
            supervisor.run()
            if supervisor.failed_to_start:
                return 1
        else:
            server = uvicorn.Server(config)
            server.run(sockets=[sock])
            if not server.started:
                return 1
    finally:
        if metrics is not None:
            metrics.close()
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
    sock.listen(_BACKLOG)  # before the URL is printed (see _serve)
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
