"""Persisted documents at request time: Apollo's APQ protocol and trusted documents.

A request names its document in one of three ways, and this module turns each into the
document's text before anything parses it, so every admission check (token, depth, alias
and selection limits, analysis time, upstream cost; ``schema/admission.py``) applies to a
persisted document exactly as to one sent in full:

* ``query``: the text itself.
* ``extensions.persistedQuery {version: 1, sha256Hash}``: **automatic persisted queries**
  as Apollo Client's ``createPersistedQueryLink`` and urql's ``persistedExchange`` speak
  them.  The client first sends the hash alone (by ``POST``, or by ``GET`` with
  ``useGETForHashedQueries``); an unknown hash answers ``PERSISTED_QUERY_NOT_FOUND`` with
  the message ``PersistedQueryNotFound``, the exact words both links look for (urql
  matches the message only), and the link sends the operation again with its text and
  hash.  The gateway checks that the hash is the SHA-256 of the text
  (``PERSISTED_QUERY_HASH_MISMATCH`` otherwise: nothing is stored), runs it, and stores
  the text once execution has begun (a document that does not parse or is refused by
  admission is not stored, so the store holds only documents that can run).  Later
  requests send the hash alone.
* ``documentId`` (the GraphQL-over-HTTP persisted documents convention that urql and
  graphql-codegen's client preset use): an id of ``GATEWAY_TRUSTED_DOCUMENTS``, or
  ``sha256:<hex>`` of a listed text (``gateway/trusted.py``).

The store (``apq:v1:<sha256>``) is behind the shared-state interface (``state.py``): in
memory, one per process, at most :data:`MEMORY_DOCUMENTS` documents (its own store, so a
flood of documents can never evict the idempotency keys of the app's); or with
``GATEWAY_REDIS_URL``, Redis, shared by every worker and instance.  Documents hold no
data and are not per credential.  Each expires ``GATEWAY_APQ_TTL`` after it was last
stored, and a document in use is stored again once half of that has passed, so documents
in use stay and forgotten ones go.  Texts above :data:`MAX_STORED_DOCUMENT_BYTES` run but
are never stored (the body size limit bounds them anyway).  While Redis is unreachable a
hash alone answers ``PERSISTED_QUERY_NOT_FOUND`` (the link then sends the text) and a
text with its hash simply runs unstored: APQ costs a round trip, nothing fails.

With ``GATEWAY_TRUSTED_ONLY=true`` only listed documents run: a hash or id not in the
manifest, and a text whose SHA-256 is not a listed text's, answer
``PERSISTED_QUERY_NOT_TRUSTED`` (403) after one hash and one dictionary read, before the
parser has seen a byte of it.  Nothing is stored in that mode.  With ``GATEWAY_APQ=false``
an unknown hash answers ``PERSISTED_QUERY_NOT_SUPPORTED``, on which both links stop
hashing and send texts.

Status codes: ``PERSISTED_QUERY_NOT_FOUND`` and ``PERSISTED_QUERY_NOT_SUPPORTED`` are
the protocol's own answers; like Apollo Server they come with status 200 to
``application/json`` clients (older links read errors only from a 2xx), and with 400 to
``application/graphql-response+json`` clients, whose spec requires a 4xx for a response
without data (both links read the errors of a 4xx body too).  Every other refusal has the
same 4xx for every client: 400 for a malformed request, 403 for an untrusted document.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cross_web import HTTPException
from strawberry.http import GraphQLRequestData

from appointments_gateway.gateway.trusted import TrustedDocuments, declared_sha256, sha256_hex
from appointments_gateway.settings import Settings
from appointments_gateway.state import InMemoryState, SharedState, SharedStateUnavailable

__all__ = [
    "APQ_KEY_PREFIX",
    "MAX_STORED_DOCUMENT_BYTES",
    "MEMORY_DOCUMENTS",
    "GatewayRequestData",
    "PersistedDocuments",
    "PersistedQueryRefusal",
    "Resolved",
]

#: Stored documents are under ``apq:v1:<sha256 hex>``.
APQ_KEY_PREFIX = "apq:v1:"
#: The largest text stored; a real client's largest document is a few KiB.
MAX_STORED_DOCUMENT_BYTES = 32 * 1024
#: Documents the in-memory store keeps (at most 32 MiB of text); the one closest to expiry
#: goes first.
MEMORY_DOCUMENTS = 1024

logger = logging.getLogger("appointments_gateway.gateway")


@dataclass
class GatewayRequestData(GraphQLRequestData):
    """Strawberry's request data plus ``documentId``, which it does not know."""

    document_id: str | None = None


class PersistedQueryRefusal(HTTPException):
    """A refusal made before parsing; the view answers it as a GraphQL error with ``code``.

    Attributes:
        code: ``errors[0].extensions.code``.
        legacy_status: the status for ``application/json`` clients, when it differs
            from ``status_code`` (the protocol answers: 200, as Apollo Server sends).
    """

    def __init__(
        self, status_code: int, reason: str, code: str, *, legacy_status: int | None = None
    ) -> None:
        super().__init__(status_code, reason)
        self.code = code
        self.legacy_status = legacy_status or status_code


def _not_found() -> PersistedQueryRefusal:
    return PersistedQueryRefusal(
        400, "PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND", legacy_status=200
    )


def _not_supported() -> PersistedQueryRefusal:
    return PersistedQueryRefusal(
        400, "PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED", legacy_status=200
    )


def _not_trusted() -> PersistedQueryRefusal:
    return PersistedQueryRefusal(
        403,
        "This gateway runs only its trusted documents (GATEWAY_TRUSTED_ONLY), and this is "
        "not one of them: add it to the manifest of GATEWAY_TRUSTED_DOCUMENTS.",
        "PERSISTED_QUERY_NOT_TRUSTED",
    )


def _bad(reason: str, code: str = "BAD_USER_INPUT") -> PersistedQueryRefusal:
    return PersistedQueryRefusal(400, reason, code)


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a request runs, and the text to store under its hash once it has run."""

    query: str | None
    register: tuple[str, str] | None = None


class PersistedDocuments:
    """Resolves a request's persisted document; stores documents by their hash.

    Args:
        store: where automatically persisted documents live (values under
            ``apq:v1:<sha256>``).
        apq: accept new documents by Apollo's protocol.
        ttl: seconds a stored document lives after it was last stored.
        trusted: the checked manifest of ``GATEWAY_TRUSTED_DOCUMENTS``, if any.
        trusted_only: run only documents of ``trusted``.
        clock: UNIX seconds; injectable for tests.
    """

    def __init__(
        self,
        store: SharedState,
        *,
        apq: bool = True,
        ttl: float = 86400.0,
        trusted: TrustedDocuments | None = None,
        trusted_only: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if trusted_only and trusted is None:
            raise ValueError("trusted_only needs the trusted documents")
        if not (math.isfinite(ttl) and ttl > 0):
            raise ValueError(f"ttl must be a number of seconds above 0, got {ttl}")
        self._store = store
        self._apq = apq and not trusted_only
        self._ttl = ttl
        self._trusted = trusted
        self._trusted_only = trusted_only
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, shared: SharedState) -> PersistedDocuments:
        """With Redis the app's ``shared`` state; in memory a bounded store of its own."""
        store = shared if settings.redis_url else InMemoryState(max_values=MEMORY_DOCUMENTS)
        return cls(
            store,
            apq=settings.apq,
            ttl=settings.apq_ttl,
            trusted=settings.trusted_documents,
            trusted_only=settings.trusted_only,
        )

    async def resolve(self, request: GraphQLRequestData) -> Resolved:
        """The text ``request`` runs; raises :class:`PersistedQueryRefusal` instead.

        Cost before the parser: a SHA-256 of the text when a hash or trust must be
        checked, dictionary reads, and for a hash alone one read of the store.
        """
        query = request.query
        document_id = request.document_id if isinstance(request, GatewayRequestData) else None
        digest = _persisted_query_hash(request.extensions)
        if document_id is not None and (query is not None or digest is not None):
            raise _bad("Send either documentId or query (or a persistedQuery extension).")
        if document_id is not None:
            return Resolved(self._by_document_id(document_id))
        if query is None:
            if digest is None:
                return Resolved(None)  # Strawberry's own refusal: no query
            return Resolved(await self._by_hash(digest))
        if digest is not None and sha256_hex(query) != digest:
            raise _bad(
                "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query's "
                "text (UTF-8, as sent); nothing was stored.",
                "PERSISTED_QUERY_HASH_MISMATCH",
            )
        if self._trusted_only:
            assert self._trusted is not None
            if self._trusted.find_sha256(digest or sha256_hex(query)) is None:
                raise _not_trusted()
            return Resolved(query)
        if (
            digest is not None
            and self._apq
            and len(query) <= MAX_STORED_DOCUMENT_BYTES
            and (self._trusted is None or self._trusted.find_sha256(digest) is None)
        ):
            return Resolved(query, register=(digest, query))
        return Resolved(query)

    async def register(self, digest: str, query: str) -> None:
        """Store ``query`` under its hash; with the store away, skip it (it is a cache)."""
        await self._put(digest, query)

    def _by_document_id(self, document_id: str) -> str:
        found = self._trusted.find(document_id) if self._trusted is not None else None
        if found is None:
            if self._trusted_only:
                raise _not_trusted()
            raise PersistedQueryRefusal(
                400,
                "No trusted document has this documentId (GATEWAY_TRUSTED_DOCUMENTS); "
                "send the document as query, or regenerate the manifest.",
                "PERSISTED_QUERY_NOT_FOUND",
            )
        return found

    async def _by_hash(self, digest: str) -> str:
        if self._trusted is not None and (found := self._trusted.find_sha256(digest)):
            return found
        if self._trusted_only:
            raise _not_trusted()
        if not self._apq:
            raise _not_supported()
        try:
            stored = await self._store.get(APQ_KEY_PREFIX + digest)
        except SharedStateUnavailable:
            # The link sends the text next; that one runs (unstored while this lasts).
            logger.debug("persisted query store unavailable; answered PersistedQueryNotFound")
            raise _not_found() from None
        if stored is None:
            raise _not_found()
        stored_at, _, text = stored.partition(b"\n")
        query = text.decode("utf-8", "surrogatepass")
        if self._clock() - float(stored_at) > self._ttl / 2:
            await self._put(digest, query)
        return query

    async def _put(self, digest: str, query: str) -> None:
        value = b"%.0f\n" % self._clock() + query.encode("utf-8", "surrogatepass")
        try:
            await self._store.set(APQ_KEY_PREFIX + digest, value, ttl=self._ttl)
        except SharedStateUnavailable:
            logger.debug("persisted query store unavailable; document not stored")


def _persisted_query_hash(extensions: Mapping[str, Any] | None) -> str | None:
    """``extensions.persistedQuery.sha256Hash``, checked; ``None`` when absent."""
    if not extensions or extensions.get("persistedQuery") is None:
        return None
    persisted = extensions["persistedQuery"]
    if not isinstance(persisted, dict):
        raise _bad("extensions.persistedQuery must be an object {version: 1, sha256Hash}.")
    if persisted.get("version") != 1:
        raise _bad(
            "Unsupported persisted query version: send extensions.persistedQuery.version 1 "
            "(Apollo's automatic persisted queries)."
        )
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or len(digest) != 64 or declared_sha256(digest) is None:
        raise _bad("extensions.persistedQuery.sha256Hash must be 64 hex digits (a SHA-256).")
    return digest.lower()
