"""Paying a level-4 fee (nộp lệ phí trực tuyến): opening a checkout at the provider, the
cash a counter officer takes, and the provider's signed notice that settles an attempt.

Plain functions of the dependencies (deps.Deps) and the caller, like submission.py: the
API's routes, the portal's pages and the local provider's checkout page only translate
HTTP; the failures are problem details they pass on unchanged."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime

from motcua_common.auth import Principal
from motcua_common.http import Problem, ValidationFailed, field_error, forbidden, not_found

from . import domain, payments, store, views
from .catalog import Procedure
from .deps import Deps
from .payment_provider import LocalPaymentProvider

log = logging.getLogger(__name__)


def pay(deps: Deps, principal: Principal, dossier: dict, body: dict, platform_url: str) -> tuple[dict, int]:
    """POST /dossiers/{id}/payments: an online checkout (the citizen, or staff handing the
    link over), or the cash taken at the counter (staff)."""
    owner = principal.role == "citizen" and principal.subject == dossier["citizen_id"]
    staff = principal.is_staff_of(dossier["ward_id"])
    if not (owner or staff):
        raise forbidden("Chỉ người nộp và cán bộ của phường nộp được lệ phí hồ sơ này. / Owner or ward staff only.")
    method = body.get("method", payments.ONLINE)
    if method not in (payments.ONLINE, payments.COUNTER):
        raise ValidationFailed([field_error("method", "«online» (thanh toán trực tuyến) hoặc «counter» (đã thu tại quầy).")])
    _check_payable(dossier)
    if method == payments.COUNTER:
        if not staff:
            raise forbidden("Chỉ cán bộ một cửa ghi nhận được lệ phí thu tại quầy. / Ward staff only.")
        return _paid_at_counter(deps, principal, dossier), 201
    return _checkout(deps, principal, dossier, platform_url)


def _check_payable(dossier: dict) -> None:
    status = dossier.get("payment_status", payments.NOT_REQUIRED)
    if status == payments.NOT_REQUIRED:
        raise Problem(409, "payment_not_required", "Hồ sơ không cần nộp phí trực tuyến",
                      "Thủ tục này không thu lệ phí trực tuyến (chỉ thủ tục mức độ 4 có lệ phí mới thu). "
                      "/ No online fee for this dossier.", payment_status=status)
    if status == payments.PAID:
        raise Problem(409, "already_paid", "Hồ sơ đã nộp phí",
                      "Lệ phí hồ sơ này đã được nộp; không cần nộp lại. / Already paid.", payment_status=status)
    if dossier["status"] in domain.FINISHED_STATUSES:
        raise Problem(409, "dossier_closed", "Hồ sơ đã kết thúc",
                      f"Hồ sơ đã «{domain.STATUS_LABELS[dossier['status']]}»: không thu lệ phí nữa.",
                      current_status=dossier["status"])


def _paid_at_counter(deps: Deps, principal: Principal, dossier: dict) -> dict:
    updated = store.record_counter_payment(deps.db, dossier, principal.subject, deps.clock.now())
    if updated is None:
        raise Problem(409, "already_paid", "Hồ sơ đã nộp phí", "Lệ phí vừa được ghi nhận. / Paid meanwhile.",
                      payment_status=payments.PAID)
    log.info("fee taken at the counter", extra={"dossier_id": dossier["_id"], "amount": dossier["fee"]})
    return views.payment_state(updated)


def _checkout(deps: Deps, principal: Principal, dossier: dict, platform_url: str) -> tuple[dict, int]:
    provider = deps.payments.provider
    if provider is None:
        raise Problem(409, "online_payment_unavailable", "Chưa có thanh toán trực tuyến",
                      "Phường chưa kết nối cổng thanh toán: vui lòng nộp lệ phí tại Bộ phận một cửa. "
                      "/ Online payment is off: pay at the counter.")
    now = deps.clock.now()
    # A checkout still open is handed out again: a double click does not open two, and
    # the citizen is not asked to pay twice.
    open_attempt = store.pending_payment(deps.db, dossier["_id"], now)
    if open_attempt is not None:
        return views.payment_attempt(open_attempt), 200
    payment_id = str(uuid.uuid4())
    checkout = provider.start(payment_id, dossier["fee"], f"Lệ phí hồ sơ {dossier['receipt_code']}", platform_url)
    attempt = {
        "_id": payment_id, "dossier_id": dossier["_id"], "ward_id": dossier["ward_id"],
        "receipt_code": dossier["receipt_code"], "procedure_name": dossier["procedure_name"],
        "amount": dossier["fee"], "currency": payments.CURRENCY, "provider": provider.name,
        "provider_ref": checkout.provider_ref, "payment_url": checkout.payment_url, "status": payments.PENDING,
        "created_at": now, "created_by_role": principal.role, "expires_at": now + payments.ATTEMPT_LIFETIME,
    }
    store.insert_payment(deps.db, attempt)
    log.info("payment opened", extra={"dossier_id": dossier["_id"], "payment_id": payment_id, "provider": provider.name})
    return views.payment_attempt(attempt), 201


def settle(deps: Deps, body: bytes, signature: str | None) -> dict:
    """POST /payments/callback: apply a provider's signed notice, once."""
    now = deps.clock.now()
    try:
        notice = payments.read_notice(deps.payments.callback_secret, body, signature, now)
    except payments.UntrustedNotice as exc:
        log.warning("payment notice refused", extra={"reason": exc.code})
        status = 422 if exc.code == "invalid_notice" else 401
        raise Problem(status, exc.code, "Thông báo thanh toán bị từ chối", exc.message) from exc
    attempt = store.get_payment(deps.db, notice.payment_id)
    if attempt is None:
        raise Problem(404, "not_found", "Không có giao dịch", "Không có giao dịch thanh toán với mã này.")
    if notice.amount != attempt["amount"]:
        log.warning("payment notice with another amount refused", extra={"payment_id": attempt["_id"]})
        raise Problem(422, "amount_mismatch", "Số tiền không khớp",
                      "Số tiền trong thông báo khác số tiền của giao dịch; không ghi nhận.")
    try:
        attempt, became_paid = store.apply_notice(deps.db, notice, now + 2 * payments.NOTICE_TOLERANCE, now)
    except store.NoticeReplayed as exc:
        log.warning("payment notice replayed", extra={"payment_id": notice.payment_id})
        raise Problem(409, "notice_replayed", "Thông báo đã được xử lý",
                      "Thông báo thanh toán này đã được nhận trước đó; không xử lý lại.") from exc
    if attempt.get("refund_due"):
        log.warning("a dossier paid twice: the later attempt is to be refunded",
                    extra={"payment_id": attempt["_id"], "dossier_id": attempt["dossier_id"]})
    log.info("payment notice applied", extra={"payment_id": attempt["_id"], "dossier_id": attempt["dossier_id"],
                                              "status": attempt["status"], "dossier_paid": became_paid})
    return {"payment_id": attempt["_id"], "status": attempt["status"], "dossier_paid": became_paid}


def attempts(deps: Deps, dossier: dict) -> dict:
    """GET /dossiers/{id}/payments: the dossier's fee and every attempt to pay it."""
    return {"payment": views.payment_state(dossier),
            "attempts": [views.payment_attempt(p) for p in store.payments_of(deps.db, dossier["_id"])]}


def fee_note(deps: Deps, procedure: Procedure) -> str:
    """How the fee of `procedure` is paid, in a sentence for the citizen."""
    if procedure.fee == 0:
        return "Không mất lệ phí."
    amount = payments.format_vnd(procedure.fee)
    if not payments.payment_required(procedure.level, procedure.fee):
        return f"Lệ phí {amount}, nộp tại Bộ phận một cửa."
    if deps.payments.provider is None:
        return f"Lệ phí {amount}, nộp tại Bộ phận một cửa (phường chưa có thanh toán trực tuyến)."
    return f"Lệ phí {amount}, nộp trực tuyến ngay sau khi nộp hồ sơ, trên trang hồ sơ."


# ---------------------------------------------------------------- the local provider's checkout page
def local_attempt(deps: Deps, payment_id: str) -> dict:
    """An attempt opened at the local provider (its checkout page exists only then)."""
    if not isinstance(deps.payments.provider, LocalPaymentProvider):
        raise not_found("Không có trang thanh toán này. / No such checkout.")
    attempt = store.get_payment(deps.db, payment_id)
    if attempt is None or attempt.get("provider") != LocalPaymentProvider.name:
        raise not_found("Không có giao dịch thanh toán này. / No such checkout.")
    return attempt


def answer_local_checkout(deps: Deps, payment_id: str, paid: bool) -> dict:
    """The local checkout page answered (pay, or give up): settled once; the attempt as it
    stands afterwards."""
    attempt = local_attempt(deps, payment_id)
    if attempt["status"] == payments.PENDING:
        finish_local_checkout(deps, attempt, paid, deps.clock.now())
        attempt = store.get_payment(deps.db, payment_id)
    return attempt


def finish_local_checkout(deps: Deps, attempt: dict, paid: bool, now: datetime) -> dict:
    """The local provider's page was answered: it signs its notice, which then goes through
    exactly the verification a notice POSTed to /payments/callback goes through."""
    body, signature = deps.payments.provider.notice(attempt["_id"], attempt["amount"], attempt["provider_ref"], paid, now)
    return settle(deps, body, signature)
