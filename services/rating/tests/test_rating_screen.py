"""The rating screen beside a counter (pairing it, its latest-ticket endpoint and its page)
and the half-yearly ranking of officers, against the SecantusDB server."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from motcua_rating import domain, screens, store
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


def pair(client, db, token, counter="quay-1", ward=WARD) -> str:
    """Pair this test client's browser as the rating screen beside `counter`, as a ward
    admin would: a one-time link asked through the API and opened on the screen."""
    store.record_ward(db, ward, {"name": "Phường Sông Công"}, datetime.now(timezone.utc))
    asked = client.post(f"/rating/api/v1/wards/{ward}/counters/{counter}/screen-pairings",
                        headers=token("ward_admin", ward))
    assert asked.status_code == 201, asked.json
    link = asked.json["pairing_url"].split("localhost", 1)[1]
    opened = client.get(link)
    assert opened.status_code == 303 and opened.headers["Location"].endswith(f"/rating/rate/{ward}/{counter}")
    return client.get_cookie(screens.COOKIE_NAME, path="/rating/").value


@pytest.fixture
def paired(client, db, token):
    return pair(client, db, token)


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
def test_the_screen_offers_the_ticket_just_served_at_its_counter_only(client, db, paired):
    assert client.get(LATEST).status_code == 204
    served(db, counter="quay-2", number="B004")
    earlier = served(db, number="A001", served_at=datetime.now(timezone.utc) - timedelta(minutes=2))
    latest = served(db, number="A002")
    answer = client.get(LATEST)
    assert answer.status_code == 200
    assert answer.json["ticket_id"] == latest and answer.json["number"] == "A002"
    assert set(answer.json) == {"ticket_id", "number", "service_code", "counter_id", "served_at"}  # no officer
    assert earlier != latest


def test_a_rated_or_stale_ticket_is_not_offered(client, db, paired):
    stale = served(db, served_at=datetime.now(timezone.utc) - domain.RATING_SCREEN_FRESHNESS - timedelta(seconds=5))
    assert client.get(LATEST).status_code == 204
    fresh = served(db, number="A003")
    assert client.post("/rating/api/v1/ratings", json={"ticket_id": fresh, "score": "satisfied"}).status_code == 201
    assert client.get(LATEST).status_code == 204
    # Still ratable through the API (its QR code page) within 24 h, just not offered on the screen.
    assert client.post("/rating/api/v1/ratings", json={"ticket_id": stale, "score": "satisfied"}).status_code == 201


# ---------------------------------------------------------------- the page
def test_the_page_is_idle_then_asks_then_thanks(client, db, paired):
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


def test_the_page_rates_only_what_it_offers(client, db, paired):
    elsewhere = served(db, counter="quay-2")
    answer = client.post(SCREEN, data={"ticket_id": elsewhere, "score": "unsatisfied"})
    assert answer.status_code == 404 and "Chưa đánh giá được" in answer.get_data(as_text=True)
    assert db[store.RATINGS].count_documents({}) == 0
    bad_score = client.post(SCREEN, data={"ticket_id": served(db), "score": "great"})
    assert bad_score.status_code == 303


# ---------------------------------------------------------------- only the paired screen
def test_only_the_screen_paired_beside_the_counter_learns_the_ticket(client, db, token, settings, verifier):
    """Issue 21: whoever holds a ticket id may rate it, so the just-served ticket is told to
    the paired screen of that counter alone."""
    ticket_id = served(db, number="A009")
    stranger = client.get(LATEST)
    assert stranger.status_code == 401 and stranger.json["code"] == "device_credential_required"
    assert ticket_id not in client.get(SCREEN).get_data(as_text=True)  # the page says "not paired"
    assert client.post(SCREEN, data={"ticket_id": ticket_id, "score": "unsatisfied"}).status_code == 401
    forged = client.get(LATEST, headers={"Cookie": f"{screens.COOKIE_NAME}=x.y"})
    assert forged.status_code == 401

    pair(client, db, token, counter="quay-2")  # a screen beside another counter
    elsewhere = client.get(LATEST)
    assert elsewhere.status_code == 403 and elsewhere.json["code"] == "device_not_for_counter"

    credential = pair(client, db, token)
    assert client.get(LATEST).json["ticket_id"] == ticket_id
    [screen] = [s for s in client.get(f"/rating/api/v1/wards/{WARD}/screens", headers=token("ward_admin", WARD)).json
                if s["counter_id"] == "quay-1"]
    assert credential.startswith(screen["device_id"])
    revoked = client.delete(f"/rating/api/v1/wards/{WARD}/screens/{screen['device_id']}",
                            headers=token("ward_admin", WARD))
    assert revoked.status_code == 204
    assert client.get(LATEST).status_code == 401  # a lost screen is worth nothing at once


def test_only_the_wards_admin_pairs_and_a_link_works_once(client, db, token):
    store.record_ward(db, WARD, {"name": "Phường Sông Công"}, datetime.now(timezone.utc))
    pairings = f"/rating/api/v1/wards/{WARD}/counters/quay-1/screen-pairings"
    assert client.post(pairings).status_code == 401
    assert client.post(pairings, headers=token("officer", WARD)).status_code == 403
    assert client.post(pairings, headers=token("ward_admin", "dn-hai-chau")).status_code == 403
    link = client.post(pairings, headers=token("ward_admin", WARD)).json["pairing_url"].split("localhost", 1)[1]
    assert client.get(link.replace("quay-1", "quay-2")).status_code == 410  # not for this counter: used up
    assert client.get(link).status_code == 410


def test_a_served_ticket_is_rated_once_and_nothing_else_is(client, db):
    """The ticket id still rates through POST /ratings (the QR code on the slip): only a
    served ticket, and only once."""
    unknown = client.post("/rating/api/v1/ratings", json={"ticket_id": str(uuid.uuid4()), "score": "satisfied"})
    assert unknown.status_code == 404 and unknown.json["code"] == "not_ratable"
    ticket_id = served(db)
    assert client.post("/rating/api/v1/ratings", json={"ticket_id": ticket_id, "score": "satisfied"}).status_code == 201
    again = client.post("/rating/api/v1/ratings", json={"ticket_id": ticket_id, "score": "unsatisfied"})
    assert again.status_code == 409 and again.json["code"] == "already_rated"


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


def test_the_wards_admin_pairs_a_screen_on_the_admin_page(client, db, token):
    """The page the queue's admin page links to: sign-in, the pairing link for a counter,
    the screens paired, revoking one (Vietnamese, plain forms with the CSRF token)."""
    import re

    from motcua_common.web_session import SESSION_COOKIE

    store.record_ward(db, WARD, {"name": "Phường Sông Công"}, datetime.now(timezone.utc))
    page = f"/rating/admin/{WARD}"
    assert client.get(page).status_code == 303  # to the sign-in page
    client.set_cookie(SESSION_COOKIE, token("ward_admin", WARD)["Authorization"].split()[1], path="/")
    html = client.get(page).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    made = client.post(f"{page}/pairings", data={"counter_id": "quay-1", "csrf_token": csrf})
    assert made.status_code == 200 and "Liên kết ghép nối màn hình của quầy" in made.get_data(as_text=True)
    link = re.search(r"<code>http://localhost(/rating/rate/[^<]+)</code>", made.get_data(as_text=True)).group(1)
    assert client.get(link).status_code == 303
    assert client.get(LATEST).status_code == 204  # paired: nothing served yet
    [screen] = db[screens.SCREENS].find({"ward_id": WARD})
    revoked = client.post(f"{page}/screens/{screen['_id']}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303 and client.get(LATEST).status_code == 401
    assert client.post(f"{page}/pairings", data={"counter_id": "quay-1"}).status_code == 400  # no CSRF token
    client.set_cookie(SESSION_COOKIE, token("officer", WARD)["Authorization"].split()[1], path="/")
    assert client.post(f"{page}/pairings", data={"counter_id": "quay-1", "csrf_token": csrf}).status_code == 403
