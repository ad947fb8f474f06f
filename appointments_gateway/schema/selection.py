"""What a query selected below a field, so a list resolver can fetch related rows once.

Per-item ``async`` resolvers cost ~18 µs each (graphql-core makes every awaitable a
task; PERFORMANCE.md §3), so list resolvers look ahead instead: they read which
relations the query selects under the nodes and load each one for the whole page in
one batch.  Fragments are flattened; a fragment for another type is ignored.  The
look-ahead may over-fetch (it does not evaluate ``@skip``/``@include``) but never
under-fetches: a relation it missed still resolves, through its loader.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

__all__ = [
    "ID_ONLY_FIELDS",
    "field_names",
    "fields_named",
    "needs_more_than_id",
    "sub_selections",
]

#: Fields a related object can answer from the link in the parent row alone.
ID_ONLY_FIELDS = frozenset({"id", "clinikoId", "__typename"})


def _flatten(selections: Iterable[Selection], type_names: frozenset[str]) -> list[SelectedField]:
    out: list[SelectedField] = []
    for selection in selections:
        if isinstance(selection, SelectedField):
            out.append(selection)
        elif isinstance(selection, (InlineFragment, FragmentSpread)):
            condition = selection.type_condition
            if condition is None or condition in type_names:
                out.extend(_flatten(selection.selections, type_names))
    return out


def fields_named(
    selections: Iterable[Selection], name: str, type_names: frozenset[str]
) -> list[SelectedField]:
    """Every selection of field ``name`` (under any alias) on an object of ``type_names``."""
    return [field for field in _flatten(selections, type_names) if field.name == name]


def sub_selections(fields: Sequence[Selection]) -> list[Selection]:
    """The union of what the given selections of one field select below it."""
    out: list[Selection] = []
    for field in fields:
        out.extend(field.selections)
    return out


def needs_more_than_id(selections: Iterable[Selection], type_names: frozenset[str]) -> bool:
    """Whether an object's selection asks for anything beyond what its link gives."""
    return any(field.name not in ID_ONLY_FIELDS for field in _flatten(selections, type_names))


def field_names(selections: Iterable[Selection], type_names: frozenset[str]) -> set[str]:
    """The names of the fields selected directly on an object of ``type_names``."""
    return {field.name for field in _flatten(selections, type_names)}
