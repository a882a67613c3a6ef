"""The ward admin's page of the rating screens (/rating/admin/{ward_id}): pair the screen
beside a counter (a one-time link opened on that screen), see the paired screens, revoke
one. Vietnamese, server-rendered, plain form posts; the queue's admin page links here and
offers the ward's counters in a form that posts to this page.

Sign-in is the platform's one web session (motcua_common.web_session), as on the queue's
admin page; every form carries the CSRF token of the double-submit cookie. Only the ward's
ward_admin and the platform admin get past the use cases (screens.py)."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, make_response, redirect, render_template, request, url_for

from motcua_common.http import request_context as _deps
from motcua_common.problems import Problem
from motcua_common.web_session import CsrfRefused, check_csrf, csrf_token, issue_csrf_cookie, session_principal

from . import screens, store

FOLDER = Path(__file__).resolve().parent
LOGIN_URL = "/identity/login"
PASSWORD_URL = "/identity/password"

admin = Blueprint("rating_admin", __name__, url_prefix="/rating/admin", root_path=str(FOLDER))


@admin.after_request
def _after(response):
    response.headers["Cache-Control"] = "no-store"  # forms carry a CSRF token; a pairing link is shown once
    return issue_csrf_cookie(response)


@admin.context_processor
def _page_globals():
    return {"csrf_token": csrf_token}


@admin.errorhandler(CsrfRefused)
def _csrf_refused(_exc):
    return _page(request.view_args.get("ward_id", ""), None, None, 400,
                 notice="Phiên làm việc đã hết hạn, xin tải lại trang rồi thực hiện lại.")


def _vietnamese(text: str | None) -> str:
    return (text or "").split(" / ")[0].strip()


def _page(ward_id: str, ward_name: str | None, principal, status: int = 200, pairing: dict | None = None,
          notice: str | None = None, saved: str | None = None):
    deps = _deps()
    shown = []
    if principal is not None:
        shown = [{**s, "paired_at": deps.clock.local(s["paired_at"]).strftime("%H:%M %d/%m/%Y")}
                 for s in screens.list_screens(deps, principal, ward_id)]
    return make_response(render_template("admin_screens.html", ward_id=ward_id, ward_name=ward_name or ward_id,
                                         principal=principal, screens=shown, pairing=pairing, notice=notice,
                                         saved=saved), status)


def _signed_in(ward_id: str):
    """The signed-in principal; otherwise the answer instead (sign-in, password change)."""
    deps = _deps()
    here = url_for(".page", ward_id=ward_id)
    principal = session_principal(deps.verifier)
    if principal is not None and deps.revocations is not None \
            and deps.revocations.is_revoked(principal.subject, principal.issued_at):
        principal = None
    if principal is None:
        return None, redirect(f"{LOGIN_URL}?next={here}", 303)
    if principal.must_change_password:
        return None, redirect(f"{PASSWORD_URL}?next={here}", 303)
    return principal, None


def _ward_name(ward_id: str) -> str | None:
    return store.ward_names(_deps().db, [ward_id]).get(ward_id, {}).get("name")


def _refused(ward_id: str, problem: Problem):
    return _page(ward_id, _ward_name(ward_id), None, problem.status,
                 notice=_vietnamese(problem.detail or problem.title))


@admin.get("/<ward_id>")
def page(ward_id: str):
    principal, answer = _signed_in(ward_id)
    if answer is not None:
        return answer
    try:
        return _page(ward_id, _ward_name(ward_id), principal, saved=request.args.get("saved"))
    except Problem as problem:
        return _refused(ward_id, problem)


@admin.post("/<ward_id>/pairings")
def create_pairing(ward_id: str):
    check_csrf()
    principal, answer = _signed_in(ward_id)
    if answer is not None:
        return answer
    counter_id = request.form.get("counter_id", "").strip()
    try:
        code, expires_at = screens.create_pairing(_deps(), principal, ward_id, counter_id)
    except Problem as problem:
        if problem.status == 422:
            return _page(ward_id, _ward_name(ward_id), principal, 422, notice="Hãy chọn quầy (ví dụ quay-1).")
        return _refused(ward_id, problem)
    link = url_for("rating_pages.pair_screen", ward_id=ward_id, counter_id=counter_id, code=code, _external=True)
    # Shown once, on this answer only: the link is a one-time credential.
    pairing = {"url": link, "counter_id": counter_id,
               "expires_at": _deps().clock.local(expires_at).strftime("%H:%M %d/%m/%Y")}
    return _page(ward_id, _ward_name(ward_id), principal, pairing=pairing)


@admin.post("/<ward_id>/screens/<device_id>/revoke")
def revoke(ward_id: str, device_id: str):
    check_csrf()
    principal, answer = _signed_in(ward_id)
    if answer is not None:
        return answer
    try:
        screens.revoke(_deps(), principal, ward_id, device_id)
    except Problem as problem:
        return _refused(ward_id, problem)
    return redirect(url_for(".page", ward_id=ward_id, saved="1"), 303)
