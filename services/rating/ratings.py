"""Use cases of rating: give a rating (from the API or the screen beside a counter), the
ticket that screen offers, the reasons a rating may carry, a ward's statistics and the
half-yearly rankings of wards and officers.

Plain functions `(deps, principal, input...)` called alike by the API and the pages;
refusals are motcua_common.http.Problem with the contract's codes (a bad form or body is
domain.InvalidInput from the rules, turned into 422 here)."""
from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Mapping

from motcua_common import metrics
from motcua_common.auth import Principal
from motcua_common.http import Problem, ValidationFailed, field_error, forbidden

from . import domain, events, screens, store, wards

if TYPE_CHECKING:
    from .deps import Deps


def _invalid(exc: domain.InvalidInput) -> ValidationFailed:
    return ValidationFailed([field_error(f, m) for f, m in exc.errors])


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


def give_rating(deps: "Deps", principal: Principal | None, rating_request: domain.RatingRequest,
                channel: str = "web") -> dict:
    """Store one rating for an opportunity and its RatingGiven event, atomically. Anyone
    holding the ticket id or receipt code may rate, once; no login needed. `channel` sms:
    an answer to the result-ready SMS, which may rate a dossier from its result on."""
    opportunity = store.find_opportunity(deps.db, rating_request.subject_type, rating_request.subject_id)
    now = deps.clock.now()
    verdict = (domain.may_rate_by_sms if channel == "sms" else domain.may_rate)(opportunity, now)
    if verdict != domain.Verdict.RATABLE:
        raise _refusal(verdict)
    rating = domain.new_rating(str(uuid.uuid4()), opportunity, rating_request, now)
    rating["channel"] = channel
    try:
        store.add_rating(deps.db, rating, [events.rating_given(rating)])
    except store.AlreadyRated:
        raise Problem(409, "already_rated", "Đã đánh giá",
                      "Lượt phục vụ này đã được đánh giá, mỗi lượt chỉ được đánh giá một lần. / Already rated.") from None
    metrics.RATINGS.labels(rating["ward_id"], rating["score"]).inc()
    return rating


def rate(deps: "Deps", principal: Principal | None, body: Mapping) -> dict:
    """POST /ratings: the body checked (422 validation_failed), then give_rating."""
    try:
        rating_request = domain.read_rating_request(body)
    except domain.InvalidInput as exc:
        raise _invalid(exc) from None
    rating = give_rating(deps, principal, rating_request)
    return {"rating_id": rating["_id"]}


def rate_by_sms(deps: "Deps", receipt_code: object, score: object) -> dict:
    """identity's RPC when a citizen answers the result-ready SMS with 1, 2 or 3 (identity
    found the dossier through dossier, from the phone registered on it): the same use case
    as POST /ratings with the receipt code, channel sms. The answer is an outcome, never a
    refusal: {"outcome": "rated", "rating_id"} | {"outcome": "already_rated"} |
    {"outcome": "not_ratable", "reason"} | {"outcome": "invalid"}."""
    try:
        rating_request = domain.read_rating_request({"receipt_code": receipt_code, "score": score})
    except domain.InvalidInput:
        return {"outcome": "invalid"}
    try:
        rating = give_rating(deps, None, rating_request, channel="sms")
    except Problem as refused:
        if refused.code == "already_rated":
            return {"outcome": "already_rated"}
        return {"outcome": "not_ratable", "reason": refused.code}
    return {"outcome": "rated", "rating_id": rating["_id"]}


def rate_at_screen(deps: "Deps", screen: "screens.RatingScreen | None", ward_id: str, counter_id: str,
                   ticket_id: str, score: str) -> dict:
    """A face pressed on the paired screen beside a counter. The screen rates only what it
    offered: the ticket just served at this counter. Raises domain.InvalidInput for a form
    that is not a rating, Problem for a refusal (an unpaired screen included)."""
    offered = screen_ticket(deps, screen, ward_id, counter_id)
    rating_request = domain.read_rating_request({"ticket_id": ticket_id, "score": score})
    if offered is None or offered["ticket_id"] != rating_request.subject_id:
        raise Problem(404, "not_ratable", "Chưa thể đánh giá")
    return give_rating(deps, None, rating_request)


def reasons(deps: "Deps", principal: Principal | None) -> list[dict]:
    """The reason codes a rating may carry, with their Vietnamese labels."""
    return [{"code": code, "label": label} for code, label in domain.REASONS.items()]


# ---------------------------------------------------------------- the rating screen
def screen_ticket(deps: "Deps", screen: "screens.RatingScreen | None", ward_id: str, counter_id: str) -> dict | None:
    """The ticket just served at a counter while it is fresh and unrated, else None; only
    for the screen paired beside that counter (screens.require_screen_of: 401/403), since
    whoever holds the ticket id may rate it."""
    screens.require_screen_of(screen, ward_id, counter_id)
    opportunity = store.latest_served_at_counter(deps.db, ward_id, counter_id)
    rated = opportunity is not None and store.is_rated(deps.db, domain.TICKET, opportunity["subject_id"])
    return domain.screen_ticket(opportunity, rated, deps.clock.now())


# ---------------------------------------------------------------- statistics and ranking
def _watcher_of(principal: Principal, ward_id: str) -> None:
    if not principal.can_watch(ward_id):
        raise forbidden("Chỉ cán bộ của phường, trung tâm giám sát và quản trị viên được xem. / Not allowed for this ward.")


def _half_year_asked(deps: "Deps", text: str | None) -> domain.Period:
    if text is None:
        return domain.half_year(deps.clock.today())
    try:
        return domain.parse_half_year(text)
    except domain.InvalidInput as exc:
        raise _invalid(exc) from None


def ward_stats(deps: "Deps", principal: Principal, ward_id: str, from_text: str | None,
               to_text: str | None) -> dict:
    """A ward's satisfaction over the days asked (the current half-year by default)."""
    _watcher_of(principal, ward_id)
    try:
        period = domain.reporting_period(from_text, to_text, deps.clock.today())
    except domain.InvalidInput as exc:
        raise _invalid(exc) from None
    start, end = period.utc_bounds(deps.settings.timezone)
    stats = domain.ward_stats(store.count_ward_ratings(deps.db, ward_id, start, end))
    known = wards.names(deps, principal, [ward_id]).get(ward_id, {})
    return {"ward_id": ward_id, "ward_name": known.get("name"), "province": known.get("province"),
            "from": period.first_day.isoformat(), "to": period.last_day.isoformat(), **stats.as_dict()}


def _named(deps: "Deps", principal: Principal, rows: list[dict]) -> list[dict]:
    """Each row with its ward's name and province (None for a ward rating never heard of)."""
    known = wards.names(deps, principal, {row["ward_id"] for row in rows})
    return [{**row, "ward_name": known.get(row["ward_id"], {}).get("name"),
             "province": known.get(row["ward_id"], {}).get("province")} for row in rows]


def rankings(deps: "Deps", principal: Principal, period_text: str | None) -> dict:
    """The half-yearly ranking of wards and officers, for the monitoring centre and admins."""
    if principal.role not in ("monitor", "admin"):
        raise forbidden()
    period = _half_year_asked(deps, period_text)
    start, end = period.utc_bounds(deps.settings.timezone)
    tallies = domain.ward_tallies(store.count_ratings_by_ward(deps.db, start, end))
    officers = domain.officer_tallies(store.count_ratings_by_officer(deps.db, start, end))
    return {"period": period.name, "from": period.first_day.isoformat(), "to": period.last_day.isoformat(),
            "wards": _named(deps, principal, domain.rank_wards(tallies)),
            "officers": _named(deps, principal, domain.rank_officers(officers))}


def ward_officer_rankings(deps: "Deps", principal: Principal, ward_id: str, period_text: str | None) -> dict:
    """The half-yearly ranking of a ward's officers, for the ward's own staff as well."""
    _watcher_of(principal, ward_id)
    period = _half_year_asked(deps, period_text)
    start, end = period.utc_bounds(deps.settings.timezone)
    officers = domain.officer_tallies(store.count_ratings_by_officer(deps.db, start, end, ward_id))
    known = wards.names(deps, principal, [ward_id]).get(ward_id, {})
    return {"ward_id": ward_id, "ward_name": known.get("name"), "period": period.name, "from": period.first_day.isoformat(),
            "to": period.last_day.isoformat(), "officers": domain.rank_officers(officers)}
