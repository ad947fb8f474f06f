"""The relation table agrees with the records it reads and the schema it feeds."""

from __future__ import annotations

import dataclasses

from appointments_gateway.resolvers.ids import NODE_TYPES
from appointments_gateway.resolvers.relations import NODE_LOADERS, RELATIONS
from appointments_gateway.schema import build_schema
from appointments_gateway.upstream import AppointmentRecord

SCHEMA = build_schema()._schema


def test_every_relation_links_by_an_id_the_appointment_record_has():
    fields = {field.name for field in dataclasses.fields(AppointmentRecord)}
    assert {relation.attribute for relation in RELATIONS} <= fields


def test_the_relations_are_exactly_the_appointment_fields_that_hold_a_node():
    appointment = SCHEMA.type_map["Appointment"]
    nodes = {
        name: str(field.type)
        for name, field in appointment.fields.items()  # type: ignore[attr-defined]
        if str(field.type) in NODE_TYPES
    }
    assert nodes == {relation.name: relation.type_name for relation in RELATIONS}


def test_the_node_types_are_the_schema_s_node_implementations():
    implementations = SCHEMA.get_implementations(SCHEMA.type_map["Node"])  # type: ignore[arg-type]
    assert {t.name for t in implementations.objects} == NODE_TYPES == set(NODE_LOADERS)
