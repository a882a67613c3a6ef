"""Bounded queues both ways (issue 20), on the real broker with small limits: one ward
office's full downlink queue at the centre holds that ward's events in the outbox and stops
nothing else — not the other wards' downlinks, not the centre's own consumers — and the
held events go down, once and in order, as the office drains its queue."""
from __future__ import annotations

import json
import logging
import uuid

import pika
import pika.exceptions
import pytest

from motcua_common import metrics, topology
from motcua_common.events import new_event
from motcua_common.outbox import OUTBOX, commit
from motcua_common.relay import DOWNLINK_HELD, Relay
from motcua_testing.chaos import drain

FULL, OTHER = "dn-hai-chau", "dn-thanh-khe"
BOUNDS = topology.QueueBounds(downlink_max_length=3, downlink_max_bytes=1024 * 1024)


def submitted(ward: str) -> dict:
    return new_event("DossierSubmitted", ward, {
        "dossier_id": str(uuid.uuid4()), "receipt_code": f"DB-{uuid.uuid4().hex[:6]}", "procedure_code": "KS01",
        "ward_id": ward, "channel": "online", "due_date": "2026-12-01"})


def declare_offices(settings) -> None:
    """The centre's topology and each office's bounded queue, bound to its ward's header."""
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        topology.declare(connection.channel(), settings)
        for ward, bounds in ((FULL, BOUNDS), (OTHER, topology.QueueBounds())):
            queue = f"motcua.downlink.{ward}"
            channel = topology.declare_bounded_queue(connection, queue, bounds.downlink_arguments())
            channel.queue_bind(queue, topology.DOWNLINK_EXCHANGE,
                               arguments={"x-match": "all", topology.WARD_HEADER: ward})
    finally:
        connection.close()


def publish_all(relay: Relay) -> int:
    published = 0
    while (batch := relay.publish_pending()):
        published += batch
    return published


def ids(messages) -> list[str]:
    return [json.loads(body)["event_id"] for _headers, body in messages]


def test_one_full_office_queue_holds_its_wards_events_and_stops_nothing_else(broker_settings, service_db, caplog):
    declare_offices(broker_settings)
    db = service_db("dossier")
    mine = [submitted(FULL) for _ in range(8)]
    theirs = [submitted(OTHER) for _ in range(4)]
    commit(db, lambda session: None, [e for pair in zip(mine, theirs + [None] * 4) for e in pair if e])
    # Small batches: a quorum queue takes in whatever is in flight when it reaches its limit
    # and refuses from the next publish on, so a limit is exceeded by at most a batch.
    relay = Relay(db, broker_settings, "dossier", batch_size=2)
    refused_before = metrics.DOWNLINK_REFUSED.labels("dossier", FULL)._value.get()
    try:
        with caplog.at_level(logging.WARNING, logger="motcua_common.relay"):
            assert publish_all(relay) == 12, "every event confirmed on its exchange: nothing waits for the full ward"
        held = [d["_id"] for d in db[OUTBOX].find({DOWNLINK_HELD: FULL}).sort([("seq", 1), ("n", 1)])]
        assert 8 - 3 - 2 <= len(held) <= 8 - 3, "the full ward's overflow is held in the outbox"
        assert db[OUTBOX].count_documents({"status": "pending"}) == 0
        assert db[OUTBOX].count_documents({DOWNLINK_HELD: OTHER}) == 0
        # Refused by the queue, then held behind the refused ones without being offered.
        assert 1 <= metrics.DOWNLINK_REFUSED.labels("dossier", FULL)._value.get() - refused_before <= len(held)
        assert metrics.DOWNLINK_HELD.labels("dossier", FULL)._value.get() == len(held)
        assert any("downlink queue of ward dn-hai-chau is full" in r.getMessage() for r in caplog.records)

        # The city goes on: the other ward's office and the centre's own consumers get everything,
        # and the full ward's new events wait behind the held ones (never ahead of them).
        later_theirs, later_mine = submitted(OTHER), submitted(FULL)
        commit(db, lambda session: None, [later_mine, later_theirs])
        assert publish_all(relay) == 2
        assert ids(drain(broker_settings.amqp_url, f"motcua.downlink.{OTHER}")) == [e["event_id"] for e in theirs + [later_theirs]]
        centre_queue = topology.subscription("queue", "DossierSubmitted").queue
        assert len(drain(broker_settings.amqp_url, centre_queue)) == 14
        assert db[OUTBOX].count_documents({DOWNLINK_HELD: FULL}) == len(held) + 1

        # The office drains its queue (its link came back): the held events follow, oldest first.
        arrived = ids(drain(broker_settings.amqp_url, f"motcua.downlink.{FULL}"))
        for _ in range(10):
            relay.release_held(force=True)
            arrived += ids(drain(broker_settings.amqp_url, f"motcua.downlink.{FULL}"))
            if not db[OUTBOX].count_documents({DOWNLINK_HELD: FULL}):
                break
        assert arrived == [e["event_id"] for e in mine + [later_mine]], "each once, in publication order"
        assert metrics.DOWNLINK_HELD.labels("dossier", FULL)._value.get() == 0
    finally:
        relay.close()
    an_unbounded_queue_from_an_older_version_is_kept_and_the_fix_is_logged(broker_settings, caplog)
    an_offices_uplink_refuses_beyond_its_bound(broker_settings)


def an_unbounded_queue_from_an_older_version_is_kept_and_the_fix_is_logged(broker_settings, caplog):
    """(In the same test, to share its broker: declaring a vhost costs seconds.)"""
    connection = pika.BlockingConnection(pika.URLParameters(broker_settings.amqp_url))
    try:
        connection.channel().queue_declare("motcua.downlink.dn-son-tra", durable=True,
                                           arguments={"x-queue-type": "quorum"})
        with caplog.at_level(logging.WARNING, logger="motcua_common.topology"):
            channel = topology.declare_bounded_queue(connection, "motcua.downlink.dn-son-tra", BOUNDS.downlink_arguments())
        assert channel.is_open
    finally:
        connection.close()
    assert any("set_policy motcua-bounds" in r.getMessage() and '"max-length": 3' in r.getMessage()
               for r in caplog.records)


def an_offices_uplink_refuses_beyond_its_bound(broker_settings):
    """At the office: the uplink queue of queue.events takes its bound, then the broker
    refuses (the office's relay keeps what it refused pending in the office's outbox)."""
    from motcua_platform.edge import Uplink, declare_uplinks

    connection = pika.BlockingConnection(pika.URLParameters(broker_settings.amqp_url))
    try:
        declare_uplinks(connection.channel(), topology.QueueBounds(uplink_max_length=2))
        channel = connection.channel()
        channel.confirm_delivery()
        outcomes = []
        for _ in range(5):
            try:
                channel.basic_publish("queue.events", "TicketIssued", b"{}", pika.BasicProperties(delivery_mode=2))
                outcomes.append("confirmed")
            except pika.exceptions.NackError:
                outcomes.append("refused")
    finally:
        connection.close()
    assert outcomes[:2] == ["confirmed", "confirmed"] and outcomes[-1] == "refused"
    assert len(drain(broker_settings.amqp_url, Uplink("queue.events").queue)) == outcomes.count("confirmed")
