"""The object types: appointments, the records they link to, and their connections.

Scalar fields are plain attributes copied from the upstream record when the object is
built, so graphql-core resolves them on its fast path with no resolver call.  Related
objects are attributes too: :class:`Related` builds them from the records the resolvers
prefetched for the whole page (``resolvers/prefetch.py``), once per record, and an
appointment's relation attributes are filled from it when the appointment is built.
Only connections and ``hasConflicts`` are ``async``, and only run when selected; they
ask ``resolvers/connections.py`` for rows and build the objects here.  ``startsAtLocal``
and ``endsAtLocal`` are sync resolvers over the business the page prefetched for them
(selecting either prefetches ``business``: ``schema/selection.py``), so they cost what
``business { timeZoneIdentifier }`` costs and no more.

The relations themselves are the resolvers' table (``resolvers/relations.py``): each
row's field is declared on :class:`Appointment` below (its description is part of the
contract), and the class that field declares is what the relation builds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator
from datetime import date, datetime
from operator import attrgetter
from typing import Annotated, Any, Protocol

import strawberry
from strawberry.types.base import StrawberryOptional, get_object_definition

from appointments_gateway.resolvers import connections
from appointments_gateway.resolvers.ids import to_global_id
from appointments_gateway.resolvers.local_time import local_iso, zone_of
from appointments_gateway.resolvers.nodes import Nodes
from appointments_gateway.resolvers.pagination import ConnectionArgs, Slice
from appointments_gateway.resolvers.prefetch import Prefetched, load_related, missing_link
from appointments_gateway.resolvers.relations import APPOINTMENT, RELATIONS
from appointments_gateway.schema.arguments import After, Before, First, Last
from appointments_gateway.schema.enums import (
    AppointmentStatus,
    CancellationReason,
    RepeatType,
    cancellation_reason_for,
    repeat_type_for,
)
from appointments_gateway.schema.info import Info
from appointments_gateway.schema.inputs import AppointmentFilter, AppointmentOrder, to_criteria
from appointments_gateway.schema.selection import connection_wants
from appointments_gateway.upstream import (
    AppointmentRecord,
    AppointmentTypeRecord,
    BusinessRecord,
    PatientCaseRecord,
    PatientRecord,
    PractitionerRecord,
)

__all__ = [
    "NODE_CLASSES",
    "RELATED_TYPES",
    "Appointment",
    "AppointmentConnection",
    "AppointmentEdge",
    "AppointmentType",
    "Business",
    "Cancellation",
    "Node",
    "PageInfo",
    "Patient",
    "PatientCase",
    "Practitioner",
    "Related",
    "RepeatRule",
    "build_appointments",
    "node_objects",
]


class RelatedLookup(Protocol):
    """What an appointment asks for its related objects (:class:`Related`)."""

    def value(self, relation: str, raw_id: str | None) -> Any: ...


@strawberry.interface(description="An object with a Relay global id, refetchable with `node`.")
class Node:
    id: strawberry.ID = strawberry.field(
        description="The Relay global id: opaque, stable, accepted by `node(id:)`."
    )


@strawberry.type(description="Pagination state of a connection (Relay).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items exist after the last edge.")
    has_previous_page: bool = strawberry.field(
        description="More items exist before the first edge."
    )
    start_cursor: str | None = strawberry.field(description="The first edge's cursor.")
    end_cursor: str | None = strawberry.field(description="The last edge's cursor.")


@strawberry.type(description="Why and when an appointment was cancelled.")
class Cancellation:
    reason: CancellationReason | None = strawberry.field(
        description="The reason, or `UNKNOWN` for a code this gateway does not know."
    )
    reason_code: int | None = strawberry.field(description="Cliniko's numeric reason code.")
    description: str | None = strawberry.field(description="Cliniko's text for the reason.")
    note: str | None = strawberry.field(description="Free-text note given when cancelling.")
    cancelled_at: datetime | None = strawberry.field(description="When it was cancelled.")


@strawberry.type(description="How a repeating appointment repeats.")
class RepeatRule:
    repeat_type: RepeatType | None = strawberry.field(description="Daily, weekly or monthly.")
    repeating_interval: int | None = strawberry.field(
        description="Every N days, weeks or months (1–100)."
    )
    number_of_repeats: int | None = strawberry.field(
        description="How many appointments follow the first one (1–51)."
    )


def _status(record: AppointmentRecord) -> AppointmentStatus:
    if record.deleted_at is not None:
        return AppointmentStatus.DELETED
    if record.archived_at is not None:
        return AppointmentStatus.ARCHIVED
    if record.cancelled_at is not None:
        return AppointmentStatus.CANCELLED
    if record.did_not_arrive:
        return AppointmentStatus.DID_NOT_ARRIVE
    if record.patient_arrived:
        return AppointmentStatus.ARRIVED
    return AppointmentStatus.BOOKED


@strawberry.type(description="One individual appointment: a patient booked with a practitioner.")
class Appointment(Node):
    cliniko_id: strawberry.ID = strawberry.field(
        description="Cliniko's own id (an int64, as a string)."
    )
    starts_at: datetime = strawberry.field(description="When it starts (UTC).")
    ends_at: datetime = strawberry.field(description="When it ends (UTC).")
    starts_at_local: str | None = strawberry.field(
        resolver=lambda root: at_business_clock(root.business, root.record.starts_at),
        description="When it starts at the business's clock: ISO 8601 with the UTC offset in "
        "force at that instant, e.g. `2026-11-24T09:00:00+11:00` (`+00:00`, never `Z`). The "
        "zone is the business's `timeZoneIdentifier` (IANA), daylight saving included. Costs "
        "what `business { timeZoneIdentifier }` costs (one batched lookup per page, none on a "
        "warm replica). Null with `UNKNOWN_TIME_ZONE` when the business has no zone the "
        "gateway knows.",
    )
    ends_at_local: str | None = strawberry.field(
        resolver=lambda root: at_business_clock(root.business, root.record.ends_at),
        description="When it ends at the business's clock; as `startsAtLocal` (the offset is "
        "the one in force when it ends, which differs across a daylight-saving change).",
    )
    status: AppointmentStatus = strawberry.field(
        description="Derived from the timestamps and flags, in order: deleted, archived, "
        "cancelled, did not arrive, arrived, booked."
    )
    notes: str | None = strawberry.field(description="Appointment notes.")
    patient_name: str | None = strawberry.field(
        description="The patient's name as stored on the appointment (no patient lookup)."
    )
    telehealth_url: str | None = strawberry.field(
        description="The practitioner's telehealth link; Cliniko fills it even when the "
        "appointment type has telehealth off (check `appointmentType.telehealthEnabled`)."
    )
    booking_ip_address: str | None = strawberry.field(
        description="The IP address of an online booking."
    )
    did_not_arrive: bool | None = strawberry.field(description="Marked as did not arrive.")
    patient_arrived: bool | None = strawberry.field(description="The patient arrived.")
    email_reminder_sent: bool | None = strawberry.field(description="An e-mail reminder was sent.")
    sms_reminder_sent: bool | None = strawberry.field(description="An SMS reminder was sent.")
    has_patient_appointment_notes: bool | None = strawberry.field(
        description="The patient has appointment notes."
    )
    online_booking_policy_accepted: bool | None = strawberry.field(
        description="The online booking policy was accepted."
    )
    invoice_status: int | None = strawberry.field(
        description="Cliniko's invoice status code: 10 open, 20 paid, 30 closed, 40 open credit."
    )
    treatment_note_status: int | None = strawberry.field(
        description="Cliniko's treatment note status code: 10 draft, 90 final."
    )
    cancellation: Cancellation | None = strawberry.field(
        description="Why and when it was cancelled; null unless cancelled."
    )
    repeat_rule: RepeatRule | None = strawberry.field(
        description="How it repeats; null unless it starts a repeating series."
    )
    created_at: datetime = strawberry.field(description="When it was booked.")
    updated_at: datetime = strawberry.field(description="When it last changed.")
    archived_at: datetime | None = strawberry.field(description="When it was archived.")
    cancelled_at: datetime | None = strawberry.field(description="When it was cancelled.")
    deleted_at: datetime | None = strawberry.field(description="When it was deleted (legacy).")
    # Related objects are attributes too, set from what the list resolver loaded for
    # the whole page: a built object, an id-only stub, None, an error (graphql-core
    # raises an Exception value on that field's path only), or an awaitable load for
    # a relation the look-ahead did not foresee.
    patient: Patient | None = strawberry.field(
        description="The patient booked (one batched lookup per page)."
    )
    practitioner: Practitioner | None = strawberry.field(
        description="The practitioner seeing the patient."
    )
    business: Business | None = strawberry.field(
        description="The business (clinic location) it takes place at."
    )
    appointment_type: AppointmentType | None = strawberry.field(
        description="The appointment type (service, duration, colour)."
    )
    patient_case: PatientCase | None = strawberry.field(
        description="The patient case it belongs to, if any."
    )
    repeated_from: Appointment | None = strawberry.field(
        description="The first appointment of the series this one repeats."
    )

    record: strawberry.Private[AppointmentRecord]
    related: strawberry.Private[RelatedLookup]

    @classmethod
    def from_record(cls, record: AppointmentRecord, related: RelatedLookup) -> Appointment:
        cancellation = None
        if record.cancelled_at is not None or record.cancellation_reason is not None:
            cancellation = Cancellation(
                reason=cancellation_reason_for(record.cancellation_reason),
                reason_code=record.cancellation_reason,
                description=record.cancellation_reason_description,
                note=record.cancellation_note,
                cancelled_at=record.cancelled_at,
            )
        rule = record.repeat_rule
        return cls(
            id=strawberry.ID(to_global_id("Appointment", record.id)),
            cliniko_id=strawberry.ID(record.id),
            starts_at=record.starts_at,
            ends_at=record.ends_at,
            status=_status(record),
            notes=record.notes,
            patient_name=record.patient_name,
            telehealth_url=record.telehealth_url,
            booking_ip_address=record.booking_ip_address,
            did_not_arrive=record.did_not_arrive,
            patient_arrived=record.patient_arrived,
            email_reminder_sent=record.email_reminder_sent,
            sms_reminder_sent=record.sms_reminder_sent,
            has_patient_appointment_notes=record.has_patient_appointment_notes,
            online_booking_policy_accepted=record.online_booking_policy_accepted,
            invoice_status=record.invoice_status,
            treatment_note_status=record.treatment_note_status,
            cancellation=cancellation,
            repeat_rule=None
            if rule is None
            else RepeatRule(
                repeat_type=repeat_type_for(rule.repeat_type),
                repeating_interval=rule.repeating_interval,
                number_of_repeats=rule.number_of_repeats,
            ),
            created_at=record.created_at,
            updated_at=record.updated_at,
            archived_at=record.archived_at,
            cancelled_at=record.cancelled_at,
            deleted_at=record.deleted_at,
            **{
                field: related.value(name, link(record))
                for field, name, link in _RELATION_ATTRIBUTES
            },
            record=record,
            related=related,
        )

    @strawberry.field(
        description="The appointments that repeat this one, in start order (empty unless it "
        "starts a series; costs no upstream call then)."
    )
    async def repeats(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> AppointmentConnection:
        wants = connection_wants(info.selected_fields)
        args = ConnectionArgs(first, after, last, before)
        return AppointmentConnection.of_page(
            await connections.repeats(info.context, self.record, wants, args)
        )

    @strawberry.field(
        description="Whether another booking of the practitioner overlaps it. One upstream "
        "call per appointment (Cliniko has no batch form), sent concurrently."
    )
    async def has_conflicts(self, info: Info) -> bool:
        return await info.context.loaders.conflicts.get(self.record.id)


@strawberry.type(description="An edge of an appointment connection.")
class AppointmentEdge:
    cursor: str = strawberry.field(description="Opaque cursor of this edge, for after/before.")
    node: Appointment = strawberry.field(description="The appointment.")


@strawberry.type(description="A page of appointments (Relay connection).")
class AppointmentConnection:
    edges: list[AppointmentEdge] = strawberry.field(description="The appointments with cursors.")
    nodes: list[Appointment] = strawberry.field(description="The appointments, without cursors.")
    page_info: PageInfo = strawberry.field(description="Where this page is in the whole list.")
    total_count: int = strawberry.field(
        description="How many appointments match in all (Cliniko's `total_entries`)."
    )

    @classmethod
    def of(
        cls, window: Slice[AppointmentRecord], nodes: list[Appointment]
    ) -> AppointmentConnection:
        """The connection of a page whose appointments are built (in the page's order)."""
        return cls(
            edges=[
                AppointmentEdge(cursor=edge.cursor, node=node)
                for edge, node in zip(window.edges, nodes, strict=True)
            ],
            nodes=nodes,
            page_info=PageInfo(
                has_next_page=window.has_next_page,
                has_previous_page=window.has_previous_page,
                start_cursor=window.start_cursor,
                end_cursor=window.end_cursor,
            ),
            total_count=window.total_count,
        )

    @classmethod
    def of_page(cls, page: connections.Page) -> AppointmentConnection:
        """The connection of a page the resolvers fetched, its relations prefetched."""
        return cls.of(page.window, build_appointments(page.prefetched))


_FILTER = strawberry.argument(description="Which appointments to return.")
_ORDER = strawberry.argument(
    description="Sort order; ties are broken by id. Default: `startsAt` ascending."
)


def _appointments_of(column: str, description: str) -> Any:
    """The ``appointments`` connection field of a parent type (patient, practitioner, …).

    One resolver for the three parents; the parent's id comes from ``root``, and
    ``column`` is the appointment row's id of it.
    """

    async def resolve(
        root: Any,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[AppointmentFilter | None, _FILTER] = None,
        order_by: Annotated[list[AppointmentOrder] | None, _ORDER] = None,
    ) -> AppointmentConnection:
        criteria = to_criteria(filter, order_by)
        wants = connection_wants(info.selected_fields)
        args = ConnectionArgs(first, after, last, before)
        return AppointmentConnection.of_page(
            await connections.of_parent(
                info.context, column, root.cliniko_id, criteria, wants, args
            )
        )

    return strawberry.field(resolver=resolve, description=description)


@strawberry.type(description="A patient of the clinic.")
class Patient(Node):
    cliniko_id: strawberry.ID = strawberry.field(description="Cliniko's own id.")
    first_name: str | None = strawberry.field(description="First name.")
    last_name: str | None = strawberry.field(description="Last name.")
    preferred_first_name: str | None = strawberry.field(description="Preferred first name.")
    title: str | None = strawberry.field(description="Title, e.g. Dr.")
    date_of_birth: date | None = strawberry.field(description="Date of birth.")
    email: str | None = strawberry.field(description="E-mail address.")
    time_zone: str | None = strawberry.field(description="The patient's IANA time zone.")
    archived_at: datetime | None = strawberry.field(description="When the patient was archived.")
    appointments: AppointmentConnection = _appointments_of(
        "patient_id", "The patient's appointments."
    )

    @classmethod
    def from_record(cls, record: PatientRecord) -> Patient:
        return cls(
            id=strawberry.ID(to_global_id("Patient", record.id)),
            cliniko_id=strawberry.ID(record.id),
            first_name=record.first_name,
            last_name=record.last_name,
            preferred_first_name=record.preferred_first_name,
            title=record.title,
            date_of_birth=record.date_of_birth,
            email=record.email,
            time_zone=record.time_zone,
            archived_at=record.archived_at,
        )


@strawberry.type(description="A practitioner who sees patients.")
class Practitioner(Node):
    cliniko_id: strawberry.ID = strawberry.field(description="Cliniko's own id.")
    first_name: str | None = strawberry.field(description="First name.")
    last_name: str | None = strawberry.field(description="Last name.")
    display_name: str | None = strawberry.field(description="Name shown to patients.")
    title: str | None = strawberry.field(description="Title, e.g. Dr.")
    designation: str | None = strawberry.field(description="Profession, e.g. Physiotherapist.")
    active: bool | None = strawberry.field(description="Whether the practitioner is active.")
    appointments: AppointmentConnection = _appointments_of(
        "practitioner_id", "The practitioner's appointments."
    )

    @classmethod
    def from_record(cls, record: PractitionerRecord) -> Practitioner:
        return cls(
            id=strawberry.ID(to_global_id("Practitioner", record.id)),
            cliniko_id=strawberry.ID(record.id),
            first_name=record.first_name,
            last_name=record.last_name,
            display_name=record.display_name,
            title=record.title,
            designation=record.designation,
            active=record.active,
        )


@strawberry.type(description="A business: one location of the clinic.")
class Business(Node):
    cliniko_id: strawberry.ID = strawberry.field(description="Cliniko's own id.")
    business_name: str | None = strawberry.field(description="The business's name.")
    display_name: str | None = strawberry.field(description="Name shown to patients.")
    time_zone: str | None = strawberry.field(description="Cliniko's time zone label.")
    time_zone_identifier: str | None = strawberry.field(
        description="IANA time zone; use it to show appointment times locally."
    )
    appointments: AppointmentConnection = _appointments_of(
        "business_id", "The appointments at this business."
    )

    @classmethod
    def from_record(cls, record: BusinessRecord) -> Business:
        return cls(
            id=strawberry.ID(to_global_id("Business", record.id)),
            cliniko_id=strawberry.ID(record.id),
            business_name=record.business_name,
            display_name=record.display_name,
            time_zone=record.time_zone,
            time_zone_identifier=record.time_zone_identifier,
        )


@strawberry.type(description="A kind of appointment: service, duration and colour.")
class AppointmentType(Node):
    cliniko_id: strawberry.ID = strawberry.field(description="Cliniko's own id.")
    name: str | None = strawberry.field(description="Name of the service.")
    category: str | None = strawberry.field(description="Category.")
    color: str | None = strawberry.field(description="Calendar colour, `#RRGGBB`.")
    duration_in_minutes: int | None = strawberry.field(description="Default length.")
    telehealth_enabled: bool | None = strawberry.field(
        description="Whether appointments of this type are held by telehealth."
    )

    @classmethod
    def from_record(cls, record: AppointmentTypeRecord) -> AppointmentType:
        return cls(
            id=strawberry.ID(to_global_id("AppointmentType", record.id)),
            cliniko_id=strawberry.ID(record.id),
            name=record.name,
            category=record.category,
            color=record.color,
            duration_in_minutes=record.duration_in_minutes,
            telehealth_enabled=record.telehealth_enabled,
        )


@strawberry.type(description="A patient case: a course of treatment appointments belong to.")
class PatientCase(Node):
    cliniko_id: strawberry.ID = strawberry.field(description="Cliniko's own id.")
    name: str | None = strawberry.field(description="Name of the case.")
    notes: str | None = strawberry.field(description="Notes on the case.")
    issue_date: date | None = strawberry.field(description="When the case was opened.")
    expiry_date: date | None = strawberry.field(description="When the case expires.")
    closed_at: datetime | None = strawberry.field(description="When the case was closed.")

    @classmethod
    def from_record(cls, record: PatientCaseRecord) -> PatientCase:
        return cls(
            id=strawberry.ID(to_global_id("PatientCase", record.id)),
            cliniko_id=strawberry.ID(record.id),
            name=record.name,
            notes=record.notes,
            issue_date=record.issue_date,
            expiry_date=record.expiry_date,
            closed_at=record.closed_at,
        )


def _related_types() -> dict[str, Any]:
    """Each relation's GraphQL class: the type its ``Appointment`` field declares.

    So a relation is declared once on each side (its row in ``resolvers/relations.py``,
    its field here), and a row whose field is missing or of another type fails at import.
    """
    appointment = get_object_definition(Appointment, strict=True)
    fields = {field.python_name: field for field in appointment.fields}
    classes: dict[str, Any] = {}
    for relation in RELATIONS:
        field = fields.get(relation.field)
        field_type = field.type if field is not None else None
        cls = field_type.of_type if isinstance(field_type, StrawberryOptional) else None
        definition = get_object_definition(cls)
        if definition is None or definition.name != relation.type_name:
            raise TypeError(f"Appointment.{relation.field} is not a {relation.type_name} | None")
        classes[relation.name] = cls
    return classes


#: Relation name → the GraphQL class of the object its field holds.
RELATED_TYPES = _related_types()
#: Relay node type name → its GraphQL class: appointments and what they link to.
NODE_CLASSES = {
    APPOINTMENT: Appointment,
    **{relation.type_name: RELATED_TYPES[relation.name] for relation in RELATIONS},
}
#: ``(Appointment attribute, relation name, the row's link)`` per relation.
_RELATION_ATTRIBUTES = [
    (relation.field, relation.name, attrgetter(relation.attribute)) for relation in RELATIONS
]
_APPOINTMENT_RELATIONS = frozenset(r.name for r in RELATIONS if r.is_appointment)
_STUB_DEFAULTS = {
    relation: {
        f.name: None for f in cls.__strawberry_definition__.fields if f.base_resolver is None
    }
    for relation, cls in RELATED_TYPES.items()
    if relation not in _APPOINTMENT_RELATIONS
}


def stub(relation: str, raw_id: str) -> Any:
    """An object answering only ``id``/``clinikoId``, built from a link: no upstream call.

    Only used when the query selects nothing else of it, so its other fields, left
    empty, are never read.
    """
    cls = RELATED_TYPES[relation]
    return cls(
        **{
            **_STUB_DEFAULTS[relation],
            "id": strawberry.ID(to_global_id(cls.__name__, raw_id)),
            "cliniko_id": strawberry.ID(raw_id),
        }
    )


class Related:
    """What the relation attributes of a batch of appointments hold.

    Built once per batch from what the resolvers prefetched: each related record becomes
    its object once, however many appointments link to it.  ``value()`` gives, for one
    appointment's link: the built object, an id-only stub, ``None`` (no link), the error
    its lookup raised (graphql-core raises an Exception value on that field only, so it
    nulls the field, not the list), or, for a relation the look-ahead did not foresee,
    an awaitable that loads it.
    """

    __slots__ = ("_built", "_prefetched")

    def __init__(self, prefetched: Prefetched) -> None:
        self._prefetched = prefetched
        built: dict[str, dict[str, Any]] = {}
        for relation, rows in prefetched.rows.items():
            build = RELATED_TYPES[relation].from_record
            built[relation] = {raw_id: build(row) for raw_id, row in rows.items()}
        for relation, nested in prefetched.nested.items():
            built[relation] = {a.record.id: a for a in build_appointments(nested)}
        self._built = built

    def value(self, relation: str, raw_id: str | None) -> Any:
        if raw_id is None:
            return None
        built = self._built.get(relation)
        if built is not None:
            found = built.get(raw_id)
            return found if found is not None else missing_link(relation)
        error = self._prefetched.errors.get(relation)
        if error is not None:
            return error
        if relation in self._prefetched.links:
            return stub(relation, raw_id)
        return _Deferred(self._prefetched, relation, raw_id)


class _Deferred:
    """A relation load that starts only if the field is read (awaitable more than once)."""

    __slots__ = ("_prefetched", "_raw_id", "_relation")

    def __init__(self, prefetched: Prefetched, relation: str, raw_id: str) -> None:
        self._prefetched = prefetched
        self._relation = relation
        self._raw_id = raw_id

    def __await__(self) -> Generator[Any, None, Any]:
        return self._load().__await__()

    async def _load(self) -> Any:
        loaders = self._prefetched.loaders
        record = await load_related(loaders, self._relation, self._raw_id)
        if self._relation in _APPOINTMENT_RELATIONS:
            return Appointment.from_record(record, Related(Prefetched([record], loaders)))
        return RELATED_TYPES[self._relation].from_record(record)


def at_business_clock(business: Any, instant: datetime) -> Any:
    """``instant`` at the clock of ``business``, an appointment's ``business`` value.

    That value is what the page prefetched (``Related.value``): the built ``Business``,
    ``None`` (no business), the lookup's error (raised here, so on this field only), or,
    for a business nobody foresaw, an awaitable that loads it.  Selecting a local time
    prefetches the business's record, so it is never an id-only stub here.
    """
    if business is None:
        return None
    if isinstance(business, Exception):
        raise business
    if isinstance(business, Business):
        return local_iso(instant, zone_of(business.time_zone_identifier))
    return _at_loaded_clock(business, instant)


async def _at_loaded_clock(loading: Awaitable[Business], instant: datetime) -> str:
    business = await loading
    return local_iso(instant, zone_of(business.time_zone_identifier))


def build_appointments(prefetched: Prefetched) -> list[Appointment]:
    """The appointments of a prefetched batch, in its order, relations filled in."""
    related = Related(prefetched)
    return [Appointment.from_record(record, related) for record in prefetched.records]


def node_objects(nodes: Nodes) -> list[Any | None]:
    """The object of each node asked (``None`` where the upstream has none), in order."""
    appointments = {a.record.id: a for a in build_appointments(nodes.appointments)}
    return [
        None
        if record is None
        else appointments[record.id]
        if type_name == APPOINTMENT
        else NODE_CLASSES[type_name].from_record(record)
        for (type_name, _), record in zip(nodes.asked, nodes.records, strict=True)
    ]
