"""The ward leader's end-of-day digest of overdue dossiers, against SecantusDB and a local
SMS gateway: DossierOverdue kept once, one digest per ward and working day at 17:00 (not
before, not at the weekend), to each leader's phone and address, carrying the count and
the first receipt codes; identity not answering delays it, nobody to reach records it."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from motcua_common.clock import FixedClock
from motcua_common.config import Settings
from motcua_common.events import new_event, parse_envelope
from motcua_notify import bootstrap, digest, domain, store
from motcua_notify.deps import build_deps
from motcua_notify.gateways import HttpGateway
from motcua_notify.gateways import Outcome
from motcua_notify.sender import Sender, SendOptions

VN = ZoneInfo("Asia/Ho_Chi_Minh")
WARD, OTHER_WARD = "dn-hai-chau", "dn-lien-chieu"
LEADERS = {WARD: [{"officer_id": "lead-hc", "phone": "0905 111 222", "email": "Chu.Tich@HaiChau.example.vn"},
                  {"officer_id": "lead-hc-2", "phone": "+84905111222"}],   # the same phone once
           OTHER_WARD: []}
OPTIONS = SendOptions(retry=domain.RetryPolicy(window_seconds=600, base_seconds=5, max_seconds=120),
                      gateway_timeout_seconds=2, lease_seconds=60)


@pytest.fixture
def db(settings, service_db):
    bootstrap.prepare(settings)
    db = service_db("notify")
    digest.ensure_indexes(db)
    return db


@pytest.fixture
def clock():
    return FixedClock(datetime(2026, 3, 10, 9, 0, tzinfo=VN))  # a Tuesday


@pytest.fixture
def deps(db, clock):
    return build_deps(Settings.from_env({}), db=db, verifier=None, clock=clock)


def at(clock, day: int, hour: int, minute: int = 0) -> None:
    clock.at = datetime(2026, 3, day, hour, minute, tzinfo=VN)


def overdue(n: int, ward: str = WARD, due: str = "2026-03-09") -> dict:
    return new_event("DossierOverdue", ward, {
        "dossier_id": f"d-{ward}-{n}", "ward_id": ward, "receipt_code": f"HC-260302-{n:05d}", "procedure_code": "HT-KS",
        "status": "processing", "due_date": due, "assignee_id": "", "chain_id": ""})


def leaders(ward_id: str) -> list[dict]:
    return LEADERS.get(ward_id, [])


class Mailbox:
    def __init__(self):
        self.sent = []

    def send(self, mail):
        self.sent.append(mail)
        return Outcome.ok()


def test_an_overdue_notice_is_kept_once(deps, db):
    event = overdue(1)
    assert digest.record_overdue(deps, None, parse_envelope(event)) == "processed"
    assert digest.record_overdue(deps, None, parse_envelope(event)) == "duplicate"  # redelivered
    again = overdue(1)  # the same dossier and due date announced again (another event id)
    assert digest.record_overdue(deps, None, parse_envelope(again)) == "processed"
    [notice] = db[digest.NOTICES].find({})
    assert notice["receipt_code"] == "HC-260302-00001" and notice["digest_id"] is None
    assert set(notice) >= {"ward_id", "dossier_id", "due_date", "noticed_at"}
    assert "citizen_id" not in notice


def test_one_digest_per_ward_and_working_day_at_five_pm(deps, db, clock, sms_gateway):
    for n in range(1, 8):
        digest.record_overdue(deps, None, parse_envelope(overdue(n)))
    at(clock, 10, 16, 59)
    assert digest.send_digests(deps, None, leaders) == 0  # not before 17:00
    at(clock, 10, 17, 0)
    assert digest.send_digests(deps, None, leaders) == 1
    assert digest.send_digests(deps, None, leaders) == 0  # once a day, however often the timer runs

    made = list(db[store.NOTIFICATIONS].find({"source_id": f"{WARD}/2026-03-10"}))
    assert sorted((n["channel"], n["recipient"]) for n in made) == [
        ("email", "Chu.Tich@haichau.example.vn"), ("sms", "+84905111222")]
    mailbox = Mailbox()
    Sender(db, HttpGateway(sms_gateway.url, 2), lambda _: None, OPTIONS, clock=clock.now, mail=mailbox).send_due()
    [sms] = sms_gateway.to("+84905111222")
    expected = ("Một Cửa dn-hai-chau: 7 hồ sơ quá hạn mới ngày 10/03/2026: HC-260302-00001, HC-260302-00002, "
                "HC-260302-00003, HC-260302-00004, HC-260302-00005 và 2 hồ sơ khác. "
                "Chi tiết tại trang Số liệu của phường.")
    assert sms["body"]["text"] == expected
    [mail] = mailbox.sent
    assert mail.to == "Chu.Tich@haichau.example.vn" and mail.text == expected

    # Noticed after today's digest: tomorrow's, not a second one today.
    at(clock, 10, 18, 0)
    digest.record_overdue(deps, None, parse_envelope(overdue(8)))
    assert digest.send_digests(deps, None, leaders) == 0
    at(clock, 11, 17, 5)
    assert digest.send_digests(deps, None, leaders) == 1
    tomorrow = db[digest.DIGESTS].find_one({"_id": f"{WARD}/2026-03-11"})
    assert tomorrow["count"] == 1 and tomorrow["receipt_codes"] == ["HC-260302-00008"]
    assert db[digest.NOTICES].count_documents({"digest_id": None}) == 0


def test_no_digest_at_the_weekend_nor_for_a_ward_with_nothing_new(deps, db, clock):
    digest.record_overdue(deps, None, parse_envelope(overdue(1)))
    at(clock, 14, 17, 30)  # Saturday
    assert digest.send_digests(deps, None, leaders) == 0
    at(clock, 15, 20, 0)   # Sunday
    assert digest.send_digests(deps, None, leaders) == 0
    at(clock, 16, 17, 0)   # Monday: the weekend's notices go out
    assert digest.send_digests(deps, None, leaders) == 1
    assert db[digest.DIGESTS].count_documents({}) == 1  # the other ward had nothing overdue


def test_identity_not_answering_delays_the_digest_and_nobody_to_reach_records_it(deps, db, clock):
    digest.record_overdue(deps, None, parse_envelope(overdue(1)))
    digest.record_overdue(deps, None, parse_envelope(overdue(2, ward=OTHER_WARD)))
    at(clock, 10, 17, 0)

    def silent(ward_id):
        raise digest.LeadersUnavailable("identity is not running")

    assert digest.send_digests(deps, None, silent) == 0
    assert db[digest.NOTICES].count_documents({"digest_id": None}) == 2  # kept for the next tick
    at(clock, 10, 17, 1)
    assert digest.send_digests(deps, None, leaders) == 2
    nobody = db[digest.DIGESTS].find_one({"_id": f"{OTHER_WARD}/2026-03-10"})
    assert nobody["recipients"] == 0 and nobody["count"] == 1
    assert db[store.NOTIFICATIONS].count_documents({"ward_id": OTHER_WARD}) == 0


def test_two_workers_make_one_digest(deps, db, clock):
    digest.record_overdue(deps, None, parse_envelope(overdue(1)))
    at(clock, 10, 17, 0)
    now = clock.now()
    day = clock.local(now).date()
    assert digest.make_digest(deps, WARD, day, now, leaders(WARD)) == 1
    digest.record_overdue(deps, None, parse_envelope(overdue(2)))
    # A second worker that looked before the first committed: the day's id is taken.
    assert digest.make_digest(deps, WARD, day, clock.now(), leaders(WARD)) == 0
    assert db[store.NOTIFICATIONS].count_documents({"source_id": f"{WARD}/2026-03-10"}) == 2


def test_the_digest_text_fits_and_renders():
    params = digest.digest_params(WARD, datetime(2026, 3, 10).date(),
                                  [{"receipt_code": f"DNHC-260302-{n:05d}X"} for n in range(40)])
    text = domain.render(digest.TEMPLATE, params)
    assert "40 hồ sơ" in text and "và 35 hồ sơ khác" in text
    assert domain.encode_sms(text).segments <= 4
