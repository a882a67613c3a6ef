"""Fault 4b: the centre's dossier events reach a ward's office across a WAN that drops.

The office is the real `motcua up --profile edge` on the second RabbitMQ node; it declared
its queue at the centre (motcua.downlink.<ward>) when it started, and its downlink shovel
pulls that queue through the link the test cuts. At the centre a real relay publishes
dossiers submitted in this ward and in another ward, before, during and after the cut and
while the link flaps.

Checked, like the Jepsen checker: every dossier of this ward becomes an appointment in the
office's queue service (its consumer is idempotent: a delivery repeated after a lost ack
changes nothing), none of the other ward's dossiers reaches the office, and during the cut
the events wait at the centre."""
from __future__ import annotations

import time
import uuid

import pika
from pymongo import MongoClient

from motcua_testing.chaos import wait_until
from motcua_common.config import Settings
from motcua_platform.edge import Downlink, BrokerControl
from motcua_common.events import new_event
from motcua_common.outbox import commit
from motcua_common.relay import Relay

WARD = "dn-hai-chau"  # the office of the edge_office fixture

OTHER_WARD = "dn-thanh-khe"


def submitted(ward: str) -> dict:
    return new_event("DossierSubmitted", ward, {
        "dossier_id": str(uuid.uuid4()), "receipt_code": f"DL-{uuid.uuid4().hex[:8]}", "procedure_code": "KS01",
        "ward_id": ward, "channel": "online", "due_date": "2026-12-01"})


def waiting_at_centre(amqp_url: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return connection.channel().queue_declare(Downlink(WARD).queue, passive=True).method.message_count
    finally:
        connection.close()


def test_the_centres_events_for_the_ward_reach_its_office_once_across_cuts(
        edge_office, wan, centre, service_db, rabbit_node, checker):
    appointments = checker("4b. WAN cut and flaps, centre → office",
                           "dossiers submitted at the centre for the office's ward and another, 8 s cut, 2 flaps")
    office_db = MongoClient(edge_office.env["MONGO_URL"])[Settings.from_env(edge_office.env).database_name("queue")]
    states = BrokerControl(rabbit_node.name).shovel_states()
    assert wait_until(lambda: BrokerControl(rabbit_node.name).shovel_states().get(Downlink.shovel) == "running",
                      timeout=30), states
    dossier_db = service_db("dossier")
    relay = Relay(dossier_db, centre, "dossier")
    other_ids: set[str] = set()

    def submit(mine: int, theirs: int) -> None:
        events = [submitted(WARD) for _ in range(mine)] + [submitted(OTHER_WARD) for _ in range(theirs)]
        commit(dossier_db, lambda session: None, events)
        while relay.publish_pending():
            pass
        for event in events:
            if event["ward_id"] == WARD:
                appointments.ack(event["payload"]["dossier_id"])
            else:
                other_ids.add(event["payload"]["dossier_id"])

    def arrived() -> int:
        return office_db.appointments.count_documents({})

    try:
        submit(10, 10)
        assert wait_until(lambda: arrived() >= 10, timeout=30), f"{arrived()} of 10 before any cut"
        wan.cut()
        submit(15, 5)
        time.sleep(3)
        assert arrived() == 10, "nothing comes down while the link is cut"
        assert waiting_at_centre(centre.amqp_url) == 15, "the ward's events wait at the centre"
        time.sleep(5)
        for _ in range(2):
            wan.restore()
            submit(5, 2)
            time.sleep(1.5)
            wan.cut()
            submit(5, 2)
            time.sleep(1.0)
        wan.restore()
        submit(5, 5)
        wait_until(lambda: arrived() >= len(appointments.acknowledged), timeout=60, interval=1.0)
    finally:
        relay.close()
    for doc in office_db.appointments.find({}, {"_id": 1, "ward_id": 1}):
        appointments.observe(doc["_id"])
    assert not appointments.lost, f"lost {len(appointments.lost)}: {sorted(appointments.lost)[:5]}"
    assert not appointments.duplicated
    assert not appointments.unexpected, "another ward's dossiers reached this office"
    assert not other_ids & {d["_id"] for d in office_db.appointments.find({}, {"_id": 1})}
    # Each event took effect once: the office's consumer remembered every one it handled.
    marks = office_db.processed_events.count_documents({"type": "DossierSubmitted"})
    assert marks == len(appointments.acknowledged), f"{marks} processed marks for {len(appointments.acknowledged)} events"
    assert wan.cuts == 3
