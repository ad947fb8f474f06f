"""``time_limit`` interrupts synchronous work, and leaves nothing armed behind it."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from appointments_gateway.schema.time_budget import TimeLimitExceeded, preemptive, time_limit


def spin(seconds: float) -> int:
    """Pure-Python busy work, like a validation rule comparing fields."""
    end = time.perf_counter() + seconds
    turns = 0
    while time.perf_counter() < end:
        turns += 1
    return turns


def test_a_busy_block_is_interrupted_at_its_limit():
    assert preemptive()
    started = time.perf_counter()
    with pytest.raises(TimeLimitExceeded), time_limit(0.05):
        spin(5)
    # Interrupted, not run to its end: well before the 5 s the block wanted.
    assert time.perf_counter() - started < 1


def test_a_block_within_its_limit_runs_and_nothing_fires_later():
    with time_limit(0.05):
        spin(0.01)
    spin(0.1)  # the timer is disarmed: nothing is raised into unrelated code


def test_the_collector_is_paused_inside_and_restored_after():
    assert gc.isenabled()
    with time_limit(0.05):
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(TimeLimitExceeded), time_limit(0.01):
        spin(1)
    assert gc.isenabled()


def test_no_time_left_is_refused_at_once():
    with pytest.raises(TimeLimitExceeded), time_limit(0):
        pytest.fail("the block must not run")


def test_off_the_main_thread_the_limit_is_checked_when_the_block_ends():
    outcome: list[str] = []

    def worker() -> None:
        assert not preemptive()
        try:
            with time_limit(0.01):
                spin(0.05)
        except TimeLimitExceeded:
            outcome.append("refused")
        with time_limit(1):
            spin(0.001)
        outcome.append("within")

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert outcome == ["refused", "within"]
