"""The worker's handlers as plain functions against the SecantusDB server: what each event
records, in any order, at most once."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from motcua_common.events import new_event, parse_envelope
from motcua_rating import opportunities
from motcua_rating.deps import build_deps
from motcua_rating.bootstrap import prepare
from motcua_rating.store import OPPORTUNITIES, find_opportunity

WARD = "tn-song-cong"
AT = "2026-07-15T03:00:00.000Z"
AT_TIME = datetime(2026, 7, 15, 3, 0, tzinfo=timezone.utc)


@pytest.fixture
def db(settings, service_db):
    prepare(settings, demo=False)
    return service_db("rating")


@pytest.fixture
def deps(settings, db):
    return build_deps(settings, db=db, verifier=None)


def event(event_type: str, payload: dict, occurred_at: str = AT):
    envelope = new_event(event_type, WARD, payload)
    envelope["occurred_at"] = occurred_at
    return parse_envelope(envelope)


def result_ready(dossier_id: str, receipt_code: str):
    return event("DossierResultReady", {"dossier_id": dossier_id, "receipt_code": receipt_code, "ward_id": WARD,
                                        "procedure_code": "HT01"})


def status_changed(dossier_id: str, receipt_code: str, to_status: str, actor_id: str = "officer-5"):
    return event("DossierStatusChanged", {"dossier_id": dossier_id, "receipt_code": receipt_code, "ward_id": WARD,
                                          "from_status": "result_ready", "to_status": to_status, "actor_id": actor_id})


def test_a_served_ticket_opens_a_24_hour_opportunity_once(db, deps):
    served = event("TicketServed", {"ticket_id": "t-1", "ward_id": WARD, "counter_id": "c2", "officer_id": "o1",
                                    "service_code": "B", "number": "B007", "wait_seconds": 60, "service_seconds": 300})
    assert opportunities.on_ticket_served(deps, None, served) == "processed"
    opportunity = find_opportunity(db, "ticket", "t-1")
    assert opportunity["state"] == "ratable"
    assert (opportunity["counter_id"], opportunity["officer_id"], opportunity["number"]) == ("c2", "o1", "B007")
    assert opportunity["served_at"] == AT_TIME
    assert opportunity["ratable_until"] == AT_TIME + timedelta(hours=24)

    assert opportunities.on_ticket_served(deps, None, served) == "duplicate"
    # The same ticket in another event (a replay with a new id) neither duplicates nor moves it.
    later = event("TicketServed", {"ticket_id": "t-1", "ward_id": WARD, "counter_id": "c9", "officer_id": "o9"},
                  occurred_at="2026-07-16T03:00:00Z")
    assert opportunities.on_ticket_served(deps, None, later) == "processed"
    assert db[OPPORTUNITIES].count_documents({}) == 1
    assert find_opportunity(db, "ticket", "t-1")["counter_id"] == "c2"


def test_a_dossier_becomes_ratable_on_return(db, deps):
    dossier_id = str(uuid.uuid4())
    opportunities.on_dossier_result_ready(deps, None, result_ready(dossier_id, "SC-1"))
    assert find_opportunity(db, "dossier", "SC-1")["state"] == "pending_return"

    assert opportunities.on_dossier_status_changed(deps, None, status_changed(dossier_id, "SC-1", "processing")) == "ignored"
    assert find_opportunity(db, "dossier", "SC-1")["state"] == "pending_return"

    returned = status_changed(dossier_id, "SC-1", "returned", actor_id="officer-5")
    assert opportunities.on_dossier_status_changed(deps, None, returned) == "processed"
    opportunity = find_opportunity(db, "dossier", "SC-1")
    assert (opportunity["state"], opportunity["officer_id"], opportunity["dossier_id"]) == ("ratable", "officer-5", dossier_id)
    assert opportunity["ratable_until"] == AT_TIME + timedelta(days=7)
    assert opportunities.on_dossier_status_changed(deps, None, returned) == "duplicate"
    assert db[OPPORTUNITIES].count_documents({}) == 1


def test_a_return_seen_before_its_result_ready_opens_the_dossier_and_stays_open(db, deps):
    dossier_id = str(uuid.uuid4())
    opportunities.on_dossier_status_changed(deps, None, status_changed(dossier_id, "SC-2", "returned"))
    opportunities.on_dossier_result_ready(deps, None, result_ready(dossier_id, "SC-2"))  # late: must not close it again
    opportunity = find_opportunity(db, "dossier", "SC-2")
    assert (opportunity["state"], opportunity["ward_id"], opportunity["dossier_id"]) == ("ratable", WARD, dossier_id)
    assert db[OPPORTUNITIES].count_documents({}) == 1


def test_a_return_without_receipt_code_is_matched_by_dossier_id_or_retried(db, deps):
    dossier_id = str(uuid.uuid4())
    opportunities.on_dossier_result_ready(deps, None, result_ready(dossier_id, "SC-3"))
    opportunities.on_dossier_status_changed(deps, None, status_changed(dossier_id, "", "returned"))
    assert find_opportunity(db, "dossier", "SC-3")["state"] == "ratable"

    unknown = status_changed(str(uuid.uuid4()), "", "returned")
    with pytest.raises(opportunities.ReturnWithoutReceiptCode):
        opportunities.on_dossier_status_changed(deps, None, unknown)
    # The failure left no trace, so the retry can still succeed.
    assert db.processed_events.count_documents({"_id": f"rating:{unknown.event_id}"}) == 0
