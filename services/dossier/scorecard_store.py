"""pymongo for the public scorecards (scorecards.py): the ratings tally dossier keeps from
RatingGiven, and the counts of a ward's own dossiers over a period, for every ward at once
(one pass per figure over the period's dossiers, grouped by ward — never a query per ward)."""
from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING
from pymongo.database import Database

from . import domain
from .store import DOSSIERS, WARDS

RATING_TALLIES = "rating_tallies"   # one document per ward, month and score
SCORES = ("very_satisfied", "satisfied", "unsatisfied")


def ensure_indexes(db: Database) -> None:
    db[RATING_TALLIES].create_index([("ward_id", ASCENDING), ("month", ASCENDING)], name="ward_month")
    db[DOSSIERS].create_index([("submitted_at", ASCENDING), ("ward_id", ASCENDING)], name="submitted_ward")
    db[DOSSIERS].create_index([("status", ASCENDING), ("returned_on", ASCENDING)], name="status_returned_on")


def count_rating(db: Database, ward_id: str, month: str, score: str, session=None) -> None:
    db[RATING_TALLIES].update_one({"_id": f"{ward_id}:{month}"},
                                  {"$inc": {score: 1}, "$setOnInsert": {"ward_id": ward_id, "month": month}},
                                  upsert=True, session=session)


def ratings_since(db: Database, first_month: str) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {}
    for doc in db[RATING_TALLIES].find({"month": {"$gte": first_month}}):
        ward = totals.setdefault(doc["ward_id"], dict.fromkeys(SCORES, 0))
        for score in SCORES:
            ward[score] += int(doc.get(score, 0))
    return totals


def _per_ward(db: Database, match: dict) -> dict[str, int]:
    return {row["_id"]: row["n"] for row in db[DOSSIERS].aggregate(
        [{"$match": match}, {"$group": {"_id": "$ward_id", "n": {"$sum": 1}}}])}


def dossier_counts_since(db: Database, since: datetime, since_day: str) -> dict[str, dict[str, int]]:
    """ward -> {submitted, online, returned, returned_on_time} for dossiers submitted (or
    returned) on or after the start of the period."""
    figures = {
        "submitted": _per_ward(db, {"submitted_at": {"$gte": since}}),
        "online": _per_ward(db, {"submitted_at": {"$gte": since}, "channel": "online"}),
        "returned": _per_ward(db, {"status": domain.RETURNED, "returned_on": {"$gte": since_day}}),
        "returned_on_time": _per_ward(db, {"status": domain.RETURNED, "returned_on": {"$gte": since_day},
                                           "returned_on_time": True}),
    }
    wards: dict[str, dict[str, int]] = {}
    for figure, counts in figures.items():
        for ward_id, n in counts.items():
            wards.setdefault(ward_id, dict.fromkeys(figures, 0))[figure] = n
    return wards


def open_wards(db: Database) -> list[dict]:
    """Every ward this service heard opened (WardOpened), with its name and province."""
    return [{"ward_id": d["_id"], "name": d.get("name", d["_id"]), "province": d.get("province", ""),
             "province_code": d.get("province_code", ""), "official_code": d.get("official_code", "")}
            for d in db[WARDS].find({}, {"name": 1, "province": 1, "province_code": 1, "official_code": 1})]
