"""``serve --workers 2``: two processes behind one port, one ``/metrics`` that counts both.

The workers need ``GATEWAY_REDIS_URL`` (settings.py); these tests only need the gateway to
start with it.  Which worker takes a connection is the kernel's choice, so operations go
out on fresh connections, several at a time, until both workers have served some.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families

from appointments_gateway.observability.metrics import MULTIPROC_DIR_ENV
from tests.e2e.conftest import Running, start_cli, wait_until_serving
from tests.redis_server import RedisServer

pytestmark = pytest.mark.e2e

PROBE = {"query": "query Probe { version }"}
BATCH = 16
MAX_BATCHES = 12


def _post(endpoint: str) -> None:
    # a client per request: a new connection each time, for the kernel to hand out
    with httpx.Client(timeout=10, headers={"connection": "close"}) as http:
        response = http.post(endpoint, json=PROBE)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["version"]


def probes_by_pid(directory: Path) -> dict[int, float]:
    """Probe operations each worker wrote to its counter file (``counter_<pid>.db``)."""
    found: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.removeprefix("counter_"))
        for key, count, _, _ in MmapedDict.read_all_values_from_file(str(path)):  # type: ignore[no-untyped-call]
            name, _, labels, _ = json.loads(key)
            if name == "gateway_operations" and labels.get("operation") == "Probe":
                found[pid] = found.get(pid, 0.0) + count
    return found


def counted(directory: Path, sent: int) -> dict[int, float]:
    """The probes by pid once all ``sent`` are counted: a worker counts an operation only
    after its response has gone out, so the last ones may take a moment."""
    deadline = time.monotonic() + 5
    while sum((found := probes_by_pid(directory)).values()) < sent:
        assert time.monotonic() < deadline, f"{sent} probes sent, counted: {found}"
        time.sleep(0.02)
    return found


def probes_until_both_workers_served(endpoint: str, directory: Path) -> int:
    """Send probes in concurrent batches until two pids have counted some; how many sent."""
    sent = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(MAX_BATCHES):
            list(pool.map(_post, [endpoint] * BATCH))
            sent += BATCH
            if len(counted(directory, sent)) >= 2:
                return sent
    raise AssertionError(f"one worker served all {sent} probes: {probes_by_pid(directory)}")


def scraped_probes(root: str) -> float:
    response = httpx.get(f"{root}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        if family.name == "gateway_operations"
        for sample in family.samples
        if sample.name == "gateway_operations_total" and sample.labels["operation"] == "Probe"
    )


Served = tuple[Running, str, str, Path]


@pytest.fixture
def two_workers(cli: list[Running], redis_server: RedisServer) -> Callable[[], Served]:
    """Starts ``serve --workers 2`` on Redis: (process, endpoint, root, metric files' dir)."""

    def start() -> Served:
        running = start_cli(
            *("serve", "--port", "0", "--sandbox-port", "0", "--workers", "2"),
            env={"GATEWAY_REDIS_URL": redis_server.url, "GATEWAY_SYNC": "off"},
        )
        cli.append(running)
        endpoint = running.wait_for("GraphQL endpoint:")
        assert running.wait_for("Workers:") == "2"
        directory = Path(running.wait_for("Metric files:").split(" (", 1)[0])
        root = endpoint.removesuffix("/graphql")
        wait_until_serving(root)
        return running, endpoint, root, directory

    return start


def test_one_scrape_counts_the_operations_of_both_workers(
    two_workers: Callable[[], Served], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv(MULTIPROC_DIR_ENV, raising=False)
    running, endpoint, root, directory = two_workers()
    assert "removed at exit" in running.output()

    sent = probes_until_both_workers_served(endpoint, directory)
    by_pid = counted(directory, sent)
    assert len(by_pid) == 2
    assert sum(by_pid.values()) == sent
    # whichever worker answers the scrape, it counts the other's operations too
    for _ in range(4):
        assert scraped_probes(root) == sent

    assert running.stop() == 0
    assert not directory.exists()


def test_an_operators_directory_is_cleared_of_an_earlier_run_and_kept(
    two_workers: Callable[[], Served],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
):
    # what an earlier run would have left: 1000 probes of a worker long gone
    earlier = MmapedDict(str(tmp_path / "counter_1.db"))  # type: ignore[no-untyped-call]
    labels = ["operation", "type", "outcome"]
    key = mmap_key(
        "gateway_operations", "gateway_operations_total", labels, ["Probe", "query", "ok"], "-"
    )
    earlier.write_value(key, 1000.0, 0.0)  # type: ignore[no-untyped-call]
    earlier.close()  # type: ignore[no-untyped-call]
    monkeypatch.setenv(MULTIPROC_DIR_ENV, str(tmp_path))

    running, endpoint, root, directory = two_workers()
    assert directory == tmp_path
    assert "as set" in running.output()
    assert not (tmp_path / "counter_1.db").exists()

    sent = probes_until_both_workers_served(endpoint, directory)
    assert scraped_probes(root) == sent

    assert running.stop() == 0
    assert tmp_path.is_dir()
