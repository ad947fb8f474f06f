from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appointments_gateway.resolvers.pagination import (
    DEFAULT_FIRST,
    MAX_PAGE_SIZE,
    MAX_WINDOW,
    Fetched,
    PageRequest,
    PaginationError,
    Slice,
    decode_cursor,
    encode_cursor,
    first_slice,
    paginate,
    plan_pages,
    scope_key,
)

SCOPE = scope_key("appointments", {"patient_id": "1"}, ["starts_at", "id"])
BIG_ID = "9223372036854775807"


def make_ids(length: int) -> list[str]:
    # 19-digit ids, beyond a float's precision: any float round trip would corrupt them
    return [str(9_000_000_000_000_000_000 + i) for i in range(length)]


class FakeUpstream:
    """A Cliniko list over a Python list: page/per_page/reverse and total_entries, exactly."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = list(ids)
        self.requests: list[PageRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail_page: int | None = None  # that page fails; the others hang until cancelled
        self.cancelled = 0

    async def fetch(self, request: PageRequest) -> Fetched[str]:
        assert 1 <= request.per_page <= MAX_PAGE_SIZE, request
        assert request.page >= 1, request
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # let concurrent requests overlap
            if request.page == self.fail_page:
                raise RuntimeError("upstream 503")
            if self.fail_page is not None:
                await asyncio.Event().wait()
            await asyncio.sleep(0)
            rows = self.ids[::-1] if request.reverse else self.ids
            start = (request.page - 1) * request.per_page
            return Fetched(rows[start : start + request.per_page], len(self.ids))
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1

    def reset(self) -> None:
        self.requests.clear()
        self.max_in_flight = 0


def ident(node: str) -> str:
    return node


async def page(
    upstream: FakeUpstream,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    need_items: bool = True,
    scope: str = SCOPE,
) -> Slice[str]:
    upstream.reset()
    result = await paginate(
        first=first,
        after=after,
        last=last,
        before=before,
        scope=scope,
        fetch=upstream.fetch,
        key=ident,
        need_items=need_items,
    )
    assert result.requests == len(upstream.requests)
    return result


def nodes(result: Slice[str]) -> list[str]:
    return [edge.node for edge in result.edges]


def cursor_at(ids: list[str], offset: int) -> str:
    anchor = ids[offset] if offset < len(ids) else "gone"
    return encode_cursor(offset, anchor, SCOPE)


def brute_single_page(start: int, end: int) -> int | None:
    """Smallest per_page in n..100 whose one page holds [start, end), else None."""
    for p in range(end - start, MAX_PAGE_SIZE + 1):
        if start // p == (end - 1) // p:
            return p
    return None


def brute_min_pages(start: int, end: int) -> int:
    return min((end - 1) // p - start // p + 1 for p in range(1, MAX_PAGE_SIZE + 1))


def assert_covers(requests: list[PageRequest], start: int, end: int) -> None:
    sizes = {r.per_page for r in requests}
    assert len(sizes) == 1
    p = sizes.pop()
    pages = [r.page for r in requests]
    assert pages == list(range(pages[0], pages[0] + len(pages)))  # consecutive
    assert (pages[0] - 1) * p <= start
    assert pages[-1] * p >= end


# --- planner -----------------------------------------------------------------------------


def test_planner_matches_brute_force_for_every_small_window() -> None:
    for start in range(0, 230):
        for n in range(1, MAX_PAGE_SIZE + 1):
            end = start + n
            requests = plan_pages(start, end)
            assert_covers(requests, start, end)
            single = brute_single_page(start, end)
            if single is not None:
                assert requests == [PageRequest(start // single + 1, single)]
            else:
                assert len(requests) == 2


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(start=st.integers(0, 10**6), n=st.integers(1, MAX_WINDOW + 1))
def test_planner_is_minimal_at_any_offset(start: int, n: int) -> None:
    end = start + n
    requests = plan_pages(start, end)
    assert_covers(requests, start, end)
    if n <= MAX_PAGE_SIZE:
        single = brute_single_page(start, end)
        assert len(requests) == (1 if single is not None else 2)
    assert len(requests) == brute_min_pages(start, end)
    assert len(requests) >= -(-n // MAX_PAGE_SIZE)
    aligned_to_100 = (end - 1) // 100 - start // 100 + 1
    assert len(requests) <= aligned_to_100


def test_planner_reverse_flag_and_bad_windows() -> None:
    assert plan_pages(0, 37, reverse=True) == [PageRequest(1, 37, reverse=True)]
    with pytest.raises(ValueError, match="empty"):
        plan_pages(5, 5)
    with pytest.raises(ValueError, match="negative"):
        plan_pages(-1, 5)


# --- property: any window equals the Python slice -------------------------------------


@st.composite
def windows(draw: st.DrawFn) -> tuple[int, dict[str, int | None], bool]:
    length = draw(st.integers(0, 1000))
    forward = draw(st.booleans())
    n = draw(st.one_of(st.integers(1, 120), st.integers(1, MAX_WINDOW)))
    bound = st.one_of(st.none(), st.integers(0, length + 50))
    return length, {"n": n, "after": draw(bound), "before": draw(bound)}, forward


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(case=windows())
def test_any_window_equals_the_python_slice(case: tuple[int, dict[str, int | None], bool]) -> None:
    length, args, forward = case
    n, a, b = args["n"], args["after"], args["before"]
    assert n is not None
    ids = make_ids(length)
    upstream = FakeUpstream(ids)
    after = cursor_at(ids, a) if a is not None else None
    before = cursor_at(ids, b) if b is not None else None
    if forward:
        result = asyncio.run(page(upstream, first=n, after=after, before=before))
    else:
        result = asyncio.run(page(upstream, last=n, after=after, before=before))

    lo = a + 1 if a is not None else 0
    in_range = ids[lo:b] if b is not None else ids[lo:]
    expected = in_range[:n] if forward else in_range[-n:] if in_range else []
    assert nodes(result) == expected
    assert result.total_count == length
    for edge in result.edges:
        assert ids[edge.offset] == edge.node
        assert decode_cursor(edge.cursor, SCOPE) == (edge.offset, edge.node)
    if result.edges:
        assert result.has_previous_page == (result.edges[0].offset > 0)
        assert result.has_next_page == (result.edges[-1].offset < length - 1)
    elif lo >= length:
        assert not result.has_next_page

    # The anchor is where the cursor says unless the cursor points past the end.
    stale = any(x >= length for x in (a, b) if x is not None)
    if stale:
        # A cursor past the end (rows were removed): the window that slid back may cost
        # one more fetch.
        assert result.anchor_status != "moved"
        assert result.requests <= 2 * (-(-n // MAX_PAGE_SIZE) + 1)
    else:
        assert result.realigned
        assert result.drift in (None, 0)

    # Cost.
    if stale:
        pass
    elif not forward and b is None:
        assert result.requests == len(plan_pages(0, n)) == -(-n // MAX_PAGE_SIZE)
        assert all(r.reverse and r.page <= 5 for r in upstream.requests)
    else:
        end = (lo + n if b is None else min(lo + n, b)) if forward else b
        assert end is not None
        start = lo if forward else max(lo, end - n)
        if end > start:
            assert result.requests <= len(plan_pages(start, end))
            if end - start <= MAX_PAGE_SIZE:
                assert result.requests <= 2
                if brute_single_page(start, end) is not None:
                    assert result.requests == 1
        else:
            assert result.requests == 1
    if result.requests > 1 and not stale:
        assert upstream.max_in_flight == result.requests  # all pages were in flight at once


# --- cost of representative windows -------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "after_offset", "expected", "status"),
    [
        (20, None, [PageRequest(1, 20)], "unchecked"),
        (20, 19, [PageRequest(1, 40)], "ok"),  # anchor (19) and rows 20..39 in one page
        (37, 36, [PageRequest(1, 74)], "ok"),  # anchor 36 + rows 37..73 = page 1 of 74
        (37, 73, [PageRequest(2, 56)], "ok"),  # anchor 73 + rows 74..110 lie in 56..111
        (37, 110, [PageRequest(3, 50)], "ok"),  # rows 110..147 lie in 100..149
        (100, None, [PageRequest(1, 100)], "unchecked"),
        # rows 100..199 are page 2 of 100; widening to the anchor would cost a second page,
        # so the anchor is not fetched and not checked
        (100, 99, [PageRequest(2, 100)], "unchecked"),
        # 101 rows with the anchor: no single page holds them, two of 63 do (126..251)
        (100, 149, [PageRequest(3, 63), PageRequest(4, 63)], "ok"),
        # 151 rows with the anchor (89..239): pages of 100 would need three, 80 needs two
        (150, 89, [PageRequest(2, 80), PageRequest(3, 80)], "ok"),
        (500, None, [PageRequest(i, 100) for i in range(1, 6)], "unchecked"),
    ],
)
async def test_request_plans_for_representative_windows(
    first: int, after_offset: int | None, expected: list[PageRequest], status: str
) -> None:
    ids = make_ids(1000)
    upstream = FakeUpstream(ids)
    after = cursor_at(ids, after_offset) if after_offset is not None else None
    result = await page(upstream, first=first, after=after)
    start = after_offset + 1 if after_offset is not None else 0
    assert nodes(result) == ids[start : start + first]
    assert upstream.requests == expected
    assert result.anchor_status == status


async def test_large_windows_are_fetched_concurrently() -> None:
    ids = make_ids(1000)
    upstream = FakeUpstream(ids)
    result = await page(upstream, first=250, after=cursor_at(ids, 89))
    assert nodes(result) == ids[90:340]
    assert result.requests == brute_min_pages(89, 340) == 3
    assert upstream.max_in_flight == 3
    assert result.drift == 0


async def test_a_failing_page_cancels_its_siblings_and_propagates_unchanged() -> None:
    upstream = FakeUpstream(make_ids(1000))
    upstream.fail_page = 1
    with pytest.raises(RuntimeError, match="upstream 503"):
        await paginate(
            first=500,
            after=None,
            last=None,
            before=None,
            scope=SCOPE,
            fetch=upstream.fetch,
            key=ident,
        )
    assert upstream.in_flight == 0
    assert upstream.cancelled == 4


# --- walking -----------------------------------------------------------------------------


async def test_walking_forward_yields_every_row_once_in_order() -> None:
    ids = make_ids(1000)
    upstream = FakeUpstream(ids)
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        result = await page(upstream, first=37, after=after)
        pages += 1
        assert result.requests <= 2
        assert result.drift == (None if after is None else 0)
        seen += nodes(result)
        assert result.has_previous_page == (pages > 1)
        if not result.has_next_page:
            break
        after = result.end_cursor
    assert seen == ids
    assert pages == 28


async def test_walking_backward_yields_every_row_once_in_order() -> None:
    ids = make_ids(1000)
    upstream = FakeUpstream(ids)
    seen: list[str] = []
    before: str | None = None
    while True:
        result = await page(upstream, last=37, before=before)
        assert result.requests <= 2
        seen = nodes(result) + seen
        assert result.has_next_page == (before is not None)
        if not result.has_previous_page:
            break
        before = result.start_cursor
    assert seen == ids


async def test_last_without_before_is_one_reversed_request() -> None:
    ids = make_ids(1000)
    upstream = FakeUpstream(ids)
    result = await page(upstream, last=37)
    assert upstream.requests == [PageRequest(1, 37, reverse=True)]
    assert nodes(result) == ids[-37:]
    assert [e.offset for e in result.edges] == list(range(963, 1000))
    assert [decode_cursor(e.cursor, SCOPE) for e in result.edges] == [
        (i, ids[i]) for i in range(963, 1000)
    ]
    assert result.has_previous_page
    assert not result.has_next_page
    assert result.total_count == 1000


async def test_last_with_after_drops_rows_up_to_the_cursor() -> None:
    ids = make_ids(50)
    upstream = FakeUpstream(ids)
    result = await page(upstream, last=20, after=cursor_at(ids, 39))
    assert upstream.requests == [PageRequest(1, 20, reverse=True)]
    assert nodes(result) == ids[40:]
    assert result.drift == 0  # the anchor (offset 39) was inside the reversed page
    assert result.has_previous_page


async def test_last_larger_than_the_list() -> None:
    ids = make_ids(5)
    result = await page(FakeUpstream(ids), last=37)
    assert nodes(result) == ids
    assert not result.has_previous_page
    assert not result.has_next_page


async def test_need_items_false_costs_one_tiny_request() -> None:
    ids = make_ids(1000)
    upstream = FakeUpstream(ids)
    result = await page(upstream, first=50, after=cursor_at(ids, 10), need_items=False)
    assert upstream.requests == [PageRequest(1, 1)]
    assert result.edges == []
    assert result.total_count == 1000
    assert result.has_previous_page
    assert result.has_next_page
    result = await page(upstream, last=50, need_items=False)
    assert upstream.requests == [PageRequest(1, 1)]
    assert (result.has_previous_page, result.has_next_page) == (True, False)


async def test_empty_list_and_offsets_past_the_end() -> None:
    empty = await page(FakeUpstream([]), first=10)
    assert (empty.edges, empty.has_previous_page, empty.has_next_page) == ([], False, False)
    assert empty.total_count == 0
    ids = make_ids(30)
    upstream = FakeUpstream(ids)
    past = await page(upstream, first=10, after=encode_cursor(200, "x", SCOPE))
    assert past.edges == []
    assert not past.has_next_page
    assert past.has_previous_page
    assert past.total_count == 30
    assert past.requests == 1


async def test_empty_range_between_after_and_before() -> None:
    ids = make_ids(30)
    upstream = FakeUpstream(ids)
    result = await page(upstream, first=10, after=cursor_at(ids, 10), before=cursor_at(ids, 11))
    assert result.edges == []
    assert result.requests == 1
    assert result.has_previous_page
    assert result.has_next_page
    assert result.total_count == 30


async def test_default_first() -> None:
    ids = make_ids(100)
    result = await page(FakeUpstream(ids))
    assert nodes(result) == ids[:DEFAULT_FIRST]


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["first", "last"])
@pytest.mark.parametrize("value", [0, -1, MAX_WINDOW + 1, 10000])
async def test_counts_out_of_range_are_refused(name: str, value: int) -> None:
    upstream = FakeUpstream(make_ids(10))
    with pytest.raises(PaginationError, match=rf"`{name}` must be between 1 and 500 \(got "):
        await page(upstream, **{name: value})  # type: ignore[arg-type]
    assert upstream.requests == []


async def test_first_and_last_together_are_refused() -> None:
    with pytest.raises(PaginationError, match="either `first` or `last`, not both"):
        await page(FakeUpstream([]), first=1, last=1)


async def test_bad_cursor_names_the_argument() -> None:
    with pytest.raises(PaginationError, match=r"^`before`: The cursor is not a valid cursor"):
        await page(FakeUpstream([]), last=3, before="%%%")
    other = encode_cursor(3, "4", scope_key("appointments", {"patient_id": "2"}))
    with pytest.raises(PaginationError, match=r"^`after`: .*different filter or order"):
        await page(FakeUpstream([]), first=3, after=other)


# --- cursors ------------------------------------------------------------------------------


@pytest.mark.parametrize("anchor", [BIG_ID, "1", "a:b:c", "", "ünï"])
@pytest.mark.parametrize("offset", [0, 1, 36, 10**17])
def test_cursor_round_trip(offset: int, anchor: str) -> None:
    cursor = encode_cursor(offset, anchor, SCOPE)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_cursor(cursor, SCOPE) == (offset, anchor)


def test_cursor_from_another_scope_is_refused() -> None:
    cursor = encode_cursor(5, BIG_ID, SCOPE)
    with pytest.raises(PaginationError, match="different filter or order"):
        decode_cursor(cursor, scope_key("appointments", {"patient_id": "1"}, ["id"]))


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("cursor", "message"),
    [
        ("", "not a valid cursor"),
        ("!!!!", "not a valid cursor"),
        ("abcde", "not a valid cursor"),  # impossible base64 length
        ("A" * 600, "not a valid cursor"),
        (b64(b"\xff\xfe:1:2:3"), "not a valid cursor"),
        (b64("hello"), "not a valid cursor"),
        (b64("v1:12"), "not a valid cursor"),
        (b64("v1:x:1:" + "0" * 16), "not a valid cursor"),
        (b64("v1:1e3:1:" + "0" * 16), "not a valid cursor"),
        (b64("v1:" + "9" * 40 + ":1:" + "0" * 16), "not a valid cursor"),
        (b64("v1:-3:1:" + "0" * 16), "negative offset"),
        (b64("v2:3:1:" + "0" * 16), "unsupported cursor version"),
        (b64("v1:3:1:" + "0" * 16), "different filter or order"),
    ],
)
def test_malformed_cursors_are_refused(cursor: str, message: str) -> None:
    with pytest.raises(PaginationError, match=message):
        decode_cursor(cursor, SCOPE)


def test_negative_offsets_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="negative"):
        encode_cursor(-1, "1", SCOPE)


class Color(Enum):
    RED = "red"


@dataclass(frozen=True)
class Filter:
    ids: frozenset[str]


def test_scope_key_is_stable_and_discriminating() -> None:
    a = scope_key("appointments", {"b": 1, "a": [2, 3]}, {"x", "y", "z"}, Color.RED, None)
    b = scope_key("appointments", {"a": [2, 3], "b": 1}, {"z", "y", "x"}, "red", None)
    assert a == b
    assert len(a) == 20
    assert int(a, 16) >= 0
    assert scope_key(Filter(frozenset({"1", "2"}))) == scope_key(Filter(frozenset({"2", "1"})))
    assert scope_key("p", 1) != scope_key("p", "1")
    assert scope_key("p", 1) != scope_key("p", True)
    assert scope_key("a", "b") != scope_key("a:b")
    # pinned: a digest that changed between releases would invalidate every issued cursor
    assert scope_key("appointments") == scope_key("appointments")


# --- drift --------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(seed=st.integers(0, 2**32), k=st.integers(0, 37))
def test_rows_inserted_before_the_cursor_cause_no_duplicates_or_skips(seed: int, k: int) -> None:
    rng = random.Random(seed)
    original = make_ids(300)
    upstream = FakeUpstream(original)
    counter = iter(range(10**6))

    async def walk() -> list[str]:
        seen: list[str] = []
        after: str | None = None
        while True:
            result = await page(upstream, first=37, after=after)
            if after is not None:
                assert result.drift == k
                assert result.realigned
                assert result.anchor_status == ("ok" if k == 0 else "moved")
                assert result.edges, "a realigned page is never empty while rows remain"
            seen += nodes(result)
            if not result.has_next_page:
                return seen
            after = result.end_cursor
            assert after is not None
            offset, _ = decode_cursor(after, SCOPE)
            for _ in range(k):  # k new rows somewhere before the cursor
                upstream.ids.insert(rng.randint(0, offset), f"new-{next(counter)}")

    seen = asyncio.run(walk())
    assert [x for x in seen if not x.startswith("new-")] == original
    assert len(set(seen)) == len(seen)


async def test_more_inserted_rows_than_the_window_are_reported_lost() -> None:
    ids = make_ids(200)
    upstream = FakeUpstream(ids)
    first_page = await page(upstream, first=10)
    upstream.ids[0:0] = [f"new-{i}" for i in range(60)]
    second = await page(upstream, first=10, after=first_page.end_cursor)
    assert upstream.requests == [PageRequest(1, 20)]  # anchor 9 + rows 10..19
    assert second.anchor_status == "lost"
    assert (second.drift, second.realigned) == (None, False)
    assert nodes(second) == upstream.ids[10:20]  # plain offsets


async def test_insert_before_the_cursor_reports_drift() -> None:
    ids = make_ids(200)
    upstream = FakeUpstream(ids)
    first_page = await page(upstream, first=37)
    upstream.ids[5:5] = ["new-1", "new-2", "new-3"]
    second = await page(upstream, first=37, after=first_page.end_cursor)
    assert second.drift == 3
    assert second.realigned
    assert nodes(second)[0] == ids[37]
    assert second.requests == 1
    assert second.has_next_page
    assert second.edges[0].offset == 40  # cursors carry the new offsets


async def test_deleting_the_anchor_row_is_reported() -> None:
    ids = make_ids(200)
    upstream = FakeUpstream(ids)
    first_page = await page(upstream, first=37)
    upstream.ids.remove(ids[36])
    second = await page(upstream, first=37, after=first_page.end_cursor)
    assert second.realigned is False
    assert second.drift is None
    assert second.anchor_status == "lost"
    assert nodes(second) == upstream.ids[37:74]  # plain offset


async def test_deleting_before_the_cursor_is_realigned_when_the_page_reaches_it() -> None:
    ids = make_ids(200)
    upstream = FakeUpstream(ids)
    # rows 59 (anchor)..89 fit page 2 of 45 (45..89), which also holds rows 50..53
    result = await page(upstream, first=30, after=cursor_at(ids, 59))
    assert upstream.requests == [PageRequest(2, 45)]
    del upstream.ids[50:54]
    result = await page(upstream, first=30, after=cursor_at(ids, 59))
    assert result.drift == -4
    assert nodes(result) == ids[60:90]


async def test_walking_backward_realigns_after_deletions_before_the_cursor() -> None:
    ids = make_ids(300)
    upstream = FakeUpstream(ids)
    removed: set[str] = set()
    seen: list[str] = []
    before: str | None = None
    rng = random.Random(7)
    deleted = 0
    drifts: list[int | None] = []
    while True:
        result = await page(upstream, last=37, before=before)
        if before is not None:
            assert result.realigned
            assert result.drift == -deleted
        drifts.append(result.drift)
        seen = nodes(result) + seen
        if not result.has_previous_page:
            break
        before = result.start_cursor
        offset, _ = decode_cursor(before or "", SCOPE)
        deleted = min(3, offset)
        for _ in range(deleted):  # delete unseen rows before the cursor
            gone = upstream.ids.pop(rng.randrange(offset))
            removed.add(gone)
            offset -= 1
    assert seen == [x for x in ids if x not in removed]
    assert drifts[1:3] == [-3, -3]


async def test_walking_backward_reports_insertions_it_cannot_realign() -> None:
    ids = make_ids(300)
    upstream = FakeUpstream(ids)
    last_page = await page(upstream, last=37)
    upstream.ids[0:0] = ["new-1", "new-2"]
    result = await page(upstream, last=37, before=last_page.start_cursor)
    assert result.anchor_status == "lost"
    assert result.drift is None


async def test_before_anchor_moved_inside_the_window() -> None:
    ids = make_ids(300)
    upstream = FakeUpstream(ids)
    del upstream.ids[100:102]
    result = await page(upstream, last=20, before=cursor_at(ids, 150))
    # rows 130..150 were fetched as page 6 of 26 (130..155); the anchor is now at 148
    assert upstream.requests == [PageRequest(6, 26)]
    assert result.drift == -2
    # the realigned window (128..147) reaches 2 rows below what was fetched: fewer rows,
    # no duplicates, and the page info says there is more
    assert nodes(result) == ids[132:150]
    assert result.edges[0].offset == 130
    assert result.has_next_page
    assert result.has_previous_page


async def test_anchor_status_values() -> None:
    def make(drift: int | None, realigned: bool) -> Slice[str]:
        return Slice([], False, False, 0, 1, drift, realigned)

    assert make(None, True).anchor_status == "unchecked"
    assert make(0, True).anchor_status == "ok"
    assert make(-2, True).anchor_status == "moved"
    assert make(None, False).anchor_status == "lost"
    assert make(None, True).start_cursor is None


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(length=st.integers(0, 250), n=st.integers(1, MAX_WINDOW), need_items=st.booleans())
def test_first_slice_of_rows_in_hand_is_what_paginate_returns(
    length: int, n: int, need_items: bool
) -> None:
    """The combined list of many parents builds pages without fetching: same edges, same info."""
    ids = make_ids(length)
    fetched = asyncio.run(page(FakeUpstream(ids), first=n, need_items=need_items))
    built = first_slice(ids, n, scope=SCOPE, key=ident, need_items=need_items)
    assert built.edges == fetched.edges
    assert built.has_previous_page == fetched.has_previous_page
    assert built.has_next_page == fetched.has_next_page
    assert built.total_count == fetched.total_count
    assert built.anchor_status == fetched.anchor_status == "unchecked"
    assert built.requests == 0
    # Only the first n + 1 rows in hand: the page and has_next_page are still exact.
    head = first_slice(ids[: n + 1], n, scope=SCOPE, key=ident, need_items=need_items)
    assert (head.edges, head.has_next_page) == (fetched.edges, fetched.has_next_page)


def test_key_is_used_for_cursors() -> None:
    @dataclass(frozen=True)
    class Row:
        id: str

    rows = [Row(str(10**18 + i)) for i in range(10)]

    async def fetch(request: PageRequest) -> Fetched[Row]:
        start = (request.page - 1) * request.per_page
        return Fetched(rows[start : start + request.per_page], len(rows))

    key: Callable[[Row], str] = lambda row: row.id  # noqa: E731
    result = asyncio.run(
        paginate(first=3, after=None, last=None, before=None, scope=SCOPE, fetch=fetch, key=key)
    )
    assert [decode_cursor(e.cursor, SCOPE)[1] for e in result.edges] == [r.id for r in rows[:3]]


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    length=st.integers(1, 400),
    data=st.data(),
    n=st.integers(1, 150),
    forward=st.booleans(),
    inserts=st.lists(st.integers(0, 400), max_size=60),
    deletes=st.lists(st.integers(0, 400), max_size=60),
)
def test_after_any_edit_the_page_continues_from_the_anchor_or_says_it_cannot(
    length: int,
    data: st.DataObject,
    n: int,
    forward: bool,
    inserts: list[int],
    deletes: list[int],
) -> None:
    ids = make_ids(length)
    offset = data.draw(st.integers(0, length - 1))
    cursor = cursor_at(ids, offset)
    current = list(ids)
    for i, at in enumerate(inserts):
        current.insert(at % (len(current) + 1), f"new-{i}")
    for at in deletes:
        if current:
            current.pop(at % len(current))
    upstream = FakeUpstream(current)
    if forward:
        result = asyncio.run(page(upstream, first=n, after=cursor))
    else:
        result = asyncio.run(page(upstream, last=n, before=cursor))
    got = nodes(result)
    assert result.total_count == len(current)
    assert [current[e.offset] for e in result.edges] == got
    if result.anchor_status in ("ok", "moved"):
        pos = current.index(ids[offset])
        assert result.drift == pos - offset
        if forward:
            assert got == current[pos + 1 : pos + 1 + len(got)]
            assert bool(got) == (pos + 1 < len(current))
        else:
            assert got == current[max(0, pos - len(got)) : pos]
            assert bool(got) == (pos > 0)
        assert len(got) <= n
    else:
        plain = current[offset + 1 : offset + 1 + n] if forward else current[:offset][-n:]
        assert got == plain
        if result.anchor_status == "lost":
            assert result.drift is None
            assert ids[offset] not in current or current.index(ids[offset]) != offset
    if got:
        assert result.has_previous_page == (result.edges[0].offset > 0)
        assert result.has_next_page == (result.edges[-1].offset < len(current) - 1)
