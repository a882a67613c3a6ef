"""The ward admin's page of the queue (/queue/admin/{ward_id}): the ward's queue services,
its counters and which services each serves, its opening hours, its kiosks (a pairing
link, the paired devices, revoking one) and its devices' last contact (heartbeats.py). Vietnamese, server-rendered, plain form posts and
redirects: everything works without JavaScript, on a 1366×768 office PC.

Sign-in is the platform's one web session (motcua_common.web_session): identity's sign-in
page (/identity/login) leaves the access token in an HttpOnly cookie on "/", which this
page reads like every other page of the platform; a visitor without it is sent there and
comes back. Every form carries the CSRF token of the double-submit cookie. Only the ward's
ward_admin and the platform admin see the page; anyone else signed in gets a 403 page.

Like pages.py, each form only translates HTTP into a use-case call (counters.py,
wards.py, kiosks.py) — the same the JSON API calls — and turns its refusals into messages
beside the fields."""
from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

from flask import Blueprint, make_response, redirect, render_template, request, url_for

from motcua_common.problems import Problem
from motcua_common.web_session import CsrfRefused, check_csrf, csrf_token, issue_csrf_cookie, session_principal

from . import counter_sessions, counters, heartbeats, hours, kiosks, wards
from .callers import deps as _deps

FOLDER = Path(__file__).resolve().parent
LOGIN_URL = "/identity/login"
PASSWORD_URL = "/identity/password"
LOGOUT_URL = "/identity/logout"

admin = Blueprint("queue_admin", __name__, url_prefix="/queue/admin", root_path=str(FOLDER))

# What the page says after a save, by ?saved=.
SAVED = {
    "service": "Đã lưu dịch vụ.",
    "service_deleted": "Đã xóa dịch vụ.",
    "counter": "Đã lưu quầy.",
    "counter_deleted": "Đã xóa quầy.",
    "hours": "Đã lưu giờ làm việc.",
    "kiosk_revoked": "Đã thu hồi máy lấy số.",
    "counter_freed": "Đã giải phóng quầy: cán bộ khác có thể nhận quầy.",
    "device_forgotten": "Đã xóa thiết bị khỏi danh sách.",
}
_WRITTEN_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")


@admin.after_request
def _after(response):
    if request.endpoint != "queue_admin.static":
        response.headers["Cache-Control"] = "no-store"  # forms carry a CSRF token
    return issue_csrf_cookie(response)


@admin.context_processor
def _page_globals():
    return {"office_timezone": _deps().settings.timezone, "csrf_token": csrf_token,
            "logout_url": LOGOUT_URL, "weekday_names": hours.WEEKDAY_NAMES, "weekdays": hours.WEEKDAYS}


@admin.errorhandler(CsrfRefused)
def _csrf_refused(_exc):
    return _message(400, "Phiên làm việc đã hết hạn",
                    "Phiên làm việc đã hết hạn, xin tải lại trang rồi thực hiện lại.", retry=request.path)


def _vietnamese(text: str | None) -> str:
    return (text or "").split(" / ")[0].strip()


def _message(status: int, title: str, message: str, retry: str | None = None, ward_name: str | None = None,
             own_page: str | None = None):
    return make_response(render_template("admin_message.html", title=title, message=message, retry_url=retry,
                                         ward_name=ward_name, own_page=own_page), status)


class _Refusal(Exception):
    def __init__(self, response):
        self.response = response


@admin.errorhandler(_Refusal)
def _refused(exc: _Refusal):
    return exc.response


def _signed_in_admin(ward_id: str):
    """(ward's name, principal) of a signed-in admin of the ward; otherwise the page that
    answers instead (404 unknown ward, sign-in, password change, 403)."""
    deps = _deps()
    ward_name = counters.ward_name(deps, None, ward_id)
    if ward_name is None:
        raise _Refusal(_message(404, "Không tìm thấy phường",
                                f"Phường “{ward_id}” chưa dùng hệ thống xếp hàng."))
    here = url_for(".page", ward_id=ward_id)
    principal = session_principal(deps.verifier)
    if principal is not None and deps.revocations is not None \
            and deps.revocations.is_revoked(principal.subject, principal.issued_at):
        principal = None
    if principal is None:
        raise _Refusal(redirect(f"{LOGIN_URL}?next={here}", 303))
    if principal.must_change_password:
        raise _Refusal(redirect(f"{PASSWORD_URL}?next={here}", 303))
    if not counters.may_configure(principal, ward_id):
        raise _Refusal(_message(403, "Không có quyền truy cập",
                                f"Trang quản trị xếp hàng của {ward_name} chỉ dành cho trưởng bộ phận một cửa "
                                "của phường và quản trị hệ thống. Tài khoản bạn đang dùng không có quyền này.",
                                ward_name=ward_name, own_page=_own_page(deps, principal)))
    return ward_name, principal


def _own_page(deps, principal) -> str | None:
    """The queue admin page of the signed-in ward admin's own ward: the way back from a 403."""
    if principal.role != "ward_admin" or not principal.ward_id \
            or counters.ward_name(deps, None, principal.ward_id) is None:
        return None
    return url_for(".page", ward_id=principal.ward_id)


def _render(ward_id: str, ward_name: str, principal, status: int = 200, form: str | None = None,
            fields: dict | None = None, notice: str | None = None, typed: dict | None = None,
            pairing: dict | None = None):
    deps = _deps()
    page = render_template(
        "admin.html", ward_id=ward_id, ward_name=ward_name, principal=principal,
        services=counters.services(deps, principal, ward_id),
        counters=counters.counters(deps, principal, ward_id),
        holders=counter_sessions.holders(deps, principal, ward_id),
        opening=wards.opening_hours(deps, principal, ward_id),
        holidays=wards.upcoming_holidays(deps, principal),
        devices=[{**d, "paired_at": _local(d["paired_at"])} for d in kiosks.list_devices(deps, principal, ward_id)],
        health=[_health_row(d) for d in heartbeats.list_devices(deps, principal, ward_id)],
        kind_names=heartbeats.KIND_NAMES, silent_minutes=heartbeats.SILENT_AFTER_SECONDS // 60,
        saved=SAVED.get(request.args.get("saved", "")) if status == 200 and form is None else None,
        form=form, fields=fields or {}, notice=notice, typed=typed or {}, pairing=pairing,
        kiosk_url=url_for("queue_pages.kiosk", ward_id=ward_id, _external=True))
    return make_response(page, status)


def _local(iso: str) -> str:
    return _deps().clock.local(datetime.fromisoformat(iso.replace("Z", "+00:00"))).strftime("%H:%M %d/%m/%Y")


def _health_row(device: dict) -> dict:
    """A device's last contact as the office reads it: its local time, and how long ago."""
    last = device["last_seen_at"]
    if last is None:
        return {**device, "last_seen": None, "ago": "chưa từng báo tín hiệu"}
    seconds = int((_deps().clock.now() - datetime.fromisoformat(last.replace("Z", "+00:00"))).total_seconds())
    if seconds < 60:
        ago = "vừa xong"
    elif seconds < 3600:
        ago = f"{seconds // 60} phút trước"
    elif seconds < 2 * 86400:
        ago = f"{seconds // 3600} giờ trước"
    else:
        ago = f"{seconds // 86400} ngày trước"
    return {**device, "last_seen": _local(last), "ago": ago}


def _saved(ward_id: str, what: str, anchor: str):
    return redirect(url_for(".page", ward_id=ward_id, saved=what, _anchor=anchor), 303)


def _refusal_page(ward_id, ward_name, principal, problem: Problem, form: str, typed: dict, field_names=None):
    """A use case's refusal beside the form that caused it."""
    fields = {}
    for error in problem.errors or []:
        name = (field_names or {}).get(error["field"], error["field"])
        fields.setdefault(name, _vietnamese(error["message"]))
    notice = None if fields else _vietnamese(problem.detail or problem.title)
    return _render(ward_id, ward_name, principal, problem.status, form=form, fields=fields, notice=notice,
                   typed=typed)


# ---------------------------------------------------------------- the page
@admin.get("/<ward_id>")
def page(ward_id: str):
    ward_name, principal = _signed_in_admin(ward_id)
    return _render(ward_id, ward_name, principal)


# ---------------------------------------------------------------- services
@admin.post("/<ward_id>/services")
def save_service(ward_id: str):
    check_csrf()
    ward_name, principal = _signed_in_admin(ward_id)
    editing = request.form.get("editing", "")
    code = (editing or request.form.get("code", "")).strip().upper()
    typed = {"code": code, "name": request.form.get("name", ""),
             "prefix": request.form.get("prefix", "").strip().upper()}
    form = f"service:{editing}" if editing else "service:new"
    if not editing and counters.service(_deps(), ward_id, code) is not None:
        return _render(ward_id, ward_name, principal, 409, form=form, typed=typed,
                       fields={"code": f"Mã “{code}” đã có; hãy sửa dịch vụ đó ở dòng của nó."})
    try:
        counters.put_service(_deps(), principal, ward_id, code, {"name": typed["name"], "prefix": typed["prefix"]})
    except Problem as problem:
        return _refusal_page(ward_id, ward_name, principal, problem, form, typed)
    return _saved(ward_id, "service", "services")


@admin.post("/<ward_id>/services/<code>/delete")
def delete_service(ward_id: str, code: str):
    check_csrf()
    ward_name, principal = _signed_in_admin(ward_id)
    try:
        counters.delete_service(_deps(), principal, ward_id, code)
    except Problem as problem:
        return _refusal_page(ward_id, ward_name, principal, problem, f"service:{code}", {})
    return _saved(ward_id, "service_deleted", "services")


# ---------------------------------------------------------------- counters
@admin.post("/<ward_id>/counters")
def save_counter(ward_id: str):
    check_csrf()
    ward_name, principal = _signed_in_admin(ward_id)
    editing = request.form.get("editing", "")
    counter_id = (editing or request.form.get("counter_id", "")).strip()
    codes = request.form.getlist("service_codes")
    typed = {"counter_id": counter_id, "name": request.form.get("name", ""), "service_codes": codes}
    form = f"counter:{editing}" if editing else "counter:new"
    if not editing and counters.counter(_deps(), ward_id, counter_id) is not None:
        return _render(ward_id, ward_name, principal, 409, form=form, typed=typed,
                       fields={"counter_id": f"Quầy “{counter_id}” đã có; hãy sửa quầy đó ở dòng của nó."})
    try:
        counters.put_counter(_deps(), principal, ward_id, counter_id,
                             {"name": typed["name"], "service_codes": codes})
    except Problem as problem:
        return _refusal_page(ward_id, ward_name, principal, problem, form, typed)
    return _saved(ward_id, "counter", "counters")


@admin.post("/<ward_id>/counters/<counter_id>/delete")
def delete_counter(ward_id: str, counter_id: str):
    check_csrf()
    ward_name, principal = _signed_in_admin(ward_id)
    try:
        counters.delete_counter(_deps(), principal, ward_id, counter_id)
    except Problem as problem:
        return _refusal_page(ward_id, ward_name, principal, problem, f"counter:{counter_id}", {})
    return _saved(ward_id, "counter_deleted", "counters")


# ---------------------------------------------------------------- opening hours
def _iso_day(written: str) -> str | None:
    """dd/mm/yyyy as people write it, or yyyy-mm-dd -> ISO; None when it is no date."""
    match = _WRITTEN_DATE.match(written)
    try:
        if match:
            day, month, year = (int(g) for g in match.groups())
            return date(year, month, day).isoformat()
        return date.fromisoformat(written).isoformat()
    except ValueError:
        return None


@admin.post("/<ward_id>/opening-hours")
def save_opening_hours(ward_id: str):
    check_csrf()
    ward_name, principal = _signed_in_admin(ward_id)
    form = request.form
    typed = {key: form.get(key, "").strip() for key in form if key != "csrf_token"}
    fields: dict[str, str] = {}
    weekly: dict[str, list[dict]] = {}
    names: dict[str, str] = {}   # the use case's field -> the input it came from
    for day in hours.WEEKDAYS:
        weekly[day] = []
        for slot in (1, 2):
            opens, closes = typed.get(f"{day}_{slot}_opens", ""), typed.get(f"{day}_{slot}_closes", "")
            if not opens and not closes:
                continue
            if not opens or not closes:
                fields[f"{day}_{slot}"] = "Hãy nhập cả giờ mở cửa và giờ đóng cửa của buổi này."
                continue
            index = len(weekly[day])
            names[f"weekly.{day}[{index}].opens"] = f"{day}_{slot}"
            names[f"weekly.{day}[{index}].closes"] = f"{day}_{slot}"
            names[f"weekly.{day}[{index}]"] = f"{day}_{slot}"
            weekly[day].append({"opens": opens, "closes": closes})
        names[f"weekly.{day}"] = f"{day}_1"
    closed_days = []
    for line in typed.get("closed_days", "").replace(",", "\n").splitlines():
        if line.strip():
            iso = _iso_day(line.strip())
            if iso is None:
                fields["closed_days"] = f"“{line.strip()}” không phải một ngày (viết dạng 24/12/2026)."
            else:
                closed_days.append(iso)
    if fields:
        return _render(ward_id, ward_name, principal, 422, form="hours", fields=fields, typed=typed)
    body = {"always_open": form.get("always_open") == "on", "weekly": weekly, "closed_days": closed_days}
    try:
        wards.set_opening_hours(_deps(), principal, ward_id, body)
    except Problem as problem:
        names.update({f"closed_days[{i}]": "closed_days" for i in range(len(closed_days))})
        return _refusal_page(ward_id, ward_name, principal, problem, "hours", typed, names)
    return _saved(ward_id, "hours", "hours")


@admin.post("/<ward_id>/counters/<counter_id>/free")
def free_counter(ward_id: str, counter_id: str):
    """An officer who left without ending their session: the counter is free for another."""
    check_csrf()
    ward_name, principal = _signed_in_admin(ward_id)
    try:
        counter_sessions.release(_deps(), principal, ward_id, counter_id)
    except Problem as problem:
        return _refusal_page(ward_id, ward_name, principal, problem, "counter:" + counter_id, {})
    return _saved(ward_id, "counter_freed", "counters")


# ---------------------------------------------------------------- kiosks
@admin.post("/<ward_id>/kiosk-pairings")
def create_pairing(ward_id: str):
    check_csrf()
    ward_name, principal = _signed_in_admin(ward_id)
    code, expires_at = kiosks.create_pairing(_deps(), principal, ward_id)
    link = url_for("queue_pages.pair_kiosk", ward_id=ward_id, code=code, _external=True)
    # Shown once, on this answer only: the link is a one-time credential, never put in a URL.
    pairing = {"url": link, "expires_at": _deps().clock.local(expires_at)}
    return _render(ward_id, ward_name, principal, form="pairing", pairing=pairing)


@admin.post("/<ward_id>/kiosks/<device_id>/revoke")
def revoke_kiosk(ward_id: str, device_id: str):
    check_csrf()
    ward_name, principal = _signed_in_admin(ward_id)
    try:
        kiosks.revoke(_deps(), principal, ward_id, device_id)
    except Problem as problem:
        return _refusal_page(ward_id, ward_name, principal, problem, "kiosks", {})
    return _saved(ward_id, "kiosk_revoked", "kiosks")



# ---------------------------------------------------------------- devices (heartbeats)
@admin.post("/<ward_id>/devices/<kind>/<device_id>/forget")
def forget_device(ward_id: str, kind: str, device_id: str):
    check_csrf()
    ward_name, principal = _signed_in_admin(ward_id)
    try:
        heartbeats.forget(_deps(), principal, ward_id, kind, device_id)
    except Problem as problem:
        return _refusal_page(ward_id, ward_name, principal, problem, "devices", {})
    return _saved(ward_id, "device_forgotten", "devices")
