"""The citizen portal (/dossier/portal) through Flask's test client against the SecantusDB
server: the public catalog and its search, a procedure's form built from the catalog,
submitting through the API's own submission (validation, due date, DossierSubmitted in
the outbox, one dossier for a double tap), «Hồ sơ của tôi», one dossier with its
timeline, fee, papers and signed result, the public lookup with its rate limit; sign-in
redirects, CSRF refusal, and another citizen's dossier answered as 404."""
from __future__ import annotations

import io
import re
from datetime import date
from urllib.parse import urlsplit

import pytest

from motcua_common.outbox import OUTBOX
from motcua_testing.pagecheck import page_of
from motcua_common.web_session import CSRF_COOKIE, SESSION_COOKIE
from motcua_dossier.api import LOOKUPS_PER_WINDOW, create_app
from motcua_dossier.payment_provider import PaymentSetup

WARD, OTHER_WARD = "dn-hai-chau", "dn-lien-chieu"
PORTAL = "/dossier/portal"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def sign_in(client, signing_key):
    """sign_in(subject="cit-lan", ...): the browser's session cookie, as /identity/login sets it."""

    def do(subject: str = "cit-lan", ward_id: str | None = WARD, phone_last4: str | None = "3456",
           role: str = "citizen", must_change_password: bool = False):
        token = signing_key.issue(subject, role, ward_id, 600, phone_last4=phone_last4,
                                  must_change_password=must_change_password)
        client.set_cookie(SESSION_COOKIE, token)

    return do


def csrf_of(client) -> str:
    cookie = client.get_cookie(CSRF_COOKIE)
    assert cookie is not None, "the page set no CSRF cookie"
    return cookie.value


def fill(client, code: str, form: dict, ward_id: str = WARD, query: str = "", **extra):
    """Open the procedure's page, then post its form with `form` in the boxes."""
    page = page_of(client.get(f"{PORTAL}/thu-tuc/{code}{query}"))
    data = {"csrf_token": page.inputs["csrf_token"]["value"], "form_token": page.inputs["form_token"]["value"],
            "ward_id": ward_id, **{f"form.{k}": v for k, v in form.items()}, **extra}
    if "lien_thong" in page.inputs:
        data["lien_thong"] = "1"
    return client.post(f"{PORTAL}/thu-tuc/{code}{query}", data=data)


def dossier_id_of(response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    path = urlsplit(response.headers["Location"]).path
    assert path.startswith(f"{PORTAL}/ho-so/")
    return path.rsplit("/", 1)[1]


# ---------------------------------------------------------------- the catalog
def test_the_catalog_is_public_grouped_by_field_and_says_how_to_sign_in(client):
    page = page_of(client.get(PORTAL))
    for field in ("Hộ tịch", "Cư trú", "Chứng thực"):
        assert field in page.text
    assert "Đăng ký khai sinh" in page.text and "Mức độ 4" in page.text and "Mức độ 2" in page.text
    assert "15.000 đồng" in page.text and "2 ngày làm việc" in page.text
    assert "Giấy chứng sinh" in page.text  # the papers to bring
    assert f"{PORTAL}/thu-tuc/HT-KS" in page.links
    assert f"/identity/login?next={PORTAL}" in page.links and "/identity/register" in page.links
    assert f"{PORTAL}/tra-cuu" in [f.get("action") for f in page.forms]
    assert "Đăng xuất" not in page.text


def test_the_catalog_search_ignores_accents_and_filters_by_field(client):
    found = page_of(client.get(PORTAL, query_string={"q": "dang ky khai sinh"}))
    assert "Đăng ký khai sinh" in found.text and "Đăng ký kết hôn" not in found.text
    assert found.inputs["q"]["value"] == "dang ky khai sinh"
    by_field = page_of(client.get(PORTAL, query_string={"linh_vuc": "Chứng thực"}))
    assert "Chứng thực bản sao" in by_field.text and "Đăng ký khai sinh" not in by_field.text
    assert by_field.selected["linh_vuc"] == "Chứng thực"
    nothing = page_of(client.get(PORTAL, query_string={"q": "xyzzy"}))
    assert "Không tìm thấy thủ tục nào" in nothing.text


def test_signed_in_the_catalog_offers_my_dossiers_and_a_sign_out_form(client, sign_in):
    sign_in()
    response = client.get(PORTAL)
    page = page_of(response)
    assert f"{PORTAL}/ho-so" in page.links and "Đăng xuất" in page.text
    logout = next(f for f in page.forms if f.get("action") == "/identity/logout")
    assert logout["method"] == "post"
    assert page.inputs["csrf_token"]["value"] == csrf_of(client)
    assert "/identity/register" not in page.links


# ---------------------------------------------------------------- a procedure's page
def test_the_procedure_form_is_built_from_the_catalog_with_the_citizens_ward_chosen(client, sign_in):
    sign_in(ward_id=OTHER_WARD)
    page = page_of(client.get(f"{PORTAL}/thu-tuc/HT-XNHN"))
    assert {"form.ho_ten", "form.ngay_sinh", "form.muc_dich_su_dung"} <= set(page.inputs)
    assert page.inputs["form.ngay_sinh"]["placeholder"] == "ngày/tháng/năm"
    assert "form.tinh_trang_hon_nhan" in page.selected  # a choice is a select
    assert page.selected["ward_id"] == OTHER_WARD
    # Without --demo the service knows no other ward to vouch for: the citizen's own only.
    assert "Phường Liên Chiểu" in page.text and "Phường Hải Châu" not in page.text
    assert "Lệ phí 15.000 đồng, nộp trực tuyến" in page.text
    assert "Thứ Năm, 12/03/2026" in page.text  # due if submitted today: Tuesday + 2 working days


def test_signed_out_the_procedure_page_asks_to_sign_in_and_a_post_is_sent_to_sign_in(client, dossier_db):
    page = page_of(client.get(f"{PORTAL}/thu-tuc/HT-XNHN"))
    assert f"/identity/login?next={PORTAL}/thu-tuc/HT-XNHN" in page.links
    assert "form.ho_ten" not in page.inputs
    client.get(PORTAL)  # a page with a form: the CSRF cookie
    response = client.post(f"{PORTAL}/thu-tuc/HT-XNHN",
                           data={"csrf_token": csrf_of(client), "ward_id": WARD, "form.ho_ten": "An"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/identity/login?next={PORTAL}/thu-tuc/HT-XNHN"
    assert dossier_db.dossiers.count_documents({}) == 0


def test_a_counter_only_procedure_has_no_form_and_an_unknown_one_is_a_404_page(client, sign_in):
    sign_in()
    page = page_of(client.get(f"{PORTAL}/thu-tuc/CTH-BS"))
    assert "chưa nhận hồ sơ trực tuyến" in page.text and "form.so_ban" not in page.inputs
    missing = client.get(f"{PORTAL}/thu-tuc/KHONG-CO")
    assert missing.status_code == 404 and "Không có thủ tục với mã này" in page_of(missing).text
    unknown = client.get(f"{PORTAL}/khong/co/trang/nay")
    assert unknown.status_code == 404 and "Không có trang này" in page_of(unknown).text
    assert client.get(f"{PORTAL}/").headers["Location"] == PORTAL


# ---------------------------------------------------------------- submitting
def test_a_post_without_the_csrf_token_is_refused_and_stores_nothing(client, sign_in, forms, dossier_db):
    sign_in()
    client.get(f"{PORTAL}/thu-tuc/HT-XNHN")
    response = client.post(f"{PORTAL}/thu-tuc/HT-XNHN",
                           data={"ward_id": WARD, **{f"form.{k}": v for k, v in forms["marriage_status"].items()}})
    assert response.status_code == 400
    assert "Phiên làm việc đã hết hạn, vui lòng tải lại trang" in page_of(response).text
    forged = client.post(f"{PORTAL}/thu-tuc/HT-XNHN", data={"csrf_token": "from-another-site", "ward_id": WARD})
    assert forged.status_code == 400
    assert dossier_db.dossiers.count_documents({}) == 0


def test_invalid_fields_are_named_beside_them_and_what_was_typed_is_kept(client, sign_in, dossier_db):
    sign_in()
    response = fill(client, "HT-XNHN", {"ho_ten": "Nguyễn Thị Lan", "ngay_sinh": "31/02/1990",
                                        "tinh_trang_hon_nhan": "", "muc_dich_su_dung": ""})
    assert response.status_code == 422
    page = page_of(response)
    assert "Tờ khai chưa đúng" in page.text
    assert "Vui lòng nhập «Tình trạng hôn nhân hiện tại»" in page.errors["form.tinh_trang_hon_nhan"]
    assert "ngày/tháng/năm" in page.errors["form.ngay_sinh"]
    assert "form.ho_ten" not in page.errors
    assert page.inputs["form.ho_ten"]["value"] == "Nguyễn Thị Lan"
    assert page.inputs["form.ngay_sinh"]["value"] == "31/02/1990"
    assert page.inputs["form.ho_ten"].get("aria-invalid") is None
    assert dossier_db.dossiers.count_documents({}) == 0
    for ward_id in ("", "xx-khong-co-phuong-nay"):  # none chosen, or one the page never offered
        no_ward = fill(client, "HT-XNHN", {"ho_ten": "An"}, ward_id=ward_id)
        assert no_ward.status_code == 422 and "Chọn phường" in page_of(no_ward).errors["ward_id"]
    assert dossier_db.dossiers.count_documents({}) == 0


def test_a_valid_form_is_submitted_like_the_api_and_lands_on_the_dossier(client, sign_in, forms, dossier_db):
    sign_in()
    typed = {**forms["marriage_status"], "ngay_sinh": "04/05/1990"}  # typed as people write dates
    dossier_id = dossier_id_of(fill(client, "HT-XNHN", typed))
    stored = dossier_db.dossiers.find_one({"_id": dossier_id})
    assert stored["citizen_id"] == "cit-lan" and stored["channel"] == "online" and stored["ward_id"] == WARD
    assert stored["form"] == forms["marriage_status"]  # the date stored as the API stores it
    assert stored["due_date"] == "2026-03-12" and stored["phone_last4"] == "3456"
    [event] = dossier_db[OUTBOX].find()
    assert event["routing_key"] == "DossierSubmitted"
    assert event["envelope"]["payload"]["dossier_id"] == dossier_id
    page = page_of(client.get(f"{PORTAL}/ho-so/{dossier_id}?da_nop=1"))
    assert stored["receipt_code"] in page.text and "Đã nộp hồ sơ" in page.text
    assert "Đã nộp, chờ tiếp nhận" in page.text and "Thứ Năm, 12/03/2026" in page.text


def test_a_double_tap_submits_one_dossier(client, sign_in, forms, dossier_db):
    sign_in()
    page = page_of(client.get(f"{PORTAL}/thu-tuc/HT-XNHN"))
    data = {"csrf_token": page.inputs["csrf_token"]["value"], "form_token": page.inputs["form_token"]["value"],
            "ward_id": WARD, **{f"form.{k}": v for k, v in forms["marriage_status"].items()}}
    first = dossier_id_of(client.post(f"{PORTAL}/thu-tuc/HT-XNHN", data=data))
    second = dossier_id_of(client.post(f"{PORTAL}/thu-tuc/HT-XNHN", data=data))
    assert first == second
    assert dossier_db.dossiers.count_documents({}) == 1
    # The same form changed after it was sent is not a second dossier either.
    changed = client.post(f"{PORTAL}/thu-tuc/HT-XNHN", data={**data, "form.ho_ten": "Người khác"})
    assert changed.status_code == 422 and "đã được nộp rồi" in page_of(changed).text
    assert dossier_db.dossiers.count_documents({}) == 1


def test_numbers_are_sent_as_numbers_and_words_in_a_number_box_are_refused(client, sign_in, dossier_db):
    sign_in()
    form = {"ho_ten_chong": "Trần Văn Bình", "ngay_sinh_chong": "1990-01-02", "ho_ten_vo": "Nguyễn Thị Lan",
            "ngay_sinh_vo": "1992-03-04", "lan_ket_hon": "hai"}
    refused = fill(client, "HT-KH", form)
    assert refused.status_code == 422
    assert "số nguyên" in page_of(refused).errors["form.lan_ket_hon"]
    dossier_id = dossier_id_of(fill(client, "HT-KH", {**form, "lan_ket_hon": "1"}))
    assert dossier_db.dossiers.find_one({"_id": dossier_id})["form"]["lan_ket_hon"] == 1


def test_lien_thong_submits_the_chain_from_one_form(client, sign_in, forms, dossier_db):
    sign_in()
    page = page_of(client.get(f"{PORTAL}/thu-tuc/HT-KS?lien_thong=1"))
    assert "form.noi_dang_ky_kcb" in page.inputs  # a field of the chained BHYT-TE6
    dossier_id = dossier_id_of(fill(client, "HT-KS", forms["chain"], query="?lien_thong=1"))
    head = dossier_db.dossiers.find_one({"_id": dossier_id})
    assert dossier_db.dossiers.count_documents({"chain_id": head["chain_id"]}) == 3
    shown = page_of(client.get(f"{PORTAL}/ho-so/{dossier_id}"))
    assert "Hồ sơ liên thông" in shown.text and "Đăng ký thường trú" in shown.text


def test_an_officer_or_a_temporary_password_cannot_submit_here(client, sign_in, forms, dossier_db):
    sign_in(must_change_password=True)
    response = fill(client, "HT-XNHN", forms["marriage_status"])
    assert response.status_code == 403 and "Cần đổi mật khẩu" in page_of(response).text
    sign_in("off-hc-1", role="officer", phone_last4=None)
    response = fill(client, "HT-XNHN", forms["marriage_status"])
    assert response.status_code == 403 and "dành cho tài khoản công dân" in page_of(response).text
    assert dossier_db.dossiers.count_documents({}) == 0


# ---------------------------------------------------------------- the citizen's dossiers
def test_my_dossiers_lists_only_mine_newest_first(client, sign_in, submit, token, clock, forms):
    older = submit().json
    clock.on(date(2026, 3, 11))
    newer = submit("HT-KS", form=forms["birth"]).json
    binh = submit(headers=token("citizen", None, subject="cit-binh")).json
    sign_in()
    page = page_of(client.get(f"{PORTAL}/ho-so"))
    assert newer["receipt_code"] in page.text and older["receipt_code"] in page.text
    assert binh["receipt_code"] not in page.text
    assert page.text.index(newer["receipt_code"]) < page.text.index(older["receipt_code"])
    assert "Đã nộp, chờ tiếp nhận" in page.text and "Thứ Năm, 12/03/2026" in page.text


def test_signed_out_my_dossiers_goes_to_sign_in_and_comes_back(client, submit):
    response = client.get(f"{PORTAL}/ho-so")
    assert response.status_code == 303 and response.headers["Location"] == f"/identity/login?next={PORTAL}/ho-so"
    dossier_id = submit().json["dossier_id"]
    client.get(PORTAL)
    pay = client.post(f"{PORTAL}/ho-so/{dossier_id}/le-phi", data={"csrf_token": csrf_of(client)})
    assert pay.headers["Location"] == f"/identity/login?next={PORTAL}/ho-so/{dossier_id}"  # the page, not the POST


def test_another_citizens_dossier_is_not_found_on_every_page(client, sign_in, submit, token):
    binh = submit(headers=token("citizen", None, subject="cit-binh")).json["dossier_id"]
    sign_in()
    for response in (client.get(f"{PORTAL}/ho-so/{binh}"), client.get(f"{PORTAL}/ho-so/{binh}/ket-qua")):
        assert response.status_code == 404
        assert "Không tìm thấy hồ sơ" in page_of(response).text
    csrf = csrf_of(client)
    assert client.post(f"{PORTAL}/ho-so/{binh}/le-phi", data={"csrf_token": csrf}).status_code == 404
    attach = client.post(f"{PORTAL}/ho-so/{binh}/dinh-kem", content_type="multipart/form-data",
                         data={"csrf_token": csrf, "file": (io.BytesIO(PDF), "a.pdf")})
    assert attach.status_code == 404
    assert client.get(f"{PORTAL}/ho-so/khong-co-ho-so-nay").status_code == 404


def test_the_timeline_the_officers_note_and_the_signed_result(client, sign_in, submit, officer, leader,
                                                              pay_at_counter):
    dossier_id = submit().json["dossier_id"]
    sign_in()
    early = client.get(f"{PORTAL}/ho-so/{dossier_id}/ket-qua")
    assert early.status_code == 409 and "kết quả có khi hồ sơ được phê duyệt" in page_of(early).text
    pay_at_counter(dossier_id)

    def act(action, note=None):
        return client.post(f"/dossier/api/v1/dossiers/{dossier_id}/actions", json={"action": action, "note": note},
                           headers=leader if action == "approve" else officer)

    assert act("receive").status_code == 200
    assert act("request_supplement", "Thiếu bản sao CCCD").status_code == 200
    page = page_of(client.get(f"{PORTAL}/ho-so/{dossier_id}"))
    assert "Chờ bổ sung hồ sơ" in page.text and "Thiếu bản sao CCCD" in page.text
    assert "Việc cần làm tiếp theo" in page.text and "Đã nộp phí" in page.text
    for action in ("receive", "start_processing", "approve"):
        assert act(action).status_code == 200
    page = page_of(client.get(f"{PORTAL}/ho-so/{dossier_id}"))
    assert "Đã có kết quả" in page.text
    assert f"{PORTAL}/ho-so/{dossier_id}/ket-qua" in page.links
    for status in ("Đã nộp, chờ tiếp nhận", "Đã tiếp nhận", "Đang giải quyết"):
        assert status in page.text  # the timeline
    result = client.get(f"{PORTAL}/ho-so/{dossier_id}/ket-qua")
    assert result.status_code == 200 and result.mimetype == "application/pdf"
    assert result.data.startswith(b"%PDF") and "attachment" in result.headers["Content-Disposition"]


# ---------------------------------------------------------------- fees
def test_a_level_4_fee_goes_to_the_providers_checkout(client, sign_in, forms):
    sign_in()
    dossier_id = dossier_id_of(fill(client, "HT-XNHN", forms["marriage_status"]))
    page = page_of(client.get(f"{PORTAL}/ho-so/{dossier_id}"))
    assert "Nộp lệ phí trực tuyến" in page.text and "15.000 đồng" in page.text
    pay = client.post(f"{PORTAL}/ho-so/{dossier_id}/le-phi", data={"csrf_token": csrf_of(client)})
    assert pay.status_code == 303 and "/dossier/pay/local/" in pay.headers["Location"]
    again = client.post(f"{PORTAL}/ho-so/{dossier_id}/le-phi", data={"csrf_token": csrf_of(client)})
    assert again.headers["Location"] == pay.headers["Location"]  # the open checkout, not a second one
    payment_path = urlsplit(pay.headers["Location"]).path
    assert client.post(payment_path, data={"answer": "pay"}).status_code == 200
    assert "Đã nộp phí" in page_of(client.get(f"{PORTAL}/ho-so/{dossier_id}")).text
    assert client.post(f"{PORTAL}/ho-so/{dossier_id}/le-phi", data={}).status_code == 400  # no CSRF token


def test_without_online_payment_the_fee_is_paid_at_the_counter(settings, verifier, citizens, wards, clock, dossier_db,
                                                                payment_secret, signing_key, forms):
    app = create_app(settings, verifier=verifier, citizens=citizens, wards=wards, clock=clock,
                     payment_setup=PaymentSetup(None, payment_secret))
    client = app.test_client()
    client.set_cookie(SESSION_COOKIE, signing_key.issue("cit-lan", "citizen", WARD, 600, phone_last4="3456"))
    assert "nộp tại Bộ phận một cửa" in page_of(client.get(f"{PORTAL}/thu-tuc/HT-XNHN")).text
    dossier_id = dossier_id_of(fill(client, "HT-XNHN", forms["marriage_status"]))
    page = page_of(client.get(f"{PORTAL}/ho-so/{dossier_id}"))
    assert "nộp tại Bộ phận một cửa" in page.text and "Nộp lệ phí trực tuyến" not in page.text
    refused = client.post(f"{PORTAL}/ho-so/{dossier_id}/le-phi", data={"csrf_token": csrf_of(client)})
    assert refused.status_code == 409 and "nộp lệ phí tại Bộ phận một cửa" in page_of(refused).text


# ---------------------------------------------------------------- papers
def test_papers_are_attached_with_the_apis_checks(client, sign_in, forms, dossier_db):
    sign_in()
    dossier_id = dossier_id_of(fill(client, "HT-XNHN", forms["marriage_status"]))
    csrf = csrf_of(client)
    url = f"{PORTAL}/ho-so/{dossier_id}/dinh-kem"
    done = client.post(url, content_type="multipart/form-data",
                       data={"csrf_token": csrf, "document": "1", "file": (io.BytesIO(PDF), "to-khai.pdf")})
    assert done.status_code == 303
    [stored] = dossier_db.dossiers.find_one({"_id": dossier_id})["attachments"]
    assert stored["content_type"] == "application/pdf" and stored["uploaded_by"] == "cit-lan"
    assert "to-khai.pdf" in page_of(client.get(f"{PORTAL}/ho-so/{dossier_id}")).text
    renamed = client.post(url, content_type="multipart/form-data",
                          data={"csrf_token": csrf, "file": (io.BytesIO(b"MZ\x90\x00 not a scan"), "anh.pdf")})
    assert renamed.status_code == 415
    assert "Chỉ nhận tệp PDF, JPEG, PNG" in page_of(renamed).errors["file"]
    missing = client.post(url, content_type="multipart/form-data", data={"csrf_token": csrf})
    assert missing.status_code == 422 and "Chọn tệp" in page_of(missing).errors["file"]
    assert len(dossier_db.dossiers.find_one({"_id": dossier_id})["attachments"]) == 1


# ---------------------------------------------------------------- the public lookup
def lookup(client, code, digits, ip="203.0.113.9"):
    if client.get_cookie(CSRF_COOKIE) is None:
        client.get(f"{PORTAL}/tra-cuu")
    return client.post(f"{PORTAL}/tra-cuu", environ_base={"REMOTE_ADDR": ip},
                       data={"csrf_token": csrf_of(client), "receipt_code": code, "phone_last4": digits})


def test_the_lookup_finds_a_dossier_and_says_the_same_for_a_wrong_code_or_wrong_digits(client, submit):
    code = submit().json["receipt_code"]
    found = lookup(client, code.lower().replace("-", " "), "3456")
    assert found.status_code == 200
    page = page_of(found)
    assert code in page.text and "Đã nộp, chờ tiếp nhận" in page.text and "10/03/2026 09:00" in page.text
    wrong_digits, wrong_code = lookup(client, code, "0000"), lookup(client, "DNHC-260310-ZZZZZ", "3456")
    assert wrong_digits.status_code == wrong_code.status_code == 404
    assert "Không tìm thấy hồ sơ" in page_of(wrong_digits).text
    assert page_of(wrong_digits).text.replace(code, "") == page_of(wrong_code).text.replace("DNHC-260310-ZZZZZ", "")
    invalid = lookup(client, "", "12a4")
    assert invalid.status_code == 422
    assert page_of(invalid).errors.keys() == {"receipt_code", "phone_last4"}


def test_the_lookup_page_shares_the_apis_rate_limit(client, submit):
    code = submit().json["receipt_code"]
    for _ in range(LOOKUPS_PER_WINDOW // 2):
        assert client.get("/dossier/api/v1/lookup", query_string={"receipt_code": code, "phone_last4": "3456"},
                          environ_base={"REMOTE_ADDR": "198.51.100.4"}).status_code == 200
    for _ in range(LOOKUPS_PER_WINDOW - LOOKUPS_PER_WINDOW // 2):
        assert lookup(client, code, "3456", ip="198.51.100.4").status_code == 200
    limited = lookup(client, code, "3456", ip="198.51.100.4")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert "tra cứu quá" in page_of(limited).text
    assert lookup(client, code, "3456", ip="198.51.100.5").status_code == 200  # another address
    assert client.post(f"{PORTAL}/tra-cuu", data={"receipt_code": code, "phone_last4": "3456"}).status_code == 400


def test_the_pages_style_sheet_is_served(client):
    response = client.get(f"{PORTAL}/static/portal.css")
    assert response.status_code == 200 and response.mimetype == "text/css"
    assert re.search(r"\.field-error\s*\{", response.get_data(as_text=True))
