"""The rating HTTP API (CONTRACT.md "rating"): give a rating, a ward's satisfaction
statistics, and the half-yearly ranking of wards."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, request

from motcua_common import metrics
from motcua_common.auth import TokenVerifier
from motcua_common.config import Settings
from motcua_common.events import new_event
from motcua_common.http import (
    Problem,
    ServiceContext,
    ValidationFailed,
    authenticated,
    create_service_app,
    current_principal,
    field_error,
    forbidden,
    idempotent,
    json_body,
    request_context,
)
from motcua_common.mongo import connect, service_database
from motcua_common.outbox import pending_count

from . import domain, store

SERVICE = "rating"
OPENAPI = Path(__file__).with_name("openapi.yaml")

api = Blueprint(SERVICE, __name__, url_prefix=f"/{SERVICE}/api/v1")


def _invalid(exc: domain.InvalidInput) -> ValidationFailed:
    return ValidationFailed([field_error(f, m) for f, m in exc.errors])


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _today(ctx: ServiceContext) -> date:
    return _now().astimezone(ZoneInfo(ctx.settings.timezone)).date()


# ---------------------------------------------------------------- giving a rating
def _refusal(verdict: str) -> Problem:
    if verdict == domain.Verdict.WINDOW_CLOSED:
        return Problem(
            410, "rating_window_closed", "Đã hết thời gian đánh giá",
            "Đã quá thời hạn đánh giá (24 giờ sau khi được phục vụ, 7 ngày sau khi nhận kết quả hồ sơ). "
            "/ The time to rate this has passed.")
    if verdict == domain.Verdict.NOT_YET:
        detail = ("Hồ sơ chưa được trả kết quả; bạn có thể đánh giá sau khi nhận kết quả. "
                  "/ The dossier has not been returned yet.")
    else:
        detail = ("Không tìm thấy lượt phục vụ hay hồ sơ đã trả kết quả với mã này. "
                  "/ No served ticket or returned dossier is known by this id.")
    return Problem(404, "not_ratable", "Chưa thể đánh giá", detail)


def give_rating(ctx: ServiceContext, rating_request: domain.RatingRequest) -> dict:
    """Store one rating for an opportunity and its RatingGiven event, atomically."""
    opportunity = store.find_opportunity(ctx.db, rating_request.subject_type, rating_request.subject_id)
    now = _now()
    verdict = domain.may_rate(opportunity, now)
    if verdict != domain.Verdict.RATABLE:
        raise _refusal(verdict)
    rating = domain.new_rating(str(uuid.uuid4()), opportunity, rating_request, now)
    event = new_event("RatingGiven", rating["ward_id"], domain.rating_given(rating))
    try:
        store.add_rating(ctx.db, rating, [event])
    except store.AlreadyRated:
        raise Problem(409, "already_rated", "Đã đánh giá",
                      "Lượt phục vụ này đã được đánh giá, mỗi lượt chỉ được đánh giá một lần. / Already rated.") from None
    metrics.RATINGS.labels(rating["ward_id"], rating["score"]).inc()
    return rating


@api.post("/ratings")
def post_rating():
    """Anyone holding the ticket id or receipt code may rate, once; no login needed (the
    rating screen beside a counter and the kiosk are used by citizens)."""
    ctx = request_context()

    def handle():
        try:
            rating_request = domain.read_rating_request(json_body())
        except domain.InvalidInput as exc:
            raise _invalid(exc) from None
        rating = give_rating(ctx, rating_request)
        return {"rating_id": rating["_id"]}, 201

    return idempotent(ctx.db, "ratings", handle)


@api.get("/reasons")
def list_reasons():
    """The reason codes a rating may carry, with their Vietnamese labels."""
    return [{"code": code, "label": label} for code, label in domain.REASONS.items()]


# ---------------------------------------------------------------- statistics and ranking
def _period(ctx: ServiceContext) -> domain.Period:
    try:
        return domain.reporting_period(request.args.get("from"), request.args.get("to"), _today(ctx))
    except domain.InvalidInput as exc:
        raise _invalid(exc) from None


@api.get("/wards/<ward_id>/stats")
@authenticated()
def ward_stats(ward_id: str):
    ctx = request_context()
    if not current_principal().can_watch(ward_id):
        raise forbidden("Chỉ cán bộ của phường, trung tâm giám sát và quản trị viên được xem. / Not allowed for this ward.")
    period = _period(ctx)
    start, end = period.utc_bounds(ctx.settings.timezone)
    stats = domain.ward_stats(store.count_ward_ratings(ctx.db, ward_id, start, end))
    return {"ward_id": ward_id, "from": period.first_day.isoformat(), "to": period.last_day.isoformat(),
            **stats.as_dict()}


@api.get("/rankings")
@authenticated("monitor", "admin")
def rankings():
    ctx = request_context()
    text = request.args.get("period")
    if text is None:
        period = domain.half_year(_today(ctx))
    else:
        try:
            period = domain.parse_half_year(text)
        except domain.InvalidInput as exc:
            raise _invalid(exc) from None
    start, end = period.utc_bounds(ctx.settings.timezone)
    tallies = domain.ward_tallies(store.count_ratings_by_ward(ctx.db, start, end))
    officers = domain.officer_tallies(store.count_ratings_by_officer(ctx.db, start, end))
    return {"period": period.name, "from": period.first_day.isoformat(), "to": period.last_day.isoformat(),
            "wards": domain.rank_wards(tallies), "officers": domain.rank_officers(officers)}


def _half_year_asked(ctx: ServiceContext) -> domain.Period:
    text = request.args.get("period")
    if text is None:
        return domain.half_year(_today(ctx))
    try:
        return domain.parse_half_year(text)
    except domain.InvalidInput as exc:
        raise _invalid(exc) from None


@api.get("/wards/<ward_id>/rankings")
@authenticated()
def ward_officer_rankings(ward_id: str):
    """The half-yearly ranking of a ward's officers, for the ward's own staff as well."""
    ctx = request_context()
    if not current_principal().can_watch(ward_id):
        raise forbidden("Chỉ cán bộ của phường, trung tâm giám sát và quản trị viên được xem. / Not allowed for this ward.")
    period = _half_year_asked(ctx)
    start, end = period.utc_bounds(ctx.settings.timezone)
    officers = domain.officer_tallies(store.count_ratings_by_officer(ctx.db, start, end, ward_id))
    return {"ward_id": ward_id, "period": period.name, "from": period.first_day.isoformat(),
            "to": period.last_day.isoformat(), "officers": domain.rank_officers(officers)}


# ---------------------------------------------------------------- the rating screen
@api.get("/wards/<ward_id>/counters/<counter_id>/latest")
def latest_at_counter(ward_id: str, counter_id: str):
    """The ticket just served at a counter, for the rating screen beside it: 200 while it
    is fresh and unrated, else 204. Public like the screen itself; it shows a number."""
    ticket = latest_ratable_ticket(request_context(), ward_id, counter_id)
    if ticket is None:
        return Response(status=204)
    return ticket


def latest_ratable_ticket(ctx: ServiceContext, ward_id: str, counter_id: str) -> dict | None:
    opportunity = store.latest_served_at_counter(ctx.db, ward_id, counter_id)
    rated = opportunity is not None and store.is_rated(ctx.db, domain.TICKET, opportunity["subject_id"])
    return domain.screen_ticket(opportunity, rated, _now())


# ---------------------------------------------------------------- the app
def create_app(settings: Settings, verifier: TokenVerifier | None = None) -> Flask:
    client = connect(settings)
    db = service_database(client, settings, SERVICE)
    ctx = ServiceContext(SERVICE, settings, db, verifier or TokenVerifier.from_url(settings.jwks_url))
    from .pages import pages  # the rating screen beside a counter

    return create_service_app(
        ctx, [api, pages], OPENAPI,
        extra_collectors=[metrics.OutboxPendingCollector(SERVICE, lambda: pending_count(db))],
    )
