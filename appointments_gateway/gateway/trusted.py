"""Trusted documents: a manifest of id → document, read and checked once, at start-up.

``GATEWAY_TRUSTED_DOCUMENTS`` names a JSON file in one of the shapes client tool chains
write:

* **graphql-codegen's client preset** (``persistedDocuments: true``) writes
  ``persisted-documents.json``: ``{"<hash>": "<document>", ...}``, the hash computed over
  exactly the text stored (SHA-1 by default; ``hashAlgorithm: 'sha256'`` is what Apollo's
  links send, and what we recommend).
* **Relay** (``persistConfig: {"file": ...}``) writes the same flat shape, keyed by an MD5
  (or SHA-1/SHA-256) of the text.
* **Apollo's persisted query manifest** (``generate-persisted-query-manifest``):
  ``{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{"id",
  "body", ...}]}``, ids the SHA-256 of the bodies.

Every document must parse and hold only operations and fragments.  A key that *is* a
SHA-256 (64 hex digits, or ``sha256:`` and 64 hex digits as the GraphQL-over-HTTP
persisted-documents appendix spells it) must be the SHA-256 of its document: a mismatch
means the manifest and the client's build disagree, and every request of that document
would fail, so the gateway refuses to start.  Other keys (Relay's MD5s, codegen's SHA-1s,
custom ids) are ids the client sends as ``documentId``; they are not digests we can check
without knowing the algorithm, and need not be.

Requests find a document by its manifest key (``documentId``) and by the SHA-256 of its
text (``extensions.persistedQuery.sha256Hash``, Apollo's links; and a full ``query`` whose
text is listed), so whatever the key, a client that sends Apollo's hash of the same text
finds it too.  Lookups are dictionary reads: nothing is parsed per request.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import orjson
from graphql import ExecutableDefinitionNode, GraphQLSyntaxError, parse

__all__ = ["APOLLO_MANIFEST_FORMAT", "TrustedDocuments", "sha256_hex"]

#: The ``format`` of Apollo's persisted query manifest.
APOLLO_MANIFEST_FORMAT = "apollo-persisted-query-manifest"

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_PREFIX = "sha256:"
#: Keys longer than this are shortened in messages.
_KEY_CHARS = 24


def sha256_hex(text: str) -> str:
    """The SHA-256 of ``text`` in UTF-8, as 64 lower-case hex digits (Apollo's hash)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def declared_sha256(key: str) -> str | None:
    """The SHA-256 a key or id spells (lower case), or ``None`` if it spells none."""
    payload = key[len(_PREFIX) :] if key.startswith(_PREFIX) else key
    if _SHA256_HEX.fullmatch(payload):
        return payload.lower()
    return None


def _shown(key: str) -> str:
    return repr(key if len(key) <= _KEY_CHARS else key[:_KEY_CHARS] + "…")


class TrustedDocuments:
    """The checked manifest: documents by manifest key and by the SHA-256 of their text.

    Build it with :meth:`load` (a file) or :meth:`from_manifest` (decoded JSON); both
    raise ``ValueError`` with a message that names the entry at fault.
    """

    __slots__ = ("_by_id", "_by_sha256", "_digest", "path")

    def __init__(self, path: str, entries: Iterable[tuple[str, str]]) -> None:
        self.path = path
        self._by_id: dict[str, str] = {}
        self._by_sha256: dict[str, str] = {}
        for key, text in entries:
            digest = sha256_hex(text)
            declared = declared_sha256(key)
            if declared is not None and declared != digest:
                raise ValueError(
                    f"{path}: entry {_shown(key)} is named by a SHA-256 that is not the "
                    "SHA-256 of its document; regenerate the manifest with the client build "
                    "it belongs to"
                )
            _check_document(path, key, text)
            self._by_id[key] = text
            self._by_sha256[digest] = text
        if not self._by_id:
            raise ValueError(f"{path}: the manifest lists no documents")
        whole = hashlib.sha256()
        for key in sorted(self._by_id):
            whole.update(orjson.dumps([key, self._by_id[key]]))
        self._digest = whole.hexdigest()

    @classmethod
    def load(cls, path: str) -> TrustedDocuments:
        """Read, decode and check the manifest at ``path``."""
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            manifest = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ValueError(f"{path} is not JSON") from None
        return cls.from_manifest(manifest, path=path)

    @classmethod
    def from_manifest(cls, manifest: object, *, path: str) -> TrustedDocuments:
        """Check a decoded manifest in any of the shapes of the module docstring."""
        if not isinstance(manifest, dict):
            raise ValueError(
                f"{path}: expected a JSON object of id -> document (graphql-codegen's "
                "persisted-documents.json, Relay's persisted queries) or Apollo's "
                "persisted query manifest"
            )
        if manifest.get("format") == APOLLO_MANIFEST_FORMAT:
            return cls(path, _apollo_entries(manifest, path))
        entries: list[tuple[str, str]] = []
        for key, text in manifest.items():
            if not isinstance(text, str):
                raise ValueError(f"{path}: entry {_shown(key)} is not a document (a string)")
            entries.append((key, text))
        return cls(path, entries)

    def find(self, document_id: str) -> str | None:
        """The document a ``documentId`` names: its manifest key, or ``sha256:<hex>``."""
        found = self._by_id.get(document_id)
        if found is None and (digest := declared_sha256(document_id)) is not None:
            found = self._by_sha256.get(digest)
        return found

    def find_sha256(self, digest: str) -> str | None:
        """The document whose text has this SHA-256 (lower-case hex)."""
        return self._by_sha256.get(digest)

    def __len__(self) -> int:
        return len(self._by_id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TrustedDocuments):
            return NotImplemented
        return (self.path, self._digest) == (other.path, other._digest)

    def __hash__(self) -> int:
        return hash((self.path, self._digest))

    def __repr__(self) -> str:
        return f"TrustedDocuments(path={self.path!r}, documents={len(self)})"


def _apollo_entries(manifest: Mapping[str, object], path: str) -> list[tuple[str, str]]:
    operations = manifest.get("operations")
    if manifest.get("version") != 1 or not isinstance(operations, list):
        raise ValueError(f"{path}: an Apollo manifest of version 1 with a list of operations")
    entries: list[tuple[str, str]] = []
    for position, operation in enumerate(operations, start=1):
        if not isinstance(operation, dict):
            raise ValueError(f"{path}: operation {position} is not an object")
        key, body = operation.get("id"), operation.get("body")
        if not isinstance(key, str) or not isinstance(body, str):
            raise ValueError(f"{path}: operation {position} needs a string id and body")
        entries.append((key, body))
    return entries


def _check_document(path: str, key: str, text: str) -> None:
    try:
        document = parse(text)
    except GraphQLSyntaxError as exc:
        raise ValueError(f"{path}: entry {_shown(key)} does not parse: {exc.message}") from None
    if not all(isinstance(d, ExecutableDefinitionNode) for d in document.definitions):
        raise ValueError(
            f"{path}: entry {_shown(key)} holds type definitions; a trusted document holds "
            "operations and fragments only"
        )
