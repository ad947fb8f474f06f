"""Start the real console script, read the URLs it prints, and stop it afterwards."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

SCRIPT = str(Path(sys.executable).parent / "appointments-gateway")
STARTUP_SECONDS = 30.0


@dataclass
class Running:
    """A started CLI process and everything it printed so far."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _pump: threading.Thread | None = None

    def wait_for(self, prefix: str, timeout: float = STARTUP_SECONDS) -> str:
        """The rest of the first printed line that starts with ``prefix``."""
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        while time.monotonic() < deadline:
            try:
                got = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if got is None:
                break
            self.lines.append(got)
            if got.startswith(prefix):
                return got[len(prefix) :].strip()
        raise AssertionError(f"the CLI never printed {prefix!r}; it printed: {self.lines!r}")

    def output(self) -> str:
        """Everything printed so far (all of it once the process has stopped)."""
        while True:
            try:
                got = self._queue.get_nowait()
            except queue.Empty:
                break
            if got is not None:
                self.lines.append(got)
        return "\n".join(self.lines)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._pump is not None:
            self._pump.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


def start_cli(*args: str, env: dict[str, str] | None = None) -> Running:
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "SANDBOX_"))}
    clean_env.pop("CLINIKO_API_KEY", None)
    process = subprocess.Popen(
        [SCRIPT, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**clean_env, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    running = Running(process)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            running._queue.put(line.rstrip("\n"))
        running._queue.put(None)

    running._pump = threading.Thread(target=pump, daemon=True)
    running._pump.start()
    return running


def wait_until_serving(root: str, timeout: float = STARTUP_SECONDS) -> None:
    """Poll ``root/healthz`` until it answers 200: uvicorn prints nothing to wait on."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5) as http:
        while time.monotonic() < deadline:
            try:
                if http.get(f"{root}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"{root}/healthz never answered")


def serve_on_sandbox(cli: list[Running], *args: str) -> tuple[Running, str, str]:
    """``serve`` on the embedded sandbox, free ports, answering: (process, endpoint, root)."""
    running = start_cli("serve", "--port", "0", "--sandbox-port", "0", *args)
    cli.append(running)
    endpoint = running.wait_for("GraphQL endpoint:")
    root = endpoint.removesuffix("/graphql")
    wait_until_serving(root)
    return running, endpoint, root


def refused_at_start(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with a configuration it must refuse: exit 2, a configuration error."""
    done = subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "configuration error" in done.stderr
    assert "GraphQL endpoint" not in done.stdout  # it never started serving
    return done


@pytest.fixture
def cli() -> Iterator[list[Running]]:
    """Collects started processes and stops every one of them after the test."""
    started: list[Running] = []
    yield started
    for running in started:
        running.stop()
