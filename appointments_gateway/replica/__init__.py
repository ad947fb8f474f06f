"""The synced read model (DESIGN.md §8): per-credential replicas of the upstream's rows.

Reads are answered from a replica when everything they ask is inside it, so the
credential's 200 requests a minute pay for *changes* (the sync's polls), not for reads.

* ``store.py``: one credential's rows and the completeness facts that make them answerable;
* ``sync.py``: the task that loads a replica and keeps it fresh by ``updated_at`` polling;
* ``view.py``: one request's access to a replica, recording what its answer relied on;
* ``registry.py``: the process's replicas, when one starts, when one goes;
* ``changes.py``: what a sync step does to a replica, as a value (applied, published);
* ``events.py``: what happened to one appointment (created, cancelled, ...), derived as
  rows are applied, for live updates;
* ``shared.py``: with a shared state, one sync per credential across processes (a lease)
  and a change feed the others apply.

It sits between ``resolvers/`` (which decides whether a read is inside a replica, and
answers it exactly as the upstream path would) and ``upstream/`` (which the sync uses,
through background sessions that take only the budget reads leave).
"""

from __future__ import annotations

from .changes import Change
from .events import AppointmentEvent, ChangeKind
from .registry import START_WINDOW_SECONDS, PinRefused, Replicas, Watcher
from .shared import FeedConfig, FeedStats, Role, SharedSync
from .store import APPOINTMENTS, KINDS, LINKED_KINDS, LINKS, REFERENCE_KINDS, Replica
from .sync import (
    BY_START,
    CLOCK_SKEW_SECONDS,
    SyncConfig,
    Syncer,
    SyncPosition,
    SyncStats,
    whole_patient,
)
from .view import ReadStats, ReplicaView

__all__ = [
    "APPOINTMENTS",
    "BY_START",
    "CLOCK_SKEW_SECONDS",
    "KINDS",
    "LINKED_KINDS",
    "LINKS",
    "REFERENCE_KINDS",
    "START_WINDOW_SECONDS",
    "AppointmentEvent",
    "Change",
    "ChangeKind",
    "FeedConfig",
    "FeedStats",
    "PinRefused",
    "ReadStats",
    "Replica",
    "ReplicaView",
    "Replicas",
    "Role",
    "SharedSync",
    "SyncConfig",
    "SyncPosition",
    "SyncStats",
    "Syncer",
    "Watcher",
    "whole_patient",
]
