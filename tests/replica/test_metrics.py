"""``/metrics`` reports the replicas: memory, rows, lag, sync requests, hits and misses.

Each figure is checked against what it describes (the replica's own rows, the poll that
just completed, a read served or not) and shown to move when that thing moves.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from appointments_gateway.replica import KINDS

from .conftest import SLACK, SYNC_INTERVAL, Replicated, day_around, eventually, iso

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

DAY = """
query($filter: AppointmentFilter) {
  appointments(first: 100, filter: $filter) { totalCount edges { node { id } } }
}
"""


async def scrape(gw: Replicated) -> Samples:
    response = await gw.http.get("/metrics")
    assert response.status_code == 200, response.text
    found: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"{name}{labels} is not exported"
    return samples[key]


async def steady_scrape(gw: Replicated) -> tuple[Samples, dict[str, int], int]:
    """A scrape during which the replica did not change (the window may grow by an hour)."""
    for _ in range(3):
        version = gw.replica.version
        samples = await scrape(gw)
        if gw.replica.version == version:
            return samples, dict(gw.replica.counts()), gw.replica.bytes
    raise AssertionError("the replica kept changing during three scrapes")


async def test_rows_and_bytes_are_the_replicas(gw: Replicated) -> None:
    samples, counts, size = await steady_scrape(gw)
    assert set(counts) == set(KINDS)
    for kind in KINDS:
        assert value(samples, "gateway_replica_rows", kind=kind) == counts[kind], kind
    assert counts["appointments"] > 1000
    assert value(samples, "gateway_replica_bytes") == size
    assert size > 0
    assert value(samples, "gateway_replica_keys") == 1
    assert value(samples, "gateway_replica_starts_total") == 1


async def test_a_created_appointment_adds_a_row_and_bytes(gw: Replicated) -> None:
    before = await scrape(gw)
    row = gw.live()
    body = {
        name: row[name]
        for name in ("patient_id", "practitioner_id", "appointment_type_id", "business_id")
    }
    done = await gw.edit(
        "POST", "individual_appointments", {**body, "starts_at": row["starts_at"], "notes": "x"}
    )
    await gw.polled_after(done)
    after = await scrape(gw)
    rows = "gateway_replica_rows"
    assert value(after, rows, kind="appointments") == value(before, rows, kind="appointments") + 1
    assert value(after, "gateway_replica_bytes") > value(before, "gateway_replica_bytes")


async def test_lag_is_the_age_of_the_last_poll(gw: Replicated) -> None:
    samples = await scrape(gw)
    lag = value(samples, "gateway_replica_lag_seconds")
    assert 0 <= lag <= SYNC_INTERVAL + SLACK


async def test_sync_requests_count_by_purpose_and_grow_with_polls(gw: Replicated) -> None:
    before = await scrape(gw)
    name = "gateway_replica_sync_requests_total"
    for purpose in ("load", "reference", "appointments"):
        assert value(before, name, purpose=purpose) > 0, purpose
    polls = value(before, name, purpose="appointments")

    async def polled_again() -> float | None:
        now = value(await scrape(gw), name, purpose="appointments")
        return now if now > polls else None

    await eventually(polled_again, within=SYNC_INTERVAL + SLACK, what="another poll counted")


async def test_hits_and_misses_count_reads(gw: Replicated) -> None:
    row = gw.live()
    name = "gateway_replica_reads_total"
    before = await scrape(gw)
    served = await gw.query(DAY, {"filter": {"startsAt": day_around(row["starts_at"])}})
    assert served.source == "replica"
    middle = await scrape(gw)
    assert value(middle, name, outcome="hit") > value(before, name, outcome="hit")
    assert value(middle, name, outcome="miss") == value(before, name, outcome="miss")
    coverage = gw.replica.coverage
    assert coverage is not None
    beyond = {"gte": iso(coverage[1]), "lt": iso(coverage[1].replace(year=coverage[1].year + 1))}
    through = await gw.query(DAY, {"filter": {"startsAt": beyond}})
    assert through.requests > 0
    after = await scrape(gw)
    assert value(after, name, outcome="miss") > value(middle, name, outcome="miss")
