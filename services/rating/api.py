"""The rating HTTP API (CONTRACT.md "rating"): give a rating, a ward's satisfaction
statistics, and the half-yearly ranking of wards — and create_app. Routes only translate
HTTP into a use-case call (ratings.py) and its answer back."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, request, url_for

from motcua_common import metrics
from motcua_common.auth import TokenVerifier
from motcua_common.config import Settings
from motcua_common.http import authenticated, create_service_app, current_principal, idempotent, json_body
from motcua_common.http import request_context as _deps
from motcua_common.outbox import pending_count

from . import ratings, screens
from .admin import admin
from .deps import SERVICE, build_deps
from .pages import pages, paired_screen

OPENAPI = Path(__file__).with_name("openapi.yaml")

api = Blueprint(SERVICE, __name__, url_prefix=f"/{SERVICE}/api/v1")


# ---------------------------------------------------------------- giving a rating
@api.post("/ratings")
def post_rating():
    """Anyone holding the ticket id or receipt code may rate, once; no login needed (the
    rating screen beside a counter and the kiosk are used by citizens)."""
    deps = _deps()
    return idempotent(deps.db, "ratings", lambda: (ratings.rate(deps, None, json_body()), 201))


@api.get("/reasons")
def list_reasons():
    """The reason codes a rating may carry, with their Vietnamese labels."""
    return ratings.reasons(_deps(), None)


# ---------------------------------------------------------------- statistics and ranking
@api.get("/wards/<ward_id>/stats")
@authenticated()
def ward_stats(ward_id: str):
    return ratings.ward_stats(_deps(), current_principal(), ward_id, request.args.get("from"), request.args.get("to"))


@api.get("/rankings")
@authenticated()
def rankings():
    return ratings.rankings(_deps(), current_principal(), request.args.get("period"))


@api.get("/wards/<ward_id>/rankings")
@authenticated()
def ward_officer_rankings(ward_id: str):
    """The half-yearly ranking of a ward's officers, for the ward's own staff as well."""
    return ratings.ward_officer_rankings(_deps(), current_principal(), ward_id, request.args.get("period"))


# ---------------------------------------------------------------- the rating screen
@api.get("/wards/<ward_id>/counters/<counter_id>/latest")
def latest_at_counter(ward_id: str, counter_id: str):
    """The ticket just served at a counter, for the paired rating screen beside it (its
    device cookie): 200 while it is fresh and unrated, else 204; 401
    device_credential_required without that screen's credential, 403
    device_not_for_counter for a screen paired beside another counter."""
    ticket = ratings.screen_ticket(_deps(), paired_screen(), ward_id, counter_id)
    if ticket is None:
        return Response(status=204)
    return ticket


@api.post("/wards/<ward_id>/counters/<counter_id>/screen-pairings")
@authenticated()
def create_screen_pairing(ward_id: str, counter_id: str):
    """A one-time pairing link for the rating screen beside a counter (the ward's admin)."""
    code, expires_at = screens.create_pairing(_deps(), current_principal(), ward_id, counter_id)
    link = url_for("rating_pages.pair_screen", ward_id=ward_id, counter_id=counter_id, code=code, _external=True)
    return {"pairing_url": link, "expires_at": screens.iso_utc(expires_at)}, 201


@api.get("/wards/<ward_id>/screens")
@authenticated()
def list_screens(ward_id: str):
    return [{**s, "paired_at": screens.iso_utc(s["paired_at"])}
            for s in screens.list_screens(_deps(), current_principal(), ward_id)]


@api.delete("/wards/<ward_id>/screens/<device_id>")
@authenticated()
def revoke_screen(ward_id: str, device_id: str):
    screens.revoke(_deps(), current_principal(), ward_id, device_id)
    return Response(status=204)


# ---------------------------------------------------------------- the app
def create_app(settings: Settings, verifier: TokenVerifier | None = None) -> Flask:
    deps = build_deps(settings, **({"verifier": verifier} if verifier is not None else {}))
    return create_service_app(
        deps, [api, pages, admin], OPENAPI,
        extra_collectors=[metrics.OutboxPendingCollector(SERVICE, lambda: pending_count(deps.db))],
    )
