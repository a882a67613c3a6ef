"""The catalog edited by the platform administrator: validation, versions, chains, and an
administrator's change surviving a newer catalog file."""
from __future__ import annotations

from dataclasses import replace

from motcua_dossier import store
from motcua_dossier.catalog import load_catalog_file, procedure_errors

WARD = "dn-hai-chau"
URL = "/dossier/api/v1/procedures"


def new_procedure(**changes) -> dict:
    return {
        "code": "HT-XNCS", "name": "Xác nhận cư trú để làm hồ sơ học bổng", "field": "Hộ tịch", "level": 3,
        "authority": "ward", "statutory_days": 3, "ward_days": 2, "fee": 0,
        "required_documents": ["Tờ khai (theo mẫu)"],
        "form": [{"name": "ho_ten", "label": "Họ và tên", "required": True, "type": "text"}],
        "next_procedures": [], **changes,
    }


def test_the_shipped_catalog_has_at_least_30_ward_procedures():
    catalog = load_catalog_file()
    assert len(catalog.procedures) >= 30
    assert all(p.authority == "ward" for p in catalog.procedures)
    assert {p.level for p in catalog.procedures} == {2, 3, 4}
    codes = {p.code for p in catalog.procedures}
    # Formerly district-level, the ward's since 1 July 2025.
    assert {"HT-KHNN", "HT-KSNN", "KD-HKD", "XD-GPXD"} <= codes
    death = catalog.get("HT-KT")
    assert death.next_procedures == ("CTR-XTT", "XH-MT")


def test_an_admin_adds_a_procedure_under_a_new_catalog_version(client, token, submit, forms):
    before = client.get("/dossier/api/v1/catalog").json["version"]
    response = client.post(URL, json=new_procedure(), headers=token("admin", subject="admin-1"))
    assert response.status_code == 201, response.json
    assert response.json["catalog_version"] == f"{before}+1"
    assert client.get("/dossier/api/v1/catalog").json["version"] == f"{before}+1"
    assert client.get(f"{URL}/HT-XNCS").json["name"] == "Xác nhận cư trú để làm hồ sơ học bổng"
    # A new procedure is online nowhere until a ward has reviewed it and switched it on.
    assert submit("HT-XNCS", form={"ho_ten": "Nguyễn Thị Lan"}).json["code"] == "not_offered_online"
    switched = client.put(f"/dossier/api/v1/wards/{WARD}/procedures/HT-XNCS", json={"online": True},
                          headers=token("ward_admin", WARD))
    assert switched.status_code == 200, switched.json
    created = submit("HT-XNCS", form={"ho_ten": "Nguyễn Thị Lan"})
    assert created.status_code == 201
    again = client.post(URL, json=new_procedure(), headers=token("admin"))
    assert again.status_code == 409 and again.json["code"] == "procedure_exists"


def test_a_change_bumps_the_version_and_old_dossiers_keep_theirs(client, token, submit, dossier_db):
    old = submit().json["dossier_id"]
    old_version = dossier_db.dossiers.find_one({"_id": old})["catalog_version"]
    current = client.get(f"{URL}/HT-XNHN").json
    changed = {k: v for k, v in current.items() if k not in ("online", "catalog_version")}
    changed["ward_days"] = 1
    response = client.put(f"{URL}/HT-XNHN", json=changed, headers=token("admin", subject="admin-1"))
    assert response.status_code == 200 and response.json["ward_days"] == 1
    assert response.json["catalog_version"] == f"{old_version}+1"
    new = submit().json["dossier_id"]
    assert dossier_db.dossiers.find_one({"_id": new})["catalog_version"] == f"{old_version}+1"
    assert dossier_db.dossiers.find_one({"_id": old})["catalog_version"] == old_version
    revisions = client.get(f"{URL}/HT-XNHN/revisions", headers=token("admin")).json
    assert [(r["change"], r["actor_id"]) for r in revisions] == [("update", "admin-1")]


def test_only_the_platform_admin_edits_the_catalog(client, token, citizen):
    for headers, status in ((token("ward_admin", WARD), 403), (token("officer", WARD), 403),
                            (token("monitor"), 403), (citizen, 403), ({}, 401)):
        assert client.post(URL, json=new_procedure(), headers=headers).status_code == status
        assert client.put(f"{URL}/HT-KS", json=new_procedure(code="HT-KS"), headers=headers).status_code == status
        assert client.delete(f"{URL}/HT-KS", headers=headers).status_code == status


def test_invalid_procedures_are_refused_with_each_field_named(client, token):
    bad = new_procedure(code="ht ks", level=5, authority="district", statutory_days=2, ward_days=5,
                        next_procedures=["NOPE"], chain_days=3,
                        form=[{"name": "Họ tên", "label": "", "type": "choice"}])
    response = client.post(URL, json=bad, headers=token("admin"))
    assert response.status_code == 422
    fields = {e["field"] for e in response.json["errors"]}
    assert {"code", "level", "authority", "ward_days", "next_procedures", "form[0].name", "form[0].label",
            "form[0].options"} <= fields
    mismatch = client.put(f"{URL}/HT-KS", json=new_procedure(code="HT-KT"), headers=token("admin"))
    assert mismatch.status_code == 422 and mismatch.json["errors"][0]["field"] == "code"
    assert client.put(f"{URL}/NOPE", json=new_procedure(code="NOPE"), headers=token("admin")).status_code == 404


def test_validation_is_the_same_for_the_file_and_the_api():
    catalog = load_catalog_file()
    codes = {p.code for p in catalog.procedures}
    assert all(procedure_errors(p.to_dict(), codes) == [] for p in catalog.procedures)
    assert ("next_procedures", "Thủ tục không thể liên thông với chính nó.") in procedure_errors(
        new_procedure(next_procedures=["HT-XNCS"]), codes)


def test_chains_are_editable_and_a_withdrawn_procedure_leaves_its_chains(client, token, submit, forms, officer):
    admin = token("admin")
    head = client.get(f"{URL}/HT-KS").json
    assert client.delete(f"{URL}/BHYT-TE6", headers=admin).status_code == 204
    assert client.get(f"{URL}/BHYT-TE6").status_code == 404
    assert client.get(f"{URL}/HT-KS").json["next_procedures"] == ["CTR-TT"]
    chained = submit("HT-KS", form={k: v for k, v in forms["chain"].items() if k != "noi_dang_ky_kcb"},
                     with_chain=True)
    assert chained.status_code == 201 and [d["procedure_code"] for d in chained.json["linked"]] == ["CTR-TT"]
    head = {k: v for k, v in head.items() if k not in ("online", "catalog_version")}
    refused = client.put(f"{URL}/HT-KS", json=head, headers=admin)  # still names the withdrawn one
    assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "next_procedures"


def test_an_admins_change_survives_a_newer_catalog_file(client, token, dossier_db, clock):
    current = client.get(f"{URL}/CTH-BS").json
    changed = {k: v for k, v in current.items() if k not in ("online", "catalog_version")}
    changed["fee"] = 3000
    assert client.put(f"{URL}/CTH-BS", json=changed, headers=token("admin")).status_code == 200
    catalog = load_catalog_file()
    newer = replace(catalog, version="2099.1", digest="newer")
    assert store.install_catalog(dossier_db, newer, clock.now())
    assert client.get(f"{URL}/CTH-BS").json["fee"] == 3000
    assert client.get("/dossier/api/v1/catalog").json["version"] == "2099.1"
    assert client.get(f"{URL}/CTH-CK").json["catalog_version"] == "2099.1"
