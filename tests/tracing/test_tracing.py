"""Tracing: the W3C traceparent in envelopes, the JSON-lines exporter, what spans may hold,
and the consumer's span under the real worker (nameko, eventlet) and relay, against the
real RabbitMQ and database. The whole path from a request to an SMS is in
tests/e2e/test_ward_day_tracing.py."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from flask import Flask
from opentelemetry import trace
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from motcua_common import tracing
from motcua_platform.embedded import free_port
from motcua_common.events import new_event, parse_envelope
from motcua_common.outbox import commit
from motcua_testing.fixtures import settings_env, wait_for

SUPPORT = Path(__file__).resolve().parents[1] / "support"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def submitted(code: str, traceparent: str | None = None) -> dict:
    return new_event("DossierSubmitted", "w1", {
        "dossier_id": str(uuid.uuid4()), "receipt_code": code, "procedure_code": "KS01",
        "ward_id": "w1", "channel": "online", "due_date": "2026-12-01",
    }, traceparent=traceparent)


def fresh_traceparent() -> tuple[str, str, str]:
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


@pytest.fixture
def provider(tmp_path):
    """A tracer provider of the test's own (the process's global one is left alone)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(SimpleSpanProcessor(tracing.JsonLinesSpanExporter(str(tmp_path / "spans.jsonl"))))
    yield provider, memory, tmp_path / "spans.jsonl"
    provider.shutdown()


def test_an_event_carries_the_current_span_and_a_fresh_trace_outside_any(provider):
    tracer = provider[0].get_tracer("test")
    outside = submitted("A1")["traceparent"]
    assert TRACEPARENT.match(outside)
    assert submitted("A2")["traceparent"].split("-")[1] != outside.split("-")[1]  # not one trace for all
    with tracer.start_as_current_span("request") as span:
        inside = submitted("A3")["traceparent"]
    ctx = span.get_span_context()
    assert inside == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}" and ctx.trace_flags.sampled
    assert parse_envelope(submitted("A4", traceparent=inside)).traceparent == inside  # explicit wins


def test_spans_are_written_one_json_line_each_with_their_parents(provider):
    tracer = provider[0].get_tracer("test")
    with tracer.start_as_current_span("parent") as parent:
        with tracer.start_as_current_span("child", kind=trace.SpanKind.CLIENT, attributes={"motcua.ward_id": "w1"}):
            pass
    lines = [json.loads(line) for line in provider[2].read_text(encoding="utf-8").splitlines()]
    assert [s["name"] for s in lines] == ["child", "parent"]
    child, top = lines
    assert child["trace_id"] == top["trace_id"] == f"{parent.get_span_context().trace_id:032x}"
    assert child["parent_span_id"] == top["span_id"] and top["parent_span_id"] is None
    assert child["kind"] == "CLIENT" and child["attributes"] == {"motcua.ward_id": "w1"}
    assert child["end_ns"] >= child["start_ns"]


def test_tracing_stays_off_without_an_exporter():
    assert tracing.configure_tracing("dossier", "api", env={}) is False


def test_request_spans_keep_the_path_and_not_the_query(provider):
    """An SMS gateway calls back with the sender's phone and the text in the query; Kannel's
    sendsms carries the password, the phone and the text there. Spans keep neither."""
    app = Flask("probe")

    @app.get("/identity/api/v1/sms/kannel")
    def inbound():
        return "", 204

    tracing.instrument_flask(app, "identity", tracer_provider=provider[0])
    app.test_client().get("/identity/api/v1/sms/kannel?from=%2B84905123456&text=DK+012345678901")
    server = provider[1].get_finished_spans()[-1]
    assert server.attributes["http.target"] == "/identity/api/v1/sms/kannel"
    assert server.attributes["motcua.service"] == "identity" and server.kind == trace.SpanKind.SERVER
    assert "84905123456" not in json.dumps(dict(server.attributes))

    port = free_port()
    instrumentor = RequestsInstrumentor()
    instrumentor.instrument(tracer_provider=provider[0], request_hook=tracing.outgoing_request_hook)
    try:
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://kannel:secret@127.0.0.1:{port}/cgi-bin/sendsms?password=secret&to=0905123456",
                         timeout=2)
    finally:
        instrumentor.uninstrument()
    client = provider[1].get_finished_spans()[-1]
    assert client.kind == trace.SpanKind.CLIENT
    recorded = json.dumps(dict(client.attributes))
    assert f"http://127.0.0.1:{port}/cgi-bin/sendsms" in recorded
    assert "secret" not in recorded and "0905123456" not in recorded


# ------------------------------------------------------- worker and relay, as processes
@pytest.fixture
def traced_processes(broker_settings, tmp_path):
    """The probe worker (consuming DossierSubmitted as notify) and dossier's relay, both
    writing spans to one file."""
    trace_file = tmp_path / "traces.jsonl"
    env = settings_env(broker_settings)
    env.update(MOTCUA_WORKER_MODULE="probe_worker", PYTHONPATH=str(SUPPORT), MOTCUA_TRACE_FILE=str(trace_file),
               MOTCUA_RELAY_POLL_SECONDS="0.1")
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    cli = [sys.executable, "-m", "motcua_platform.cli"]
    procs = [subprocess.Popen(cli + ["worker", "--service", "notify"], env=env),
             subprocess.Popen(cli + ["relay", "--service", "dossier"], env=env)]
    yield trace_file
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def spans_in(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_each_consumed_event_is_a_child_of_the_span_that_emitted_it(traced_processes, service_db):
    """Ten events published together are handled side by side in their own green threads;
    each handler's span must continue its own event's trace, never a neighbour's."""
    db = service_db("dossier")
    parents = {}
    for n in range(10):
        traceparent, trace_id, span_id = fresh_traceparent()
        event = submitted(f"T{n}", traceparent)
        parents[event["event_id"]] = (trace_id, span_id)
        commit(db, lambda session: None, [event])

    def consumed():
        found = {s["attributes"]["messaging.message.id"]: s for s in spans_in(traced_processes)
                 if s["kind"] == "CONSUMER"}
        return found if set(parents) <= set(found) else None

    spans = wait_for(consumed, timeout=60, message="a consumer span per event")
    for event_id, (trace_id, span_id) in parents.items():
        span = spans[event_id]
        assert (span["trace_id"], span["parent_span_id"]) == (trace_id, span_id)
        assert span["name"] == "DossierSubmitted process" and span["service"] == "motcua-notify"
        assert span["role"] == "worker" and span["status"] == "UNSET"
        assert span["attributes"]["motcua.outcome"] == "processed"
        assert span["attributes"]["messaging.destination.name"] == "notify.dossier.DossierSubmitted"
    published = {s["attributes"]["messaging.message.id"]: s for s in spans_in(traced_processes)
                 if s["kind"] == "PRODUCER"}
    for event_id, (trace_id, span_id) in parents.items():
        assert (published[event_id]["trace_id"], published[event_id]["parent_span_id"]) == (trace_id, span_id)
        assert published[event_id]["service"] == "motcua-dossier" and published[event_id]["role"] == "relay"


def test_a_failing_handler_marks_its_span_and_each_retry_is_its_own(traced_processes, service_db):
    db = service_db("dossier")
    traceparent, trace_id, span_id = fresh_traceparent()
    event = submitted("FAIL-1", traceparent)
    commit(db, lambda session: None, [event])

    def failed():
        spans = [s for s in spans_in(traced_processes) if s["kind"] == "CONSUMER"
                 and s["attributes"]["messaging.message.id"] == event["event_id"]]
        return spans if len(spans) >= 2 else None

    spans = wait_for(failed, timeout=60, message="two failed tries")
    assert all(s["status"] == "ERROR" and s["trace_id"] == trace_id and s["parent_span_id"] == span_id for s in spans)
    assert len({s["span_id"] for s in spans}) == len(spans)


# ------------------------------------------------------------------ OTLP, as in production
class OtlpReceiver:
    """A collector's OTLP/HTTP traces endpoint: keeps every ExportTraceServiceRequest."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        self.requests: list = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/v1/traces" and self.headers.get("Content-Type") == "application/x-protobuf":
                    receiver.requests.append(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list[tuple[str, object]]:
        """(service.name, span) for every span received."""
        found = []
        for request in list(self.requests):
            for resource_spans in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    found += [(attributes.get("service.name"), span) for span in scope.spans]
        return found

    def close(self):
        self.server.shutdown()


def test_the_worker_exports_its_spans_by_otlp_when_an_endpoint_is_set(broker_settings):
    """The eventlet worker with the batching OTLP exporter, against a stand-in collector."""
    receiver = OtlpReceiver()
    env = settings_env(broker_settings)
    env.update(MOTCUA_WORKER_MODULE="probe_worker", PYTHONPATH=str(SUPPORT), OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
               OTEL_BSP_SCHEDULE_DELAY="200")
    env.pop(tracing.TRACE_FILE_ENV, None)
    worker = subprocess.Popen([sys.executable, "-m", "motcua_platform.cli", "worker", "--service", "notify"], env=env)
    try:
        traceparent, trace_id, span_id = fresh_traceparent()
        event = submitted("OTLP-1", traceparent)
        publish_event(broker_settings, event)

        def consumed():
            return [(service, span) for service, span in receiver.spans()
                    if span.kind == span.SPAN_KIND_CONSUMER and span.trace_id.hex() == trace_id]

        service, span = wait_for(consumed, timeout=60, message="the consumer span at the collector")[0]
        assert service == "motcua-notify" and span.parent_span_id.hex() == span_id
        assert span.name == "DossierSubmitted process"
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        receiver.close()


def publish_event(settings, envelope: dict) -> None:
    """Straight onto dossier's exchange, as the relay does (traceparent in the headers too)."""
    import pika

    from motcua_common import topology

    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    channel = connection.channel()
    topology.declare(channel, settings)
    channel.confirm_delivery()
    channel.basic_publish("dossier.events", envelope["type"], json.dumps(envelope).encode("utf-8"),
                          pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                               message_id=envelope["event_id"],
                                               headers={"traceparent": envelope["traceparent"]}))
    connection.close()
