"""Turn Cliniko's ``q[]``, ``sort``, ``order``, ``page`` and ``per_page`` into SQL.

Filter syntax is ``<field>:<operator><value>``; repeated ``q[]`` are ANDed. Operators per type
(UPSTREAM.md 4.1): numeric ``= != > >= < <= ? !?`` (``=`` takes a comma list), date-time
``> >= < <= ? !? *``, date ``= > >= < <= ? !?`` (``=`` takes ``*`` wildcards such as
``****-05-**``), string ``= != ~ ~~ ? !?``, boolean ``= !=``, array ``~``.

Every value becomes a bound parameter; every column name comes from the whitelist in
:mod:`.resources`. Problems raise :class:`QueryError` (answered as 400 with ``{"message"}``).

Choices where Cliniko is silent (documented here, relied on by tests):

* Date-time values need a zone (``Z`` or ``+10:00``); offsets are converted to UTC and
  fractional seconds are accepted and compared exactly (stored times are whole seconds).
* ``per_page`` outside 1..100 and ``page`` below 1 are refused with 400 rather than clamped.
* ``sort`` accepts the resource's date-time fields and ``id``; ``id`` is always appended as a
  final ascending tie-breaker so paging is stable, unless ``sort`` already names ``id``
  (``sort=starts_at:desc,id:desc`` ends with ``id DESC``). A field repeated in ``sort`` is
  not an error: its first occurrence decides, later ones are ignored (they could never change
  the order, as in SQL). ``order=asc|desc`` (deprecated) sets the direction of sort fields
  that do not give one.
* String ``~`` is a case-insensitive (ASCII) substring match; ``~~`` is a ``LIKE`` pattern in
  which ``%`` is the wildcard.

Not imitated: Cliniko's exact 400 wording and body shape (unknown), any cap on comma-list length.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .resources import OPERATORS, FieldType, Resource
from .timefmt import format_ts, parse_ts

__all__ = ["Page", "QueryError", "WhereClause", "parse_filters", "parse_page", "parse_sort"]

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 100

# Longest operators first, so "!=" is not read as "!" and "~~" is not read as "~".
_OPERATOR_TOKENS = ("!?", "!=", ">=", "<=", "~~", "=", ">", "<", "?", "~", "*")
_FIELD = re.compile(r"^[a-z_]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_PATTERN = re.compile(r"^[\d*]{4}-[\d*]{2}-[\d*]{2}$")
_SQL_OPS = {"=": "=", "!=": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


class QueryError(Exception):
    """A bad ``q[]``, ``sort``, ``page`` or ``per_page``; the message is shown to the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class WhereClause:
    """SQL conditions (ANDed) with their parameters, and the columns the filters named."""

    conditions: list[str] = field(default_factory=list)
    params: list[object] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)

    def sql(self) -> str:
        """The conditions joined for a ``WHERE`` clause (``1=1`` when empty)."""
        return " AND ".join(f"({c})" for c in self.conditions) if self.conditions else "1=1"


@dataclass(frozen=True)
class Page:
    """Requested page number and size."""

    number: int
    size: int

    @property
    def offset(self) -> int:
        """Rows to skip."""
        return (self.number - 1) * self.size


def parse_filters(
    raw: Sequence[str], allowed: dict[str, FieldType], resource: Resource
) -> WhereClause:
    """Parse every ``q[]`` value and add the resource's hidden-row rules.

    Args:
        raw: The ``q[]`` values in request order.
        allowed: The filters this endpoint documents (list and get differ).
        resource: Supplies the hidden columns: a hidden column that no filter names gets
            ``IS NULL``, so cancelled/archived rows only show when asked for.
    """
    where = WhereClause()
    for item in raw:
        name, sep, rest = item.partition(":")
        if not sep or not _FIELD.match(name):
            raise QueryError(f"Invalid filter {item!r}: expected <field>:<operator><value>.")
        kind = allowed.get(name)
        if kind is None:
            raise QueryError(f"{name} is not filterable")
        operator = next((t for t in _OPERATOR_TOKENS if rest.startswith(t)), None)
        if operator is None or operator not in OPERATORS[kind]:
            shown = operator if operator is not None else rest[:2]
            raise QueryError(f"Operator {shown!r} is not supported for {kind.value} filter {name}")
        value = rest[len(operator) :]
        _add_condition(where, name, kind, operator, value)
        where.touched.add(name)
    for column in resource.hidden:
        if column not in where.touched:
            where.conditions.append(f"{column} IS NULL")
    return where


def _add_condition(
    where: WhereClause, column: str, kind: FieldType, operator: str, value: str
) -> None:
    if operator in ("?", "!?", "*"):
        if value:
            raise QueryError(f"Operator {operator!r} on {column} takes no value, got {value!r}")
        if operator == "*":
            return  # any value: only lifts the hidden-row rule
        where.conditions.append(f"{column} IS {'NOT ' if operator == '?' else ''}NULL")
        return
    if kind is FieldType.NUMERIC:
        if operator == "=":
            numbers = [_number(column, part) for part in value.split(",")]
            where.conditions.append(f"{column} IN (SELECT value FROM json_each(?))")
            where.params.append(json.dumps(numbers))
        else:
            where.conditions.append(f"{column} {_SQL_OPS[operator]} ?")
            where.params.append(_number(column, value))
    elif kind is FieldType.DATETIME:
        where.conditions.append(f"{column} {_SQL_OPS[operator]} ?")
        where.params.append(_datetime_bound(column, operator, value))
    elif kind is FieldType.DATE:
        if operator == "=" and "*" in value:
            if not _DATE_PATTERN.match(value):
                raise QueryError(f"Filter value for {column} must be a date (YYYY-MM-DD)")
            where.conditions.append(f"{column} LIKE ?")
            where.params.append(value.replace("*", "_"))
        else:
            if not _DATE.match(value) or not _valid_date(value):
                raise QueryError(f"Filter value for {column} must be a date (YYYY-MM-DD)")
            where.conditions.append(f"{column} {_SQL_OPS[operator]} ?")
            where.params.append(value)
    elif kind is FieldType.STRING:
        if operator == "~":
            escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.conditions.append(f"{column} LIKE ? ESCAPE '\\'")
            where.params.append(f"%{escaped}%")
        elif operator == "~~":
            where.conditions.append(f"{column} LIKE ?")
            where.params.append(value)
        else:
            where.conditions.append(f"{column} {_SQL_OPS[operator]} ?")
            where.params.append(value)
    elif kind is FieldType.BOOLEAN:
        if value not in ("true", "false"):
            raise QueryError(f"Filter value for {column} must be true or false")
        where.conditions.append(f"{column} {_SQL_OPS[operator]} ?")
        where.params.append(1 if value == "true" else 0)
    else:  # ARRAY, operator "~": the array contains the value
        _number(column, value)
        where.conditions.append(f"EXISTS (SELECT 1 FROM json_each({column}) WHERE value = ?)")
        where.params.append(value)


def _number(column: str, value: str) -> int:
    if not re.fullmatch(r"-?\d{1,19}", value.strip()):
        raise QueryError(f"Filter value for {column} must be a number")
    number = int(value)
    if not -(2**63) <= number < 2**63:
        raise QueryError(f"Filter value for {column} must be a number")
    return number


def _valid_date(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _datetime_bound(column: str, operator: str, value: str) -> str:
    parsed = parse_ts(value)
    if parsed is None:
        raise QueryError(
            f"Filter value for {column} must be a UTC date-time like 2014-08-30T18:00:00Z"
        )
    if parsed.microsecond:
        # Stored times are whole seconds: "t > 10.5" is "t > 10", "t >= 10.5" is "t >= 11".
        parsed = parsed.replace(microsecond=0)
        if operator in (">=", "<"):
            parsed += timedelta(seconds=1)
    return format_ts(parsed)


def parse_sort(sort: str | None, order: str | None, resource: Resource) -> str:
    """An ``ORDER BY`` clause from ``sort`` and the deprecated ``order`` parameter."""
    if order is not None and order not in ("asc", "desc"):
        raise QueryError(f"order must be asc or desc, got {order!r}")
    default_direction = (order or "asc").upper()
    terms: dict[str, str] = {}  # field -> direction; the first occurrence of a field wins
    for part in (sort or "created_at").split(","):
        name, _, direction = part.strip().partition(":")
        if name not in resource.sortable:
            raise QueryError(f"{name or part!r} is not sortable")
        if direction and direction not in ("asc", "desc"):
            raise QueryError(f"Sort direction for {name} must be asc or desc, got {direction!r}")
        terms.setdefault(name, direction.upper() or default_direction)
    terms.setdefault("id", "ASC")
    return ", ".join(f"{name} {direction}" for name, direction in terms.items())


def parse_page(page: str | None, per_page: str | None) -> Page:
    """Validate ``page`` (default 1) and ``per_page`` (default 50, 1..100)."""
    number = _positive_int("page", page, 1)
    size = _positive_int("per_page", per_page, DEFAULT_PER_PAGE)
    if size > MAX_PER_PAGE:
        raise QueryError(f"per_page must be between 1 and {MAX_PER_PAGE}, got {per_page}")
    return Page(number, size)


def _positive_int(name: str, raw: str | None, default: int) -> int:
    if raw is None:
        return default
    if not re.fullmatch(r"\d{1,9}", raw) or int(raw) < 1:
        if name == "per_page":
            raise QueryError(f"per_page must be between 1 and {MAX_PER_PAGE}, got {raw}")
        raise QueryError(f"{name} must be a positive integer, got {raw}")
    return int(raw)
