"""Hostile bodies get a clear 4xx problem from every service, and nothing is half-written."""
from __future__ import annotations

import json

import pytest

WARD = "dn-hai-chau"
# One JSON-taking endpoint per service, with the caller allowed to use it.
JSON_ENDPOINTS = {
    "identity": ("/identity/api/v1/citizens", None),
    "dossier": ("/dossier/api/v1/dossiers", ("citizen", WARD)),
    "queue": (f"/queue/api/v1/wards/{WARD}/tickets", ("officer", WARD)),
    "notify": ("/notify/api/v1/groups", ("ward_admin", WARD)),
    "rating": ("/rating/api/v1/ratings", None),
}
DEEP = "[" * 10_000 + "]" * 10_000
HOSTILE_BODIES = {
    "oversized": ("application/json", json.dumps({"full_name": "A" * (13 * 1024 * 1024)}), {413}),
    "just over the JSON limit": ("application/json", json.dumps({"pad": "x" * (1024 * 1024 + 10)}), {413}),
    "plain text": ("text/plain", "national_id=1", {415}),
    "a form": ("application/x-www-form-urlencoded", "national_id=1", {415}),
    "xml": ("application/xml", "<a>1</a>", {415}),
    "deep arrays": ("application/json", DEEP, {400}),
    "deep objects": ("application/json", '{"a":' * 10_000 + "1" + "}" * 10_000, {400}),
    "not utf-8": ("application/json", b'{"a": "\xff\xfe"}', {400}),
    "truncated": ("application/json", '{"a": ', {400}),
    "an array": ("application/json", "[1, 2]", {400}),
    "NaN": ("application/json", '{"score": NaN}', {400, 404, 422}),
}


@pytest.mark.parametrize("service", sorted(JSON_ENDPOINTS))
@pytest.mark.parametrize("kind", sorted(HOSTILE_BODIES))
def test_hostile_bodies_get_a_clear_4xx(service, kind, clients, as_role, service_db):
    path, caller = JSON_ENDPOINTS[service]
    content_type, data, statuses = HOSTILE_BODIES[kind]
    headers = as_role(*caller) if caller else {}
    before = {name: service_db(service)[name].count_documents({}) for name in service_db(service).list_collection_names()
              if not name.startswith(("rate_limit", "idempotency"))}
    response = clients[service].post(path, data=data, headers={**headers, "Content-Type": content_type})
    assert response.status_code in statuses, (response.status_code, response.get_data()[:300])
    problem = response.get_json()
    assert response.mimetype == "application/problem+json" and problem["code"] and problem["title"]
    after = {name: service_db(service)[name].count_documents({}) for name in before}
    assert after == before, "a refused request wrote something"


TRICKS = {
    "right-to-left override": "Nguyễn \u202eVăn An",
    "zero-width space": "Nguyễn\u200b Văn An",
    "zero-width joiner": "Nguyễn Văn\u200d An",
    "NUL": "Nguyễn\x00 Văn An",
    "lone combining marks": "\u0301\u0301\u0301 \u0303\u0303",
    "control characters": "Nguyễn\x1b[31m Văn An",
    "byte order mark": "\ufeffNguyễn Văn An",
    "only spaces": " \u3000 \u00a0 ",
    "too long": "An " * 60,
}


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_unicode_tricks_in_names_are_refused_and_nothing_is_written(trick, clients, service_db):
    body = {"national_id": "048090001234", "full_name": TRICKS[trick], "date_of_birth": "1990-05-01",
            "phone": "0905123456", "ward_id": WARD, "password": "hoa-sen-2026"}
    db = service_db("identity")
    events_before = db.outbox.count_documents({})  # the demo wards' WardOpened
    response = clients["identity"].post("/identity/api/v1/citizens", json=body)
    assert response.status_code == 422, response.get_json()
    assert "full_name" in {e["field"] for e in response.get_json()["errors"]}
    assert db.citizens.count_documents({}) == 0 and db.outbox.count_documents({}) == events_before


def test_a_name_with_vietnamese_combining_marks_is_normalised_not_refused(clients, service_db):
    """Decomposed input (a phone keyboard's NFD) is the same name, stored composed."""
    body = {"national_id": "048090001234", "full_name": "Nguye\u0302\u0303n Va\u0306n An",
            "date_of_birth": "1990-05-01", "phone": "0905123456", "ward_id": WARD, "password": "hoa-sen-2026"}
    response = clients["identity"].post("/identity/api/v1/citizens", json=body)
    assert response.status_code == 201, response.get_json()
    assert service_db("identity").citizens.find_one()["full_name"] == "Nguyễn Văn An"

