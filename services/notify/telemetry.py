"""notify's own metrics, beyond those of CONTRACT.md (motcua_common.metrics): what SMS
cost, per ward, and which gateways are failing."""
from __future__ import annotations

from prometheus_client import Counter

SMS_SEGMENTS = Counter("motcua_notify_sms_segments_total", "SMS segments sent (what the operator bills)",
                       ["ward_id", "gateway"])
SMS_COST = Counter("motcua_notify_sms_cost_total",
                   "Cost of the SMS sent, segments times NOTIFY_SMS_SEGMENT_PRICE (VND)", ["ward_id"])
LONG_SMS = Counter("motcua_notify_sms_long_total",
                   "SMS sent in more than 2 segments: a template or a broadcast worth shortening",
                   ["ward_id", "template"])
GATEWAY_TRIES = Counter("motcua_notify_gateway_tries_total", "Tries per gateway and outcome",
                        ["gateway", "outcome"])

LONG_SMS_SEGMENTS = 2


def ward_label(ward_id: str | None) -> str:
    return ward_id or "none"


def count_sent_sms(ward_id: str | None, template: str, gateway: str, segments: int, price: float) -> None:
    ward = ward_label(ward_id)
    SMS_SEGMENTS.labels(ward, gateway).inc(segments)
    SMS_COST.labels(ward).inc(segments * price)
    if segments > LONG_SMS_SEGMENTS:
        LONG_SMS.labels(ward, template).inc()
