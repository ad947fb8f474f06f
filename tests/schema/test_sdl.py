from pathlib import Path

from appointments_gateway.schema import build_schema

SDL = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_committed_sdl_matches_the_code():
    exported = build_schema().as_str() + "\n"
    assert SDL.read_text() == exported, (
        "schema.graphql differs from the schema the code builds: run `make schema` and "
        "commit the result"
    )


def test_every_type_field_argument_and_enum_value_has_a_description():
    schema = build_schema()._schema
    builtin = {"String", "Boolean", "Int", "Float", "ID"}
    missing: list[str] = []
    for name, gql_type in schema.type_map.items():
        if name.startswith("__") or name in builtin:
            continue
        if not gql_type.description:
            missing.append(name)
        for field_name, field in getattr(gql_type, "fields", {}).items():
            if not field.description:
                missing.append(f"{name}.{field_name}")
            for arg_name, arg in getattr(field, "args", {}).items():
                if not arg.description:
                    missing.append(f"{name}.{field_name}({arg_name})")
        for value_name, value in getattr(gql_type, "values", {}).items():
            if not value.description:
                missing.append(f"{name}.{value_name}")
    assert missing == []
