"""Counter intake at a ward office while its link to the centre is down (office_intake.py,
office_desk.py): the office's real gate and pages on its real database, a stand-in for the
centre that can be cut off. The journey to the centre is the fault test's
(tests/chaos/test_chaos_office_day.py) and dossier's (test_dossier_office_filings.py)."""
from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from argon2 import PasswordHasher, profiles
from flask import Flask, request
from werkzeug.serving import make_server

import motcua_dossier
from motcua_common.auth import Principal, SigningKey
from motcua_common.http import Problem
from motcua_common.clock import FixedClock
from motcua_dossier import domain
from motcua_dossier.catalog import parse_catalog
from motcua_platform import office_desk, office_intake
from motcua_platform.office_gate import CentreLookups, OfficeGate, OfficeRouter, gate_app

WARD = "dn-hai-chau"
OFFICER = ("canbo.haichau", "mat-khau-quay-1", "o-hc-1")
CATALOG = [p.to_dict() for p in parse_catalog(
    (Path(motcua_dossier.__file__).parent / "data" / "procedures.yaml").read_text(encoding="utf-8")).procedures]
# Friday 6 March 2026, 10:00 in Đà Nẵng.
FRIDAY_MORNING = datetime(2026, 3, 6, 3, 0, tzinfo=timezone.utc)
CITIZEN = {"national_id": "048190000123", "record.full_name": "Trần Văn Bình", "record.date_of_birth": "04/05/1990",
           "record.phone": "0905 111 222"}
MARRIAGE_STATUS = {"form.ho_ten": "Trần Văn Bình", "form.ngay_sinh": "04/05/1990",
                   "form.tinh_trang_hon_nhan": "Chưa kết hôn", "form.muc_dich_su_dung": "Đăng ký kết hôn"}


class Centre:
    """The centre as the office sees it: identity's sign-in and keys, dossier's catalog and
    health. `up = False` cuts the link."""

    def __init__(self, key: SigningKey):
        self.key, self.up = key, True
        app = Flask("centre")

        @app.before_request
        def cut():
            if not self.up:
                return {"code": "unavailable"}, 503

        @app.post("/identity/api/v1/sessions")
        def sessions():
            body = request.get_json()
            if (body["username"], body["password"]) != OFFICER[:2]:
                return {"code": "invalid_credentials"}, 401
            return {"access_token": key.issue(OFFICER[2], "officer", WARD, 3600, username=OFFICER[0]),
                    "token_type": "Bearer", "expires_in": 3600, "must_change_password": False, "role": "officer",
                    "ward_id": WARD}

        app.add_url_rule("/identity/.well-known/jwks.json", "jwks", lambda: key.jwks())
        app.add_url_rule("/dossier/api/v1/procedures", "procedures", lambda: CATALOG)
        app.add_url_rule("/dossier/healthz", "healthz", lambda: {"status": "ok"})
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def office(settings, tmp_path, service_db):
    centre = Centre(SigningKey.load_or_create(tmp_path / "centre.pem"))
    gate = OfficeGate(settings, WARD, centre.url, tmp_path / "jwks-cache.json",
                      hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    lookups = CentreLookups(centre.url, tmp_path / "catalog-cache.json")
    app = gate_app(gate, lookups)
    office_intake.ensure_indexes(gate.db)
    desk = office_intake.OfficeDesk(gate.db, WARD, office_intake.kept_catalog(tmp_path / "catalog-cache.json"),
                                    appointments=service_db("queue")["appointments"],
                                    clock=FixedClock(FRIDAY_MORNING))
    office_desk.register(app, gate, desk, centre.url)
    client = app.test_client()
    # While the link works: the officer signs in once (the office keeps the credential), the
    # office keeps the centre's keys and its catalog.
    assert client.post("/identity/api/v1/sessions", json=dict(zip(("username", "password"), OFFICER))).status_code == 200
    gate.jwks()
    assert lookups.catalog()[1] == 200
    yield centre, gate, desk, client
    centre.server.shutdown()


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def form_token_of(page: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', page).group(1)


def test_cut_off_the_officer_signs_in_and_files_at_the_office_and_prints_the_receipt(office):
    centre, gate, desk, client = office
    centre.up = False
    page = client.get(f"/dossier/desk/{WARD}/tiep-nhan")
    assert page.status_code == 200 and "Đăng nhập" in page.text and "mất kết nối" in page.text
    signed = client.post(f"/dossier/desk/{WARD}/dang-nhap", data={
        "username": OFFICER[0], "password": OFFICER[1], "next": f"/dossier/desk/{WARD}/tiep-nhan",
        "csrf_token": csrf_of(page.text)})
    assert signed.status_code == 303, signed.text

    form_page = client.get(f"/dossier/desk/{WARD}/tiep-nhan?thu_tuc=HT-XNHN")
    assert form_page.status_code == 200 and "tiếp nhận ngoại tuyến" in form_page.text
    assert "Cấp Giấy xác nhận tình trạng hôn nhân" in form_page.text, "the kept catalog's procedure and its form"
    csrf, token = csrf_of(form_page.text), form_token_of(form_page.text)
    wrong = client.post(f"/dossier/desk/{WARD}/tiep-nhan", data={
        "csrf_token": csrf, "form_token": token, "procedure_code": "HT-XNHN", "national_id": "12345",
        **{k: v for k, v in MARRIAGE_STATUS.items() if k != "form.tinh_trang_hon_nhan"}})
    assert wrong.status_code == 422
    assert "Số CCCD phải gồm đúng 12 chữ số." in wrong.text and 'data-error-for="record.full_name"' in wrong.text
    assert 'data-error-for="form.tinh_trang_hon_nhan"' in wrong.text
    assert gate.db[office_intake.JOURNAL].count_documents({}) == 0, "nothing written while anything is wrong"

    filing = {"csrf_token": csrf, "form_token": token, "procedure_code": "HT-XNHN", **CITIZEN, **MARRIAGE_STATUS}
    filed = client.post(f"/dossier/desk/{WARD}/tiep-nhan", data=filing)
    assert filed.status_code == 303
    again = client.post(f"/dossier/desk/{WARD}/tiep-nhan", data=filing)  # «Tiếp nhận» pressed twice
    assert again.headers["Location"] == filed.headers["Location"]
    assert gate.db[office_intake.JOURNAL].count_documents({}) == 1
    entry = gate.db[office_intake.JOURNAL].find_one()
    assert domain.is_office_receipt_code(entry["receipt_code"]) and entry["receipt_code"].startswith("DNHC-260306-X")
    assert entry["citizen"]["national_id"] == "048190000123" and entry["officer_id"] == OFFICER[2]
    # HT-XNHN: 2 working days from a Friday, by the national holidays the office knows.
    assert entry["provisional_due_date"] == "2026-03-10"
    assert "048190000123" not in filed.headers["Location"], "no national id in an address"

    shown = client.get(filed.headers["Location"])
    assert "Hồ sơ này được tiếp nhận ngoại tuyến" in shown.text and entry["receipt_code"] in shown.text
    assert 'data-state="not_handed"' in shown.text
    receipt = client.get(f"/dossier/desk/{WARD}/ngoai-tuyen/{entry['_id']}/giay-tiep-nhan").text
    assert "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ" in receipt and entry["receipt_code"] in receipt
    assert "Ngày hẹn trả sẽ được xác nhận khi kết nối lại" in receipt and "10/03/2026" in receipt
    assert "Trần Văn Bình" in receipt and "06/03/2026 10:00" in receipt

    # To the uplink in the order filed; then the centre's DossierSubmitted comes back down.
    sent = []
    assert office_intake.hand_over(gate.db, sent.append) == 1 and office_intake.hand_over(gate.db, sent.append) == 0
    assert sent[0]["filing_id"] == entry["_id"] and sent[0]["receipt_code"] == entry["receipt_code"]
    assert sent[0]["received_on"] == "2026-03-06" and sent[0]["citizen"]["full_name"] == "Trần Văn Bình"
    assert 'data-state="waiting_link"' in client.get(filed.headers["Location"]).text
    desk.appointments.insert_one({"_id": entry["_id"], "receipt_code": entry["receipt_code"], "due_date": "2026-03-11"})
    journal = client.get(f"/dossier/desk/{WARD}/so-tiep-nhan").text
    assert 'data-state="confirmed"' in journal and "11/03/2026" in journal
    confirmed = client.get(f"/dossier/desk/{WARD}/ngoai-tuyen/{entry['_id']}/giay-tiep-nhan").text
    assert "Ngày hẹn trả sẽ được xác nhận" not in confirmed and "11/03/2026" in confirmed

    # The office forgets the citizen's details a month after the centre confirmed; an entry
    # never confirmed stays, however old.
    gate.db[office_intake.JOURNAL].insert_one({"_id": "never-confirmed", "ward_id": WARD, "receipt_key": "K",
                                               "filed_at": FRIDAY_MORNING - timedelta(days=90)})
    assert office_intake.forget_confirmed(gate.db, desk.appointments, FRIDAY_MORNING + timedelta(days=29)) == 0
    assert office_intake.forget_confirmed(gate.db, desk.appointments, FRIDAY_MORNING + timedelta(days=31)) == 1
    assert [e["_id"] for e in gate.db[office_intake.JOURNAL].find()] == ["never-confirmed"]


def test_with_the_link_up_the_desks_address_at_the_office_leads_to_the_centre(office):
    centre, _, _, client = office
    answer = client.get(f"/dossier/desk/{WARD}/tiep-nhan")
    assert answer.status_code == 303 and answer.headers["Location"] == f"{centre.url}/dossier/desk/{WARD}/tiep-nhan"
    assert client.get("/dossier/desk/hn-ba-dinh/tiep-nhan").status_code == 404, "this office's ward only"
    routed = []
    router = OfficeRouter(lambda env, start: routed.append("gate") or [], lambda env, start: routed.append("services") or [])
    router({"PATH_INFO": f"/dossier/desk/{WARD}/tiep-nhan"}, None)
    router({"PATH_INFO": f"/queue/kiosk/{WARD}"}, None)
    assert routed == ["gate", "services"]


def test_only_the_wards_own_staff_file_at_the_office(office):
    _, gate, desk, _ = office
    intake = office_intake.OfficeIntake("048190000123", "HT-XNHN", {}, (), {})
    for principal, status in ((None, 401), (Principal("c-1", "citizen", WARD), 403),
                              (Principal("o-2", "officer", "hn-ba-dinh"), 403),
                              (Principal("o-hc-1", "officer", WARD, must_change_password=True), 403)):
        with pytest.raises(Problem) as refused:
            office_intake.file_at_office(desk, principal, WARD, intake)
        assert refused.value.status == status
    assert gate.db[office_intake.JOURNAL].count_documents({}) == 0
