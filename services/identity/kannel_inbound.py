"""Messages to the short code as Kannel delivers them: its `sms-service` calls `get-url`
with the message in the query (deploy/kannel/kannel.conf.template):

    GET /identity/api/v1/sms/kannel?token=<SMS_INBOUND_TOKEN>&from=%p&to=%P&text=%a&id=%I

The same SMS desk as the JSON inbound (sms_inbound.receive: DK, MK, TT, and the right form
for anything else), the same per-phone limit. The answer's body is empty: Kannel's
sms-service sends nothing back (max-messages = 0), because every reply goes out through
notify, which retries it, records its delivery and never logs a temporary password.

The secret is accepted as the `token` query parameter (what a get-url can carry) or the
X-Gateway-Token header (a proxy in front of Kannel may move it there)."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, request

from motcua_common.http import Problem, ValidationFailed, field_error, request_context, require_gateway_token
from motcua_common.rpc import RpcUnavailable

from . import domain, sms_inbound
from .problems import reply_channel_unavailable, sms_not_configured

log = logging.getLogger(__name__)
MAX_TEXT = 640   # as the JSON inbound: four concatenated parts at most

kannel = Blueprint("identity_kannel", __name__, url_prefix="/identity/api/v1/sms")


def _empty(status: int = 200) -> Response:
    return Response(b"", status=status, mimetype="text/plain")


def check_gateway(deps, given: str | None, gateway: str | None = None) -> None:
    """The gateway's shared secret, for both inbound routes: 503 while none is configured,
    401 invalid_gateway_token (and an audit entry) when it is missing or wrong."""
    expected = deps.settings.sms_inbound_token
    if not expected:
        raise sms_not_configured()
    try:
        require_gateway_token(expected, given)
    except Problem:
        sms_inbound.bad_gateway_token(deps, request.remote_addr or "", gateway)
        raise


@kannel.get("/kannel")
def kannel_inbound():
    deps = request_context()
    check_gateway(deps, request.args.get("token") or request.headers.get("X-Gateway-Token", ""), "kannel")
    phone = domain.normalise_phone(request.args.get("from"))
    text = request.args.get("text")
    errors = []
    if phone is None:
        errors.append(field_error("from", "Số điện thoại gửi đến không hợp lệ. / Invalid sender number."))
    if text is None or len(text) > MAX_TEXT:
        errors.append(field_error("text", f"Nội dung tin nhắn là bắt buộc, tối đa {MAX_TEXT} ký tự."))
    if errors:
        raise ValidationFailed(errors)
    try:
        outcome = sms_inbound.receive(deps, phone, text, request.args.get("id"), gateway="kannel")
    except RpcUnavailable:
        # 503: smsbox calls again (http-request-retry); a repeated DK re-issues the password.
        raise reply_channel_unavailable("Không gửi được tin trả lời, Kannel sẽ gọi lại. / Reply channel unavailable.")
    if isinstance(outcome, sms_inbound.RateLimited):
        return _empty()  # 200 so that Kannel does not call again
    log.info("inbound SMS handled", extra={"gateway": "kannel", "command": outcome.command,
                                           "outcome": outcome.result})
    return _empty()
