"""The records an appointment links to: one table, which everything else derives from.

An appointment row carries the ids of its patient, practitioner, business, appointment
type, patient case and the appointment its series repeats from.  Each is one row of
:data:`RELATIONS`, which says everything the gateway needs to know about it:

* ``name``: the field on the GraphQL ``Appointment`` (its Python attribute there is
  :attr:`Relation.field`, the id attribute without ``_id``);
* ``attribute``: the id on ``AppointmentRecord`` that links the row to the record;
* ``type_name``: the GraphQL type of the record, and so the Relay node type ``node(id:)``
  loads through this row;
* ``loader``: the per-request loader of that type (``Loaders.of``), also the
  ``loader`` label of ``gateway_dataloader_batch_size``;
* ``fetch``: how records of that type are read by id, a ``q[]=id:=…`` list call per 100
  ids (the seam the replica, DESIGN.md §8, will answer at);
* ``lookups``: how many such list calls 100 ids cost at most (practitioners: the active
  list, then the inactive list for ids it lacked), which the cost bound uses.

Derived from it: the loaders (``loaders.py``), which relations a page prefetches and how
(``prefetch.py``), the node types (``ids.py``), the objects a relation field holds and
their id-only stubs (``schema/types.py``), the upstream cost bound (``schema/cost.py``)
and the batch-size metrics (``schema/observe.py``).  A relation the GraphQL
``Appointment`` does not declare, or declares with another type, fails at import.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from appointments_gateway.upstream import ClinikoSession

__all__ = ["APPOINTMENT", "APPOINTMENTS", "NODE_LOADERS", "RELATIONS", "Fetch", "Relation"]

#: Records by id: ``{id: record}``, ids the upstream lacks left out.
Fetch = Callable[[list[str]], Awaitable[Mapping[str, Any]]]

#: The GraphQL type of appointments, and the loader of appointments by id.
APPOINTMENT = "Appointment"
APPOINTMENTS = "appointments"


@dataclass(frozen=True, slots=True)
class Relation:
    """One record an appointment links to; see the module docstring for each part."""

    name: str
    attribute: str
    type_name: str
    loader: str
    fetch: Callable[[ClinikoSession], Fetch]
    lookups: int = 1

    @property
    def field(self) -> str:
        """The attribute of the GraphQL ``Appointment`` that holds the related object."""
        return self.attribute.removesuffix("_id")

    @property
    def is_appointment(self) -> bool:
        """Its record is an appointment, prefetched with the relations selected below it."""
        return self.type_name == APPOINTMENT


# Related records are read with archived rows included: an appointment whose patient was
# archived still has that patient.  Appointments by id include cancelled and archived
# rows, so a detail screen can show a cancelled booking.
RELATIONS: tuple[Relation, ...] = (
    Relation(
        "patient",
        "patient_id",
        "Patient",
        "patients",
        lambda session: lambda ids: session.patients.by_ids(ids, include_archived=True),
    ),
    Relation(
        "practitioner",
        "practitioner_id",
        "Practitioner",
        "practitioners",
        # Never archived, only inactive: by_ids also asks the inactive list.
        lambda session: session.practitioners.by_ids,
        lookups=2,
    ),
    Relation(
        "business",
        "business_id",
        "Business",
        "businesses",
        lambda session: lambda ids: session.businesses.by_ids(ids, include_archived=True),
    ),
    Relation(
        "appointmentType",
        "appointment_type_id",
        "AppointmentType",
        "appointment_types",
        lambda session: lambda ids: session.appointment_types.by_ids(ids, include_archived=True),
    ),
    Relation(
        "patientCase",
        "patient_case_id",
        "PatientCase",
        "patient_cases",
        lambda session: lambda ids: session.patient_cases.by_ids(ids, include_archived=True),
    ),
    Relation(
        "repeatedFrom",
        "repeated_from_id",
        APPOINTMENT,
        APPOINTMENTS,
        # Also how every appointment is read by id: node, appointment(id:), a write's
        # read-back.
        lambda session: (
            lambda ids: session.appointments.by_ids(
                ids, include_cancelled=True, include_archived=True
            )
        ),
    ),
)


def _node_loaders() -> dict[str, str]:
    loaders: dict[str, str] = {}
    for relation in RELATIONS:
        if loaders.setdefault(relation.type_name, relation.loader) != relation.loader:
            raise AssertionError(f"{relation.type_name} is read by two loaders")
    if loaders.get(APPOINTMENT) != APPOINTMENTS:
        raise AssertionError("no relation reads appointments by id")
    return loaders


#: The Relay node types, each with the loader that reads it by id.
NODE_LOADERS = _node_loaders()
