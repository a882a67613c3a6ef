"""What dossier answers identity's SMS desk (CONTRACT "A phone is enough"), against the
real database: the dossier a citizen's "1", "2" or "3" rates (latest_ratable: their most
recent dossier whose result is ready or was returned within 30 days), the citizen a `TT`
answer belongs to (identity answers only that account's phone), and the public lookup
refusing digits that are not ASCII. The RPC itself, through the real dossier and rating
workers, is played in services/identity/tests/test_identity_sms_rating.py."""
from __future__ import annotations

from motcua_dossier import dossiers

URL = "/dossier/api/v1/dossiers"


def approve(client, dossier_id: str, officer: dict, leader: dict) -> None:
    """Take the counter fee (HT-XNHN is level 4), receive and process (the officer), approve (the leader)."""
    paid = client.post(f"{URL}/{dossier_id}/payments", json={"method": "counter"}, headers=officer)
    assert paid.status_code == 201, paid.json
    for action in ("receive", "start_processing", "approve"):
        response = client.post(f"{URL}/{dossier_id}/actions", json={"action": action},
                               headers=leader if action == "approve" else officer)
        assert response.status_code == 200, response.json


def test_the_latest_dossier_with_a_result_is_the_one_an_sms_rates(client, submit, deps, officer, leader, clock):
    first = submit().json
    assert dossiers.latest_ratable(deps, "cit-lan") is None          # submitted: nothing to rate yet
    approve(client, first["dossier_id"], officer, leader)
    found = dossiers.latest_ratable(deps, "cit-lan")
    assert found["dossier_id"] == first["dossier_id"] and found["receipt_code"] == first["receipt_code"]
    assert found["ward_id"] == "dn-hai-chau" and found["at"]

    clock.advance(days=1)
    second = submit().json
    approve(client, second["dossier_id"], officer, leader)
    assert dossiers.latest_ratable(deps, "cit-lan")["receipt_code"] == second["receipt_code"]  # the most recent
    clock.advance(days=1)
    returned = client.post(f"{URL}/{first['dossier_id']}/actions", json={"action": "return"}, headers=officer)
    assert returned.status_code == 200, returned.json
    assert dossiers.latest_ratable(deps, "cit-lan")["receipt_code"] == first["receipt_code"]    # returned later

    assert dossiers.latest_ratable(deps, "cit-binh") is None          # another citizen's dossiers are not theirs
    for malformed in ("", None, 42, {"$ne": None}, ["cit-lan"]):
        assert dossiers.latest_ratable(deps, malformed) is None
    clock.advance(days=31)
    assert dossiers.latest_ratable(deps, "cit-lan") is None           # too long ago


def test_the_sms_status_names_the_citizen_it_belongs_to(submit, deps):
    created = submit().json
    answer = dossiers.status_for_sms(deps, created["receipt_code"].lower(), "3456")   # cit-lan's 0905123456
    assert answer["citizen_id"] == "cit-lan" and answer["status"] == "submitted"
    assert dossiers.status_for_sms(deps, created["receipt_code"], "9999") is None


def test_the_lookup_refuses_digits_that_are_not_ascii(client, submit):
    code = submit().json["receipt_code"]
    assert client.get("/dossier/api/v1/lookup", query_string={"receipt_code": code, "phone_last4": "3456"}).status_code == 200
    for digits in ("３４５６", "٣٤٥٦"):   # fullwidth, Arabic-Indic: str.isdigit() and \d take them
        refused = client.get("/dossier/api/v1/lookup", query_string={"receipt_code": code, "phone_last4": digits})
        assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "phone_last4"
