"""OpenTelemetry spans: one per operation, one child per upstream call, nothing sensitive."""

from __future__ import annotations

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette

from appointments_gateway.gateway import create_app
from appointments_gateway.sandbox import DEMO_KEY_A, SandboxConfig, create_sandbox_app
from appointments_gateway.settings import Settings
from tests.gateway.test_app import SANDBOX_URL

CALENDAR = """query Screen($who: ID!) { appointments(first: 20, filter: {patientIds: [$who]}) {
  nodes { notes patient { firstName lastName } practitioner { displayName } } } }"""


def _app(tracing: bool, provider: TracerProvider) -> Starlette:
    sandbox = create_sandbox_app(SandboxConfig(rate_limit_per_minute=0))
    return create_app(
        Settings(upstream=SANDBOX_URL, api_key=DEMO_KEY_A, upstream_rate_limit=0, tracing=tracing),
        upstream_transport=httpx.ASGITransport(app=sandbox),
        tracer_provider=provider,
    )


async def test_an_operation_span_with_one_child_per_upstream_call(serve):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = _app(True, provider)
    async with serve(app) as client:
        first = (
            await client.post(
                "/graphql",
                json={"query": "{ appointments(first: 1) { nodes { patient { clinikoId } } } }"},
            )
        ).json()
        patient = first["data"]["appointments"]["nodes"][0]["patient"]["clinikoId"]
        exporter.clear()
        body = (
            await client.post("/graphql", json={"query": CALENDAR, "variables": {"who": patient}})
        ).json()
    assert "errors" not in body
    spans = exporter.get_finished_spans()
    [operation] = [s for s in spans if s.kind is SpanKind.SERVER]
    upstream = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert len(upstream) == body["extensions"]["upstream"]["requests"] >= 3
    assert (
        {"GET /individual_appointments", "GET /patients", "GET /practitioners"}
        <= {s.name for s in upstream}
        <= {
            "GET /individual_appointments",
            "GET /patients",
            "GET /practitioners",
            "GET /practitioners/inactive",
        }
    )
    for span in upstream:
        assert span.parent is not None
        assert span.parent.span_id == operation.context.span_id
        assert span.attributes is not None
        assert span.attributes["http.response.status_code"] == 200
        assert span.start_time is not None
        assert span.end_time is not None
        assert span.start_time <= span.end_time
    # nothing a span carries names a record, a patient, a key or the query
    names = [n["patient"]["firstName"] for n in body["data"]["appointments"]["nodes"]]
    for span in spans:
        text = f"{span.name} {dict(span.attributes or {})}"
        for secret in (patient, DEMO_KEY_A, *names, "Screen"):
            assert secret not in text


async def test_tracing_off_emits_nothing(serve):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = _app(False, provider)
    async with serve(app) as client:
        body = (
            await client.post(
                "/graphql", json={"query": "{ appointments(first: 2) { nodes { id } } }"}
            )
        ).json()
    assert body["extensions"]["upstream"]["requests"] == 1
    assert exporter.get_finished_spans() == ()
