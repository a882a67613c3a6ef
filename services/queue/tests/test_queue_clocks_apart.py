"""Two API processes whose clocks are seconds apart (issue 21's fault): a service's tickets
are still called in number order. The ticket's place in the line was the issuing process's
clock, so the process behind put A002 before the A001 of the process ahead."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from motcua_common.clock import FixedClock
from motcua_queue.api import create_app
from motcua_queue.bootstrap import prepare

WARD = "dn-hai-chau"
BASE = "/queue/api/v1"
MONDAY_NINE = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)  # 09:00 in Đà Nẵng


@pytest.fixture
def apps(settings, verifier):
    prepare(settings, demo=True)
    ahead = create_app(settings, verifier=verifier, clock=FixedClock(MONDAY_NINE + timedelta(seconds=4)))
    behind = create_app(settings, verifier=verifier, clock=FixedClock(MONDAY_NINE))
    yield ahead, behind
    for app in (ahead, behind):
        app.extensions["motcua"].db.client.close()


def test_a_services_tickets_are_called_in_number_order_whatever_the_issuers_clocks(apps, token):
    ahead, behind = (app.test_client() for app in apps)
    kiosk = token("kiosk", WARD, subject="kiosk-1")
    issued = []
    for client in (ahead, behind, ahead, behind):
        answer = client.post(f"{BASE}/wards/{WARD}/tickets", json={"service_code": "A"}, headers=kiosk)
        assert answer.status_code == 201, answer.get_json()
        issued.append(answer.get_json()["number"])
        apps[0].extensions["motcua"].clock.advance(milliseconds=100)
        apps[1].extensions["motcua"].clock.advance(milliseconds=100)
    officer = token("officer", WARD, subject="officer-lan")
    called = []
    for _ in issued:
        answer = behind.post(f"{BASE}/wards/{WARD}/counters/quay-1/call-next", headers=officer)
        assert answer.status_code == 200, answer.get_json()
        ticket = answer.get_json()
        called.append(ticket["number"])
        served = behind.post(f"{BASE}/tickets/{ticket['ticket_id']}/actions", json={"action": "serve"},
                             headers=officer)
        assert served.status_code == 200, served.get_json()
    assert called == sorted(issued) == issued
