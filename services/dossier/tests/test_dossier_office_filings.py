"""Dossiers a ward office took while cut off from the centre, accepted as counter filings
when its link returns (office_filings.py): the office's receipt code kept, once only, the
due date counted by the centre's calendar from the day the office received it."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

import pytest

from motcua_common import rpc
from motcua_common.outbox import OUTBOX
from motcua_dossier import domain, office_filings, store

WARD = "dn-hai-chau"
FRIDAY = date(2026, 3, 6)  # the office's day: the centre's clock (fixture) stands on Tuesday 10 March


def filing(forms, national_id="048190000123", **changes) -> dict:
    base = {
        "filing_id": str(uuid.uuid4()), "ward_id": WARD,
        "receipt_code": domain.new_office_receipt_code(WARD, FRIDAY), "procedure_code": "HT-XNHN",
        "form": forms["marriage_status"], "papers_received": [],
        "citizen": {"national_id": national_id, "full_name": "Trần Văn Bình", "date_of_birth": "04/05/1990",
                    "phone": "0905 111 222"},
        "officer_id": "off-hc-1", "officer_username": "canbo.haichau",
        "filed_at": datetime(2026, 3, 6, 3, 15, tzinfo=timezone.utc).isoformat(), "received_on": FRIDAY.isoformat(),
        "provisional_due_date": "2026-03-09",
    }
    base.update(changes)
    return base


def test_a_filing_becomes_a_counter_dossier_once_with_the_offices_receipt_code(deps, forms):
    sent = filing(forms)
    assert office_filings.accept_or_keep(deps, sent) == "accepted"
    assert office_filings.accept_or_keep(deps, dict(sent)) == "already", "delivered again: nothing new"
    dossier = store.get_dossier(deps.db, sent["filing_id"])
    assert dossier["receipt_code"] == sent["receipt_code"] and dossier["channel"] == "counter"
    assert dossier["citizen_id"] == "cit-lan", "the citizen's account, found by national id at the centre"
    assert dossier["received_on"] == "2026-03-06", "received the day the office took it, not the day it arrived"
    assert dossier["submitted_by"] == "off-hc-1"
    # HT-XNHN takes the ward 2 working days: from Friday, the weekend does not count.
    assert dossier["due_date"] == "2026-03-10" and dossier["office_filing"]["due_date_moved"] is True
    announced = [d["envelope"] for d in deps.db[OUTBOX].find({"routing_key": "DossierSubmitted"})
                 if d["envelope"]["payload"]["dossier_id"] == sent["filing_id"]]
    assert len(announced) == 1 and announced[0]["payload"]["receipt_code"] == sent["receipt_code"]
    assert "048190000123" not in str(announced[0]), "no national id in the event"


def test_a_citizen_without_an_account_gets_a_counter_record(deps, forms):
    sent = filing(forms, national_id="048199000555")
    assert office_filings.accept(deps, sent) == "accepted"
    dossier = store.get_dossier(deps.db, sent["filing_id"])
    assert dossier["citizen_id"] == "" and dossier["counter_record_id"]
    assert dossier["phone_last4"] == "1222" and dossier["citizen_name"] == "Trần Văn Bình"


def test_what_the_centre_cannot_take_is_kept_with_the_reason_and_identity_down_is_retried(deps, citizens, forms):
    centre_code = filing(forms, receipt_code=domain.new_receipt_code(WARD, FRIDAY))
    other_ward = filing(forms, receipt_code=domain.new_office_receipt_code("hn-ba-dinh", FRIDAY))
    for refused in (centre_code, other_ward, "not a filing"):
        assert office_filings.accept_or_keep(deps, refused) == "refused"
    assert deps.db[office_filings.REFUSED].count_documents({}) == 3
    assert store.get_dossier(deps.db, centre_code["filing_id"]) is None
    citizens.unavailable = True
    with pytest.raises(rpc.RpcUnavailable):
        office_filings.accept_or_keep(deps, filing(forms))


def test_the_desk_shows_a_dossier_was_taken_offline_and_that_its_date_moved(deps, forms, client, signing_key):
    from motcua_common.web_session import SESSION_COOKIE

    sent = filing(forms)
    office_filings.accept(deps, sent)
    client.set_cookie(SESSION_COOKIE, signing_key.issue("off-hc-1", "officer", WARD, 600, username="canbo.haichau"))
    page = client.get(f"/dossier/desk/{WARD}/ho-so/{sent['filing_id']}").get_data(as_text=True)
    assert "data-office-filing" in page and "tiếp nhận ngoại tuyến" in page and sent["receipt_code"] in page
    assert "09/03/2026" in page and "data-due-moved" in page, "the date printed at the office, and that it moved"
