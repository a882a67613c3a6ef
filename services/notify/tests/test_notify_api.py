"""notify's API against the SecantusDB server: who sees a ward's notifications (masked),
groups with phone normalisation, broadcasts that queue one SMS per member."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from motcua_notify import bootstrap, store
from motcua_notify.api import create_app

WARD, OTHER = "dn-hai-chau", "dn-lien-chieu"
API = "/notify/api/v1"


@pytest.fixture
def db(settings, service_db):
    bootstrap.prepare(settings)
    return service_db("notify")


@pytest.fixture
def client(settings, verifier, db):
    return create_app(settings, verifier=verifier).test_client()


def add_notification(db, ward_id, status="pending", phone="+84901234567", template="broadcast"):
    doc = store.new_notification(template=template, params={"text": "x"}, ward_id=ward_id,
                                 source_id=f"s-{ward_id}-{status}-{phone}", phone=phone,
                                 now=datetime.now(timezone.utc))
    doc["status"] = status
    db[store.NOTIFICATIONS].insert_one(doc)
    return doc["_id"]


def make_group(client, token, members=("0901234567", "0362 222 333"), ward_id=WARD, headers=None):
    return client.post(f"{API}/groups", json={"name": "Tổ trưởng tổ dân phố", "ward_id": ward_id,
                                              "members": list(members)},
                       headers=headers or token("ward_admin", ward_id))


# ---------------------------------------------------------------- GET /notifications
def test_staff_of_the_ward_monitor_and_admin_see_the_wards_notifications_masked(client, db, token):
    sent = add_notification(db, WARD, "sent")
    add_notification(db, WARD, "failed", phone="+84362222333")
    add_notification(db, OTHER, "sent")
    for role in ("officer", "ward_admin"):
        response = client.get(f"{API}/notifications?ward_id={WARD}", headers=token(role, WARD))
        assert response.status_code == 200
        assert len(response.get_json()) == 2
    for role in ("monitor", "admin"):
        assert client.get(f"{API}/notifications?ward_id={WARD}", headers=token(role)).status_code == 200
    rows = client.get(f"{API}/notifications?ward_id={WARD}&status=sent", headers=token("officer", WARD)).get_json()
    assert [r["id"] for r in rows] == [sent]
    row = rows[0]
    assert set(row) >= {"id", "channel", "to", "status", "attempts", "created_at", "sent_at"}
    assert row["to"] == "+84******567" and row["channel"] == "sms" and row["created_at"].endswith("Z")
    every = client.get(f"{API}/notifications", headers=token("monitor")).get_json()
    assert len(every) == 3


def test_a_citizens_sms_shows_no_number_until_sent(client, db, token):
    db[store.NOTIFICATIONS].insert_one(store.new_notification(
        template="dossier_submitted", params={}, ward_id=WARD, source_id="e1", citizen_id="citizen-777",
        now=datetime.now(timezone.utc)))
    [row] = client.get(f"{API}/notifications?ward_id={WARD}", headers=token("officer", WARD)).get_json()
    assert row["to"] is None and row["sent_at"] is None and "citizen-777" not in str(row)


@pytest.mark.parametrize("role,ward", [("officer", OTHER), ("ward_admin", OTHER), ("citizen", WARD), ("kiosk", WARD)])
def test_others_may_not_read_a_wards_notifications(client, token, role, ward):
    response = client.get(f"{API}/notifications?ward_id={WARD}", headers=token(role, ward))
    assert response.status_code == 403
    assert response.get_json()["code"] == "forbidden"


def test_notifications_need_a_token_and_valid_filters(client, token):
    assert client.get(f"{API}/notifications?ward_id={WARD}").status_code == 401
    response = client.get(f"{API}/notifications?ward_id={WARD}&status=lost&limit=0", headers=token("officer", WARD))
    assert response.status_code == 422
    assert {e["field"] for e in response.get_json()["errors"]} == {"status", "limit"}
    response = client.get(f"{API}/notifications", headers=token("officer", WARD))
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "ward_id"


# ---------------------------------------------------------------- groups
def test_the_ward_admin_makes_a_group_with_normalised_numbers(client, db, token):
    response = make_group(client, token, members=["0901234567", "+84 90 123 4567", "0362.222.333"])
    assert response.status_code == 201
    group_id = response.get_json()["group_id"]
    assert db[store.GROUPS].find_one({"_id": group_id})["members"] == ["+84901234567", "+84362222333"]
    listed = client.get(f"{API}/groups?ward_id={WARD}", headers=token("officer", WARD)).get_json()
    assert listed == [{"group_id": group_id, "name": "Tổ trưởng tổ dân phố", "ward_id": WARD, "members": 2,
                       "created_at": listed[0]["created_at"]}]


def test_bad_numbers_are_reported_each_in_vietnamese(client, token):
    response = make_group(client, token, members=["0901234567", "02363 123 456", "12"])
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "validation_failed"
    assert [e["field"] for e in problem["errors"]] == ["members[1]", "members[2]"]
    assert "Số di động không hợp lệ" in problem["errors"][0]["message"]


@pytest.mark.parametrize("role,ward", [("officer", WARD), ("ward_admin", OTHER), ("monitor", None)])
def test_only_the_wards_admin_makes_its_groups(client, token, role, ward):
    response = client.post(f"{API}/groups", json={"name": "n", "ward_id": WARD, "members": ["0901234567"]},
                           headers=token(role, ward))
    assert response.status_code == 403


def test_creating_a_group_is_safe_to_retry(client, db, token):
    headers = {**token("ward_admin", WARD), "Idempotency-Key": "g-1"}
    first = make_group(client, token, headers=headers)
    again = make_group(client, token, headers=headers)
    assert again.get_json() == first.get_json() and again.headers.get("Idempotent-Replayed") == "true"
    assert db[store.GROUPS].count_documents({}) == 1


@pytest.mark.parametrize("name", ["Tổ trưởng \u202eTDP 5", "Tổ trưởng\x00 TDP 5", "Tổ\u2066 trưởng",
                                  "\u200bTổ trưởng"])
def test_a_group_name_hiding_characters_is_refused_like_a_persons_name(client, db, token, name):
    response = client.post(f"{API}/groups", json={"name": name, "ward_id": WARD, "members": ["0901234567"]},
                           headers=token("ward_admin", WARD))
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["code"] == "validation_failed"
    assert [e["field"] for e in problem["errors"]] == ["name"]
    assert db[store.GROUPS].count_documents({}) == 0


# ---------------------------------------------------------------- broadcasts
def test_a_broadcast_queues_one_sms_per_member(client, db, token):
    group_id = make_group(client, token).get_json()["group_id"]
    response = client.post(f"{API}/broadcasts", json={"group_id": group_id, "text": "Mời các tổ trưởng họp lúc 8h."},
                           headers=token("ward_admin", WARD))
    assert response.status_code == 202
    answer = response.get_json()
    assert answer["recipients"] == 2 and answer["encoding"] == "ucs2" and answer["segments"] == 1
    docs = list(db[store.NOTIFICATIONS].find({"source_id": answer["broadcast_id"]}))
    assert sorted(d["phone"] for d in docs) == ["+84362222333", "+84901234567"]
    assert {d["status"] for d in docs} == {"pending"} and {d["template"] for d in docs} == {"broadcast"}
    assert {d["params"]["text"] for d in docs} == {"Mời các tổ trưởng họp lúc 8h."}
    rows = client.get(f"{API}/notifications?ward_id={WARD}", headers=token("ward_admin", WARD)).get_json()
    assert sorted(r["to"] for r in rows) == ["+84******333", "+84******567"]


def test_a_broadcast_is_safe_to_retry(client, db, token):
    group_id = make_group(client, token).get_json()["group_id"]
    headers = {**token("ward_admin", WARD), "Idempotency-Key": "b-1"}
    first = client.post(f"{API}/broadcasts", json={"group_id": group_id, "text": "Họp"}, headers=headers)
    again = client.post(f"{API}/broadcasts", json={"group_id": group_id, "text": "Họp"}, headers=headers)
    assert first.status_code == again.status_code == 202 and first.get_json() == again.get_json()
    assert db[store.NOTIFICATIONS].count_documents({}) == 2


def test_only_the_groups_ward_admin_broadcasts(client, token):
    group_id = make_group(client, token).get_json()["group_id"]
    for headers in (token("ward_admin", OTHER), token("officer", WARD)):
        response = client.post(f"{API}/broadcasts", json={"group_id": group_id, "text": "Họp"}, headers=headers)
        assert response.status_code == 403


def test_broadcast_errors(client, token):
    group_id = make_group(client, token).get_json()["group_id"]
    headers = token("ward_admin", WARD)
    missing = client.post(f"{API}/broadcasts", json={"group_id": "nope", "text": "Họp"}, headers=headers)
    assert missing.status_code == 404 and missing.get_json()["code"] == "group_not_found"
    too_long = client.post(f"{API}/broadcasts", json={"group_id": group_id, "text": "ư" * 400}, headers=headers)
    assert too_long.status_code == 422 and too_long.get_json()["errors"][0]["field"] == "text"
    empty = client.post(f"{API}/broadcasts", json={"group_id": group_id, "text": " "}, headers=headers)
    assert empty.status_code == 422


# ---------------------------------------------------------------- the service's own routes
def test_openapi_health_and_metrics(client):
    spec = client.get(f"{API}/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    assert spec["servers"] == [{"url": "/notify/api/v1", "description": spec["servers"][0]["description"]}]
    assert {"/notifications", "/groups", "/broadcasts"} <= set(spec["paths"])
    assert spec["paths"]["/healthz"]["servers"] == [{"url": "/notify"}]
    assert client.get("/notify/healthz").status_code == 200
    metrics = client.get("/notify/metrics").get_data(as_text=True)
    assert 'motcua_outbox_pending{service="notify"}' in metrics
