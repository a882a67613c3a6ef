"""The officer's desk (/dossier/desk/{ward_id}) through Flask's test client against the
real database: sign-in and refusals, the work list's tabs, counts, order and marks, the
search by receipt code, name without accents and CCCD (never in an address), counter
intake of a citizen with an account and of one with none (a counter record, no SMS
asked for, claimed when the citizen registers), the receipt with its QR code, and a
dossier's page: actions with notes, leader_only, the assignment select, the return with
who collected the result."""
from __future__ import annotations

import base64
import re
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest

from motcua_common import revocations
from motcua_common.outbox import OUTBOX
from motcua_common.web_session import CSRF_COOKIE, SESSION_COOKIE
from motcua_dossier import counter_records, worklist
from motcua_dossier.api import create_app
from motcua_testing.pagecheck import page_of
from motcua_common.audit import settle as chain_audit

WARD, OTHER_WARD = "dn-hai-chau", "dn-lien-chieu"
DESK = f"/dossier/desk/{WARD}"
API = "/dossier/api/v1"
LAN_ID = "048190000123"     # cit-lan of the conftest's citizens (an account)
NEW_ID = "048095001122"     # nobody's account
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
STAFF = [{"officer_id": "off-hc-1", "full_name": "Trần Thị Mai", "role": "officer"},
         {"officer_id": "off-hc-2", "full_name": "Lê Văn Hùng", "role": "officer"},
         {"officer_id": "lead-hc", "full_name": "Phạm Quốc Bảo", "role": "leader"}]


@pytest.fixture
def citizens(citizens):
    """The conftest's identity stand-in, with the names and identities the desk asks for."""
    names = {"cit-lan": "Nguyễn Thị Lan", "cit-binh": "Trần Văn Bình"}

    def names_of(ids):
        citizens.calls.append(("citizen_names", tuple(ids)))
        citizens._answer()
        return {i: names[i] for i in ids if i in names}

    def identity_of(citizen_id):
        citizens.calls.append(("citizen_identity", citizen_id))
        citizens._answer()
        for p in citizens.people:
            if p["citizen_id"] == citizen_id:
                return {"citizen_id": citizen_id, "national_id": p["national_id"], "phone_last4": p["phone"][-4:],
                        "full_name": names.get(citizen_id, "")}
        return None

    citizens.names, citizens.identity_of, citizens.known_names = names_of, identity_of, names
    return citizens


@pytest.fixture
def officers(officers):
    officers.of_ward = lambda ward_id: [dict(o) for o in STAFF] if ward_id == WARD else []
    officers.active.add(("off-hc-2", WARD))
    return officers


@pytest.fixture
def sign_in(client, signing_key):
    def do(subject="off-hc-1", role="officer", ward_id=WARD, username="canbo.haichau"):
        client.set_cookie(SESSION_COOKIE, signing_key.issue(subject, role, ward_id, 600, username=username))

    return do


def csrf(client) -> str:
    cookie = client.get_cookie(CSRF_COOKIE)
    assert cookie is not None
    return cookie.value


def post(client, path, data, **kw):
    """A form POST from a page the desk served (its CSRF cookie set)."""
    if client.get_cookie(CSRF_COOKIE) is None:
        client.get(DESK)
    return client.post(path, data={"csrf_token": csrf(client), **data}, **kw)


@pytest.fixture
def file_at_counter(client, sign_in):
    """file_at_counter(national_id, procedure_code, form, **extra) -> the new dossier's id (through the pages)."""

    def do(national_id=LAN_ID, code="HT-XNHN", form=None, **extra):
        form = form if form is not None else {"ho_ten": "Nguyễn Thị Lan", "ngay_sinh": "04/05/1990",
                                              "tinh_trang_hon_nhan": "Chưa kết hôn",
                                              "muc_dich_su_dung": "Đăng ký kết hôn"}
        page = page_of(post(client, f"{DESK}/tiep-nhan", {"national_id": national_id, "procedure_code": code,
                                                          "buoc": "khai", **{k: v for k, v in extra.items()
                                                                             if k == "chain"}}))
        data = {"national_id": national_id, "procedure_code": code, "buoc": "nop",
                "form_token": page.inputs["form_token"]["value"],
                **{f"form.{k}": v for k, v in form.items()}, **extra}
        response = post(client, f"{DESK}/tiep-nhan", data)
        assert response.status_code == 303, response.get_data(as_text=True)[:3000]
        path = urlsplit(response.headers["Location"]).path
        assert path.startswith(f"{DESK}/ho-so/") and "?moi=1" in response.headers["Location"]
        return path.rsplit("/", 1)[1]

    return do


def act(client, dossier_id, headers, **body):
    return client.post(f"{API}/dossiers/{dossier_id}/actions", json=body, headers=headers)


# ---------------------------------------------------------------- signing in
def test_signing_in_refusals_and_an_ended_session(client, sign_in, token, deps):
    answer = client.get(DESK)
    assert answer.status_code == 303 and answer.headers["Location"] == f"/identity/login?next={DESK}"
    sign_in(subject="cit-lan", role="citizen", ward_id=WARD)
    refused = client.get(DESK)
    assert refused.status_code == 403 and "dành cho cán bộ" in page_of(refused).text
    sign_in(subject="off-lc-1", role="officer", ward_id=OTHER_WARD)
    assert client.get(DESK).status_code == 403
    sign_in()
    assert client.get(DESK).status_code == 200
    # A session ended early (the officer deactivated) is no session.
    revocations.record(deps.db, "off-hc-1", datetime.now(timezone.utc) + timedelta(seconds=5), "deactivated")
    deps.revocations.forget("off-hc-1")
    assert client.get(DESK).status_code == 303


# ---------------------------------------------------------------- the work list
@pytest.fixture
def ward_dossiers(submit, client, officer, clock, dossier_db, token):
    """Dossiers of the ward in every tab: returns {name: dossier_id}."""
    made = {}
    for name in ("overdue", "today", "soon", "later", "mine", "supplement", "ready", "processing"):
        made[name] = submit().json["dossier_id"]
    today = clock.today()
    dues = {"overdue": today - timedelta(days=1), "today": today, "soon": today + timedelta(days=1),
            "later": today + timedelta(days=20)}
    for name, due in dues.items():
        dossier_db.dossiers.update_one({"_id": made[name]}, {"$set": {"due_date": due.isoformat()}})
    client.post(f"{API}/dossiers/{made['mine']}/assign", json={}, headers=officer)
    dossier_db.dossiers.update_one({"_id": made["supplement"]}, {"$set": {"status": "supplement_requested"}})
    dossier_db.dossiers.update_one({"_id": made["ready"]}, {"$set": {"status": "result_ready"}})
    dossier_db.dossiers.update_one({"_id": made["processing"]}, {"$set": {"status": "processing"}})
    other = client.post(f"{API}/dossiers", headers=token("citizen", None, subject="cit-lan"),
                        json={"procedure_code": "HT-XNHN", "ward_id": OTHER_WARD,
                              "form": {"ho_ten": "Nguyễn Thị Lan", "ngay_sinh": "1990-05-04",
                                       "tinh_trang_hon_nhan": "Chưa kết hôn", "muc_dich_su_dung": "Khác"}})
    made["other_ward"] = other.json.get("dossier_id")
    return made


def codes_of(page) -> list[str]:
    return re.findall(r"[A-Z]{2,6}-\d{6}-[0-9A-Z]{5}", page.text)


def test_the_work_list_has_tabs_with_counts_overdue_first_and_marks(client, sign_in, ward_dossiers, dossier_db):
    sign_in()
    response = client.get(DESK)
    page = page_of(response)
    html = response.get_data(as_text=True)
    counts = dict(re.findall(r'data-count="([a-z-]+)">(\d+)<', html))
    assert counts == {"cua-toi": "1", "ca-phuong": "8", "den-han": "1", "qua-han": "1", "cho-bo-sung": "1",
                      "cho-tra": "1"}  # no «chờ phê duyệt» for an officer
    assert "Chờ phê duyệt" not in page.text
    code = {k: dossier_db.dossiers.find_one({"_id": v})["receipt_code"] for k, v in ward_dossiers.items() if v}
    shown = codes_of(page)
    assert shown[0] == code["overdue"] and code["other_ward"] not in shown
    assert set(shown) == {code[k] for k in ward_dossiers if k != "other_ward"}
    assert re.search(rf'class="overdue" data-receipt="{code["overdue"]}"', html)
    assert re.search(rf'class="due-soon" data-receipt="{code["soon"]}"', html)
    assert re.search(rf'class="due-soon" data-receipt="{code["today"]}"', html)
    assert re.search(rf'class="" data-receipt="{code["later"]}"', html)
    assert "Nguyễn Thị Lan" in page.text  # the citizen's name, asked of identity once and kept
    assert dossier_db.dossiers.count_documents({"citizen_name": "Nguyễn Thị Lan"}) >= 8
    assert "autofocus" in page.inputs["q"]

    for tab, expected in (("cua-toi", ["mine"]), ("qua-han", ["overdue"]), ("den-han", ["today"]),
                          ("cho-bo-sung", ["supplement"]), ("cho-tra", ["ready"])):
        assert codes_of(page_of(client.get(f"{DESK}?tab={tab}"))) == [code[k] for k in expected], tab


def test_the_leader_sees_the_dossiers_awaiting_approval(client, sign_in, ward_dossiers, dossier_db):
    sign_in(subject="lead-hc", role="leader", username="lanhdao.haichau")
    page = page_of(client.get(f"{DESK}?tab=cho-duyet"))
    assert "Chờ phê duyệt" in page.text
    assert codes_of(page) == [dossier_db.dossiers.find_one({"_id": ward_dossiers["processing"]})["receipt_code"]]


def test_search_by_receipt_code_name_without_accents_and_cccd_is_posted(client, sign_in, submit, dossier_db,
                                                                         file_at_counter, citizens):
    sign_in()
    online = submit().json
    counter_id = file_at_counter(NEW_ID, **{"record.full_name": "Đỗ Văn Tư", "record.date_of_birth": "01/02/1995"})
    counter_code = dossier_db.dossiers.find_one({"_id": counter_id})["receipt_code"]
    client.get(DESK)  # names the online dossier (identity asked once)

    def search(q):
        response = post(client, f"{DESK}/tim-kiem", {"q": q})
        return response, page_of(response)

    _, by_code = search(online["receipt_code"].lower().replace("-", " "))
    assert codes_of(by_code)[:1] == [online["receipt_code"]]
    _, by_name = search("do van tu")
    assert "Kết quả tìm theo họ tên" in by_name.text and counter_code in by_name.text
    assert online["receipt_code"] not in by_name.text.split("Của tôi")[0]
    _, by_lan = search("nguyen thi lan")
    assert online["receipt_code"] in by_lan.text.split("Của tôi")[0]
    _, by_cccd = search(NEW_ID)
    results = by_cccd.text.split("Của tôi")[0]
    assert counter_code in results and online["receipt_code"] not in results
    _, by_account = search(LAN_ID)
    assert online["receipt_code"] in by_account.text.split("Của tôi")[0]
    refused, bad = search("12345")
    assert refused.status_code == 422 and "12 chữ số" in bad.errors["q"]
    # The search is a POST to a fixed address: the CCCD is never in a URL, a link or a form's action.
    assert NEW_ID not in " ".join(filter(None, by_cccd.links + [f.get("action") for f in by_cccd.forms]))
    assert "?q=" not in " ".join(filter(None, by_cccd.links))


# ---------------------------------------------------------------- counter intake
def test_intake_of_a_citizen_with_an_account(client, sign_in, file_at_counter, dossier_db, citizens):
    sign_in()
    page = page_of(client.get(f"{DESK}/tiep-nhan"))
    assert "autofocus" in page.inputs["national_id"] and "HT-KS" in page.options["procedure_code"]
    found = page_of(post(client, f"{DESK}/tiep-nhan", {"national_id": LAN_ID, "procedure_code": "HT-XNHN",
                                                       "buoc": "khai"}))
    assert "đã có tài khoản" in found.text and "Nguyễn Thị Lan" in found.text and "3456" in found.text
    assert "record.full_name" not in found.inputs
    dossier_id = file_at_counter(papers=["Tờ khai cấp Giấy xác nhận tình trạng hôn nhân (theo mẫu)"])
    stored = dossier_db.dossiers.find_one({"_id": dossier_id})
    assert stored["channel"] == "counter" and stored["citizen_id"] == "cit-lan" and stored["phone_last4"] == "3456"
    assert stored["citizen_name"] == "Nguyễn Thị Lan" and stored["submitted_by"] == "off-hc-1"
    assert stored["papers_received"] == ["Tờ khai cấp Giấy xác nhận tình trạng hôn nhân (theo mẫu)"]
    event = dossier_db[OUTBOX].find_one({"envelope.payload.dossier_id": dossier_id})["envelope"]
    assert event["type"] == "DossierSubmitted" and event["payload"]["citizen_id"] == "cit-lan"
    filed = page_of(client.get(f"{DESK}/ho-so/{dossier_id}?moi=1"))
    assert "Đã tiếp nhận hồ sơ" in filed.text and f"{DESK}/ho-so/{dossier_id}/giay-tiep-nhan" in filed.links


def test_intake_refuses_form_text_with_hidden_characters_next_to_its_field(client, sign_in, dossier_db):
    """What the officer types for the citizen is printed into the signed result too: a
    right-to-left override is refused, the form shown again with that field marked."""
    sign_in()
    page = page_of(post(client, f"{DESK}/tiep-nhan", {"national_id": LAN_ID, "procedure_code": "HT-XNHN",
                                                      "buoc": "khai"}))
    refused = post(client, f"{DESK}/tiep-nhan", {
        "national_id": LAN_ID, "procedure_code": "HT-XNHN", "buoc": "nop", "form_token": page.inputs["form_token"]["value"],
        "form.ho_ten": "Nguyễn Thị \u202eLan", "form.ngay_sinh": "04/05/1990", "form.tinh_trang_hon_nhan": "Chưa kết hôn",
        "form.muc_dich_su_dung": "Đăng ký kết hôn"})
    assert refused.status_code == 422
    shown = page_of(refused)
    assert "Chưa nộp được" in shown.text and "ký tự ẩn" in shown.text and "form.ho_ten" in shown.inputs
    assert dossier_db.dossiers.count_documents({}) == 0


def test_intake_of_a_citizen_without_account_or_phone_keeps_a_counter_record_and_asks_no_sms(
        client, sign_in, file_at_counter, dossier_db, caplog):
    sign_in()
    found = page_of(post(client, f"{DESK}/tiep-nhan", {"national_id": NEW_ID, "procedure_code": "HT-XNHN",
                                                       "buoc": "khai"}))
    assert "chưa có tài khoản" in found.text and "record.full_name" in found.inputs
    # Bad input: errors next to the fields, nothing written.
    bad = post(client, f"{DESK}/tiep-nhan", {"national_id": NEW_ID, "procedure_code": "HT-XNHN", "buoc": "nop",
                                             "form_token": "t-1", "record.full_name": "X1",
                                             "record.date_of_birth": "31/02/1990", "record.phone": "12",
                                             "form.ho_ten": "Đỗ Văn Tư"})
    shown = page_of(bad)
    assert bad.status_code == 422
    assert set(shown.errors) >= {"record.full_name", "record.date_of_birth", "record.phone", "form.ngay_sinh"}
    assert dossier_db.dossiers.count_documents({}) == 0 and dossier_db.counter_records.count_documents({}) == 0

    dossier_id = file_at_counter(NEW_ID, **{"record.full_name": "Đỗ Văn Tư", "record.date_of_birth": "01/02/1995",
                                            "papers": ["Tờ khai cấp Giấy xác nhận tình trạng hôn nhân (theo mẫu)"]})
    stored = dossier_db.dossiers.find_one({"_id": dossier_id})
    record = dossier_db.counter_records.find_one({"national_id": NEW_ID})
    assert record["full_name"] == "Đỗ Văn Tư" and record["date_of_birth"] == "1995-02-01" and record["phone"] is None
    assert stored["citizen_id"] == "" and stored["counter_record_id"] == record["_id"]
    assert stored["phone_last4"] is None and stored["citizen_name"] == "Đỗ Văn Tư"
    events = [d["envelope"] for d in dossier_db[OUTBOX].find({"envelope.payload.dossier_id": dossier_id})]
    # notify texts nobody without an account (empty citizen_id): no SMS is asked for.
    assert [e["payload"]["citizen_id"] for e in events] == [""]
    everything = str(events) + caplog.text
    assert NEW_ID not in everything and "Đỗ Văn Tư" not in everything and "1995-02-01" not in everything
    receipt = client.get(f"{DESK}/ho-so/{dossier_id}/giay-tiep-nhan")
    assert receipt.status_code == 200 and "Đỗ Văn Tư" in page_of(receipt).text


def test_a_chained_procedure_files_only_the_links_ticked(client, sign_in, file_at_counter, dossier_db, forms):
    sign_in()
    chain_page = page_of(post(client, f"{DESK}/tiep-nhan", {"national_id": LAN_ID, "procedure_code": "HT-KS",
                                                            "buoc": "khai"}))
    assert {"CTR-TT", "BHYT-TE6"} <= set(re.findall(r"\((CTR-TT|BHYT-TE6)\)", chain_page.text))
    form = {**forms["chain"], "ngay_sinh": "01/03/2026"}
    form.pop("ho_ten_chu_ho"), form.pop("quan_he_voi_chu_ho")  # residence (CTR-TT) not filed: not asked
    dossier_id = file_at_counter(LAN_ID, "HT-KS", form, chain=["BHYT-TE6"])
    head = dossier_db.dossiers.find_one({"_id": dossier_id})
    chain = list(dossier_db.dossiers.find({"chain_id": head["chain_id"]}))
    assert sorted(d["procedure_code"] for d in chain) == ["BHYT-TE6", "HT-KS"]


# ---------------------------------------------------------------- claiming a counter record
def test_a_counter_record_becomes_the_citizens_when_they_register(client, sign_in, file_at_counter, dossier_db,
                                                                  deps, citizens, signing_key):
    sign_in()
    dossier_id = file_at_counter(NEW_ID, **{"record.full_name": "Đỗ Văn Tư", "record.date_of_birth": "01/02/1995"})
    # Someone else registers: nothing changes (identity is asked which national id they have).
    citizens.register("cit-other", "048190009999", "0905000111")
    assert counter_records.on_registered(deps, "cit-other") == 0
    # The citizen registers (CitizenRegistered): their dossier becomes theirs.
    citizens.register("cit-tu", NEW_ID, "0912345678")
    assert counter_records.on_registered(deps, "cit-tu") == 1
    stored = dossier_db.dossiers.find_one({"_id": dossier_id})
    assert stored["citizen_id"] == "cit-tu" and stored["phone_last4"] == "5678"
    assert dossier_db.counter_records.find_one({"national_id": NEW_ID})["claimed_by"] == "cit-tu"
    assert counter_records.on_registered(deps, "cit-tu") == 0  # once
    # Without unclaimed records, identity is not asked at all.
    asked = len(citizens.calls)
    citizens.register("cit-late", "048190008888", "0905000222")
    assert counter_records.on_registered(deps, "cit-late") == 0 and len(citizens.calls) == asked
    # Later steps reach the citizen now: the events carry their id.
    officer_token = {"Authorization": "Bearer " + client.get_cookie(SESSION_COOKIE).value}
    assert act(client, dossier_id, officer_token, action="receive").status_code == 200
    changed = [d["envelope"] for d in dossier_db[OUTBOX].find({"envelope.type": "DossierStatusChanged",
                                                               "envelope.payload.dossier_id": dossier_id})]
    assert changed[-1]["payload"]["citizen_id"] == "cit-tu"
    # And the citizen reads it.
    mine = {"Authorization": "Bearer " + signing_key.issue("cit-tu", "citizen", None, 600)}
    assert client.get(f"{API}/dossiers/{dossier_id}", headers=mine).status_code == 200


def test_the_desk_claims_a_record_whose_citizen_registered_meanwhile(client, sign_in, file_at_counter, dossier_db,
                                                                    citizens):
    sign_in()
    first = file_at_counter(NEW_ID, **{"record.full_name": "Đỗ Văn Tư", "record.date_of_birth": "01/02/1995"})
    citizens.register("cit-tu", NEW_ID, "0912345678")  # the registration's event not handled yet
    second = file_at_counter(NEW_ID)
    assert {d["citizen_id"] for d in dossier_db.dossiers.find({"_id": {"$in": [first, second]}})} == {"cit-tu"}


# ---------------------------------------------------------------- the receipt
def test_the_receipt_prints_what_was_received_and_a_qr_code_of_the_lookup(client, sign_in, file_at_counter,
                                                                          dossier_db):
    sign_in()
    dossier_id = file_at_counter(papers=["Tờ khai cấp Giấy xác nhận tình trạng hôn nhân (theo mẫu)"])
    stored = dossier_db.dossiers.find_one({"_id": dossier_id})
    response = client.get(f"{DESK}/ho-so/{dossier_id}/giay-tiep-nhan")
    page = page_of(response)
    for text in ("GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ", "HẢI CHÂU", stored["receipt_code"], "Nguyễn Thị Lan",
                 "Giấy xác nhận tình trạng hôn nhân", "Tờ khai cấp Giấy xác nhận tình trạng hôn nhân (theo mẫu)",
                 "10/03/2026 09:00", date.fromisoformat(stored["due_date"]).strftime("%d/%m/%Y"), "Trần Thị Mai"):
        assert text in page.text, text
    address = f"http://localhost/dossier/portal/tra-cuu?ma={stored['receipt_code']}"
    assert address in page.text
    html = response.get_data(as_text=True)
    uri = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', html).group(1)
    svg = base64.b64decode(uri).decode()
    assert svg.startswith("<?xml") and "<svg" in svg and "<path" in svg
    css = client.get("/dossier/portal/static/desk.css").get_data(as_text=True)
    assert "@page { size: A4" in css and "@page a5 { size: A5" in css
    a5 = client.get(f"{DESK}/ho-so/{dossier_id}/giay-tiep-nhan?kho=a5").get_data(as_text=True)
    assert 'class="receipt-page kho-a5"' in a5


# ---------------------------------------------------------------- a dossier's page
def test_a_dossiers_page_actions_notes_and_leader_only(client, sign_in, file_at_counter, dossier_db, signing_key):
    sign_in()
    dossier_id = file_at_counter()
    page = page_of(client.get(f"{DESK}/ho-so/{dossier_id}"))
    assert "Nguyễn Thị Lan" in page.text and "Chưa kết hôn" in page.text
    actions = [f["action"] for f in page.forms]
    assert f"{DESK}/ho-so/{dossier_id}/thao-tac" in actions
    assert "Đã thu lệ phí tại quầy" in page.text  # HT-XNHN is level 4 with a fee
    assert post(client, f"{DESK}/ho-so/{dossier_id}/le-phi", {}).status_code == 303

    def do(action, **more):
        return post(client, f"{DESK}/ho-so/{dossier_id}/thao-tac", {"action": action, **more})

    assert do("receive").status_code == 303
    refused = do("request_supplement", note="  ")
    assert refused.status_code == 422 and "request_supplement.note" in page_of(refused).errors
    assert dossier_db.dossiers.find_one({"_id": dossier_id})["status"] == "received"
    assert do("request_supplement", note="Thiếu bản sao CCCD").status_code == 303
    assert do("receive").status_code == 303
    assert do("start_processing").status_code == 303
    officer_page = page_of(client.get(f"{DESK}/ho-so/{dossier_id}"))
    assert 'data-action="approve"' not in client.get(f"{DESK}/ho-so/{dossier_id}").get_data(as_text=True)
    assert "chờ lãnh đạo phường phê duyệt" in officer_page.text
    forced = do("approve")
    assert forced.status_code == 403 and "lãnh đạo phường" in page_of(forced).text
    assert dossier_db.dossiers.find_one({"_id": dossier_id})["status"] == "processing"

    sign_in(subject="lead-hc", role="leader", username="lanhdao.haichau")
    assert 'data-action="approve"' in client.get(f"{DESK}/ho-so/{dossier_id}").get_data(as_text=True)
    assert do("approve", note="Đồng ý").status_code == 303
    ready = page_of(client.get(f"{DESK}/ho-so/{dossier_id}"))
    assert f"{DESK}/ho-so/{dossier_id}/ket-qua" in ready.links
    pdf = client.get(f"{DESK}/ho-so/{dossier_id}/ket-qua")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")

    sign_in()
    bad = do("return", collected_by="Lan\u202e", collected_at="2099-01-01T10:00")
    assert bad.status_code == 422 and {"return.collected_by", "return.collected_at"} <= set(page_of(bad).errors)
    assert do("return", collected_by="Nguyễn Văn Hùng", collected_at="2026-03-10T08:30").status_code == 303
    stored = dossier_db.dossiers.find_one({"_id": dossier_id})
    assert stored["status"] == "returned" and stored["collected"]["collected_by"] == "Nguyễn Văn Hùng"
    assert stored["history"][-1]["collected"]["collected_by"] == "Nguyễn Văn Hùng"
    done = page_of(client.get(f"{DESK}/ho-so/{dossier_id}"))
    assert "Người nhận kết quả" in done.text and "Nguyễn Văn Hùng, lúc 10/03/2026 08:30" in done.text
    token = {"Authorization": "Bearer " + signing_key.issue("off-hc-1", "officer", WARD, 600)}
    detail = client.get(f"{API}/dossiers/{dossier_id}", headers=token).json
    assert detail["collected"] == {"collected_by": "Nguyễn Văn Hùng", "collected_at": "2026-03-10T01:30:00Z"}


def test_the_assignment_select_lists_the_wards_officers(client, sign_in, submit, dossier_db, officers):
    sign_in()
    dossier_id = submit().json["dossier_id"]
    page = page_of(client.get(f"{DESK}/ho-so/{dossier_id}"))
    assert page.options["officer_id"] == ["off-hc-1", "off-hc-2", "lead-hc"]
    assert "Lê Văn Hùng (Cán bộ)" in page.text and "Phạm Quốc Bảo (Lãnh đạo)" in page.text
    assert post(client, f"{DESK}/ho-so/{dossier_id}/phan-cong", {"officer_id": "off-hc-2"}).status_code == 303
    assert dossier_db.dossiers.find_one({"_id": dossier_id})["assignee_id"] == "off-hc-2"
    assert "Lê Văn Hùng" in page_of(client.get(DESK)).text
    refused = post(client, f"{DESK}/ho-so/{dossier_id}/phan-cong", {"officer_id": "off-lc-1"})
    assert refused.status_code == 422 and "assign.officer_id" in page_of(refused).errors
    assert dossier_db.dossiers.find_one({"_id": dossier_id})["assignee_id"] == "off-hc-2"


def test_attaching_a_scan_on_the_dossiers_page(client, sign_in, submit, dossier_db):
    import io

    sign_in()
    dossier_id = submit().json["dossier_id"]
    client.get(f"{DESK}/ho-so/{dossier_id}")
    sent = client.post(f"{DESK}/ho-so/{dossier_id}/dinh-kem", content_type="multipart/form-data", data={
        "csrf_token": csrf(client), "file": (io.BytesIO(PDF), "cccd.pdf"),
        "document": "Tờ khai cấp Giấy xác nhận tình trạng hôn nhân (theo mẫu)"})
    assert sent.status_code == 303
    stored = dossier_db.dossiers.find_one({"_id": dossier_id})
    assert stored["attachments"][0]["filename"] == "cccd.pdf"
    page = page_of(client.get(f"{DESK}/ho-so/{dossier_id}"))
    link = f"{DESK}/ho-so/{dossier_id}/tep/{stored['attachments'][0]['attachment_id']}"
    assert link in page.links and client.get(link).data == PDF


def test_use_cases_refuse_another_wards_staff(deps, token):
    from motcua_common.auth import Principal
    from motcua_common.http import Problem

    stranger = Principal("off-lc-1", "officer", OTHER_WARD)
    with pytest.raises(Problem) as refused:
        worklist.work_list(deps, stranger, WARD, "ca-phuong")
    assert refused.value.status == 403


def test_the_result_is_checked_from_its_page_and_the_receipts_qr_opens_the_lookup_filled_in(
        client, sign_in, file_at_counter, dossier_db):
    sign_in()
    dossier_id = file_at_counter()
    code = dossier_db.dossiers.find_one({"_id": dossier_id})["receipt_code"]

    def do(action, **more):
        return post(client, f"{DESK}/ho-so/{dossier_id}/thao-tac", {"action": action, **more})

    assert post(client, f"{DESK}/ho-so/{dossier_id}/le-phi", {}).status_code == 303
    assert do("receive").status_code == 303 and do("start_processing").status_code == 303
    assert 'data-verify-link' not in client.get(f"{DESK}/ho-so/{dossier_id}").get_data(as_text=True)
    sign_in(subject="lead-hc", role="leader", username="lanhdao.haichau")
    assert do("approve").status_code == 303
    html = client.get(f"{DESK}/ho-so/{dossier_id}").get_data(as_text=True)
    token = dossier_db.dossiers.find_one({"_id": dossier_id})["result"]["verify_token"]
    address = f"http://localhost/dossier/verify/{token}"
    assert re.search(rf'<a href="{re.escape(address)}" data-verify-link>Kiểm tra kết quả</a>', html)
    checked = client.get(f"/dossier/verify/{token}?format=json").json
    assert checked["valid"] is True and checked["receipt_code"] == code

    # The receipt's QR code: the lookup with the code filled in, the phone digits next.
    lookup = page_of(client.get(f"/dossier/portal/tra-cuu?ma={code}"))
    assert lookup.inputs["receipt_code"]["value"] == code
    assert 'id="phone_last4" name="phone_last4" value="" inputmode="numeric" maxlength="4" autocomplete="off" autofocus' \
        in client.get(f"/dossier/portal/tra-cuu?ma={code}").get_data(as_text=True)
    assert page_of(client.get("/dossier/portal/tra-cuu")).inputs["receipt_code"]["value"] == ""


def test_a_dossier_without_an_account_says_no_sms_goes_and_keeps_what_the_officer_typed(
        client, sign_in, file_at_counter, dossier_db):
    sign_in()
    dossier_id = file_at_counter(NEW_ID, **{"record.full_name": "Đỗ Văn Tư", "record.date_of_birth": "01/02/1995"})
    page = client.get(f"{DESK}/ho-so/{dossier_id}").get_data(as_text=True)
    assert "data-no-sms" in page and "không nhận SMS" in page
    assert "gửi cho công dân qua SMS" not in page
    receipt = client.get(f"{DESK}/ho-so/{dossier_id}/giay-tiep-nhan").get_data(as_text=True)
    assert "chưa đăng ký số điện thoại" in receipt and "nhắn tin TT" not in receipt

    def do(action, **more):
        return post(client, f"{DESK}/ho-so/{dossier_id}/thao-tac", {"action": action, **more})

    assert do("receive").status_code == 303
    long_note = "Thiếu giấy tờ " + "x" * 600
    refused = do("request_supplement", note=long_note)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "request_supplement.note" in page_of(refused).errors
    assert f">{long_note}</textarea>" in html
    assert 'aria-invalid="true" aria-describedby="request_supplement.note-error" autofocus' in html
    # The steps that move the dossier on come first, refusing last.
    assert post(client, f"{DESK}/ho-so/{dossier_id}/le-phi", {}).status_code == 303
    actions = re.findall(r'data-action="(\w+)"', client.get(f"{DESK}/ho-so/{dossier_id}").get_data(as_text=True))
    assert actions == ["start_processing", "request_supplement", "reject"]


def test_the_collection_time_is_typed_as_the_ward_writes_it(client, sign_in, file_at_counter, dossier_db,
                                                             signing_key):
    from motcua_dossier.desk import iso_moment

    assert iso_moment("07/12/2026 15:30") == "2026-12-07T15:30" and iso_moment("7/3/2026 8:05") == "2026-03-07T08:05"
    assert iso_moment("2026-03-10T08:30") == "2026-03-10T08:30" and iso_moment("hôm qua") == "hôm qua"
    sign_in()
    dossier_id = file_at_counter(code="HT-XNHN")
    dossier_db.dossiers.update_one({"_id": dossier_id}, {"$set": {"status": "result_ready"}})
    page = client.get(f"{DESK}/ho-so/{dossier_id}").get_data(as_text=True)
    assert ('id="return.collected_at" name="collected_at" inputmode="numeric" maxlength="20" '
            'value="10/03/2026 09:00"') in page

    def give(**more):
        return post(client, f"{DESK}/ho-so/{dossier_id}/thao-tac", {"action": "return", **more})

    bad = give(collected_by="Nguyễn Văn Hùng", collected_at="10-03-26")
    assert bad.status_code == 422
    assert "ngày/tháng/năm giờ:phút" in page_of(bad).errors["return.collected_at"]
    assert 'value="10-03-26"' in bad.get_data(as_text=True) and 'value="Nguyễn Văn Hùng"' in bad.get_data(as_text=True)
    assert give(collected_by="Nguyễn Văn Hùng", collected_at="10/03/2026 08:30").status_code == 303
    token = {"Authorization": "Bearer " + signing_key.issue("off-hc-1", "officer", WARD, 600)}
    detail = client.get(f"{API}/dossiers/{dossier_id}", headers=token).json
    assert detail["collected"] == {"collected_by": "Nguyễn Văn Hùng", "collected_at": "2026-03-10T01:30:00Z"}


def test_opening_a_dossier_at_the_desk_is_audited(client, sign_in, file_at_counter, dossier_db):
    """Staff seeing a citizen's data on the desk's dossier page leave a record on the
    hash-chained audit log, as the API's reads do."""
    sign_in()
    dossier_id = file_at_counter()
    chain_audit(dossier_db)
    before = dossier_db.audit_log.count_documents({"action": "read_dossier", "subject_id": dossier_id})
    assert client.get(f"{DESK}/ho-so/{dossier_id}").status_code == 200
    chain_audit(dossier_db)
    reads = list(dossier_db.audit_log.find({"action": "read_dossier", "subject_id": dossier_id}))
    assert len(reads) == before + 1 and reads[-1]["details"]["via"] == "desk"
