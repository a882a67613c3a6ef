"""Results anyone can check: the result PDF carries, under a QR code, its verification
address <base>/dossier/verify/<token>; that address says to anyone whether the result is
valid (a Vietnamese page, or JSON), re-verifying the stored signed file each time; an
unknown token is a 404 page, never a 5xx."""
from __future__ import annotations

import io
import re

import gridfs
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from motcua_dossier import deps as deps_module, verification

WARD = "dn-hai-chau"


def act(client, dossier_id, action, headers, note=None):
    body = {"action": action} if note is None else {"action": action, "note": note}
    return client.post(f"/dossier/api/v1/dossiers/{dossier_id}/actions", json=body, headers=headers)


@pytest.fixture
def approved(client, submit, officer, leader, dossier_db):
    """A dossier approved by the ward's leader: (dossier, its signed result PDF)."""
    dossier_id = submit().json["dossier_id"]
    assert client.post(f"/dossier/api/v1/dossiers/{dossier_id}/payments", json={"method": "counter"},
                       headers=officer).status_code == 201
    for action in ("receive", "start_processing"):
        assert act(client, dossier_id, action, officer).status_code == 200
    assert act(client, dossier_id, "approve", leader, note="Đủ điều kiện").status_code == 200
    pdf = client.get(f"/dossier/api/v1/dossiers/{dossier_id}/result", headers=officer).data
    return dossier_db.dossiers.find_one({"_id": dossier_id}), pdf


def link_uris(pdf: bytes) -> list[str]:
    """The URI links of the PDF's pages (what a reader opens when the address is clicked)."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    uris = []
    for page in reader.root["/Pages"]["/Kids"]:
        for annotation in page.get_object().get("/Annots", []):
            action = annotation.get_object().get("/A")
            if action is not None and "/URI" in action:
                uris.append(str(action["/URI"]))
    return uris


def test_the_token_is_random_url_safe_and_long_enough():
    tokens = {verification.new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", token)  # 24 random bytes: 192 bits


def test_the_result_prints_its_verification_address_under_a_qr_code_and_the_signature_covers_it(
        client, approved, deps):
    dossier, pdf = approved
    token = dossier["result"]["verify_token"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", token)
    # No MOTCUA_PUBLIC_URL in the tests: the address the approving request came in on.
    address = f"http://localhost/dossier/verify/{token}"
    assert link_uris(pdf) == [address]
    # The QR code and the address are in the one revision the signature covers (valid
    # means: one signature, over the entire file, nothing appended after it).
    verified = client.post("/dossier/api/v1/results/verify", data=pdf, content_type="application/pdf").json
    assert verified["valid"] is True and verified["issued_here"] is True
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    [signature] = reader.embedded_signatures
    assert signature.signed_revision == reader.xrefs.total_revisions - 1  # the last: it covers the page


def test_the_qr_code_encodes_the_address():
    from reportlab.graphics.barcode.qr import QrCodeWidget

    from motcua_dossier.result_pdf import qr_code

    drawing = qr_code("https://motcua.example.vn/dossier/verify/abc")
    [widget] = [shape for shape in drawing.contents if isinstance(shape, QrCodeWidget)]
    assert widget.value == "https://motcua.example.vn/dossier/verify/abc"


def test_the_public_address_comes_from_MOTCUA_PUBLIC_URL():
    assert deps_module.public_url_from_env({"MOTCUA_PUBLIC_URL": "https://motcua.danang.gov.vn/"}) == \
        "https://motcua.danang.gov.vn"
    assert deps_module.public_url_from_env({}) is None
    with pytest.raises(ValueError):
        deps_module.public_url_from_env({"MOTCUA_PUBLIC_URL": "motcua.danang.gov.vn"})


def test_with_a_public_url_the_result_names_it(settings, verifier, citizens, wards, officers, clock, dossier_db,
                                               payment_setup, token, forms, monkeypatch):
    from motcua_dossier.api import create_app

    monkeypatch.setenv("MOTCUA_PUBLIC_URL", "https://motcua.danang.gov.vn")
    app = create_app(settings, verifier=verifier, citizens=citizens, wards=wards, officers=officers, clock=clock,
                     payment_setup=payment_setup)
    client = app.test_client()
    officer, leader = token("officer", WARD, subject="off-hc-1"), token("leader", WARD, subject="lead-hc")
    dossier_id = client.post("/dossier/api/v1/dossiers", json={
        "procedure_code": "HT-XNHN", "ward_id": WARD, "form": forms["marriage_status"]},
        headers=token("citizen", None, subject="cit-lan")).json["dossier_id"]
    client.post(f"/dossier/api/v1/dossiers/{dossier_id}/payments", json={"method": "counter"}, headers=officer)
    for action, who in (("receive", officer), ("start_processing", officer), ("approve", leader)):
        assert act(client, dossier_id, action, who).status_code == 200
    pdf = client.get(f"/dossier/api/v1/dossiers/{dossier_id}/result", headers=officer).data
    stored = dossier_db.dossiers.find_one({"_id": dossier_id})["result"]["verify_token"]
    assert link_uris(pdf) == [f"https://motcua.danang.gov.vn/dossier/verify/{stored}"]


def test_anyone_sees_a_valid_result_on_its_page_and_as_json(client, approved):
    dossier, _pdf = approved
    url = f"/dossier/verify/{dossier['result']['verify_token']}"
    page = client.get(url)  # nobody signed in
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'data-valid="true"' in html and "Kết quả hợp lệ" in html
    assert dossier["receipt_code"] in html
    assert "Cấp Giấy xác nhận tình trạng hôn nhân" in html and "HT-XNHN" in html
    assert "Phường Hải Châu" in html
    assert "10/03/2026" in html  # signed on the day of the approval (the test clock's day)
    assert "Nguyễn Thị Lan" not in html  # nothing personal: the form stays private
    assert page.headers["Cache-Control"] == "no-store"

    answer = client.get(url + "?format=json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    body = answer.json
    assert {k: body[k] for k in ("valid", "receipt_code", "procedure_code", "ward_id")} == {
        "valid": True, "receipt_code": dossier["receipt_code"], "procedure_code": "HT-XNHN", "ward_id": WARD}
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", body["signed_at"])
    assert "Nguyễn Thị Lan" not in answer.get_data(as_text=True)


def _replace_stored_file(db, dossier: dict, content: bytes) -> None:
    bucket = gridfs.GridFSBucket(db, bucket_name="results")
    file_id = dossier["result"]["file_id"]
    bucket.delete(file_id)
    bucket.upload_from_stream_with_id(file_id, f"{dossier['receipt_code']}.pdf", content)


def test_a_stored_result_tampered_with_is_shown_invalid(client, approved, dossier_db):
    dossier, pdf = approved
    changed = bytearray(pdf)
    changed[len(pdf) // 5] ^= 0x01
    _replace_stored_file(dossier_db, dossier, bytes(changed))
    url = f"/dossier/verify/{dossier['result']['verify_token']}"
    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-valid="false"' in html and "Kết quả không hợp lệ" in html
    assert dossier["receipt_code"] in html  # which result it is, still
    assert client.get(url + "?format=json").json["valid"] is False


def test_a_stored_file_swapped_for_another_valid_result_is_invalid(client, approved, submit, officer, leader,
                                                                   dossier_db):
    dossier, _pdf = approved
    # Another validly signed result of the same ward: a valid signature, but not this result.
    other_id = submit().json["dossier_id"]
    client.post(f"/dossier/api/v1/dossiers/{other_id}/payments", json={"method": "counter"}, headers=officer)
    for action, who in (("receive", officer), ("start_processing", officer), ("approve", leader)):
        assert act(client, other_id, action, who).status_code == 200
    other_pdf = client.get(f"/dossier/api/v1/dossiers/{other_id}/result", headers=officer).data
    _replace_stored_file(dossier_db, dossier, other_pdf)
    assert client.get(f"/dossier/verify/{dossier['result']['verify_token']}?format=json").json["valid"] is False


@pytest.mark.parametrize("unknown", ["A" * 32, "x", "not a token!", "a" * 200, "%00", "..%2f..%2fetc"])
def test_an_unknown_token_is_a_404_page_never_an_error(client, approved, unknown):
    page = client.get(f"/dossier/verify/{unknown}")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "Không tìm thấy kết quả" in page.get_data(as_text=True)
    answer = client.get(f"/dossier/verify/{unknown}?format=json")
    assert answer.status_code == 404 and answer.json["code"] == "not_found"


def test_a_result_issued_before_tokens_has_no_address_but_still_verifies_by_upload(client, approved, dossier_db):
    dossier, pdf = approved
    dossier_db.dossiers.update_one({"_id": dossier["_id"]}, {"$unset": {"result.verify_token": ""}})
    assert client.get(f"/dossier/verify/{dossier['result']['verify_token']}").status_code == 404
    verified = client.post("/dossier/api/v1/results/verify", data=pdf, content_type="application/pdf")
    assert verified.status_code == 200 and verified.json["valid"] is True
