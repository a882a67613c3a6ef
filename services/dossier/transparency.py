"""Transparency for citizens, no login: `GET /dossier/api/v1/public/scorecards` and the page
`/dossier/minh-bach` — every ward of a province side by side, a citizen's own ward found by
its name typed without accents, readable on a phone. Only translates HTTP: the figures are
scorecards.py's."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, jsonify, render_template, request

from motcua_common.http import request_context
from motcua_common.problems import ValidationFailed, field_error
from motcua_common.web_session import csrf_token, issue_csrf_cookie

from . import scorecards

FOLDER = Path(__file__).resolve().parent
transparency = Blueprint("dossier_transparency", __name__, url_prefix="/dossier", root_path=str(FOLDER))
transparency.after_request(issue_csrf_cookie)

# Beyond this many wards the page asks for a province or a name first (a country's 3,321
# wards are not one page on a phone).
SHOW_ALL_UP_TO = 60
MAX_QUERY = 80


def _filters() -> tuple[str | None, str | None]:
    province = (request.args.get("tinh") or request.args.get("province") or "").strip() or None
    query = (request.args.get("q") or "").strip() or None
    errors = []
    if province and (len(province) > MAX_QUERY or not province.isprintable()):
        errors.append(field_error("province", "Tỉnh, thành phố không hợp lệ. / Invalid province."))
    if query and (len(query) > MAX_QUERY or not query.isprintable()):
        errors.append(field_error("q", f"Tên phường, xã tối đa {MAX_QUERY} ký tự. / At most {MAX_QUERY} characters."))
    if errors:
        raise ValidationFailed(errors)
    return province, query


@transparency.get("/api/v1/public/scorecards")
def public_scorecards():
    province, query = _filters()
    fields = ("ward_id", "name", "province", "returned", "on_time_rate", "online_share", "satisfaction_index",
              "official_code", "province_code", "submitted", "ratings", "period")
    cards = scorecards.public_scorecards(request_context(), None, province, query)
    response = jsonify([{k: card[k] for k in fields} for card in cards])
    response.headers["Cache-Control"] = f"public, max-age={int(scorecards.CACHE_SECONDS)}"
    return response


@transparency.get("/minh-bach")
def page():
    deps = request_context()
    try:
        province, query = _filters()
    except ValidationFailed:
        province, query = None, None
    everything = scorecards.all_scorecards(deps)
    chosen = scorecards.public_scorecards(deps, None, province, query)
    show = bool(province or query) or len(everything) <= SHOW_ALL_UP_TO
    groups: dict[str, list[dict]] = {}
    for card in chosen if show else []:
        groups.setdefault(card["province"], []).append(card)
    return render_template("transparency/scorecards.html", groups=groups, province=province or "", query=query or "",
                           provinces=scorecards.provinces(deps), show=show, found=len(chosen),
                           period=everything[0]["period"] if everything else None,
                           portal="/dossier/portal", citizen=None, csrf_token=csrf_token,
                           login_url="/identity/login?next=/dossier/minh-bach")
