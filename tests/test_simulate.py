"""`motcua simulate` plays a short two-ward day against `motcua up --demo` (a subprocess on
the real RabbitMQ, its own vhost, and the embedded database), with the simulator as the SMS
gateway: no error answers, no lost event, and the day really happened."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from motcua_platform.embedded import free_port
from motcua_platform.simulate import RecordingGateway, arrival_hours, intensity, percentile, simulate
from motcua_testing.fixtures import create_vhost, delete_vhost

pytestmark = pytest.mark.e2e


def test_arrivals_follow_the_office_day():
    import random

    hours = arrival_hours(random.Random(7), 4000)
    assert 3600 < len(hours) < 4400  # Poisson around the expected count
    assert all(7.5 <= h < 11.5 or 13.5 <= h < 17.0 for h in hours)  # closed at lunch and at night
    def share(a, b):
        return sum(a <= h < b for h in hours) / len(hours)
    assert share(8.5, 9.5) > 2 * share(10.5, 11.5)  # the morning peak
    assert share(14.0, 15.0) > share(16.0, 17.0)  # the afternoon peak
    assert intensity(12.0) == 0.0
    assert percentile([5, 1, 3, 2, 4], 50) == 3 and percentile([], 99) == 0.0


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    gateway = RecordingGateway().__enter__()
    vhost = f"motcua-sim-{uuid.uuid4().hex[:8]}"
    amqp_url = create_vhost(vhost)
    port = free_port()
    data_dir = tmp_path_factory.mktemp("motcua-sim")
    log = open(data_dir / "platform.log", "w")
    env = dict(os.environ, AMQP_URL=amqp_url, SMS_GATEWAY_URL=gateway.url, MOTCUA_DATA_DIR=str(data_dir),
               MOTCUA_RELAY_POLL_SECONDS="0.05", MOTCUA_SCORECARD_CACHE_SECONDS="0",
               # Two API processes on one port, as a 2-core box runs them (both cores used).
               MOTCUA_API_PROCESSES="2")
    env.pop("MONGO_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "motcua_platform.cli", "up", "--demo", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    ready, deadline = None, time.monotonic() + 240
    while ready is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        if line.startswith("motcua ready"):
            ready = line.split()[2]
    if ready is None:
        proc.kill()
        pytest.fail("motcua up did not become ready:\n" + (data_dir / "platform.log").read_text()[-4000:])
    yield ready, gateway, proc.pid
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    gateway.__exit__(None, None, None)
    delete_vhost(vhost)


def _api_processes(launcher_pid: int) -> list[int]:
    """The gunicorn workers under the launcher's `api --all` child (the arbiter's children)."""
    from pathlib import Path

    def children(pid):
        try:
            found = (Path(f"/proc/{pid}/task/{pid}/children").read_text()).split()
        except OSError:
            return []
        return [int(c) for c in found]

    def args(pid):
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return []

    arbiters = [c for c in children(launcher_pid) if b"api" in args(c) and b"--all" in args(c)]
    return [w for a in arbiters for w in children(a)]


def test_a_short_two_ward_day_has_no_error_and_loses_no_event(platform):
    import re

    import requests

    base, gateway, launcher_pid = platform
    summary = simulate(base, wards=2, minutes=0.35, tickets_per_ward=30, online_per_ward=8, seed=2026,
                       gateway=gateway, quiet=True)
    assert summary["errors"] == {}, summary["error_samples"]
    assert summary["lost_events"] == {}
    counts = summary["counts"]
    assert counts["tickets issued"] >= 15 and counts["tickets served"] == counts["tickets issued"]
    assert counts["dossiers submitted"] >= 4 and counts["ratings given"] >= 1
    assert summary["dossier_to_sms"]["count"] == counts["dossiers submitted"]
    assert {"issue_ticket", "call_next", "serve_ticket", "submit_dossier_online", "rate"} <= set(summary["operations"])
    # Two API processes answered, and /metrics counts what both of them did (multiprocess mode).
    assert len(_api_processes(launcher_pid)) == 2
    text = requests.get(f"{base}/queue/metrics", timeout=30).text
    counted = sum(float(v) for v in re.findall(
        r'motcua_http_requests_total\{[^}]*route="/queue/api/v1/wards/<ward_id>/tickets"[^}]*status="201"[^}]*\} (\S+)', text))
    assert counted == summary["operations"]["issue_ticket"]["count"]


def test_only_a_connection_closed_before_any_answer_is_sent_again():
    from http.client import RemoteDisconnected

    import requests

    from motcua_platform.simulate import _closed_without_answer

    closed = requests.ConnectionError(("Connection aborted.", RemoteDisconnected("Remote end closed connection")))
    reset = requests.ConnectionError(("Connection aborted.", ConnectionResetError(104, "Connection reset by peer")))
    refused = requests.ConnectionError(ConnectionRefusedError(111, "Connection refused"))
    assert _closed_without_answer(closed) and _closed_without_answer(reset)
    assert not _closed_without_answer(refused)


def test_after_the_day_the_public_scorecards_say_what_the_events_said(platform):
    """Transparency is built by events (RatingGiven reaches dossier's scorecards); after the
    simulated day each ward's public satisfaction equals what rating counted from the
    ratings themselves, and its returned dossiers what dossier counted."""
    import requests

    from motcua_common import demo
    from motcua_testing.fixtures import wait_for

    base = platform[0]
    monitor = requests.post(f"{base}/identity/api/v1/sessions", timeout=30,
                            json={"username": "giamsat.thanhpho", "password": demo.DEMO_STAFF_PASSWORD}).json()
    headers = {"Authorization": f"Bearer {monitor['access_token']}"}
    wards = ("dn-hai-chau", "dn-lien-chieu")

    def agree():
        cards = {c["ward_id"]: c for c in requests.get(f"{base}/dossier/api/v1/public/scorecards", timeout=30).json()}
        for ward in wards:
            rated = requests.get(f"{base}/rating/api/v1/wards/{ward}/stats", headers=headers, timeout=30).json()
            dossiers = requests.get(f"{base}/dossier/api/v1/wards/{ward}/stats", headers=headers, timeout=30).json()
            card = cards[ward]
            if rated["total"] == 0 or card["ratings"] != rated["total"]:
                return False
            if card["satisfaction_index"] != rated["satisfaction_index"] or card["returned"] != dossiers["returned"]:
                return False
        return cards

    cards = wait_for(agree, timeout=60, message="the scorecards to agree with rating's and dossier's own counts")
    assert all(cards[w]["online_share"] is not None for w in wards)


def test_a_province_day_opens_every_commune_and_ward_with_counters_for_its_size():
    from motcua_platform.simulate import TICKETS_PER_10K, counters_for, province_units, ward_size

    units = province_units(1)
    assert len(units) == 126 and units[0] == ("00004", "Phường Ba Đình")  # Hà Nội since 1 July 2025
    sizes = {code: ward_size(code, name) for code, name in units}
    assert sizes == {code: ward_size(code, name) for code, name in units}  # the same province every run
    assert min(sizes.values()) >= 10_000 and max(sizes.values()) <= 48_000
    small, large = counters_for(TICKETS_PER_10K * 1.2), counters_for(TICKETS_PER_10K * 4.5)
    assert len(small) == 2 and len(large) == 4
    for counters in (small, large):
        served = [code for _id, _name, codes in counters for code in codes]
        assert all(served.count(code) >= 1 for code in "ABCDEF")  # every queue service has a counter


def test_the_morning_peak_figures_are_of_requests_sent_between_half_past_eight_and_half_past_nine():
    from types import SimpleNamespace

    from motcua_platform.simulate import Day, Outcomes, morning_peak

    day = SimpleNamespace(start=1000.0, seconds_per_hour=60.0, outcomes=Outcomes())
    day._wall = lambda hour: Day._wall(day, hour)
    at = lambda hour: day.start + day._wall(hour)  # noqa: E731
    day.outcomes.sent["issue_ticket"] += [(at(8.0), 9.0), (at(8.6), 0.2), (at(9.4), 0.4), (at(9.6), 7.0)]
    day.outcomes.sent["call_next"] += [(at(9.0), 0.05)]
    peak = morning_peak(day)
    assert peak["issue_ticket"] == {"count": 2, "p50_ms": 200.0, "p99_ms": 400.0}
    assert peak["call_next"]["count"] == 1 and peak["serve_ticket"]["count"] == 0


def test_the_simulated_wards_opening_hours_are_what_the_queue_accepts():
    """Sent as {"always_open": true} alone, every provisioned ward's hours were refused (422:
    weekly is required) and the simulated day depended on the real time of day."""
    from motcua_platform.simulate import always_open_body
    from motcua_queue.hours import read_hours

    assert read_hours(always_open_body())["always_open"] is True
