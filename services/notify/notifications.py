"""Use cases on the ward's notifications: who may list them (and what they see of each),
the delivery reports the SMS gateways send back, and the reconciliation of messages no
report ever came for.

Plain functions `(deps, principal, input...)`: the API, the worker and the CLI call the
same ones. They raise motcua_common.http.Problem for what the caller must be told; the
HTTP routes only turn that, and the dicts returned, into responses."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from motcua_common.auth import Principal
from motcua_common.http import Problem, ValidationFailed, field_error, forbidden, require_gateway_token

from . import domain, kannel, store, telemetry

DEFAULT_LIMIT, MAX_LIMIT = 100, 500

# notify's own wording of a refused gateway (the shared check words its title otherwise).
GATEWAY_REFUSED_TITLE = "Gateway không hợp lệ"


def iso(moment: datetime | None) -> str | None:
    """A stored moment as the API shows it: UTC, milliseconds, a trailing Z."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def notification_view(doc: dict) -> dict:
    """What staff see of one notification: the number masked, never the text or params."""
    view = {
        "id": doc["_id"],
        "channel": doc["channel"],
        "to": doc.get("to"),   # masked; unknown (null) for a citizen until the SMS is sent
        "status": doc["status"],
        "attempts": doc.get("attempts", 0),
        "created_at": iso(doc.get("created_at")),
        "sent_at": iso(doc.get("sent_at")),
        "ward_id": doc["ward_id"],
        "template": doc["template"],
    }
    if doc.get("segments") is not None:
        view["segments"] = doc["segments"]
    if doc["status"] == domain.FAILED:
        view["reason"] = doc.get("reason")
    return view


def list_notifications(deps, principal: Principal, ward_id: str | None, status: str | None,
                       limit: str | None) -> list[dict]:
    """A ward's notifications, newest first (every ward's for an admin or a monitor).
    `limit` as the caller typed it (a query string): checked here."""
    limit = str(DEFAULT_LIMIT) if limit is None else limit
    errors = []
    if ward_id is None and principal.role not in ("admin", "monitor"):
        errors.append(field_error("ward_id", "Cần chọn phường. / ward_id is required."))
    if status is not None and status not in domain.STATUSES:
        errors.append(field_error("status", f"Trạng thái là một trong: {', '.join(domain.STATUSES)}."))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
        errors.append(field_error("limit", f"Từ 1 đến {MAX_LIMIT}. / Between 1 and {MAX_LIMIT}."))
    if errors:
        raise ValidationFailed(errors)
    if ward_id is not None and not principal.can_watch(ward_id):
        raise forbidden("Bạn chỉ xem được tin nhắn của phường mình. / Only your own ward's notifications.")
    return [notification_view(doc) for doc in store.list_notifications(deps.db, ward_id, status, int(limit))]


# ---------------------------------------------------------------- delivery reports
@dataclass(frozen=True)
class GatewayCaller:
    """The SMS gateway, admitted by its proof: the caller ("principal") of the
    delivery-report use cases. Only the admit_* functions make one."""

    proof: str   # "token" (X-Gateway-Token) | "signature" (a Kannel report's signed id)


def admit_gateway(deps, given_token: str | None) -> GatewayCaller:
    """The gateway's X-Gateway-Token against SMS_DELIVERY_TOKEN, in constant time; 401
    invalid_gateway_token. Receipts have their own secret: the one that lets a gateway
    hand identity an inbound SMS (SMS_INBOUND_TOKEN) does not settle messages here."""
    try:
        require_gateway_token(deps.settings.sms_delivery_token, given_token or "")
    except Problem as refused:
        refused.title = GATEWAY_REFUSED_TITLE
        raise
    return GatewayCaller("token")


def admit_kannel_report(deps, notification_id: str, expires: str, signature: str,
                        forwarded: bool = False) -> GatewayCaller:
    """A Kannel dlr-url call: its `sig` must sign the notification id and the URL's expiry
    with SMS_REPORT_SIGNING_KEY, and the expiry must not have passed (kannel.py).

    `forwarded`: the request came through a proxy (X-Forwarded-For or Forwarded). Kannel
    calls notify directly on the internal network, so such a report came in by the public
    ingress, from whoever read a report URL somewhere: refused (403) unless the operator
    runs Kannel behind a proxy (KANNEL_REPORTS_VIA_PROXY)."""
    if forwarded and not getattr(deps, "kannel_reports_via_proxy", False):
        raise Problem(403, "kannel_report_not_internal", GATEWAY_REFUSED_TITLE,
                      "Báo cáo gửi tin của Kannel chỉ nhận trong mạng nội bộ. / "
                      "Kannel's delivery reports are taken from the internal network only.")
    now = deps.clock.now().timestamp()
    if not kannel.dlr_signature_ok(deps.settings.sms_report_signing_key, notification_id, expires, signature, now):
        raise Problem(401, "invalid_gateway_token", GATEWAY_REFUSED_TITLE,
                      "Báo cáo gửi tin không có chữ ký đúng hoặc đã hết hạn. / "
                      "The delivery report is not signed, or its URL has expired.")
    return GatewayCaller("signature")


def _not_found() -> Problem:
    return Problem(404, "notification_not_found", "Không tìm thấy tin nhắn",
                   "Không có tin nhắn với mã này. / No notification with this id.")


def record_receipt(deps, caller: GatewayCaller, body: dict) -> dict:
    """POST /receipts: {id, status} with status delivered | undeliverable | expired."""
    errors = []
    if not isinstance(body.get("id"), str) or not body["id"]:
        errors.append(field_error("id", "Mã tin nhắn là bắt buộc. / Required."))
    if body.get("status") not in domain.RECEIPT_STATUSES:
        errors.append(field_error("status", f"Một trong: {', '.join(domain.RECEIPT_STATUSES)}."))
    if errors:
        raise ValidationFailed(errors)
    doc = _settle(deps, body["id"], body["status"])
    if doc is None:
        raise _not_found()
    return {"id": doc["_id"], "status": doc["status"]}


def _settle(deps, notification_id: str, status: str) -> dict | None:
    """Apply a delivery report and count it per ward (telemetry.SMS_DELIVERY) when it
    changed what is known of the SMS: a repeated report is counted once."""
    before = store.find_notification(deps.db, notification_id)
    doc = store.record_receipt(deps.db, notification_id, status, deps.clock.now())
    if doc is not None and before is not None and before.get("status") != doc.get("status") \
            and doc.get("channel", "sms") == "sms":
        telemetry.count_delivery(doc.get("ward_id"), doc["status"])
    return doc


def record_kannel_report(deps, caller: GatewayCaller, notification_id: str, dlr_type: str) -> dict:
    """Kannel's report type (%d) on one message. A report on the way (buffered, accepted
    by the SMSC) leaves the message `sent`."""
    if not dlr_type.isdigit():
        raise ValidationFailed([field_error("type", "Mã báo cáo của Kannel (%d) là một số. / A number.")])
    status = kannel.receipt_status(int(dlr_type))
    if status is None:
        doc = store.find_notification(deps.db, notification_id)
    else:
        doc = _settle(deps, notification_id, status)
    if doc is None:
        raise _not_found()
    return {"id": doc["_id"], "status": doc["status"]}


def expire_unreceipted(deps, principal: Principal | None = None) -> int:
    """Sent messages with no receipt after their validity period become `expired`; how
    many. Run by the worker's timer (principal None: the platform itself)."""
    now = deps.clock.now()
    # Which wards' SMS are about to expire, for the delivery counts (read just before).
    due = deps.db[store.NOTIFICATIONS].aggregate([
        {"$match": {"status": domain.SENT, "awaits_receipt": True,
                    "sent_at": {"$lt": now - timedelta(seconds=deps.validity_seconds)}}},
        {"$group": {"_id": "$ward_id", "n": {"$sum": 1}}}])
    by_ward = {row["_id"]: row["n"] for row in due}
    expired = store.reconcile_unreceipted(deps.db, now, deps.validity_seconds)
    if expired == sum(by_ward.values()):
        for ward_id, count in by_ward.items():
            telemetry.count_delivery(ward_id, domain.EXPIRED, count)
    else:  # a report landed in between: the total is right, the wards are not known
        telemetry.count_delivery(None, domain.EXPIRED, expired)
    return expired
