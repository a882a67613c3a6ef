"""The ward's numbers for its leader (/dossier/desk/{ward_id}/so-lieu): a page over any
range of days, and its CSV and XLSX downloads.

Server-rendered, in Vietnamese, without JavaScript: the range is a GET form. Signing in is
the portal's and the ward admin's (the access token in the `motcua_session` cookie, a
session ended early refused as the API refuses it). The ward's staff, the monitoring centre
and admins see it. Pages only translate HTTP: the numbers are numbers.ward_numbers and the
files exports.*, the API's own use cases."""
from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, abort, make_response, redirect, render_template, request

from motcua_common.auth import Principal
from motcua_common.http import Problem, request_context
from motcua_common.web_session import csrf_token, issue_csrf_cookie, login_here, signed_in

from . import exports, numbers, wards
from .deps import Deps

log = logging.getLogger(__name__)

FOLDER = Path(__file__).resolve().parent
DESK = "/dossier/desk"
FILES = {"ho-so": exports.dossiers_file, "tong-hop": exports.stats_file}

numbers_page = Blueprint("dossier_numbers", __name__, url_prefix=DESK, root_path=str(FOLDER))
numbers_page.after_request(issue_csrf_cookie)


def deps() -> Deps:
    return request_context()






@numbers_page.context_processor
def _page_globals():
    return {"signed_in": signed_in(), "csrf_token": csrf_token, "login_url": login_here(), "desk": DESK}


def _message(status: int, title: str, text: str, action: tuple[str, str] | None = None):
    action_url, action_label = action or (None, None)
    return make_response(render_template("numbers/message.html", title=title, text=text, action_url=action_url,
                                         action_label=action_label), status)


def _watcher(ward_id: str) -> Principal:
    """The ward's staff, the monitoring centre or an admin; otherwise the sign-in page, or
    a page saying why not."""
    principal = signed_in()
    if principal is None:
        abort(redirect(login_here(), 303))
    if principal.must_change_password:
        abort(_message(403, "Cần đổi mật khẩu", "Bạn đang dùng mật khẩu tạm thời. Vui lòng đổi mật khẩu trước.",
                       ("/identity/password?next=" + quote(request.path, safe="/"), "Đổi mật khẩu")))
    if not principal.can_watch(ward_id):
        abort(_message(403, "Không có quyền",
                       "Số liệu của phường dành cho cán bộ của phường, trung tâm giám sát và quản trị hệ thống."))
    return principal


def _range_args() -> tuple[str | None, str | None]:
    return request.args.get("from") or None, request.args.get("to") or None


@numbers_page.get("/<ward_id>/so-lieu")
def numbers_view(ward_id: str):
    principal = _watcher(ward_id)
    from_text, to_text = _range_args()
    ward_name = wards.name_or_none(deps(), ward_id) or ward_id
    try:
        stats = numbers.ward_numbers(deps(), principal, ward_id, from_text, to_text)
    except Problem as problem:
        errors = " ".join(e["message"].split(" / ")[0] for e in (problem.errors or [])) or problem.title
        return make_response(render_template("numbers/ward.html", ward_id=ward_id, ward_name=ward_name, stats=None,
                                             error=errors, from_text=from_text or "", to_text=to_text or ""),
                             problem.status)
    query = urlencode({k: v for k, v in (("from", stats["from"]), ("to", stats["to"])) if v})
    return render_template("numbers/ward.html", ward_id=ward_id, ward_name=ward_name, stats=stats, error=None,
                           summary=exports.summary_rows(stats), from_text=stats["from"] or "", to_text=stats["to"],
                           query=query)


@numbers_page.get("/<ward_id>/so-lieu/<kind>.<fmt>")
def numbers_file(ward_id: str, kind: str, fmt: str):
    principal = _watcher(ward_id)
    if kind not in FILES or fmt not in exports.FORMATS:
        return _message(404, "Không có tệp này", "Tệp tải về là ho-so.csv, ho-so.xlsx, tong-hop.csv hoặc tong-hop.xlsx.")
    from_text, to_text = _range_args()
    try:
        content, name = FILES[kind](deps(), principal, ward_id, fmt, from_text, to_text)
    except Problem as problem:
        errors = " ".join(e["message"].split(" / ")[0] for e in (problem.errors or [])) or problem.title
        return _message(problem.status, "Khoảng ngày không hợp lệ", errors)
    return Response(content, headers={
        "Content-Type": exports.FORMATS[fmt], "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"})
