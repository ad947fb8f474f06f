"""What happened to one appointment, as live updates tell it: a change kind and the row.

The replica learns of changes by *state*, not by event: a poll brings rows, a deletion
check a span's rows.  Live updates (subscriptions) need events: "this appointment was
cancelled".  :class:`~appointments_gateway.replica.store.Replica` derives them as it
applies rows, because only then does it know the row's previous version:

=============================================  =====================================
previous version held (or seen outside it)     kind
=============================================  =====================================
the same row (a poll's overlap, a re-read)     none: nothing happened
``deleted_at`` newly set, tombstoned, or       ``DELETED`` (the row: the deleted one,
removed by the deletion check                  or the last one known)
``archived_at`` newly set                      ``ARCHIVED``
``cancelled_at`` newly set                     ``CANCELLED``
any other difference                           ``UPDATED``
=============================================  =====================================

A row whose previous version is unknown (not held, not seen) is judged by its stamps
against ``since``, the start of the last completed poll less the clock skew: a row
created since then was ``CREATED``; one deleted, archived or cancelled since then is
that; one otherwise updated since then ``UPDATED``; an older one (a load step reading a
span for the first time) is no event at all.

Rows equal to the held ones never make an event, so the overlap every poll re-reads,
the deletion check's re-reads and a follower applying what it wrote itself are silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from appointments_gateway.upstream import AppointmentRecord

__all__ = ["AppointmentEvent", "ChangeKind", "kind_of"]


class ChangeKind(StrEnum):
    """How an appointment changed."""

    CREATED = "CREATED"
    UPDATED = "UPDATED"
    CANCELLED = "CANCELLED"
    ARCHIVED = "ARCHIVED"
    DELETED = "DELETED"


@dataclass(frozen=True, slots=True)
class AppointmentEvent:
    """One appointment's change: its kind, the row now (or last known), the row before.

    ``before`` is ``None`` when the previous version was not known.
    """

    kind: ChangeKind
    row: AppointmentRecord
    before: AppointmentRecord | None


def _newly(now: datetime | None, before: datetime | None) -> bool:
    return now is not None and before is None


def _since(stamp: datetime | None, since: datetime) -> bool:
    return stamp is not None and stamp >= since


def kind_of(
    row: AppointmentRecord, before: AppointmentRecord | None, *, since: datetime
) -> ChangeKind | None:
    """The kind of change from ``before`` to ``row`` (see the module docstring)."""
    if before is not None:
        if before == row:
            return None
        if _newly(row.deleted_at, before.deleted_at):
            return ChangeKind.DELETED
        if _newly(row.archived_at, before.archived_at):
            return ChangeKind.ARCHIVED
        if _newly(row.cancelled_at, before.cancelled_at):
            return ChangeKind.CANCELLED
        return ChangeKind.UPDATED
    if row.updated_at < since:
        return None
    if row.created_at >= since:
        return ChangeKind.CREATED
    if _since(row.deleted_at, since):
        return ChangeKind.DELETED
    if _since(row.archived_at, since):
        return ChangeKind.ARCHIVED
    if _since(row.cancelled_at, since):
        return ChangeKind.CANCELLED
    return ChangeKind.UPDATED
