"""The replica's store on its own: versions within one whole second, and lagging writes.

Cliniko stamps ``updated_at`` in whole seconds, so two versions of a row changed within
one second look alike to the ``updated_at`` order.  These tests pin, on a fake clock, how
the store tells them apart around writes made through the gateway (``Replica.wrote``):
a row that may predate the write is held back until a poll that started after the write
completes (``mark_synced``), and is then applied (it came with that poll) or dropped (the
poll after it fetches the row again).  A span's answer (a load step, a deletion check)
may also predate a write: a row written since the last completed poll survives
``replace_span``.  ``tests/replica/test_writes.py`` shows these races end to end.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from appointments_gateway.replica import APPOINTMENTS, Replica
from appointments_gateway.upstream import AppointmentRecord

NOW = datetime(2026, 12, 5, 10, 0, 0, tzinfo=UTC)
SECOND = NOW.isoformat().replace("+00:00", "Z")


class Clock:
    def __init__(self) -> None:
        self.now = NOW.timestamp()

    def __call__(self) -> float:
        return self.now


def record(notes: str, *, updated: str = SECOND, id: str = "1", **extra: Any) -> AppointmentRecord:
    """An appointment (1 by default) starting tomorrow (inside the coverage)."""
    return AppointmentRecord.from_json(
        {
            "id": id,
            "created_at": "2026-12-01T00:00:00Z",
            "updated_at": updated,
            "starts_at": "2026-12-06T09:00:00Z",
            "ends_at": "2026-12-06T09:30:00Z",
            "notes": notes,
            "patient": {"links": {"self": "https://api.example/v1/patients/5"}},
            **extra,
        }
    )


def replica(clock: Clock) -> Replica:
    """A replica covering a week around now, its last poll a second ago."""
    store = Replica(clock=clock)
    store.extend_coverage(NOW - timedelta(days=3), NOW + timedelta(days=4))
    store.mark_synced(APPOINTMENTS, clock.now - 1.0)
    return store


def notes(store: Replica) -> str | None:
    return store.appointments["1"].notes


def test_a_same_second_row_from_a_poll_that_started_before_the_write_is_dropped() -> None:
    clock = Clock()
    store = replica(clock)
    started = clock.now  # a poll starts and is answered: "first"
    store.apply_appointment(record("first"))
    clock.now += 0.3
    store.wrote(record("second"))  # the gateway writes, within the same second
    clock.now += 0.1
    store.apply_appointment(record("first"))  # the poll's answer, applied late
    assert notes(store) == "second"
    store.mark_synced(APPOINTMENTS, started)  # that poll completes
    assert notes(store) == "second"


def test_an_outside_edit_after_the_write_in_the_same_second_is_applied_by_the_next_poll() -> None:
    """The deferral must not lose a newer version: the poll that started after the write
    brings it, and its completion applies it."""
    clock = Clock()
    store = replica(clock)
    store.wrote(record("ours"))
    clock.now += 0.2
    started = clock.now  # a poll starts after the write: the web app changed it since
    store.apply_appointment(record("theirs"))
    assert notes(store) == "ours"  # held back: it might have predated the write
    store.mark_synced(APPOINTMENTS, started)
    assert notes(store) == "theirs"


def test_a_later_row_replaces_a_deferred_one() -> None:
    clock = Clock()
    store = replica(clock)
    store.wrote(record("ours"))
    store.apply_appointment(record("stale"))  # a span read answered before the write
    clock.now += 0.2
    started = clock.now
    store.apply_appointment(record("ours"))  # the poll after the write: the row as held
    store.mark_synced(APPOINTMENTS, started)
    assert notes(store) == "ours"


def test_newer_seconds_are_applied_at_once_and_older_ones_never() -> None:
    clock = Clock()
    store = replica(clock)
    store.wrote(record("ours"))
    later = (NOW + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    store.apply_appointment(record("theirs", updated=later))
    assert notes(store) == "theirs"
    store.apply_appointment(record("ours"))
    assert notes(store) == "theirs"


def test_a_reads_row_of_the_same_second_never_replaces_the_held_one() -> None:
    """Only polls settle versions within one second; a read's fetch may be older."""
    clock = Clock()
    store = replica(clock)
    store.apply_appointment(record("held"))
    assert not store.apply_appointment(record("read"), newer_only=True)
    assert notes(store) == "held"


def test_while_dirty_no_appointment_is_answered_by_id() -> None:
    clock = Clock()
    store = replica(clock)
    store.apply_appointment(record("held"))
    store.tombstone("2")
    assert store.get(APPOINTMENTS, ["1", "2"]) == ({"1": store.appointments["1"]}, [])
    store.appointments_dirty = True
    assert store.get(APPOINTMENTS, ["1", "2"]) == ({}, ["1", "2"])


def test_a_span_answer_without_a_row_written_since_the_last_poll_keeps_it() -> None:
    clock = Clock()
    store = replica(clock)
    store.wrote(record("booked", id="2"))
    low, high = NOW, NOW + timedelta(days=2)
    store.replace_span(low, high, [record("held")])  # read before the booking
    assert set(store.appointments) == {"1", "2"}
    clock.now += 0.5
    store.mark_synced(APPOINTMENTS, clock.now)  # a poll that started after the write
    store.replace_span(low, high, [record("held")])  # now its absence means it is gone
    assert set(store.appointments) == {"1"}


def test_a_row_written_before_its_span_was_covered_is_added_with_the_span() -> None:
    clock = Clock()
    store = Replica(clock=clock)
    store.mark_synced(APPOINTMENTS, clock.now - 1.0)
    store.wrote(record("booked", id="2"))  # no coverage yet: not held
    assert store.appointments == {}
    low, high = NOW, NOW + timedelta(days=2)
    store.extend_coverage(low, high)
    store.replace_span(low, high, [record("held")])  # the load step's answer, read before
    assert notes_of(store, "2") == "booked"
    store.wrote(record("gone", id="3"))
    store.tombstone("3")  # deleted since: a span read does not bring it back
    store.replace_span(low, high, [record("held")])
    assert "3" not in store.appointments


def notes_of(store: Replica, appointment_id: str) -> str | None:
    return store.appointments[appointment_id].notes


def test_a_patients_whole_list_read_before_a_write_keeps_the_written_row() -> None:
    clock = Clock()
    store = replica(clock)
    far = "2027-03-01T09:00:00Z"  # outside the coverage: held only as the patient's
    store.complete_patient("5", [record("held")])
    store.wrote(record("booked", id="2", starts_at=far, ends_at="2027-03-01T09:30:00Z"))
    assert "2" in store.appointments
    store.complete_patient("5", [record("held")])  # read again, answered before the write
    assert set(store.of_patient("5")) == {store.appointments["1"], store.appointments["2"]}
    clock.now += 0.5
    store.mark_synced(APPOINTMENTS, clock.now)
    store.complete_patient("5", [record("held")])  # a read after the poll: it is gone
    assert "2" not in store.appointments
