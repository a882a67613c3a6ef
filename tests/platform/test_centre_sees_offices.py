"""The centre sees every office (issue 20), on the real broker with the real central
workers: a ward office's queue and rating events, as its uplink shovel hands them to the
centre's exchanges, land once in the centre's read models, and the centre's rankings,
statistics and daily activity count them.

The office's relay publishes to the office's broker and the shovel republishes each message
unchanged (body and properties) to the exchange of the same name at the centre; here the
office's outbox is published by a relay straight to the centre's broker, which puts the
same message on the same exchange. A message the shovel sends twice (its ack lost with the
link after the centre confirmed) is sent twice here too."""
from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from motcua_common.auth import Principal
from motcua_common.events import new_event
from motcua_common.outbox import OUTBOX, commit
from motcua_common.relay import Relay
from motcua_common.topology import subscription
from motcua_queue import activity
from motcua_queue.bootstrap import prepare as prepare_queue
from motcua_queue.deps import build_deps as queue_deps
from motcua_rating import ratings
from motcua_rating.bootstrap import prepare as prepare_rating
from motcua_rating.deps import build_deps as rating_deps
from motcua_rating.store import RATINGS
from motcua_testing.fixtures import settings_env, wait_for
from motcua_testing.rabbitcli import rabbitmqctl

OFFICE = "dn-hai-chau"
MONITOR = Principal(subject="giamsat", role="monitor", ward_id=None)


@pytest.fixture
def central_workers(broker_settings):
    prepare_queue(broker_settings, demo=False)
    prepare_rating(broker_settings, demo=False)
    procs = [subprocess.Popen([sys.executable, "-m", "motcua_platform.cli", "worker", "--service", service],
                              env=settings_env(broker_settings)) for service in ("queue", "rating")]
    yield procs
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def drained(settings, queues: list[str]) -> bool:
    """Nothing ready and nothing unacknowledged on any of `queues`."""
    vhost = settings.amqp_url.rsplit("/", 1)[1]
    out = rabbitmqctl("-q", "list_queues", "-p", vhost, "name", "messages", "messages_unacknowledged")
    counts = {parts[0]: parts[1:] for parts in (line.split() for line in out.splitlines()) if parts}
    return all(counts.get(queue) == ["0", "0"] for queue in queues)


def send_up(settings, office_db, service: str, events: list[dict], again: dict | None = None) -> None:
    """What the office's uplink delivers at the centre: each event once, and `again` twice."""
    commit(office_db, lambda session: None, events)
    relay = Relay(office_db, settings, service)
    try:
        assert relay.publish_pending() == len(events)
        if again is not None:
            office_db[OUTBOX].update_one({"_id": again["event_id"]}, {"$set": {"status": "pending"}})
            assert relay.publish_pending() == 1
    finally:
        relay.close()


def test_an_offices_tickets_and_ratings_count_once_at_the_centre(broker_settings, mongo_client, service_db,
                                                                 central_workers):
    office = lambda service: mongo_client[f"office_{uuid.uuid4().hex[:6]}_{service}"]  # the office's own databases
    ticket = str(uuid.uuid4())
    ticket_events = [
        new_event("TicketIssued", OFFICE, {"ticket_id": ticket, "number": "A001", "ward_id": OFFICE,
                                           "service_code": "A", "priority": "normal"}),
        new_event("TicketCalled", OFFICE, {"ticket_id": ticket, "number": "A001", "ward_id": OFFICE,
                                           "counter_id": "q1", "service_code": "A", "called_at": "2026-07-15T01:00:00Z"}),
        new_event("TicketServed", OFFICE, {"ticket_id": ticket, "ward_id": OFFICE, "counter_id": "q1",
                                           "officer_id": "canbo-1", "wait_seconds": 420, "service_seconds": 180,
                                           "service_code": "A", "number": "A001"}),
    ]
    rating = new_event("RatingGiven", OFFICE, {"rating_id": str(uuid.uuid4()), "ward_id": OFFICE,
                                               "subject_type": "ticket", "subject_id": ticket, "officer_id": "canbo-1",
                                               "counter_id": "q1", "score": "very_satisfied"})
    send_up(broker_settings, office("queue"), "queue", ticket_events, again=ticket_events[1])
    send_up(broker_settings, office("rating"), "rating", [rating], again=rating)

    central_queue, central_rating = service_db("queue"), service_db("rating")
    marks = {"TicketIssued": 1, "TicketCalled": 1, "TicketServed": 1}
    wait_for(lambda: all(central_queue.processed_events.count_documents({"type": t}) == n for t, n in marks.items())
             and central_rating.processed_events.count_documents({"type": "RatingGiven"}) == 1,
             timeout=60, message="the central workers to handle the office's events")
    # The copies sent twice were delivered and handled too (acked), and changed nothing.
    queues = [subscription(*s).queue for s in (("queue", "TicketIssued"), ("queue", "TicketCalled"),
                                                 ("queue", "TicketServed"), ("rating", "RatingGiven"))]
    wait_for(lambda: drained(broker_settings, queues), timeout=30, message="every delivery handled")
    assert all(p.poll() is None for p in central_workers)
    assert central_queue.processed_events.count_documents({}) == 3

    queue_side = queue_deps(broker_settings, db=central_queue, verifier=None, devices=None)
    day = activity.city_day(queue_side, MONITOR, queue_side.clock.today().isoformat())
    assert day["wards"] == [{"ward_id": OFFICE, "issued": 1, "called": 1, "served": 1, "average_wait_seconds": 420,
                             "average_service_seconds": 180}]
    rating_side = rating_deps(broker_settings, db=central_rating, verifier=None)
    assert central_rating[RATINGS].count_documents({}) == 1
    [ward] = ratings.rankings(rating_side, MONITOR, None)["wards"]
    assert (ward["ward_id"], ward["total"], ward["very_satisfied"]) == (OFFICE, 1, 1)
    stats = ratings.ward_stats(rating_side, MONITOR, OFFICE, None, None)
    assert stats["total"] == 1 and [o["officer_id"] for o in stats["by_officer"]] == ["canbo-1"]
