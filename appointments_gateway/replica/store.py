"""One credential's replica: the rows it holds, what it holds completely, and how fresh.

A replica holds rows of six kinds, keyed by id, and never anything of another credential
(two Cliniko users of one account may see different rows):

* **appointments** whose ``starts_at`` lies inside :attr:`Replica.coverage` (every
  appointment of the account in that span, cancelled and archived included), and every
  appointment of the patients in :attr:`Replica.complete_patients`;
* **reference data**, held whole: businesses, practitioners (active and inactive),
  appointment types;
* **linked rows**: the patients and patient cases those appointments link to, and any
  other such row a read fetched.

What makes a replica answer exactly what the upstream would is not the rows but the
*completeness* facts: "every appointment starting in ``[lo, hi)`` is here" and "every
appointment of patient P is here".  The sync (``sync.py``) establishes and maintains
them; the read side (``resolvers/local.py``) answers a list only from one of them.
Lookups by id need no such fact: a row that is here is current as of its kind's sync
instant, a row that is not is asked upstream.

Deleted appointments leave a tombstone (bounded), so a lookup of one costs nothing.

**Events** (``events.py``): as rows are applied, each appointment that really changed is
noted with its kind and its previous version in :attr:`Replica.events`, which the sync
drains after every step (:meth:`take_events`), for live updates.  Rows the polls (or
writes) see that the replica does not hold (outside the window) are remembered, a bounded
number, so the overlap every poll re-reads does not repeat their events either.

Nothing here awaits: every method is one step on the event loop, so a read never sees
a half-applied change.
"""

from __future__ import annotations

import bisect
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from typing import Any, Final

from appointments_gateway.upstream import AppointmentRecord

from .events import AppointmentEvent, ChangeKind, kind_of

__all__ = [
    "APPOINTMENTS",
    "CLOCK_SKEW_SECONDS",
    "KINDS",
    "LINKED_KINDS",
    "LINKS",
    "REFERENCE_KINDS",
    "Replica",
]

APPOINTMENTS: Final = "appointments"
#: Held whole: every row of the account.
REFERENCE_KINDS: Final = ("businesses", "practitioners", "appointment_types")
#: Held when an appointment (or a read) links to them.
LINKED_KINDS: Final = ("patients", "patient_cases")
KINDS: Final = (APPOINTMENTS, *REFERENCE_KINDS, *LINKED_KINDS)
#: The kinds an appointment row links to, each with the attribute that holds the link.
LINKS: Final = {
    "patients": "patient_id",
    "patient_cases": "patient_case_id",
    "practitioners": "practitioner_id",
    "businesses": "business_id",
    "appointment_types": "appointment_type_id",
}

#: How far the upstream's clock (which stamps ``updated_at``) may lag ours.
CLOCK_SKEW_SECONDS = 5.0
#: Tombstones kept (ids of deleted appointments): enough for a busy day's deletions.
MAX_TOMBSTONES = 10_000
#: Rows seen outside what the replica holds, kept so their events are not repeated.
MAX_OUTSIDE = 2_000
#: Events held until the sync drains them (it does after every step; a bound anyway).
MAX_PENDING_EVENTS = 10_000
#: Patients whose every appointment is held; the least recently read goes first.
MAX_COMPLETE_PATIENTS = 2_000
#: Seconds a patient's list counts as whole after it was read: a deletion outside the
#: coverage that the ``updated_at`` poll cannot see is then noticed by reading it again.
COMPLETE_PATIENT_SECONDS = 600.0


def _sort_key(record: AppointmentRecord) -> tuple[datetime, int]:
    return record.starts_at, int(record.id)


class Replica:
    """The rows of one credential and the facts that make them answerable.

    Args:
        clock: UNIX seconds, for sync instants and idleness.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.appointments: dict[str, AppointmentRecord] = {}
        self.records: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS[1:]}
        self.tombstones: OrderedDict[str, None] = OrderedDict()
        #: ``[lo, hi)``: every appointment starting in it is held; ``None`` until loaded.
        self.coverage: tuple[datetime, datetime] | None = None
        #: Patients every one of whose appointments is held (any start), LRU order, with
        #: the instant their list was read whole.
        self.complete_patients: OrderedDict[str, float] = OrderedDict()
        self._by_patient: dict[str, set[str]] = {}
        #: Per kind: the instant (UNIX seconds) of the last sync every row of it reflects.
        self.synced_at: dict[str, float] = {}
        #: While set, the appointments are known to lag a write (a series changed
        #: upstream in ways the write's answer does not show); lists and lookups of
        #: appointments go upstream.
        self.appointments_dirty = False
        #: Appointments written through the gateway: the instant each write's answer was
        #: applied, and that answer, until a poll that started after it has completed.
        self._written: dict[str, tuple[float, AppointmentRecord]] = {}
        #: Rows that arrived with the ``updated_at`` of a written row but may be older
        #: than the write; settled by the next completed poll (see :meth:`mark_synced`).
        self._deferred: dict[str, AppointmentRecord] = {}
        self.version = 0
        self._index_version = -1
        self._index: list[AppointmentRecord] = []
        self._index_starts: list[datetime] = []
        self._bytes: dict[str, int] = {kind: 0 for kind in KINDS}
        self.last_read = clock()
        #: Appointments that changed since the sync last drained them (``events.py``).
        self.events: list[AppointmentEvent] = []
        #: The last version seen of rows the replica does not hold (polled or written).
        self._outside: OrderedDict[str, AppointmentRecord] = OrderedDict()

    # --- reads --------------------------------------------------------------------

    def now(self) -> float:
        """The replica's clock, in UNIX seconds."""
        return self._clock()

    def touch(self) -> None:
        """A read used this replica: it is not idle."""
        self.last_read = self._clock()

    def covers(self, low: datetime, high: datetime) -> bool:
        """Every appointment starting in ``[low, high]`` is held."""
        if self.coverage is None or self.appointments_dirty:
            return False
        lo, hi = self.coverage
        return lo <= low and high < hi

    def starting_between(self, low: datetime, high: datetime) -> list[AppointmentRecord]:
        """Held appointments with ``low <= starts_at <= high``, by start then id."""
        self._reindex()
        starts = self._index_starts
        return self._index[bisect.bisect_left(starts, low) : bisect.bisect_right(starts, high)]

    def has_complete_patient(self, patient_id: str) -> bool:
        completed = self.complete_patients.get(patient_id)
        if self.appointments_dirty or completed is None:
            return False
        if self._clock() - completed > COMPLETE_PATIENT_SECONDS:
            self.forget_patient(patient_id)
            return False
        self.complete_patients.move_to_end(patient_id)
        return True

    def of_patient(self, patient_id: str) -> list[AppointmentRecord]:
        """Held appointments of one patient, in no particular order."""
        ids = self._by_patient.get(patient_id, ())
        return [self.appointments[i] for i in ids]

    def get(self, kind: str, ids: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
        """``({id: row}, ids not answerable here)``; a tombstoned appointment is neither.

        While the appointments lag a write (``appointments_dirty``) none of them is
        answerable: the held row of a repeat cancelled with its series is the old one.
        """
        found: dict[str, Any] = {}
        missing: list[str] = []
        if kind == APPOINTMENTS and self.appointments_dirty:
            return found, list(ids)
        if kind == APPOINTMENTS:
            appointments, tombstones = self.appointments, self.tombstones
            for i in ids:
                row = appointments.get(i)
                if row is not None:
                    found[i] = row
                elif i not in tombstones:
                    missing.append(i)
            return found, missing
        rows = self.records[kind]
        for i in ids:
            row = rows.get(i)
            if row is not None:
                found[i] = row
            else:
                missing.append(i)
        return found, missing

    def sync_instant(self, kind: str) -> float | None:
        return self.synced_at.get(kind)

    # --- writes -------------------------------------------------------------------

    def keeps(self, record: AppointmentRecord) -> bool:
        """Whether an appointment belongs here (inside coverage, or a complete patient's)."""
        if record.deleted_at is not None:
            return False
        if self.coverage is not None:
            lo, hi = self.coverage
            if lo <= record.starts_at < hi:
                return True
        return record.patient_id is not None and record.patient_id in self.complete_patients

    def wrote(self, record: AppointmentRecord) -> bool:
        """Apply the upstream's answer to a write through the gateway, and remember it.

        Cliniko stamps whole seconds, so a row changed twice within one second has one
        ``updated_at`` for both versions.  A poll (or span read) answered between the two
        and applied after this write would carry the first version with the written
        row's stamp; :meth:`apply_appointment` holds such rows back until a poll that
        started after the write has completed.
        """
        self._written[record.id] = (self._clock(), record)
        self._deferred.pop(record.id, None)
        return self._apply(record)

    def apply_appointment(self, record: AppointmentRecord, *, newer_only: bool = False) -> bool:
        """Upsert, or drop when it no longer belongs here; whether anything changed.

        An older version than the one held (by ``updated_at``) is ignored: a slow answer
        must not undo a newer one.  ``newer_only``: one of the same ``updated_at`` is
        ignored too (a read's answer: only the polls settle versions within a second).

        A row of the same ``updated_at`` as a row written through the gateway since the
        last completed poll, but different, may predate the write (see :meth:`wrote`):
        it is deferred, and the next completed poll applies it (the poll started after
        the write) or drops it (the poll after that fetches the row again, since it
        re-reads the seconds before its predecessor's start).  A row arriving later for
        the same id replaces the deferred one: the latest answer is the newest.
        """
        current = self.appointments.get(record.id)
        if current is not None and current.updated_at > record.updated_at:
            return False
        if current is not None and current.updated_at == record.updated_at:
            if newer_only:
                return False
            self._deferred.pop(record.id, None)
            written = self._written.get(record.id)
            synced = self.synced_at.get(APPOINTMENTS, 0.0)
            if written is not None and synced < written[0] and current != record:
                self._deferred[record.id] = record
                return False
        return self._apply(record)

    def _apply(self, record: AppointmentRecord) -> bool:
        current = self.appointments.get(record.id)
        if current is not None and current.updated_at > record.updated_at:
            return False
        before = current if current is not None else self._outside.get(record.id)
        if before is not None and before.updated_at > record.updated_at:
            before = record  # an older version than one seen: no event
        if record.deleted_at is not None:
            if record.id not in self.tombstones:
                self._note(record, before)
            self.tombstone(record.id)
            self._outside.pop(record.id, None)
            return current is not None
        if not self.keeps(record):
            self._seen_outside(record, before)
            if current is None:
                return False
            self._drop(current)
            return True
        if current == record:
            return False
        if current is not None:
            self._drop(current)
        self.appointments[record.id] = record
        if record.patient_id is not None:
            self._by_patient.setdefault(record.patient_id, set()).add(record.id)
        self._bytes[APPOINTMENTS] += _size(record)
        self.tombstones.pop(record.id, None)
        self._outside.pop(record.id, None)
        self.version += 1
        self._note(record, before)
        return True

    # --- events -------------------------------------------------------------------

    def _event_since(self) -> datetime:
        """What an unknown row's stamps are judged against (``events.py``)."""
        synced = self.synced_at.get(APPOINTMENTS, self.last_read)
        return datetime.fromtimestamp(synced - CLOCK_SKEW_SECONDS, UTC)

    def _note(self, row: AppointmentRecord, before: AppointmentRecord | None) -> None:
        kind = kind_of(row, before, since=self._event_since())
        if kind is None:
            return
        self.events.append(AppointmentEvent(kind, row, before))
        if len(self.events) > MAX_PENDING_EVENTS:
            del self.events[: len(self.events) - MAX_PENDING_EVENTS]

    def _seen_outside(self, record: AppointmentRecord, before: AppointmentRecord | None) -> None:
        """A row the replica does not keep changed (or was seen): note it, remember it."""
        self._note(record, before)
        self._outside[record.id] = record
        self._outside.move_to_end(record.id)
        while len(self._outside) > MAX_OUTSIDE:
            self._outside.popitem(last=False)

    def take_events(self) -> list[AppointmentEvent]:
        """The events noted since the last call (the sync hands them to live updates)."""
        events = self.events
        if events:
            self.events = []
        return events

    def tombstone(self, appointment_id: str) -> None:
        """The appointment was deleted: forget it, and remember that it is gone."""
        current = self.appointments.get(appointment_id)
        if current is not None:
            self._drop(current)
        self.tombstones[appointment_id] = None
        self.tombstones.move_to_end(appointment_id)
        while len(self.tombstones) > MAX_TOMBSTONES:
            self.tombstones.popitem(last=False)

    def replace_span(
        self, low: datetime, high: datetime, rows: Iterable[AppointmentRecord]
    ) -> None:
        """Hold ``rows``, every appointment starting in ``[low, high)``.

        A held one not among them was deleted without a trace the ``updated_at`` poll can
        see, or moved away since it was read: either way it is forgotten (not tombstoned,
        so a lookup by id asks the upstream, which knows which).

        Except a row written through the gateway since the last completed poll: ``rows``
        may have been read before the write (a load step or a deletion check in flight),
        so it is kept, or added when it starts in the span (its write's answer may have
        come before the span was covered, and was not held then).  Were it deleted
        meanwhile, the next deletion check finds it.
        """
        pending = self._pending_writes()
        seen: set[str] = set()
        for row in rows:
            seen.add(row.id)
            self.apply_appointment(row)
        for row in list(self.starting_between(low, high)):
            if (
                row.starts_at < high
                and row.id not in seen
                and row.id not in pending
                and row.id in self.appointments
            ):
                self._drop(row)
                # Gone from the upstream's span: deleted (a move would have been polled).
                self.events.append(AppointmentEvent(ChangeKind.DELETED, row, row))
        for record in pending.values():
            if record.id not in seen and record.id not in self.tombstones:
                if low <= record.starts_at < high:
                    self._apply(record)

    def _pending_writes(self) -> dict[str, AppointmentRecord]:
        """Rows written through the gateway since the last completed poll, by id.

        A whole answer (a span, a patient's list) read before such a write lacks it, or
        has an older version: it must not make the replica forget the write.
        """
        synced = self.synced_at.get(APPOINTMENTS, 0.0)
        return {i: record for i, (at, record) in self._written.items() if at > synced}

    def extend_coverage(self, low: datetime, high: datetime) -> None:
        """``[low, high)`` has just been loaded whole and touches the coverage (or starts it)."""
        if self.coverage is None:
            self.coverage = (low, high)
        else:
            lo, hi = self.coverage
            if high < lo or low > hi:
                raise ValueError("coverage must stay one span")
            self.coverage = (min(lo, low), max(hi, high))

    def trim_coverage(self, low: datetime) -> None:
        """Give up the part of the coverage before ``low`` (the window moved on)."""
        if self.coverage is None or self.coverage[0] >= low:
            return
        self.coverage = (low, max(low, self.coverage[1]))
        for row in [r for r in self.appointments.values() if r.starts_at < low]:
            if not self.keeps(row):
                self._drop(row)

    def complete_patient(self, patient_id: str, rows: Iterable[AppointmentRecord]) -> None:
        """``rows`` are every appointment of the patient: hold them and say so.

        As in :meth:`replace_span`, a row written since the last completed poll may be
        missing from ``rows`` (read before the write): the patient's is kept, or added.
        """
        self.complete_patients[patient_id] = self._clock()
        self.complete_patients.move_to_end(patient_id)
        while len(self.complete_patients) > MAX_COMPLETE_PATIENTS:
            gone, _ = self.complete_patients.popitem(last=False)
            for row in self.of_patient(gone):
                if not self.keeps(row):
                    self._drop(row)
        pending = self._pending_writes()
        seen: set[str] = set()
        for row in rows:
            seen.add(row.id)
            self.apply_appointment(row)
        for row in self.of_patient(patient_id):
            if row.id not in seen and row.id not in pending:
                self._drop(row)
        for record in pending.values():
            if record.patient_id == patient_id and record.id not in seen:
                if record.id not in self.tombstones:
                    self._apply(record)

    def forget_patient(self, patient_id: str) -> None:
        """Stop holding the patient's appointments whole (they may have changed unseen)."""
        if self.complete_patients.pop(patient_id, None) is not None:
            for row in self.of_patient(patient_id):
                if not self.keeps(row):
                    self._drop(row)

    def apply_record(self, kind: str, record: Any, *, only_held: bool = False) -> bool:
        """Upsert a row of another kind; ``only_held``: only if it is already here."""
        rows = self.records[kind]
        current = rows.get(record.id)
        if current is None and only_held:
            return False
        if current == record:
            return False
        if current is not None:
            self._bytes[kind] -= _size(current)
        rows[record.id] = record
        self._bytes[kind] += _size(record)
        self.version += 1
        return True

    def mark_synced(self, kind: str, instant: float) -> None:
        """Every row of ``kind`` reflects the changes made before ``instant``.

        For appointments this settles deferred rows (:meth:`apply_appointment`): one whose
        write came before ``instant`` arrived with a poll that started after the write, so
        it is current; the others are dropped for the next poll to fetch again.
        """
        self.synced_at[kind] = instant
        if kind != APPOINTMENTS or not self._written:
            return
        deferred, self._deferred = self._deferred, {}
        for appointment_id, record in deferred.items():
            written = self._written.get(appointment_id)
            if written is not None and written[0] < instant:
                self._apply(record)
        self._written = {i: w for i, w in self._written.items() if w[0] >= instant}

    def restore(
        self,
        *,
        appointments: Iterable[AppointmentRecord],
        records: Mapping[str, Iterable[Any]],
        tombstones: Iterable[str],
        coverage: tuple[datetime, datetime] | None,
        complete_patients: Iterable[tuple[str, float]],
        synced_at: Mapping[str, float],
    ) -> None:
        """Hold exactly these rows and facts: another process's replica (``shared.py``).

        Everything held before goes, except the writes through this gateway since the
        last completed poll (the copy may predate them): they are applied again on top,
        as :meth:`replace_span` keeps them.  ``complete_patients``: ids with the instant
        each was read whole, on this replica's clock.
        """
        held, gone_before = self.appointments, set(self.tombstones)
        since = self._event_since()
        events, self.events = self.events, []
        self.appointments = {}
        self._by_patient = {}
        self._bytes = {kind: 0 for kind in KINDS}
        self.records = {kind: {} for kind in KINDS[1:]}
        self.tombstones = OrderedDict((i, None) for i in tombstones)
        self.coverage = coverage
        self.complete_patients = OrderedDict(complete_patients)
        self.synced_at = dict(synced_at)
        self._deferred = {}
        for kind, rows in records.items():
            for row in rows:
                self.apply_record(kind, row)
        for record in appointments:
            self.appointments[record.id] = record
            if record.patient_id is not None:
                self._by_patient.setdefault(record.patient_id, set()).add(record.id)
            self._bytes[APPOINTMENTS] += _size(record)
        for record in self._pending_writes().values():
            self._apply(record)
        self.version += 1
        # What changed between this replica and the copy: the feed entries in between.
        self.events = events
        for record in self.appointments.values():
            before = held.get(record.id)
            change = kind_of(record, before, since=since)
            if change is not None:
                self.events.append(AppointmentEvent(change, record, before))
        for appointment_id, row in held.items():
            if appointment_id in self.tombstones and appointment_id not in gone_before:
                self.events.append(AppointmentEvent(ChangeKind.DELETED, row, row))

    # --- introspection ------------------------------------------------------------

    def counts(self) -> Iterator[tuple[str, int]]:
        yield APPOINTMENTS, len(self.appointments)
        for kind, rows in self.records.items():
            yield kind, len(rows)

    @property
    def bytes(self) -> int:
        """An estimate of the memory the rows take (their objects and field values)."""
        return sum(self._bytes.values())

    def _drop(self, record: AppointmentRecord) -> None:
        del self.appointments[record.id]
        if record.patient_id is not None:
            ids = self._by_patient.get(record.patient_id)
            if ids is not None:
                ids.discard(record.id)
                if not ids:
                    del self._by_patient[record.patient_id]
        self._bytes[APPOINTMENTS] -= _size(record)
        self.version += 1

    def _reindex(self) -> None:
        if self._index_version == self.version:
            return
        self._index = sorted(self.appointments.values(), key=_sort_key)
        self._index_starts = [row.starts_at for row in self._index]
        self._index_version = self.version


def _size(record: object) -> int:
    """Bytes of a record and its field values (shared small objects counted too)."""
    total = sys.getsizeof(record)
    if is_dataclass(record):
        for f in fields(record):
            value = getattr(record, f.name)
            if value is not None and not isinstance(value, bool):
                total += _size(value) if is_dataclass(value) else sys.getsizeof(value)
    return total
