"""The catalog and the calendar over HTTP, the prepared database, and the OpenAPI document."""
from __future__ import annotations

import re
from dataclasses import replace

from motcua_dossier import bootstrap, store
from motcua_dossier.catalog import load_catalog_file

CONTRACT_FIELDS = {"code", "name", "field", "level", "authority", "statutory_days", "ward_days", "fee",
                   "required_documents", "next_procedures"}


def test_anyone_reads_the_catalog(client):
    response = client.get("/dossier/api/v1/procedures")
    assert response.status_code == 200
    procedures = response.json
    assert len(procedures) >= 12
    assert all(CONTRACT_FIELDS <= set(p) for p in procedures)
    birth = next(p for p in procedures if p["code"] == "HT-KS")
    assert birth["name"] == "Đăng ký khai sinh" and birth["next_procedures"] == ["CTR-TT", "BHYT-TE6"]
    assert birth["catalog_version"] == load_catalog_file().version
    assert client.get("/dossier/api/v1/procedures/HT-KS").json["form"][0]["name"] == "ho_ten"
    assert client.get("/dossier/api/v1/procedures/NOPE").status_code == 404


def test_prepare_is_idempotent_and_reloads_a_changed_catalog(settings, dossier_db, clock):
    bootstrap.prepare(settings)
    assert dossier_db.procedures.count_documents({}) == len(load_catalog_file().procedures)
    catalog = load_catalog_file()
    assert not store.install_catalog(dossier_db, catalog, clock.now())
    trimmed = replace(catalog, version="2026.2", digest="changed", procedures=catalog.procedures[1:])
    assert store.install_catalog(dossier_db, trimmed, clock.now())
    assert store.catalog_version(dossier_db) == "2026.2"
    dropped = catalog.procedures[0].code
    assert store.get_procedure(dossier_db, dropped) is None
    assert dossier_db.procedures.find_one({"_id": dropped})["active"] is False  # old dossiers still name it


def test_due_date_over_tet(client):
    response = client.get("/dossier/api/v1/calendar/due-date", query_string={"from": "2026-02-13", "working_days": 3})
    assert response.status_code == 200
    body = response.json
    assert body["due_date"] == "2026-02-25"
    assert body["skipped"][0] == {"date": "2026-02-14", "reason": "Thứ Bảy"}
    assert {"date": "2026-02-17", "reason": "Tết Nguyên Đán"} in body["skipped"]


def test_due_date_from_today_by_default(client):
    assert client.get("/dossier/api/v1/calendar/due-date?working_days=2").json["due_date"] == "2026-03-12"


def test_bad_calendar_input_is_422(client):
    for query in ({"from": "2026-02-13", "working_days": 366}, {"from": "2026-02-13", "working_days": -1},
                  {"from": "2026-02-13", "working_days": "ba"}, {"from": "2026-13-01", "working_days": 1},
                  {"from": "13/02/2026", "working_days": 1}, {"from": "2026-02-13"}):
        response = client.get("/dossier/api/v1/calendar/due-date", query_string=query)
        assert response.status_code == 422, query
        assert response.json["code"] == "validation_failed" and response.json["errors"]


def test_the_openapi_document_covers_every_route(app, client):
    spec = client.get("/dossier/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.1")
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/dossier/api/v1/") or rule.rule.endswith("openapi.json"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/dossier/api/v1"))
        assert path in spec["paths"], path
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in spec["paths"][path], (method, path)


def test_health_and_readiness(client):
    assert client.get("/dossier/healthz").json["status"] == "ok"
