"""The administrators' pages of identity, in Vietnamese, server-rendered, plain form posts
(everything works without JavaScript), for a ward office's PC (1366×768: compact tables):

  /identity/admin/wards               the platform admin: pick a province, search its
                                      communes and wards by name (accents optional), tick
                                      many and open them at once; every open ward listed
                                      with links to its admin pages.
  /identity/admin/wards/<ward_id>     the ward admin of that ward (or the admin): the
                                      ward's officers — create, re-role, seat at a counter,
                                      deactivate, reset a password (shown once) — and the
                                      target population behind the coverage figure.

Staff sign in at /identity/login?next=… with the browser session of the citizen pages
(motcua_common.web_session: cookie + CSRF). Each form calls the use case the JSON API
calls (wards.py, officers.py): the same rules, audit and events; refusals become messages
beside the fields (problems.py), with the API's status."""
from __future__ import annotations

import logging

from flask import Blueprint, redirect, request, url_for

from motcua_common.auth import WARD_STAFF_ROLES, Principal
from motcua_common.http import Problem, request_context
from motcua_common.web_session import CsrfRefused, check_csrf, issue_csrf_cookie, session_principal

from . import officers, units, wards
from .errors import IdentityError
from .pages import _client, _field_messages, _page, _vietnamese, failure_message
from .problems import problem_of

log = logging.getLogger(__name__)
admin = Blueprint("identity_admin", __name__, url_prefix="/identity/admin")

# Messages after a successful post (the redirect carries only this code, never a name).
DONE = {
    "opened": "Đã mở các phường đã chọn.",
    "officer_created": "Đã tạo tài khoản cán bộ.",
    "officer_updated": "Đã lưu thay đổi của cán bộ.",
    "officer_deactivated": "Đã khóa tài khoản. Cán bộ này không đăng nhập được nữa và mọi phiên đang mở đã bị chấm dứt.",
    "officer_activated": "Đã mở lại tài khoản.",
    "population_saved": "Đã lưu dân số mục tiêu.",
}
OFFICER_FIELDS = ("username", "full_name", "role", "counter_id", "password")
MAX_LISTED_UNITS = 300


@admin.after_request
def _after(response):
    response.headers["Cache-Control"] = "no-store"   # forms with CSRF tokens, temporary passwords
    return issue_csrf_cookie(response)


@admin.context_processor
def _globals():
    from motcua_common.web_session import csrf_token

    return {"csrf_token": csrf_token, "signed_in": True, "role_names": officers.ROLE_NAMES}


class _Refused(Exception):
    """Not this page's user: the response to send instead."""

    def __init__(self, response):
        self.response = response


@admin.errorhandler(_Refused)
def _refused(exc: _Refused):
    return exc.response


def _staff(allowed) -> Principal:
    """The signed-in staff member `allowed(principal)` lets in: otherwise the sign-in page
    (no session, or a session ended), the password change (a temporary password), or 403."""
    deps = request_context()
    principal = session_principal(deps.verifier)
    if principal is not None and deps.revocations is not None and deps.revocations.is_revoked(
            principal.subject, principal.issued_at):
        principal = None   # deactivated, moved or re-roled since: sign in again
    if principal is None:
        raise _Refused(redirect(url_for("identity_pages.login_form", next=request.full_path.rstrip("?")), 303))
    if principal.must_change_password:
        raise _Refused(redirect(url_for("identity_pages.password_form", next=request.path), 303))
    if not allowed(principal):
        raise _Refused(_page("admin_message.html", 403, title="Không có quyền truy cập",
                             message="Trang này dành cho quản trị hệ thống và trưởng bộ phận một cửa của phường. "
                                     "Tài khoản bạn đang dùng không có quyền này; hãy đăng xuất và đăng nhập "
                                     "bằng tài khoản được cấp quyền.", principal=principal))
    return principal


def _is_admin(principal: Principal) -> bool:
    return principal.role == "admin"


def _manages(ward_id: str):
    return lambda p: p.role == "admin" or (p.role == "ward_admin" and p.ward_id == ward_id)


def _problem(error: IdentityError) -> Problem:
    return problem_of(error)


# ---------------------------------------------------------------- the platform's wards
def _wards_page(principal: Principal, status: int = 200, errors: dict | None = None, outcomes=None,
                province_code: str = "", q: str = "", ticked: set | None = None):
    deps = request_context()
    found, too_many = [], False
    if province_code or q:
        try:
            found = wards.administrative_units(deps, province_code or None, q or None)
        except IdentityError as refused:
            errors = {**(errors or {}), **_field_messages(_problem(refused))}
            status = 422 if status == 200 else status
        too_many = len(found) > MAX_LISTED_UNITS
        found = found[:MAX_LISTED_UNITS]
    return _page("admin_wards.html", status, provinces=units.provinces(), province_code=province_code, q=q,
                 units=found, too_many=too_many, ticked=ticked or set(), open_wards=wards.all_wards(deps),
                 errors=errors or {}, outcomes=outcomes, done=DONE.get(request.args.get("done", "")),
                 principal=principal)


@admin.get("/wards")
def wards_page():
    principal = _staff(_is_admin)
    return _wards_page(principal, province_code=request.args.get("province_code", "").strip(),
                       q=request.args.get("q", "").strip())


@admin.post("/wards")
def open_wards():
    check_csrf()
    principal = _staff(_is_admin)
    province_code = request.form.get("province_code", "").strip()
    q = request.form.get("q", "").strip()
    ticked = [c for c in request.form.getlist("units") if c]
    if not ticked:
        return _wards_page(principal, 422, {"units": "Chưa chọn xã, phường nào. Đánh dấu ô bên cạnh tên rồi bấm Mở."},
                           province_code=province_code, q=q)
    try:
        outcomes = wards.open_wards_of_province(request_context(), principal, province_code, ticked)
    except IdentityError as refused:
        return _wards_page(principal, _problem(refused).status, _field_messages(_problem(refused)),
                           province_code=province_code, q=q, ticked=set(ticked))
    opened = any(o["outcome"] == "opened" for o in outcomes)
    return _wards_page(principal, 201 if opened else 200, outcomes=outcomes, province_code=province_code, q=q)


# ---------------------------------------------------------------- one ward's office
def _ward_page(principal: Principal, ward_id: str, status: int = 200, errors: dict | None = None,
               typed: dict | None = None, notice: str | None = None, reset: dict | None = None,
               row_errors: dict | None = None):
    deps = request_context()
    ward = next((w for w in wards.all_wards(deps) if w["ward_id"] == ward_id), None)
    staff = officers.list_officers(deps, principal, ward_id)
    coverage = wards.coverage(deps, principal, ward_id)
    return _page("admin_ward.html", status, ward=ward, staff=staff, coverage=coverage, errors=errors or {},
                 typed=typed or {}, notice=notice, reset=reset, row_errors=row_errors or {},
                 done=DONE.get(request.args.get("done", "")), principal=principal,
                 roles=WARD_STAFF_ROLES, is_admin=principal.role == "admin")


def _ward_or_404(ward_id: str) -> None:
    from motcua_common.wards import is_ward_id

    from . import store

    if not is_ward_id(ward_id) or store.get_ward(request_context().db, ward_id) is None:
        raise _Refused(_page("admin_message.html", 404, title="Không tìm thấy phường",
                             message="Không có phường này trên hệ thống."))


@admin.get("/wards/<ward_id>")
def ward_page(ward_id: str):
    principal = _staff(_manages(ward_id))
    _ward_or_404(ward_id)
    return _ward_page(principal, ward_id)


def _back(ward_id: str, done: str):
    return redirect(url_for(".ward_page", ward_id=ward_id, done=done), 303)


@admin.post("/wards/<ward_id>/officers")
def create_officer(ward_id: str):
    check_csrf()
    principal = _staff(_manages(ward_id))
    _ward_or_404(ward_id)
    typed = {name: request.form.get(name, "").strip() for name in OFFICER_FIELDS if name != "password"}
    body = {**typed, "ward_id": ward_id, "password": request.form.get("password", ""),
            "counter_id": typed["counter_id"] or None}
    try:
        officers.create_officer(request_context(), principal, body, _client())
    except IdentityError as refused:
        problem = _problem(refused)
        errors = _field_messages(problem)
        if problem.code == "username_taken":
            errors["username"] = "Tên đăng nhập này đã có người dùng. Hãy chọn tên khác."
        return _ward_page(principal, ward_id, problem.status, errors, typed,
                          notice=None if errors else _vietnamese(problem.detail))
    return _back(ward_id, "officer_created")


@admin.post("/wards/<ward_id>/officers/<officer_id>")
def update_officer(ward_id: str, officer_id: str):
    """One row's buttons: action = role | counter | deactivate | activate."""
    check_csrf()
    principal = _staff(_manages(ward_id))
    _ward_or_404(ward_id)
    action = request.form.get("action", "")
    body = {"role": {"role": request.form.get("role", "")},
            "counter": {"counter_id": request.form.get("counter_id", "").strip() or None},
            "deactivate": {"active": False}, "activate": {"active": True}}.get(action)
    if body is None:
        return _ward_page(principal, ward_id, 422, notice="Thao tác không hợp lệ, xin thử lại.")
    try:
        officers.update_officer(request_context(), principal, officer_id, body, _client())
    except IdentityError as refused:
        problem = _problem(refused)
        messages = _field_messages(problem)
        message = "; ".join(messages.values()) or _vietnamese(problem.detail)
        return _ward_page(principal, ward_id, problem.status, row_errors={officer_id: message})
    done = {"deactivate": "officer_deactivated", "activate": "officer_activated"}.get(action, "officer_updated")
    return _back(ward_id, done)


@admin.post("/wards/<ward_id>/officers/<officer_id>/password-reset")
def reset_password(ward_id: str, officer_id: str):
    check_csrf()
    principal = _staff(_manages(ward_id))
    _ward_or_404(ward_id)
    try:
        reset = officers.reset_password(request_context(), principal, officer_id, _client())
    except IdentityError as refused:
        problem = _problem(refused)
        return _ward_page(principal, ward_id, problem.status, row_errors={officer_id: _vietnamese(problem.detail)})
    # Shown once, in this answer only (no redirect: it never goes into a URL or a log).
    return _ward_page(principal, ward_id, 200, reset=reset)


@admin.post("/wards/<ward_id>/population")
def set_population(ward_id: str):
    check_csrf()
    principal = _staff(_is_admin)
    _ward_or_404(ward_id)
    raw = request.form.get("target_population", "").replace(".", "").replace(",", "").replace(" ", "")
    value: object = int(raw) if raw.isascii() and raw.isdigit() else raw
    try:
        wards.set_population(request_context(), principal, ward_id, value)
    except IdentityError as refused:
        problem = _problem(refused)
        errors = {"target_population": "Nhập một số nguyên từ 0 đến 10.000.000, ví dụ 8027."} \
            if problem.status == 422 else {}
        return _ward_page(principal, ward_id, problem.status, errors=errors,
                          notice=None if errors else _vietnamese(problem.detail))
    return _back(ward_id, "population_saved")


# ---------------------------------------------------------------- failures, as pages
@admin.errorhandler(CsrfRefused)
def _csrf_refused(_exc):
    return _page("admin_message.html", 400, title="Phiên làm việc đã hết hạn",
                 message="Biểu mẫu đã hết hạn. Xin tải lại trang rồi thao tác lại.", retry_url=request.path)


@admin.errorhandler(Exception)
def _failure(exc: Exception):
    """Whatever else goes wrong is a readable Vietnamese page, never JSON."""
    status, message = failure_message(exc)
    return _page("admin_message.html", status, title="Chưa thực hiện được", message=message)
