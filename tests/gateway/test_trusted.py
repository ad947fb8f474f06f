"""Trusted documents: manifests as client tool chains write them, and trusted-only mode.

The manifests here are shaped as the tools write them: graphql-codegen's client preset
(``persisted-documents.json``, ``hashAlgorithm: 'sha256'``: the key is the SHA-256 of the
printed text), Relay's persisted queries file (MD5 keys) and Apollo's persisted query
manifest.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import strawberry.schema.schema as strawberry_schema
from starlette.applications import Starlette

from appointments_gateway.gateway import create_app
from appointments_gateway.gateway.trusted import TrustedDocuments, sha256_hex
from appointments_gateway.settings import ConfigError, Settings

#: As codegen prints it (graphql-js ``print``): two-space indents, no trailing newline.
COUNT = "query Count {\n  appointments(first: 1) {\n    totalCount\n  }\n}"
TYPENAME = "query Typename {\n  __typename\n}"
UNLISTED = "query Other {\n  appointments(first: 2) {\n    totalCount\n  }\n}"
MODERN = "application/graphql-response+json"


def write(tmp_path: Path, manifest: object, name: str = "persisted-documents.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(manifest, indent=2))
    return str(path)


def codegen_manifest(*documents: str) -> dict[str, str]:
    return {sha256_hex(document): document for document in documents}


def app_for(path: str, *, trusted_only: bool = True, **env: str) -> Starlette:
    settings = Settings.load(
        {
            "GATEWAY_TRUSTED_DOCUMENTS": path,
            "GATEWAY_TRUSTED_ONLY": "true" if trusted_only else "false",
            "GATEWAY_SYNC": "off",
            **env,
        }
    )
    return create_app(settings)


def persisted(document: str) -> dict[str, Any]:
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(document)}}}


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every document Strawberry's parser is handed (the spy stands in for graphql.parse)."""
    seen: list[str] = []
    real = strawberry_schema.parse  # type: ignore[attr-defined]

    def spy(source: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(source))
        return real(source, *args, **kwargs)

    monkeypatch.setattr(strawberry_schema, "parse", spy)
    return seen


async def test_a_codegen_manifest_runs_its_documents_by_hash_by_document_id_and_by_text(
    tmp_path, serve
):
    path = write(tmp_path, codegen_manifest(COUNT, TYPENAME))
    digest = sha256_hex(COUNT)
    async with serve(app_for(path)) as client:
        by_apq_post = await client.post("/graphql", json=persisted(COUNT))
        by_apq_get = await client.get(
            "/graphql", params={"extensions": json.dumps(persisted(COUNT)["extensions"])}
        )
        by_id = await client.post("/graphql", json={"documentId": digest})
        by_prefixed_id = await client.get("/graphql", params={"documentId": f"sha256:{digest}"})
        by_text = await client.post("/graphql", json={"query": COUNT})
    answers = [by_apq_post, by_apq_get, by_id, by_prefixed_id, by_text]
    assert [a.status_code for a in answers] == [200] * 5
    totals = {a.json()["data"]["appointments"]["totalCount"] for a in answers}
    assert len(totals) == 1
    assert totals.pop() > 0


async def test_trusted_only_refuses_any_other_document_before_parsing_it(tmp_path, serve, parses):
    path = write(tmp_path, codegen_manifest(COUNT))
    # Nested 20,000 deep: parsing it would take the parser's recursion to its limit.
    huge = "query Deep " + "{ a " * 20_000 + "}" * 20_000
    async with serve(app_for(path)) as client:
        refused = await client.post("/graphql", json={"query": huge}, headers={"Accept": MODERN})
        legacy = await client.post("/graphql", json={"query": UNLISTED})
        by_hash = await client.post("/graphql", json=persisted(UNLISTED))
        by_id = await client.post("/graphql", json={"documentId": "f" * 64})
        assert parses == []
        # the positive control: the listed document is parsed (once) and runs
        listed = await client.post("/graphql", json={"query": COUNT})
    assert parses == [COUNT]
    for response in (refused, legacy, by_hash, by_id):
        assert response.status_code == 403, response.text
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_TRUSTED"
        assert "GATEWAY_TRUSTED_DOCUMENTS" in error["message"]
        assert "data" not in response.json()
    assert listed.json()["data"]["appointments"]["totalCount"] > 0


async def test_trusted_only_registers_nothing_by_apq(tmp_path, serve):
    path = write(tmp_path, codegen_manifest(COUNT))
    async with serve(app_for(path)) as client:
        register = await client.post("/graphql", json={**persisted(UNLISTED), "query": UNLISTED})
        later = await client.post("/graphql", json=persisted(UNLISTED))
    assert register.status_code == later.status_code == 403
    assert later.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_TRUSTED"


async def test_a_relay_manifest_is_found_by_its_md5_ids_and_by_apollos_hash(tmp_path, serve):
    relay_text = "query CountQuery {\n  appointments(first: 1) {\n    totalCount\n  }\n}\n"
    relay_id = hashlib.md5(relay_text.encode()).hexdigest()
    path = write(tmp_path, {relay_id: relay_text}, "persisted_queries.json")
    async with serve(app_for(path)) as client:
        by_id = await client.post(
            "/graphql", json={"documentId": relay_id, "variables": {}, "operationName": None}
        )
        by_hash = await client.post("/graphql", json=persisted(relay_text))
        unknown = await client.post("/graphql", json={"documentId": "0" * 32})
    assert by_id.json()["data"]["appointments"]["totalCount"] > 0
    assert by_hash.json()["data"] == by_id.json()["data"]
    assert unknown.status_code == 403


async def test_an_apollo_manifest_is_read_too(tmp_path, serve):
    manifest = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": sha256_hex(TYPENAME), "name": "Typename", "type": "query", "body": TYPENAME}
        ],
    }
    path = write(tmp_path, manifest, "persisted-query-manifest.json")
    async with serve(app_for(path)) as client:
        response = await client.post("/graphql", json=persisted(TYPENAME))
    assert response.json()["data"] == {"__typename": "Query"}


async def test_without_trusted_only_listed_documents_run_by_id_and_others_as_usual(tmp_path, serve):
    path = write(tmp_path, codegen_manifest(COUNT))
    async with serve(app_for(path, trusted_only=False)) as client:
        listed = await client.post("/graphql", json={"documentId": sha256_hex(COUNT)})
        other = await client.post("/graphql", json={"query": UNLISTED})
        unknown = await client.post("/graphql", json={"documentId": "nope"})
        both = await client.post("/graphql", json={"documentId": "nope", "query": COUNT})
    assert listed.json()["data"]["appointments"]["totalCount"] > 0
    assert other.json()["data"]["appointments"]["totalCount"] > 0
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert both.status_code == 400
    assert "either documentId or query" in both.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("manifest", "words"),
    [
        ({sha256_hex("query Count {"): "query Count {"}, "does not parse"),
        ({sha256_hex(UNLISTED): COUNT}, "not the SHA-256 of its document"),
        ({"sha256:" + "0" * 64: COUNT}, "not the SHA-256 of its document"),
        ({"id": "type Query { x: Int }"}, "type definitions"),
        ({"id": 3}, "is not a document"),
        ({}, "lists no documents"),
        (["query { x }"], "expected a JSON object"),
        ({"format": "apollo-persisted-query-manifest", "version": 2}, "version 1"),
    ],
)
def test_a_bad_manifest_stops_the_gateway_at_start_up(tmp_path, manifest, words):
    path = write(tmp_path, manifest)
    with pytest.raises(ConfigError) as caught:
        Settings.load({"GATEWAY_TRUSTED_DOCUMENTS": path})
    message = str(caught.value)
    assert message.startswith("GATEWAY_TRUSTED_DOCUMENTS: ")
    assert words in message


def test_a_missing_or_broken_manifest_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        Settings.load({"GATEWAY_TRUSTED_DOCUMENTS": str(tmp_path / "missing.json")})
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="is not JSON"):
        Settings.load({"GATEWAY_TRUSTED_DOCUMENTS": str(broken)})


def test_trusted_only_needs_the_manifest():
    with pytest.raises(ConfigError, match="GATEWAY_TRUSTED_ONLY=true needs GATEWAY_TRUSTED_DOC"):
        Settings.load({"GATEWAY_TRUSTED_ONLY": "true"})


def test_the_manifest_survives_the_trip_to_worker_processes(tmp_path):
    path = write(tmp_path, codegen_manifest(COUNT, TYPENAME))
    settings = Settings.load({"GATEWAY_TRUSTED_DOCUMENTS": path, "GATEWAY_TRUSTED_ONLY": "1"})
    assert settings.to_environ()["GATEWAY_TRUSTED_DOCUMENTS"] == path
    assert Settings.load(settings.to_environ()) == settings
    assert repr(settings.trusted_documents) == f"TrustedDocuments(path={path!r}, documents=2)"
    assert TrustedDocuments.load(path).find("sha256:" + sha256_hex(TYPENAME)) == TYPENAME
