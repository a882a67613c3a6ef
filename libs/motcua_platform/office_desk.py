"""The desk's counter-intake pages at a ward office (`/dossier/desk/<ward>/…` on the office's
own address): the centre's desk while the centre answers, the office's own intake
(office_intake.py) while it does not.

Server-rendered, in Vietnamese, usable without JavaScript. Signing in goes through the
office gate (office_gate.OfficeGate.sign_in: the centre when it answers, the credentials the
office keeps when not); the token is kept in the session cookie and every form carries the
CSRF token (motcua_common.web_session), as on the centre's desk. Every page says plainly
that the dossier is taken while the office is cut off and what that means for the citizen.
A national id (CCCD) never goes into an address: the forms POST it."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import requests
from flask import Blueprint, Flask, abort, make_response, redirect, render_template, request

from motcua_common.auth import TokenVerifier
from motcua_common.http import Problem, ValidationFailed
from motcua_common.revocations import RevocationList
from motcua_common.web_session import (
    CsrfRefused, check_csrf, clear_session, csrf_token, issue_csrf_cookie, local_path, set_session, signed_in,
)

from . import office_intake
from .office_intake import OfficeDesk, OfficeIntake

log = logging.getLogger(__name__)

FOLDER = Path(__file__).resolve().parent
DESK = "/dossier/desk"
CENTRE_CHECK_SECONDS = 2.0
CENTRE_CHECK_CACHE_SECONDS = 10.0

pages = Blueprint("office_desk", __name__, url_prefix=DESK, template_folder=str(FOLDER / "templates"))
pages.after_request(issue_csrf_cookie)


class CentreDesk:
    """Whether the centre's dossier service answers (its /dossier/healthz). A "no" is kept
    CENTRE_CHECK_CACHE_SECONDS, so that pages cut off by a line that drops packets silently
    do not wait out the timeout on every load; a "yes" is asked afresh each time, so the
    officer is never sent to a centre that has just gone out of reach."""

    def __init__(self, central: str, clock=time.monotonic):
        self.central, self.clock = central.rstrip("/"), clock
        self._down_since: float | None = None

    def reachable(self) -> bool:
        now = self.clock()
        if self._down_since is not None and now - self._down_since < CENTRE_CHECK_CACHE_SECONDS:
            return False
        try:
            up = requests.get(f"{self.central}/dossier/healthz", timeout=CENTRE_CHECK_SECONDS).status_code == 200
        except requests.RequestException:
            up = False
        self._down_since = None if up else now
        return up


def _office() -> SimpleNamespace:
    from flask import current_app

    return current_app.extensions["motcua_office"]


def _desk() -> OfficeDesk:
    return _office().desk


def _message(status: int, title: str, text: str, action: tuple[str, str] | None = None):
    url, label = action or (None, None)
    return make_response(render_template("office/message.html", title=title, text=text, action_url=url,
                                         action_label=label), status)


@pages.errorhandler(CsrfRefused)
def _csrf_refused(_exc):
    return _message(400, "Phiên làm việc đã hết hạn", "Phiên làm việc đã hết hạn, vui lòng tải lại trang rồi thử lại.")


@pages.errorhandler(Problem)
def _problem(exc: Problem):
    return _message(exc.status, exc.title, (exc.detail or exc.title).split(" / ")[0])


@pages.context_processor
def _globals():
    return {"csrf_token": csrf_token, "desk": DESK, "ward_id": _desk().ward_id, "signed_in": signed_in(),
            "vn_date": office_intake.vn_date, "state_labels": office_intake.STATE_LABELS, "local": _local}


def _local(moment: datetime) -> str:
    """A stored moment (UTC; the database may hand it back without its zone) on the ward's clock."""
    return _desk().clock.local(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).strftime(
        "%d/%m/%Y %H:%M")


def _this_ward(ward_id: str) -> None:
    if ward_id != _desk().ward_id:
        abort(_message(404, "Không phục vụ phường này", f"Văn phòng này chỉ phục vụ phường {_desk().ward_id}."))


def _staff_or_sign_in(ward_id: str, cut_off: bool = False):
    """The signed-in officer of this ward, or the office's sign-in form (coming back here);
    `cut_off`: the page knows the centre does not answer, and the form says so."""
    principal = signed_in()
    if principal is None:
        abort(make_response(render_template("office/sign_in.html", next=request.path, error=None,
                                            cut_off=cut_off), 200))
    return principal


# ---------------------------------------------------------------- signing in at the office
@pages.post("/<ward_id>/dang-nhap")
def sign_in(ward_id: str):
    _this_ward(ward_id)
    check_csrf()
    username, password = request.form.get("username", "").strip(), request.form.get("password", "")
    answer, status = _office().gate.sign_in({"username": username, "password": password})
    # Back to the page that asked, on this office's desk only (never another site).
    home = f"{DESK}/{ward_id}/tiep-nhan"
    target = local_path(request.form.get("next"), home)
    target = target if target.startswith(f"{DESK}/{ward_id}/") else home
    if status != 200:
        from .office_gate import _REFUSALS

        detail = _REFUSALS.get(status, (None, None, "Chưa đăng nhập được, vui lòng thử lại."))[2].split(" / ")[0]
        return make_response(render_template("office/sign_in.html", next=target, error=detail, username=username),
                             status if status >= 400 else 502)
    if answer.get("ward_id") != ward_id or answer.get("role") not in ("officer", "ward_admin", "leader"):
        return make_response(render_template("office/sign_in.html", next=target, username=username,
                                             error="Tài khoản này không phải cán bộ của phường."), 403)
    response = redirect(target, 303)
    set_session(response, answer["access_token"], int(answer.get("expires_in") or 3600))
    return response


@pages.post("/<ward_id>/dang-xuat")
def sign_out(ward_id: str):
    _this_ward(ward_id)
    check_csrf()
    response = redirect(f"{DESK}/{ward_id}/tiep-nhan", 303)
    clear_session(response)
    return response


# ---------------------------------------------------------------- intake
@pages.get("/<ward_id>/tiep-nhan")
def intake_page(ward_id: str):
    _this_ward(ward_id)
    if _office().centre.reachable():
        # The link works: the dossier goes straight into the centre's desk.
        return redirect(f"{_office().centre.central}{DESK}/{quote(ward_id)}/tiep-nhan", 303)
    _staff_or_sign_in(ward_id, cut_off=True)
    return _intake_page(ward_id, {"procedure_code": request.args.get("thu_tuc", "")[:40]})


def _intake_page(ward_id: str, values: dict, errors: dict | None = None, message: str | None = None,
                 status: int = 200):
    chosen = office_intake.procedure(_desk(), values.get("procedure_code") or "")
    return make_response(render_template(
        "office/intake.html", values=values, errors=errors or {}, message=message,
        procedures=office_intake.procedures(_desk()), procedure=chosen,
        form_token=office_intake.new_form_token(),
        provisional_due=(_desk().calendar.add_working_days(_desk().clock.today(), chosen.ward_days)
                         if chosen else None),
    ), status)


@pages.post("/<ward_id>/tiep-nhan")
def intake_post(ward_id: str):
    _this_ward(ward_id)
    check_csrf()
    principal = _staff_or_sign_in(ward_id, cut_off=True)
    form = request.form
    chosen = office_intake.procedure(_desk(), form.get("procedure_code", "").strip()[:40])
    fields = list(chosen.form) if chosen else []
    values = {
        "procedure_code": chosen.code if chosen else "",
        "national_id": form.get("national_id", "").strip()[:20],
        "record": {k: form.get(f"record.{k}", "").strip()[:120] for k in ("full_name", "date_of_birth", "phone")},
        "papers": form.getlist("papers")[:50],
        "form": {f.name: form.get(f"form.{f.name}", "").strip() for f in fields},
    }
    # Here, not at the top: the portal module brings in the whole of dossier (result signing
    # included), which the office's API would otherwise hold in memory all day.
    from motcua_dossier.portal import typed_form

    intake = OfficeIntake(national_id=values["national_id"], procedure_code=values["procedure_code"],
                          form=typed_form(fields, values["form"]), papers_received=tuple(values["papers"]),
                          record=values["record"])
    try:
        entry = office_intake.file_at_office(_desk(), principal, ward_id, intake,
                                             form.get("form_token", "")[:200] or None)
    except ValidationFailed as problem:
        shown = {e["field"]: e["message"] for e in problem.errors}
        return _intake_page(ward_id, values, shown, "Chưa tiếp nhận được: sửa các ô được đánh dấu.", 422)
    return redirect(f"{DESK}/{ward_id}/ngoai-tuyen/{entry['_id']}?moi=1", 303)


@pages.get("/<ward_id>/ngoai-tuyen/<entry_id>")
def entry_page(ward_id: str, entry_id: str):
    _this_ward(ward_id)
    principal = _staff_or_sign_in(ward_id)
    entry = office_intake.entry_of(_desk(), principal, ward_id, entry_id)
    return render_template("office/entry.html", entry=entry, new=request.args.get("moi") == "1")


@pages.get("/<ward_id>/ngoai-tuyen/<entry_id>/giay-tiep-nhan")
def receipt(ward_id: str, entry_id: str):
    _this_ward(ward_id)
    principal = _staff_or_sign_in(ward_id)
    entry = office_intake.entry_of(_desk(), principal, ward_id, entry_id)
    return render_template("office/receipt.html", entry=entry, officer_name=entry.get("officer_username") or "",
                           printed_at=_desk().clock.local())


@pages.get("/<ward_id>/so-tiep-nhan")
def journal_page(ward_id: str):
    _this_ward(ward_id)
    principal = _staff_or_sign_in(ward_id)
    return render_template("office/journal.html", entries=office_intake.journal(_desk(), principal, ward_id))


def register(app: Flask, gate, desk: OfficeDesk, central: str) -> None:
    """The office's intake pages on the gate's app (office_gate.gate_app)."""
    app.extensions["motcua_office"] = SimpleNamespace(gate=gate, desk=desk, centre=CentreDesk(central))
    # web_session's signed_in() reads the verifier and revocations from here, as on every
    # service: the office's keys (the centre's and its own) and the sessions ended early.
    app.extensions["motcua"] = SimpleNamespace(verifier=TokenVerifier(gate.jwks),
                                               revocations=RevocationList(gate.revocations.database))
    app.register_blueprint(pages)
