"""Rating by SMS and `TT` only to the registered phone (CONTRACT "A phone is enough"),
through the REAL dossier and rating workers on the real broker: identity's SMS desk asks
dossier which dossier the citizen's "1", "2" or "3" rates (latest_ratable) and rating to
rate it (rate_dossier_by_sms, the use case of POST /ratings, channel sms). notify is the
recording reply sender, as in the other SMS tests (its RPC is tested in notify)."""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone

import pytest

from motcua_common import rpc
from motcua_common.clock import FixedClock
from motcua_common.events import new_event, parse_envelope
from motcua_dossier import bootstrap as dossier_bootstrap
from motcua_dossier.domain import receipt_key
from motcua_identity import bootstrap
from motcua_identity.api import create_app
from motcua_rating import bootstrap as rating_bootstrap
from motcua_rating import opportunities
from motcua_rating.deps import build_deps as rating_deps
from motcua_testing.fixtures import settings_env, wait_for

TOKEN = "gateway-secret"
PHONE = "+84935111222"
SAME_LAST4 = "+84905111222"      # another phone ending in the same four digits
WARD = "dn-hai-chau"
CODE = "DNHC-261201-7KQ2M"


def _start(settings, service: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "motcua_platform.cli", "worker", "--service", service],
                            env=settings_env(settings))


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _answer(settings) -> bool:
    try:
        return (rpc.call(settings, "dossier", "latest_ratable", "nobody", timeout=5) is None
                and rpc.call(settings, "rating", "rate_dossier_by_sms", "X-0", "satisfied", timeout=5)["outcome"]
                == "not_ratable")
    except rpc.RpcUnavailable:
        return False


@pytest.fixture
def world(broker_settings):
    from dataclasses import replace

    settings = replace(broker_settings, sms_inbound_token=TOKEN, sms_registration_ward=WARD)
    bootstrap.prepare(settings, demo=True)
    dossier_bootstrap.prepare(settings, demo=True)
    rating_bootstrap.prepare(settings, demo=False)
    workers = [_start(settings, "dossier"), _start(settings, "rating")]
    try:
        wait_for(lambda: _answer(settings), timeout=90, message="the dossier and rating workers to answer RPC")
        replies = []

        def send_reply(to, template, variables, ward_id, key):
            replies.append({"to": to, "template": template, "variables": variables, "ward_id": ward_id, "key": key})
            return {"notification_id": f"n{len(replies)}"}

        clock = FixedClock(datetime.now(timezone.utc).replace(microsecond=0))
        app = create_app(settings, clock=clock, send_reply=send_reply)   # dossier and rating: the real RPC
        yield app.test_client(), replies, clock, settings
    finally:
        for worker in workers:
            _stop(worker)


def sms(client, text, sender=PHONE, **extra):
    return client.post("/identity/api/v1/sms/inbound", json={"from": sender, "text": text, **extra},
                       headers={"X-Gateway-Token": TOKEN})


def result_ready(settings, service_db, citizen_id: str) -> None:
    """A dossier of the citizen whose result is ready, as dossier keeps it, and the rating
    opportunity its DossierResultReady opens in rating."""
    now = datetime.now(timezone.utc)
    service_db("dossier").dossiers.insert_one({
        "_id": "d-sms-1", "receipt_code": CODE, "receipt_key": receipt_key(CODE), "citizen_id": citizen_id,
        "phone_last4": PHONE[-4:], "status": "result_ready", "ward_id": WARD, "procedure_code": "HT-XNHN",
        "due_date": "2026-12-05", "submitted_at": now, "updated_at": now, "history": []})
    event = new_event("DossierResultReady", WARD, {"dossier_id": "d-sms-1", "receipt_code": CODE, "ward_id": WARD})
    deps = rating_deps(settings)
    try:
        assert opportunities.on_dossier_result_ready(deps, None, parse_envelope(event)) == "processed"
    finally:
        deps.db.client.close()


def test_a_citizen_rates_the_result_by_answering_the_sms(world, service_db):
    client, replies, clock, settings = world
    assert sms(client, "DK 048090001234 Nguyen Van An 01/05/1990", id="m1").get_json()["outcome"] == "registered"
    citizen_id = service_db("identity").citizens.find_one({"national_id": "048090001234"})["_id"]

    # Nothing to rate yet: a clear reply, never silence.
    assert sms(client, "1", id="m2").get_json() == {"command": "DG", "outcome": "refused"}
    assert "Khong co ho so nao" in replies[-1]["variables"]["text"] and replies[-1]["to"] == PHONE

    result_ready(settings, service_db, citizen_id)
    assert sms(client, "Đg 1", id="m3").get_json() == {"command": "DG", "outcome": "rated"}
    thanks = replies[-1]
    assert thanks["to"] == PHONE and thanks["ward_id"] == WARD
    assert thanks["variables"]["text"] == f"Cam on ong/ba da danh gia ho so {CODE}: Rat hai long."
    [rating] = list(service_db("rating").ratings.find())
    assert (rating["subject_id"], rating["score"], rating["channel"], rating["ward_id"]) == (
        CODE, "very_satisfied", "sms", WARD)

    # The gateway resends the same message: the first answer, nothing rated or sent again.
    sent = len(replies)
    assert sms(client, "Đg 1", id="m3").get_json() == {"command": "DG", "outcome": "rated"}
    assert len(replies) == sent

    # Once: a second answer is told it was already rated.
    clock.advance(minutes=5)
    assert sms(client, "3", id="m4").get_json() == {"command": "DG", "outcome": "already_rated"}
    assert f"Ho so {CODE} da duoc danh gia" in replies[-1]["variables"]["text"]
    assert service_db("rating").ratings.count_documents({}) == 1

    # A phone with no account has nothing to rate either.
    assert sms(client, "DG 2", sender="0977000333", id="m5").get_json()["outcome"] == "refused"
    assert "Khong co ho so nao" in replies[-1]["variables"]["text"] and replies[-1]["to"] == "+84977000333"


def test_tt_is_answered_only_to_the_phone_registered_on_the_dossier(world, service_db):
    client, replies, _clock, settings = world
    sms(client, "DK 048090001234 Nguyen Van An 01/05/1990", id="m1")
    citizen_id = service_db("identity").citizens.find_one({"national_id": "048090001234"})["_id"]
    # Another citizen, registered from a phone ending in the same four digits.
    sms(client, "DK 048185000777 Tran Thi Binh 02/03/1985", sender=SAME_LAST4, id="o1")
    result_ready(settings, service_db, citizen_id)

    assert sms(client, f"tt {CODE.lower()}", id="m2").get_json() == {"command": "TT", "outcome": "answered"}
    assert replies[-1]["variables"]["text"].startswith(f"Ho so {CODE}: da co ket qua")

    # The other phone: exactly the answer an unknown code gets.
    assert sms(client, f"TT {CODE}", sender=SAME_LAST4, id="o2").get_json() == {"command": "TT", "outcome": "refused"}
    other = replies[-1]["variables"]["text"]
    assert sms(client, "TT DNHC-261201-XXXXX", sender=SAME_LAST4, id="o3").get_json()["outcome"] == "refused"
    unknown = replies[-1]["variables"]["text"]
    assert other.replace(CODE, "<code>") == unknown.replace("DNHC-261201-XXXXX", "<code>")
    assert "da co ket qua" not in other
    # And its "1" does not rate someone else's dossier.
    assert sms(client, "1", sender=SAME_LAST4, id="o4").get_json()["outcome"] == "refused"
    assert service_db("rating").ratings.count_documents({}) == 0
