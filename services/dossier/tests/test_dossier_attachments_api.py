"""POST/GET /dossiers/{id}/attachments: papers stored with the dossier in GridFS, typed by
their content, bounded in size and number, for the dossier's citizen and its ward's staff."""
from __future__ import annotations

import io
import logging

import pytest

from motcua_dossier import attachments

WARD, OTHER_WARD = "dn-hai-chau", "dn-lien-chieu"
PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40
EXE = b"MZ\x90\x00\x03" + b"\x00" * 300


def upload(client, dossier_id, headers, content=PDF, filename="to-khai.pdf", content_type="application/pdf", **form):
    data = {"file": (io.BytesIO(content), filename, content_type), **form}
    return client.post(f"/dossier/api/v1/dossiers/{dossier_id}/attachments", data=data, headers=headers,
                       content_type="multipart/form-data")


@pytest.fixture
def dossier_id(submit):
    return submit().json["dossier_id"]  # HT-XNHN: 1. "Tờ khai ...", 2. "Bản án ... ly hôn ..."


def test_a_citizen_attaches_a_paper_lists_it_and_downloads_it_byte_for_byte(client, dossier_id, citizen):
    added = upload(client, dossier_id, citizen, document="1")
    assert added.status_code == 201, added.json
    entry = added.json
    assert entry["content_type"] == "application/pdf" and entry["size"] == len(PDF)
    assert entry["filename"] == "to-khai.pdf" and entry["uploaded_by"] == "citizen"
    assert entry["document"].startswith("Tờ khai")  # number 1 of the procedure's required documents

    listed = client.get(f"/dossier/api/v1/dossiers/{dossier_id}/attachments", headers=citizen)
    assert listed.status_code == 200 and listed.json == [entry]
    assert client.get(f"/dossier/api/v1/dossiers/{dossier_id}", headers=citizen).json["attachments"] == [entry]

    got = client.get(f"/dossier/api/v1/dossiers/{dossier_id}/attachments/{entry['attachment_id']}", headers=citizen)
    assert got.status_code == 200 and got.data == PDF
    assert got.mimetype == "application/pdf"
    assert got.headers["Content-Disposition"].startswith("attachment;") and "to-khai.pdf" in got.headers["Content-Disposition"]
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in got.headers["Cache-Control"]


def test_the_type_comes_from_the_content_not_the_name_or_header(client, dossier_id, citizen):
    exe = upload(client, dossier_id, citizen, content=EXE, filename="giay-khai-sinh.pdf", content_type="application/pdf")
    assert exe.status_code == 415 and exe.json["code"] == "unsupported_file_type"
    assert exe.json["allowed_types"] == ["application/pdf", "image/jpeg", "image/png"]
    html = upload(client, dossier_id, citizen, content=b"<html><script>alert(1)</script></html>", filename="a.png",
                  content_type="image/png")
    assert html.status_code == 415

    png = upload(client, dossier_id, citizen, content=PNG, filename="giay-to/ảnh chụp CCCD.pdf",
                 content_type="application/pdf")
    assert png.status_code == 201
    assert png.json["content_type"] == "image/png" and png.json["filename"] == "ảnh chụp CCCD.png"
    jpeg = upload(client, dossier_id, citizen, content=JPEG, filename="../../etc/passwd", content_type="text/plain")
    assert jpeg.status_code == 201 and jpeg.json["content_type"] == "image/jpeg" and jpeg.json["filename"] == "passwd.jpg"
    got = client.get(f"/dossier/api/v1/dossiers/{dossier_id}/attachments/{png.json['attachment_id']}", headers=citizen)
    assert got.mimetype == "image/png" and got.data == PNG
    assert "filename*=UTF-8''" in got.headers["Content-Disposition"]  # the Vietnamese name survives


def test_what_is_not_a_file_upload_is_refused_clearly(client, dossier_id, citizen):
    empty = upload(client, dossier_id, citizen, content=b"")
    assert empty.status_code == 422 and empty.json["code"] == "empty_file"
    assert empty.json["errors"][0]["field"] == "file"
    no_file = client.post(f"/dossier/api/v1/dossiers/{dossier_id}/attachments", data={"document": "1"},
                          headers=citizen, content_type="multipart/form-data")
    assert no_file.status_code == 422 and no_file.json["errors"][0]["field"] == "file"
    as_json = client.post(f"/dossier/api/v1/dossiers/{dossier_id}/attachments", json={"file": "x"}, headers=citizen)
    assert as_json.status_code == 415 and as_json.json["code"] == "unsupported_media_type"
    unknown = upload(client, dossier_id, citizen, document="Sổ đỏ")
    assert unknown.status_code == 422 and unknown.json["code"] == "unknown_document"
    assert unknown.json["errors"][0]["field"] == "document" and "1. Tờ khai" in unknown.json["errors"][0]["message"]
    by_name = upload(client, dossier_id, citizen, document="  tờ khai cấp giấy xác nhận  tình trạng hôn nhân (THEO MẪU) ")
    assert by_name.status_code == 201  # the name, spaces and case aside
    assert by_name.json["document"] == "Tờ khai cấp Giấy xác nhận tình trạng hôn nhân (theo mẫu)"
    assert upload(client, dossier_id, citizen, document="3").json["code"] == "unknown_document"  # only 2 listed
    assert len(client.get(f"/dossier/api/v1/dossiers/{dossier_id}/attachments", headers=citizen).json) == 1


def test_a_file_over_10_mib_is_413_and_not_stored(client, dossier_id, citizen, dossier_db):
    too_big = upload(client, dossier_id, citizen, content=PDF + b"0" * (attachments.MAX_FILE_BYTES + 1 - len(PDF)))
    assert too_big.status_code == 413 and too_big.json["code"] == "file_too_large"
    assert too_big.json["max_bytes"] == 10 * 1024 * 1024
    just_fits = upload(client, dossier_id, citizen, content=PDF + b"0" * (attachments.MAX_FILE_BYTES - len(PDF)))
    assert just_fits.status_code == 201 and just_fits.json["size"] == attachments.MAX_FILE_BYTES
    assert dossier_db["attachments.files"].count_documents({}) == 1


def test_a_dossier_holds_at_most_20_files(client, dossier_id, citizen, officer, dossier_db):
    for n in range(attachments.MAX_FILES_PER_DOSSIER):
        assert upload(client, dossier_id, citizen if n % 2 else officer, filename=f"trang-{n}.pdf").status_code == 201
    one_more = upload(client, dossier_id, citizen)
    assert one_more.status_code == 422 and one_more.json["code"] == "too_many_attachments"
    assert len(client.get(f"/dossier/api/v1/dossiers/{dossier_id}/attachments", headers=officer).json) == 20
    assert dossier_db["attachments.files"].count_documents({}) == 20


def test_the_limit_holds_when_the_dossier_fills_up_between_check_and_write(client, dossier_id, citizen, dossier_db):
    # Another upload won the race for the last place: the conditional write refuses this
    # one and its file is removed again.
    from motcua_dossier import store

    dossier = dossier_db.dossiers.find_one({"_id": dossier_id})
    dossier_db.dossiers.update_one({"_id": dossier_id}, {"$set": {"attachments": [{"attachment_id": f"x{i}"}
                                                                                  for i in range(20)]}})
    entry = {"attachment_id": "late-one", "filename": "a.pdf", "content_type": "application/pdf"}
    assert store.add_attachment(dossier_db, dossier, PDF, entry, ("submitted",), 20) is None
    assert dossier_db["attachments.files"].count_documents({}) == 0


def test_who_may_attach_and_download(client, dossier_id, citizen, officer, token):
    other_citizen = token("citizen", None, subject="cit-binh")
    other_ward = token("officer", OTHER_WARD)
    assert upload(client, dossier_id, other_citizen).status_code == 403
    assert upload(client, dossier_id, other_ward).status_code == 403
    assert upload(client, dossier_id, token("monitor")).status_code == 403
    assert upload(client, dossier_id, {}).status_code == 401
    by_officer = upload(client, dossier_id, officer, document="2")
    assert by_officer.status_code == 201 and by_officer.json["uploaded_by"] == "officer"
    by_ward_admin = upload(client, dossier_id, token("ward_admin", WARD))
    assert by_ward_admin.status_code == 201

    file_url = f"/dossier/api/v1/dossiers/{dossier_id}/attachments/{by_officer.json['attachment_id']}"
    assert client.get(file_url, headers=citizen).status_code == 200  # the owner reads what staff attached
    for stranger in (other_citizen, other_ward, token("monitor")):
        assert client.get(file_url, headers=stranger).status_code == 403
        assert client.get(f"/dossier/api/v1/dossiers/{dossier_id}/attachments", headers=stranger).status_code == 403
    assert client.get("/dossier/api/v1/dossiers/no-such/attachments", headers=officer).status_code == 404


def test_an_attachment_is_reached_only_through_its_own_dossier(client, submit, dossier_id, citizen, token):
    theirs = submit(headers=token("citizen", None, subject="cit-binh")).json["dossier_id"]
    their_file = upload(client, theirs, token("citizen", None, subject="cit-binh")).json["attachment_id"]
    # cit-lan owns dossier_id but not the file: pairing her dossier with its id finds nothing.
    assert client.get(f"/dossier/api/v1/dossiers/{dossier_id}/attachments/{their_file}", headers=citizen).status_code == 404


def test_nothing_is_attached_once_the_dossier_is_finished(client, dossier_id, citizen, officer):
    assert upload(client, dossier_id, citizen).status_code == 201
    for action in ("receive", "reject"):
        assert client.post(f"/dossier/api/v1/dossiers/{dossier_id}/actions",
                           json={"action": action, "note": "Không thuộc thẩm quyền"}, headers=officer).status_code == 200
    closed = upload(client, dossier_id, officer)
    assert closed.status_code == 409 and closed.json["code"] == "dossier_closed"
    # what was attached stays readable: it is the record of what was decided
    assert len(client.get(f"/dossier/api/v1/dossiers/{dossier_id}/attachments", headers=citizen).json) == 1


def test_files_and_their_names_stay_out_of_the_log(client, dossier_id, citizen, caplog, dossier_db):
    from motcua_common.outbox import OUTBOX

    events_before = dossier_db[OUTBOX].count_documents({})
    with caplog.at_level(logging.DEBUG, logger="motcua_dossier"):
        assert upload(client, dossier_id, citizen, filename="CCCD Nguyen Van An 048190000123.pdf").status_code == 201
    for record in caplog.records:
        if not record.name.startswith("motcua"):
            continue  # the database driver's own debug lines are off in service (INFO)
        text = record.getMessage() + repr(record.__dict__)
        assert "048190000123" not in text and "Nguyen Van An" not in text and "%PDF" not in text
    assert dossier_db[OUTBOX].count_documents({}) == events_before  # no file travels in an event


@pytest.mark.parametrize("sent, media_type, stored", [
    ("C:\\fakepath\\Giấy khai sinh.PDF", "application/pdf", "Giấy khai sinh.pdf"),
    ("scan.exe", "application/pdf", "scan.pdf"),
    ('a"; filename="evil.html', "image/png", "a filename=evil.png"),
    ("", "image/jpeg", "tep-dinh-kem.jpg"),
    ("...", "image/png", "tep-dinh-kem.png"),
    ("x" * 500 + ".pdf", "application/pdf", "x" * 115 + ".pdf"),
])
def test_safe_filenames(sent, media_type, stored):
    assert attachments.safe_filename(sent, media_type) == stored
