"""Distributed tracing with OpenTelemetry: one trace from the HTTP request that changed
something, through the outbox and the broker, to the consumer and the SMS it sent.

How the context travels (W3C Trace Context, `traceparent`):
  * the Flask instrumentation opens a SERVER span per request (and continues a caller's
    `traceparent` header);
  * events.new_event writes the current span's traceparent into the envelope, so it is
    stored with the event in the outbox, and the relay copies it into the AMQP headers;
  * consumer.event_handler opens a CONSUMER span whose parent is the envelope's
    traceparent, inside the handler's own green thread;
  * notify keeps that span's traceparent on the notification it stores, and the sender
    opens a CLIENT span with it as parent around the gateway call, minutes later if need be.

Where spans go is chosen by the environment, once per process (configure_tracing):
  OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
      export by OTLP/HTTP (the collector); the other standard OTEL_* variables apply;
  MOTCUA_TRACE_FILE
      append each finished span as one JSON line to this file (tests, one machine);
  neither: no provider is installed and every span is OpenTelemetry's no-op, costing nothing.
Span attributes carry opaque ids only (event, notification, ward), never a phone, a name
or a national id.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from contextlib import contextmanager
from typing import Iterator, Mapping, Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

TRACE_FILE_ENV = "MOTCUA_TRACE_FILE"
TRACER_NAME = "motcua"
# Probes and scrapes would be most of the spans and tell nothing.
EXCLUDED_URLS = "healthz,readyz,metrics"

_propagator = TraceContextTextMapPropagator()
_configured = False


def configure_tracing(service: str, role: str, env: Mapping[str, str] | None = None) -> bool:
    """Install the process's tracer provider; False when tracing is off (no exporter set)."""
    global _configured
    env = os.environ if env is None else env
    otlp = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    trace_file = env.get(TRACE_FILE_ENV)
    if _configured or not (otlp or trace_file):
        return _configured
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create({
        "service.name": f"motcua-{service}",
        "service.namespace": "motcua",
        "service.instance.id": f"{role}-{os.getpid()}",
        "motcua.role": role,
    })
    provider = TracerProvider(resource=resource)
    if otlp:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # The exporter reads the endpoint, headers and timeout from the OTEL_* variables.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if trace_file:
        # Written as each span ends, so that a reader sees it without waiting for a batch.
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(trace_file)))
    trace.set_tracer_provider(provider)
    _instrument_libraries()
    _configured = True
    log.info("tracing on", extra={"otlp": bool(otlp), "trace_file": bool(trace_file)})
    return True


def _instrument_libraries() -> None:
    """Database commands and outgoing HTTP calls (the SMS gateway, identity's keys) as
    child spans; requests also passes the traceparent on to whoever it calls."""
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    # Not the command's arguments: a query may hold a phone or a national id.
    PymongoInstrumentor().instrument(capture_statement=False)
    RequestsInstrumentor().instrument(excluded_urls=EXCLUDED_URLS, request_hook=outgoing_request_hook)


def outgoing_request_hook(span: Span, request) -> None:
    """Keep an outgoing call's URL without its query: Kannel's sendsms carries the gateway
    password, the phone and the text there."""
    if span is not None and span.is_recording():
        url = without_query(request.url)
        for key in ("http.url", "url.full"):
            span.set_attribute(key, url)


def instrument_flask(app, service: str, tracer_provider=None) -> None:
    """A SERVER span per request of `app`, named by its route, marked with the service."""
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    def request_hook(span: Span, _environ) -> None:
        if span is not None and span.is_recording():
            span.set_attribute("motcua.service", service)

    def response_hook(span: Span, _status, _headers) -> None:
        # The path only (set last, over the instrumentation's own): an SMS gateway's
        # callback (Kannel's get-url) puts the sender's phone and the text in the query.
        if span is not None and span.is_recording():
            from flask import request

            span.set_attribute("http.target", request.path)
            if "url.query" in (span.attributes or {}):
                span.set_attribute("url.query", "")

    FlaskInstrumentor().instrument_app(app, excluded_urls=EXCLUDED_URLS, request_hook=request_hook,
                                       response_hook=response_hook, tracer_provider=tracer_provider)


def without_query(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))  # user:password@ dropped too


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def current_traceparent() -> str | None:
    """The current span as a W3C traceparent, or None outside any (recorded or not) span."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def continued_span(name: str, traceparent: str | None, kind: SpanKind,
                   attributes: Mapping[str, object] | None = None) -> Iterator[Span]:
    """A span made current for the block, child of `traceparent` (a root span when it is
    empty or malformed). An exception is recorded on the span and raised on."""
    parent = _propagator.extract({"traceparent": traceparent}) if traceparent else None
    with tracer().start_as_current_span(name, context=parent, kind=kind, attributes=dict(attributes or {}),
                                        record_exception=True, set_status_on_exception=True) as span:
        yield span


def mark_failed(span: Span, description: str) -> None:
    span.set_status(Status(StatusCode.ERROR, description[:200]))


class JsonLinesSpanExporter(SpanExporter):
    """Appends finished spans to a file, one JSON object a line, with the ids in the hex
    form trace viewers show. Several processes may share the file: each export is one
    write on a file opened for appending, so lines never interleave."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence) -> SpanExportResult:
        lines = "".join(json.dumps(span_record(span), ensure_ascii=False) + "\n" for span in spans)
        try:
            with self._lock, open(self.path, "a", encoding="utf-8") as out:
                out.write(lines)
        except OSError as exc:
            log.warning("could not write spans: %s", exc.__class__.__name__)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


def span_record(span) -> dict:
    """A finished SDK span as a plain dict."""
    ctx = span.get_span_context()
    return {
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent is not None else None,
        "name": span.name,
        "kind": span.kind.name,
        "service": span.resource.attributes.get("service.name"),
        "role": span.resource.attributes.get("motcua.role"),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": {key: value if isinstance(value, (str, int, float, bool)) else list(value)
                       for key, value in (span.attributes or {}).items()},
    }
