"""Ratings given at a ward's office, counted at the centre (office_ratings.py): the handler
as a plain function on the embedded database. The real worker on the real broker is in
tests/platform/test_centre_sees_offices.py."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from motcua_common.auth import Principal
from motcua_common.events import new_event, parse_envelope
from motcua_rating import office_ratings, opportunities, ratings
from motcua_rating.bootstrap import prepare
from motcua_rating.deps import build_deps
from motcua_rating.store import RATINGS

OFFICE = "dn-hai-chau"
MONITOR = Principal(subject="giamsat", role="monitor", ward_id=None)
AT = "2026-07-15T03:00:00.000Z"


@pytest.fixture
def deps(settings, service_db):
    prepare(settings, demo=False)
    return build_deps(settings, db=service_db("rating"), verifier=None)


def rating_given(subject_type: str, subject_id: str, score: str = "very_satisfied", rating_id: str | None = None):
    envelope = new_event("RatingGiven", OFFICE, {
        "rating_id": rating_id or str(uuid.uuid4()), "ward_id": OFFICE, "subject_type": subject_type,
        "subject_id": subject_id, "officer_id": "canbo-1", "counter_id": "q1", "score": score})
    envelope["occurred_at"] = AT
    return parse_envelope(envelope)


def test_an_offices_rating_counts_once_in_the_centres_rankings_and_stats(deps):
    event = rating_given("ticket", "t-office-1")
    assert office_ratings.on_rating_given(deps, None, event) == "processed"
    assert office_ratings.on_rating_given(deps, None, event) == "duplicate"
    assert deps.db[RATINGS].count_documents({}) == 1
    ranking = ratings.rankings(deps, MONITOR, "2026-H2")
    [ward] = ranking["wards"]
    assert (ward["ward_id"], ward["total"], ward["very_satisfied"]) == (OFFICE, 1, 1)
    [officer] = ranking["officers"]
    assert (officer["ward_id"], officer["officer_id"]) == (OFFICE, "canbo-1")
    stats = ratings.ward_stats(deps, MONITOR, OFFICE, "2026-07-01", "2026-07-31")
    assert stats["total"] == 1 and stats["by_counter"][0]["counter_id"] == "q1"


def test_the_centres_own_rating_coming_back_changes_nothing(deps):
    stored = {"_id": "r-centre", "subject_type": "ticket", "subject_id": "t-centre", "ward_id": OFFICE,
              "officer_id": "canbo-1", "counter_id": "q1", "score": "satisfied", "comment": "Nhanh", "reasons": [],
              "rated_at": datetime(2026, 7, 15, 2, 59, tzinfo=timezone.utc)}
    deps.db[RATINGS].insert_one(stored)
    assert office_ratings.on_rating_given(deps, None, rating_given("ticket", "t-centre", rating_id="r-centre")) == "processed"
    assert list(deps.db[RATINGS].find()) == [stored]


def test_a_subject_rated_at_the_office_and_at_the_centre_keeps_the_first(deps):
    assert office_ratings.on_rating_given(deps, None, rating_given("ticket", "t-2", "unsatisfied")) == "processed"
    assert office_ratings.on_rating_given(deps, None, rating_given("ticket", "t-2", "very_satisfied")) == "processed"
    assert [r["score"] for r in deps.db[RATINGS].find({"subject_id": "t-2"})] == ["unsatisfied"]


def test_a_dossier_rated_at_the_office_is_keyed_by_its_receipt_code_when_known(deps):
    ready = new_event("DossierResultReady", OFFICE, {"dossier_id": "d-1", "receipt_code": "HS-0001", "ward_id": OFFICE,
                                                     "procedure_code": "HT01"})
    opportunities.on_dossier_result_ready(deps, None, parse_envelope(ready))
    office_ratings.on_rating_given(deps, None, rating_given("dossier", "d-1"))
    office_ratings.on_rating_given(deps, None, rating_given("dossier", "d-unknown"))
    keys = {(r["subject_id"], r["dossier_id"]) for r in deps.db[RATINGS].find()}
    assert keys == {("HS-0001", "d-1"), ("d-unknown", "d-unknown")}


def test_a_rating_event_that_is_not_a_rating_is_refused(deps):
    with pytest.raises(ValueError):
        office_ratings.on_rating_given(deps, None, rating_given("ticket", "t-3", score="great"))
    assert deps.db[RATINGS].count_documents({}) == 0
