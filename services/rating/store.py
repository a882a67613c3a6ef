"""The rating database, pymongo access only: rating opportunities (what may be rated) and
ratings. The rules are in domain.py, the use cases in ratings.py and opportunities.py.

Uniqueness lives in indexes, never in a read-then-write: one opportunity per subject
(subject_type, subject_id), one rating per opportunity."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from pymongo import ASCENDING, DESCENDING
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from motcua_common import outbox

from .domain import DOSSIER, TICKET, RatingCount

OPPORTUNITIES = "opportunities"
RATINGS = "ratings"
WARDS = "wards"


class AlreadyRated(Exception):
    """The opportunity has its one rating already."""


def ensure_indexes(db: Database) -> None:
    db[OPPORTUNITIES].create_index(
        [("subject_type", ASCENDING), ("subject_id", ASCENDING)], unique=True, name="one_opportunity_per_subject"
    )
    # A return without its receipt code is matched to the opportunity by dossier id.
    db[OPPORTUNITIES].create_index("dossier_id", name="by_dossier", sparse=True)
    db[OPPORTUNITIES].create_index(
        [("ward_id", ASCENDING), ("counter_id", ASCENDING), ("served_at", DESCENDING)], name="latest_at_counter")
    db[RATINGS].create_index(
        [("subject_type", ASCENDING), ("subject_id", ASCENDING)], unique=True, name="one_rating_per_opportunity"
    )
    db[RATINGS].create_index([("ward_id", ASCENDING), ("rated_at", DESCENDING)], name="by_ward_and_time")
    db[RATINGS].create_index("rated_at", name="by_time")  # rankings across wards


# ---------------------------------------------------------------- wards (names for stats and rankings)
def record_ward(db: Database, ward_id: str, fields: dict, now: datetime, session: ClientSession | None = None) -> None:
    """What identity says of a ward it opened (name, official code, province); set again
    when it is opened again, the first opening's moment kept."""
    db[WARDS].update_one({"_id": ward_id}, {"$set": fields, "$setOnInsert": {"opened_at": now}},
                         upsert=True, session=session)


def ward_names(db: Database, ward_ids: Iterable[str] | None = None) -> dict[str, dict]:
    """ward_id -> {name, province, official_code} of the wards known (all, or those asked)."""
    query = {} if ward_ids is None else {"_id": {"$in": list(ward_ids)}}
    return {d["_id"]: {k: d.get(k) for k in ("name", "province", "official_code")}
            for d in db[WARDS].find(query, {"name": 1, "province": 1, "official_code": 1})}


# ---------------------------------------------------------------- opportunities
def _subject(subject_type: str, subject_id: str) -> dict:
    return {"subject_type": subject_type, "subject_id": subject_id}


def open_opportunity(db: Database, opportunity: dict, now: datetime, session: ClientSession | None = None) -> None:
    """Record an opportunity (created `now`) unless its subject is known already (then the
    first one stands: a second event about the same subject neither duplicates nor
    downgrades it)."""
    key = _subject(opportunity["subject_type"], opportunity["subject_id"])
    on_insert = {**opportunity, "created_at": now}
    db[OPPORTUNITIES].update_one(key, {"$setOnInsert": on_insert}, upsert=True, session=session)


def open_returned_dossier(db: Database, receipt_code: str, known: dict, changes: dict, now: datetime,
                          session: ClientSession | None = None) -> None:
    """Make a dossier's opportunity ratable (`changes`), creating it from `known` when its
    DossierResultReady has not been seen (events of different types may arrive in any order)."""
    on_insert = {k: v for k, v in known.items() if k not in changes}
    on_insert["created_at"] = now
    db[OPPORTUNITIES].update_one(
        _subject(DOSSIER, receipt_code), {"$set": changes, "$setOnInsert": on_insert}, upsert=True, session=session
    )


def receipt_code_of(db: Database, dossier_id: str, session: ClientSession | None = None) -> str | None:
    doc = db[OPPORTUNITIES].find_one({"subject_type": DOSSIER, "dossier_id": dossier_id},
                                     {"subject_id": 1}, session=session)
    return doc["subject_id"] if doc else None


def find_opportunity(db: Database, subject_type: str, subject_id: str) -> dict | None:
    return db[OPPORTUNITIES].find_one(_subject(subject_type, subject_id))


def latest_served_at_counter(db: Database, ward_id: str, counter_id: str) -> dict | None:
    """The ticket opportunity served most recently at a counter."""
    return db[OPPORTUNITIES].find_one({"subject_type": TICKET, "ward_id": ward_id, "counter_id": counter_id},
                                      sort=[("served_at", DESCENDING)])


def is_rated(db: Database, subject_type: str, subject_id: str) -> bool:
    return db[RATINGS].count_documents(_subject(subject_type, subject_id), limit=1) == 1


# ---------------------------------------------------------------- ratings
def add_rating(db: Database, rating: dict, events: list[dict]) -> None:
    """Store the rating and its events in one transaction; AlreadyRated when the
    opportunity has a rating (the unique index decides, so concurrent attempts get one)."""
    try:
        outbox.commit(db, lambda session: db[RATINGS].insert_one(rating, session=session), events)
    except DuplicateKeyError as exc:
        raise AlreadyRated(rating["subject_type"], rating["subject_id"]) from exc


def _count(db: Database, match: dict, by: Iterable[str]) -> list[RatingCount]:
    group_id = {name: f"${name}" for name in ("score", *by)}
    pipeline = [{"$match": match}, {"$group": {"_id": group_id, "count": {"$sum": 1}}}]
    return [
        RatingCount(count=row["count"], **{k: v or "" for k, v in row["_id"].items()})
        for row in db[RATINGS].aggregate(pipeline)
    ]


def count_ward_ratings(db: Database, ward_id: str, start: datetime, end: datetime) -> list[RatingCount]:
    """A ward's ratings in [start, end), counted per officer, counter and score."""
    return _count(db, {"ward_id": ward_id, "rated_at": {"$gte": start, "$lt": end}}, ("officer_id", "counter_id"))


def count_ratings_by_officer(db: Database, start: datetime, end: datetime,
                             ward_id: str | None = None) -> list[RatingCount]:
    """Ratings in [start, end), counted per ward, officer and score (one ward's, or all)."""
    match: dict = {"rated_at": {"$gte": start, "$lt": end}}
    if ward_id is not None:
        match["ward_id"] = ward_id
    return _count(db, match, ("ward_id", "officer_id"))


def count_ratings_by_ward(db: Database, start: datetime, end: datetime) -> list[RatingCount]:
    """All wards' ratings in [start, end), counted per ward and score."""
    return _count(db, {"rated_at": {"$gte": start, "$lt": end}}, ("ward_id",))


def record_rating_from_elsewhere(db: Database, rating: dict, session: ClientSession | None = None) -> str:
    """Record a rating another rating service gave (a ward office's, office_ratings.py):
    "recorded"; "known" when this rating is here already (the centre's own, come back by its
    event); "other_rating" when its subject has another rating here (the first one stands).
    Read then write inside the caller's transaction: a concurrent rating of the same subject
    fails the unique index at commit, never leaving two."""
    if db[RATINGS].count_documents({"_id": rating["_id"]}, limit=1, session=session):
        return "known"
    if db[RATINGS].count_documents(_subject(rating["subject_type"], rating["subject_id"]), limit=1, session=session):
        return "other_rating"
    db[RATINGS].insert_one(rating, session=session)
    return "recorded"
