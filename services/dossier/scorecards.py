"""Transparency (CONTRACT.md "Transparency", seed 002: citizens "giám sát … chất lượng cung
cấp dịch vụ công"): each open ward's public scorecard over the last 12 months — dossiers
returned, the share returned on time, the share submitted online, and the satisfaction
index of its citizens' ratings. No personal data: counts only.

Satisfaction comes by events: rating emits RatingGiven and dossier's worker counts it here
per ward and month (once per event). The dossier figures are counted from dossier's own
data. The whole table is computed in a handful of grouped reads for every ward at once and
kept CACHE_SECONDS per process: the page and the API are public and must stay cheap."""
from __future__ import annotations

import os
import threading
import time
from datetime import date, datetime, time as day_time, timezone

from motcua_common.auth import Principal
from motcua_common.consumer import handle_once
from motcua_common.events import Event
from motcua_common.names import fold

from . import domain, scorecard_store
from .deps import SERVICE, Deps

MONTHS = 12
# The public table is recomputed at most this often per process (the page and the API are
# public and must stay cheap); MOTCUA_SCORECARD_CACHE_SECONDS changes it.
CACHE_SECONDS = float(os.environ.get("MOTCUA_SCORECARD_CACHE_SECONDS", "300"))

_cache: dict[int, tuple[float, list[dict]]] = {}
_cache_lock = threading.Lock()


# ---------------------------------------------------------------- counting ratings (the worker)
def count_rating(deps: Deps, principal: Principal | None, payload: dict, occurred_at: str, session=None) -> None:
    score = payload.get("score")
    if score not in scorecard_store.SCORES or not payload.get("ward_id"):
        return  # nothing to count (a malformed or future score): the event is still marked handled
    when = _parse_moment(occurred_at) or deps.clock.now()
    month = deps.clock.local(when).strftime("%Y-%m")
    scorecard_store.count_rating(deps.db, payload["ward_id"], month, score, session=session)


def on_rating_given(deps: Deps, principal: Principal | None, event: Event) -> str:
    """The worker's RatingGiven, once per event."""
    return handle_once(deps.db, SERVICE, event, lambda session: count_rating(
        deps, principal, event.payload, event.occurred_at, session=session))


def _parse_moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------- the scorecards
def period_start(today: date, months: int = MONTHS) -> date:
    """The first day of the period of `months` months that ends today (12 months: the same
    day a year ago, or the last day of that month when it is shorter)."""
    year, month = today.year, today.month - months
    while month < 1:
        month, year = month + 12, year - 1
    for day in range(today.day, 27, -1):
        try:
            return date(year, month, day)
        except ValueError:
            continue
    return date(year, month, min(today.day, 28))


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def all_scorecards(deps: Deps) -> list[dict]:
    """Every open ward's scorecard, by province and name (cached CACHE_SECONDS)."""
    key = id(deps.db)
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(key)
        if cached and now - cached[0] < CACHE_SECONDS:
            return cached[1]
    today = deps.clock.today()
    start = period_start(today)
    since = datetime.combine(start, day_time.min, tzinfo=deps.clock.tz).astimezone(timezone.utc)
    dossiers = scorecard_store.dossier_counts_since(deps.db, since, start.isoformat())
    ratings = scorecard_store.ratings_since(deps.db, start.strftime("%Y-%m"))
    cards = []
    for ward in scorecard_store.open_wards(deps.db):
        counts = dossiers.get(ward["ward_id"], {})
        rated = ratings.get(ward["ward_id"], dict.fromkeys(scorecard_store.SCORES, 0))
        total_rated = sum(rated.values())
        cards.append({
            "ward_id": ward["ward_id"], "name": ward["name"], "province": ward["province"],
            "province_code": ward["province_code"], "official_code": ward["official_code"],
            "returned": counts.get("returned", 0),
            "on_time_rate": domain.on_time_rate(counts.get("returned", 0), counts.get("returned_on_time", 0)),
            "online_share": _share(counts.get("online", 0), counts.get("submitted", 0)),
            "satisfaction_index": _share(rated["very_satisfied"] + rated["satisfied"], total_rated),
            "submitted": counts.get("submitted", 0), "ratings": total_rated,
            "period": {"from": start.isoformat(), "to": today.isoformat()},
        })
    cards.sort(key=lambda c: (c["province"], fold(c["name"])))
    with _cache_lock:
        _cache[key] = (now, cards)
    return cards


def public_scorecards(deps: Deps, principal: Principal | None, province: str | None = None,
                      q: str | None = None) -> list[dict]:
    """GET /public/scorecards and the page: every open ward, or a province's, or the wards
    whose names match `q` typed without accents."""
    cards = all_scorecards(deps)
    if province:
        wanted = fold(province)
        code = province.lstrip("0") if province.isascii() and province.isdigit() else None
        cards = [c for c in cards if (code is not None and str(c["province_code"]).lstrip("0") == code)
                 or fold(c["province"]) == wanted]
    if q:
        words = fold(q).split()
        cards = [c for c in cards if all(w in fold(f"{c['name']} {c['official_code']}") for w in words)]
    return cards


def provinces(deps: Deps) -> list[dict]:
    """The provinces that have open wards: [{province_code, province}] by name."""
    seen = {}
    for card in all_scorecards(deps):
        seen.setdefault(card["province"], card["province_code"])
    return [{"province_code": code, "province": name} for name, code in sorted(seen.items(), key=lambda i: fold(i[0]))]


def forget_cache() -> None:
    with _cache_lock:
        _cache.clear()
