"""Fees of level-4 procedures (dịch vụ công trực tuyến toàn trình): which dossiers must be
paid before processing, and how a payment provider's notice is trusted.

Pure: no Flask or pymongo. A notice is trusted when its HMAC-SHA256 over the exact bytes
received matches the shared secret (compared in constant time), it is recent, and its id
was never seen before; applying a trusted "paid" notice twice changes nothing."""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

NOT_REQUIRED = "not_required"
UNPAID = "unpaid"
PAID = "paid"

PAYMENT_STATUS_LABELS = {
    NOT_REQUIRED: "Không thu phí trực tuyến",
    UNPAID: "Chưa nộp phí",
    PAID: "Đã nộp phí",
}

# An attempt at the provider: pending until the provider says paid or failed.
PENDING, SUCCEEDED, FAILED = "pending", "paid", "failed"

PAYMENT_LEVEL = 4
ONLINE, COUNTER = "online", "counter"
CURRENCY = "VND"
ATTEMPT_LIFETIME = timedelta(minutes=15)  # as long as a provider's checkout page stays open
NOTICE_TOLERANCE = timedelta(minutes=5)  # how old (or early, clocks drift) a notice may be
SIGNATURE_PREFIX = "sha256="


def payment_required(level: int, fee: int) -> bool:
    """Level 4 means the whole service online, the fee included: such a dossier is paid
    before it is processed. Other fees are paid at the counter, outside the workflow."""
    return level >= PAYMENT_LEVEL and fee > 0


def initial_status(level: int, fee: int) -> str:
    return UNPAID if payment_required(level, fee) else NOT_REQUIRED


class PaymentRequired(Exception):
    def __init__(self, fee: int):
        super().__init__(f"a fee of {fee} VND is unpaid")
        self.fee = fee

    @property
    def message(self) -> str:
        return (f"Hồ sơ chưa nộp lệ phí {format_vnd(self.fee)}: chỉ chuyển xử lý sau khi công dân thanh toán "
                "trực tuyến hoặc cán bộ ghi nhận đã thu tại quầy.")


def check_action(action: str, payment_status: str | None, fee: int) -> None:
    """No processing until paid: the one action a fee holds back."""
    if action == "start_processing" and payment_status == UNPAID:
        raise PaymentRequired(fee)


def format_vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".") + " đồng"


# ---------------------------------------------------------------- provider notices
class UntrustedNotice(Exception):
    """A notice refused before it touches any payment; `code` is the problem's code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class PaymentNotice:
    """What a provider tells about one attempt, in the platform's callback format."""

    notice_id: str
    payment_id: str
    status: str  # "paid" or "failed"
    amount: int
    provider_ref: str
    issued_at: datetime

    def to_json(self) -> bytes:
        return json.dumps({
            "notice_id": self.notice_id, "payment_id": self.payment_id, "status": self.status,
            "amount": self.amount, "currency": CURRENCY, "provider_ref": self.provider_ref,
            "issued_at": self.issued_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
        }, ensure_ascii=False, sort_keys=True).encode()


def sign(secret: bytes, body: bytes) -> str:
    return SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_matches(secret: bytes, body: bytes, header: str | None) -> bool:
    return hmac.compare_digest(sign(secret, body).encode(), (header or "").strip().encode())


def read_notice(secret: bytes, body: bytes, signature: str | None, now: datetime) -> PaymentNotice:
    """The notice in `body` when its signature is right and it is fresh; UntrustedNotice
    otherwise. The signature is checked before anything in the body is believed."""
    if not signature_matches(secret, body, signature):
        raise UntrustedNotice("invalid_signature", "Chữ ký thông báo thanh toán không đúng.")
    try:
        data = json.loads(body)
        notice = PaymentNotice(
            notice_id=_text(data["notice_id"]), payment_id=_text(data["payment_id"]), status=data["status"],
            amount=data["amount"], provider_ref=_text(data.get("provider_ref", "") or "-"),
            issued_at=datetime.fromisoformat(data["issued_at"].replace("Z", "+00:00")),
        )
        if notice.status not in (SUCCEEDED, FAILED) or type(notice.amount) is not int \
                or data.get("currency", CURRENCY) != CURRENCY or notice.issued_at.tzinfo is None:
            raise ValueError("unexpected values")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UntrustedNotice("invalid_notice", "Thông báo thanh toán thiếu hoặc sai trường.") from exc
    if abs(now - notice.issued_at) > NOTICE_TOLERANCE:
        raise UntrustedNotice("stale_notice", "Thông báo thanh toán đã quá hạn (gửi lại từ trước).")
    return notice


def _text(value) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 100:
        raise ValueError("an id of 1-100 characters")
    return value
