"""notify's own metrics, beyond those of CONTRACT.md (motcua_common.metrics): what SMS
cost, per ward, which gateways are failing, and what reached phones — the delivery
reports, so that "SMS sent" is never taken for "SMS received"."""
from __future__ import annotations

from prometheus_client import Counter

from motcua_common import metrics

SMS_SEGMENTS = Counter("motcua_notify_sms_segments_total", "SMS segments sent (what the operator bills)",
                       ["ward_id", "gateway"])
SMS_COST = Counter("motcua_notify_sms_cost_total",
                   "Cost of the SMS sent, segments times NOTIFY_SMS_SEGMENT_PRICE (VND)", ["ward_id"])
LONG_SMS = Counter("motcua_notify_sms_long_total",
                   "SMS sent in more than 2 segments: a template or a broadcast worth shortening",
                   ["ward_id", "template"])
GATEWAY_TRIES = Counter("motcua_notify_gateway_tries_total", "Tries per gateway and outcome",
                        ["gateway", "outcome"])

# What the network reported back on SMS, per ward: delivered to the phone, failed (refused
# or undeliverable), expired (no report within the message's validity: reconciliation).
SMS_DELIVERY = Counter("motcua_ward_sms_delivery_total",
                       "SMS delivery reports per ward and outcome (delivered, failed, expired): what reached phones",
                       ["ward_id", "status"])
DELIVERY_STATUS = {"delivered": "delivered", "undeliverable": "failed", "expired": "expired"}

LONG_SMS_SEGMENTS = 2


def ward_label(ward_id: str | None) -> str:
    return ward_id or "none"


def count_sent_sms(ward_id: str | None, template: str, gateway: str, segments: int, price: float) -> None:
    ward = ward_label(ward_id)
    SMS_SEGMENTS.labels(ward, gateway).inc(segments)
    SMS_COST.labels(ward).inc(segments * price)
    if segments > LONG_SMS_SEGMENTS:
        LONG_SMS.labels(ward, template).inc()


def count_delivery(ward_id: str | None, receipt_status: str, count: int = 1) -> None:
    """A delivery report settled `count` SMS of a ward as `receipt_status` (domain.RECEIPT_STATUSES)."""
    status = DELIVERY_STATUS.get(receipt_status)
    if status is not None and count > 0:
        SMS_DELIVERY.labels(ward_label(ward_id), status).inc(count)
        # The shared per-ward outcome counter (sent and failed are counted when sending) gets
        # what happened next, as the dashboards' "SMS delivered per ward" reads it.
        metrics.NOTIFICATIONS_BY_WARD.labels("sms", receipt_status, ward_id or "").inc(count)
