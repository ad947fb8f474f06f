"""Serve the gateway app with another schema, or under cProfile, for the benchmark.

``python -m bench.server --schema naive --upstream URL`` serves baseline (b) through the
real plumbing (``create_app(settings, schema=...)``: same Starlette app, upstream client,
context and extensions) on uvicorn with the CLI's server options (uvloop and httptools
when installed, no access log).  ``--schema gateway --profile out.prof`` serves the real
schema under ``cProfile`` and writes the profile on shutdown (SIGINT).

Settings come from the environment and flags exactly as for ``appointments-gateway
serve`` (``CLINIKO_API_KEY``...).  Prints ``GraphQL endpoint: <url>`` once listening.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
from pathlib import Path

import strawberry
import uvicorn

from appointments_gateway.gateway.app import create_app
from appointments_gateway.schema import build_schema
from appointments_gateway.settings import Settings
from bench.naive import build_naive_schema

__all__ = ["main"]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server")
    parser.add_argument("--schema", choices=["gateway", "naive"], default="gateway")
    parser.add_argument("--upstream", required=True, help="the sandbox base URL (…/v1)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the server here")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="experiment: gc.freeze() once the app is built (moves startup objects out of GC)",
    )
    args = parser.parse_args()

    settings = Settings.load(overrides={"upstream": args.upstream, "graphiql": "false"})
    schema: strawberry.Schema = build_naive_schema() if args.schema == "naive" else build_schema()
    app = create_app(settings, schema=schema)
    if args.gc_freeze:
        gc.collect()
        gc.freeze()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )
    sock = config.bind_socket()
    print(f"GraphQL endpoint: http://127.0.0.1:{sock.getsockname()[1]}/graphql", flush=True)
    server = uvicorn.Server(config)
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    try:
        server.run(sockets=[sock])
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
