"""Relay connection arguments mapped onto Cliniko's page-number pagination.

Cliniko lists only know ``page`` (1-based) and ``per_page`` (1..100) and answer with the
page's items plus ``total_entries``. A Relay connection asks for ``first``/``after`` or
``last``/``before``. This module turns the one into as few of the other as possible; it is
pure (stdlib only): the caller passes a ``fetch`` coroutine that performs one page request.

Cursors
    A cursor is ``base64url("v1:<offset>:<anchor id>:<scope digest>")`` without padding:

    * ``offset``: the 0-based position of the row in the ordered result. Offsets are what
      page numbers can address, so they are what makes a cursor cheap to resume from.
    * ``anchor id``: the id (``key(node)``) of that row. An offset alone silently goes wrong
      when rows are inserted or removed between two requests; the id lets the next request
      check that the row is still where the cursor says (see *Drift*). Ids stay strings
      end to end (Cliniko ids are 19-digit numbers, beyond a float's 53 bits).
    * ``scope digest``: a digest of the ``scope`` string, which the caller builds with
      :func:`scope_key` from everything that defines the ordered result (filters, sort,
      parent object). Offset 40 of "appointments of patient 1 by start time" means nothing
      for another patient or another order, so such a cursor is refused with
      :class:`PaginationError` instead of returning a plausible-looking wrong page.

    Cursors are opaque to clients; the version prefix lets a later format refuse old ones
    with a clear message. Every :class:`PaginationError` message is safe to show a user.

Window
    ``after`` and ``before`` bound the range: ``after`` at offset *a* means the range starts
    at *a + 1*, ``before`` at offset *b* means it ends before *b*. ``first: n`` takes the
    first *n* rows of the range, ``last: n`` the last *n*. ``first`` and ``last`` together
    are refused (the Relay spec calls the combination confusing; nobody needs it); with
    neither, ``first`` is :data:`DEFAULT_FIRST`. Both must lie in ``1..MAX_WINDOW``.

Cost
    Any window of ``n`` consecutive rows is fetched with pages of one size ``p``: the planner
    (:func:`plan_pages`) picks the ``p`` in 1..100 that needs the fewest pages, and among
    those the smallest ``p`` (fewest rows transferred). For ``n <= 100`` that is ONE request
    whenever some ``p`` in ``n..100`` holds the whole window (``start // p == (end-1) // p``),
    otherwise TWO (two pages of ``p = n`` always suffice). Larger windows need at least
    ``ceil(n / 100)`` pages; the planner finds the true minimum over all page sizes, which is
    sometimes one less than aligning to pages of 100 would cost. Several pages are fetched
    concurrently (if one fails the others are cancelled and that error propagates as is).
    ``need_items=False`` (only ``totalCount``/``pageInfo`` wanted) costs one request of
    ``per_page=1``; the page info then comes from the cursors' offsets, unchecked.

    ``last`` without ``before`` cannot be placed by offset: the total is unknown until a
    response arrives. Instead the first ``n`` rows of the REVERSED order are fetched
    (``PageRequest(reverse=True)``, page 1, ``per_page = n``: one request for ``n <= 100``)
    and turned back round; row ``i`` of that page has offset ``total_entries - 1 - i``. With
    ``after``, rows at offsets ``<= a`` are dropped. The caller implements ``reverse`` by
    flipping every sort key, including its id tie-breaker, so the reversed order is exactly
    the forward order backwards.

Page info
    ``has_previous_page`` is true exactly when rows exist before the first returned row and
    ``has_next_page`` exactly when rows exist after the last returned row, counted in the
    WHOLE result (``total_entries``), not only inside the ``after``/``before`` range. This is
    exact (it never guesses) and is what a "previous"/"next" button needs: a client walking
    forward with ``first``/``after`` sees ``has_previous_page`` true after the first page,
    which the Relay spec allows ("if the server can efficiently determine that elements
    exist prior to ``after``"). Within a range the two readings agree except for the
    discouraged ``first`` + ``before`` / ``last`` + ``after`` combinations, where the row at
    the bounding cursor itself counts as a row after/before the window. With no rows
    returned the window's position decides, so offsets past the end give
    ``has_next_page = False``. ``total_count`` is ``total_entries`` (the largest seen when
    several pages were fetched).

Drift
    Rows can be inserted or removed between a client's two requests, which moves every
    later offset. So when a cursor bounds the window, its anchor row is checked: for
    ``after`` (used with ``first``, or with ``last`` when there is no ``before``) the row at
    *a*, for ``before`` (used with ``last``, or alone with ``first``) the row at *b*. The
    fetch window is widened by that one row whenever the widened window costs no more
    requests than the plain one (usually the case); the anchor is then looked for in every
    fetched row, including the rest of the pages around the window:

    * at its offset: ``drift = 0``, ``realigned = True``;
    * at another offset: the window is rebuilt around it (both cursor bounds shift by the
      same amount), ``drift = found - expected`` (``+k`` when ``k`` rows were inserted
      before it), ``realigned = True``. Only rows already fetched are returned, so the page
      may hold fewer than ``n`` rows (``has_next_page`` stays exact, and the last edge's
      cursor continues correctly); if that would leave NO rows although the realigned
      window has some, it is fetched again by offset, so a client never gets stuck with an
      empty page and no ``endCursor``;
    * not found although its offset was fetched (or no longer exists): the row was deleted,
      or moved further than the fetched pages reach. The plain offsets are used,
      ``drift = None`` and ``realigned = False``: the gateway exposes that in the response
      extensions so a client knows rows may have been skipped or repeated;
    * not found and its offset was not fetched (widening would have cost a request):
      nothing is known, ``drift = None`` and ``realigned = True``.

    When rows of the final window were not fetched for another reason (a ``before`` cursor
    now past the end, so the window slid back), they are fetched by offset: one more
    request, only in that case.

    So ``drift is None`` means "no verdict" and ``realigned`` tells whether that is because
    the anchor was lost (``False``) or was not checked (``True``); :attr:`Slice.anchor_status`
    spells the four cases out.

    Net effect for a client walking forward with ``first``/``after``: ``k`` rows inserted
    before its cursor (where it has already been) shift the anchor to ``a + k``, inside the
    window it asked for when ``k <= n``, and the next page starts right after the anchor:
    no duplicates, no skipped rows. A removed row before the cursor moves the anchor
    backwards, out of reach unless the page happens to cover it; that is reported
    (``realigned = False``). Walking backward with ``last``/``before`` it is the mirror
    image: rows removed before the cursor are realigned, inserted ones are reported.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import enum
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, NamedTuple, TypeAlias, TypeVar

__all__ = [
    "DEFAULT_FIRST",
    "MAX_PAGE_SIZE",
    "MAX_WINDOW",
    "ConnectionArgs",
    "Edge",
    "Fetch",
    "Fetched",
    "PageRequest",
    "PaginationError",
    "Slice",
    "decode_cursor",
    "encode_cursor",
    "first_slice",
    "paginate",
    "plan_pages",
    "scope_key",
]

MAX_PAGE_SIZE = 100
"""Cliniko's largest ``per_page``."""

MAX_WINDOW = 500
"""Largest ``first``/``last`` accepted: at most six concurrent upstream pages."""

DEFAULT_FIRST = 20
"""``first`` when neither ``first`` nor ``last`` is given."""

CURSOR_VERSION = "v1"
_SCOPE_DIGEST_BYTES = 8
_MAX_CURSOR_CHARS = 512
_MAX_OFFSET_DIGITS = 18  # offsets below 10**18: far beyond any list, and a bounded int()
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_DIGITS = re.compile(r"[0-9]+")
_OTHER_VERSION = re.compile(r"v[0-9]{1,4}")

T = TypeVar("T")

AnchorStatus: TypeAlias = Literal["unchecked", "ok", "moved", "lost"]


class PaginationError(ValueError):
    """Bad arguments or cursor; message is safe to show a user (becomes BAD_USER_INPUT)."""


class ConnectionArgs(NamedTuple):
    """A connection field's Relay arguments as the client gave them (see *Window*).

    ``paginate(**args._asdict(), …)`` takes them as they are.
    """

    first: int | None
    after: str | None
    last: int | None
    before: str | None


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One upstream page: ``page`` is 1-based; ``reverse`` fetches the reversed sort order."""

    page: int
    per_page: int
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class Fetched(Generic[T]):
    """What one upstream page returned."""

    items: Sequence[T]
    total_entries: int


Fetch: TypeAlias = Callable[[PageRequest], Awaitable[Fetched[T]]]


@dataclass(frozen=True, slots=True)
class Edge(Generic[T]):
    """One row with its own cursor and its 0-based offset in the ordered result."""

    cursor: str
    node: T
    offset: int


@dataclass(frozen=True, slots=True)
class Slice(Generic[T]):
    """A connection page: edges, exact page info and what it cost.

    ``drift``: ``None`` when no verdict on the cursor's anchor row (not checked, or lost:
    see ``realigned``), ``0`` when it was where the cursor said, ``±k`` when it was found
    ``k`` rows later/earlier and the window was realigned. ``realigned`` is ``False`` only
    when the anchor could not be found and the plain offset was used.
    """

    edges: list[Edge[T]]
    has_previous_page: bool
    has_next_page: bool
    total_count: int
    requests: int
    drift: int | None
    realigned: bool

    @property
    def anchor_status(self) -> AnchorStatus:
        """``unchecked``, ``ok`` (drift 0), ``moved`` (realigned by ``drift``) or ``lost``."""
        if not self.realigned:
            return "lost"
        if self.drift is None:
            return "unchecked"
        return "ok" if self.drift == 0 else "moved"

    @property
    def start_cursor(self) -> str | None:
        return self.edges[0].cursor if self.edges else None

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1].cursor if self.edges else None


# --- cursors ---------------------------------------------------------------------------


def _scope_digest(scope: str) -> str:
    digest = hashlib.blake2b(scope.encode(), digest_size=_SCOPE_DIGEST_BYTES)
    return digest.hexdigest()


def _canonical(value: object) -> object:
    """A JSON-able form of ``value`` that is the same in every process.

    Sets are sorted (their iteration order depends on hash randomisation), enums become
    their values, dates their ISO form, dataclasses their fields; anything else its repr.
    """
    if isinstance(value, enum.Enum):
        return _canonical(value.value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        items = [_canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {type(value).__qualname__: _canonical(fields)}
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return str(isoformat())
    return repr(value)


def scope_key(*parts: object) -> str:
    """A stable 20-hex-char digest of what defines an ordered result.

    Pass everything that changes which rows are listed or in which order: the field or
    parent (``"patient", patient_id``), the filter values, the sort. Mappings are
    compared by content, not insertion order; sets by their sorted members.
    """
    text = json.dumps(_canonical(list(parts)), sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def encode_cursor(offset: int, anchor_id: str, scope: str) -> str:
    """The opaque cursor of the row at ``offset`` whose id is ``anchor_id``."""
    if offset < 0:
        raise ValueError(f"cursor offset must not be negative: {offset}")
    text = f"{CURSOR_VERSION}:{offset}:{anchor_id}:{_scope_digest(scope)}"
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode("ascii")


_INVALID_CURSOR = "is not a valid cursor; pass a cursor exactly as this API returned it"


def decode_cursor(cursor: str, scope: str) -> tuple[int, str]:
    """``(offset, anchor_id)`` of a cursor issued for ``scope``, else :class:`PaginationError`."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= _MAX_CURSOR_CHARS:
        raise PaginationError(f"The cursor {_INVALID_CURSOR}.")
    if not _BASE64URL.fullmatch(cursor) or len(cursor) % 4 == 1:
        raise PaginationError(f"The cursor {_INVALID_CURSOR}.")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        text = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise PaginationError(f"The cursor {_INVALID_CURSOR}.") from None
    version = text.split(":", 1)[0]
    if version != CURSOR_VERSION and _OTHER_VERSION.fullmatch(version):
        raise PaginationError(
            "The cursor comes from an unsupported cursor version; start again without after/before."
        )
    parts = text.split(":", 2)
    if version != CURSOR_VERSION or len(parts) != 3 or ":" not in parts[2]:
        raise PaginationError(f"The cursor {_INVALID_CURSOR}.")
    _, offset_text, rest = parts
    anchor_id, digest = rest.rsplit(":", 1)
    if offset_text.startswith("-") and _DIGITS.fullmatch(offset_text[1:]):
        raise PaginationError("The cursor names a negative offset; it is not a valid cursor.")
    if not _DIGITS.fullmatch(offset_text) or len(offset_text) > _MAX_OFFSET_DIGITS:
        raise PaginationError(f"The cursor {_INVALID_CURSOR}.")
    if digest != _scope_digest(scope):
        raise PaginationError(
            "The cursor was issued for a different filter or order (or another parent "
            "object); start again without after/before."
        )
    return int(offset_text), anchor_id


# --- planning --------------------------------------------------------------------------


def plan_pages(start: int, end: int, *, reverse: bool = False) -> list[PageRequest]:
    """The fewest consecutive same-size pages holding rows ``start..end-1`` (0-based).

    Among the page sizes needing the fewest pages, the smallest wins (fewest rows sent).
    For ``end - start <= 100`` that is one page if any size in ``n..100`` holds the
    window, else two.
    """
    if start < 0 or end <= start:
        raise ValueError(f"empty or negative window: {start}..{end}")
    best_count, best_size = end - start, 1  # per_page=1: one page per row
    for size in range(2, MAX_PAGE_SIZE + 1):
        count = (end - 1) // size - start // size + 1
        if count < best_count:
            best_count, best_size = count, size
    first_page = start // best_size + 1
    return [PageRequest(first_page + i, best_size, reverse) for i in range(best_count)]


async def _fetch_all(fetch: Fetch[T], requests: Sequence[PageRequest]) -> tuple[dict[int, T], int]:
    """Rows by index (in the requested direction) and the largest total_entries seen.

    Several pages run concurrently; if one fails the others are cancelled and the first
    failure propagates unchanged (no ExceptionGroup for the caller to unwrap).
    """
    results: list[Fetched[T]]
    if len(requests) == 1:
        results = [await fetch(requests[0])]
    else:
        tasks = [asyncio.ensure_future(fetch(request)) for request in requests]
        try:
            results = list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
    rows: dict[int, T] = {}
    total = 0
    for request, result in zip(requests, results, strict=True):
        total = max(total, result.total_entries)
        base = (request.page - 1) * request.per_page
        for i, item in enumerate(result.items[: request.per_page]):
            rows[base + i] = item
    return rows, total


# --- paginate --------------------------------------------------------------------------


def _count(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PaginationError(f"`{name}` must be an integer between 1 and {MAX_WINDOW}.")
    if not 1 <= value <= MAX_WINDOW:
        raise PaginationError(f"`{name}` must be between 1 and {MAX_WINDOW} (got {value}).")
    return value


def _cursor(name: str, cursor: str | None, scope: str) -> tuple[int, str] | None:
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor, scope)
    except PaginationError as error:
        raise PaginationError(f"`{name}`: {error}") from None


def _check_anchor(
    rows: Mapping[int, T], key: Callable[[T], str], expected: int, anchor_id: str, total: int
) -> tuple[AnchorStatus, int]:
    """Where the anchor row is among the fetched rows, and how far it moved."""
    if expected in rows and key(rows[expected]) == anchor_id:
        return "ok", 0
    hits = [offset for offset, row in rows.items() if key(row) == anchor_id]
    if hits:
        found = min(hits, key=lambda offset: abs(offset - expected))
        return "moved", found - expected
    if expected in rows or expected >= total:
        return "lost", 0
    return "unchecked", 0


def _window(
    n: int, forward: bool, lo: int, hi: int | None, total: int | None = None
) -> tuple[int, int]:
    """``[start, end)`` of the requested rows; clipped to ``total`` when it is known."""
    if total is not None:
        hi = total if hi is None else min(hi, total)
    if forward:
        start = lo
        end = lo + n if hi is None else min(lo + n, hi)
    else:
        assert hi is not None, "last without before is fetched from the end"
        end = hi
        start = max(lo, hi - n)
    if total is not None:
        start = min(start, total)
    return start, max(start, end)


def _edge(offset: int, node: T, key: Callable[[T], str], scope: str) -> Edge[T]:
    return Edge(encode_cursor(offset, key(node), scope), node, offset)


def _slice(
    edges: list[Edge[T]],
    window: tuple[int, int],
    total: int,
    requests: int,
    status: AnchorStatus,
    drift: int,
) -> Slice[T]:
    """The page info comes from the rows returned, or from the window when there are none."""
    first, after_last = (edges[0].offset, edges[-1].offset + 1) if edges else window
    return Slice(
        edges=edges,
        has_previous_page=min(first, total) > 0,
        has_next_page=after_last < total,
        total_count=total,
        requests=requests,
        drift=drift if status in ("ok", "moved") else None,
        realigned=status != "lost",
    )


async def paginate(
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    scope: str,
    fetch: Fetch[T],
    key: Callable[[T], str],
    need_items: bool = True,
) -> Slice[T]:
    """Resolve Relay arguments with the fewest upstream page requests (see module docs).

    ``scope`` identifies the ordered result (build it with :func:`scope_key`); ``key``
    returns a node's id, stored in cursors to detect drift. Raises :class:`PaginationError`
    for invalid arguments or cursors before any request is made.
    """
    first = _count("first", first)
    last = _count("last", last)
    if first is not None and last is not None:
        raise PaginationError("Pass either `first` or `last`, not both.")
    forward = last is None
    n = first if first is not None else (last if last is not None else DEFAULT_FIRST)
    after_cursor = _cursor("after", after, scope)
    before_cursor = _cursor("before", before, scope)
    lo = after_cursor[0] + 1 if after_cursor else 0
    hi = before_cursor[0] if before_cursor else None

    def edge(offset: int, node: T) -> Edge[T]:
        return _edge(offset, node, key, scope)

    if not need_items:
        _, total = await _fetch_all(fetch, [PageRequest(1, 1)])
        if not forward and hi is None:
            hi = total  # `last` alone: the window ends at the end
        window = _window(n, forward, lo, hi, total)
        return _slice([], window, total, 1, "unchecked", 0)

    if not forward and hi is None:
        # `last` with no end bound: the first n rows of the reversed order, turned round.
        requests = plan_pages(0, n, reverse=True)
        reversed_rows, total = await _fetch_all(fetch, requests)
        rows = {total - 1 - i: row for i, row in reversed_rows.items() if i < total}
        status: AnchorStatus = "unchecked"
        drift = 0
        if after_cursor is not None:
            status, drift = _check_anchor(rows, key, after_cursor[0], after_cursor[1], total)
            lo += drift
        start, end = _window(n, False, lo, total, total)
        edges = [edge(o, rows[o]) for o in range(start, end) if o in rows]
        return _slice(edges, (start, end), total, len(requests), status, drift)

    # Both ends known as offsets (first, or last with before).
    start, end = _window(n, forward, lo, hi)
    anchor: tuple[int, str] | None
    if forward:
        anchor = after_cursor or before_cursor
    else:
        anchor = before_cursor
    fetch_start, fetch_end = (start, end) if end > start else (start, start + 1)
    requests = plan_pages(fetch_start, fetch_end)
    if anchor is not None and anchor[0] in (start - 1, end):
        # Fetch the anchor row too (the row just before or just after the window) when
        # that costs no extra request.
        wider = plan_pages(min(fetch_start, anchor[0]), max(fetch_end, anchor[0] + 1))
        if len(wider) <= len(requests):
            requests = wider
    rows, total = await _fetch_all(fetch, requests)
    count = len(requests)
    status, drift = "unchecked", 0
    if anchor is not None:
        status, drift = _check_anchor(rows, key, anchor[0], anchor[1], total)
        if status == "moved":
            # The range moved by `drift`: shift the bounds that come from cursors.
            lo = max(0, lo + drift) if after_cursor else 0
            hi = max(0, hi + drift) if hi is not None else None
    start, end = _window(n, forward, lo, hi, total)
    edges = [edge(o, rows[o]) for o in range(start, end) if o in rows]
    if len(edges) < end - start and (status != "moved" or not edges):
        # Rows of the final window were not fetched. Either the window was realigned past
        # everything fetched (fetch it by offset, so the client gets rows and an endCursor
        # rather than an empty page it cannot leave), or rows were removed so that the
        # `before` cursor now lies past the end and the window slid back.
        top_up = plan_pages(start, end)
        more, total = await _fetch_all(fetch, top_up)
        count += len(top_up)
        start, end = _window(n, forward, lo, hi, total)
        edges = [edge(o, more[o]) for o in range(start, end) if o in more]
    return _slice(edges, (start, end), total, count, status, drift)


def first_slice(
    rows: Sequence[T],
    n: int,
    *,
    scope: str,
    key: Callable[[T], str],
    need_items: bool = True,
) -> Slice[T]:
    """``first: n`` (no cursor) of an ordered result whose first rows the caller holds.

    ``rows`` is the whole result, or at least its first ``n + 1`` rows: the edges, their
    cursors and the page info are then exactly what :func:`paginate` would return for
    the same window (``has_next_page`` is exact either way).  ``total_count`` is
    ``len(rows)``, so it is exact only when ``rows`` is the whole result.  Nothing is
    fetched (``requests`` is 0) and no cursor was given (the anchor is unchecked).
    """
    total = len(rows)
    window = _window(n, True, 0, None, total)
    edges = [_edge(o, rows[o], key, scope) for o in range(*window)] if need_items else []
    return _slice(edges, window, total, 0, "unchecked", 0)
