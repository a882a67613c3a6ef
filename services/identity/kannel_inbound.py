"""Messages to the short code as Kannel delivers them: its `sms-service` calls `get-url`
with the message in the query (deploy/kannel/kannel.conf.template):

    GET /identity/api/v1/sms/kannel?token=<SMS_INBOUND_TOKEN>&from=%p&to=%P&text=%a&id=%I

The same SMS desk as the JSON inbound (sms_inbound.py: DK, MK, TT, and the right form for
anything else), the same per-phone limit. The answer's body is empty: Kannel's
sms-service sends nothing back (max-messages = 0), because every reply goes out through
notify, which retries it, records its delivery and never logs a temporary password.

The secret is accepted as the `token` query parameter (what a get-url can carry) or the
X-Gateway-Token header (a proxy in front of Kannel may move it there)."""
from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, request

from motcua_common.config import Settings
from motcua_common.http import Problem, ValidationFailed, field_error
from motcua_common.ratelimit import FixedWindowLimiter
from motcua_common.rpc import RpcUnavailable

from . import domain, store
from .sms_inbound import SmsDesk

log = logging.getLogger(__name__)
MAX_TEXT = 640   # as the JSON inbound: four concatenated parts at most


def _empty(status: int = 200) -> Response:
    return Response(b"", status=status, mimetype="text/plain")


def kannel_blueprint(settings: Settings, db, desk: SmsDesk, limiter: FixedWindowLimiter, clock) -> Blueprint:
    kannel = Blueprint("identity_kannel", __name__, url_prefix="/identity/api/v1/sms")

    @kannel.get("/kannel")
    def kannel_inbound():
        expected = settings.sms_inbound_token
        if not expected:
            raise Problem(503, "sms_inbound_not_configured", "Chưa cấu hình tin nhắn đến",
                          "SMS_INBOUND_TOKEN is not set: inbound SMS are refused.")
        given = request.args.get("token") or request.headers.get("X-Gateway-Token", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            store.audit(db, "sms_inbound", outcome="bad_gateway_token", client=request.remote_addr or "",
                        gateway="kannel")
            raise Problem(401, "invalid_gateway_token", "Sai mã cổng tin nhắn", "The Kannel token is missing or wrong.")

        phone = domain.normalise_phone(request.args.get("from"))
        text = request.args.get("text")
        errors = []
        if phone is None:
            errors.append(field_error("from", "Số điện thoại gửi đến không hợp lệ. / Invalid sender number."))
        if text is None or len(text) > MAX_TEXT:
            errors.append(field_error("text", f"Nội dung tin nhắn là bắt buộc, tối đa {MAX_TEXT} ký tự."))
        if errors:
            raise ValidationFailed(errors)

        verdict = limiter.hit(phone, clock())
        if not verdict.allowed:
            # 200 so that Kannel does not call again, and no reply: a flood must not cost SMS.
            log.warning("inbound SMS over the per-phone limit", extra={"phone": domain.mask_phone(phone),
                                                                      "gateway": "kannel"})
            return _empty()
        # Kannel's message id (%I) makes a repeated call idempotent; else the text and minute.
        message_key = request.args.get("id") or f"{text}|{int(clock().timestamp() // 60)}"
        try:
            outcome = desk.handle(phone, text, f"kannel:{message_key}")
        except RpcUnavailable:
            # 503: smsbox calls again (http-request-retry); a repeated DK re-issues the password.
            raise Problem(503, "dependency_unavailable", "Dịch vụ tạm thời gián đoạn",
                          "Không gửi được tin trả lời, Kannel sẽ gọi lại. / Reply channel unavailable.",
                          headers={"Retry-After": "30"})
        log.info("inbound SMS handled", extra={"gateway": "kannel", "command": outcome.command,
                                               "outcome": outcome.result})
        return _empty()

    return kannel
