"""Transparency: every open ward's public scorecard (CONTRACT.md "Transparency"), its page
for citizens on a phone, and the ratings it counts from RatingGiven (once per event)."""
from __future__ import annotations

import uuid
from datetime import date

import pytest

from motcua_common.events import new_event, parse_envelope
from motcua_dossier import scorecards

WARD, OTHER_WARD = "dn-hai-chau", "dn-lien-chieu"


@pytest.fixture(autouse=True)
def _fresh():
    scorecards.forget_cache()
    yield
    scorecards.forget_cache()


def rating_event(score: str, ward_id: str = WARD):
    return parse_envelope(new_event("RatingGiven", ward_id, {
        "rating_id": str(uuid.uuid4()), "ward_id": ward_id, "subject_type": "dossier", "subject_id": "d-1",
        "officer_id": "off-hc-1", "counter_id": "quay-1", "score": score}))


def card(cards, ward_id):
    return next(c for c in cards if c["ward_id"] == ward_id)


def test_the_scorecards_count_returned_on_time_online_and_satisfaction(client, deps, submit, officer, leader,
                                                                      pay_at_counter):
    # Three dossiers online at Hải Châu; one taken through to returned, on time.
    submitted = [submit("HT-XNHN").json for _ in range(3)]
    dossier = submitted[0]["dossier_id"]
    pay_at_counter(dossier)  # HT-XNHN has a fee
    for action, who in (("receive", officer), ("start_processing", officer), ("approve", leader), ("return", officer)):
        answer = client.post(f"/dossier/api/v1/dossiers/{dossier}/actions", json={"action": action}, headers=who)
        assert answer.status_code == 200, answer.json
    # A dossier filed at the counter for a citizen.
    counter = client.post("/dossier/api/v1/dossiers", headers=officer, json={
        "procedure_code": "HT-XNHN", "ward_id": WARD, "citizen_national_id": "048185000777",
        "form": {"ho_ten": "Trần Văn Bình", "ngay_sinh": "1985-01-02", "tinh_trang_hon_nhan": "Chưa kết hôn",
                 "muc_dich_su_dung": "Đăng ký kết hôn"}})
    assert counter.status_code == 201, counter.json
    event = rating_event("very_satisfied")
    assert scorecards.on_rating_given(deps, None, event) == "processed"
    assert scorecards.on_rating_given(deps, None, event) == "duplicate", "a redelivered rating is counted once"
    scorecards.on_rating_given(deps, None, rating_event("unsatisfied"))
    scorecards.on_rating_given(deps, None, rating_event("satisfied", OTHER_WARD))

    answer = client.get("/dossier/api/v1/public/scorecards")
    assert answer.status_code == 200
    cards = answer.json
    assert {c["ward_id"] for c in cards} >= {WARD, OTHER_WARD, "hn-ba-dinh", "tn-song-cong"}, "every open ward"
    mine = card(cards, WARD)
    assert (mine["returned"], mine["on_time_rate"], mine["online_share"], mine["satisfaction_index"]) == (1, 1.0, 0.75, 0.5)
    assert mine["name"] == "Phường Hải Châu" and mine["province"]
    assert card(cards, OTHER_WARD)["satisfaction_index"] == 1.0
    assert card(cards, "hn-ba-dinh")["returned"] == 0 and card(cards, "hn-ba-dinh")["on_time_rate"] is None
    # No personal data anywhere in the answer.
    text = answer.get_data(as_text=True)
    assert "048185000777" not in text and "off-hc-1" not in text and "cit-lan" not in text


def test_a_citizen_finds_their_ward_without_accents_and_by_province(client):
    found = client.get("/dossier/api/v1/public/scorecards", query_string={"q": "song cong"}).json
    assert [c["ward_id"] for c in found] == ["tn-song-cong"]
    province = client.get("/dossier/api/v1/public/scorecards", query_string={"province": "48"}).json
    assert {c["ward_id"] for c in province} == {"dn-hai-chau", "dn-lien-chieu"}
    bad = client.get("/dossier/api/v1/public/scorecards", query_string={"q": "x" * 200})
    assert bad.status_code == 422 and bad.json["code"] == "validation_failed"


def test_the_transparency_page_is_public_and_readable(client):
    page = client.get("/dossier/minh-bach", query_string={"q": "hai chau"})
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "Phường Hải Châu" in html and "Trả đúng hẹn" in html and 'name="viewport"' in html
    assert "Phường Sông Công" not in html
    nothing = client.get("/dossier/minh-bach", query_string={"q": "khong co phuong nay"}).get_data(as_text=True)
    assert "Không tìm thấy" in nothing
    every = client.get("/dossier/minh-bach").get_data(as_text=True)
    assert every.count('class="scorecard"') >= 4


def test_the_period_is_twelve_months_back():
    assert scorecards.period_start(date(2026, 12, 6)) == date(2025, 12, 6)
    assert scorecards.period_start(date(2028, 2, 29)) == date(2027, 2, 28)
