"""notify's HTTP API (CONTRACT.md "notify"): the ward's notifications, groups, broadcasts,
and the SMS gateways' delivery reports.

Routes only translate: query strings, headers and JSON bodies in, a use-case call
(notifications.py, broadcasts.py), the answer and its status out. The rules live in the
use cases; what they need is built once, in deps.build_deps."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, jsonify, request

from motcua_common.auth import STAFF_ROLES, TokenVerifier
from motcua_common.config import Settings
from motcua_common.http import (
    authenticated, create_service_app, current_principal, idempotent, json_body, request_context,
)
from motcua_common.metrics import OutboxPendingCollector
from motcua_common.outbox import pending_count

from . import broadcasts, notifications
from .deps import build_deps

OPENAPI = Path(__file__).with_name("openapi.yaml")

api = Blueprint("notify_api", __name__, url_prefix="/notify/api/v1")


# ---------------------------------------------------------------- notifications
@api.get("/notifications")
@authenticated(*STAFF_ROLES, "monitor")
def list_notifications():
    return jsonify(notifications.list_notifications(
        request_context(), current_principal(), request.args.get("ward_id") or None,
        request.args.get("status") or None, request.args.get("limit")))


# ---------------------------------------------------------------- groups
@api.post("/groups")
@authenticated("ward_admin", "admin")
def create_group():
    deps, principal = request_context(), current_principal()
    group = broadcasts.check_group(deps, principal, json_body())
    return idempotent(deps.db, "notify.groups", lambda: (broadcasts.create_group(deps, principal, group), 201))


@api.get("/groups")
@authenticated(*STAFF_ROLES)  # the ward's staff, its leader included
def list_groups():
    return jsonify(broadcasts.list_groups(request_context(), current_principal(),
                                          request.args.get("ward_id") or None))


# ---------------------------------------------------------------- broadcasts
@api.post("/broadcasts")
@authenticated("ward_admin", "admin")
def create_broadcast():
    deps, principal = request_context(), current_principal()
    broadcast = broadcasts.check_broadcast(deps, principal, json_body())
    return idempotent(deps.db, "notify.broadcasts",
                      lambda: (broadcasts.create_broadcast(deps, principal, broadcast), 202))


@api.get("/broadcasts/<broadcast_id>")
@authenticated(*STAFF_ROLES)  # the ward's staff, its leader included
def broadcast_progress(broadcast_id: str):
    return jsonify(broadcasts.broadcast_progress(request_context(), current_principal(), broadcast_id))


# ---------------------------------------------------------------- delivery reports
@api.post("/receipts")
def delivery_receipt():
    """The SMS gateway reports what became of a message: {id, status} with status
    delivered | undeliverable | expired; header X-Gateway-Token (SMS_DELIVERY_TOKEN)."""
    deps = request_context()
    caller = notifications.admit_gateway(deps, request.headers.get("X-Gateway-Token", ""))
    return jsonify(notifications.record_receipt(deps, caller, json_body()))


@api.get("/kannel/dlr")
def kannel_delivery_report():
    """Kannel's dlr-url: ?id=<notification>&exp=<expiry>&sig=<their signature>&type=%d
    (kannel.py)."""
    deps = request_context()
    notification_id = request.args.get("id", "")
    forwarded = bool(request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded"))
    caller = notifications.admit_kannel_report(deps, notification_id, request.args.get("exp", ""),
                                               request.args.get("sig", ""), forwarded)
    return jsonify(notifications.record_kannel_report(deps, caller, notification_id, request.args.get("type", "")))


def create_app(settings: Settings | None = None, verifier: TokenVerifier | None = None):
    overrides = {"verifier": verifier} if verifier is not None else {}
    deps = build_deps(settings, **overrides)
    return create_service_app(deps, [api], OPENAPI, extra_collectors=[
        OutboxPendingCollector("notify", lambda: pending_count(deps.db))])
