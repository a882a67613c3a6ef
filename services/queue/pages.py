"""The pages of the queue: the kiosk (/queue/kiosk/{ward}), the ticket a phone follows
(/queue/ticket/{id}), the display board (/queue/board/{ward}) and the counter console
(/queue/counter/{ward}/{counter}). Server-rendered, Vietnamese, large touch targets.

The kiosk issues tickets with a plain form POST, so it works without JavaScript; the
board, the console and the kiosk's lookups use JavaScript against the JSON APIs (same
origin). Like api.py, each page only translates HTTP into a use-case call (counters.py,
tickets.py, board.py, kiosks.py) and renders its answer; it never imports api.py."""
from __future__ import annotations

from datetime import datetime
from importlib import metadata
from pathlib import Path

import qrcode
import qrcode.image.svg
from flask import Blueprint, abort, make_response, redirect, render_template, request, url_for
from markupsafe import Markup

from . import board as hall
from . import counters, domain, heartbeats, hours, kiosks, tickets, wards
from .callers import deps as _deps
from .callers import kiosk_cookie
from .devices import COOKIE_NAME, CREDENTIAL_MAX_AGE_SECONDS

FOLDER = Path(__file__).resolve().parent
# How long the issued ticket stays on the kiosk before the start screen comes back.
KIOSK_TICKET_SECONDS = 20

pages = Blueprint("queue_pages", __name__, url_prefix="/queue", root_path=str(FOLDER),
                  static_folder="static", static_url_path="/static")


# The pages a device keeps on screen all day report a heartbeat (static/heartbeat.js), by kind.
HEARTBEAT_PAGES = {
    "queue_pages.kiosk": heartbeats.KIOSK, "queue_pages.kiosk_ticket": heartbeats.KIOSK,
    "queue_pages.kiosk_procedures": heartbeats.KIOSK, "queue_pages.kiosk_dossiers": heartbeats.KIOSK,
    "queue_pages.kiosk_rate": heartbeats.KIOSK, "queue_pages.board": heartbeats.BOARD,
    "queue_pages.counter": heartbeats.COUNTER,
}


def _app_version() -> str:
    try:
        return metadata.version("motcua")
    except metadata.PackageNotFoundError:
        return "0+unknown"


APP_VERSION = _app_version()


@pages.context_processor
def _office():
    # The header clock shows the office's time, whatever zone the screen's device is set to.
    return {"office_timezone": _deps().settings.timezone, "heartbeat": _heartbeat_config()}


def _heartbeat_config() -> dict | None:
    kind = HEARTBEAT_PAGES.get(request.endpoint or "")
    args = request.view_args or {}
    if kind is None or "ward_id" not in args:
        return None
    config = {"ward_id": args["ward_id"], "kind": kind, "app_version": APP_VERSION,
              "interval_seconds": heartbeats.HEARTBEAT_SECONDS,
              "url": url_for("queue_api.device_heartbeat", ward_id=args["ward_id"])}
    if kind == heartbeats.COUNTER:
        config["counter_id"] = args.get("counter_id")
    return config


def _page_not_found(message: str):
    return make_response(render_template("not_found.html", message=message), 404)


def _ward_or_404(ward_id: str) -> str:
    name = counters.ward_name(_deps(), None, ward_id)
    if name is None:
        abort(_page_not_found(f"Phường “{ward_id}” chưa dùng hệ thống xếp hàng."))
    return name


# ---------------------------------------------------------------- the kiosk
@pages.get("/kiosk/<ward_id>")
def kiosk(ward_id: str):
    ward_name = _ward_or_404(ward_id)
    deps = _deps()
    if not kiosks.allowed_here(deps, kiosk_cookie(), ward_id):
        return render_template("kiosk_unpaired.html", ward_id=ward_id, ward_name=ward_name,
                               paired=request.args.get("paired")), 200
    status = wards.office_status(deps, None, ward_id)
    if not status.open:
        return _kiosk_closed(deps, ward_id, ward_name, status)
    waiting = hall.snapshot(deps, None, ward_id)["waiting"]
    return render_template("kiosk.html", ward_id=ward_id, ward_name=ward_name,
                           services=counters.services(deps, None, ward_id), waiting=waiting,
                           form_token=kiosks.new_form_token(),
                           paired=request.args.get("paired"), error=request.args.get("error"))


def _kiosk_closed(deps, ward_id: str, ward_name: str, status):
    """Outside the ward's hours the start screen says so, and when the desk opens; no
    ticket buttons (the screen reloads itself every minute)."""
    weekly = wards.opening_hours(deps, None, ward_id)["weekly"]
    sessions = [(hours.WEEKDAY_NAMES[i], weekly.get(day, [])) for i, day in enumerate(hours.WEEKDAYS)]
    opens_at = hours.describe_opening(status.opens_at) if status.opens_at else None
    return render_template("kiosk_closed.html", ward_id=ward_id, ward_name=ward_name, reason=status.reason,
                           opens_at=opens_at, sessions=sessions)


@pages.post("/kiosk/<ward_id>/tickets")
def kiosk_issue(ward_id: str):
    """The start screen's form: one button per service (name=service_code), the priority
    checkbox, and a form token that makes a double tap print one ticket, not two."""
    _ward_or_404(ward_id)
    deps = _deps()
    if not kiosks.allowed_here(deps, kiosk_cookie(), ward_id):
        return render_template("kiosk_unpaired.html", ward_id=ward_id,
                               ward_name=counters.ward_name(deps, None, ward_id)), 403
    priority = domain.PRIORITY if request.form.get("priority") == domain.PRIORITY else domain.NORMAL
    outcome = kiosks.issue_from_form(deps, None, ward_id, request.form.get("service_code", ""), priority,
                                     request.form.get("form_token", "")[:64])
    if outcome.ticket_id is None:
        return redirect(url_for(".kiosk", ward_id=ward_id, error=outcome.error), 303)
    return redirect(url_for(".kiosk_ticket", ward_id=ward_id, ticket_id=outcome.ticket_id), 303)


@pages.get("/kiosk/<ward_id>/tickets/<ticket_id>")
def kiosk_ticket(ward_id: str, ticket_id: str):
    """The issued ticket on screen and, through the print style sheet, on an 80 mm slip."""
    ward_name = _ward_or_404(ward_id)
    deps = _deps()
    progress = tickets.progress(deps, None, ticket_id)
    if progress is None or progress["ward_id"] != ward_id:
        return _page_not_found("Không tìm thấy số thứ tự này.")
    follow_url = url_for(".follow_ticket", ticket_id=ticket_id, _external=True)
    issued_at = deps.clock.local(datetime.fromisoformat(progress["issued_at"].replace("Z", "+00:00")))
    return render_template("kiosk_ticket.html", ward_id=ward_id, ward_name=ward_name, ticket=progress,
                           issued_at=issued_at, qr_svg=_qr_svg(follow_url), follow_url=follow_url,
                           return_seconds=KIOSK_TICKET_SECONDS)


@pages.get("/kiosk/<ward_id>/procedures")
def kiosk_procedures(ward_id: str):
    return render_template("kiosk_procedures.html", ward_id=ward_id, ward_name=_ward_or_404(ward_id))


@pages.get("/kiosk/<ward_id>/dossiers")
def kiosk_dossiers(ward_id: str):
    return render_template("kiosk_dossiers.html", ward_id=ward_id, ward_name=_ward_or_404(ward_id))


@pages.get("/kiosk/<ward_id>/rate")
def kiosk_rate(ward_id: str):
    return render_template("kiosk_rate.html", ward_id=ward_id, ward_name=_ward_or_404(ward_id),
                           counters=counters.counters(_deps(), None, ward_id))


@pages.get("/kiosk/<ward_id>/pair/<code>")
def pair_kiosk(ward_id: str, code: str):
    """The pairing link, opened on the kiosk: the one-time code becomes a device record and
    the device credential in an HttpOnly cookie, then the start screen."""
    ward_name = _ward_or_404(ward_id)
    credential = kiosks.pair(_deps(), None, ward_id, code)
    if credential is None:
        return render_template("kiosk_unpaired.html", ward_id=ward_id, ward_name=ward_name, failed=True), 410
    response = redirect(url_for(".kiosk", ward_id=ward_id, paired=1), 303)
    response.set_cookie(COOKIE_NAME, credential, max_age=CREDENTIAL_MAX_AGE_SECONDS, httponly=True,
                        samesite="Strict", secure=request.is_secure, path="/queue/")
    return response


# ---------------------------------------------------------------- a phone follows its ticket
@pages.get("/ticket/<ticket_id>")
def follow_ticket(ticket_id: str):
    deps = _deps()
    progress = tickets.progress(deps, None, ticket_id)
    if progress is None:
        return _page_not_found("Không tìm thấy số thứ tự này. Số thứ tự chỉ có giá trị trong ngày lấy số.")
    return render_template("ticket_follow.html", ticket=progress,
                           ward_name=counters.ward_name(deps, None, progress["ward_id"]))


# ---------------------------------------------------------------- the board
@pages.get("/board/<ward_id>")
def board(ward_id: str):
    ward_name = _ward_or_404(ward_id)
    deps = _deps()
    return render_template("board.html", ward_id=ward_id, ward_name=ward_name,
                           board=hall.snapshot(deps, None, ward_id),
                           services=counters.services(deps, None, ward_id),
                           counters={c["counter_id"]: c["name"] for c in counters.counters(deps, None, ward_id)})


# ---------------------------------------------------------------- the counter console
@pages.get("/counter/<ward_id>/<counter_id>")
def counter(ward_id: str, counter_id: str):
    ward_name = _ward_or_404(ward_id)
    deps = _deps()
    this_counter = counters.counter(deps, ward_id, counter_id)
    if this_counter is None:
        return _page_not_found(f"Phường không có quầy “{counter_id}”.")
    return render_template("counter.html", ward_id=ward_id, ward_name=ward_name, counter=this_counter,
                           counters=counters.counters(deps, None, ward_id),
                           services=counters.services(deps, None, ward_id))


def _qr_svg(data: str) -> Markup:
    """An inline SVG QR code (pure Python, no image library): sharp on screen and on paper."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    return Markup(image.to_string(encoding="unicode"))
