"""Per-request dataloaders: one per access pattern, built fresh for every operation.

Every ``load`` issued in one event-loop tick becomes one ``q[]=id:=a,b,c`` list call
(the upstream client dedupes, chunks at 100 ids and a safe URL length, and sends the
chunks concurrently).  A loader lives for one request only: aiodataloader binds the
running loop when constructed, and a cache shared between requests would serve one
clinic's patients to another caller.

Related records are loaded with archived rows included: an appointment whose patient
was archived still has that patient.  Appointments by id include cancelled and archived
rows, so a detail screen can show a cancelled booking.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Generic, TypeVar

from aiodataloader import DataLoader

from appointments_gateway.resolvers.children import ChildrenLoader
from appointments_gateway.resolvers.errors import translate_upstream
from appointments_gateway.upstream import (
    AppointmentRecord,
    AppointmentTypeRecord,
    BusinessRecord,
    ClinikoSession,
    PatientCaseRecord,
    PatientRecord,
    PractitionerRecord,
)

__all__ = ["Loaders", "RecordLoader"]

R = TypeVar("R")


class RecordLoader(DataLoader[str, "R | None"], Generic[R]):
    """Records by id through one batched fetch; ``None`` for ids the upstream lacks."""

    def __init__(self, fetch: Callable[[list[str]], Awaitable[Mapping[str, R]]]) -> None:
        super().__init__()
        self._fetch = fetch
        #: How many batches went upstream, for tests and metrics.
        self.batches = 0
        #: Keys per batch; the operation's metrics observe them once it ends (an append
        #: here is cheaper than a histogram observation per batch).
        self.batch_sizes: list[int] = []

    async def batch_load_fn(self, keys: list[str]) -> list[R | None]:
        self.batches += 1
        self.batch_sizes.append(len(keys))
        with translate_upstream():
            found = await self._fetch(keys)
        return [found.get(key) for key in keys]

    async def get(self, key: str) -> R | None:
        result: R | None = await self.load(key)
        return result

    async def get_many(self, keys: Iterable[str]) -> list[R | None]:
        result: list[R | None] = await self.load_many(list(keys))
        return result

    def remember(self, key: str, value: R) -> None:
        """Prime the cache with a record another call already fetched."""
        self.clear(key)
        self.prime(key, value)


class ConflictsLoader(DataLoader[str, bool]):
    """``hasConflicts`` per appointment, through concurrent ``/conflicts`` calls.

    The upstream has no batch form, so the ids of one tick are checked concurrently.
    """

    def __init__(self, session: ClinikoSession) -> None:
        super().__init__()
        self._session = session
        #: Keys per batch, for the metrics (see ``RecordLoader.batch_sizes``).
        self.batch_sizes: list[int] = []

    async def batch_load_fn(self, keys: list[str]) -> list[bool]:
        self.batch_sizes.append(len(keys))
        with translate_upstream():
            return list(
                await asyncio.gather(*(self._session.appointments.has_conflicts(k) for k in keys))
            )

    async def get(self, key: str) -> bool:
        result: bool = await self.load(key)
        return result


class Loaders:
    """The loaders of one GraphQL operation, all bound to one credential's session."""

    __slots__ = (
        "appointment_types",
        "appointments",
        "businesses",
        "children",
        "conflicts",
        "patient_cases",
        "patients",
        "practitioners",
    )

    def __init__(self, session: ClinikoSession) -> None:
        self.appointments: RecordLoader[AppointmentRecord] = RecordLoader(
            lambda ids: session.appointments.by_ids(
                ids, include_cancelled=True, include_archived=True
            )
        )
        self.patients: RecordLoader[PatientRecord] = RecordLoader(
            lambda ids: session.patients.by_ids(ids, include_archived=True)
        )
        # Practitioners are never archived, only inactive; by_ids also asks the
        # inactive list for ids the active one lacks.
        self.practitioners: RecordLoader[PractitionerRecord] = RecordLoader(
            session.practitioners.by_ids
        )
        self.businesses: RecordLoader[BusinessRecord] = RecordLoader(
            lambda ids: session.businesses.by_ids(ids, include_archived=True)
        )
        self.appointment_types: RecordLoader[AppointmentTypeRecord] = RecordLoader(
            lambda ids: session.appointment_types.by_ids(ids, include_archived=True)
        )
        self.patient_cases: RecordLoader[PatientCaseRecord] = RecordLoader(
            lambda ids: session.patient_cases.by_ids(ids, include_archived=True)
        )
        self.conflicts = ConflictsLoader(session)
        self.children = ChildrenLoader(session)
