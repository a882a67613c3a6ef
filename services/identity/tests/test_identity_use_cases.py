"""identity's use cases called as the pages, the worker and the CLI call them — plain
functions over build_deps' Deps, with a fixed clock and no HTTP in between."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from motcua_common.auth import Principal
from motcua_common.clock import FixedClock
from motcua_common.outbox import OUTBOX
from motcua_identity import accounts, bootstrap, errors, officers, sms_inbound, wards
from motcua_identity.deps import build_deps

WARD = "dn-hai-chau"
BODY = {"national_id": "048090001234", "full_name": "Nguyễn Văn An", "date_of_birth": "1990-05-01",
        "phone": "0905 123 456", "ward_id": WARD, "password": "hoa-sen-2026"}


@pytest.fixture
def deps(settings):
    bootstrap.prepare(settings, demo=True)
    sent = []
    # Tomorrow at 16:30 UTC (23:30 in Vietnam): the lock's local time is the ward's.
    at = (datetime.now(timezone.utc) + timedelta(days=1)).replace(hour=16, minute=30, second=0, microsecond=0)
    built = build_deps(settings, clock=FixedClock(at), send_reply=lambda *args: sent.append(args),
                       dossier_status=lambda *args: None)
    return built, sent


def test_registration_sign_in_and_the_lockout_by_the_injected_clock(deps):
    deps, sent = deps
    answer, status = accounts.register_citizen(deps, None, dict(BODY), client="10.0.0.1")
    assert status == 201 and answer["status"] == "pending_phone"
    with pytest.raises(errors.PhoneNotVerified):
        accounts.sign_in(deps, "048090001234", "hoa-sen-2026", client="10.0.0.1")
    code = sent[-1][2]["code"]
    assert accounts.verify_phone(deps, answer["citizen_id"], code, "10.0.0.1")["status"] == "active"
    stored = deps.db.citizens.find_one({"_id": answer["citizen_id"]})
    assert stored["created_at"].replace(tzinfo=timezone.utc) == deps.clock.now()
    assert [o["envelope"]["type"] for o in deps.db[OUTBOX].find({"routing_key": {"$ne": "WardOpened"}})] == ["CitizenRegistered"]
    assert accounts.sign_in(deps, "048090001234", "hoa-sen-2026", client="10.0.0.1")["role"] == "citizen"
    with pytest.raises(errors.NationalIdTaken):
        accounts.register_citizen(deps, None, dict(BODY), client="10.0.0.1")
    for _ in range(4):
        with pytest.raises(errors.InvalidCredentials):
            accounts.sign_in(deps, "048090001234", "sai-mat-khau", client="10.0.0.1")
    with pytest.raises(errors.Locked) as locked:
        accounts.sign_in(deps, "048090001234", "sai-mat-khau", client="10.0.0.1")
    assert locked.value.until == deps.clock.now() + timedelta(minutes=15)
    assert locked.value.local_until.strftime("%H:%M") == "23:45"  # 16:45 UTC on the ward's clock
    assert locked.value.retry_after == 15 * 60
    deps.clock.advance(minutes=16)
    assert accounts.sign_in(deps, "048090001234", "hoa-sen-2026", client="10.0.0.1")["must_change_password"] is False


def test_officers_wards_and_the_worker_questions(deps):
    deps, _sent = deps
    admin = Principal(subject="admin-1", role="admin", ward_id=None)
    officer_id = officers.create_officer(deps, admin, {"username": "canbo.moi", "full_name": "Vũ Thị Hạnh",
                                                       "ward_id": WARD, "role": "officer",
                                                       "password": "quay-so-1-2026"}, client="10.0.0.2")
    assert deps.db.officers.find_one({"_id": officer_id})["username"] == "canbo.moi"
    with pytest.raises(errors.UsernameTaken):
        officers.create_officer(deps, admin, {"username": "canbo.moi", "full_name": "Vũ Thị Hạnh", "ward_id": WARD,
                                              "role": "officer", "password": "quay-so-1-2026"}, client="10.0.0.2")
    with pytest.raises(errors.WardNotFound):
        wards.set_population(deps, admin, "dn-khong-co", 5)
    assert wards.ward_for_rpc(deps, WARD)["ward_id"] == WARD and wards.ward_for_rpc(deps, "X!") is None
    answer, _ = accounts.register_citizen(deps, None, dict(BODY), client="10.0.0.1")
    assert accounts.citizen_contact(deps, answer["citizen_id"])["phone_last4"] == "3456"
    assert accounts.find_citizen(deps, "048090001234")["citizen_id"] == answer["citizen_id"]


def test_the_sms_desk_without_a_gateway(deps):
    deps, sent = deps
    outcome = sms_inbound.receive(deps, "+84935111222", "DK 048090001234 Nguyen Van An 01/05/1990", "m1")
    assert outcome == sms_inbound.Outcome("DK", "registered")
    assert sent[-1][1] == "temporary_password"
