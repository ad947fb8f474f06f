"""Records by Relay id: ``node``, ``nodes`` and the root lookups (``appointment(id:)``, …).

Every id asked in one operation goes to its type's loader in the same tick, so ``nodes``
with 20 ids of 3 types costs 3 list calls (one per type; practitioners may need their
inactive list too).  The appointments among the results are prefetched with what the
query selects below them, like a page (``prefetch.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from appointments_gateway.resolvers.errors import NotFound
from appointments_gateway.resolvers.loaders import Loaders
from appointments_gateway.resolvers.prefetch import Prefetched, Wanted, prefetch
from appointments_gateway.resolvers.relations import APPOINTMENT

__all__ = ["Nodes", "load_nodes", "not_found"]


@dataclass(frozen=True, slots=True)
class Nodes:
    """What was asked, ``(type name, raw id)`` in order, and what was found.

    ``records[i]`` is the record of ``asked[i]``, ``None`` when the upstream has none;
    ``appointments`` holds the appointment records among them with their relations.
    """

    asked: list[tuple[str, str]]
    records: list[Any | None]
    appointments: Prefetched


async def load_nodes(loaders: Loaders, asked: Sequence[tuple[str, str]], wanted: Wanted) -> Nodes:
    """The records of ``asked``, one batched call per type; appointments prefetched."""
    asked = list(asked)
    records = await asyncio.gather(
        *(loaders.of_type(type_name).get(raw_id) for type_name, raw_id in asked)
    )
    appointments = [
        record
        for (type_name, _), record in zip(asked, records, strict=True)
        if type_name == APPOINTMENT and record
    ]
    if appointments:
        prefetched = await prefetch(loaders, appointments, wanted)
    else:
        prefetched = Prefetched(appointments, loaders)
    return Nodes(asked, records, prefetched)


def not_found(type_name: str, raw_id: str) -> NotFound:
    """The error of an id the upstream has no record for."""
    return NotFound(f"No {type_name} with id {raw_id} was found.")
