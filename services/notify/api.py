"""notify's HTTP API (CONTRACT.md "notify"): the ward's notifications, groups, broadcasts."""
from __future__ import annotations

import hmac
import os
from datetime import datetime, timezone
from pathlib import Path

from flask import Blueprint, jsonify, request

from motcua_common.auth import Principal, TokenVerifier
from motcua_common.config import Settings
from motcua_common.http import (
    Problem, ServiceContext, ValidationFailed, authenticated, create_service_app, current_principal,
    field_error, forbidden, idempotent, json_body,
)
from motcua_common.metrics import OutboxPendingCollector
from motcua_common.mongo import connect, service_database
from motcua_common.outbox import pending_count

from . import domain, kannel, store

OPENAPI = Path(__file__).with_name("openapi.yaml")
DEFAULT_LIMIT, MAX_LIMIT = 100, 500


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _errors(found: list[domain.FieldError]) -> list[dict]:
    return [field_error(e.field, e.message) for e in found]


def _manages_groups_of(principal: Principal, ward_id: str) -> bool:
    """Groups and broadcasts belong to the ward's leadership: its ward_admin (or an admin)."""
    return principal.role == "admin" or (principal.role == "ward_admin" and principal.ward_id == ward_id)


def notification_view(doc: dict) -> dict:
    view = {
        "id": doc["_id"],
        "channel": doc["channel"],
        "to": doc.get("to"),   # masked; unknown (null) for a citizen until the SMS is sent
        "status": doc["status"],
        "attempts": doc.get("attempts", 0),
        "created_at": _iso(doc.get("created_at")),
        "sent_at": _iso(doc.get("sent_at")),
        "ward_id": doc["ward_id"],
        "template": doc["template"],
    }
    if doc.get("segments") is not None:
        view["segments"] = doc["segments"]
    if doc["status"] == domain.FAILED:
        view["reason"] = doc.get("reason")
    return view


def create_app(settings: Settings | None = None, verifier: TokenVerifier | None = None):
    settings = settings or Settings.from_env()
    db = service_database(connect(settings), settings, "notify")
    verifier = verifier or TokenVerifier.from_url(settings.jwks_url)
    ctx = ServiceContext("notify", settings, db, verifier)
    broadcast_rate = float(os.environ.get("NOTIFY_BROADCAST_PER_SECOND", "5"))
    api = Blueprint("notify_api", __name__, url_prefix="/notify/api/v1")

    # ------------------------------------------------------------ notifications
    @api.get("/notifications")
    @authenticated("officer", "ward_admin", "admin", "monitor")
    def list_notifications():
        principal = current_principal()
        ward_id = request.args.get("ward_id") or None
        status = request.args.get("status") or None
        errors = []
        if ward_id is None and principal.role not in ("admin", "monitor"):
            errors.append(field_error("ward_id", "Cần chọn phường. / ward_id is required."))
        if status is not None and status not in domain.STATUSES:
            errors.append(field_error("status", f"Trạng thái là một trong: {', '.join(domain.STATUSES)}."))
        limit = request.args.get("limit", str(DEFAULT_LIMIT))
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            errors.append(field_error("limit", f"Từ 1 đến {MAX_LIMIT}. / Between 1 and {MAX_LIMIT}."))
        if errors:
            raise ValidationFailed(errors)
        if ward_id is not None and not principal.can_watch(ward_id):
            raise forbidden("Bạn chỉ xem được tin nhắn của phường mình. / Only your own ward's notifications.")
        found = store.list_notifications(db, ward_id, status, int(limit))
        return jsonify([notification_view(doc) for doc in found])

    # ------------------------------------------------------------ groups
    @api.post("/groups")
    @authenticated("ward_admin", "admin")
    def create_group():
        principal = current_principal()
        body = json_body()
        ward_id = body.get("ward_id")
        if isinstance(ward_id, str) and ward_id.strip() and not _manages_groups_of(principal, ward_id.strip()):
            raise forbidden("Chỉ trưởng bộ phận của phường mới lập được nhóm. / Only the ward's admin.")
        group, errors = domain.check_group(body)
        if errors:
            raise ValidationFailed(_errors(errors))

        def create():
            group_id = store.create_group(db, group, principal.subject, datetime.now(timezone.utc))
            return {"group_id": group_id, "members": len(group.members)}, 201

        return idempotent(db, "notify.groups", create)

    @api.get("/groups")
    @authenticated("officer", "ward_admin", "admin")
    def list_groups():
        principal = current_principal()
        ward_id = request.args.get("ward_id") or principal.ward_id
        if not ward_id:
            raise ValidationFailed([field_error("ward_id", "Cần chọn phường. / ward_id is required.")])
        if not principal.is_staff_of(ward_id):
            raise forbidden()
        # Members' numbers stay in the database: the list says how many, not who.
        return jsonify([
            {"group_id": g["_id"], "name": g["name"], "ward_id": g["ward_id"], "members": len(g["members"]),
             "created_at": _iso(g.get("created_at"))}
            for g in store.list_groups(db, ward_id)
        ])

    # ------------------------------------------------------------ broadcasts
    @api.post("/broadcasts")
    @authenticated("ward_admin", "admin")
    def create_broadcast():
        principal = current_principal()
        body = json_body()
        group_id = body.get("group_id")
        if not isinstance(group_id, str) or not group_id:
            raise ValidationFailed([field_error("group_id", "Cần chọn nhóm. / group_id is required.")])
        group = store.find_group(db, group_id)
        if group is None:
            raise Problem(404, "group_not_found", "Không tìm thấy nhóm",
                          "Không có nhóm với mã này. / No group with this id.")
        if not _manages_groups_of(principal, group["ward_id"]):
            raise forbidden("Chỉ trưởng bộ phận của phường mới gửi được tin cho nhóm. / Only the ward's admin.")
        sms, errors = domain.check_broadcast_text(body.get("text"), settings.sms_unaccented)
        if errors:
            raise ValidationFailed(_errors(errors))

        def create():
            broadcast_id = store.create_broadcast(db, group, body["text"].strip(), principal.subject,
                                                  datetime.now(timezone.utc), broadcast_rate)
            return {"broadcast_id": broadcast_id, "recipients": len(group["members"]),
                    "encoding": sms.encoding, "segments": sms.segments}, 202

        return idempotent(db, "notify.broadcasts", create)

    @api.get("/broadcasts/<broadcast_id>")
    @authenticated("officer", "ward_admin", "admin")
    def broadcast_progress(broadcast_id: str):
        """Where each member's message is: the ward sees who has not been reached yet."""
        principal = current_principal()
        broadcast = store.find_broadcast(db, broadcast_id)
        if broadcast is None:
            raise Problem(404, "broadcast_not_found", "Không tìm thấy tin nhắn nhóm",
                          "Không có tin nhắn nhóm với mã này. / No broadcast with this id.")
        if not principal.is_staff_of(broadcast["ward_id"]):
            raise forbidden("Chỉ cán bộ của phường. / Only the ward's staff.")
        deliveries = [notification_view(doc) for doc in store.broadcast_deliveries(db, broadcast_id)]
        counts: dict[str, int] = {}
        for d in deliveries:
            counts[d["status"]] = counts.get(d["status"], 0) + 1
        return jsonify({"broadcast_id": broadcast_id, "group_id": broadcast["group_id"],
                        "ward_id": broadcast["ward_id"], "recipients": broadcast["recipients"],
                        "created_at": _iso(broadcast.get("created_at")), "by_status": counts,
                        "deliveries": deliveries})

    # ------------------------------------------------------------ delivery receipts
    @api.post("/receipts")
    def delivery_receipt():
        """The SMS gateway reports what became of a message: {id, status} with status
        delivered | undeliverable | expired; header X-Gateway-Token (SMS_INBOUND_TOKEN)."""
        expected = settings.sms_inbound_token
        given = request.headers.get("X-Gateway-Token", "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise Problem(401, "invalid_gateway_token", "Gateway không hợp lệ",
                          "Thiếu hoặc sai X-Gateway-Token. / Missing or wrong X-Gateway-Token.")
        body = json_body()
        errors = []
        if not isinstance(body.get("id"), str) or not body["id"]:
            errors.append(field_error("id", "Mã tin nhắn là bắt buộc. / Required."))
        if body.get("status") not in domain.RECEIPT_STATUSES:
            errors.append(field_error("status", f"Một trong: {', '.join(domain.RECEIPT_STATUSES)}."))
        if errors:
            raise ValidationFailed(errors)
        doc = store.record_receipt(db, body["id"], body["status"], datetime.now(timezone.utc))
        if doc is None:
            raise Problem(404, "notification_not_found", "Không tìm thấy tin nhắn",
                          "Không có tin nhắn với mã này. / No notification with this id.")
        return jsonify({"id": doc["_id"], "status": doc["status"]})

    @api.get("/kannel/dlr")
    def kannel_delivery_report():
        """Kannel's dlr-url: ?id=<notification>&sig=<its signature>&type=%d (kannel.py).
        A report on the way (buffered, accepted by the SMSC) leaves the message `sent`."""
        notification_id = request.args.get("id", "")
        if not kannel.dlr_signature_ok(settings.sms_inbound_token, notification_id, request.args.get("sig", "")):
            raise Problem(401, "invalid_gateway_token", "Gateway không hợp lệ",
                          "Báo cáo gửi tin không có chữ ký đúng. / The delivery report is not signed.")
        dlr_type = request.args.get("type", "")
        if not dlr_type.isdigit():
            raise ValidationFailed([field_error("type", "Mã báo cáo của Kannel (%d) là một số. / A number.")])
        status = kannel.receipt_status(int(dlr_type))
        if status is None:
            doc = store.find_notification(db, notification_id)
        else:
            doc = store.record_receipt(db, notification_id, status, datetime.now(timezone.utc))
        if doc is None:
            raise Problem(404, "notification_not_found", "Không tìm thấy tin nhắn",
                          "Không có tin nhắn với mã này. / No notification with this id.")
        return jsonify({"id": doc["_id"], "status": doc["status"]})

    return create_service_app(ctx, [api], OPENAPI,
                              extra_collectors=[OutboxPendingCollector("notify", lambda: pending_count(db))])
