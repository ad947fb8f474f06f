"""The processes a benchmark run starts, and what ``/proc`` says about them.

Every server is started the way a user starts it: the console script for the sandbox
and the gateway, ``python -m bench.server`` for the naive baseline.  Each is started
with ``--port 0`` and the URL is read from the line it prints, so two runs never fight
over a port.  Output goes to a log file (never a pipe nobody drains).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

__all__ = ["CLOCK_TICKS", "Server", "cpu_seconds", "peak_rss_mb"]

BIN = Path(sys.executable).parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the whole process (all threads), from ``/proc/<pid>/stat``."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (``VmHWM``) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM line.")


@dataclass
class Server:
    """One started server process and the URL it printed."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(
        cls,
        name: str,
        argv: list[str],
        *,
        url_line: str,
        log_dir: Path,
        env: dict[str, str] | None = None,
        health_path: str,
        timeout: float = 60.0,
    ) -> Server:
        """Start ``argv``, wait for the line ``url_line: <url>``, then for ``health_path``."""
        log = log_dir / f"{name}.log"
        handle = log.open("wb")
        process = subprocess.Popen(
            argv,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        handle.close()
        pattern = re.compile(re.escape(url_line) + r":\s*(\S+)")
        deadline = time.monotonic() + timeout
        url = None
        while url is None:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}):\n{log.read_text()}")
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{name} printed no {url_line!r} line:\n{log.read_text()}")
            found = pattern.search(log.read_text(errors="replace"))
            if found:
                url = found.group(1)
            else:
                time.sleep(0.05)
        server = cls(name, process, url, log)
        server._wait_healthy(health_path, deadline)
        return server

    def _wait_healthy(self, path: str, deadline: float) -> None:
        origin = httpx.URL(self.url).copy_with(path=path)
        while True:
            try:
                if httpx.get(origin, timeout=2).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} never answered {path}:\n{self.log.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGINT (uvicorn's graceful shutdown), then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def sandbox(latency_ms: float, log_dir: Path, *, rate_limit: int = 0, tag: str = "") -> Server:
    """``appointments-gateway sandbox`` with the given latency; no rate limit unless given.

    The front-desk scenario passes Cliniko's 200/min, since running out of it is what it
    measures; ``tag`` keeps each of its runs' logs apart.
    """
    return Server.start(
        f"sandbox-{latency_ms:g}ms{'-' + tag if tag else ''}",
        [
            str(BIN / "appointments-gateway"),
            "sandbox",
            "--port",
            "0",
            "--latency-ms",
            f"{latency_ms:g}",
            "--rate-limit",
            str(rate_limit),
        ],
        url_line="Sandbox Cliniko API",
        log_dir=log_dir,
        health_path="/_sandbox/stats",
    )


def gateway(
    upstream: str, api_key: str, log_dir: Path, *, tag: str, env: dict[str, str] | None = None
) -> Server:
    """``appointments-gateway serve`` against ``upstream``; the key goes in the environment.

    ``env`` overrides the bench's defaults (``_gateway_env``), e.g. ``GATEWAY_SYNC``.
    """
    return Server.start(
        f"gateway-{tag}",
        [
            str(BIN / "appointments-gateway"),
            "serve",
            "--upstream",
            upstream,
            "--port",
            "0",
        ],
        url_line="GraphQL endpoint",
        env={**_gateway_env(api_key), **(env or {})},
        log_dir=log_dir,
        health_path="/healthz",
    )


def _gateway_env(api_key: str) -> dict[str, str]:
    # The sandbox's rate limit is off for the benchmark, so the gateway's own per-key
    # upstream budget (Cliniko's 200/min) is off too; a gateway without one ignores this.
    # GATEWAY_SYNC=off: the suite measures the upstream path (every read goes to the
    # sandbox), so the per-key replica stays off; a gateway without one ignores this too.
    return {
        "CLINIKO_API_KEY": api_key,
        "GATEWAY_UPSTREAM_RATE_LIMIT": "0",
        "GATEWAY_SYNC": "off",
    }


def bench_server(
    schema: str,
    upstream: str,
    api_key: str,
    log_dir: Path,
    *,
    tag: str,
    profile: Path | None = None,
    extra: list[str] | None = None,
) -> Server:
    """``python -m bench.server``: the gateway app with another schema, or under cProfile."""
    argv = [sys.executable, "-m", "bench.server", "--schema", schema, "--upstream", upstream]
    if profile is not None:
        argv += ["--profile", str(profile)]
    argv += extra or []
    return Server.start(
        f"{schema}-{tag}",
        argv,
        url_line="GraphQL endpoint",
        env=_gateway_env(api_key),
        log_dir=log_dir,
        health_path="/healthz",
    )
