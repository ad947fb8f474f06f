"""One request's window onto its credential's replica, and what the answer relied on.

A request asks the view, never the replica itself, so that every row it answers from is
recorded with its kind's sync instant: ``extensions.freshness.asOf`` is the oldest of
them (every change made before that instant is in the answer).  The view also refuses a
kind whose sync is older than ``max_staleness`` beyond its poll interval (a sync starved of
budget or cut off from the upstream): those reads go upstream, as without a replica.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from appointments_gateway.upstream import AppointmentRecord

from .store import APPOINTMENTS, Replica
from .sync import SyncConfig, Syncer

__all__ = ["ReadStats", "ReplicaView"]


@dataclass(slots=True)
class ReadStats:
    """Process-wide: rows and lists answered from replicas (hits) or not (misses)."""

    hits: int = 0
    misses: int = 0


class ReplicaView:
    """A replica as one request sees it (see the module docstring)."""

    __slots__ = ("_config", "_replica", "_stats", "_syncer", "relied")

    def __init__(
        self, replica: Replica, syncer: Syncer, config: SyncConfig, stats: ReadStats
    ) -> None:
        self._replica = replica
        self._syncer = syncer
        self._config = config
        self._stats = stats
        #: Kind → the sync instant of the rows this request answered from.
        self.relied: dict[str, float] = {}

    def _fresh(self, kind: str) -> float | None:
        """The kind's sync instant, unless it is older than its poll interval allows."""
        instant = self._replica.sync_instant(kind)
        config = self._config
        allowed = config.max_staleness
        if kind != APPOINTMENTS:
            allowed += config.reference_interval
        if instant is None or self._replica.now() - instant > allowed:
            return None
        return instant

    def _rely(self, kind: str, instant: float) -> None:
        self.relied[kind] = min(instant, self.relied.get(kind, instant))

    # --- lookups by id ------------------------------------------------------------

    def lookup(self, kind: str, ids: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
        """``({id: row}, ids to ask upstream)``; a known-deleted appointment is neither."""
        instant = self._fresh(kind)
        if instant is None:
            ids = list(ids)
            self._stats.misses += len(ids)
            return {}, ids
        found, missing = self._replica.get(kind, ids)
        self._stats.hits += len(found)
        self._stats.misses += len(missing)
        if found or not missing:
            self._rely(kind, instant)
        return found, missing

    def fill(self, kind: str, rows: Iterable[Any]) -> None:
        """Rows a read fetched upstream: hold them if they belong here."""
        replica = self._replica
        if kind == APPOINTMENTS:
            for row in rows:
                if replica.keeps(row):
                    # A read's row may have been fetched before a write this replica
                    # holds, with the same whole-second ``updated_at``: only newer ones.
                    replica.apply_appointment(row, newer_only=True)
        else:
            for row in rows:
                replica.apply_record(kind, row)
        # A read may see a change before the sync does (which then sees nothing new).
        self._syncer.emit()

    # --- lists --------------------------------------------------------------------

    def covering(self, low: datetime, high: datetime) -> list[AppointmentRecord] | None:
        """Every appointment starting in ``[low, high]``, or ``None`` when not all are held."""
        instant = self._fresh(APPOINTMENTS)
        if instant is None or not self._replica.covers(low, high):
            return None
        self._rely(APPOINTMENTS, instant)
        return self._replica.starting_between(low, high)

    def of_patients(self, patient_ids: Iterable[str]) -> list[AppointmentRecord] | None:
        """Every appointment of these patients, or ``None``.

        For several patients (a combined list) the missing ones are then read whole in
        the background; one patient's list the read itself reads whole (``lists.py``).
        """
        instant = self._fresh(APPOINTMENTS)
        patient_ids = list(patient_ids)
        replica = self._replica
        incomplete = [p for p in patient_ids if not replica.has_complete_patient(p)]
        if instant is None or incomplete:
            if instant is not None and len(patient_ids) > 1:
                for patient_id in incomplete[:10]:
                    self._syncer.want_patient(patient_id)
            return None
        self._rely(APPOINTMENTS, instant)
        return [row for p in patient_ids for row in replica.of_patient(p)]

    def live(self) -> bool:
        """Whether the appointments are fresh enough to answer from (and to fill)."""
        return self._fresh(APPOINTMENTS) is not None

    def read_whole(self, patient_id: str, rows: Iterable[AppointmentRecord]) -> None:
        """``rows`` are every appointment of the patient, just read by a request."""
        self._replica.complete_patient(patient_id, rows)
        self._syncer.emit()

    def want_whole(self, patient_id: str) -> None:
        """A patient too big for one page: the sync reads it whole in the background."""
        self._syncer.want_patient(patient_id)

    def known(self, appointment_ids: Iterable[str]) -> list[AppointmentRecord] | None:
        """These appointments (deleted ones left out), or ``None`` when one is unknown."""
        instant = self._fresh(APPOINTMENTS)
        if instant is None:
            return None
        found, missing = self._replica.get(APPOINTMENTS, appointment_ids)
        if missing:
            return None
        self._rely(APPOINTMENTS, instant)
        return list(found.values())

    def count(self, hit: bool) -> None:
        """A list answered here (``hit``) or upstream."""
        if hit:
            self._stats.hits += 1
        else:
            self._stats.misses += 1

    # --- writes -------------------------------------------------------------------

    def wrote(self, record: AppointmentRecord, *, series: bool = False) -> None:
        """The upstream's answer to a write; ``series``: other rows changed too.

        The row is applied at once, so the next read sees it.  When other rows changed
        (a series booked, or cancelled with its repeats) the lists go upstream until the
        next poll has fetched them, and that poll is started now.
        """
        self._replica.wrote(record)
        # The write's own event, here: the next poll finds the row as written (no event).
        self._syncer.emit()
        if series:
            self._replica.appointments_dirty = True
            self._syncer.poll_soon()

    def freshness(self) -> float | None:
        """The oldest sync instant this request's answer relied on (``None``: none)."""
        return min(self.relied.values(), default=None)
