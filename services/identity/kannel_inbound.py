"""Messages to the short code as Kannel delivers them: its `sms-service` POSTs each one to
`post-url` (deploy/kannel/kannel.conf.template):

    POST /identity/api/v1/sms/kannel?id=%I
    X-Kannel-Service: <SMS_INBOUND_TOKEN>     (the sms-service's `name`)
    X-Kannel-From: <the sender's number>      (send-sender = true)
    the message itself as the body, text/plain in the charset its Content-Type names

Kannel cannot add a header of our choosing, but it sends the sms-service's name as
X-Kannel-Service on every call and, at the log levels the template sets, logs it nowhere:
that name is the secret. post-url puts the text in the body and the number in
X-Kannel-From, so nothing secret or personal is left in a URL that an access log keeps (a
proxy's, the ingress's, ours, smsbox's error log when identity cannot be reached): an
`MK <old> <new>` carries two passwords. The old get-url form, with the token, the number
and the text in the query string, is refused (410, `kannel_get_url_retired`), and so is a
token in the query of a POST. (A URL's user:password would reach us as a Basic header
too, but smsbox writes the whole URL into its error log on every failed call.)

The same SMS desk as the JSON inbound (sms_inbound.receive: DK, MK, TT, and the right form
for anything else), the same per-phone limit. The answer's body is empty: Kannel's
sms-service sends nothing back (max-messages = 0), because every reply goes out through
notify, which retries it, records its delivery and never logs a temporary password.

The secret is also accepted as the X-Gateway-Token header (a proxy in front of Kannel may
set that)."""
from __future__ import annotations

import codecs
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


def gateway_secret() -> str:
    """What the caller offers as the gateway's secret: X-Kannel-Service (the sms-service's
    name), else X-Gateway-Token."""
    return request.headers.get("X-Kannel-Service") or request.headers.get("X-Gateway-Token", "")


def message_text(body: bytes, charset: str | None) -> str | None:
    """The message as Kannel POSTs it, decoded in the charset it names (UTF-8 with
    mo-recode; UTF-16BE for UCS-2 without it); None when it cannot be read."""
    try:
        return codecs.decode(body, codecs.lookup(charset or "utf-8").name)
    except (LookupError, UnicodeDecodeError):
        return None


@kannel.get("/kannel")
def kannel_get_url_retired():
    """The old get-url form carried the secret, the number and the text in the query
    string, all kept by access logs: refused without reading any of it."""
    raise Problem(410, "kannel_get_url_retired", "Cấu hình Kannel cũ",
                  "Kannel phải gửi tin đến bằng post-url (kannel.conf.template), không đặt mã bí mật hay nội dung "
                  "tin trong địa chỉ. / Use Kannel's post-url: no secret or message text in the URL.")


@kannel.post("/kannel")
def kannel_inbound():
    deps = request_context()
    if "token" in request.args:
        # A secret in the query string is already in some log: refuse it, so that a
        # configuration doing so is noticed and the secret rotated.
        sms_inbound.bad_gateway_token(deps, request.remote_addr or "", "kannel")
        raise Problem(401, "invalid_gateway_token", "Sai mã cổng tin nhắn",
                      "Mã bí mật không được đặt trong địa chỉ; đặt nó làm `name` của sms-service. / "
                      "The secret must not be in the URL.")
    check_gateway(deps, gateway_secret(), "kannel")
    phone = domain.normalise_phone(request.headers.get("X-Kannel-From"))
    raw = request.get_data(cache=False)
    text = message_text(raw, request.mimetype_params.get("charset")) if len(raw) <= 4 * MAX_TEXT else None
    errors = []
    if phone is None:
        errors.append(field_error("from", "Số điện thoại gửi đến (X-Kannel-From) không hợp lệ. / Invalid sender number."))
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
