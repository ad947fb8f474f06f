"""Hypothesis strategies for appointment reads, drawn from the rows the sandbox really holds.

A generated filter that matches nothing proves little, so values come from real rows:
``startsAt`` bounds sit on (or a fraction of a second beside) real start times, id lists are
subsets of real ids, ``createdAt``/``updatedAt`` bounds on real stamps.  Bounds with a
fraction of a second matter: the upstream path rounds them per operator
(``format_datetime_bound``), the replica compares them as they are, and both must agree.

Everything is drawn from :func:`demo_catalog`: the demo data of a fresh sandbox, read
once per process, inside the window a replica started now would cover.  It never changes,
so the same choices always draw the same read (Hypothesis requires that; a catalog read
from a gateway's sandbox would follow the edits a test makes).  The gateways under test
hold the very same rows (same seed, same anchor) until a test edits them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from starlette.applications import Starlette

from appointments_gateway.sandbox import SandboxConfig, create_sandbox_app
from appointments_gateway.settings import Settings

ORDER_FIELDS = ("STARTS_AT", "ENDS_AT", "CREATED_AT", "UPDATED_AT")
INCLUSIONS = ("EXCLUDE", "INCLUDE", "ONLY")
#: Spans short enough that a walk page by page reaches the end in a few pages.
SHORT_SPANS = (timedelta(minutes=30), timedelta(hours=3), timedelta(hours=12), timedelta(days=1))
#: Offsets from a real instant: on it, a fraction either side, a whole second either side.
NUDGES = (
    timedelta(0),
    timedelta(0),
    timedelta(microseconds=1),
    timedelta(milliseconds=-1),
    timedelta(milliseconds=500),
    timedelta(milliseconds=-500),
    timedelta(seconds=1),
    timedelta(seconds=-1),
)
SPANS = (
    timedelta(minutes=30),
    timedelta(hours=3),
    timedelta(days=1),
    timedelta(days=3),
    timedelta(days=10),
    timedelta(days=45),
)


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso(value: datetime) -> str:
    """GraphQL ``DateTime`` input: UTC with ``Z``, a fraction only when there is one."""
    text = value.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


@dataclass(frozen=True)
class Row:
    """The columns of one appointment a filter can be built from."""

    id: str
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    updated_at: datetime
    patient_id: str
    practitioner_id: str
    business_id: str
    appointment_type_id: str
    repeated_from_id: str | None


@dataclass(frozen=True)
class Catalog:
    """What a filter may name: the replica's coverage and the account's real rows in it."""

    coverage: tuple[datetime, datetime]
    rows: tuple[Row, ...]
    #: Ids of rows the web app may still change (not archived).
    writable: tuple[str, ...]
    practitioners: tuple[str, ...]
    businesses: tuple[str, ...]
    appointment_types: tuple[str, ...]

    @classmethod
    def read(
        cls, sandbox: Starlette, coverage: tuple[datetime, datetime], account: str = "a"
    ) -> Catalog:
        """The account's live rows starting inside ``coverage``, from the sandbox's store."""
        conn = sandbox.state.sandbox.store.conn
        lo, hi = coverage
        live = [
            r
            for r in conn.execute(
                "SELECT * FROM appointments WHERE account = ? AND deleted_at IS NULL ORDER BY id",
                (account,),
            )
            if lo <= parse(r["starts_at"]) < hi
        ]
        rows = tuple(
            Row(
                str(r["id"]),
                parse(r["starts_at"]),
                parse(r["ends_at"]),
                parse(r["created_at"]),
                parse(r["updated_at"]),
                str(r["patient_id"]),
                str(r["practitioner_id"]),
                str(r["business_id"]),
                str(r["appointment_type_id"]),
                None if r["repeated_from_id"] is None else str(r["repeated_from_id"]),
            )
            for r in live
        )

        def ids(table: str) -> tuple[str, ...]:
            return tuple(
                str(r["id"])
                for r in conn.execute(
                    f"SELECT id FROM {table} WHERE account = ? ORDER BY id",
                    (account,),
                )
            )

        return cls(
            coverage,
            rows,
            tuple(str(r["id"]) for r in live if r["archived_at"] is None),
            ids("practitioners"),
            ids("businesses"),
            ids("appointment_types"),
        )

    @property
    def patients(self) -> tuple[str, ...]:
        return tuple(sorted({row.patient_id for row in self.rows}))

    @property
    def series(self) -> tuple[str, ...]:
        """Ids of series origins with repeats in the rows."""
        return tuple(sorted({r.repeated_from_id for r in self.rows if r.repeated_from_id}))


def sync_window(now: datetime) -> tuple[datetime, datetime]:
    """The window a replica started at ``now`` loads (whole hours, default settings)."""
    settings = Settings()
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return (
        hour - timedelta(days=settings.sync_days_back),
        hour + timedelta(days=settings.sync_days_ahead),
    )


@functools.cache
def demo_catalog() -> Catalog:
    """Account A's demo rows inside the window of a replica started now; read once."""
    sandbox = create_sandbox_app(SandboxConfig(rate_limit_per_minute=0))
    try:
        return Catalog.read(sandbox, sync_window(datetime.now(UTC)))
    finally:
        sandbox.state.sandbox.store.close()


def inside(catalog: Catalog, low: datetime | None, high: datetime | None) -> bool:
    """Whether a ``startsAt`` range lies wholly inside the coverage (what the replica serves)."""
    lo, hi = catalog.coverage
    return low is not None and high is not None and lo <= low and high < hi


@st.composite
def instants(draw: st.DrawFn, catalog: Catalog, stamp: str = "starts_at") -> datetime:
    """A real row's ``stamp``, nudged by nothing, a fraction, or a second."""
    row = draw(st.sampled_from(catalog.rows))
    value: datetime = getattr(row, stamp)
    return value + draw(st.sampled_from(NUDGES))


@st.composite
def time_ranges(
    draw: st.DrawFn,
    catalog: Catalog,
    stamp: str = "starts_at",
    *,
    both: bool = False,
    spans: tuple[timedelta, ...] = SPANS,
) -> dict[str, str]:
    """A ``DateTimeFilter`` around real stamps: gt or gte below, lt or lte above.

    ``both``: always two bounds (a ``startsAt`` range the replica can serve when it lies
    inside its coverage); else sometimes one.  ``spans``: how far apart they may be.
    """
    low = draw(instants(catalog, stamp))
    high = low + draw(st.sampled_from(spans)) + draw(st.sampled_from(NUDGES))
    if draw(st.booleans()):
        # Sometimes the upper bound sits on a real stamp too, the lower one a span before.
        high = draw(instants(catalog, stamp))
        low = high - draw(st.sampled_from(spans))
    if high <= low:
        low, high = high, low + timedelta(seconds=1)
    which = "both" if both else draw(st.sampled_from(("both", "both", "low", "high")))
    out: dict[str, str] = {}
    if which in ("both", "low"):
        out[draw(st.sampled_from(("gt", "gte")))] = iso(low)
    if which in ("both", "high"):
        out[draw(st.sampled_from(("lt", "lte")))] = iso(high)
    return out


def bounds(range_: dict[str, str] | None) -> tuple[datetime | None, datetime | None]:
    """The lower and upper instants of a ``DateTimeFilter``."""
    if range_ is None:
        return None, None
    low = range_.get("gt") or range_.get("gte")
    high = range_.get("lt") or range_.get("lte")
    return (parse(low) if low else None), (parse(high) if high else None)


def _subset(values: tuple[str, ...], most: int = 3) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=most, unique=True)


@st.composite
def maybe(draw: st.DrawFn, strategy: st.SearchStrategy[Any], percent: int) -> Any:
    """``strategy``'s value ``percent`` % of the time, else ``None`` (an absent filter)."""
    if draw(st.integers(0, 99)) < percent:
        return draw(strategy)
    return None


@st.composite
def filters(
    draw: st.DrawFn,
    catalog: Catalog,
    *,
    starts: bool = True,
    both: bool = False,
    near: Row | None = None,
    spans: tuple[timedelta, ...] = SPANS,
    extra: float = 1.0,
) -> dict[str, Any]:
    """An ``AppointmentFilter``; ``starts``: with a ``startsAt`` range (``both``: two bounds).

    ``near``: the range is drawn around that row's start half of the time (a test that
    just edited the row wants reads that can see it).  ``extra`` scales how often the
    other conditions are added (each one narrows the answer, often to nothing).
    """
    out: dict[str, Any] = {}
    if starts:
        if near is not None and draw(st.booleans()):
            around = near.starts_at
            out["startsAt"] = {
                draw(st.sampled_from(("gt", "gte"))): iso(around - draw(st.sampled_from(SPANS))),
                draw(st.sampled_from(("lt", "lte"))): iso(around + draw(st.sampled_from(SPANS))),
            }
        else:
            out["startsAt"] = draw(time_ranges(catalog, both=both, spans=spans))
    optional: dict[str, tuple[st.SearchStrategy[Any], int]] = {
        "practitionerIds": (_subset(catalog.practitioners), 30),
        "businessIds": (_subset(catalog.businesses, 2), 20),
        "patientIds": (_subset(catalog.patients), 15),
        "appointmentTypeIds": (_subset(catalog.appointment_types), 20),
        "ids": (_subset(tuple(r.id for r in catalog.rows), 8), 10),
        "didNotArrive": (st.booleans(), 20),
        "cancelled": (st.sampled_from(INCLUSIONS), 50),
        "archived": (st.sampled_from(INCLUSIONS), 40),
        "repeatedFromId": (st.sampled_from(catalog.series), 5),
        "endsAt": (time_ranges(catalog, "ends_at"), 10),
        "createdAt": (time_ranges(catalog, "created_at"), 15),
        "updatedAt": (time_ranges(catalog, "updated_at"), 15),
    }
    for name, (strategy, percent) in optional.items():
        value = draw(maybe(strategy, round(percent * extra)))
        if value is not None:
            out[name] = value
    return out


@st.composite
def orders(draw: st.DrawFn) -> list[dict[str, str]] | None:
    """``orderBy``: absent, or each field at most once, directions mixed."""
    if draw(st.integers(0, 3)) == 0:
        return None
    fields = draw(st.lists(st.sampled_from(ORDER_FIELDS), min_size=1, max_size=4, unique=True))
    return [{"field": f, "direction": draw(st.sampled_from(("ASC", "DESC")))} for f in fields]
