"""The rules of rating, free of Flask, nameko and pymongo.

A *rating opportunity* is something a citizen may rate once: a ticket served at a counter
(ratable for 24 hours), or a dossier whose result was handed back (ratable for 7 days after
the return; known from the moment its result is ready, but not ratable before the return).
A rating has one of three scores — the three buttons of the rating screen — and the
satisfaction index of a set of ratings is the share of the first two. Wards are ranked by
that index twice a year (half-years H1 and H2)."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from fractions import Fraction
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo

from motcua_common.names import unsafe_characters

# ---------------------------------------------------------------- vocabulary
VERY_SATISFIED, SATISFIED, UNSATISFIED = "very_satisfied", "satisfied", "unsatisfied"
SCORES = (VERY_SATISFIED, SATISFIED, UNSATISFIED)

TICKET, DOSSIER = "ticket", "dossier"

# Opportunity states. A dossier's opportunity exists from DossierResultReady on, so that a
# citizen trying too early is told "not yet" rather than "unknown"; it opens on return.
PENDING_RETURN, RATABLE = "pending_return", "ratable"

# The dossier status (DossierStatusChanged.to_status) that opens a dossier to rating.
RETURNED = "returned"

TICKET_RATING_WINDOW = timedelta(hours=24)
# The rating screen beside a counter offers the ticket just served there; one served longer
# ago than this is no longer "just served" (the screen goes back to idle).
RATING_SCREEN_FRESHNESS = timedelta(minutes=10)
DOSSIER_RATING_WINDOW = timedelta(days=7)

COMMENT_MAX_CHARS = 500
SUBJECT_ID_MAX_CHARS = 100

# What a rating may point at, as codes so that they can be counted; the screen shows the
# Vietnamese label. Neutral aspects: the same code is praise beside "very satisfied" and a
# complaint beside "unsatisfied".
REASONS = {
    "wait_time": "Thời gian chờ",
    "attitude": "Thái độ của cán bộ",
    "guidance": "Hướng dẫn thủ tục",
    "processing_time": "Thời gian giải quyết",
    "facilities": "Cơ sở vật chất",
}


class InvalidInput(ValueError):
    """Input that breaks a rule; `errors` is a list of (field, Vietnamese message)."""

    def __init__(self, errors: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


# ---------------------------------------------------------------- giving a rating
@dataclass(frozen=True)
class RatingRequest:
    subject_type: str
    subject_id: str
    score: str
    comment: str | None = None
    reasons: tuple[str, ...] = ()


def read_rating_request(body: Mapping) -> RatingRequest:
    """Check a POST /ratings body: exactly one of ticket_id and receipt_code, a known
    score, an optional comment of at most 500 characters, optional known reasons."""
    errors: list[tuple[str, str]] = []
    ticket_id, receipt_code = body.get("ticket_id"), body.get("receipt_code")
    subject: tuple[str, str] | None = None
    if ticket_id is not None and receipt_code is not None:
        errors.append(("receipt_code", "Chỉ gửi một trong hai: ticket_id hoặc receipt_code."))
    elif ticket_id is None and receipt_code is None:
        errors.append(("ticket_id", "Cần mã phiếu (ticket_id) hoặc mã hồ sơ (receipt_code)."))
    else:
        name, value, subject_type = (
            ("ticket_id", ticket_id, TICKET) if ticket_id is not None else ("receipt_code", receipt_code, DOSSIER)
        )
        if not isinstance(value, str) or not value.strip() or len(value.strip()) > SUBJECT_ID_MAX_CHARS:
            errors.append((name, f"Phải là chuỗi ký tự không rỗng, tối đa {SUBJECT_ID_MAX_CHARS} ký tự."))
        else:
            subject = (subject_type, value.strip())

    score = body.get("score")
    if score not in SCORES:
        errors.append(("score", "Mức đánh giá phải là very_satisfied, satisfied hoặc unsatisfied."))

    comment = body.get("comment")
    if comment is not None:
        if not isinstance(comment, str):
            errors.append(("comment", "Góp ý phải là chuỗi ký tự."))
        elif len(comment) > COMMENT_MAX_CHARS:
            errors.append(("comment", f"Góp ý tối đa {COMMENT_MAX_CHARS} ký tự."))
        elif unsafe_characters(unicodedata.normalize("NFC", " ".join(comment.split()))):
            # Officers and leaders read comments on their pages and in exports: a
            # right-to-left override or a terminal escape would show them something else.
            errors.append(("comment", "Góp ý có ký tự ẩn hoặc ký tự điều khiển (như ký tự đảo chiều văn bản); "
                                      "xin gõ lại."))
        else:
            comment = comment.strip() or None

    reasons = body.get("reasons", [])
    if reasons is None:
        reasons = []
    if not isinstance(reasons, list) or not all(isinstance(r, str) and r in REASONS for r in reasons):
        errors.append(("reasons", "Lý do phải là danh sách gồm: " + ", ".join(REASONS) + "."))
        reasons = []

    if errors:
        raise InvalidInput(errors)
    assert subject is not None
    # Duplicates are harmless; keep the first occurrence of each, in the order given.
    return RatingRequest(subject[0], subject[1], score, comment, tuple(dict.fromkeys(reasons)))


class Verdict:
    RATABLE = "ratable"
    UNKNOWN = "unknown"                # no served ticket / returned dossier is known
    NOT_YET = "not_yet"                # a dossier whose result is ready but not returned
    WINDOW_CLOSED = "window_closed"    # known, but the time to rate has passed


def may_rate(opportunity: Mapping | None, now: datetime) -> str:
    """May the opportunity be rated at `now`? (Whether it was already rated is decided by
    the store's unique index, not here: a check-then-insert would race.)"""
    if opportunity is None:
        return Verdict.UNKNOWN
    if opportunity.get("state") != RATABLE:
        return Verdict.NOT_YET
    if now > opportunity["ratable_until"]:
        return Verdict.WINDOW_CLOSED
    return Verdict.RATABLE


# Answering the result-ready SMS with 1, 2 or 3 rates the dossier (CONTRACT "A phone is
# enough"): by SMS a dossier may be rated from the moment its result is ready, for this
# long, as well as in the usual window after its return.
SMS_RESULT_READY_WINDOW = timedelta(days=30)


def may_rate_by_sms(opportunity: Mapping | None, now: datetime) -> str:
    """may_rate, for an answer to the result-ready SMS: a dossier whose result is ready
    but not yet collected may be rated too (the citizen was told it is ready)."""
    if opportunity is not None and opportunity.get("subject_type") == DOSSIER and opportunity.get("state") == PENDING_RETURN:
        created = opportunity.get("created_at")
        if created is not None and created.tzinfo is None:
            created = created.replace(tzinfo=timezone.utc)
        if created is None or now <= created + SMS_RESULT_READY_WINDOW:
            return Verdict.RATABLE
        return Verdict.WINDOW_CLOSED
    return may_rate(opportunity, now)


def new_rating(rating_id: str, opportunity: Mapping, request: RatingRequest, now: datetime) -> dict:
    """The rating record: the opportunity's who/where copied in, so that tallies need no join."""
    return {
        "_id": rating_id,
        "subject_type": opportunity["subject_type"],
        "subject_id": opportunity["subject_id"],
        "ward_id": opportunity["ward_id"],
        "officer_id": opportunity.get("officer_id") or "",
        "counter_id": opportunity.get("counter_id") or "",
        "service_code": opportunity.get("service_code") or "",
        "dossier_id": opportunity.get("dossier_id") or "",
        "score": request.score,
        "comment": request.comment,
        "reasons": list(request.reasons),
        "rated_at": now,
    }


def rating_given(rating: Mapping) -> dict:
    """The RatingGiven payload. A dossier is named by its opaque dossier_id, not by its
    receipt code: the receipt code is what lets anyone rate (and look a dossier up), so it
    stays inside this service."""
    subject_id = rating["dossier_id"] if rating["subject_type"] == DOSSIER else rating["subject_id"]
    return {
        "rating_id": rating["_id"],
        "ward_id": rating["ward_id"],
        "subject_type": rating["subject_type"],
        "subject_id": subject_id,
        "officer_id": rating["officer_id"],
        "counter_id": rating["counter_id"],
        "score": rating["score"],
    }


# ---------------------------------------------------------------- opportunities from events
def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant (an envelope's occurred_at) as an aware UTC datetime."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"instant without a time zone: {text!r}")
    return moment.astimezone(timezone.utc)


def _required(payload: Mapping, name: str) -> str:
    value = payload.get(name)
    if not value:
        raise ValueError(f"the event has no {name}")
    return value


def ticket_served(payload: Mapping, served_at: datetime) -> dict:
    """TicketServed -> a ticket opportunity, ratable for 24 hours after service."""
    return {
        "subject_type": TICKET,
        "subject_id": _required(payload, "ticket_id"),
        "state": RATABLE,
        "ward_id": _required(payload, "ward_id"),
        "counter_id": payload.get("counter_id", ""),
        "officer_id": payload.get("officer_id", ""),
        "service_code": payload.get("service_code", ""),
        "number": payload.get("number", ""),
        "served_at": served_at,
        "ratable_until": served_at + TICKET_RATING_WINDOW,
    }


def dossier_result_ready(payload: Mapping) -> dict:
    """DossierResultReady -> a dossier opportunity that is not ratable until the return."""
    return {
        "subject_type": DOSSIER,
        "subject_id": _required(payload, "receipt_code"),
        "state": PENDING_RETURN,
        "ward_id": _required(payload, "ward_id"),
        "dossier_id": payload.get("dossier_id", ""),
        "service_code": payload.get("procedure_code", ""),
    }


def dossier_returned(payload: Mapping, returned_at: datetime) -> dict:
    """What the return of a dossier sets on its opportunity: ratable for 7 days, and the
    officer who handed the result back is the one rated."""
    return {
        "state": RATABLE,
        "officer_id": payload.get("actor_id", ""),
        "returned_at": returned_at,
        "ratable_until": returned_at + DOSSIER_RATING_WINDOW,
    }


# ---------------------------------------------------------------- tallies
@dataclass
class Tally:
    very_satisfied: int = 0
    satisfied: int = 0
    unsatisfied: int = 0

    def add(self, score: str, count: int = 1) -> None:
        setattr(self, score, getattr(self, score) + count)

    @property
    def total(self) -> int:
        return self.very_satisfied + self.satisfied + self.unsatisfied

    @property
    def satisfaction(self) -> Fraction | None:
        """(very satisfied + satisfied) / total, exact; None when nobody rated."""
        if self.total == 0:
            return None
        return Fraction(self.very_satisfied + self.satisfied, self.total)

    def as_dict(self) -> dict:
        index = self.satisfaction
        return {
            "very_satisfied": self.very_satisfied,
            "satisfied": self.satisfied,
            "unsatisfied": self.unsatisfied,
            "total": self.total,
            "satisfaction_index": None if index is None else round(float(index), 4),
        }


@dataclass(frozen=True)
class RatingCount:
    """How many ratings of one score one officer at one counter got (one tally row)."""

    score: str
    count: int
    officer_id: str = ""
    counter_id: str = ""
    ward_id: str = ""


@dataclass
class WardStats:
    ward: Tally = field(default_factory=Tally)
    by_officer: dict[str, Tally] = field(default_factory=dict)
    by_counter: dict[str, Tally] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            **self.ward.as_dict(),
            "by_officer": [{"officer_id": k, **t.as_dict()} for k, t in sorted(self.by_officer.items())],
            "by_counter": [{"counter_id": k, **t.as_dict()} for k, t in sorted(self.by_counter.items())],
        }


def ward_stats(rows: Iterable[RatingCount]) -> WardStats:
    """Tally a ward's ratings overall, per officer and per counter. A rating without an
    officer (or without a counter: a returned dossier) counts for the ward only."""
    stats = WardStats()
    for row in rows:
        stats.ward.add(row.score, row.count)
        if row.officer_id:
            stats.by_officer.setdefault(row.officer_id, Tally()).add(row.score, row.count)
        if row.counter_id:
            stats.by_counter.setdefault(row.counter_id, Tally()).add(row.score, row.count)
    return stats


# ---------------------------------------------------------------- periods
@dataclass(frozen=True)
class Period:
    first_day: date
    last_day: date            # inclusive
    name: str | None = None   # "2026-H2" for a half-year

    def utc_bounds(self, zone: str) -> tuple[datetime, datetime]:
        """[start, end) in UTC of the local days first_day..last_day in `zone`."""
        tz = ZoneInfo(zone)
        start = datetime.combine(self.first_day, time.min, tz)
        end = datetime.combine(self.last_day + timedelta(days=1), time.min, tz)
        return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def half_year(day: date) -> Period:
    """The half-year (ranking period) containing `day`: H1 is January–June, H2 July–December."""
    if day.month <= 6:
        return Period(date(day.year, 1, 1), date(day.year, 6, 30), f"{day.year}-H1")
    return Period(date(day.year, 7, 1), date(day.year, 12, 31), f"{day.year}-H2")


_HALF_YEAR = re.compile(r"(\d{4})-H([12])")


def parse_half_year(text: str, field_name: str = "period") -> Period:
    match = _HALF_YEAR.fullmatch(text or "")
    if not match or not 2000 <= int(match.group(1)) <= 9999:
        raise InvalidInput([(field_name, "Kỳ xếp hạng có dạng YYYY-H1 hoặc YYYY-H2, ví dụ 2026-H2.")])
    year, half = int(match.group(1)), int(match.group(2))
    return half_year(date(year, 1 if half == 1 else 7, 1))


def _parse_day(text: str, field_name: str) -> date:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput([(field_name, "Ngày có dạng YYYY-MM-DD, ví dụ 2026-07-01.")]) from None


def reporting_period(from_text: str | None, to_text: str | None, today: date) -> Period:
    """The days a stats request covers, both inclusive. Without dates: the current
    half-year. With one date, the other end is completed within that date's half-year."""
    errors: list[tuple[str, str]] = []
    first = last = None
    for name, text in (("from", from_text), ("to", to_text)):
        if text is None:
            continue
        try:
            day = _parse_day(text, name)
        except InvalidInput as exc:
            errors.extend(exc.errors)
            continue
        if name == "from":
            first = day
        else:
            last = day
    if errors:
        raise InvalidInput(errors)
    if first is None and last is None:
        return half_year(today)
    if first is None:
        first = half_year(last).first_day
    if last is None:
        last = half_year(first).last_day
    if first > last:
        raise InvalidInput([("from", "Ngày bắt đầu (from) phải không sau ngày kết thúc (to).")])
    return Period(first, last)


# ---------------------------------------------------------------- ranking
def rank_wards(tallies: Mapping[str, Tally]) -> list[dict]:
    """Wards best first: by satisfaction index, then by number of ratings (an index
    earned over more ratings ranks higher). Wards equal on both share a rank (1, 2, 2, 4);
    wards nobody rated are left out."""
    return [{"rank": rank, "ward_id": ward_id, **tally.as_dict()} for rank, ward_id, tally in _ranked(tallies)]


def rank_officers(tallies: Mapping[tuple[str, str], Tally]) -> list[dict]:
    """Officers best first, by the same rule as wards (seed 004 ranks people as well as
    offices, twice a year). Keyed by (ward_id, officer_id): an officer is rated where they
    served. Officers are named by their opaque id; the ward's staff know who is who."""
    return [{"rank": rank, "ward_id": key[0], "officer_id": key[1], **tally.as_dict()}
            for rank, key, tally in _ranked(tallies)]


def _ranked(tallies: Mapping) -> list[tuple[int, object, Tally]]:
    rated = [(key, t) for key, t in tallies.items() if t.total > 0]
    rated.sort(key=lambda item: (-item[1].satisfaction, -item[1].total, item[0]))
    ranking: list[tuple[int, object, Tally]] = []
    previous_key, rank = None, 0
    for position, (key, tally) in enumerate(rated, start=1):
        standing = (tally.satisfaction, tally.total)
        if standing != previous_key:
            rank, previous_key = position, standing
        ranking.append((rank, key, tally))
    return ranking


def officer_tallies(rows: Iterable[RatingCount]) -> dict[tuple[str, str], Tally]:
    """(ward_id, officer_id) -> tally; ratings without an officer are left out."""
    tallies: dict[tuple[str, str], Tally] = {}
    for row in rows:
        if row.officer_id:
            tallies.setdefault((row.ward_id, row.officer_id), Tally()).add(row.score, row.count)
    return tallies


def screen_ticket(opportunity: Mapping | None, rated: bool, now: datetime) -> dict | None:
    """What the rating screen beside a counter offers: the ticket just served there, while
    it is fresh, ratable and not yet rated. Only what the screen shows and needs to rate:
    no officer, no personal data."""
    if opportunity is None or rated or may_rate(opportunity, now) != Verdict.RATABLE:
        return None
    if now - opportunity["served_at"] > RATING_SCREEN_FRESHNESS:
        return None
    return {"ticket_id": opportunity["subject_id"], "number": opportunity.get("number") or "",
            "service_code": opportunity.get("service_code") or "", "counter_id": opportunity.get("counter_id") or "",
            "served_at": opportunity["served_at"].astimezone(timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")}


def ward_tallies(rows: Iterable[RatingCount]) -> dict[str, Tally]:
    tallies: dict[str, Tally] = {}
    for row in rows:
        tallies.setdefault(row.ward_id, Tally()).add(row.score, row.count)
    return tallies
