"""``build_schema()``: the one place the schema and its extensions are assembled."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import strawberry
from graphql import GraphQLError, parse, validate
from strawberry.extensions import DisableIntrospection, MaxTokensLimiter
from strawberry.schema.config import StrawberryConfig

from appointments_gateway.schema.admission import Admission, AdmissionLimits
from appointments_gateway.schema.errors import GatewayErrors, is_unexpected, log_unexpected
from appointments_gateway.schema.extensions import UpstreamUsage
from appointments_gateway.schema.mutations import Mutation
from appointments_gateway.schema.observe import OperationObserver
from appointments_gateway.schema.query import Query
from appointments_gateway.schema.scalars import Date, DateTime
from appointments_gateway.schema.subscription import Subscription
from appointments_gateway.schema.types import NODE_CLASSES

__all__ = [
    "DEFAULT_MAX_ALIASES",
    "DEFAULT_MAX_ANALYSIS_MS",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_SELECTIONS",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MAX_UPSTREAM_REQUESTS",
    "GatewaySchema",
    "build_schema",
]


#: The default admission limit: a quarter of a key's 200 requests per minute.
DEFAULT_MAX_UPSTREAM_REQUESTS = 50


class GatewaySchema(strawberry.Schema):
    """Logs only the errors that are bugs, once each, without their messages.

    Strawberry's default ``process_errors`` logs every error at ERROR with a traceback
    and its message: a ``NOT_FOUND`` or ``RATE_LIMITED`` is an answer, not a fault (the
    operation's log line lists its code), and a message may quote a caller's input.
    It is called with the errors before ``GatewayErrors`` masks them, so the original
    exception is still at hand.
    """

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        for error in errors:
            if is_unexpected(error):
                log_unexpected(error)


#: Shape limits: far above what a screen needs (the benchmark's deepest operation has
#: depth 7), low enough that a document cannot make parsing or validation expensive.
DEFAULT_MAX_DEPTH = 12
DEFAULT_MAX_ALIASES = 30
DEFAULT_MAX_TOKENS = 5000
#: Field selections as executed (fragments counted at every spread).  GraphiQL's
#: introspection query, the largest document a client sends, selects 229; the
#: benchmark's appointment detail 88.
DEFAULT_MAX_SELECTIONS = 1000
#: Parse and validation of one document, in milliseconds: the heaviest document above
#: takes 4 ms (measured here), and nothing else on the worker moves while it runs.
DEFAULT_MAX_ANALYSIS_MS = 30


def build_schema(
    *,
    max_upstream_requests: int = DEFAULT_MAX_UPSTREAM_REQUESTS,
    introspection: bool = True,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_aliases: int = DEFAULT_MAX_ALIASES,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    max_selections: int = DEFAULT_MAX_SELECTIONS,
    max_analysis_ms: int = DEFAULT_MAX_ANALYSIS_MS,
) -> strawberry.Schema:
    """A fresh schema; ``schema.graphql`` at the repo root is its exported SDL.

    Admission outcomes and admitted documents' syntax trees are cached (bounded, and
    small: see ``schema/admission.py``): a screen sends the same document again and
    again, and parse + validate is ~2.5 ms of a heavy operation.
    Documents whose upstream cost bound exceeds ``max_upstream_requests`` are refused
    before they run (0 turns the check off; the bound is still reported).

    ``introspection=False`` refuses ``__schema`` and ``__type`` as a validation error (so
    before anything runs; ``__typename`` stays, clients need it): in production the
    schema's shape is no one's business but its clients', who have ``schema.graphql``.
    The rule comes before admission, whose cached outcomes are keyed by the rules.

    Depth, alias, selection and token limits, a time limit on parse and validation, and
    the cost bound refuse a document as ``QUERY_TOO_COMPLEX`` before it runs
    (``schema/admission.py``; the token limit stops the parser itself, before it builds
    a large tree).  Each is bounded: the walks are linear in the document (each fragment
    measured once), graphql-core's validation runs under the time limit.
    """
    admission = Admission(
        AdmissionLimits(
            max_depth=max_depth,
            max_aliases=max_aliases,
            max_selections=max_selections,
            max_upstream_requests=max_upstream_requests if max_upstream_requests > 0 else 2**31,
            max_analysis_seconds=max_analysis_ms / 1000,
        )
    )
    no_introspection = [] if introspection else [DisableIntrospection]
    schema = GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        # Every Relay node type, so node(id:) can return each (resolvers/relations.py).
        types=list(NODE_CLASSES.values()),
        config=StrawberryConfig(scalar_map={datetime: DateTime, date: Date}),
        extensions=[
            # First, so that it sees the errors after GatewayErrors has coded them.
            OperationObserver,
            # Adds its validation rule, so before admission (whose cache key holds rules).
            *no_introspection,
            # Before the parser, so that its clock starts before parsing does.
            admission.extension,
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            GatewayErrors,
            UpstreamUsage,
        ],
    )
    # The first validation in a process pays ~15 ms of one-time set-up (16 ms against
    # 3 ms for the same introspection query next time, measured here): paid now, not by
    # a client's document against the time limit.
    validate(schema._schema, parse("{ __typename }"))
    return schema
