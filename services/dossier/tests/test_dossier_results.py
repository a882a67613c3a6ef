"""Signed results (R8): issued at approval, downloaded by the owner and the ward's staff,
verified by anyone; a changed byte, an appended revision or a foreign authority fails."""
from __future__ import annotations

import io
from datetime import date, datetime, timezone

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from motcua_dossier import results
from motcua_dossier.result_pdf import ResultContent, render
from motcua_dossier.signing_keys import ResultKeys

WARD, OTHER_WARD = "dn-hai-chau", "dn-lien-chieu"
CODE = "DNHC-260310-7KQ4M"


@pytest.fixture
def keys(tmp_path):
    return ResultKeys(tmp_path / "ca.pem", tmp_path / "wards")


@pytest.fixture
def signed(keys):
    content = ResultContent(CODE, "Cấp Giấy xác nhận tình trạng hôn nhân", "Phường Hải Châu", date(2026, 3, 10),
                            datetime(2026, 3, 11, 9, 30), (("Họ, chữ đệm và tên", "Nguyễn Thị Lan"),))
    pair = keys.for_ward(WARD, "Phường Hải Châu")
    return results.sign(render(content), pair, keys.authority, CODE, "Phường Hải Châu")


def test_a_signed_result_verifies_and_names_its_signer(keys, signed):
    verification = results.verify(signed, keys.authority)
    assert verification.valid, verification.reason
    assert verification.receipt_code == CODE
    assert verification.signed_by == "Ủy ban nhân dân Phường Hải Châu"
    assert abs((verification.signed_at - datetime.now(timezone.utc)).total_seconds()) < 300


def test_the_vietnamese_font_is_embedded(signed):
    assert b"DejaVuSans" in signed and b"/FontFile2" in signed


def _flip(pdf: bytes, at: int) -> bytes:
    changed = bytearray(pdf)
    changed[at] ^= 0x01
    return bytes(changed)


@pytest.mark.parametrize("where", [0.2, 0.5, 0.7])
def test_a_changed_byte_invalidates_the_result(keys, signed, where):
    # Anywhere in the signed content (the signature's own bytes are the hex /Contents).
    at = int(len(signed) * where)
    contents = signed.index(b"/Contents <")
    if contents <= at < contents + 20000:
        at = contents - 50
    verification = results.verify(_flip(signed, at), keys.authority)
    assert verification.valid is False


def test_a_revision_appended_after_signing_invalidates_the_result(keys, signed):
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    info = writer.trailer["/Info"].get_object() if "/Info" in writer.trailer else writer.set_info(generic.DictionaryObject())
    info[generic.NameObject("/Subject")] = generic.TextStringObject("Mã hồ sơ: DNHC-260310-AAAAA")
    writer.update_container(info)
    out = io.BytesIO()
    writer.write(out)
    verification = results.verify(out.getvalue(), keys.authority)
    assert verification.valid is False
    assert "sau khi ký" in verification.reason


def test_a_result_signed_under_another_authority_is_not_trusted(tmp_path, signed):
    stranger = ResultKeys(tmp_path / "other-ca.pem", tmp_path / "other-wards")
    verification = results.verify(signed, stranger.authority)
    assert verification.valid is False and "tổ chức cấp chứng thư" in verification.reason


def test_garbage_and_unsigned_pdfs_are_invalid_not_errors(keys):
    assert results.verify(b"not a pdf at all", keys.authority).valid is False
    unsigned = render(ResultContent(CODE, "Thủ tục", "Phường Hải Châu", date(2026, 3, 10), datetime(2026, 3, 11), ()))
    verification = results.verify(unsigned, keys.authority)
    assert verification.valid is False and verification.receipt_code == CODE
    assert PdfFileReader(io.BytesIO(unsigned)).embedded_signatures == []


def test_processes_sharing_the_data_dir_share_one_authority(tmp_path):
    first = ResultKeys(tmp_path / "ca.pem", tmp_path / "wards")
    second = ResultKeys(tmp_path / "ca.pem", tmp_path / "wards")
    assert first.authority == second.authority
    assert first.for_ward(WARD, "Phường Hải Châu").certificate == second.for_ward(WARD, "Phường Hải Châu").certificate
    assert (tmp_path / "ca.pem").stat().st_mode & 0o077 == 0


def test_the_authority_can_come_from_a_secret(tmp_path, settings):
    secret = ResultKeys(tmp_path / "secret" / "ca.pem", tmp_path / "unused")
    authority = secret.authority
    keys = ResultKeys.from_settings(settings, env={"MOTCUA_RESULT_CA_FILE": str(tmp_path / "secret" / "ca.pem")})
    assert keys.authority == authority
    ward_pair = keys.for_ward(WARD, "Phường Hải Châu")
    assert ward_pair.certificate.issuer == authority.subject


# ---------------------------------------------------------------- through HTTP
def act(client, dossier_id, action, headers, note=None):
    body = {"action": action} if note is None else {"action": action, "note": note}
    return client.post(f"/dossier/api/v1/dossiers/{dossier_id}/actions", json=body, headers=headers)


def approved(client, submit, officer, leader) -> str:
    """Paid, received and processed by `officer`; approved by the ward's leader."""
    dossier_id = submit().json["dossier_id"]
    paid = client.post(f"/dossier/api/v1/dossiers/{dossier_id}/payments", json={"method": "counter"}, headers=officer)
    assert paid.status_code == 201  # HT-XNHN is level 4 with a fee
    for action in ("receive", "start_processing"):
        assert act(client, dossier_id, action, officer).status_code == 200
    assert act(client, dossier_id, "approve", leader, note="Đủ điều kiện cấp").status_code == 200
    return dossier_id


def test_approval_issues_a_signed_result_the_citizen_downloads_and_anyone_verifies(client, submit, officer, leader,
                                                                                    citizen, dossier_db):
    dossier_id = approved(client, submit, officer, leader)
    response = client.get(f"/dossier/api/v1/dossiers/{dossier_id}/result", headers=citizen)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    receipt_code = dossier_db.dossiers.find_one({"_id": dossier_id})["receipt_code"]
    assert receipt_code in response.headers["Content-Disposition"]
    pdf = response.data

    verified = client.post("/dossier/api/v1/results/verify", data=pdf, content_type="application/pdf")
    assert verified.status_code == 200
    assert verified.json["valid"] is True and verified.json["issued_here"] is True
    assert verified.json["receipt_code"] == receipt_code
    assert verified.json["signed_by"] == "Ủy ban nhân dân Phường Hải Châu"
    assert verified.json["signed_at"].endswith("Z")

    tampered = client.post("/dossier/api/v1/results/verify", data=_flip(pdf, len(pdf) // 5),
                           content_type="application/pdf")
    assert tampered.status_code == 200 and tampered.json["valid"] is False and tampered.json["issued_here"] is False


def test_the_result_stays_downloadable_after_return(client, submit, officer, leader):
    dossier_id = approved(client, submit, officer, leader)
    assert act(client, dossier_id, "return", officer).status_code == 200
    assert client.get(f"/dossier/api/v1/dossiers/{dossier_id}/result", headers=officer).status_code == 200


def test_no_result_before_approval(client, submit, officer):
    dossier_id = submit().json["dossier_id"]
    response = client.get(f"/dossier/api/v1/dossiers/{dossier_id}/result", headers=officer)
    assert response.status_code == 409 and response.json["code"] == "result_not_ready"
    assert response.json["current_status"] == "submitted"


def test_who_may_download_a_result(client, submit, officer, leader, token, citizen):
    dossier_id = approved(client, submit, officer, leader)
    url = f"/dossier/api/v1/dossiers/{dossier_id}/result"
    expected = {
        "owner": (citizen, 200),
        "officer of the ward": (officer, 200),
        "ward admin of the ward": (token("ward_admin", WARD), 200),
        "admin": (token("admin"), 200),
        "another citizen": (token("citizen", None, subject="cit-binh"), 403),
        "officer of another ward": (token("officer", OTHER_WARD), 403),
        "monitor": (token("monitor"), 403),
        "nobody": ({}, 401),
    }
    answers = {who: client.get(url, headers=headers).status_code for who, (headers, _) in expected.items()}
    assert answers == {who: status for who, (_, status) in expected.items()}
    assert client.get("/dossier/api/v1/dossiers/nope/result", headers=officer).status_code == 404


def test_verify_wants_a_pdf_body(client):
    assert client.post("/dossier/api/v1/results/verify", json={"pdf": "x"}).json["code"] == "unsupported_media_type"
    empty = client.post("/dossier/api/v1/results/verify", data=b"", content_type="application/pdf")
    assert empty.status_code == 422
    garbage = client.post("/dossier/api/v1/results/verify", data=b"%PDF-1.7 junk", content_type="application/pdf")
    assert garbage.status_code == 200 and garbage.json["valid"] is False


def test_hidden_characters_never_reach_the_signed_page(monkeypatch):
    """Form text stored before submission screened it (or reaching the store another way)
    is printed without its bidirectional overrides and controls: the page a reader sees is
    the text the ward signed."""
    from motcua_dossier import result_pdf
    shown = []

    class Recorded(result_pdf.Paragraph):
        def __init__(self, text, *args, **kwargs):
            shown.append(text)
            super().__init__(text, *args, **kwargs)

    monkeypatch.setattr(result_pdf, "Paragraph", Recorded)
    render(ResultContent(CODE, "Thủ tục\u2066", "Phường Hải Châu", date(2026, 3, 10), datetime(2026, 3, 11),
                         (("Họ và tên", "Nguyễn \u202eThị\u202c Lan\x1b[31m"), ("Địa chỉ", "12 Lê Lợi\n\tHải Châu")),
                         note="Đã \u200bduyệt"))
    page = "\n".join(shown)
    assert "Nguyễn Thị Lan[31m" in page and "12 Lê Lợi Hải Châu" in page and "Ghi chú: Đã duyệt" in page
    assert not any(ch in page for ch in "\u202e\u202c\u2066\u200b\x1b\t")
