from pathlib import Path

from appointments_gateway.schema import build_schema

SDL = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_committed_sdl_matches_the_code():
    exported = build_schema().as_str() + "\n"
    assert SDL.read_text() == exported, (
        "schema.graphql differs from the schema the code builds: run `make schema` and "
        "commit the result"
    )
