"""Fault 4c: a ward office cut off from the centre for a whole working day (eight hours,
compressed), then reconnected.

The office is the real `motcua up --profile edge` (edge_office) on the second RabbitMQ
node, its shovels crossing `wan`, which the test cuts; the centre's HTTP side (identity's
sign-in and keys, dossier's catalog and health) is a stand-in that goes down with the link.
Before the cut the ward's two officers sign in once at the office (the office keeps their
credentials). During the cut, hour by hour: an officer signs in at the office (a shift
change), the kiosk issues tickets, officers call and serve them at two counters with the
office's token, citizens rate the service, and an officer takes a dossier at the counter
through the desk's intake pages at the office.

Eight hours compressed: the office's clock is not moved; each simulated hour is judged on
the tokens' own claims — every office token in use at hour h is still valid at cut + h
hours, which the centre's one-hour token was not.

Then the link returns. Checked at the centre, with the checkers of the other fault tests
(lost / duplicated effects / unexpected): every ticket issued and served, every rating and
every dossier taken, exactly once (the events through an idempotent consumer, the
dossiers through dossier's own office_filings.accept), in order per ward (ticket numbers,
each ticket issued before called before served, ratings in the order given, dossiers in the
order filed, each keeping the office's receipt code); and the centre's confirmation comes
back down, so the office's journal shows every dossier confirmed."""
from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt
import pika.exceptions
import pytest
from pika.adapters.utils.connection_workflow import AMQPConnectorException
import requests
from flask import Flask, request
from werkzeug.serving import make_server

import motcua_dossier
from motcua_common.consumer import handle_once
from motcua_common.events import parse_envelope
from motcua_common.relay import Relay
from motcua_dossier import bootstrap, domain, office_filings
from motcua_dossier.catalog import parse_catalog
from motcua_dossier.deps import build_deps
from motcua_platform.embedded import free_port
from motcua_testing.chaos import drain, wait_until

WARD = "dn-hai-chau"
SINK = "chaos.centre.office-events"  # conftest's centre fixture: everything the office's exchanges bring
HOURS = 8
OFFICERS = {"canbo.haichau": ("mat-khau-sang", "o-hc-1"), "canbo2.haichau": ("mat-khau-chieu", "o-hc-2")}
CATALOG = [p.to_dict() for p in parse_catalog(
    (Path(motcua_dossier.__file__).parent / "data" / "procedures.yaml").read_text(encoding="utf-8")).procedures]
REGISTERED = {"048190000123": {"citizen_id": "cit-lan", "phone_last4": "3456", "full_name": "Nguyễn Thị Lan"}}
MARRIAGE_STATUS = {"form.ho_ten": "Trần Văn Bình", "form.ngay_sinh": "04/05/1990",
                   "form.tinh_trang_hon_nhan": "Chưa kết hôn", "form.muc_dich_su_dung": "Đăng ký kết hôn"}


class CentreHttp:
    """The centre's HTTP side as the office reaches it: stopped and started with the link."""

    def __init__(self, key):
        app = Flask("centre")

        @app.post("/identity/api/v1/sessions")
        def sessions():
            body = request.get_json()
            password, subject = OFFICERS.get(body.get("username"), (None, None))
            if password is None or body.get("password") != password:
                return {"code": "invalid_credentials"}, 401
            return {"access_token": key.issue(subject, "officer", WARD, 3600, username=body["username"]),
                    "token_type": "Bearer", "expires_in": 3600, "must_change_password": False,
                    "role": "officer", "ward_id": WARD}

        app.add_url_rule("/identity/.well-known/jwks.json", "jwks", lambda: key.jwks())
        app.add_url_rule("/dossier/api/v1/procedures", "procedures", lambda: CATALOG)
        app.add_url_rule("/dossier/healthz", "healthz", lambda: {"status": "ok"})
        self.app, self.port, self.server = app, free_port(), None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "CentreHttp":
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def jwks_server(signing_key):
    """The edge_office fixture's centre (conftest): here with sign-in and the catalog too."""
    centre = CentreHttp(signing_key).start()
    yield centre
    centre.stop()


class Identity:
    """identity's answer to dossier at the centre: whose national id is it?"""

    def find_by_national_id(self, national_id: str):
        return REGISTERED.get(national_id)


class OfficeDesk:
    """An officer at the office's desk pages (a browser without JavaScript)."""

    def __init__(self, base: str, username: str):
        self.base, self.username, self.session = base, username, requests.Session()
        self.intake = f"{base}/dossier/desk/{WARD}/tiep-nhan"

    @staticmethod
    def _hidden(page: str, name: str) -> str:
        return re.search(rf'name="{name}" value="([^"]+)"', page).group(1)

    def sign_in(self) -> None:
        page = self.session.get(self.intake, timeout=10)
        assert page.status_code == 200 and "Đăng nhập" in page.text, page.text[:300]
        answer = self.session.post(f"{self.base}/dossier/desk/{WARD}/dang-nhap", allow_redirects=False, timeout=10,
                                   data={"username": self.username, "password": OFFICERS[self.username][0],
                                         "next": f"/dossier/desk/{WARD}/tiep-nhan",
                                         "csrf_token": self._hidden(page.text, "csrf_token")})
        assert answer.status_code == 303, answer.text[:300]

    def file(self, national_id: str, full_name: str) -> str:
        page = self.session.get(self.intake, params={"thu_tuc": "HT-XNHN"}, timeout=10)
        assert "tiếp nhận ngoại tuyến" in page.text, "the page says the dossier is taken offline"
        answer = self.session.post(self.intake, allow_redirects=False, timeout=10, data={
            "csrf_token": self._hidden(page.text, "csrf_token"), "form_token": self._hidden(page.text, "form_token"),
            "procedure_code": "HT-XNHN", "national_id": national_id, "record.full_name": full_name,
            "record.date_of_birth": "04/05/1990", "record.phone": "0905 111 222", **MARRIAGE_STATUS})
        assert answer.status_code == 303, answer.text[:500]
        entry_id = re.search(r"/ngoai-tuyen/([0-9a-f-]+)", answer.headers["Location"]).group(1)
        receipt = self.session.get(f"{self.base}/dossier/desk/{WARD}/ngoai-tuyen/{entry_id}/giay-tiep-nhan",
                                   timeout=10).text
        assert "Ngày hẹn trả sẽ được xác nhận khi kết nối lại" in receipt
        return entry_id


def sign_in_at_office(base: str, username: str) -> dict:
    answer = requests.post(f"{base}/identity/api/v1/sessions", timeout=15,
                           json={"username": username, "password": OFFICERS[username][0]})
    assert answer.status_code == 200, answer.text
    return answer.json()


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_a_working_day_cut_off_then_every_event_and_dossier_reaches_the_centre_once_in_order(
        edge_office, wan, jwks_server, office_work, centre, settings, service_db, checker):
    issued = checker("4c. an office's day cut off (8 h compressed)", "kiosk tickets, one office, 8 simulated hours")
    served = checker("4c. an office's day cut off (served)", "officers signing in and serving at 2 counters")
    rated = checker("4c. an office's day cut off (ratings)", "a rating for every ticket served")
    taken = checker("4c. an office's day cut off (counter intake)", "a dossier taken at the counter every hour")
    base = edge_office.base
    work = office_work(issued, served)

    # The link works: each officer signs in at the office once (the office keeps the
    # credential); the desk's intake address leads to the centre's desk.
    before = {name: sign_in_at_office(base, name) for name in OFFICERS}
    assert all("issued_by" not in answer for answer in before.values()), "the centre answered"
    assert requests.get(f"{base}/dossier/desk/{WARD}/tiep-nhan", allow_redirects=False, timeout=10
                        ).headers["Location"].startswith(jwks_server.url)
    work.take_tickets(3)

    wan.cut()
    jwks_server.stop()
    cut_at = datetime.now(timezone.utc)
    centre_token_expires = datetime.fromtimestamp(claims(before["canbo.haichau"]["access_token"])["exp"], timezone.utc)
    desks = {name: OfficeDesk(base, name) for name in OFFICERS}
    # Each officer keeps a counter of their own all day (a counter is one officer's at a time).
    counter_of = dict(zip(OFFICERS, work.counters))
    entries: list[str] = []
    tokens: dict[str, str] = {}
    rating_ids: list[str] = []
    for hour in range(HOURS):
        on_duty = list(OFFICERS)[hour % 2]
        judged_at = cut_at + timedelta(hours=hour, minutes=59)
        # The morning's sign-ins, then one each hour (back from a break, a browser restarted),
        # all at the office, cut off.
        for name in (OFFICERS if hour == 0 else [on_duty]):
            answer = sign_in_at_office(base, name)
            assert answer["issued_by"] == "office" and answer["expires_in"] >= HOURS * 3600
            tokens[name] = answer["access_token"]
        # Every token in use still holds at the end of this hour (the first of the morning's
        # too); the centre's one-hour token would not have, from the second hour on.
        assert all(datetime.fromtimestamp(claims(t)["exp"], timezone.utc) > judged_at for t in tokens.values())
        assert (centre_token_expires > judged_at) == (hour == 0)
        if hour in (0, 1):
            desks[on_duty].sign_in()

        work.take_tickets(3)
        newly_served = set(served.acknowledged)
        for name, counter_id in counter_of.items():
            work.officer = {"Authorization": "Bearer " + tokens[name]}
            work.serve(counter_id)
        newly_served = sorted(served.acknowledged - newly_served)
        national_id, name = ("048190000123", "Nguyễn Thị Lan") if hour % 2 else (f"0481990{hour:05d}", "Trần Văn Bình")
        entry_id = desks[on_duty].file(national_id, name)
        taken.ack(entry_id)
        entries.append(entry_id)
        for ticket_id in newly_served:
            rating_id = rate(base, ticket_id)
            rated.ack(rating_id)
            rating_ids.append(rating_id)
    assert len(entries) == HOURS and served.acknowledged and rating_ids

    wan.restore()
    jwks_server.start()

    # The centre: the office's events through an idempotent consumer, its dossiers through
    # dossier's own acceptance (identity stood in), in the order they arrive.
    events_db = service_db("centre")
    dossier_db = service_db("dossier")
    bootstrap.prepare(settings, demo=False)
    deps = build_deps(settings, db=dossier_db, citizens=Identity())
    arrivals: list = []
    filings_order: list[str] = []

    def collect() -> bool:
        try:
            return take_arrivals()
        except (pika.exceptions.AMQPConnectionError, AMQPConnectorException):
            return False  # the centre's broker slow to accept on a loaded machine: next round

    def take_arrivals() -> bool:
        for _headers, body in drain(centre.amqp_url, SINK):
            event = parse_envelope(json.loads(body))
            issued.deliveries += 1
            arrivals.append(event)
            key = event.payload.get("rating_id") or event.payload.get("ticket_id")
            handle_once(events_db, "centre", event, lambda session, event=event, key=key: events_db.effects.insert_one(
                {"event_id": event.event_id, "type": event.type, "key": key}, session=session))
        for _headers, body in drain(centre.amqp_url, office_filings.FILINGS_QUEUE):
            filing = json.loads(body)
            taken.deliveries += 1
            if office_filings.accept_or_keep(deps, filing) == "accepted":
                filings_order.append(filing["filing_id"])
        have = {(d["type"], d["key"]) for d in events_db.effects.find()}
        return (all(("TicketIssued", t) in have for t in issued.acknowledged)
                and all(("TicketServed", t) in have for t in served.acknowledged)
                and all(("RatingGiven", r) in have for r in rated.acknowledged)
                and len(filings_order) >= len(entries))

    assert wait_until(collect, timeout=40, interval=0.5), "the office's backlog did not reach the centre"
    for doc in events_db.effects.find({"type": {"$in": ["TicketIssued", "TicketServed", "RatingGiven"]}}):
        {"TicketIssued": issued, "TicketServed": served, "RatingGiven": rated}[doc["type"]].observe(doc["key"])
    for doc in dossier_db.dossiers.find({"office_filing": {"$exists": True}}, {"_id": 1}):
        taken.observe(doc["_id"])
    for c in (issued, served, rated, taken):
        assert not c.lost, f"{c.fault}: lost {sorted(c.lost)[:5]}"
        assert not c.duplicated, f"{c.fault}: duplicated {sorted(c.duplicated)[:5]}"
        assert not c.unexpected, f"{c.fault}: unexpected {sorted(c.unexpected)[:5]}"
    assert dossier_db[office_filings.REFUSED].count_documents({}) == 0

    # In order, per ward: as each first arrived at the centre.
    first: dict[str, int] = {}
    for index, event in enumerate(arrivals):
        first.setdefault(event.event_id, index)
    ordered = sorted((first[e.event_id], e) for e in {e.event_id: e for e in arrivals}.values())
    numbers = [e["number"] for _, e in ordered if e.type == "TicketIssued" and e["service_code"] == "A"]
    assert numbers == sorted(numbers), f"tickets out of order: {numbers}"
    position = {(e.type, e.payload.get("ticket_id")): i for i, e in ordered}
    for ticket_id in served.acknowledged:
        assert (position[("TicketIssued", ticket_id)] < position[("TicketCalled", ticket_id)]
                < position[("TicketServed", ticket_id)]), "a ticket's events out of order"
    assert [e["rating_id"] for _, e in ordered if e.type == "RatingGiven"] == rating_ids
    assert filings_order == entries, "the dossiers reached the centre in the order they were taken"
    journal = {d["_id"]: d for d in dossier_db.dossiers.find({"_id": {"$in": entries}})}
    for entry_id in entries:
        assert domain.is_office_receipt_code(journal[entry_id]["receipt_code"])
    assert journal[entries[1]]["citizen_id"] == "cit-lan" and journal[entries[0]]["counter_record_id"]

    # The centre announces them (DossierSubmitted); it comes down to the office, whose journal
    # then shows each dossier confirmed.
    relay = Relay(dossier_db, centre, "dossier")
    try:
        while relay.publish_pending():
            pass
    finally:
        relay.close()
    desk = desks["canbo.haichau"]
    assert wait_until(lambda: desk.session.get(f"{base}/dossier/desk/{WARD}/so-tiep-nhan", timeout=10
                                               ).text.count('data-state="confirmed"') == HOURS, timeout=30), \
        "the centre's confirmations did not reach the office's journal"
    assert wan.cuts == 1


def rate(base: str, ticket_id: str) -> str:
    """A citizen rates a ticket just served (the office's rating learns of the serving from
    its own broker, within a moment)."""
    deadline = time.monotonic() + 15
    while True:
        answer = requests.post(f"{base}/rating/api/v1/ratings", json={"ticket_id": ticket_id, "score": "satisfied"},
                               timeout=10)
        if answer.status_code == 201:
            return answer.json()["rating_id"]
        assert answer.status_code == 404 and time.monotonic() < deadline, answer.text
        time.sleep(0.2)
