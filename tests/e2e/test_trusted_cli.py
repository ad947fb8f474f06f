"""Trusted documents through the real CLI: start-up checks and trusted-only mode over TCP."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from appointments_gateway.gateway.trusted import sha256_hex
from tests.e2e.conftest import Running, refused_at_start, serve_on_sandbox

COUNT = "query Count {\n  appointments(first: 1) {\n    totalCount\n  }\n}"


def test_trusted_only_without_a_manifest_refuses_to_start():
    done = refused_at_start("serve", "--trusted-only", "true")
    assert "GATEWAY_TRUSTED_ONLY=true needs GATEWAY_TRUSTED_DOCUMENTS" in done.stderr


def test_a_manifest_whose_key_is_not_its_documents_hash_refuses_to_start(tmp_path: Path):
    manifest = tmp_path / "persisted-documents.json"
    manifest.write_text(json.dumps({sha256_hex("{ other }"): COUNT}))
    done = refused_at_start("serve", "--trusted-documents", str(manifest))
    assert "--trusted-documents: " in done.stderr
    assert "not the SHA-256 of its document" in done.stderr


def test_trusted_only_serves_listed_documents_and_refuses_others(
    cli: list[Running], tmp_path: Path
):
    manifest = tmp_path / "persisted-documents.json"
    manifest.write_text(json.dumps({sha256_hex(COUNT): COUNT}))
    _, endpoint, _ = serve_on_sandbox(
        cli, "--trusted-documents", str(manifest), "--trusted-only", "true"
    )
    with httpx.Client(timeout=10) as http:
        listed = http.get(endpoint, params={"documentId": sha256_hex(COUNT)})
        other = http.post(endpoint, json={"query": "{ __typename }"})
    assert listed.json()["data"]["appointments"]["totalCount"] > 0
    assert listed.headers["cache-control"] == "no-store"
    assert other.status_code == 403
    assert other.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_TRUSTED"
