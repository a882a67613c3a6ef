"""dossier's audit trail, through the API against the SecantusDB server: officers' actions
and assignments are on the hash-chained audit_log in the same write as the timeline, a
staff read of a dossier and a staff download of a scanned paper are recorded (the
citizen's own are not), nothing of the citizen's data is in a record, and the retention of
scanned papers of long-closed dossiers removes the files behind an audited purge."""
from __future__ import annotations

import io
from dataclasses import replace
from datetime import timedelta

from motcua_common import audit
from motcua_dossier import bootstrap, store

WARD = "dn-hai-chau"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40


def upload(client, dossier_id, headers, filename="CCCD Nguyễn Thị Lan.png"):
    data = {"file": (io.BytesIO(PNG), filename, "image/png"), "document": "1"}
    response = client.post(f"/dossier/api/v1/dossiers/{dossier_id}/attachments", data=data, headers=headers,
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.json
    return response.json


def act(client, dossier_id, action, headers, **body):
    response = client.post(f"/dossier/api/v1/dossiers/{dossier_id}/actions", json={"action": action, **body},
                           headers=headers)
    assert response.status_code == 200, response.json
    return response


def chain(db, **query):
    return list(audit.records(db, query))


def test_staff_reads_and_downloads_are_recorded_the_owners_are_not(client, submit, citizen, officer, dossier_db):
    dossier_id = submit().json["dossier_id"]
    paper = upload(client, dossier_id, citizen)
    assert client.get(f"/dossier/api/v1/dossiers/{dossier_id}", headers=citizen).status_code == 200
    got = client.get(f"/dossier/api/v1/dossiers/{dossier_id}/attachments/{paper['attachment_id']}", headers=citizen)
    assert got.status_code == 200
    assert chain(dossier_db) == []  # the citizen's own reads and upload: nothing on the audit chain

    assert client.get(f"/dossier/api/v1/dossiers/{dossier_id}", headers=officer).status_code == 200
    got = client.get(f"/dossier/api/v1/dossiers/{dossier_id}/attachments/{paper['attachment_id']}", headers=officer)
    assert got.status_code == 200 and got.data == PNG
    read, download = chain(dossier_db)
    assert (read["action"], read["actor_id"], read["actor_role"], read["subject_type"], read["subject_id"],
            read["ward_id"]) == ("read_dossier", "off-hc-1", "officer", "dossier", dossier_id, WARD)
    assert {"form", "citizen_id", "attachments"} <= set(read["details"]["fields"])
    assert read["details"]["via"] == "api"
    assert download["action"] == "download_attachment" and download["details"]["attachment_id"] == paper["attachment_id"]
    text = str(chain(dossier_db))
    stored = dossier_db.dossiers.find_one({"_id": dossier_id})
    for personal in ("Nguyễn Thị Lan", stored.get("phone_last4") or "no-digits", *map(str, stored["form"].values())):
        assert personal not in text
    assert audit.verify(dossier_db) == (True, None, 2)


def test_actions_and_assignments_are_audited_with_the_timeline(client, submit, officer, leader, dossier_db,
                                                              pay_at_counter):
    dossier_id = submit().json["dossier_id"]
    pay_at_counter(dossier_id)
    act(client, dossier_id, "receive", officer)
    assigned = client.post(f"/dossier/api/v1/dossiers/{dossier_id}/assign", json={"officer_id": "off-hc-2"},
                           headers=officer)
    assert assigned.status_code == 200, assigned.json
    act(client, dossier_id, "start_processing", officer)
    act(client, dossier_id, "approve", leader)
    records = chain(dossier_db, subject_id=dossier_id)
    assert [(r["action"], r["actor_id"]) for r in records] == [
        ("action:receive", "off-hc-1"), ("assign", "off-hc-1"), ("action:start_processing", "off-hc-1"),
        ("action:approve", "lead-hc-chutich")]
    receive = records[0]
    assert receive["details"]["from_status"] == "submitted" and receive["details"]["to_status"] == "received"
    stored = dossier_db.dossiers.find_one({"_id": dossier_id})
    assert receive["details"]["event_id"] == stored["history"][1]["event_id"]  # the timeline's step
    assert records[1]["details"]["assignee_id"] == "off-hc-2"
    assert audit.verify(dossier_db)[0] is True


def test_a_refused_action_leaves_no_audit_record(client, submit, officer, dossier_db):
    dossier_id = submit().json["dossier_id"]
    refused = client.post(f"/dossier/api/v1/dossiers/{dossier_id}/actions", json={"action": "approve"},
                          headers=officer)
    assert refused.status_code in (403, 409)
    assert chain(dossier_db) == []


def test_an_officers_upload_is_audited(client, submit, officer, dossier_db):
    dossier_id = submit().json["dossier_id"]
    paper = upload(client, dossier_id, officer, filename="scan.png")
    [record] = chain(dossier_db)
    assert record["action"] == "attach" and record["details"]["attachment_id"] == paper["attachment_id"]
    assert "scan.png" not in str(record)


def test_papers_of_long_closed_dossiers_are_removed_behind_an_audited_purge(client, submit, citizen, officer, leader,
                                                                          dossier_db, pay_at_counter, settings, clock):
    closed = submit().json["dossier_id"]
    open_ = submit().json["dossier_id"]
    old_paper = upload(client, closed, citizen)
    kept_paper = upload(client, open_, citizen)
    pay_at_counter(closed)
    for action, who in (("receive", officer), ("start_processing", officer), ("approve", leader), ("return", officer)):
        act(client, closed, action, who)
    # five years and a day later
    later = clock.now() + timedelta(days=5 * 365 + 1)
    dossier_db.dossiers.update_many({}, {"$set": {"updated_at": clock.now()}})
    purged = store.prune_closed_attachments(dossier_db, later - timedelta(days=5 * 365), later)
    assert purged == 1
    gone = client.get(f"/dossier/api/v1/dossiers/{closed}/attachments/{old_paper['attachment_id']}", headers=citizen)
    assert gone.status_code == 404
    still = client.get(f"/dossier/api/v1/dossiers/{open_}/attachments/{kept_paper['attachment_id']}", headers=citizen)
    assert still.status_code == 200
    stored = dossier_db.dossiers.find_one({"_id": closed})
    assert stored["attachments_purged_at"] and stored["attachments"][0]["filename"] == store.PURGED_FILENAME
    assert stored["attachments"][0]["attachment_id"] == old_paper["attachment_id"]
    assert len(stored["attachments"][0]["sha256"]) == 64  # the digest stays: what was held can still be proven
    [record] = chain(dossier_db, action="purge_attachments")
    assert record["subject_id"] == closed and record["details"]["attachment_ids"] == [old_paper["attachment_id"]]
    assert store.prune_closed_attachments(dossier_db, later - timedelta(days=5 * 365), later) == 0
    assert audit.verify(dossier_db)[0] is True
    # prepare applies the retention on every start, with the configured period
    short = replace(settings, extra={"MOTCUA_RETENTION_ATTACHMENTS_DAYS": "0", "MOTCUA_RETENTION_AUDIT_DAYS": "0"})
    assert bootstrap.apply_retention(short, dossier_db) == {"attachments": 0, "audit": 0}
