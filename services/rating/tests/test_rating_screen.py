"""The rating screen beside a counter (its latest-ticket endpoint and its page) and the
half-yearly ranking of officers, against the SecantusDB server."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from motcua_rating import domain, store
from motcua_rating.api import create_app
from motcua_rating.bootstrap import prepare

WARD = "tn-song-cong"
LATEST = f"/rating/api/v1/wards/{WARD}/counters/quay-1/latest"
SCREEN = f"/rating/rate/{WARD}/quay-1"


@pytest.fixture
def db(settings, service_db):
    prepare(settings, demo=False)
    return service_db("rating")


@pytest.fixture
def client(settings, verifier, db):
    app = create_app(settings, verifier=verifier)
    yield app.test_client()
    app.extensions["motcua"].db.client.close()


def served(db, counter="quay-1", number="A001", officer="officer-1", ward=WARD, served_at=None) -> str:
    ticket_id = str(uuid.uuid4())
    store.open_opportunity(db, domain.ticket_served(
        {"ticket_id": ticket_id, "ward_id": ward, "counter_id": counter, "officer_id": officer,
         "service_code": "A", "number": number},
        served_at=served_at or datetime.now(timezone.utc)), datetime.now(timezone.utc))
    return ticket_id


def rate(db, ticket_id: str, score: str, at: datetime) -> None:
    opportunity = store.find_opportunity(db, "ticket", ticket_id)
    rating = domain.new_rating(str(uuid.uuid4()), opportunity, domain.RatingRequest("ticket", ticket_id, score), at)
    store.add_rating(db, rating, [])


# ---------------------------------------------------------------- the latest ticket at a counter
def test_the_screen_offers_the_ticket_just_served_at_its_counter_only(client, db):
    assert client.get(LATEST).status_code == 204
    served(db, counter="quay-2", number="B004")
    earlier = served(db, number="A001", served_at=datetime.now(timezone.utc) - timedelta(minutes=2))
    latest = served(db, number="A002")
    answer = client.get(LATEST)
    assert answer.status_code == 200
    assert answer.json["ticket_id"] == latest and answer.json["number"] == "A002"
    assert set(answer.json) == {"ticket_id", "number", "service_code", "counter_id", "served_at"}  # no officer
    assert earlier != latest


def test_a_rated_or_stale_ticket_is_not_offered(client, db):
    stale = served(db, served_at=datetime.now(timezone.utc) - domain.RATING_SCREEN_FRESHNESS - timedelta(seconds=5))
    assert client.get(LATEST).status_code == 204
    fresh = served(db, number="A003")
    assert client.post("/rating/api/v1/ratings", json={"ticket_id": fresh, "score": "satisfied"}).status_code == 201
    assert client.get(LATEST).status_code == 204
    # Still ratable through the API (its QR code page) within 24 h, just not offered on the screen.
    assert client.post("/rating/api/v1/ratings", json={"ticket_id": stale, "score": "satisfied"}).status_code == 201


# ---------------------------------------------------------------- the page
def test_the_page_is_idle_then_asks_then_thanks(client, db):
    idle = client.get(SCREEN)
    assert idle.status_code == 200 and "data-idle" in idle.get_data(as_text=True)
    ticket_id = served(db, number="A007")
    page = client.get(SCREEN).get_data(as_text=True)
    assert "A007" in page and page.count("data-score=") == 3
    done = client.post(SCREEN, data={"ticket_id": ticket_id, "score": "very_satisfied"})
    assert done.status_code == 200 and "Cảm ơn quý khách đã đánh giá" in done.get_data(as_text=True)
    [rating] = list(db[store.RATINGS].find({"subject_id": ticket_id}))
    assert rating["score"] == "very_satisfied" and rating["counter_id"] == "quay-1"
    again = client.post(SCREEN, data={"ticket_id": ticket_id, "score": "unsatisfied"})
    assert again.status_code in (404, 409)
    assert db[store.RATINGS].count_documents({"subject_id": ticket_id}) == 1


def test_the_page_rates_only_what_it_offers(client, db):
    elsewhere = served(db, counter="quay-2")
    answer = client.post(SCREEN, data={"ticket_id": elsewhere, "score": "unsatisfied"})
    assert answer.status_code == 404 and "Chưa đánh giá được" in answer.get_data(as_text=True)
    assert db[store.RATINGS].count_documents({}) == 0
    bad_score = client.post(SCREEN, data={"ticket_id": served(db), "score": "great"})
    assert bad_score.status_code == 303


# ---------------------------------------------------------------- officers ranked
def test_officers_are_ranked_per_half_year_for_the_ward_and_the_city(client, db, token):
    h2 = datetime(2026, 9, 1, 3, 0, tzinfo=timezone.utc)
    for officer, scores in {"lan": ["very_satisfied", "satisfied"], "minh": ["satisfied", "unsatisfied"],
                            "hoa": ["very_satisfied"]}.items():
        for score in scores:
            rate(db, served(db, officer=officer, served_at=h2), score, h2)
    rate(db, served(db, officer="khac", ward="dn-hai-chau", served_at=h2), "unsatisfied", h2)

    ward = client.get(f"/rating/api/v1/wards/{WARD}/rankings?period=2026-H2", headers=token("officer", WARD))
    assert ward.status_code == 200
    assert [(o["rank"], o["officer_id"], o["total"]) for o in ward.json["officers"]] == [
        (1, "lan", 2), (2, "hoa", 1), (3, "minh", 2)]
    city = client.get("/rating/api/v1/rankings?period=2026-H2", headers=token("monitor")).json
    assert [(o["ward_id"], o["officer_id"]) for o in city["officers"]][-1] == ("dn-hai-chau", "khac")
    assert client.get(f"/rating/api/v1/wards/{WARD}/rankings", headers=token("officer", "dn-hai-chau")).status_code == 403
    bad = client.get(f"/rating/api/v1/wards/{WARD}/rankings?period=2026", headers=token("monitor"))
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "period"


def test_the_screen_reports_a_heartbeat_like_the_office_floors_other_devices(client):
    """Queue's device health lists the rating screen beside each counter: the page carries
    the heartbeat's settings and queue's script (the same origin serves both services)."""
    import json
    import re

    html = client.get(SCREEN).get_data(as_text=True)
    config = json.loads(re.search(r'<script type="application/json" id="heartbeat-config">(.*?)</script>', html, re.S)
                        .group(1))
    assert config["kind"] == "rating_screen" and config["ward_id"] == WARD
    assert config["url"] == f"/queue/api/v1/wards/{WARD}/devices/heartbeat"
    assert '<script src="/queue/static/heartbeat.js" defer></script>' in html
