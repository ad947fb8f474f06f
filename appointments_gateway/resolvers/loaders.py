"""Per-request dataloaders: one per access pattern, built fresh for every operation.

Every ``load`` issued in one event-loop tick becomes one ``q[]=id:=a,b,c`` list call
(the upstream client dedupes, chunks at 100 ids and a safe URL length, and sends the
chunks concurrently).  A loader lives for one request only: aiodataloader binds the
running loop when constructed, and a cache shared between requests would serve one
clinic's patients to another caller.

There is one ``RecordLoader`` per type an appointment links to, built from the relation
table (``relations.py``, which also says how each type is fetched), a ``ConflictsLoader``
and a ``ChildrenLoader`` (``children.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

from aiodataloader import DataLoader

from appointments_gateway.replica import ReplicaView
from appointments_gateway.resolvers.children import ChildrenLoader
from appointments_gateway.resolvers.errors import translate_upstream
from appointments_gateway.resolvers.relations import (
    APPOINTMENTS,
    NODE_LOADERS,
    RELATIONS,
    Fetch,
    Relation,
)
from appointments_gateway.upstream import AppointmentRecord, ClinikoSession

__all__ = ["ConflictsLoader", "Loaders", "RecordLoader"]

R = TypeVar("R")


class RecordLoader(DataLoader[str, "R | None"], Generic[R]):
    """Records by id through one batched fetch; ``None`` for ids the upstream lacks.

    With a replica (``local``), the ids it holds are answered from it and only the rest
    are fetched; what the fetch returns is offered to the replica in turn.
    """

    def __init__(self, fetch: Fetch, local: ReplicaView | None = None, kind: str = "") -> None:
        super().__init__()
        self._fetch = fetch
        self._local = local
        self._kind = kind
        #: Keys per batch; the operation's metrics observe them once it ends (an append
        #: here is cheaper than a histogram observation per batch).
        self.batch_sizes: list[int] = []

    async def batch_load_fn(self, keys: list[str]) -> list[R | None]:
        local = self._local
        if local is None:
            self.batch_sizes.append(len(keys))
            with translate_upstream():
                found = await self._fetch(keys)
            return [found.get(key) for key in keys]
        held, missing = local.lookup(self._kind, keys)
        if missing:
            self.batch_sizes.append(len(missing))
            with translate_upstream():
                fetched = await self._fetch(missing)
            local.fill(self._kind, fetched.values())
            held = {**held, **fetched}
        return [held.get(key) for key in keys]

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

    __slots__ = ("appointments", "children", "conflicts", "records")

    def __init__(self, session: ClinikoSession, local: ReplicaView | None = None) -> None:
        #: One records-by-id loader per type an appointment links to, by loader name
        #: (also the name of the replica's kind).
        self.records: dict[str, RecordLoader[Any]] = {}
        for relation in RELATIONS:
            if relation.loader not in self.records:
                self.records[relation.loader] = RecordLoader(
                    relation.fetch(session), local, relation.loader
                )
        self.appointments: RecordLoader[AppointmentRecord] = self.records[APPOINTMENTS]
        self.conflicts = ConflictsLoader(session)
        self.children = ChildrenLoader(session, local)

    def of(self, relation: Relation) -> RecordLoader[Any]:
        """The loader of the records ``relation`` links to."""
        return self.records[relation.loader]

    def of_type(self, type_name: str) -> RecordLoader[Any]:
        """The loader of a Relay node type (``node(id:)``, ``appointment(id:)``, …)."""
        return self.records[NODE_LOADERS[type_name]]

    def batch_sizes(self) -> Iterator[tuple[str, int]]:
        """``(loader name, keys)`` per batch sent so far, for the operation's metrics.

        The children loader groups parents rather than ids, so it is left out.
        """
        for name, loader in self.records.items():
            for size in loader.batch_sizes:
                yield name, size
        for size in self.conflicts.batch_sizes:
            yield "conflicts", size
