"""The dossier HTTP API (/dossier/api/v1): the catalog, the working-day calendar, submitting
and tracking dossiers, the officers' actions, attachments, results, fees and a ward's
numbers.

Routes only translate HTTP: they read the caller, the path, the query and the body, call
one use case (dossiers, submission, attaching, issuing, paying, procedures,
calendar_days) with the service's Deps and turn its answer into JSON. The rules live in
those modules and in domain.py, catalog.py, working_days.py."""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, Response, render_template, request, send_file
from prometheus_client.core import GaugeMetricFamily
from pymongo.errors import PyMongoError

from motcua_common import metrics
from motcua_common.auth import TokenVerifier
from motcua_common.config import Settings
from motcua_common.http import (
    Problem, ValidationFailed, create_service_app, current_principal, field_error, idempotent, json_body,
    request_context,
)
from motcua_common.outbox import pending_count

from . import (
    attaching, attachments, calendar_days, dossiers, issuing, offerings, paying, payments, procedures, submission,
    views,
)
from . import exports, numbers
from .citizen_directory import CitizenDirectory
from .deps import LOOKUPS_PER_WINDOW, Deps, build_deps  # noqa: F401 (the limit, where tests read it)
from .payment_provider import LocalPaymentProvider, PaymentSetup
from .signing_keys import ResultKeys
from .officer_directory import OfficerDirectory
from .ward_directory import WardDirectory

log = logging.getLogger(__name__)

OPENAPI_FILE = Path(__file__).resolve().parent / "openapi.yaml"
MAX_VERIFY_BYTES = 10 * 1024 * 1024

bp = Blueprint("dossier", __name__, url_prefix="/dossier/api/v1")
# The local payment provider's checkout pages (one machine and tests only).
local_pay = Blueprint("dossier_local_pay", __name__, url_prefix="/dossier/pay/local")


def create_app(settings: Settings, verifier: TokenVerifier | None = None,
               citizens: CitizenDirectory | None = None, clock=None,
               result_keys: ResultKeys | None = None, payment_setup: PaymentSetup | None = None,
               wards: WardDirectory | None = None, officers: OfficerDirectory | None = None):
    """The dossier API and the citizen portal. `citizens` and `wards` (identity's
    directories), `clock`, the result signing keys and the payment provider default to the
    real ones (deps.build_deps); tests pass stand-ins."""
    service_deps = build_deps(settings, verifier=verifier, citizens=citizens, clock=clock, result_keys=result_keys,
                              payments=payment_setup, wards=wards, officers=officers)
    if isinstance(service_deps.payments.provider, LocalPaymentProvider):
        log.warning("online fees go through the local payment provider, which takes no money "
                    "(PAYMENT_PROVIDER=none turns online payment off)")
    collectors = [metrics.OutboxPendingCollector("dossier", lambda: pending_count(service_deps.db)),
                  OverdueCollector(service_deps)]
    from .portal import portal  # the citizen portal's pages (they call the same use cases)
    from .transparency import transparency  # the public scorecards (no login)
    from .ward_admin import ward_admin  # the ward administrator's pages
    from .desk import desk  # the officer's desk (work list, counter intake, receipts)
    from .verification import verify_pages  # results anyone can check (the QR code's address)
    from .numbers_page import numbers_page  # the ward's numbers for its leader, and their downloads

    return create_service_app(service_deps, [bp, local_pay, portal, ward_admin, transparency, verify_pages, desk,
                                             numbers_page],
                              OPENAPI_FILE, extra_collectors=collectors)


class OverdueCollector:
    """motcua_dossiers_overdue{ward_id}, counted from the database at scrape time.

    Counted here rather than by a worker timer: the number is as fresh as the scrape, the
    same in every API process without coordination, and needs no worker metrics port."""

    def __init__(self, deps: Deps):
        self.deps = deps

    def collect(self):
        described = metrics.DOSSIERS_OVERDUE.describe()[0]
        family = GaugeMetricFamily(described.name, described.documentation, labels=["ward_id"])
        try:
            overdue = dossiers.overdue_by_ward(self.deps)
        except PyMongoError as exc:
            # The other metrics still get scraped; the gap in this one shows the outage.
            log.warning("overdue dossiers not counted: %s", exc.__class__.__name__)
            overdue = {}
        for ward_id, count in sorted(overdue.items()):
            family.add_metric([ward_id], float(count))
        yield family


def deps() -> Deps:
    """The service's dependencies, inside a request."""
    return request_context()


# ---------------------------------------------------------------- catalog and calendar
@bp.get("/procedures")
def list_procedures():
    return [p.to_dict() for p in procedures.active(deps())]


@bp.get("/procedures/<code>")
def procedure(code: str):
    return procedures.get(deps(), code).to_dict()


@bp.get("/catalog")
def catalog_info():
    return procedures.catalog_info(deps())


@bp.post("/procedures")
def create_procedure():
    principal = current_principal()
    procedures.check_admin(principal)
    return procedures.create(deps(), principal, json_body()).to_dict(), 201


@bp.put("/procedures/<code>")
def update_procedure(code: str):
    principal = current_principal()
    procedures.check_admin(principal)
    return procedures.update(deps(), principal, code, json_body()).to_dict()


@bp.delete("/procedures/<code>")
def withdraw_procedure(code: str):
    procedures.withdraw(deps(), current_principal(), code)
    return Response(status=204)


@bp.get("/procedures/<code>/revisions")
def procedure_revisions(code: str):
    return [{**r, "at": views.iso(r["at"])} for r in procedures.revisions(deps(), current_principal(), code)]


@bp.get("/calendar/due-date")
def due_date():
    return calendar_days.due_date(deps(), request.args.get("from"), request.args.get("working_days", ""))


@bp.get("/calendar/exceptions")
def calendar_exceptions():
    return calendar_days.exceptions(deps(), request.args.get("year", "") if "year" in request.args else None)


@bp.put("/calendar/exceptions/<day>")
def put_calendar_exception(day: str):
    principal = current_principal()
    calendar_days.check_admin(principal)
    on = calendar_days.path_date(day)
    return calendar_days.put_exception(deps(), principal, on, json_body())


@bp.delete("/calendar/exceptions/<day>")
def delete_calendar_exception(day: str):
    principal = current_principal()
    calendar_days.check_admin(principal)
    calendar_days.delete_exception(deps(), principal, calendar_days.path_date(day))
    return Response(status=204)


# ---------------------------------------------------------------- submitting and reading
@bp.post("/dossiers")
def submit_dossier():
    principal = current_principal()
    body = json_body()
    d = deps()
    return idempotent(d.db, "dossiers", lambda: (views.submission(submission.submit(d, principal, body)), 201))


@bp.get("/dossiers")
def list_dossiers():
    principal = current_principal()
    return [views.summary(d) for d in dossiers.search(deps(), principal, request.args)]


@bp.get("/dossiers/<dossier_id>")
def get_dossier(dossier_id: str):
    principal = current_principal()
    return dossiers.read(deps(), principal, dossier_id)


# ---------------------------------------------------------------- public lookup
@bp.get("/lookup")
def lookup():
    dossier = dossiers.lookup(deps(), request.remote_addr or "unknown",
                              request.args.get("receipt_code", "").strip(), request.args.get("phone_last4", "").strip())
    return views.public_status(dossier)


# ---------------------------------------------------------------- officers' actions
@bp.post("/dossiers/<dossier_id>/actions")
def act(dossier_id: str):
    d = deps()
    principal = current_principal()
    dossier = dossiers.get(d, dossier_id)
    dossiers.check_may_act(principal, dossier)
    return dossiers.act(d, principal, dossier, json_body())


@bp.post("/dossiers/<dossier_id>/assign")
def assign(dossier_id: str):
    d = deps()
    principal = current_principal()
    dossier = dossiers.get(d, dossier_id)
    dossiers.check_may_assign(principal, dossier)
    return dossiers.assign(d, principal, dossier, json_body())


# ---------------------------------------------------------------- signed results
@bp.get("/dossiers/<dossier_id>/result")
def get_result(dossier_id: str):
    principal = current_principal()
    dossier = dossiers.get(deps(), dossier_id)
    dossiers.check_reader(principal, dossier,
                          "Chỉ người nộp và cán bộ của phường tải được kết quả này. / Owner or ward staff only.")
    return views.result_download(dossier, issuing.result_of(deps(), dossier))


@bp.post("/results/verify")
def verify_result():
    if request.content_length is not None and request.content_length > MAX_VERIFY_BYTES:
        raise Problem(413, "payload_too_large", "Tệp quá lớn",
                      f"Tệp kết quả tối đa {MAX_VERIFY_BYTES // (1024 * 1024)} MB. / File too large.")
    if request.mimetype not in ("application/pdf", "application/octet-stream"):
        raise Problem(415, "unsupported_media_type", "Sai định dạng",
                      "Gửi nội dung tệp PDF với Content-Type: application/pdf. / Send the PDF as application/pdf.")
    return issuing.verify(deps(), request.get_data(cache=False))


# ---------------------------------------------------------------- attachments
_ATTACHMENT_TITLES = {
    "file_too_large": "Tệp quá lớn", "unsupported_file_type": "Định dạng tệp không được nhận",
    "dossier_closed": "Hồ sơ đã kết thúc", "too_many_attachments": "Đã đủ số tệp đính kèm",
    "empty_file": "Tệp rỗng", "unknown_document": "Giấy tờ không thuộc thủ tục",
}


def _attachment_problem(exc: attachments.AttachmentRefused) -> Problem:
    status = attachments.REFUSAL_STATUS.get(exc.code, 422)
    field = "document" if exc.code == "unknown_document" else "file"
    extra = {"errors": [field_error(field, exc.message)]} if status == 422 else {}
    if exc.code == "unsupported_file_type":
        extra["allowed_types"] = list(attachments.ALLOWED_TYPES)
    if exc.code == "file_too_large":
        extra["max_bytes"] = attachments.MAX_FILE_BYTES
    return Problem(status, exc.code, _ATTACHMENT_TITLES[exc.code], exc.message, **extra)


def _readable(dossier_id: str, detail: str) -> tuple[object, dict]:
    """The caller and the dossier (404 first, then 401/403), as the attachment and fee routes answer."""
    dossier = dossiers.get(deps(), dossier_id)
    principal = current_principal()
    dossiers.check_reader(principal, dossier, detail)
    return principal, dossier


@bp.post("/dossiers/<dossier_id>/attachments")
def add_attachment(dossier_id: str):
    principal, dossier = _readable(
        dossier_id, "Chỉ người nộp và cán bộ của phường đính kèm được giấy tờ. / Owner or ward staff only.")
    if (request.content_length or 0) > attachments.MAX_FILE_BYTES + attachments.MULTIPART_OVERHEAD_BYTES:
        raise _attachment_problem(attachments.AttachmentRefused(
            "file_too_large", f"Mỗi tệp tối đa {attachments.MAX_FILE_BYTES // (1024 * 1024)} MB."))
    if request.mimetype != "multipart/form-data":
        raise Problem(415, "unsupported_media_type", "Sai định dạng",
                      "Gửi tệp dạng multipart/form-data, trường «file» (và «document» nếu muốn nêu giấy tờ nào).")
    upload = request.files.get("file")
    if upload is None:
        raise ValidationFailed([field_error("file", "Chọn tệp cần đính kèm (trường «file»).")])
    try:
        entry = attaching.attach(deps(), principal, dossier, upload.filename, upload.stream.read,
                                 request.form.get("document"))
    except attachments.AttachmentRefused as exc:
        raise _attachment_problem(exc) from exc
    return views.attachment(entry), 201


@bp.get("/dossiers/<dossier_id>/attachments")
def list_attachments(dossier_id: str):
    _principal, dossier = _readable(
        dossier_id, "Chỉ người nộp và cán bộ của phường xem được giấy tờ này. / Owner or ward staff only.")
    return [views.attachment(a) for a in dossier.get("attachments", [])]


@bp.get("/dossiers/<dossier_id>/attachments/<attachment_id>")
def download_attachment(dossier_id: str, attachment_id: str):
    _principal, dossier = _readable(
        dossier_id, "Chỉ người nộp và cán bộ của phường tải được giấy tờ này. / Owner or ward staff only.")
    entry, stored = attaching.open_file(deps(), dossier, attachment_id)
    response = send_file(stored, mimetype=entry["content_type"], as_attachment=True, download_name=entry["filename"],
                         conditional=False, etag=False, max_age=None)
    response.content_length = stored.length
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# ---------------------------------------------------------------- level-4 fees
@bp.post("/dossiers/<dossier_id>/payments")
def pay(dossier_id: str):
    principal = current_principal()
    body = json_body() if request.content_length else {}
    d = deps()
    dossier = dossiers.get(d, dossier_id)
    return idempotent(d.db, f"payments:{dossier_id}",
                      lambda: paying.pay(d, principal, dossier, body, request.url_root))


@bp.get("/dossiers/<dossier_id>/payments")
def list_payments(dossier_id: str):
    _principal, dossier = _readable(
        dossier_id, "Chỉ người nộp và cán bộ của phường xem được lệ phí hồ sơ này. / Owner or ward staff only.")
    return paying.attempts(deps(), dossier)


@bp.post("/payments/callback")
def payment_callback():
    """The provider's notice. No bearer token: the HMAC signature authenticates it."""
    if (request.content_length or 0) > 16 * 1024:
        raise Problem(413, "payload_too_large", "Dữ liệu quá lớn", "Thông báo thanh toán quá lớn.")
    return paying.settle(deps(), request.get_data(cache=False), request.headers.get("X-Payment-Signature"))


@local_pay.get("/<payment_id>")
def local_checkout(payment_id: str):
    attempt = paying.local_attempt(deps(), payment_id)
    return render_template("local_checkout.html", attempt=attempt, amount=payments.format_vnd(attempt["amount"]),
                           outcome=None)


@local_pay.post("/<payment_id>")
def local_checkout_answer(payment_id: str):
    attempt = paying.answer_local_checkout(deps(), payment_id, request.form.get("answer") == "pay")
    return render_template("local_checkout.html", attempt=attempt, amount=payments.format_vnd(attempt["amount"]),
                           outcome=attempt["status"])


# ---------------------------------------------------------------- what a ward takes online
@bp.get("/wards/<ward_id>/procedures")
def ward_procedures(ward_id: str):
    return offerings.catalog_for(deps(), ward_id)


@bp.put("/wards/<ward_id>/procedures/<code>")
def put_ward_procedure(ward_id: str, code: str):
    principal = current_principal()
    offerings.check_may_configure(principal, ward_id)
    return offerings.set_online(deps(), principal, ward_id, code, json_body())


# ---------------------------------------------------------------- a ward's numbers
@bp.get("/wards/<ward_id>/stats")
def ward_stats(ward_id: str):
    return numbers.ward_numbers(deps(), current_principal(), ward_id, request.args.get("from"), request.args.get("to"))


@bp.get("/wards/<ward_id>/exports/<kind>.<fmt>")
def ward_export(ward_id: str, kind: str, fmt: str):
    """dossiers.csv|xlsx (one row a dossier) and stats.csv|xlsx (the numbers), ?from=&to=."""
    makers = {"dossiers": exports.dossiers_file, "stats": exports.stats_file}
    if kind not in makers or fmt not in exports.FORMATS:
        raise Problem(404, "not_found", "Không có tệp này",
                      "Tệp xuất là dossiers.csv, dossiers.xlsx, stats.csv hoặc stats.xlsx. / No such export.")
    content, name = makers[kind](deps(), current_principal(), ward_id, fmt, request.args.get("from"),
                                 request.args.get("to"))
    return exports_response(content, name, fmt)


def exports_response(content: bytes, name: str, fmt: str) -> Response:
    """An export as a download (the API and the numbers page send it alike)."""
    return Response(content, mimetype=exports.FORMATS[fmt].split(";")[0], headers={
        "Content-Type": exports.FORMATS[fmt], "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"})
