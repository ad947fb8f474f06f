"""Error masking: expected errors keep their message and code; anything else is masked.

A resolver raises a ``GatewayError`` for everything it expects (bad input, not found,
upstream faults), and those reach the client as they are, with ``extensions.code``.
Anything else raised while resolving a field (it has a ``path``) is a bug: its message
could carry a record, so the client sees only ``INTERNAL_SERVER_ERROR``.  Errors without
a path are the client's request at fault, reported as ``BAD_USER_INPUT`` with
graphql-core's message: parse and validation errors, and a variable or literal that a
scalar refused (its ``ValueError`` is the original error, and its message is written
for the caller, e.g. a ``DateTime`` without a time zone).
"""

from __future__ import annotations

import logging
import re

from graphql import GraphQLError
from strawberry.exceptions import StrawberryException
from strawberry.extensions import MaskErrors

from appointments_gateway.observability import current_request_id
from appointments_gateway.observability.logs import FIELDS, describe_exception
from appointments_gateway.resolvers.errors import GatewayError

__all__ = [
    "GatewayErrors",
    "code_for",
    "is_unexpected",
    "log_unexpected",
]

logger = logging.getLogger("appointments_gateway.errors")


#: The message of the token limit, the one limit enforced by graphql-core's parser
#: rather than by admission (which codes its own refusals); a test pins it, so a
#: reworded message fails loudly.
_OVER_LIMIT = re.compile(r"^Syntax Error: Document contains more than \d+ tokens")


def code_for(error: GraphQLError) -> str:
    """The code of an error that carries none: the client's document is at fault.

    Parse and validation errors come without one (and a parse error never reaches the
    extensions at all, so the HTTP view calls this too).
    """
    return "QUERY_TOO_COMPLEX" if _OVER_LIMIT.search(error.message) else "BAD_USER_INPUT"


def _is_expected(error: GraphQLError) -> bool:
    return isinstance(error.original_error, GatewayError)


def is_unexpected(error: GraphQLError) -> bool:
    """A bug: raised while resolving, and not one of the gateway's own errors.

    Raised while resolving means a field's path, or, for a subscription, an exception
    its event stream raised: Strawberry wraps that one with neither a path nor a node.
    Errors with an original error but no path that *do* name a node are the client's
    (a variable a scalar refused), and Strawberry's refusals before execution wrap its
    own exceptions; neither is masked.
    """
    original = error.original_error
    if original is None or _is_expected(error):
        return False
    if error.path is not None:
        return True
    return not error.nodes and not isinstance(original, GraphQLError | StrawberryException)


def log_unexpected(error: GraphQLError) -> None:
    """One ERROR line for a masked error: request id, field path, exception type, frames.

    The exception's message and arguments are left out on purpose (see
    ``observability.logs``): they may quote a record.  The path holds field names and
    list indices only.
    """
    original = error.original_error
    assert original is not None
    fields = {
        "request_id": current_request_id(),
        "graphql_path": error.path,
        "exception": describe_exception(original),
    }
    logger.error("unexpected error (masked as INTERNAL_SERVER_ERROR)", extra={FIELDS: fields})


class GatewayErrors(MaskErrors):
    """Masks unexpected errors and gives every error an ``extensions.code``.

    A masked error carries the request id (``extensions.requestId``, also the response's
    ``X-Request-Id``), which finds its log line.
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message="Internal server error.")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        request_id = current_request_id()
        if request_id is not None:
            masked.extensions["requestId"] = request_id
        return masked

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            original = error.original_error
            if isinstance(original, GatewayError):
                error.extensions = {**(error.extensions or {}), **original.extensions}
            elif not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": code_for(error)}
        return processed
