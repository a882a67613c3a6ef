"""The ward administrator's pages (/dossier/admin/{ward_id}): the procedure catalog with a
switch per procedure for online submission, and the date it was switched on.

Server-rendered, in Vietnamese, without JavaScript: each switch is a small form that
POSTs, then the page comes back by a 303 redirect. Signing in is the portal's: the access
token in the `motcua_session` cookie (motcua_common.web_session), a session ended early
refused as the API refuses it; every form carries the CSRF token. Pages only translate
HTTP: the switch is offerings.set_online, the API's own use case."""
from __future__ import annotations

import logging
from itertools import groupby
from pathlib import Path
from urllib.parse import quote

from flask import Blueprint, abort, make_response, redirect, render_template, request

from motcua_common.auth import Principal
from motcua_common.http import Problem, request_context
from motcua_common.names import fold
from motcua_common.web_session import (
    CsrfRefused, check_csrf, csrf_token, issue_csrf_cookie, login_here, signed_in,
)

from . import offerings, wards
from .deps import Deps
from .portal import PORTAL, iso_date

log = logging.getLogger(__name__)

FOLDER = Path(__file__).resolve().parent
ADMIN = "/dossier/admin"

ward_admin = Blueprint("dossier_ward_admin", __name__, url_prefix=ADMIN, root_path=str(FOLDER))
ward_admin.after_request(issue_csrf_cookie)


def deps() -> Deps:
    return request_context()






@ward_admin.context_processor
def _page_globals():
    return {"signed_in": signed_in(), "csrf_token": csrf_token, "login_url": login_here(), "portal": PORTAL,
            "admin_base": ADMIN}


def _message(status: int, title: str, text: str, action: tuple[str, str] | None = None):
    action_url, action_label = action or (None, None)
    return make_response(render_template("admin/message.html", title=title, text=text, action_url=action_url,
                                         action_label=action_label), status)


@ward_admin.errorhandler(CsrfRefused)
def _csrf_refused(_exc):
    return _message(400, "Phiên làm việc đã hết hạn", "Phiên làm việc đã hết hạn, vui lòng tải lại trang rồi thử lại.")


@ward_admin.errorhandler(Problem)
def _problem(exc: Problem):
    return _message(exc.status, exc.title, (exc.detail or exc.title).split(" / ")[0])


def _administrator(ward_id: str) -> Principal:
    """The ward's administrator (or the platform's); otherwise the sign-in page, or a page
    saying why not."""
    principal = signed_in()
    if principal is None:
        abort(redirect(login_here(), 303))
    if principal.must_change_password:
        abort(_message(403, "Cần đổi mật khẩu", "Bạn đang dùng mật khẩu tạm thời. Vui lòng đổi mật khẩu trước.",
                       ("/identity/password?next=" + quote(request.path, safe="/"), "Đổi mật khẩu")))
    if not offerings.may_configure(principal, ward_id):
        abort(_message(403, "Không có quyền", "Trang này dành cho quản trị viên của phường và quản trị hệ thống."))
    return principal


def _page(ward_id: str, saved: dict | None = None, error: str | None = None, status: int = 200):
    rows = offerings.catalog_for(deps(), ward_id)
    ordered = sorted(rows, key=lambda p: (fold(p["field"]), fold(p["name"])))
    groups = [(field, list(items)) for field, items in groupby(ordered, key=lambda p: p["field"])]
    ward_name = wards.name_or_none(deps(), ward_id) or ward_id
    return make_response(render_template(
        "admin/ward.html", ward_id=ward_id, ward_name=ward_name, procedures=rows, groups=groups,
        online_count=sum(1 for p in rows if p["online"]), saved=saved, error=error, today=deps().clock.today(),
    ), status)


@ward_admin.get("/<ward_id>")
def ward_page(ward_id: str):
    _administrator(ward_id)
    code = request.args.get("da_luu", "")
    saved = next((p for p in offerings.catalog_for(deps(), ward_id) if p["code"] == code), None) if code else None
    return _page(ward_id, saved=saved)


@ward_admin.post("/<ward_id>/thu-tuc/<code>")
def switch(ward_id: str, code: str):
    check_csrf()
    principal = _administrator(ward_id)
    body: dict = {"online": request.form.get("online") == "1"}
    since = request.form.get("since", "").strip()[:20]
    if body["online"] and since:
        body["since"] = iso_date(since)
    try:
        offerings.set_online(deps(), principal, ward_id, code, body)
    except Problem as problem:
        detail = " ".join(e["message"] for e in (problem.errors or [])) or (problem.detail or problem.title)
        return _page(ward_id, error=detail.split(" / ")[0], status=problem.status)
    return redirect(f"{ADMIN}/{ward_id}?da_luu={quote(code)}", 303)
