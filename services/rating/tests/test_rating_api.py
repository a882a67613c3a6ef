"""The rating HTTP API against the SecantusDB server: giving a rating once, the windows,
validation, statistics per officer and counter, rankings, and who may read them."""
from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from motcua_common.outbox import OUTBOX
from motcua_rating import domain, store
from motcua_rating.api import create_app
from motcua_rating.bootstrap import prepare

WARD, OTHER_WARD = "dn-hai-chau", "dn-lien-chieu"


@pytest.fixture
def db(settings, service_db):
    prepare(settings, demo=False)
    return service_db("rating")


@pytest.fixture
def app(settings, verifier, db):
    app = create_app(settings, verifier=verifier)
    yield app
    app.extensions["motcua"].db.client.close()


@pytest.fixture
def client(app):
    return app.test_client()


def served_ticket(db, ward=WARD, officer="officer-1", counter="c1", served_at=None) -> str:
    ticket_id = str(uuid.uuid4())
    store.open_opportunity(db, domain.ticket_served(
        {"ticket_id": ticket_id, "ward_id": ward, "counter_id": counter, "officer_id": officer,
         "service_code": "A", "number": "A001"},
        served_at=served_at or datetime.now(timezone.utc)), datetime.now(timezone.utc))
    return ticket_id


def dossier(db, receipt_code: str, returned_at=None, ward=WARD, officer="officer-9") -> str:
    dossier_id = str(uuid.uuid4())
    ready = domain.dossier_result_ready({"dossier_id": dossier_id, "receipt_code": receipt_code, "ward_id": ward})
    store.open_opportunity(db, ready, datetime.now(timezone.utc))
    if returned_at is not None:
        store.open_returned_dossier(db, receipt_code, ready,
                                    domain.dossier_returned({"actor_id": officer}, returned_at),
                                    datetime.now(timezone.utc))
    return dossier_id


def rated(db, at: datetime, score: str, ward=WARD, officer="officer-1", counter="c1") -> None:
    """A rating given at `at` (in the past), stored the way the API stores one."""
    ticket_id = served_ticket(db, ward, officer, counter, served_at=at)
    opportunity = store.find_opportunity(db, "ticket", ticket_id)
    rating = domain.new_rating(str(uuid.uuid4()), opportunity, domain.RatingRequest("ticket", ticket_id, score), at)
    store.add_rating(db, rating, [])


def rating_events(db) -> list[dict]:
    return [doc["envelope"] for doc in db[OUTBOX].find({"routing_key": "RatingGiven"})]


# ---------------------------------------------------------------- giving a rating
def test_a_served_ticket_is_rated_once_and_the_rating_is_announced(client, db):
    ticket_id = served_ticket(db)
    response = client.post("/rating/api/v1/ratings", json={
        "ticket_id": ticket_id, "score": "very_satisfied", "comment": "Cán bộ nhiệt tình", "reasons": ["attitude"]})
    assert response.status_code == 201, response.json
    rating_id = response.json["rating_id"]
    rating = db.ratings.find_one({"_id": rating_id})
    assert (rating["ward_id"], rating["officer_id"], rating["counter_id"]) == (WARD, "officer-1", "c1")
    assert rating["comment"] == "Cán bộ nhiệt tình" and rating["reasons"] == ["attitude"]

    [event] = rating_events(db)
    assert event["source"] == "rating" and event["ward_id"] == WARD
    assert event["payload"] == {"rating_id": rating_id, "ward_id": WARD, "subject_type": "ticket",
                                "subject_id": ticket_id, "officer_id": "officer-1", "counter_id": "c1",
                                "score": "very_satisfied"}

    again = client.post("/rating/api/v1/ratings", json={"ticket_id": ticket_id, "score": "unsatisfied"})
    assert again.status_code == 409 and again.json["code"] == "already_rated"
    assert again.mimetype == "application/problem+json"
    assert db.ratings.count_documents({}) == 1 and len(rating_events(db)) == 1


def test_concurrent_attempts_give_exactly_one_rating(app, db):
    ticket_id = served_ticket(db)
    statuses: list[int] = []
    start = threading.Barrier(8)

    def attempt(score):
        client = app.test_client()
        start.wait()
        statuses.append(client.post("/rating/api/v1/ratings", json={"ticket_id": ticket_id, "score": score}).status_code)

    threads = [threading.Thread(target=attempt, args=(domain.SCORES[i % 3],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses) == [201] + [409] * 7
    assert db.ratings.count_documents({}) == 1 and len(rating_events(db)) == 1


def test_a_returned_dossier_is_rated_by_receipt_code(client, db):
    dossier_id = dossier(db, "HC-2607-0001", returned_at=datetime.now(timezone.utc) - timedelta(days=6))
    response = client.post("/rating/api/v1/ratings", json={"receipt_code": "HC-2607-0001", "score": "satisfied"})
    assert response.status_code == 201
    [event] = rating_events(db)
    assert event["payload"]["subject_type"] == "dossier"
    assert event["payload"]["subject_id"] == dossier_id
    assert event["payload"]["officer_id"] == "officer-9"
    assert "HC-2607-0001" not in json.dumps(event)  # the receipt code stays in this service


def test_unknown_ticket_and_unreturned_dossier_are_not_ratable(client, db):
    dossier(db, "HC-PENDING")
    for body in ({"ticket_id": "no-such-ticket"}, {"receipt_code": "NO-SUCH"}, {"receipt_code": "HC-PENDING"}):
        response = client.post("/rating/api/v1/ratings", json={**body, "score": "satisfied"})
        assert response.status_code == 404, body
        assert response.json["code"] == "not_ratable"
    assert db.ratings.count_documents({}) == 0 and rating_events(db) == []


def test_the_rating_window_closes(client, db):
    now = datetime.now(timezone.utc)
    old_ticket = served_ticket(db, served_at=now - timedelta(hours=24, minutes=1))
    dossier(db, "HC-OLD", returned_at=now - timedelta(days=7, minutes=1))
    for body in ({"ticket_id": old_ticket}, {"receipt_code": "HC-OLD"}):
        response = client.post("/rating/api/v1/ratings", json={**body, "score": "unsatisfied"})
        assert response.status_code == 410 and response.json["code"] == "rating_window_closed"
    fresh = served_ticket(db, served_at=now - timedelta(hours=23, minutes=59))
    assert client.post("/rating/api/v1/ratings", json={"ticket_id": fresh, "score": "satisfied"}).status_code == 201


@pytest.mark.parametrize("body,field", [
    ({"ticket_id": "t", "score": "excellent"}, "score"),
    ({"ticket_id": "t", "receipt_code": "r", "score": "satisfied"}, "receipt_code"),
    ({"score": "satisfied"}, "ticket_id"),
    ({"ticket_id": "t", "score": "satisfied", "comment": "x" * 501}, "comment"),
    ({"ticket_id": "t", "score": "satisfied", "reasons": ["slow"]}, "reasons"),
])
def test_invalid_ratings_are_422(client, body, field):
    response = client.post("/rating/api/v1/ratings", json=body)
    assert response.status_code == 422
    assert response.json["code"] == "validation_failed"
    assert field in {e["field"] for e in response.json["errors"]}


def test_a_rating_must_be_json(client):
    assert client.post("/rating/api/v1/ratings", data="score=satisfied").status_code == 415


def test_a_retry_with_the_same_idempotency_key_returns_the_first_answer(client, db):
    ticket_id = served_ticket(db)
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"ticket_id": ticket_id, "score": "satisfied"}
    first = client.post("/rating/api/v1/ratings", json=body, headers=headers)
    second = client.post("/rating/api/v1/ratings", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json == second.json and second.headers["Idempotent-Replayed"] == "true"
    assert db.ratings.count_documents({}) == 1 and len(rating_events(db)) == 1


def test_ratings_are_counted_in_metrics(client, db):
    client.post("/rating/api/v1/ratings", json={"ticket_id": served_ticket(db, ward="metrics-ward"), "score": "unsatisfied"})
    text = client.get("/rating/metrics").get_data(as_text=True)
    assert 'motcua_ratings_total{score="unsatisfied",ward_id="metrics-ward"} 1.0' in text
    assert 'motcua_outbox_pending{service="rating"} 1.0' in text


# ---------------------------------------------------------------- statistics
def test_ward_stats_per_officer_and_counter_over_local_days(client, db, token):
    # 2026-07-31 17:30 UTC is already 1 August in Việt Nam.
    rated(db, datetime(2026, 7, 1, 2, 0, tzinfo=timezone.utc), "very_satisfied", officer="o1", counter="c1")
    rated(db, datetime(2026, 7, 10, 9, 0, tzinfo=timezone.utc), "satisfied", officer="o1", counter="c2")
    rated(db, datetime(2026, 7, 20, 9, 0, tzinfo=timezone.utc), "unsatisfied", officer="o2", counter="c2")
    rated(db, datetime(2026, 7, 31, 17, 30, tzinfo=timezone.utc), "unsatisfied", officer="o2", counter="c2")
    rated(db, datetime(2026, 6, 30, 16, 59, tzinfo=timezone.utc), "unsatisfied", officer="o1")   # 30 June local
    rated(db, datetime(2026, 7, 5, 9, 0, tzinfo=timezone.utc), "unsatisfied", ward=OTHER_WARD)

    response = client.get(f"/rating/api/v1/wards/{WARD}/stats?from=2026-07-01&to=2026-07-31",
                          headers=token("officer", WARD))
    assert response.status_code == 200, response.json
    stats = response.json
    assert (stats["from"], stats["to"]) == ("2026-07-01", "2026-07-31")
    assert (stats["very_satisfied"], stats["satisfied"], stats["unsatisfied"], stats["total"]) == (1, 1, 1, 3)
    assert stats["satisfaction_index"] == round(2 / 3, 4)
    assert stats["by_officer"] == [
        {"officer_id": "o1", "very_satisfied": 1, "satisfied": 1, "unsatisfied": 0, "total": 2, "satisfaction_index": 1.0},
        {"officer_id": "o2", "very_satisfied": 0, "satisfied": 0, "unsatisfied": 1, "total": 1, "satisfaction_index": 0.0},
    ]
    assert [(c["counter_id"], c["total"]) for c in stats["by_counter"]] == [("c1", 1), ("c2", 2)]

    august = client.get(f"/rating/api/v1/wards/{WARD}/stats?from=2026-08-01", headers=token("monitor")).json
    assert (august["to"], august["total"], august["unsatisfied"]) == ("2026-12-31", 1, 1)


def test_stats_default_to_the_current_half_year(client, db, token):
    client.post("/rating/api/v1/ratings", json={"ticket_id": served_ticket(db), "score": "satisfied"})
    stats = client.get(f"/rating/api/v1/wards/{WARD}/stats", headers=token("ward_admin", WARD)).json
    today = datetime.now(timezone.utc) + timedelta(hours=7)
    half = domain.half_year(today.date())
    assert (stats["from"], stats["to"]) == (half.first_day.isoformat(), half.last_day.isoformat())
    assert (stats["total"], stats["satisfaction_index"]) == (1, 1.0)


def test_a_ward_nobody_rated_has_no_index(client, db, token):
    stats = client.get(f"/rating/api/v1/wards/{WARD}/stats", headers=token("admin")).json
    assert stats["total"] == 0 and stats["satisfaction_index"] is None
    assert stats["by_officer"] == [] and stats["by_counter"] == []


@pytest.mark.parametrize("role,ward,status", [
    ("officer", WARD, 200), ("ward_admin", WARD, 200), ("monitor", None, 200), ("admin", None, 200),
    ("officer", OTHER_WARD, 403), ("ward_admin", OTHER_WARD, 403), ("citizen", WARD, 403), ("kiosk", WARD, 403),
])
def test_who_may_read_a_wards_stats(client, db, token, role, ward, status):
    response = client.get(f"/rating/api/v1/wards/{WARD}/stats", headers=token(role, ward))
    assert response.status_code == status
    if status == 403:
        assert response.json["code"] == "forbidden"


def test_stats_need_a_valid_login(client, db, token):
    assert client.get(f"/rating/api/v1/wards/{WARD}/stats").status_code == 401
    assert client.get(f"/rating/api/v1/wards/{WARD}/stats",
                      headers={"Authorization": "Bearer not-a-token"}).json["code"] == "invalid_token"
    must_change = token("officer", WARD, must_change_password=True)
    assert client.get(f"/rating/api/v1/wards/{WARD}/stats", headers=must_change).json["code"] == "password_change_required"


@pytest.mark.parametrize("query", ["from=2026-02-30", "to=31/07/2026", "from=2026-08-01&to=2026-07-01"])
def test_bad_stats_dates_are_422(client, db, token, query):
    response = client.get(f"/rating/api/v1/wards/{WARD}/stats?{query}", headers=token("monitor"))
    assert response.status_code == 422 and response.json["code"] == "validation_failed"


# ---------------------------------------------------------------- rankings
def test_wards_are_ranked_for_a_half_year(client, db, token):
    h2 = datetime(2026, 8, 1, 3, 0, tzinfo=timezone.utc)
    for score in ("very_satisfied", "satisfied", "unsatisfied"):
        rated(db, h2, score, ward="dn-hai-chau")
    for score in ("very_satisfied", "satisfied"):
        rated(db, h2, score, ward="dn-lien-chieu")
    rated(db, h2, "satisfied", ward="hn-ba-dinh")
    rated(db, datetime(2026, 3, 1, tzinfo=timezone.utc), "unsatisfied", ward="hn-ba-dinh")  # 2026-H1

    response = client.get("/rating/api/v1/rankings?period=2026-H2", headers=token("monitor"))
    assert response.status_code == 200
    body = response.json
    assert (body["period"], body["from"], body["to"]) == ("2026-H2", "2026-07-01", "2026-12-31")
    assert [(w["rank"], w["ward_id"], w["total"]) for w in body["wards"]] == [
        (1, "dn-lien-chieu", 2), (2, "hn-ba-dinh", 1), (3, "dn-hai-chau", 3)]

    h1 = client.get("/rating/api/v1/rankings?period=2026-H1", headers=token("admin")).json
    assert [(w["ward_id"], w["satisfaction_index"]) for w in h1["wards"]] == [("hn-ba-dinh", 0.0)]


def test_rankings_are_for_the_monitoring_centre_and_admins(client, db, token):
    assert client.get("/rating/api/v1/rankings", headers=token("officer", WARD)).status_code == 403
    assert client.get("/rating/api/v1/rankings", headers=token("ward_admin", WARD)).status_code == 403
    current = client.get("/rating/api/v1/rankings", headers=token("monitor"))
    assert current.status_code == 200 and current.json["period"].endswith(("-H1", "-H2"))
    bad = client.get("/rating/api/v1/rankings?period=2026-Q3", headers=token("monitor"))
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "period"


# ---------------------------------------------------------------- the service's own endpoints
def test_every_route_is_in_the_openapi_document(client, app):
    spec = client.get("/rating/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    served = {
        (rule.rule.removeprefix("/rating/api/v1").replace("<", "{").replace(">", "}"), method)
        for rule in app.url_map.iter_rules() if rule.rule.startswith("/rating/api/v1/") and "openapi" not in rule.rule
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert served == documented


def test_reasons_are_listed_with_labels(client):
    reasons = client.get("/rating/api/v1/reasons").json
    assert {"code": "wait_time", "label": "Thời gian chờ"} in reasons


def test_health_and_readiness(client, db):
    assert client.get("/rating/healthz").json["status"] == "ok"
    assert client.get("/rating/readyz").json["checks"]["database"] is True
