"""Relay global ids and the raw Cliniko ids behind them.

A global id is ``base64("Appointment:1390726237298631770")``, the Relay convention, so
any Relay client can refetch a node with ``node(id:)``.  Arguments that name a known type
(``appointment(id:)``, ``filter.patientIds``) also take the raw Cliniko id, because
that is what people copy from Cliniko's UI.  Raw ids stay strings: they exceed 2^53.
"""

from __future__ import annotations

import base64
import binascii

from appointments_gateway.resolvers.errors import BadUserInput
from appointments_gateway.resolvers.relations import APPOINTMENT, NODE_LOADERS
from appointments_gateway.upstream import InvalidRequest
from appointments_gateway.upstream.filters import validate_id

__all__ = ["NODE_TYPES", "parse_global_id", "parse_id", "to_global_id"]

#: The GraphQL type names that are Relay nodes: appointments and what they link to.
NODE_TYPES = frozenset(NODE_LOADERS)
_NAMED = [APPOINTMENT, *(name for name in NODE_LOADERS if name != APPOINTMENT)]
_EXPECTED = f"an {', '.join(_NAMED[:-1])} or {_NAMED[-1]}"


def to_global_id(type_name: str, raw_id: str) -> str:
    return base64.b64encode(f"{type_name}:{raw_id}".encode()).decode("ascii")


def _is_raw(value: str) -> bool:
    """A Cliniko id in its canonical form (the upstream client's one definition of it)."""
    try:
        validate_id(value)
    except InvalidRequest:
        return False
    return True


def parse_global_id(value: str) -> tuple[str, str]:
    """``(type name, raw id)`` of a global id; ``BadUserInput`` when it is not one."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    type_name, _, raw = decoded.partition(":")
    if type_name not in NODE_TYPES or not _is_raw(raw):
        raise BadUserInput(
            f"{value[:64]!r} is not a valid global id (expected the 'id' of {_EXPECTED})."
        )
    return type_name, raw


def parse_id(value: str, type_name: str, *, argument: str = "id") -> str:
    """The raw Cliniko id named by ``value``, given as a global id or as the raw id."""
    value = value.strip()
    if _is_raw(value):
        return value
    try:
        found_type, raw = parse_global_id(value)
    except BadUserInput:
        raise BadUserInput(
            f"{argument}: {value[:64]!r} is neither a {type_name} global id nor a Cliniko id "
            "(digits, no leading zeros).",
            argument=argument,
        ) from None
    if found_type != type_name:
        raise BadUserInput(
            f"{argument}: the id belongs to a {found_type}, not a {type_name}.",
            argument=argument,
        )
    return raw
