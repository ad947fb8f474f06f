"""Baseline (a), the floor: graphql-core alone executing the calendar over in-memory dicts.

What it is (PERFORMANCE.md §2, ``core_sync_exec``, adapted to our real schema and
document):

* the schema is ``graphql.build_schema`` of the gateway's own SDL, so types, nullability,
  enums and the ``DateTime`` scalar (with the gateway's own ``serialize_datetime``) match;
* the document is ``bench/operations/calendar.graphql``, parsed and validated ONCE,
  outside the timed region; only ``graphql.execute_sync`` is timed;
* the sources are plain dicts built from the gateway's own response (timestamps turned
  back into ``datetime``/``date`` objects so serialising them costs what it costs the
  gateway); graphql-core's default resolver reads them;
* ``patient``/``practitioner``/``business``/``appointmentType`` have sync resolvers that
  look the related dict up by id in an in-memory store, like the probe's.

Before timing, the floor's result is checked byte-identical (sorted-key JSON) to the
gateway's ``data``: same work, same output.  Time is the executing thread's CPU time
(``time.thread_time``), per operation; GC stays on, as in the gateway.

Run as ``python -m bench.floor INPUT.json`` (written by ``bench.run``); prints JSON.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import graphql
import orjson

from appointments_gateway.schema import build_schema
from appointments_gateway.schema.scalars import serialize_datetime

__all__ = ["RELATIONS", "measure_floor"]

#: Appointment fields the floor resolves with a sync lookup in a store.
RELATIONS = ("patient", "practitioner", "business", "appointmentType")


def _floor_schema() -> graphql.GraphQLSchema:
    schema = graphql.build_schema(build_schema().as_str())
    # graphql-core 3.3 serialises leaves with ``coerce_output_value`` (``serialize`` is
    # its older alias, copied at construction): set both.
    serializers: dict[str, Callable[[Any], str]] = {
        "DateTime": serialize_datetime,
        "Date": date.isoformat,
    }
    for name, serialize in serializers.items():
        scalar = schema.type_map[name]
        assert isinstance(scalar, graphql.GraphQLScalarType)
        scalar.serialize = scalar.coerce_output_value = serialize  # type: ignore[method-assign,assignment]
    return schema


def _sources(
    schema: graphql.GraphQLSchema, data: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Turn the gateway's response back into dict sources plus per-relation stores."""
    stores: dict[str, dict[str, Any]] = {name: {} for name in RELATIONS}

    def convert(value: Any, type_: graphql.GraphQLOutputType) -> Any:
        named = graphql.get_named_type(type_)
        if value is None:
            return None
        if isinstance(value, list):
            inner = graphql.get_nullable_type(type_)
            assert isinstance(inner, graphql.GraphQLList)
            return [convert(v, inner.of_type) for v in value]
        if named.name == "DateTime":
            return datetime.fromisoformat(value)
        if named.name == "Date":
            return date.fromisoformat(value)
        if isinstance(named, graphql.GraphQLObjectType):
            out: dict[str, Any] = {}
            for key, item in value.items():
                field_type = named.fields[key].type
                converted = convert(item, field_type)
                if named.name == "Appointment" and key in RELATIONS and converted is not None:
                    stores[key][converted["id"]] = converted
                    converted = converted["id"]
                out[key] = converted
            return out
        return value

    query = schema.query_type
    assert query is not None
    connection = convert(data["appointments"], query.fields["appointments"].type)
    return connection, stores


def _wire(schema: graphql.GraphQLSchema, stores: dict[str, dict[str, Any]]) -> None:
    appointment = schema.type_map["Appointment"]
    assert isinstance(appointment, graphql.GraphQLObjectType)
    for name in RELATIONS:
        store = stores[name]

        def resolve(src: dict[str, Any], info: Any, _s: Any = store, _k: str = name) -> Any:
            key = src[_k]
            return None if key is None else _s[key]

        appointment.fields[name].resolve = resolve


def measure_floor(
    document: str, variables: dict[str, Any], data: dict[str, Any], *, samples: int = 120
) -> dict[str, Any]:
    """Median CPU ms of ``execute_sync`` for the calendar, after checking its output."""
    schema = _floor_schema()
    connection, stores = _sources(schema, data)
    _wire(schema, stores)
    query = schema.query_type
    assert query is not None
    query.fields["appointments"].resolve = lambda root, info, **kwargs: connection
    parsed = graphql.parse(document)
    errors = graphql.validate(schema, parsed)
    if errors:
        raise RuntimeError(f"The floor schema refuses the calendar document: {errors}")

    def run() -> graphql.ExecutionResult:
        result = graphql.execute_sync(schema, parsed, variable_values=variables)
        if result.errors:
            raise RuntimeError(f"The floor failed: {result.errors[:2]}")
        return result

    floor_data = run().data
    option = orjson.OPT_SORT_KEYS
    identical = orjson.dumps(floor_data, option=option) == orjson.dumps(data, option=option)
    if not identical:
        raise RuntimeError("The floor's result differs from the gateway's: not the same work.")
    for _ in range(20):
        run()
    gc.collect()
    times: list[float] = []
    clock = time.thread_time
    for _ in range(samples):
        start = clock()
        run()
        times.append(clock() - start)
    times.sort()
    return {
        "median_ms": statistics.median(times) * 1e3,
        "p10_ms": times[len(times) // 10] * 1e3,
        "p90_ms": times[len(times) * 9 // 10] * 1e3,
        "samples": samples,
        "fields": _count_fields(floor_data),
        "identical": identical,
    }


def _count_fields(value: Any) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_count_fields(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_fields(v) for v in value)
    return 0


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    result = measure_floor(spec["document"], spec["variables"], spec["data"])
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
