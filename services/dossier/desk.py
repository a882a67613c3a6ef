"""The officer's desk (/dossier/desk/{ward_id}): the ward's work list with its tabs and
search, counter intake (tiếp nhận) with the printable receipt, and one dossier's page
with its actions, assignment, papers, fee and the collection of its result.

Server-rendered, in Vietnamese, usable without JavaScript (desk.js only prints and
focuses), sized for a 1366×768 counter PC. Signing in is identity's page
(/identity/login?next=…): the access token in the `motcua_session` cookie
(motcua_common.web_session; a session ended early is refused), every form carries the
CSRF token. Pages only translate HTTP: the work list and search are worklist.py, intake
and the receipt intake.py, the steps dossiers.act / dossiers.assign, papers
attaching.attach, the fee paying.pay — the API's own use cases. A national id (CCCD)
never goes into an address: the search and the intake POST it."""
from __future__ import annotations

import base64
import io
import logging
import re
import secrets
from pathlib import Path
from urllib.parse import quote

from flask import Blueprint, abort, g, make_response, redirect, render_template, request, send_file
from werkzeug.exceptions import HTTPException

from motcua_common.auth import Principal
from motcua_common.http import Problem, ValidationFailed, idempotent, request_context
from motcua_common.web_session import CsrfRefused, check_csrf, csrf_token, issue_csrf_cookie, signed_in

from . import (
    attaching, attachments, domain, dossiers, intake, issuing, paying, payments, store, submission, verification, views,
    worklist,
)
from .catalog import chain_form
from .deps import Deps
from .portal import PORTAL, typed_form

log = logging.getLogger(__name__)

FOLDER = Path(__file__).resolve().parent
DESK = "/dossier/desk"
ACTION_HINTS = {
    "receive": "Ghi chú (không bắt buộc)",
    "start_processing": "Ghi chú (không bắt buộc)",
    "request_supplement": "Giấy tờ còn thiếu (bắt buộc — gửi cho công dân qua SMS)",
    "reject": "Lý do từ chối (bắt buộc — gửi cho công dân qua SMS)",
    "approve": "Ý kiến phê duyệt (không bắt buộc)",
    "return": "Ghi chú (không bắt buộc)",
}
# A citizen without an account (a counter record) is texted nothing: the officer tells them.
UNTEXTED_HINTS = {
    "request_supplement": "Giấy tờ còn thiếu (bắt buộc — công dân không nhận SMS: báo trực tiếp cho công dân)",
    "reject": "Lý do từ chối (bắt buộc — công dân không nhận SMS: báo trực tiếp cho công dân)",
}
ROLE_LABELS = {"officer": "Cán bộ", "ward_admin": "Trưởng bộ phận", "leader": "Lãnh đạo", "admin": "Quản trị"}
PAPER_SIZES = ("a4", "a5")
# The step that moves the dossier on comes first on its page; asking for papers, then
# refusing (the red button) last.
ACTION_ORDER = ("receive", "start_processing", "approve", "return", "request_supplement", "reject")
_LOCAL_MOMENT = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})[ ,]+(\d{1,2})[:h](\d{2})\s*$")

desk = Blueprint("dossier_desk", __name__, url_prefix=DESK, root_path=str(FOLDER))
desk.after_request(issue_csrf_cookie)


def deps() -> Deps:
    return request_context()


def _login_url() -> str:
    # The path alone: a desk page's query (a tab, a paper size) is not worth carrying over.
    return "/identity/login?next=" + quote(request.path, safe="/")


@desk.context_processor
def _page_globals():
    return {"signed_in": signed_in(), "csrf_token": csrf_token, "desk": DESK, "portal": PORTAL,
            "status_labels": domain.STATUS_LABELS, "action_labels": domain.ACTION_LABELS}


def _message(status: int, title: str, text: str, action: tuple[str, str] | None = None, headers: dict | None = None):
    action_url, action_label = action or (None, None)
    response = make_response(render_template("desk/message.html", title=title, text=text, action_url=action_url,
                                             action_label=action_label), status)
    response.headers.update(headers or {})
    return response


def _vietnamese(detail: str | None) -> str:
    return (detail or "").split(" / ")[0].strip()


@desk.errorhandler(CsrfRefused)
def _csrf_refused(_exc):
    return _message(400, "Phiên làm việc đã hết hạn", "Phiên làm việc đã hết hạn, vui lòng tải lại trang rồi thử lại.")


@desk.errorhandler(Problem)
def _problem(exc: Problem):
    return _message(exc.status, exc.title, _vietnamese(exc.detail) or exc.title, headers=exc.headers)


@desk.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    if exc.code == 404:
        return _message(404, "Không tìm thấy", "Không có trang hoặc hồ sơ này.")
    if exc.code == 413:
        return _message(413, "Tệp quá lớn", f"Mỗi tệp tối đa {attachments.MAX_FILE_BYTES // (1024 * 1024)} MB.")
    return _message(exc.code or 500, "Không thực hiện được", "Yêu cầu không hợp lệ. Vui lòng quay lại trang trước.")


def _staff(ward_id: str) -> Principal:
    """A member of the ward's staff (or the platform's administrator); otherwise the
    sign-in page, or a page saying why not."""
    principal = signed_in()
    if principal is None:
        abort(redirect(_login_url(), 303))
    if principal.must_change_password:
        abort(_message(403, "Cần đổi mật khẩu", "Bạn đang dùng mật khẩu tạm thời. Vui lòng đổi mật khẩu trước.",
                       ("/identity/password?next=" + quote(request.path, safe="/"), "Đổi mật khẩu")))
    if not principal.is_staff_of(ward_id):
        abort(_message(403, "Không có quyền",
                       "Màn hình một cửa này dành cho cán bộ, lãnh đạo của phường. Bạn đăng nhập bằng tài khoản khác: "
                       "hãy đăng xuất rồi đăng nhập bằng tài khoản cán bộ của phường.",
                       ("/identity/login?next=" + quote(request.path, safe="/"), "Đăng nhập tài khoản khác")))
    return principal


def _ward_name(ward_id: str) -> str:
    from . import wards

    return wards.name_or_none(deps(), ward_id) or issuing.named_by_id(ward_id)


def _dossier_of_ward(ward_id: str, dossier_id: str) -> dict:
    dossier = store.get_dossier(deps().db, dossier_id)
    if dossier is None or dossier["ward_id"] != ward_id:
        abort(404)
    return dossier


# ---------------------------------------------------------------- the work list and search
@desk.get("/<ward_id>")
def work_list(ward_id: str):
    principal = _staff(ward_id)
    listing = worklist.work_list(deps(), principal, ward_id, request.args.get("tab", worklist.DEFAULT_TAB))
    return _list_page(ward_id, principal, listing)


def _list_page(ward_id: str, principal: Principal, listing: dict, found: dict | None = None, status: int = 200):
    names = intake.officer_names(deps(), ward_id)
    return make_response(render_template(
        "desk/list.html", ward_id=ward_id, ward_name=_ward_name(ward_id), principal=principal, listing=listing,
        found=found, officer_names=names, today=deps().clock.today(),
    ), status)


@desk.post("/<ward_id>/tim-kiem")
def search(ward_id: str):
    """POSTed, so a national id typed in the box stays out of the address bar, the
    browser's history and the access logs."""
    check_csrf()
    principal = _staff(ward_id)
    query = request.form.get("q", "")[:100]
    found = worklist.search(deps(), principal, ward_id, query)
    found["query"] = query.strip()
    listing = worklist.work_list(deps(), principal, ward_id, request.form.get("tab", worklist.DEFAULT_TAB))
    return _list_page(ward_id, principal, listing, found, 422 if found.get("error") else 200)


# ---------------------------------------------------------------- counter intake
@desk.get("/<ward_id>/tiep-nhan")
def intake_page(ward_id: str):
    _staff(ward_id)
    return _intake_page(ward_id, step="tim")


def _intake_page(ward_id: str, step: str, values: dict | None = None, errors: dict | None = None,
                 citizen: intake.Citizen | None = None, message: str | None = None, status: int = 200):
    values = values or {}
    procedure = store.get_procedure(deps().db, values.get("procedure_code", "")) if values.get("procedure_code") else None
    chain = [store.get_procedure(deps().db, c) for c in procedure.next_procedures] if procedure else []
    chain = [p for p in chain if p is not None]
    ticked = set(values.get("chain", ()))
    fields = chain_form([procedure, *[p for p in chain if p.code in ticked]]) if procedure else []
    return make_response(render_template(
        "desk/intake.html", ward_id=ward_id, ward_name=_ward_name(ward_id), step=step, values=values,
        errors=errors or {}, citizen=citizen, message=message, procedures=intake.procedures_offered(deps()),
        procedure=procedure, chain=chain, ticked=ticked, fields=fields, form_token=secrets.token_urlsafe(16),
        expected_due=submission.expected_due(deps(), procedure) if procedure else None,
    ), status)


def _intake_values(fields=None) -> dict:
    form = request.form
    values = {
        "national_id": form.get("national_id", "").strip()[:20],
        "procedure_code": form.get("procedure_code", "").strip()[:40],
        "chain": [c for c in form.getlist("chain")][:10],
        "papers": [p for p in form.getlist("papers")][:50],
        "record": {k: form.get(f"record.{k}", "").strip()[:120] for k in ("full_name", "date_of_birth", "phone")},
    }
    values["form"] = {f.name: form.get(f"form.{f.name}", "").strip() for f in (fields or [])}
    return values


@desk.post("/<ward_id>/tiep-nhan")
def intake_post(ward_id: str):
    request.get_data(cache=True)  # the idempotency record fingerprints the raw form
    check_csrf()
    principal = _staff(ward_id)
    values = _intake_values()
    errors: dict[str, str] = {}
    if not values["procedure_code"] or store.get_procedure(deps().db, values["procedure_code"]) is None:
        errors["procedure_code"] = "Chọn thủ tục cần làm."
    try:
        citizen = intake.find_citizen(deps(), principal, ward_id, values["national_id"])
    except ValidationFailed as problem:
        errors.update({e["field"]: e["message"] for e in problem.errors})
        citizen = None
    if errors:
        values["procedure_code"] = values["procedure_code"] if "procedure_code" not in errors else ""
        return _intake_page(ward_id, "tim", values, errors, None, "Kiểm tra các ô được đánh dấu.", 422)
    procedure = store.get_procedure(deps().db, values["procedure_code"])
    ticked = [p for p in (store.get_procedure(deps().db, c) for c in procedure.next_procedures)
              if p is not None and p.code in values["chain"]]
    fields = chain_form([procedure, *ticked])
    values = _intake_values(fields)
    if request.form.get("buoc") != "nop":
        return _intake_page(ward_id, "khai", values, {}, citizen)
    filed = intake.Intake(national_id=values["national_id"], procedure_code=procedure.code,
                          form=typed_form(fields, values["form"]), chain_codes=tuple(values["chain"]),
                          papers_received=tuple(values["papers"]), record=values["record"])
    try:
        answer = _file_once(principal, ward_id, filed, request.form.get("form_token", ""))
    except ValidationFailed as problem:
        shown = {e["field"]: e["message"] for e in problem.errors}
        return _intake_page(ward_id, "khai", values, shown, citizen, "Chưa nộp được: sửa các ô được đánh dấu.", 422)
    except Problem as problem:
        if problem.code in ("idempotency_key_reused", "idempotency_outcome_lost", "idempotency_in_progress"):
            return _message(409, "Hồ sơ đã được tiếp nhận",
                            "Hồ sơ này vừa được gửi. Xem hồ sơ trong danh sách của phường.",
                            (f"{DESK}/{ward_id}", "Về danh sách hồ sơ"))
        raise
    return redirect(f"{DESK}/{ward_id}/ho-so/{answer['dossier_id']}?moi=1", 303)


def _file_once(principal: Principal, ward_id: str, filed: intake.Intake, form_token: str) -> dict:
    """intake.file behind the API's idempotency record, keyed by the form's one-time token:
    a double press of «Tiếp nhận» files one dossier."""
    d = deps()
    if 1 <= len(form_token) <= 200:
        request.environ["HTTP_IDEMPOTENCY_KEY"] = form_token
    g.principal = principal
    response = idempotent(d.db, "desk-dossiers",
                          lambda: (views.submission(intake.file(d, principal, ward_id, filed)), 201))
    return response.get_json()


# ---------------------------------------------------------------- one dossier
def _dossier_page(ward_id: str, principal: Principal, dossier: dict, errors: dict | None = None,
                  message: str | None = None, status: int = 200, kept: dict | None = None):
    """`kept`: what the officer typed into the form that failed ({action, note, ...}),
    shown again beside its errors."""
    view = worklist.one(deps(), principal, dossier)
    view["actions"] = sorted(view["actions"], key=lambda a: ACTION_ORDER.index(a) if a in ACTION_ORDER else 99)
    token = (dossier.get("result") or {}).get("verify_token")
    texted = bool(dossier.get("citizen_id"))
    return make_response(render_template(
        "desk/dossier.html", ward_id=ward_id, ward_name=_ward_name(ward_id), principal=principal, dossier=dossier,
        **view, errors=errors or {}, message=message, role_labels=ROLE_LABELS,
        hints=ACTION_HINTS if texted else {**ACTION_HINTS, **UNTEXTED_HINTS}, kept=kept or {}, texted=texted,
        just_filed=request.args.get("moi") == "1", allowed_label=attachments.ALLOWED_LABEL,
        max_mb=attachments.MAX_FILE_BYTES // (1024 * 1024), now_local=deps().clock.local(deps().clock.now()),
        verify_address=verification.address(deps(), token) if token else None,
    ), status)


@desk.get("/<ward_id>/ho-so/<dossier_id>")
def dossier_page(ward_id: str, dossier_id: str):
    principal = _staff(ward_id)
    return _dossier_page(ward_id, principal, _dossier_of_ward(ward_id, dossier_id))


@desk.post("/<ward_id>/ho-so/<dossier_id>/thao-tac")
def act(ward_id: str, dossier_id: str):
    check_csrf()
    principal = _staff(ward_id)
    dossier = _dossier_of_ward(ward_id, dossier_id)
    action = request.form.get("action", "")[:40]
    body = {"action": action, "note": request.form.get("note", "")[:2000] or None}
    kept = {"action": action, "note": request.form.get("note", "")[:2000]}
    if action == "return":
        kept.update(collected_by=request.form.get("collected_by", "")[:300],
                    collected_at=request.form.get("collected_at", "")[:40])
        body.update(collected_by=kept["collected_by"], collected_at=iso_moment(kept["collected_at"]))
    try:
        dossiers.act(deps(), principal, dossier, body)
    except ValidationFailed as problem:
        errors = {f"{action}.{e['field']}": e["message"] for e in problem.errors}
        if "không hợp lệ" in errors.get("return.collected_at", ""):
            errors["return.collected_at"] = ("Ghi thời điểm nhận theo dạng ngày/tháng/năm giờ:phút, "
                                             "ví dụ 07/12/2026 15:30.")
        return _dossier_page(ward_id, principal, dossier, errors, "Chưa thực hiện được: sửa ô được đánh dấu.", 422,
                             kept)
    except Problem as problem:
        if problem.status in (403, 409):
            return _dossier_page(ward_id, principal, store.get_dossier(deps().db, dossier_id), {},
                                 _vietnamese(problem.detail) or problem.title, problem.status)
        raise
    return redirect(f"{DESK}/{ward_id}/ho-so/{dossier_id}?da_lam={quote(action)}", 303)


def iso_moment(typed: str) -> str:
    """The collection time as the desk shows it (07/12/2026 15:30, the ward's local time)
    in the ISO form the use case reads (2026-12-07T15:30); anything else as typed (ISO
    included), for the use case to accept or refuse."""
    match = _LOCAL_MOMENT.match(typed or "")
    if not match:
        return typed
    day, month, year, hour, minute = (int(x) for x in match.groups())
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}"


@desk.post("/<ward_id>/ho-so/<dossier_id>/phan-cong")
def assign(ward_id: str, dossier_id: str):
    check_csrf()
    principal = _staff(ward_id)
    dossier = _dossier_of_ward(ward_id, dossier_id)
    body = {"officer_id": request.form.get("officer_id", "")[:128], "note": request.form.get("note", "")[:2000] or None}
    try:
        dossiers.assign(deps(), principal, dossier, body)
    except ValidationFailed as problem:
        errors = {f"assign.{e['field']}": e["message"] for e in problem.errors}
        return _dossier_page(ward_id, principal, dossier, errors, "Chưa phân công được.", 422)
    except Problem as problem:
        if problem.status in (409, 422):
            errors = {f"assign.{e['field']}": e["message"] for e in (problem.errors or [])}
            return _dossier_page(ward_id, principal, store.get_dossier(deps().db, dossier_id), errors,
                                 _vietnamese(problem.detail) or problem.title, problem.status)
        raise
    return redirect(f"{DESK}/{ward_id}/ho-so/{dossier_id}?da_lam=assign", 303)


@desk.post("/<ward_id>/ho-so/<dossier_id>/dinh-kem")
def attach(ward_id: str, dossier_id: str):
    check_csrf()
    principal = _staff(ward_id)
    dossier = _dossier_of_ward(ward_id, dossier_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _dossier_page(ward_id, principal, dossier, {"attach.file": "Chọn tệp bản quét giấy tờ."},
                             "Chưa đính kèm được.", 422)
    try:
        attaching.attach(deps(), principal, dossier, upload.filename, upload.stream.read,
                         request.form.get("document") or None)
    except attachments.AttachmentRefused as exc:
        return _dossier_page(ward_id, principal, store.get_dossier(deps().db, dossier_id), {"attach.file": exc.message},
                             "Chưa đính kèm được.", attachments.REFUSAL_STATUS.get(exc.code, 422))
    return redirect(f"{DESK}/{ward_id}/ho-so/{dossier_id}?da_lam=attach", 303)


@desk.post("/<ward_id>/ho-so/<dossier_id>/le-phi")
def fee_paid(ward_id: str, dossier_id: str):
    check_csrf()
    principal = _staff(ward_id)
    dossier = _dossier_of_ward(ward_id, dossier_id)
    try:
        paying.pay(deps(), principal, dossier, {"method": payments.COUNTER}, request.url_root)
    except Problem as problem:
        return _dossier_page(ward_id, principal, store.get_dossier(deps().db, dossier_id), {},
                             _vietnamese(problem.detail) or problem.title, problem.status)
    return redirect(f"{DESK}/{ward_id}/ho-so/{dossier_id}?da_lam=fee", 303)


@desk.get("/<ward_id>/ho-so/<dossier_id>/ket-qua")
def result(ward_id: str, dossier_id: str):
    _staff(ward_id)
    dossier = _dossier_of_ward(ward_id, dossier_id)
    return views.result_download(dossier, issuing.result_of(deps(), dossier))


@desk.get("/<ward_id>/ho-so/<dossier_id>/tep/<attachment_id>")
def attachment(ward_id: str, dossier_id: str, attachment_id: str):
    _staff(ward_id)
    dossier = _dossier_of_ward(ward_id, dossier_id)
    entry, stored = attaching.open_file(deps(), dossier, attachment_id)
    response = send_file(stored, mimetype=entry["content_type"], as_attachment=True, download_name=entry["filename"],
                         conditional=False, etag=False, max_age=None)
    response.content_length = stored.length
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# ---------------------------------------------------------------- the receipt
def lookup_address(receipt_code: str) -> str:
    """The public lookup's address for the receipt's QR code (the portal's lookup page)."""
    base = (getattr(deps(), "public_url", None) or request.url_root).rstrip("/")
    return f"{base}{PORTAL}/tra-cuu?ma={quote(receipt_code)}"


def qr_data_uri(text: str) -> str:
    """`text` as a QR code, an SVG data URI (the pages' policy allows data: images)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@desk.get("/<ward_id>/ho-so/<dossier_id>/giay-tiep-nhan")
def receipt(ward_id: str, dossier_id: str):
    principal = _staff(ward_id)
    dossier = _dossier_of_ward(ward_id, dossier_id)
    size = request.args.get("kho", "a4")
    size = size if size in PAPER_SIZES else "a4"
    content = intake.receipt(deps(), principal, ward_id, dossier)
    address = lookup_address(dossier["receipt_code"])
    return render_template("desk/receipt.html", ward_id=ward_id, size=size, **content, lookup_address=address,
                           qr=qr_data_uri(address), printed_at=deps().clock.local(deps().clock.now()))
