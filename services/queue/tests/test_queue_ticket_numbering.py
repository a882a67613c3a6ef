"""A ticket's number and its TicketIssued's place in the ward's publication order come from
one atomic update of the ward's outbox clock document (store.take_number): a ticket costs
the database four commands (that update, then the ticket's transaction: the ticket, its
event, the commit), its events leave in number order, and a numbering moved by a restore
(restoring.py) or counted in ticket_sequences before is continued."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest
from pymongo import monitoring

from motcua_common.clock import FixedClock
from motcua_common.outbox import OUTBOX, OUTBOX_CLOCK
from motcua_queue.api import create_app
from motcua_queue.bootstrap import prepare
from motcua_queue.domain import sequence_key
from motcua_queue.store import SEQUENCES

WARD = "dn-hai-chau"
BASE = "/queue/api/v1"
DAY = "2026-03-02"


class Commands(monitoring.CommandListener):
    """The commands sent while `on` (registered once for the process; silent otherwise)."""

    def __init__(self):
        self.on, self.seen = False, []

    def started(self, event):
        if self.on and event.command_name not in ("endSessions", "hello", "isMaster", "ping"):
            self.seen.append(event.command_name)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


COMMANDS = Commands()
monitoring.register(COMMANDS)


@pytest.fixture
def app(settings, verifier):
    prepare(settings, demo=True)
    app = create_app(settings, verifier=verifier, clock=FixedClock(datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)))
    yield app
    app.extensions["motcua"].db.client.close()


@pytest.fixture
def kiosk(token):
    return token("kiosk", WARD, subject="kiosk-sanh-1")


def issue(client, headers, service_code="A"):
    answer = client.post(f"{BASE}/wards/{WARD}/tickets", json={"service_code": service_code}, headers=headers)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()


def test_a_ticket_costs_four_commands_and_its_event_takes_the_clock_step_of_its_number(app, kiosk):
    client = app.test_client()
    issue(client, kiosk)  # the reference data is remembered from here on
    COMMANDS.seen.clear()
    COMMANDS.on = True
    try:
        for _ in range(3):
            issue(client, kiosk)
    finally:
        COMMANDS.on = False
    assert COMMANDS.seen == ["findAndModify", "insert", "insert", "commitTransaction"] * 3, COMMANDS.seen
    db = app.extensions["motcua"].db
    clock = db[OUTBOX_CLOCK].find_one({"_id": WARD})
    last = max(db[OUTBOX].find({"routing_key": "TicketIssued"}), key=lambda d: d["seq"])
    assert last["seq"] == clock["last"], "the newest TicketIssued took the ward's newest step"
    assert clock["numbers"][f"d{DAY}"]["sA"]["value"] == 4


def test_concurrent_kiosks_events_leave_in_number_order(app, kiosk):
    answers, errors = [], []
    start = threading.Barrier(12)

    def take():
        client = app.test_client()
        start.wait()
        try:
            answers.append(issue(client, kiosk, "B")["number"])
        except Exception as exc:  # reported below, a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=take) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(answers) == [f"B{i:03d}" for i in range(1, 13)]
    db = app.extensions["motcua"].db
    in_order = db[OUTBOX].find({"routing_key": "TicketIssued"}).sort([("seq", 1), ("n", 1)])
    published = [d["envelope"]["payload"]["number"] for d in in_order]
    assert published == sorted(answers), "the relay's order is the numbers' order"


def test_a_day_numbered_past_a_restore_continues_after_it(app, kiosk):
    # restoring.py moves the day's ticket_sequences `value` (a restore goes into a stopped
    # platform); a day numbered there before the numbers moved continues the same way.
    db = app.extensions["motcua"].db
    db[SEQUENCES].insert_one({"_id": sequence_key(WARD, "A", DAY), "value": 103,
                              "created_at": datetime(2026, 3, 2, tzinfo=timezone.utc)})
    client = app.test_client()
    assert [issue(client, kiosk)["number"] for _ in range(2)] == ["A104", "A105"]
    assert issue(client, kiosk, "B")["number"] == "B001"


def test_a_day_counted_in_ticket_sequences_goes_on_with_its_numbers_and_its_line(app, kiosk):
    # The day the numbers moved to the ward's clock document: three A tickets issued, one
    # called, counted in ticket_sequences; the fourth has two people ahead.
    db = app.extensions["motcua"].db
    db[SEQUENCES].insert_one({"_id": sequence_key(WARD, "A", DAY), "value": 3, "issued_r1": 3, "called_r1": 1,
                              "created_at": datetime(2026, 3, 2, tzinfo=timezone.utc)})
    fourth = issue(app.test_client(), kiosk)
    assert (fourth["number"], fourth["waiting_ahead"]) == ("A004", 2)


def test_day_counts_older_than_the_day_before_yesterday_are_dropped(app, kiosk):
    db = app.extensions["motcua"].db
    days = {"d2026-02-27": {"sA": {"value": 9}}, "d2026-02-28": {"sA": {"value": 7}},
            "d2026-03-01": {"sA": {"value": 5}}}
    db[OUTBOX_CLOCK].insert_one({"_id": WARD, "numbers": days})
    assert issue(app.test_client(), kiosk)["number"] == "A001"
    kept = sorted(db[OUTBOX_CLOCK].find_one({"_id": WARD})["numbers"])
    assert kept == ["d2026-02-28", "d2026-03-01", f"d{DAY}"]
