"""A real ``redis-server`` for the tests: started on a free port in a temp dir, stopped by PID.

Debian's ``redis-server`` (``apt-get install redis-server``; ``.ci/run`` installs it when it
is missing).  Outside CI a machine without the binary skips the Redis tests with a message
saying how to get it; in CI (``CI`` set) a missing binary fails them instead, so CI can never
pass by skipping.

The server keeps nothing on disk (no RDB snapshots, no AOF) and binds to loopback only.
:meth:`RedisServer.stop` and :meth:`RedisServer.start` again on the same port is how the
tests take Redis away from a running gateway and give it back.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

__all__ = ["RedisServer", "free_port", "redis_binary"]

_HOW = "install Debian's redis-server (apt-get install redis-server); .ci/run does it in CI"


def redis_binary() -> str:
    """The ``redis-server`` path, or skip (fail in CI) when there is none."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"redis-server is not installed: {_HOW}")
        pytest.skip(f"redis-server is not installed: {_HOW}")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process on loopback; ``url`` is what ``GATEWAY_REDIS_URL`` takes."""

    def __init__(self, *, port: int | None = None, password: str | None = None) -> None:
        self.binary = redis_binary()
        self.port = port or free_port()
        self.password = password
        self.dir = Path(tempfile.mkdtemp(prefix="gw-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited at once ({self.process.returncode})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer within 10 s")

    def stop(self) -> None:
        """Stop the server by its PID (SIGTERM, then SIGKILL) and wait for it."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
