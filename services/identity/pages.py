"""The citizen's pages of identity: register an e-citizen account (/identity/register),
sign in (/identity/login), change a temporary password (/identity/password) and sign
out (/identity/logout). Server-rendered, in Vietnamese, plain form posts and redirects:
everything works without JavaScript.

Every form calls the use cases the JSON API calls (accounts.py, wards.py): the same
validation, one account per CCCD, login limits and lockout, audit and events. A page only
turns their refusals, as the API's problems (problems.py), into messages beside the fields,
and answers with the API's status (422 invalid form, 409 CCCD taken, 401, 423 locked, 429
too many attempts)."""
from __future__ import annotations

import logging
import re
from datetime import date
from pathlib import Path

from flask import Blueprint, make_response, redirect, render_template, request, url_for
from pymongo.errors import PyMongoError
from werkzeug.exceptions import HTTPException

from motcua_common.http import Problem, request_context
from motcua_common.names import fold
from motcua_common.web_session import (
    CsrfRefused, check_csrf, clear_session, csrf_token, issue_csrf_cookie, local_path, session_principal, set_session,
)

from . import accounts, wards
from .errors import IdentityError
from .problems import problem_of

log = logging.getLogger(__name__)
FOLDER = Path(__file__).resolve().parent
# Where a citizen goes after signing in when no page asked for it.
DEFAULT_NEXT = "/dossier/portal"
REGISTRATION_FIELDS = ("national_id", "full_name", "date_of_birth", "phone", "ward_id")
# A date as people write it: 01/05/1990, 1/5/1990, 01-05-1990, 01.05.1990.
_WRITTEN_DATE = re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")

pages = Blueprint("identity_pages", __name__, url_prefix="/identity", root_path=str(FOLDER),
                  static_folder="static", static_url_path="/static")


@pages.after_request
def _after(response):
    # Forms carry a CSRF token and the result page shows the CCCD: keep them out of caches
    # (the style sheet may be cached: phones on slow links load it once).
    if request.endpoint != "identity_pages.static":
        response.headers["Cache-Control"] = "no-store"
    return issue_csrf_cookie(response)


@pages.context_processor
def _page_globals():
    return {"csrf_token": csrf_token, "signed_in": _principal() is not None, "for_staff": _for_staff}


def _deps():
    return request_context()


def _client() -> str:
    return request.remote_addr or ""


def _principal():
    return session_principal(request_context().verifier)


def _page(template: str, status: int = 200, headers: dict | None = None, **values):
    return make_response(render_template(template, **values), status, headers or {})


def _vietnamese(message: str | None) -> str:
    """The API's messages read "Vietnamese. / English."; a citizen's page shows the first half."""
    return (message or "").split(" / ")[0].strip()


def _field_messages(problem: Problem) -> dict[str, str]:
    messages: dict[str, str] = {}
    for error in problem.errors or []:
        messages.setdefault(error["field"], _vietnamese(error["message"]))
    return messages


def _retry_after(problem: Problem) -> dict:
    return {k: v for k, v in problem.headers.items() if k == "Retry-After"}


def iso_date(written: str) -> str | None:
    """dd/mm/yyyy as Vietnamese people write it, or a date input's yyyy-mm-dd -> ISO text;
    None when it is neither or no such day exists."""
    if match := _WRITTEN_DATE.fullmatch(written):
        day, month, year = (int(g) for g in match.groups())
    elif match := _ISO_DATE.fullmatch(written):
        year, month, day = (int(g) for g in match.groups())
    else:
        return None
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def _next() -> str:
    return local_path(request.values.get("next"), DEFAULT_NEXT)


# ---------------------------------------------------------------- registration
def _wards_by_province() -> list[tuple[str, list[dict]]]:
    """The wards for the select, grouped by province, in Vietnamese alphabetical order."""
    def by_name(text: str) -> str:
        return fold(text)  # "Đà Nẵng" beside "Da...", not after "Z"

    groups: dict[str, list[dict]] = {}
    for ward in wards.all_wards(_deps()):
        groups.setdefault(ward["province"], []).append(ward)
    return [(province, sorted(wards, key=lambda w: by_name(w["name"])))
            for province, wards in sorted(groups.items(), key=lambda item: by_name(item[0]))]


def _registration_page(typed: dict, errors: dict, status: int = 200, notice: str | None = None):
    # The password is never sent back: `typed` holds only REGISTRATION_FIELDS.
    return _page("register.html", status, wards=_wards_by_province(), typed=typed, errors=errors, notice=notice)


@pages.get("/register")
def register_form():
    return _registration_page({}, {})


@pages.post("/register")
def register():
    check_csrf()
    typed = {name: request.form.get(name, "").strip() for name in REGISTRATION_FIELDS}
    dob = iso_date(typed["date_of_birth"])
    body = {**typed, "national_id": "".join(typed["national_id"].split()),  # "048 090 001 234" as printed
            "date_of_birth": dob or typed["date_of_birth"], "password": request.form.get("password", "")}
    errors = {}
    if request.form.get("password_repeat", "") != body["password"]:
        errors["password_repeat"] = "Hai lần nhập mật khẩu chưa giống nhau. Xin nhập lại cả hai ô."
    try:
        if errors:
            accounts.validate_registration(_deps(), body)  # the other fields' messages too; nothing is created
        else:
            answer, _ = accounts.register_citizen(_deps(), None, body, _client())  # on the web: channel "web", own password
    except IdentityError as refused:
        problem = problem_of(refused)
        errors = {**_field_messages(problem), **errors}
        if problem.code == "national_id_taken":
            errors["national_id"] = ("Số CCCD này đã có tài khoản. Hãy đăng nhập bằng số CCCD và mật khẩu của bạn. "
                                     "Nếu quên mật khẩu, xin đến Bộ phận một cửa của phường để được cấp mật khẩu tạm.")
        if "date_of_birth" in errors and dob is None:
            errors["date_of_birth"] = "Ngày sinh chưa đúng. Ghi theo dạng ngày/tháng/năm, ví dụ 01/05/1990."
        if "ward_id" in errors and not typed["ward_id"]:
            errors["ward_id"] = "Xin chọn phường, xã nơi bạn cư trú."
        notice = None if errors else _vietnamese(problem.detail)
        return _registration_page(typed, errors, problem.status, notice)
    if errors:
        return _registration_page(typed, errors, 422)
    return _registered_page(201, answer, body["national_id"], typed["full_name"])


def _registered_page(status: int, answer: dict, username: str | None, full_name: str | None,
                     errors: dict | None = None, notice: str | None = None):
    """The account made; a web registration then asks for the code sent to the phone."""
    return _page("registered.html", status, username=username, full_name=full_name,
                 pending=answer.get("status") == "pending_phone", citizen_id=answer.get("citizen_id"),
                 code_sent=answer.get("phone_code_sent", True), errors=errors or {}, notice=notice,
                 login_url=url_for(".login_form", next=DEFAULT_NEXT))


@pages.post("/register/verify")
def verify_phone():
    """The 6-digit code sent to the phone, typed on the page after registering (or, with
    `resend`, another code)."""
    check_csrf()
    citizen_id = request.form.get("citizen_id", "")
    pending = {"status": "pending_phone", "citizen_id": citizen_id}
    try:
        if request.form.get("resend"):
            accounts.resend_phone_code(_deps(), citizen_id, _client())
            return _registered_page(200, pending, None, None, notice="Đã gửi mã mới đến số điện thoại của bạn.")
        answer = accounts.verify_phone(_deps(), citizen_id, request.form.get("code", ""), _client())
    except IdentityError as refused:
        problem = problem_of(refused)
        errors = _field_messages(problem)
        if problem.code == "phone_already_verified":
            return _registered_page(200, {"status": "active", "citizen_id": citizen_id}, None, None)
        return _registered_page(problem.status, pending, None, None, errors=errors,
                                notice=None if errors else _vietnamese(problem.detail))
    return _registered_page(200, answer, accounts.username_of(_deps(), answer["citizen_id"]), None,
                            notice="Đã xác nhận số điện thoại. Bạn có thể đăng nhập.")


# ---------------------------------------------------------------- sign in
_LOGIN_REQUIRED = {"username": "Xin nhập số CCCD (cán bộ: tên đăng nhập).", "password": "Xin nhập mật khẩu."}


@pages.get("/login")
def login_form():
    return _page("login.html", next_path=_next(), username="", errors={}, notice=None)


# The staff pages that send people here to sign in: the platform's and the wards' admin pages.
STAFF_PAGES = ("/identity/admin", "/queue/admin", "/dossier/admin")


def _for_staff(next_path: str) -> bool:
    """Signing in on the way to a staff page: the form asks for a username, not a CCCD."""
    return next_path.startswith(STAFF_PAGES)


@pages.post("/login")
def login():
    check_csrf()
    target = _next()
    username = request.form.get("username", "")
    try:
        session = accounts.sign_in(_deps(), username, request.form.get("password", ""), _client())
    except IdentityError as refused:
        problem = problem_of(refused)
        errors = {field: _LOGIN_REQUIRED[field] for field in _field_messages(problem) if field in _LOGIN_REQUIRED}
        notice = None if errors else _vietnamese(problem.detail)
        return _page("login.html", problem.status, _retry_after(problem), next_path=target,
                     username=username.strip(), errors=errors, notice=notice)
    if session["must_change_password"]:
        # A temporary password (SMS or counter registration) opens only the change-password page.
        target = url_for(".password_form", next=target)
    response = redirect(target, 303)
    set_session(response, session["access_token"], session["expires_in"])
    return response


# ---------------------------------------------------------------- change password
@pages.get("/password")
def password_form():
    if _principal() is None:
        return redirect(url_for(".login_form", next=url_for(".password_form", next=_next())), 303)
    return _page("password.html", next_path=_next(), errors={}, notice=None)


@pages.post("/password")
def change_password():
    check_csrf()
    target = _next()
    principal = _principal()
    if principal is None:
        return redirect(url_for(".login_form", next=url_for(".password_form", next=target)), 303)
    current, new = request.form.get("current_password", ""), request.form.get("new_password", "")
    if request.form.get("new_password_repeat", "") != new:
        errors = {"new_password_repeat": "Hai lần nhập mật khẩu mới chưa giống nhau. Xin nhập lại."}
        return _page("password.html", 422, next_path=target, errors=errors, notice=None)
    try:
        account = accounts.change_own_password(_deps(), principal, current, new, _client())
    except IdentityError as refused:
        problem = problem_of(refused)
        errors = _field_messages(problem)  # new_password: the password policy
        if problem.code == "invalid_credentials":
            errors["current_password"] = _vietnamese(problem.detail)
        return _page("password.html", problem.status, next_path=target, errors=errors,
                     notice=None if errors else _vietnamese(problem.detail))
    # The old token still says "must change password": the browser gets a fresh session.
    session = accounts.issue_session(_deps(), account)
    response = redirect(target, 303)
    set_session(response, session["access_token"], session["expires_in"])
    return response


# ---------------------------------------------------------------- sign out
@pages.post("/logout")
def logout():
    check_csrf()
    response = redirect(url_for(".login_form"), 303)
    clear_session(response)
    return response


# ---------------------------------------------------------------- failures, as pages
@pages.errorhandler(CsrfRefused)
def _csrf_refused(_exc):
    retry = url_for(".login_form") if request.path.endswith("/logout") else request.full_path
    return _page("message.html", 400, title="Phiên làm việc đã hết hạn",
                 message="Phiên làm việc đã hết hạn, vui lòng tải lại trang.", retry_url=retry)


@pages.errorhandler(Exception)
def _failure(exc: Exception):
    """Whatever else goes wrong on these pages is a readable Vietnamese page, never JSON."""
    status, message = failure_message(exc)
    return _page("message.html", status, title="Chưa thực hiện được", message=message, retry_url=None)


def failure_message(exc: Exception) -> tuple[int, str]:
    """The status and the Vietnamese sentence a page shows for what went wrong (identity's
    citizen pages and admin pages alike); an unexpected error is logged."""
    if isinstance(exc, IdentityError):
        exc = problem_of(exc)
    if isinstance(exc, Problem):
        status, message = exc.status, _vietnamese(exc.detail or exc.title)
    elif isinstance(exc, HTTPException):
        status = exc.code or 500
        message = "Không tìm thấy trang này." if status == 404 else "Yêu cầu không hợp lệ, xin thử lại."
    elif isinstance(exc, PyMongoError):
        log.error("database error on %s: %s", request.path, exc.__class__.__name__)
        status, message = 503, "Hệ thống đang tạm gián đoạn, xin thử lại sau ít phút."
    else:
        log.exception("unhandled error on %s %s", request.method, request.path)
        status, message = 500, "Đã có lỗi, xin thử lại sau ít phút."
    return status, message
