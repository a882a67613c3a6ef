"""The Prometheus metrics the monitoring centre relies on (CONTRACT.md), defined once.

API processes expose them at /<svc>/metrics; workers and relays on METRICS_PORT when set.
Under gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR (prometheus-client's
multiprocess mode)."""
from __future__ import annotations

import logging
import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, REGISTRY

log = logging.getLogger(__name__)

QUEUE_WAITING = Gauge("motcua_queue_waiting_tickets", "Tickets waiting", ["ward_id", "service_code"], multiprocess_mode="livemax")
QUEUE_WAIT_SECONDS = Histogram(
    "motcua_queue_wait_seconds", "Wait from ticket issue to call", ["ward_id"],
    buckets=(60, 180, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200),
)
DOSSIERS_SUBMITTED = Counter("motcua_dossiers_submitted_total", "Dossiers submitted", ["ward_id", "channel"])
DOSSIERS_RETURNED = Counter("motcua_dossiers_returned_total", "Dossiers returned", ["ward_id", "on_time"])
DOSSIERS_OVERDUE = Gauge("motcua_dossiers_overdue", "Dossiers past their due date", ["ward_id"], multiprocess_mode="livemax")
RATINGS = Counter("motcua_ratings_total", "Ratings given", ["ward_id", "score"])
NOTIFICATIONS = Counter("motcua_notifications_total", "Notifications by outcome", ["channel", "status"])
# The same per ward (CONTRACT.md keeps the one above as it is).
NOTIFICATIONS_BY_WARD = Counter("motcua_ward_notifications_total", "Notifications by outcome, per ward",
                                ["channel", "status", "ward_id"])
# One series per open ward, value 1, so dashboards can join names and provinces onto any
# ward_id series (CONTRACT.md "Metrics"). identity exports it from its wards at scrape time.
WARD_INFO_LABELS = ("ward_id", "official_code", "name", "province")
CITIZENS_REGISTERED = Counter("motcua_citizens_registered_total", "Citizens registered", ["ward_id", "channel"])
EVENTS_CONSUMED = Counter("motcua_events_consumed_total", "Events consumed", ["service", "event_type", "outcome"])
EVENTS_PUBLISHED = Counter("motcua_events_published_total", "Events confirmed by the broker", ["service", "event_type"])
RELAY_BROKER_BLOCKED = Gauge("motcua_relay_broker_blocked",
                             "1 while the broker blocks the relay's publishes (a disk or memory alarm)", ["service"],
                             multiprocess_mode="livemax")
# The downlink to the wards' offices (relay.py): events a ward's full queue at the centre
# refused, and how many of them wait in the outbox for it to drain.
DOWNLINK_REFUSED = Counter("motcua_downlink_refused_total",
                           "Events a ward office's downlink queue refused (full): held in the outbox for it",
                           ["service", "ward_id"])
DOWNLINK_HELD = Gauge("motcua_downlink_held_events",
                      "Events held in the outbox until the ward office's downlink queue has room",
                      ["service", "ward_id"], multiprocess_mode="livemax")
# Transactions run again after a write conflict (mongo.in_transaction), by the function that
# ran them: a steady rate names a document every writer of some kind moves.
TRANSACTION_RETRIES = Counter("motcua_transaction_retries_total",
                              "Transactions retried after a transient error (a write conflict)", ["database", "work"])
# Audit records stored with their business writes and not yet on the hash chain (audit.py):
# the relay's chainer keeps it near 0; a growing value means the chain stopped moving.
AUDIT_UNCHAINED = Gauge("motcua_audit_unchained_records", "Audit records waiting to be chained", ["service"],
                        multiprocess_mode="livemax")
HTTP_REQUESTS = Counter("motcua_http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
HTTP_SECONDS = Histogram("motcua_http_request_seconds", "HTTP request duration", ["service", "route"])


class OutboxPendingCollector:
    """motcua_outbox_pending{service}, counted at scrape time from the service's outbox."""

    def __init__(self, service: str, count_pending):
        self.service = service
        self.count_pending = count_pending

    def collect(self):
        family = GaugeMetricFamily("motcua_outbox_pending", "Events waiting in the outbox", labels=["service"])
        try:
            family.add_metric([self.service], float(self.count_pending()))
        except Exception:
            family.add_metric([self.service], float("nan"))
        yield family


def render(extra_collectors=()) -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    # A metric defined above but computed at scrape time by an extra collector (e.g.
    # QUEUE_WAITING counted from the database) must appear once: the text format allows
    # one HELP/TYPE per name, so the collector's family replaces the registry's.
    extra = [family for collector in extra_collectors for family in collector.collect()]
    computed = {family.name for family in extra}
    families = [family for family in registry.collect() if family.name not in computed] + extra
    return generate_latest(_Families(families)), CONTENT_TYPE_LATEST


class _Families:
    """Already collected metric families, in the shape generate_latest expects."""

    def __init__(self, families):
        self.families = families

    def collect(self):
        return iter(self.families)


# A request slower than this is logged (a client's timeout is usually 30 s: this is well before).
SLOW_REQUEST_SECONDS = float(os.environ.get("MOTCUA_SLOW_REQUEST_SECONDS") or 5)


def instrument_flask(app, service: str) -> None:
    """Count and time every request by its route template (not its raw path)."""
    from flask import g, request

    @app.before_request
    def _start_timer():
        g._motcua_started = time.perf_counter()

    @app.after_request
    def _record(response):
        started = getattr(g, "_motcua_started", None)
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        HTTP_REQUESTS.labels(service, request.method, route, str(response.status_code)).inc()
        if started is not None:
            seconds = time.perf_counter() - started
            HTTP_SECONDS.labels(service, route).observe(seconds)
            if seconds >= SLOW_REQUEST_SECONDS:
                # The route template, never the path: paths carry ticket and dossier ids.
                log.warning("slow request: %s %s answered %s after %.1f s", request.method, route,
                            response.status_code, seconds)
        return response


def serve_worker_metrics(service: str, role: str) -> None:
    """Expose a worker's or relay's metrics on METRICS_PORT, when the deployment sets one."""
    port = os.environ.get("METRICS_PORT")
    if port:
        start_http_server(int(port))
