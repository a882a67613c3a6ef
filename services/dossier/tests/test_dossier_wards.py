"""Which wards take dossiers: identity owns the wards, dossier asks it (WardDirectory over
nameko RPC) and remembers the answer for a while.

Checked: a dossier for a ward that does not exist is refused (422 on ward_id) and leaves
no dossier and no event behind; a real ward takes it; while identity cannot be asked
the dossier is still taken (and a warning without personal data is logged); the results
and the portal name the ward as identity does. Against the REAL identity worker on the
real broker: the RPC end to end, and a ward the administrator creates after a citizen
was refused takes dossiers once the short memory of "unknown" has passed (a clock the
test moves stands in for waiting)."""
from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from dataclasses import replace

import pytest

from motcua_common import rpc
from motcua_common.config import Settings
from motcua_common.outbox import OUTBOX
from motcua_testing.fixtures import create_vhost, delete_vhost, settings_env, wait_for
from motcua_dossier.api import create_app
from motcua_dossier.ward_directory import WardDirectory
from motcua_identity import bootstrap as identity_bootstrap
from motcua_identity.api import create_app as identity_app

URL = "/dossier/api/v1/dossiers"
WARD = "dn-hai-chau"
NO_SUCH_WARD = "dn-khong-co-phuong-nay"
NATIONAL_ID = "048185000777"  # cit-binh of the conftest's citizens
UNKNOWN = {"field": "ward_id", "message": "Phường không tồn tại."}


class Ticker:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self):
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


def written(dossier_db) -> tuple[int, int]:
    """(dossiers, outbox events) stored so far."""
    return dossier_db.dossiers.count_documents({}), dossier_db[OUTBOX].count_documents({})


def approve(client, dossier_id: str, officer: dict, leader: dict) -> None:
    """Take the counter fee (HT-XNHN is level 4), receive and process (the officer), approve (the leader)."""
    paid = client.post(f"{URL}/{dossier_id}/payments", json={"method": "counter"}, headers=officer)
    assert paid.status_code == 201, paid.json
    for action in ("receive", "start_processing", "approve"):
        response = client.post(f"{URL}/{dossier_id}/actions", json={"action": action},
                               headers=leader if action == "approve" else officer)
        assert response.status_code == 200, response.json


def signer_of_result(client, dossier_id: str, officer: dict) -> str:
    pdf = client.get(f"{URL}/{dossier_id}/result", headers=officer)
    assert pdf.status_code == 200
    verified = client.post("/dossier/api/v1/results/verify", data=pdf.data, content_type="application/pdf")
    assert verified.json["valid"] is True
    return verified.json["signed_by"]


# ---------------------------------------------------------------- with identity's stand-in
def test_a_ward_that_does_not_exist_is_refused_and_nothing_is_written(submit, wards, dossier_db):
    refused = submit(ward_id=NO_SUCH_WARD)
    assert refused.status_code == 422
    assert refused.json["code"] == "validation_failed" and UNKNOWN in refused.json["errors"]
    assert NO_SUCH_WARD in wards.calls
    assert written(dossier_db) == (0, 0)

    taken = submit(ward_id=WARD)
    assert taken.status_code == 201, taken.json
    assert dossier_db.dossiers.find_one({"_id": taken.json["dossier_id"]})["ward_id"] == WARD
    dossiers, events = written(dossier_db)
    assert dossiers == 1 and events >= 1


def test_a_malformed_ward_is_refused_without_asking_identity(submit, wards, dossier_db):
    refused = submit(ward_id="Không phải mã")
    assert refused.status_code == 422
    assert {"field": "ward_id", "message": "Mã phường không hợp lệ."} in refused.json["errors"]
    assert wards.calls == [] and written(dossier_db) == (0, 0)


def test_while_identity_cannot_be_asked_the_dossier_is_still_taken(client, wards, citizens, token, forms,
                                                                   dossier_db, caplog):
    wards.unavailable = True
    officer = token("officer", WARD, subject="off-hc-1")
    with caplog.at_level(logging.WARNING, logger="motcua_dossier.submission"):
        response = client.post(URL, headers=officer, json={
            "procedure_code": "HT-XNHN", "ward_id": WARD, "form": forms["marriage_status"],
            "citizen_national_id": NATIONAL_ID})
    assert response.status_code == 201, response.json
    assert written(dossier_db)[0] == 1
    [warning] = [r for r in caplog.records if r.name == "motcua_dossier.submission" and r.levelno == logging.WARNING]
    assert "identity did not answer" in warning.getMessage() and warning.ward_id == WARD
    # Only the ward and the failure: no national id, phone or name of the citizen.
    logged = warning.getMessage() + " " + " ".join(str(v) for v in vars(warning).values())
    for personal in (NATIONAL_ID, "0912000999", "0999", forms["marriage_status"]["ho_ten"]):
        assert personal not in logged


def test_the_result_names_the_ward_as_identity_does(client, submit, wards, officer, leader):
    wards.known[WARD] = {"ward_id": WARD, "name": "Phường Hải Châu Mới", "province": "Thành phố Đà Nẵng"}
    dossier_id = submit().json["dossier_id"]
    approve(client, dossier_id, officer, leader)
    assert signer_of_result(client, dossier_id, officer) == "Ủy ban nhân dân Phường Hải Châu Mới"


def test_without_identity_the_result_is_still_signed_naming_the_ward_by_its_id(client, submit, wards, officer,
                                                                               leader):
    dossier_id = submit().json["dossier_id"]
    wards.unavailable = True
    approve(client, dossier_id, officer, leader)
    assert signer_of_result(client, dossier_id, officer) == f"Ủy ban nhân dân Phường {WARD}"


# ---------------------------------------------------------------- the directory's memory
def test_the_directory_remembers_a_ward_ten_minutes_and_an_unknown_one_thirty_seconds(settings, monkeypatch):
    identity = {WARD: {"ward_id": WARD, "name": "Phường Hải Châu", "province": "Thành phố Đà Nẵng"}}
    asked = []

    def call(settings, service, method, ward_id, timeout):
        asked.append((service, method, ward_id))
        return identity.get(ward_id)

    monkeypatch.setattr(rpc, "call", call)
    clock = Ticker()
    directory = WardDirectory(settings, clock=clock)
    assert directory.ward(WARD)["name"] == "Phường Hải Châu"
    assert directory.ward(NO_SUCH_WARD) is None
    identity[NO_SUCH_WARD] = {"ward_id": NO_SUCH_WARD, "name": "Phường Mới", "province": "Thành phố Đà Nẵng"}
    identity[WARD] = {**identity[WARD], "name": "Phường Hải Châu (đổi tên)"}

    clock.advance(29)
    assert directory.ward(NO_SUCH_WARD) is None and directory.ward(WARD)["name"] == "Phường Hải Châu"
    clock.advance(2)  # 31 s
    assert directory.ward(NO_SUCH_WARD)["name"] == "Phường Mới"
    clock.advance(568)  # 599 s
    assert directory.ward(WARD)["name"] == "Phường Hải Châu"
    clock.advance(2)  # 601 s
    assert directory.ward(WARD)["name"] == "Phường Hải Châu (đổi tên)"
    assert asked == [("identity", "ward", WARD), ("identity", "ward", NO_SUCH_WARD),
                     ("identity", "ward", NO_SUCH_WARD), ("identity", "ward", WARD)]


def test_the_directory_remembers_nothing_when_identity_does_not_answer(settings, monkeypatch):
    answers = [rpc.RpcUnavailable("identity is not running"), None]

    def call(settings, service, method, ward_id, timeout):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(rpc, "call", call)
    directory = WardDirectory(settings, clock=Ticker())
    with pytest.raises(rpc.RpcUnavailable):
        directory.ward(WARD)
    assert directory.ward(WARD) is None and answers == []  # asked again, not "unknown" from memory


# ---------------------------------------------------------------- the portal
def test_the_portal_offers_the_citizens_own_ward_as_identity_names_it(client, wards, signing_key, token):
    from motcua_common.web_session import SESSION_COOKIE

    wards.known["dn-son-tra"] = {"ward_id": "dn-son-tra", "name": "Phường Sơn Trà", "province": "Thành phố Đà Nẵng"}
    client.set_cookie(SESSION_COOKIE, signing_key.issue("cit-lan", "citizen", "dn-son-tra", 600, phone_last4="3456"))
    page = client.get("/dossier/portal/thu-tuc/HT-XNHN").get_data(as_text=True)
    # Not yet switched on there: the counter, not a form.
    assert "data-not-offered" in page and "Phường Sơn Trà chưa nhận hồ sơ trực tuyến" in page
    assert client.put("/dossier/api/v1/wards/dn-son-tra/procedures/HT-XNHN", json={"online": True},
                      headers=token("admin")).status_code == 200
    page = client.get("/dossier/portal/thu-tuc/HT-XNHN").get_data(as_text=True)
    assert 'value="dn-son-tra"' in page and "Phường Sơn Trà" in page
    del wards.known["dn-son-tra"]  # a ward identity no longer knows is not offered
    client.set_cookie(SESSION_COOKIE, signing_key.issue("cit-lan", "citizen", "dn-xoa-roi", 600, phone_last4="3456"))
    assert 'value="dn-xoa-roi"' not in client.get("/dossier/portal/thu-tuc/HT-XNHN").get_data(as_text=True)


# ---------------------------------------------------------------- the real identity worker
@pytest.fixture(scope="module")
def identity(mongo_url, tmp_path_factory):
    """identity's real nameko worker on its own vhost of the real broker, with its database."""
    vhost = f"motcua-test-{uuid.uuid4().hex[:10]}"
    settings = replace(Settings.from_env({}), mongo_url=mongo_url, amqp_url=create_vhost(vhost),
                       db_prefix=f"t{uuid.uuid4().hex[:8]}_", data_dir=tmp_path_factory.mktemp("identity"))
    identity_bootstrap.prepare(settings)
    process = subprocess.Popen([sys.executable, "-m", "motcua_platform.cli", "worker", "--service", "identity"],
                               env=settings_env(settings))
    try:
        wait_for(lambda: _answers(settings), timeout=60, message="the identity worker to answer RPC")
        yield settings
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        delete_vhost(vhost)


def _answers(settings: Settings) -> bool:
    try:
        return rpc.call(settings, "identity", "ward", "dn-tham-do", timeout=5) is None
    except rpc.RpcUnavailable:
        return False


@pytest.fixture
def identity_admin(identity, verifier, signing_key, token):
    """create_ward(ward_id, name): through identity's admin API, into the worker's database."""
    api = identity_app(identity, verifier=verifier, signing_key=signing_key).test_client()
    admin = token("admin", None)

    def create_ward(ward_id: str, name: str) -> None:
        created = api.post("/identity/api/v1/wards", headers=admin,
                           json={"ward_id": ward_id, "name": name, "province": "Thành phố Đà Nẵng"})
        assert created.status_code == 201, created.json

    return create_ward


def test_identity_worker_answers_ward_questions_over_rpc(identity, identity_admin):
    identity_admin("dn-ngu-hanh-son", "Phường Ngũ Hành Sơn")
    assert rpc.call(identity, "identity", "ward", "dn-ngu-hanh-son", timeout=10) == {
        "ward_id": "dn-ngu-hanh-son", "name": "Phường Ngũ Hành Sơn", "province": "Thành phố Đà Nẵng"}
    assert rpc.call(identity, "identity", "ward", NO_SUCH_WARD, timeout=10) is None
    for malformed in ("", "x", "a/b", "$where", 42, None, ["dn-ngu-hanh-son"], {"$ne": None}):
        assert rpc.call(identity, "identity", "ward", malformed, timeout=10) is None


def test_a_ward_created_after_a_refusal_takes_dossiers_once_the_unknown_is_forgotten(
        identity, identity_admin, settings, verifier, citizens, clock, dossier_db, payment_setup, token, forms):
    ward_id = f"dn-moi-{uuid.uuid4().hex[:6]}"  # a ward no demo data knows
    ticker = Ticker()
    app = create_app(settings, verifier=verifier, citizens=citizens, clock=clock, payment_setup=payment_setup,
                     wards=WardDirectory(replace(settings, amqp_url=identity.amqp_url), clock=ticker))
    client = app.test_client()
    citizen = token("citizen", None, subject="cit-lan")

    def send():
        return client.post(URL, headers=citizen,
                           json={"procedure_code": "HT-XNHN", "ward_id": ward_id, "form": forms["marriage_status"]})

    refused = send()
    assert refused.status_code == 422 and UNKNOWN in refused.json["errors"]
    identity_admin(ward_id, "Phường Hòa Xuân")
    ticker.advance(29)
    assert send().status_code == 422  # still remembered as unknown
    assert written(dossier_db) == (0, 0)

    ticker.advance(2)  # half a minute after the refusal
    # A ward opened without the demo takes nothing online until its administrator says so.
    assert send().json["code"] == "not_offered_online"
    switched = client.put(f"/dossier/api/v1/wards/{ward_id}/procedures/HT-XNHN", json={"online": True},
                          headers=token("ward_admin", ward_id, subject="adm-hx-1"))
    assert switched.status_code == 200, switched.json
    taken = send()
    assert taken.status_code == 201, taken.json
    assert written(dossier_db)[0] == 1

    # Its results carry the name identity gave it, not one from any demo list.
    officer = token("officer", ward_id, subject="off-hx-1")
    approve(client, taken.json["dossier_id"], officer, token("leader", ward_id, subject="lead-hx-1"))
    assert signer_of_result(client, taken.json["dossier_id"], officer) == "Ủy ban nhân dân Phường Hòa Xuân"


def test_identity_worker_answers_whether_an_officer_works_for_a_ward(identity, identity_admin, verifier, signing_key,
                                                                     token):
    """dossier's assignments ask this (officer_directory.py) of the real identity worker."""
    identity_admin("dn-hoa-cuong", "Phường Hòa Cường")
    api = identity_app(identity, verifier=verifier, signing_key=signing_key).test_client()
    admin = token("admin", None)
    created = api.post("/identity/api/v1/officers", headers=admin, json={
        "username": f"canbo.hoacuong{uuid.uuid4().hex[:4]}", "full_name": "Phan Thị Hồng", "ward_id": "dn-hoa-cuong",
        "role": "officer", "password": "mat-khau-hoa-cuong-1"})
    assert created.status_code == 201, created.json
    officer_id = created.json["officer_id"]
    assert rpc.call(identity, "identity", "officer_in_ward", officer_id, "dn-hoa-cuong", timeout=10) is True
    assert rpc.call(identity, "identity", "officer_in_ward", officer_id, "dn-ngu-hanh-son", timeout=10) is False
    for stranger in (NO_SUCH_WARD, "", None, 42, {"$ne": None}):
        assert rpc.call(identity, "identity", "officer_in_ward", stranger, "dn-hoa-cuong", timeout=10) is False
    deactivated = api.patch(f"/identity/api/v1/officers/{officer_id}", headers=admin, json={"active": False})
    assert deactivated.status_code == 200, deactivated.json
    assert rpc.call(identity, "identity", "officer_in_ward", officer_id, "dn-hoa-cuong", timeout=10) is False
