"""The rating screen beside a counter (/rating/rate/{ward}/{counter}): three large faces
for the ticket just served there, a thank-you, back to idle.

Only a screen paired beside that counter (screens.py: a one-time link from the ward's
admin leaves a device cookie) is shown the ticket; an unpaired browser sees a page saying
so. Server-rendered and usable without JavaScript (each face is a form button); with
JavaScript the idle screen watches the latest-ticket endpoint and shows the faces as soon
as the officer closes the ticket. Pages only translate the form into a use-case call
(ratings.py, screens.py) and render its answer; they never import api.py."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, redirect, render_template, request, url_for

from motcua_common.http import Problem, request_context

from . import domain, ratings, screens

FOLDER = Path(__file__).resolve().parent
THANK_YOU_SECONDS = 6

pages = Blueprint("rating_pages", __name__, url_prefix="/rating", root_path=str(FOLDER),
                  static_folder="static", static_url_path="/static")

# What the screen says after a refusal, by problem code.
_REFUSALS = {
    "already_rated": "Lượt phục vụ này đã được đánh giá. Cảm ơn quý khách!",
    "rating_window_closed": "Đã quá thời hạn đánh giá lượt phục vụ này.",
    "not_ratable": "Chưa đánh giá được lượt phục vụ này.",
}


def paired_screen() -> screens.RatingScreen | None:
    """The paired rating screen whose credential is in the request's cookie."""
    return screens.screen_of(request_context(), request.cookies.get(screens.COOKIE_NAME))


def _unpaired(ward_id: str, counter_id: str, problem: Problem, status: int = 200, failed: bool = False):
    return render_template("rate_unpaired.html", ward_id=ward_id, counter_id=counter_id,
                           other_counter=problem.code == "device_not_for_counter", failed=failed), status


@pages.get("/rate/<ward_id>/<counter_id>")
def rate(ward_id: str, counter_id: str):
    try:
        ticket = ratings.screen_ticket(request_context(), paired_screen(), ward_id, counter_id)
    except Problem as problem:
        return _unpaired(ward_id, counter_id, problem)
    return render_template("rate.html", ward_id=ward_id, counter_id=counter_id, ticket=ticket,
                           message=request.args.get("message"))


@pages.post("/rate/<ward_id>/<counter_id>")
def rate_submit(ward_id: str, counter_id: str):
    ticket_id, score = request.form.get("ticket_id", ""), request.form.get("score", "")
    back = url_for(".rate", ward_id=ward_id, counter_id=counter_id)
    try:
        ratings.rate_at_screen(request_context(), paired_screen(), ward_id, counter_id, ticket_id, score)
    except domain.InvalidInput:
        return redirect(back, 303)
    except Problem as problem:
        if problem.code in ("device_credential_required", "device_not_for_counter"):
            return _unpaired(ward_id, counter_id, problem, problem.status)
        return render_template("rate_done.html", ward_id=ward_id, counter_id=counter_id, back=back,
                               message=_REFUSALS.get(problem.code, _REFUSALS["not_ratable"]),
                               seconds=THANK_YOU_SECONDS), problem.status
    return render_template("rate_done.html", ward_id=ward_id, counter_id=counter_id, back=back, score=score,
                           message="Cảm ơn quý khách đã đánh giá!", seconds=THANK_YOU_SECONDS)


@pages.get("/rate/<ward_id>/<counter_id>/pair/<code>")
def pair_screen(ward_id: str, counter_id: str, code: str):
    """The pairing link, opened on the screen: the device credential in an HttpOnly cookie
    that only the rating pages receive, then the idle screen."""
    credential = screens.pair(request_context(), None, ward_id, counter_id, code)
    if credential is None:
        return _unpaired(ward_id, counter_id, Problem(410, "pairing_expired", "Liên kết ghép nối không dùng được"),
                         410, failed=True)
    response = redirect(url_for(".rate", ward_id=ward_id, counter_id=counter_id), 303)
    response.set_cookie(screens.COOKIE_NAME, credential, max_age=screens.CREDENTIAL_MAX_AGE_SECONDS, httponly=True,
                        samesite="Strict", secure=request.is_secure, path="/rating/")
    return response
