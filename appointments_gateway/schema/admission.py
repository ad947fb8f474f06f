"""Admission: every check a document passes before it runs, each bounded in time.

Strawberry parses, then validates, then executes.  Between parsing and execution this
extension decides, in this order and cheapest first, whether the operation runs:

1. **One operation.**  A document with several operations and no ``operationName`` is
   refused, as the GraphQL spec says (Strawberry would run the first one).
2. **Shape** (``schema/shape.py``): depth, aliases and field selections as the document
   would execute, in one walk linear in its size, each fragment measured once.  Over a
   limit: ``QUERY_TOO_COMPLEX``.  The selection limit is what keeps every later step
   small: graphql-core's validation and the cost bound walk at most that many fields.
3. **Validation** by graphql-core (Strawberry's rules, plus introspection's refusal when
   it is off), under a hard time limit (``schema/time_budget.py``): the clock starts
   when parsing starts, and what is left of ``max_analysis_seconds`` then is validation's.
   Parsing itself is bounded by the token limit (``MaxTokensLimiter``, which stops the
   lexer), and linear.
4. **Upstream cost bound** (``schema/cost.py``): refused over ``max_upstream_requests``.

Outcomes are cached by a digest of the document's text and the validation rules (a
screen sends the same document again and again, and validation is most of the
pre-execution cost), refusals included: a refused document sent again is refused by a
dictionary lookup.  The cost bound depends on variables and is computed every time; it
is microseconds.

**What is cached is small, on purpose.**  Parsed documents are objects by the thousand,
and every object a cache keeps alive is one the collector walks in a full collection:
with Strawberry's parser cache full of 256 distinct hostile documents a full collection
took 0.14 to 0.6 s here, and held the worker as long.  So outcomes keep no syntax tree
(their errors keep only positions in the text), and parsed documents are kept for
admitted documents only, at most :data:`DOCUMENT_CACHE_BYTES` of text in all (a client
set's documents fit; an attacker's stream of new ones churns a cache that stays small).

Every refusal is a ``QUERY_TOO_COMPLEX`` (``BAD_USER_INPUT`` for a missing operation
name) before any upstream call: no data, no execution.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from appointments_gateway.resolvers.context import Context
from appointments_gateway.schema.cost import estimate_upstream_requests
from appointments_gateway.schema.shape import NESTING_ALLOWANCE, Shape, measure
from appointments_gateway.schema.time_budget import TimeLimitExceeded, time_limit

__all__ = ["Admission", "AdmissionLimits", "AdmissionOutcome"]

K = TypeVar("K")
V = TypeVar("V")

#: Outcomes kept (each a few small objects, keyed by a digest, not the text).
OUTCOME_CACHE_SIZE = 1024
#: Text of the admitted documents whose syntax trees are kept, in all, and at most one.
DOCUMENT_CACHE_BYTES = 64 * 1024
DOCUMENT_MAX_BYTES = 8 * 1024


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """The limits of one schema (``GATEWAY_MAX_*`` settings)."""

    max_depth: int
    max_aliases: int
    max_selections: int
    max_upstream_requests: int
    #: Parse and validation together, in seconds.
    max_analysis_seconds: float


@dataclass(frozen=True, slots=True)
class AdmissionOutcome:
    """What is known of a document before its variables: its shape and its errors."""

    shape: Shape
    errors: tuple[GraphQLError, ...]


def _too_complex(message: str, **details: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "QUERY_TOO_COMPLEX", **details})


def _detached(error: GraphQLError) -> GraphQLError:
    """The same error, pointing into the text by position instead of holding its nodes."""
    return GraphQLError(
        error.message,
        source=error.source,
        positions=error.positions,
        extensions=error.extensions,
    )


class _Lru(Generic[K, V]):
    """An LRU bounded by entries and by the total ``weight`` of its values."""

    def __init__(self, *, entries: int, weight: int = 2**62) -> None:
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._max_entries = entries
        self._max_weight = weight
        self._weight = 0

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        return found[0]

    def put(self, key: K, value: V, weight: int = 0) -> None:
        if weight > self._max_weight:
            return
        previous = self._entries.pop(key, None)
        if previous is not None:
            self._weight -= previous[1]
        self._entries[key] = (value, weight)
        self._weight += weight
        while len(self._entries) > self._max_entries or self._weight > self._max_weight:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._weight -= dropped


class Admission:
    """The admission pipeline of one schema; ``extension()`` makes its per-request hook."""

    def __init__(self, limits: AdmissionLimits) -> None:
        self.limits = limits
        self._outcomes: _Lru[tuple[bytes, tuple[type[ASTValidationRule], ...]], AdmissionOutcome]
        self._outcomes = _Lru(entries=OUTCOME_CACHE_SIZE)
        self._documents: _Lru[str, DocumentNode] = _Lru(
            entries=OUTCOME_CACHE_SIZE, weight=DOCUMENT_CACHE_BYTES
        )

    def parsed(self, query: str) -> DocumentNode | None:
        """The syntax tree of an admitted document seen before, if it is still kept."""
        return self._documents.get(query)

    def extension(self) -> AdmissionExtension:
        return AdmissionExtension(self)

    def check_shape(self, shape: Shape) -> GraphQLError | None:
        """The refusal of a shape over a limit, with the figure and the limit in it."""
        limits = self.limits
        if shape.too_deep:
            return _too_complex("The document nests selections or fragments too deeply.")
        spread = "(fragments counted each time they are spread)"
        for figure, limit, key, what in (
            (shape.depth, limits.max_depth, "depth", "is nested {} fields deep"),
            (shape.aliases, limits.max_aliases, "aliases", "uses {} aliases " + spread),
            (shape.selections, limits.max_selections, "selections", "selects {} fields " + spread),
        ):
            if figure > limit:
                return _too_complex(
                    f"The operation {what.format(figure)}; the limit is {limit}.",
                    **{key: figure, "max" + key[0].upper() + key[1:]: limit},
                )
        return None

    def outcome(
        self,
        query: str | None,
        document: DocumentNode,
        schema: Any,
        rules: tuple[type[ASTValidationRule], ...],
        seconds_left: float,
    ) -> AdmissionOutcome:
        """Shape and validation of ``document``, cached by its text and the rules.

        ``query`` is the document's text (``None`` when a caller passed a parsed
        document: then nothing is cached).
        """
        key = None if query is None else (hashlib.sha256(query.encode()).digest(), rules)
        cached = None if key is None else self._outcomes.get(key)
        if cached is not None:
            return cached
        shape = measure(document, max_nesting=self.limits.max_depth + NESTING_ALLOWANCE)
        refusal = self.check_shape(shape)
        if refusal is not None:
            outcome = AdmissionOutcome(shape, (refusal,))
        else:
            try:
                with time_limit(seconds_left):
                    errors = tuple(validate_document(schema, document, rules))
            except TimeLimitExceeded:
                # Not cached: time depends on the moment too, and a document a client
                # really uses must not stay refused for one slow moment.  Sent again, it
                # costs the time limit again, no more.
                return AdmissionOutcome(
                    shape,
                    (
                        _too_complex(
                            "The document took too long to validate; send a smaller one.",
                            maxAnalysisMilliseconds=round(self.limits.max_analysis_seconds * 1000),
                        ),
                    ),
                )
            outcome = AdmissionOutcome(shape, tuple(_detached(error) for error in errors))
        if key is not None:
            self._outcomes.put(key, outcome)
            if query is not None and not outcome.errors and len(query) <= DOCUMENT_MAX_BYTES:
                self._documents.put(query, document, len(query))
        return outcome


class AdmissionExtension(SchemaExtension):
    """The per-request hooks of :class:`Admission` (Strawberry makes one per operation).

    It must come before Strawberry's token limiter in the schema's list, so its clock
    starts before parsing does and a kept syntax tree spares the parse, and after
    extensions that add validation rules (introspection's refusal), so their rules are
    part of validation and its cache key.
    """

    def __init__(self, admission: Admission) -> None:
        super().__init__()
        self.admission = admission
        self.started = 0.0

    def on_parse(self) -> Iterator[None]:
        self.started = time.perf_counter()
        context = self.execution_context
        if context.graphql_document is None and context.query is not None:
            # Strawberry parses only when no document is set yet.
            context.graphql_document = self.admission.parsed(context.query)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            context.pre_execution_errors = self._errors(document)
        yield

    def _errors(self, document: DocumentNode) -> list[GraphQLError]:
        context = self.execution_context
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        # Strawberry's ``operation_name`` falls back to the first operation's name; only
        # the name the request gave tells whether one was chosen.
        if len(operations) > 1 and context._provided_operation_name is None:
            return [
                GraphQLError(
                    "The document holds several operations: say which one to run with "
                    "operationName.",
                    extensions={"code": "BAD_USER_INPUT"},
                )
            ]
        limits = self.admission.limits
        spent = time.perf_counter() - self.started if self.started else 0.0
        outcome = self.admission.outcome(
            context.query,
            document,
            context.schema._schema,
            context.validation_rules,
            limits.max_analysis_seconds - spent,
        )
        if outcome.errors:
            return list(outcome.errors)
        estimate = estimate_upstream_requests(document, context.variables, context.operation_name)
        if isinstance(context.context, Context):
            context.context.estimated_requests = estimate
        if estimate > limits.max_upstream_requests:
            return [
                _too_complex(
                    f"This operation could need {estimate} upstream requests; the limit is "
                    f"{limits.max_upstream_requests}. Ask for fewer rows or fewer nested "
                    "fields, or split it into several operations.",
                    estimatedUpstreamRequests=estimate,
                    maxUpstreamRequests=limits.max_upstream_requests,
                )
            ]
        return []
